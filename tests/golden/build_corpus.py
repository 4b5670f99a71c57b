"""Build a golden replay corpus (run by hand; tests/golden/README.md):

    .venv/bin/python -m tests.golden.build_corpus NAME [--insurance deqing|zhijiang] [--fund-only]

On a fresh SQLite database: the demo generator's county, cut down to two centres (C01 of the
first medical community, C07 of the second) and their village clinics; its reference data,
inputs and service records; the illustrative Zhuji policy; the year's monthly advances (the
first one superseded by a second run of the same month), the year-end settlement, a
provisional December distribution and the year's staff distribution; then a retroactive
unit-price change and January's run of the next year, which pays the difference for the
settled year (a first January run is sent back, a second approved); then the medical-insurance
fund under the chosen rule — its advances and settlement, a claim corrected after the
settlement and the next year's first advance, which pays the difference. Every run is
computed with the rule sets current now, approved by a second person and paid.

The log is written to `corpora/NAME/log.jsonl.gz`, each run's statement to
`corpora/NAME/statements/`. An existing corpus is never overwritten: a corpus, once made, is
what the test replays for ever; a new rule set gets a new corpus (a new NAME).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

from dangliang import __version__
from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import generate
from dangliang.domain.claims import Claim
from dangliang.domain.periods import Period
from dangliang.payouts import rulesets
from dangliang.projections.facts_queries import RunRecord
from dangliang.settings import Settings
from tests.golden.corpus import (
    CORPORA,
    LOG,
    MANIFEST,
    STATEMENTS,
    dump_log,
    slug,
    statement,
    statement_csv,
    statement_text,
)

YEAR = 2024
SEED = 17
RECORDS = 20_000  # of the whole county; the institutions kept have about a seventh
CENTRES = ("C01", "C07")
CLINICS = "V03"  # each centre keeps its village clinics V01–V03
MAKER, CHECKER = "golden-maker", "golden-checker"
BUNDLES = {"deqing": "deqing_insurance", "zhijiang": "zhijiang_insurance"}


# ---- a small county ---------------------------------------------------------------------------


def small_county(folder: Path) -> dict[str, Path]:
    """The generator's county, with only `CENTRES`, their clinics, staff, records and claims."""
    files = generate(folder, records=RECORDS, seed=SEED, year=YEAR).files
    _filter(
        files["institutions"],
        lambda r: (r["parent_code"] or r["code"]) in CENTRES and r["code"][-3:] <= CLINICS,
    )
    kept = {r["code"] for r in _rows(files["institutions"])}
    for key in ("headcount", "scores", "income", "pay_levels", "tasks", "pools", "services"):
        _filter(files[key], lambda r: r["institution_code"] in kept)
    before = _claims_total(files["claims"])
    _filter(files["claims"], lambda r: r["institution_code"] in kept)
    _scale_revenue(files["fund_years"], _claims_total(files["claims"]) / before)
    _filter(files["staff"], lambda r: r["institution_code"] in kept)
    staff = {r["staff_id"] for r in _rows(files["staff"])}
    for key in ("staff_coefficients", "outside_items"):
        _filter(files[key], lambda r: r["staff_id"] in staff)
    _rewrite(files["force_majeure"], "institutions", kept)
    _rewrite(files["communities"], "members", kept)
    return files


def _claims_total(path: Path) -> Decimal:
    return sum((Decimal(r["fund_amount"]) for r in _rows(path)), Decimal(0))


def _scale_revenue(path: Path, share: Decimal) -> None:
    """The fund's revenue (and a reported prior spending) cut to the claims kept, so the
    small county's fund runs neither a huge surplus nor a huge overspend."""
    rows = _rows(path)
    for row in rows:
        for key in ("revenue", "prior_spending"):
            if row[key]:
                row[key] = str((Decimal(row[key]) * share).quantize(Decimal("0.01")))
    _write(path, list(rows[0]), rows)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)


def _filter(path: Path, keep: Callable[[dict[str, str]], bool]) -> None:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or ()), [r for r in reader if keep(r)]
    _write(path, header, rows)


def _rewrite(path: Path, column: str, kept: set[str]) -> None:
    """A `;`-separated list of codes cut down to the kept ones; rows left empty dropped."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or ()), list(reader)
    for row in rows:
        row[column] = ";".join(c for c in row[column].split(";") if c in kept)
    _write(path, header, [r for r in rows if r[column]])


# ---- the year ---------------------------------------------------------------------------------


def pay(app: Dangliang, run: RunRecord) -> RunRecord:
    app.approve_payout(run.run_id, reference="金标准审批 golden approval", actor=CHECKER)
    return app.mark_payout_paid(run.run_id, reference="金标准支付 golden payment", actor=MAKER)


def county_year(app: Dangliang, files: dict[str, Path], today: date) -> None:
    app.load_institutions(files["institutions"], actor=MAKER)
    app.load_headcount(files["headcount"], actor=MAKER)
    app.load_staff(files["staff"], actor=MAKER)
    app.load_catalogue(files["catalogue"], actor=MAKER)
    app.import_services(files["services"], actor=MAKER, today=today)


def compensation_year(app: Dangliang, files: dict[str, Path], today: date) -> None:
    for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
        app.load_inputs(kind, files[kind.replace("-", "_")], actor=MAKER)
    app.adopt_policy("zhuji", reference="金标准：诸暨方案示例参数 / golden: Zhuji", actor=MAKER)
    for kind in ("pools", "staff-coefficients", "outside-items"):  # read the policy's limits
        app.load_inputs(kind, files[kind.replace("-", "_")], actor=MAKER)
    app.run_payout(Period(YEAR, 1), actor=MAKER, today=today)  # superseded by the next
    for month in range(1, 13):
        pay(app, app.run_payout(Period(YEAR, month), actor=MAKER, today=today))
    pay(app, app.run_payout(Period(YEAR), actor=MAKER, today=today))
    pay(app, app.run_distribution(Period(YEAR, 12), actor=MAKER, today=today))
    pay(app, app.run_distribution(Period(YEAR), actor=MAKER, today=today))
    # A retroactive unit-price change: the settled year's difference is paid next January.
    app.change_parameter(
        "unit_price.basic_medical",
        "13.00",
        start=date(YEAR, 7, 1),
        reason="金标准：单价调整 / golden: price review",
        approver="县财政局",
        actor=MAKER,
    )
    january = app.run_payout(Period(YEAR + 1, 1), actor=MAKER, today=today)
    app.reject_payout(january.run_id, reason="金标准：退回重算 / golden: sent back", actor=CHECKER)
    pay(app, app.run_payout(Period(YEAR + 1, 1), actor=MAKER, today=today))


def fund_year(app: Dangliang, files: dict[str, Path], insurance: str, today: date) -> None:
    for kind in ("communities", "enrolment", "claims", "fund_years", "community_scores"):
        app.import_insurance(kind, files[kind], actor=MAKER, today=today)
    app.adopt_policy(
        BUNDLES[insurance],
        reference=f"金标准：{insurance} 示例参数 / golden: illustrative",
        actor=MAKER,
        scheme="insurance",
    )
    quarterly = insurance == "zhijiang"
    periods = (
        [Period(YEAR, quarter=q) for q in range(1, 5)]
        if quarterly
        else [Period(YEAR, m) for m in range(1, 13)]
    )
    for period in [*periods, Period(YEAR)]:
        pay(app, app.run_insurance(period, actor=MAKER, today=today))
    # A claim of the settled year corrected: the difference is paid in the next advance.
    claim_id = _rows(files["claims"])[-1]["claim_id"]
    claim: Claim = app.log.repository.get(Claim.create_id(claim_id=claim_id))
    community, institution, out_of_area, settled_on, amount = claim.values
    claim.correct(
        community_code=community,
        institution_code=institution,
        out_of_area=out_of_area,
        settled_on=settled_on,
        fund_fen=amount + 12_345,
        reason="金标准：稽核更正 / golden: audit correction",
        actor=MAKER,
    )
    app.log.save(claim)
    # The settled year's revenue revised (the Zhijiang rule allots from it) and the next
    # year's entered; then the next year's first advance.
    this = next(r for r in _rows(files["fund_years"]) if r["year"] == str(YEAR))
    revised = str(Decimal(this["revenue"]) + Decimal("1000.00"))
    _write(
        files["fund_years"],
        list(this),
        [
            {**this, "revenue": revised, "reference": "金标准：筹资额更正 / golden: revised"},
            {**this, "year": str(YEAR + 1), "prior_spending": "", "revenue": revised},
        ],
    )
    app.import_insurance("fund_years", files["fund_years"], actor=MAKER, today=today)
    first = Period(YEAR + 1, quarter=1) if quarterly else Period(YEAR + 1, 1)
    pay(app, app.run_insurance(first, actor=MAKER, today=today))


# ---- writing the corpus -----------------------------------------------------------------------


def build(name: str, insurance: str, *, fund_only: bool) -> Path:
    target = CORPORA / name
    if target.exists():
        sys.exit(f"{target} exists: a corpus is never rebuilt or overwritten; choose a new NAME")
    today = date.today()
    with tempfile.TemporaryDirectory() as folder:
        files = small_county(Path(folder) / "county")
        app = bootstrap(Settings(f"sqlite:///{folder}/golden.db"))
        try:
            county_year(app, files, today)
            if not fund_only:
                compensation_year(app, files, today)
            fund_year(app, files, insurance, today)
            app.catch_up()
            runs = app.payout_runs()
            lines = dump_log(app)
            for run in runs.values():
                replay = app.replay_payout(run.run_id)
                assert replay["identical"], (run.run_id, replay["differences"][:3])
            write(target, name, insurance, lines, runs)
        finally:
            app.close()
    return target


def write(
    target: Path, name: str, insurance: str, lines: list[str], runs: dict[str, RunRecord]
) -> None:
    statements = target / STATEMENTS
    statements.mkdir(parents=True)  # fails if it exists: nothing is overwritten
    with gzip.open(target / LOG, "wt", encoding="utf-8", compresslevel=9) as f:
        f.writelines(line + "\n" for line in lines)
    for run in runs.values():
        stem = statements / slug(run.run_id)
        with (stem.with_suffix(".json")).open("x", encoding="utf-8") as out:
            out.write(statement_text(statement(run)))
        table = statement_csv(run)
        if table is not None:
            with (stem.with_suffix(".csv")).open("x", encoding="utf-8", newline="") as out:
                out.write(table)
    about = {
        "name": name,
        "built_with": f"dangliang {__version__}",
        "built_on": date.today().isoformat(),
        "county": {
            "generator": {"records": RECORDS, "seed": SEED, "year": YEAR},
            "centres": list(CENTRES),
            "insurance": insurance,
        },
        "events": len(lines),
        "rule_sets_current": {p: rulesets.current(p).label for p in rulesets.PIPELINES},
        "runs": {
            r.run_id: {"rule_set": r.rule_set_label, "state": r.state, "position": r.position}
            for r in sorted(runs.values(), key=lambda r: r.recorded_at_position)
        },
    }
    with (target / MANIFEST).open("x", encoding="utf-8") as out:
        out.write(json.dumps(about, ensure_ascii=False, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the new corpus's folder under tests/golden/corpora")
    parser.add_argument("--insurance", choices=sorted(BUNDLES), default="deqing")
    parser.add_argument(
        "--fund-only",
        action="store_true",
        help="only the county's reference data, records and the fund (no compensation runs)",
    )
    args = parser.parse_args()
    target = build(args.name, args.insurance, fund_only=args.fund_only)
    total = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(
        f"{target}: {len(list((target / STATEMENTS).iterdir()))} statement files, {total:,} bytes"
    )


if __name__ == "__main__":
    main()

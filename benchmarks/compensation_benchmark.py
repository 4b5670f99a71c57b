#!/usr/bin/env python
"""Compensation benchmark: annual settlement and what-if of a county-year already projected.

Run from the project's virtualenv:

    . .venv/bin/activate
    python benchmarks/compensation_benchmark.py --records 4000000 --repeat 5 --backend both

Quick smoke test: `--records 50000 --repeat 2`.

Options: `--records N` (default 4,000,000), `--repeat R` (default 5; medians, min – max shown),
`--backend sqlite|postgres|both` (default sqlite), `--workdir DIR` (default
`$TMPDIR/dangliang-bench-compensation`; the county is generated there as `county-N` and reused),
`--keep` (keep the SQLite database and reuse it on the next run with the same N: setting up
4M records takes minutes), `--pg-url URL` (default `postgresql://postgres@127.0.0.1:5432/test`;
a fresh schema, dropped at the end).

Setup (reported, not a result): `dangliang generate --seed 42`, then through the CLI the
institutions, headcount, staff, catalogue, the generated compensation inputs (scores, income,
pay levels, directive tasks, force majeure) and the services; one catch-up; `policy load zhuji`.

Timed, per repeat (the projection is caught up, so each figure is the computation itself):
1. annual settlement (`app.compute(Period(YEAR))`, zhuji: fixed prices) — target < 1 s;
2. the same with the point-value bundle (budget ÷ county equivalents);
3. what-if of a price change (`app.what_if`, baseline and scenario on the same inputs) —
   target < 1 s;
4. one month's advances;
5. where the time goes: gathering the inputs (SQL over the cube, 24 months, + facts) and the
   rule steps alone.
Baseline in the same repeat: the raw read any settlement needs — `SELECT institution, item,
month, compliant, SUM(quantity) FROM cube WHERE month IN (24 months) GROUP BY …` fetched into
Python, no valuation, no rules. Check: what-if difference = difference of two computations.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import (
    dangliang_command,
    git_describe,
    log,
    machine_info,
    median,
    pg_drop_schema,
    remove_sqlite,
    render_table,
)
from sqlalchemy import text

from dangliang.application import Dangliang, bootstrap
from dangliang.calculation import compensation as comp
from dangliang.domain.periods import Period
from dangliang.policy import load_builtin_bundle
from dangliang.policy.reform import Scenario
from dangliang.settings import Settings

SEED = 42
YEAR = 2024
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_S = 1.0
INPUT_FILES = (
    ("institutions", "load", "institutions.csv"),
    ("institutions", "headcount", "headcount.csv"),
    ("staff", "load", "staff.csv"),
    ("catalog", "load", "catalogue.csv"),
    ("inputs", "scores", "assessment_scores.csv"),
    ("inputs", "income", "medical_income.csv"),
    ("inputs", "pay-levels", "pay_levels.csv"),
    ("inputs", "tasks", "directive_tasks.csv"),
    ("inputs", "force-majeure", "force_majeure.csv"),
)


def run_cli(args: list[str]) -> float:
    import subprocess

    env = {**os.environ, "DANGLIANG_ACTOR": "bench"}
    env.pop("DANGLIANG_DB", None)
    started = time.perf_counter()
    proc = subprocess.run(
        [*dangliang_command(), *args], env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dangliang {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - started


def ensure_county(workdir: Path, records: int) -> Path:
    county = workdir / f"county-{records}"
    if (county / "services.csv").exists() and (county / "assessment_scores.csv").exists():
        log(f"reusing county {county}")
        return county
    log(f"generating {records:,} records into {county} …")
    run_cli(["generate", "--out", str(county), "--records", str(records), "--seed", str(SEED)])
    return county


def setup(
    args: argparse.Namespace, backend: str
) -> tuple[str, dict[str, float], Callable[[], None]]:
    county = ensure_county(args.workdir, args.records)
    timings: dict[str, float] = {}
    if backend == "sqlite":
        path = args.workdir / f"bench-comp-{args.records}.db"
        url = f"sqlite:///{path}"
        ready = args.workdir / f"bench-comp-{args.records}.ready"
        if args.keep and ready.exists() and path.exists():
            log(f"reusing database {path}")
            return url, {"reused database": 0.0}, lambda: None
        remove_sqlite(path)
        ready.unlink(missing_ok=True)

        def cleanup() -> None:
            if args.keep:
                ready.write_text("ok")
            else:
                remove_sqlite(path)

    else:
        schema = f"bench_comp_{os.getpid()}"
        pg_drop_schema(args.pg_url, schema)
        url = f"{args.pg_url}?schema={schema}"

        def cleanup() -> None:
            pg_drop_schema(args.pg_url, schema)

    for group, command, name in INPUT_FILES:
        if (county / name).exists():
            args_ = [group, command, str(county / name), "--db", url]
            timings[f"{group} {command}"] = run_cli(args_)
    timings["policy load zhuji"] = run_cli(
        ["policy", "load", "zhuji", "--reference", "benchmark", "--db", url]
    )
    log(f"{backend}: importing {args.records:,} records …")
    timings["import"] = run_cli(["import", str(county / "services.csv"), "--db", url])
    app = bootstrap(Settings(url))
    try:
        started = time.perf_counter()
        app.catch_up()
        timings["catch-up"] = time.perf_counter() - started
    finally:
        app.close()
    return url, timings, cleanup


def raw_read(app: Dangliang) -> int:
    t = app.equivalents_projection().t
    months = ", ".join(f"'{y}-{m:02d}'" for y in (YEAR - 1, YEAR) for m in range(1, 13))
    sql = (
        "SELECT institution_code, item_code, month, compliant, SUM(quantity_e4) "
        f"FROM {t.cube.name} WHERE month IN ({months}) "
        "GROUP BY institution_code, item_code, month, compliant"
    )
    with app.engine.connect() as conn:
        return len(conn.execute(text(sql)).all())


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def measure(args: argparse.Namespace, backend: str) -> list[list[str]]:
    url, setup_times, cleanup = setup(args, backend)
    app = bootstrap(Settings(url))
    point_value = load_builtin_bundle("point_value")
    scenario = Scenario(
        "基本医疗单价 13 元 / basic-medical price 13 from July",
        (comp.Change("unit_price.basic_medical", Decimal("13.00"), date(YEAR, 7, 1)),),
    )
    figures: dict[str, list[float]] = {
        k: []
        for k in (
            "raw read (baseline)",
            "annual settlement, zhuji",
            "annual settlement, point value",
            "what-if price change",
            "monthly advances (March)",
            "  gather inputs",
            "  rule steps",
            "audit replay: position before 3 later events",
            "audit replay: position mid-import (N/2 deltas since)",
        )
    }
    check = "?"
    try:
        head = app.catch_up()
        for i in range(args.repeat):
            figures["raw read (baseline)"].append(timed(lambda: raw_read(app))[0])
            s, baseline = timed(lambda: app.compute(Period(YEAR)))  # at `head`
            figures["annual settlement, zhuji"].append(s)
            figures["annual settlement, point value"].append(
                timed(lambda: app.compute(Period(YEAR), tree=point_value))[0]
            )
            s, diff = timed(lambda: app.what_if(Period(YEAR), scenario))
            figures["what-if price change"].append(s)
            figures["monthly advances (March)"].append(
                timed(lambda: app.compute(Period(YEAR, 3)))[0]
            )
            t = app.equivalents_projection().t
            with app.engine.connect() as conn:
                started = time.perf_counter()
                policy, county = comp.gather(conn, t, Period(YEAR), head)
                figures["  gather inputs"].append(time.perf_counter() - started)
            started = time.perf_counter()
            comp.run(Period(YEAR), head, policy, county)
            figures["  rule steps"].append(time.perf_counter() - started)
            if i == 0:
                reform = app.compute(Period(YEAR), tree=scenario.apply(baseline.tree))
                ok = all(
                    Decimal(r["difference"])
                    == reform.result.institutions[r["code"]].total
                    - baseline.result.institutions[r["code"]].total
                    for r in diff["institutions"]
                )
                check = "OK" if ok else "MISMATCH"
            log(f"{backend}: repeat {i + 1}/{args.repeat} done")
        # Audit replays: a past position, with a few events since, and with half the year since.
        app.change_parameter(
            "unit_price.basic_medical",
            "13.00",
            start=date(YEAR, 7, 1),
            reason="benchmark",
            approver="benchmark",
            actor="bench",
        )
        app.change_parameter(
            "advance.ratio", "0.90", start=date(YEAR, 7, 1), reason="b", approver="b", actor="b"
        )
        app.change_parameter(
            "advance.ratio", "0.85", start=date(YEAR, 7, 1), reason="b", approver="b", actor="b"
        )
        app.catch_up()
        mid = head - args.records // 2
        for _ in range(args.repeat):
            s, replay = timed(lambda: app.compute(Period(YEAR), position=head))
            figures["audit replay: position before 3 later events"].append(s)
            figures["audit replay: position mid-import (N/2 deltas since)"].append(
                timed(lambda: app.compute(Period(YEAR), position=mid))[0]
            )
        if replay.as_json() != baseline.as_json():
            check += " / replay MISMATCH"
    finally:
        app.close()
        cleanup()
    base = median(figures["raw read (baseline)"])
    rows = []
    for name, xs in figures.items():
        m = median(xs)
        targeted = name.startswith(("annual settlement, zhuji", "what-if"))
        target = ("< 1 s: " + ("met" if m < TARGET_S else "MISSED")) if targeted else ""
        rows.append(
            [
                backend,
                name,
                f"{m * 1000:.0f} ms",
                f"{min(xs) * 1000:.0f} – {max(xs) * 1000:.0f} ms",
                f"{m / base:.1f}×" if base else "",
                target,
            ]
        )
    rows.append([backend, "what-if = difference of two computations", check, "", "", ""])
    for k, v in setup_times.items():
        rows.append([backend, f"setup: {k}", f"{v:.1f} s", "", "", ""])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=4_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "dangliang-bench-compensation",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    rows = [row for backend in backends for row in measure(args, backend)]
    print(f"# Compensation benchmark — {args.records:,} records, {args.repeat} repeats")
    print()
    for k, v in machine_info().items():
        print(f"- {k}: {v}")
    print(f"- code: {git_describe(list_files=False)}")
    print()
    print(render_table(["backend", "what", "median", "min – max", "× raw read", "target"], rows))


if __name__ == "__main__":
    main()

"""What the runs pages show (支付批次), built from the runs' recorded results.

A run's results never change once recorded, so what the list needs of each run (its total
and each institution's or community's amount) is kept per results digest: listing the runs
does not decode every run's results on every request. Everything here is narrowed on the
server to what the viewer may see: a clerk gets their institutions' lines (of a fund run,
the medical communities their institutions belong to) and none of the county's totals.

Run ids contain `#` (`2024-03#1`): links write it as `~` (`/runs/2024-03~1`), and `%23`
works as well.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dangliang.application import Dangliang
from dangliang.application.accounts import Principal
from dangliang.application.workbench_queries import RunRecord
from dangliang.calculation.compensation import EXPLAINABLE
from dangliang.domain.payout import bare_period, ledger_of
from dangliang.payouts import insurance_statements as fund_statements
from dangliang.payouts import statements
from dangliang.web import links

KINDS = {
    "monthly_advance": ("月度预拨", "monthly advance"),
    "annual_settlement": ("年度结算", "year-end settlement"),
    "performance_pay": ("绩效分配", "performance pay"),
    "insurance_advance": ("医保预拨", "fund advance"),
    "insurance_settlement": ("医保结算", "fund settlement"),
}
STATES = {
    "draft": ("草稿", "draft"),
    "approved": ("已审核", "approved"),
    "paid": ("已支付", "paid"),
    "rejected": ("已退回", "rejected"),
    "superseded": ("已被替代", "superseded"),
}
LEDGERS = {  # what the start form offers: ledger → (中文, English, periods accepted)
    "compensation": (
        "机构补偿（月度预拨、年度结算）",
        "compensation (month or year)",
        "month_year",
    ),
    "distribution": ("绩效分配（月度、年度）", "performance-pay distribution", "month_year"),
    "insurance": ("医保基金（月、季度、年度）", "insurance fund (month, quarter, year)", "fund"),
}
EN = {
    "basic_medical": "basic medical",
    "basic_public_health": "basic public health",
    "directive_tasks": "directive tasks",
    "remote_adjustment": "remote-township adjustment",
    "year_end_bonus": "year-end bonus",
    "total": "total",
    "advances": "advances",
    "settlement": "settlement",
    "adjustments": "adjustments",
    "payable": "payable",
}
PERFORMANCE_COLUMNS = (
    ("pool", "绩效工资总量", "pool"),
    ("performance_pay", "绩效工资", "performance pay"),
    ("year_end_bonus", "年终考核奖", "year-end bonus"),
    ("outside_total", "总量外项目", "outside items"),
    ("total", "应发合计", "total"),
)


def slug(run_id: str) -> str:
    """A run id as written in links: `2024-03#1` → `2024-03~1`."""
    return run_id.replace("#", "~")


def run_id_of(text: str) -> str:
    """`2024-03~1` or `2024-03#1` (sent as `%23`) → `2024-03#1`."""
    return text.replace("~", "#")


def kind_of(period: str) -> str:
    """A run's kind from its period (as `PayoutPeriod.open` names it), without its results."""
    ledger, bare = ledger_of(period), bare_period(period)
    if ledger == "performance":
        return "performance_pay"
    if ledger == "insurance":
        return "insurance_settlement" if len(bare) == 4 else "insurance_advance"
    return "annual_settlement" if len(bare) == 4 else "monthly_advance"


# ---- the amounts of a run (kept per results digest) --------------------------------------


@dataclass(frozen=True)
class Amounts:
    total: str | None  # the county's: payable (a distribution: what is paid out in all)
    rows: dict[str, str] = field(default_factory=dict)  # institution/community → amount

    def of(self, codes: Collection[str]) -> str | None:
        """The sum over `codes` (a clerk's), or None when the run has none of them."""
        found = [Decimal(v) for c, v in self.rows.items() if c in codes]
        return str(sum(found, Decimal(0))) if found else None


_AMOUNTS: dict[str, Amounts] = {}


def amounts(run: RunRecord) -> Amounts:
    key = f"{run.ledger}:{run.results_digest}"
    found = _AMOUNTS.get(key)
    if found is None:
        if len(_AMOUNTS) > 4096:
            _AMOUNTS.clear()
        found = _AMOUNTS[key] = _amounts_of(run.ledger, run.results)
    return found


def _amounts_of(ledger: str, results: Mapping[str, Any]) -> Amounts:
    totals = results.get("totals") or {}
    if ledger == "performance":
        rows = {i["code"]: i["totals"]["total"] for i in results["institutions"]}
        return Amounts(totals.get("total"), rows)
    if ledger == "insurance":
        return Amounts(
            totals.get("payable"), {c["code"]: c["payable"] for c in results["communities"]}
        )
    return Amounts(
        totals.get("payable"), {i["code"]: i["payable"] for i in results["institutions"]}
    )


def own_communities(app: Dangliang, me: Principal) -> set[str] | None:
    """A clerk's medical communities (those their institutions belong to); None: all."""
    if me.scope is None:
        return None
    return {c["code"] for c in app.communities() if me.scope & set(c["members"])}


# ---- the list -----------------------------------------------------------------------------


def list_rows(
    runs: Iterable[RunRecord],
    me: Principal,
    communities: set[str] | None,
    *,
    year: int | None,
    kind: str | None,
    state: str | None,
) -> list[dict[str, Any]]:
    """The runs the filters keep, newest first, with the amount the viewer may see."""
    out = []
    for run in sorted(runs, key=lambda r: r.recorded_at_position, reverse=True):
        bare, run_kind = bare_period(run.period), kind_of(run.period)
        if year is not None and bare[:4] != str(year):
            continue
        if (kind is not None and run_kind != kind) or (state is not None and run.state != state):
            continue
        approved = next((h for h in run.history if h["state"] == "approved"), None)
        found = amounts(run)
        codes = visible_codes(run, me, communities)
        amount = found.total if codes is None else found.of(codes)
        out.append(
            {
                "run_id": run.run_id,
                "slug": slug(run.run_id),
                "period": bare,
                "ledger": run.ledger,
                "kind": run_kind,
                "state": run.state,
                "computed_by": run.computed_by,
                "computed_at": run.computed_at,
                "approved_by": approved["actor"] if approved else None,
                "approved_at": approved["at"] if approved else None,
                "amount": amount,
            }
        )
    return out


def years_of(runs: Iterable[RunRecord]) -> list[int]:
    return sorted({int(bare_period(r.period)[:4]) for r in runs}, reverse=True)


# ---- one run's table ----------------------------------------------------------------------


@dataclass
class Column:
    key: str
    zh: str
    en: str
    money: bool = True


@dataclass
class Table:
    """Rows of `{code, name, cells: [{key, value, href}]}` and the county's totals row."""

    unit_zh: str
    unit_en: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    totals: list[str | None] | None
    payslips: bool = False


def explain_href(code: str, period: str, key: str) -> str | None:
    """Where an institution's amount is explained (the explain pages)."""
    if key in EXPLAINABLE:
        return links.explain_href(code, period, key)
    if key in ("total", "advances", "payable"):
        return links.explain_href(code, period)
    return None


def run_table(run: RunRecord, names: Mapping[str, str], keep: Collection[str] | None) -> Table:
    """The run's lines; with `keep` (a clerk's institutions, or of a fund run their
    communities) only those, and none of the county's totals."""
    results = run.results
    if run.ledger == "insurance":
        table = _fund_table(results, kind_of(run.period))
    elif run.ledger == "performance":
        table = _performance_table(results, names)
    else:
        table = _compensation_table(results, bare_period(run.period))
    if keep is not None:
        table.rows = [r for r in table.rows if r["code"] in keep]
        table.totals = None
    return table


def visible_codes(run: RunRecord, me: Principal, communities: set[str] | None) -> set[str] | None:
    """What of a run the viewer may see: None (everything), else codes of institutions or,
    of a fund run, of medical communities."""
    if me.scope is None:
        return None
    return set(communities or ()) if run.ledger == "insurance" else set(me.scope)


def _compensation_table(results: Mapping[str, Any], period: str) -> Table:
    kind = statements.KINDS[results["kind"]]
    columns = [
        Column(c.key, c.zh, EN.get(c.key, c.key)) for c in statements.table_columns(kind) if c.money
    ]
    rows = []
    for row in results["institutions"]:
        cells = []
        for c in columns:
            value = row["components"][c.key] if c.key in row["components"] else row[c.key]
            cells.append(
                {"key": c.key, "value": value, "href": explain_href(row["code"], period, c.key)}
            )
        rows.append({"code": row["code"], "name": row.get("name", ""), "cells": cells})
    totals = results["totals"]
    return Table("机构", "Institution", columns, rows, [totals.get(c.key) for c in columns])


def _performance_table(results: Mapping[str, Any], names: Mapping[str, str]) -> Table:
    columns = [Column(k, zh, en) for k, zh, en in PERFORMANCE_COLUMNS]
    columns.append(Column("staff", "人数", "staff", money=False))
    yearly = results["institutions"] and "provisional_paid" in (
        next((s for i in results["institutions"] for s in i["staff"]), {}) or {}
    )
    if yearly:
        columns += [
            Column("provisional_paid", "已预发绩效", "provisionally paid"),
            Column("difference", "年终差额", "difference"),
        ]
    rows = []
    for i in results["institutions"]:
        figures = dict(i["totals"])
        figures["staff"] = len(i["staff"])
        if yearly:
            for key in ("provisional_paid", "difference"):
                figures[key] = str(sum((Decimal(s.get(key, "0")) for s in i["staff"]), Decimal(0)))
        cells = [{"key": c.key, "value": figures.get(c.key), "href": None} for c in columns]
        rows.append({"code": i["code"], "name": names.get(i["code"], ""), "cells": cells})
    totals = results.get("totals") or {}
    return Table(
        "机构",
        "Institution",
        columns,
        rows,
        [totals.get(c.key) if c.money else None for c in columns],
        payslips=True,
    )


def _fund_table(results: Mapping[str, Any], kind: str) -> Table:
    summary = fund_statements.KINDS[kind].summary
    columns = [Column(c.key, c.zh, c.key.replace("_", " ")) for c in summary]
    rows = []
    for row in results["communities"]:
        figures = row.get("figures", {})
        cells = [
            {
                "key": c.key,
                "value": row[c.key] if c.key in row else figures.get(c.key),
                "href": None,
            }
            for c in columns
        ]
        rows.append({"code": row["code"], "name": row.get("name", ""), "cells": cells})
    totals = results.get("totals") or {}
    return Table("医共体", "Medical community", columns, rows, [totals.get(c.key) for c in columns])


def adjustments(run: RunRecord, table: Table) -> list[dict[str, Any]]:
    """The adjustment lines (earlier periods recomputed) of the rows the viewer sees."""
    visible = {r["code"]: r["name"] for r in table.rows}
    key = "communities" if run.ledger == "insurance" else "institutions"
    out = []
    for row in run.results.get(key, []):
        if row["code"] not in visible:
            continue
        for line in row.get("adjustment_lines") or ():
            out.append(
                {
                    "code": row["code"],
                    "name": visible[row["code"]],
                    "period": line.get("period"),
                    "run_id": line.get("run_id") or line.get("settled_by"),
                    "paid": line.get("paid"),
                    "new": line.get("new") or line.get("final_now"),
                    "amount": line.get("amount"),
                    "causes": list(line.get("causes") or ()),
                }
            )
    return out


# ---- two runs side by side ----------------------------------------------------------------


def side_by_side(
    first: RunRecord, second: RunRecord, names: Mapping[str, str], everything: bool
) -> list[dict[str, Any]]:
    """Per institution (community) and figure: the first run's value beside the second's,
    `changed` when they differ; only the institutions with a change unless `everything`."""
    a = run_table(first, names, None)
    b = run_table(second, names, None)
    columns = [c for c in b.columns if c.key in {x.key for x in a.columns}]
    rows_a = {r["code"]: r for r in a.rows}
    out = []
    for row in b.rows:
        old = rows_a.get(row["code"])
        if old is None:
            continue
        values_a = {c["key"]: c["value"] for c in old["cells"]}
        values_b = {c["key"]: c["value"] for c in row["cells"]}
        lines = []
        for c in columns:
            va, vb = values_a.get(c.key), values_b.get(c.key)
            changed = _differs(va, vb)
            delta = None
            if changed and c.money and va is not None and vb is not None:
                delta = str(Decimal(vb) - Decimal(va))
            lines.append({"column": c, "a": va, "b": vb, "changed": changed, "delta": delta})
        if everything or any(line["changed"] for line in lines):
            out.append({"code": row["code"], "name": row["name"], "lines": lines})
    return out


def _differs(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is not b
    try:
        return Decimal(str(a)) != Decimal(str(b))
    except ArithmeticError:
        return str(a) != str(b)

"""The province (省级汇总): every county of one PostgreSQL database, one schema per county, read
together by one query each.

A county is a schema holding a dangliang log (`dangliang_events`) and its read models; the
province layer never writes to it. On a Citus cluster each county schema is a *distributed
schema* placed whole on one worker, and these queries go through the coordinator: every branch
of the `UNION ALL` reads one schema only, so Citus runs it on that county's worker and the
coordinator only gathers one row per county.

Figures per county for a year, as the county's read models stand (each row says at which log
position its cube stands, against the county's log head):

- equivalents (工作当量): the cube's quantities × the catalogue value in force on the 1st of
  each month, split basic medical / public health (compliant) / non-compliant — the same sums
  as `equivalents_queries.Totals`, to the last digit;
- subsidy (机构补偿): what approved or paid compensation runs of the year make payable
  (advances, the settlement, adjustments), what is marked paid, and the year's entitlement
  from its settlement run once there is one;
- the medical-insurance fund (医保基金): the budget and spending of the latest approved or
  paid fund run of the year (the settlement once there is one), and what its runs make payable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from dangliang.projections.equivalents_queries import eu

EVENTS_TABLE = "dangliang_events"
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
APPROVED = ("approved", "paid")


@dataclass(frozen=True)
class CountyFigures:
    county: str  # the schema
    log_head: int
    cube_position: int
    records: int
    basic_medical: Decimal
    basic_public_health: Decimal
    non_compliant_public_health: Decimal
    subsidy_payable: Decimal  # approved or paid compensation runs of the year
    subsidy_paid: Decimal
    subsidy_entitlement: Decimal | None  # the year's settlement run: its total
    fund_budget: Decimal | None
    fund_spending: Decimal | None
    fund_payable: Decimal
    fund_settled: bool

    @property
    def equivalents(self) -> Decimal:
        return self.basic_medical + self.basic_public_health

    @property
    def cube_behind(self) -> bool:
        return self.cube_position < self.log_head

    @property
    def fund_use(self) -> Decimal | None:
        """Spending / budget (基金使用率), to 0.0001."""
        if not self.fund_budget or self.fund_spending is None:
            return None
        return (self.fund_spending / self.fund_budget).quantize(Decimal("0.0001"))


def counties(conn: Connection) -> list[str]:
    """Every schema of the database that holds a dangliang log, by name."""
    rows = conn.execute(
        text(
            "SELECT table_schema FROM information_schema.tables WHERE table_name = :t "
            "ORDER BY table_schema"
        ),
        {"t": EVENTS_TABLE},
    )
    return [str(r[0]) for r in rows if _SCHEMA.fullmatch(str(r[0]))]


def _cube_suffixes(conn: Connection, names: list[str]) -> dict[str, str]:
    """Each county's active equivalents cube (a blue-green rebuild switches it), in one query."""
    branches = " UNION ALL ".join(
        f"SELECT '{s}' AS county, (SELECT active FROM {s}.projection_versions "
        "WHERE name = 'equivalents') AS active"
        for s in names
    )
    return {county: active or "a" for county, active in conn.execute(text(branches))}


def _branch(schema: str, suffix: str) -> str:
    """One county's row: every figure of the module docstring, from its own schema only."""
    s, cube = schema, f"{schema}.eq_cube_{suffix}"
    approved = ", ".join(f"'{state}'" for state in APPROVED)
    return f"""
SELECT '{s}' AS county,
  (SELECT coalesce(max(notification_id), 0) FROM {s}.{EVENTS_TABLE}) AS log_head,
  (SELECT coalesce(max(position), 0) FROM {s}.projection_tracking
    WHERE name = 'equivalents_{suffix}') AS cube_position,
  eq.records, eq.medical_e8, eq.public_e8, eq.non_compliant_e8,
  runs.subsidy_payable, runs.subsidy_paid, runs.entitlement,
  fund.budget AS fund_budget, fund.spending AS fund_spending, runs.fund_payable,
  coalesce(fund.settled, false) AS fund_settled
FROM (
  SELECT coalesce(sum(c.records), 0) AS records,
    coalesce(sum(CASE WHEN i.category = 'basic_medical' THEN c.quantity_e4::numeric * v.value_e4
      END), 0) AS medical_e8,
    coalesce(sum(CASE WHEN i.category <> 'basic_medical' AND c.compliant
      THEN c.quantity_e4::numeric * v.value_e4 END), 0) AS public_e8,
    coalesce(sum(CASE WHEN i.category <> 'basic_medical' AND NOT c.compliant
      THEN c.quantity_e4::numeric * v.value_e4 END), 0) AS non_compliant_e8
  FROM (  -- one value per item and month: add up the quantities first
    SELECT month, item_code, compliant, sum(quantity_e4) AS quantity_e4,
      sum(records) AS records
    FROM {cube} WHERE month BETWEEN :first_month AND :last_month
    GROUP BY month, item_code, compliant
  ) c
  JOIN {s}.reg_catalogue_items i ON i.item_code = c.item_code
  CROSS JOIN LATERAL (
    SELECT coalesce((SELECT value_e4 FROM {s}.reg_catalogue_values cv
      WHERE cv.item_code = c.item_code
        AND cv.effective_from <= to_date(c.month || '-01', 'YYYY-MM-DD')
      ORDER BY cv.effective_from DESC, cv.notification_id DESC LIMIT 1), 0) AS value_e4
  ) v
) eq
CROSS JOIN (
  SELECT
    coalesce(sum(payable) FILTER (WHERE ledger = 'compensation'), 0) AS subsidy_payable,
    coalesce(sum(payable) FILTER (WHERE ledger = 'compensation' AND state = 'paid'), 0)
      AS subsidy_paid,
    max(total) FILTER (WHERE ledger = 'compensation' AND period = :year_label) AS entitlement,
    coalesce(sum(payable) FILTER (WHERE ledger = 'insurance'), 0) AS fund_payable
  FROM (
    SELECT r.payload::jsonb ->> 'period' AS period, st.state,
      CASE WHEN r.key LIKE 'ins-%' THEN 'insurance' WHEN r.key LIKE 'perf-%' THEN 'performance'
        ELSE 'compensation' END AS ledger,
      ((r.payload::jsonb ->> 'results_json')::jsonb -> 'totals' ->> 'payable')::numeric
        AS payable,
      ((r.payload::jsonb ->> 'results_json')::jsonb -> 'totals' ->> 'total')::numeric AS total
    FROM {s}.inp_facts r
    CROSS JOIN LATERAL (
      SELECT x.payload::jsonb ->> 'state' AS state FROM {s}.inp_facts x
      WHERE x.kind = 'payout_state' AND x.key = r.key
      ORDER BY x.notification_id DESC LIMIT 1
    ) st
    WHERE r.kind = 'payout_run' AND r.year = :year AND st.state IN ({approved})
  ) approved_runs
) runs
LEFT JOIN LATERAL (
  SELECT
    ((r.payload::jsonb ->> 'results_json')::jsonb -> 'totals' ->> 'budget')::numeric AS budget,
    ((r.payload::jsonb ->> 'results_json')::jsonb -> 'totals' ->> 'spending')::numeric
      AS spending,
    (r.payload::jsonb ->> 'period') = :fund_year AS settled
  FROM {s}.inp_facts r
  WHERE r.kind = 'payout_run' AND r.year = :year AND r.key LIKE 'ins-%'
    AND (SELECT x.payload::jsonb ->> 'state' FROM {s}.inp_facts x
         WHERE x.kind = 'payout_state' AND x.key = r.key
         ORDER BY x.notification_id DESC LIMIT 1) IN ({approved})
  ORDER BY (r.payload::jsonb ->> 'period') = :fund_year DESC, r.notification_id DESC
  LIMIT 1
) fund ON true"""


def figures(conn: Connection, year: int, names: list[str] | None = None) -> list[CountyFigures]:
    """Every county's figures for `year` (see the module docstring), by one query."""
    names = counties(conn) if names is None else names
    if not names:
        return []
    for name in names:
        if not _SCHEMA.fullmatch(name):
            raise ValueError(f"not a county schema name: {name!r}")
    suffixes = _cube_suffixes(conn, names)
    sql = " UNION ALL ".join(_branch(s, suffixes[s]) for s in names) + " ORDER BY county"
    params = {
        "year": year,
        "year_label": str(year),
        "fund_year": f"ins-{year}",
        "first_month": f"{year}-01",
        "last_month": f"{year}-12",
    }
    return [_figures(row) for row in conn.execute(text(sql), params).mappings()]


def _figures(row: Any) -> CountyFigures:
    def money(value: Any) -> Decimal | None:
        return None if value is None else Decimal(value).quantize(Decimal("0.01"))

    return CountyFigures(
        county=row["county"],
        log_head=int(row["log_head"]),
        cube_position=int(row["cube_position"]),
        records=int(row["records"]),
        basic_medical=eu(int(row["medical_e8"])),
        basic_public_health=eu(int(row["public_e8"])),
        non_compliant_public_health=eu(int(row["non_compliant_e8"])),
        subsidy_payable=money(row["subsidy_payable"]) or Decimal("0.00"),
        subsidy_paid=money(row["subsidy_paid"]) or Decimal("0.00"),
        subsidy_entitlement=money(row["entitlement"]),
        fund_budget=money(row["fund_budget"]),
        fund_spending=money(row["fund_spending"]),
        fund_payable=money(row["fund_payable"]) or Decimal("0.00"),
        fund_settled=bool(row["fund_settled"]),
    )

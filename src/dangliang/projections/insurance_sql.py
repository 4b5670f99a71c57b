"""The insurance fund's projection in SQL (`insurance_cube`): the bulk-imported events read
straight from the library's stored JSON (`json_extract` on SQLite, `jsonb` on PostgreSQL) into
the claim and enrolment rows, their deltas, and the merge of new deltas into the current sums.
Kept equal to the mapper path (`insurance_cube.change_of`) by the tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

_SETTLED_FIELDS = (
    "claim_id",
    "insured_ref",
    "community_code",
    "institution_code",
    "out_of_area",
    "settled_on",
    "fund_fen",
    "import_ref",
)
_RECORDED_FIELDS = (
    "insured_ref",
    "from_month",
    "insurance_type",
    "birth_date",
    "home",
    "community_code",
    "to_month",
    "import_ref",
)
_DATES = ("settled_on", "birth_date")  # stored as {"_type_": "date_iso", "_data_": "…"}


def _json_rows(dialect: str, events: str, fields: tuple[str, ...]) -> tuple[str, str]:
    """`(WITH clause, SELECT nid, <fields>)` of the events of topic `:topic` with ids in
    (start, stop]; the WITH clause is empty on SQLite."""
    paths = {name: [name, "_data_"] if name in _DATES else [name] for name in fields}
    if dialect == "postgresql":
        columns = ", ".join(
            "j" + "".join(f"->'{p}'" for p in path[:-1]) + f"->>'{path[-1]}' AS {name}"
            for name, path in paths.items()
        )
        # A materialised CTE: each event's JSON parsed once. (Not a subquery in FROM: Citus
        # 13.2 deparses an INSERT … SELECT from a subquery into a single-shard table — a county
        # schema's — with an empty "IS NOT NULL" filter, which the worker rejects.)
        return (
            "WITH e AS MATERIALIZED (SELECT notification_id, "
            f"convert_from(state, 'UTF8')::jsonb AS j FROM {events} "
            "WHERE notification_id > :start AND notification_id <= :stop "
            "AND topic = :topic) ",
            f"SELECT notification_id AS nid, {columns} FROM e",
        )
    columns = ", ".join(
        f"json_extract(j, '$.{'.'.join(path)}') AS {name}" for name, path in paths.items()
    )
    return (
        "",
        f"SELECT id AS nid, {columns} FROM (SELECT rowid AS id, CAST(state AS TEXT) AS j "
        f"FROM {events} WHERE rowid > :start AND rowid <= :stop AND topic = :topic)",
    )


def settled_sql(dialect: str, claims: str, events: str) -> str:
    pg = dialect == "postgresql"
    boolean = "out_of_area::boolean" if pg else "out_of_area"
    fen = "fund_fen::bigint" if pg else "fund_fen"
    with_clause, rows = _json_rows(dialect, events, _SETTLED_FIELDS)
    return (
        f"{with_clause}INSERT INTO {claims} (notification_id, claim_id, insured_ref, "
        "community_code, institution_code, out_of_area, settled_on, month, fund_fen, state, "
        "import_ref, reason) "
        "SELECT nid, claim_id, insured_ref, community_code, institution_code, "
        f"{boolean}, settled_on, substr(settled_on, 1, 7), {fen}, 'recorded', import_ref, NULL "
        f"FROM ({rows}) AS s"
    )


def recorded_sql(dialect: str, enrolments: str, events: str) -> str:
    names = ", ".join(_RECORDED_FIELDS)
    with_clause, rows = _json_rows(dialect, events, _RECORDED_FIELDS)
    return (
        f"{with_clause}INSERT INTO {enrolments} (notification_id, {names}, state, reason) "
        f"SELECT nid, {names}, 'recorded', NULL FROM ({rows}) AS r"
    )


def spending_sql(t: Any) -> str:
    """Each settled claim of the range adds its amount to its cell."""
    return (
        f"INSERT INTO {t.spending_deltas.name} "
        "(notification_id, community_code, month, out_of_area, delta_fen) "
        "SELECT notification_id, community_code, month, out_of_area, fund_fen "
        f"FROM {t.claims.name} WHERE notification_id > :start AND notification_id <= :stop "
        "AND state = 'recorded'"
    )


def points_sql(dialect: str, t: Any) -> str:
    """`change_points` of each recorded enrolment of the range, on month numbers
    (year × 12 + month − 1): fi its first month, ti the month its band turns over 60, ei the
    month after its last (NULL while open). Kept equal to `change_points` by the tests."""

    def index(month: str) -> str:
        year, number = f"substr({month}, 1, 4)", f"substr({month}, 6, 2)"
        return f"(CAST({year} AS INTEGER) * 12 + CAST({number} AS INTEGER) - 1)"

    def label(i: str) -> str:
        if dialect == "postgresql":
            year, number = f"lpad(({i} / 12)::text, 4, '0')", f"lpad(({i} % 12 + 1)::text, 2, '0')"
            return f"({year} || '-' || {number})"
        return f"printf('%04d-%02d', {i} / 12, {i} % 12 + 1)"

    turn = (
        "((CAST(substr(birth_date, 1, 4) AS INTEGER) + 61) * 12 "
        "+ CAST(substr(birth_date, 6, 2) AS INTEGER) - 1 "
        "+ CASE WHEN substr(birth_date, 9, 2) <> '01' THEN 1 ELSE 0 END)"
    )
    return (
        f"INSERT INTO {t.enrolment_deltas.name} "
        "(notification_id, community_code, insurance_type, age_band, month, delta) "
        "SELECT nid, community_code, insurance_type, "
        "CASE k WHEN 0 THEN CASE WHEN fi >= ti THEN 'over_60' ELSE 'to_60' END "
        "WHEN 1 THEN 'to_60' WHEN 2 THEN 'over_60' "
        "ELSE CASE WHEN ei - 1 >= ti THEN 'over_60' ELSE 'to_60' END END, "
        f"CASE k WHEN 0 THEN from_month WHEN 3 THEN {label('ei')} ELSE {label('ti')} END, "
        "CASE WHEN k IN (0, 2) THEN 1 ELSE -1 END "
        "FROM (SELECT notification_id AS nid, community_code, insurance_type, from_month, "
        f"{index('from_month')} AS fi, {turn} AS ti, "
        f"CASE WHEN to_month IS NULL THEN NULL ELSE {index('to_month')} + 1 END AS ei "
        f"FROM {t.enrolments.name} WHERE notification_id > :start "
        "AND notification_id <= :stop AND state = 'recorded') AS e "
        "CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) AS p "
        "WHERE k = 0 OR (k IN (1, 2) AND fi < ti AND (ei IS NULL OR ti < ei)) "
        "OR (k = 3 AND ei IS NOT NULL)"
    )


ANALYZE_AFTER = 50_000  # deltas added in one catch-up after which the statistics are refreshed


def merge(
    conn: Connection,
    deltas: Table,
    sums: Table,
    cell: tuple[str, ...],
    total: str,
    after_seq: int,
) -> None:
    """Add the deltas written since `after_seq` to the current sums (none: one look-up). After
    a large batch PostgreSQL's statistics are refreshed: a server may run without autovacuum,
    and a stale plan scans millions of deltas for each later small merge (BENCHMARKS.md)."""
    added = int(conn.scalar(select(func.max(deltas.c.seq))) or 0) - after_seq
    if added <= 0:
        return
    delta = "delta_fen" if total == "fund_fen" else "delta"
    grouped = (
        select(*(deltas.c[k] for k in cell), func.sum(deltas.c[delta]))
        .where(deltas.c.seq > after_seq)
        .group_by(*(deltas.c[k] for k in cell))
    )
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = make(sums).from_select([*cell, total], grouped)
    stmt = stmt.on_conflict_do_update(
        index_elements=[sums.c[k] for k in cell],
        set_={total: sums.c[total] + stmt.excluded[total]},
    )
    conn.execute(stmt)
    if added >= ANALYZE_AFTER and conn.dialect.name == "postgresql":
        for table in (deltas, sums):
            conn.execute(text(f'ANALYZE "{table.name}"'))

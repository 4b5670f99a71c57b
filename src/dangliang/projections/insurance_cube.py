"""The insurance fund's large facts (医保结算与参保登记) as the log stood at any position.

One catch-up projection keeps, for claims (one `Claim` per settlement):

- `ins_claims`: one row per version of a claim (settled, corrected, voided — a voided row
  keeps the values it takes out), for listing the claims behind a figure as they stood;
- `ins_spending_deltas`: one row per change to a cell community × month × out-of-area — a
  settlement adds its fund amount; a correction moves the old amount out of the old cell and
  the new one into the new cell; a void takes it out. Each row keeps its notification id, so
  "as the log stood at position P" is `notification_id <= P`, with no replay;
- `ins_spending`: the current sums per cell, for reads at the head.

And for enrolment (one `Enrolment` per person and start month), change points rather than
people × months, so that a year's counts never expand every month of every person:

- `ins_enrolments`: one row per version, for listing;
- `ins_enrolment_deltas`: +1 at the start month in that month's age band; −1 in `to_60` and
  +1 in `over_60` at the month the person's band turns (`turning_month`) if it turns before
  the end; −1 at the month after the last one (nothing while it is open). A correction takes
  the old points out and puts the new ones in; a void takes them out;
- `ins_enrolment_changes`: the current sums per community × insurance type × band × month.
  People enrolled in month m are the sum of the changes with month ≤ m, taken when read.

Like the equivalents cube, the bulk-imported events (`Claim.Settled`, `Enrolment.Recorded`:
millions a year) are read straight from the stored JSON in SQL (`json_extract` on SQLite,
`jsonb` on PostgreSQL) — a catch-up runs no Python per event; the rare corrections and voids
go through the library's mapper, with the state before them folded from the record's own
events. `InsuranceProjection(bulk_sql=False)` maps every event in Python (the same tables:
tested). The queries are in `insurance_queries`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.coverage import age_band, month_after
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.equivalents import set_active_suffix
from dangliang.projections.tracking import forget_tracking, notifications_in, topic_of

SETTLED = topic_of(Claim.Settled)
RECORDED = topic_of(Enrolment.Recorded)
CHANGES = tuple(
    topic_of(c) for c in (Claim.Corrected, Claim.Voided, Enrolment.Corrected, Enrolment.Voided)
)
STATES = ("recorded", "corrected", "voided")  # of a row in ins_claims / ins_enrolments

SPENDING_CELL = ("community_code", "month", "out_of_area")
ENROLMENT_CELL = ("community_code", "insurance_type", "age_band", "month")
CLAIM_VALUES = ("community_code", "institution_code", "out_of_area", "settled_on", "fund_fen")
ENROLMENT_VALUES = ("insurance_type", "birth_date", "home", "community_code", "to_month")


@dataclass(frozen=True)
class InsuranceTables:
    metadata: MetaData
    claims: Table
    spending_deltas: Table
    spending: Table
    enrolments: Table
    enrolment_deltas: Table
    enrolment_changes: Table
    tracking_name: str  # the projection's name in the tracking table


def tables(suffix: str = "") -> InsuranceTables:
    """The tables (`ins_claims`, …); a suffix names a second set (`ins_claims_<suffix>`)."""
    md = MetaData()
    tail = f"_{suffix}" if suffix else ""
    rowid = BigInteger().with_variant(Integer(), "sqlite")  # SQLite: the rowid itself
    claims = Table(
        f"ins_claims{tail}",
        md,
        Column("notification_id", rowid, primary_key=True, autoincrement=False),
        Column("claim_id", String(64), nullable=False),
        Column("insured_ref", String(64), nullable=False),
        Column("community_code", String(64), nullable=False),
        Column("institution_code", String(64), nullable=False),
        Column("out_of_area", Boolean, nullable=False),
        Column("settled_on", String(10), nullable=False),
        Column("month", String(7), nullable=False),
        Column("fund_fen", BigInteger, nullable=False),
        Column("state", String(16), nullable=False),
        Column("import_ref", String(200), nullable=False),
        Column("reason", Text),
    )
    spending_deltas = Table(
        f"ins_spending_deltas{tail}",
        md,
        Column("seq", rowid, primary_key=True, autoincrement=True),
        Column("notification_id", BigInteger, nullable=False),
        Column("community_code", String(64), nullable=False),
        Column("month", String(7), nullable=False),
        Column("out_of_area", Boolean, nullable=False),
        Column("delta_fen", BigInteger, nullable=False),
    )
    spending = Table(
        f"ins_spending{tail}",
        md,
        Column("community_code", String(64), primary_key=True),
        Column("month", String(7), primary_key=True),
        Column("out_of_area", Boolean, primary_key=True),
        Column("fund_fen", BigInteger, nullable=False),
    )
    enrolments = Table(
        f"ins_enrolments{tail}",
        md,
        Column("notification_id", rowid, primary_key=True, autoincrement=False),
        Column("insured_ref", String(64), nullable=False),
        Column("from_month", String(7), nullable=False),
        Column("insurance_type", String(16), nullable=False),
        Column("birth_date", String(10), nullable=False),
        Column("home", String(200), nullable=False),
        Column("community_code", String(64), nullable=False),
        Column("to_month", String(7)),
        Column("state", String(16), nullable=False),
        Column("import_ref", String(200), nullable=False),
        Column("reason", Text),
    )
    enrolment_deltas = Table(
        f"ins_enrolment_deltas{tail}",
        md,
        Column("seq", rowid, primary_key=True, autoincrement=True),
        Column("notification_id", BigInteger, nullable=False),
        Column("community_code", String(64), nullable=False),
        Column("insurance_type", String(16), nullable=False),
        Column("age_band", String(8), nullable=False),
        Column("month", String(7), nullable=False),
        Column("delta", Integer, nullable=False),
    )
    enrolment_changes = Table(
        f"ins_enrolment_changes{tail}",
        md,
        Column("community_code", String(64), primary_key=True),
        Column("insurance_type", String(16), primary_key=True),
        Column("age_band", String(8), primary_key=True),
        Column("month", String(7), primary_key=True),
        Column("delta", BigInteger, nullable=False),
    )
    return InsuranceTables(
        md,
        claims,
        spending_deltas,
        spending,
        enrolments,
        enrolment_deltas,
        enrolment_changes,
        f"insurance{tail}",
    )


DEFAULT_TABLES = tables()

_INDEXES = (  # (table attribute, index suffix, columns)
    ("claims", "claim", "claim_id, notification_id"),  # a claim's versions
    ("claims", "cell", "community_code, month, notification_id"),  # claims_in
    ("enrolments", "person", "insured_ref, from_month, notification_id"),
    ("enrolments", "community", "community_code, from_month, notification_id"),
    ("spending_deltas", "position", "notification_id"),  # as-of: the changes since P
    ("enrolment_deltas", "position", "notification_id"),
)


class InsuranceProjection:
    """Claims and enrolment of the insurance fund, with as-of reads (see the module)."""

    version = "1"  # recorded in projection_versions; bump when the tables change
    batch_size = 250_000  # notification ids per transaction (rows + tracking together)
    topics: tuple[str, ...] = (SETTLED, RECORDED, *CHANGES)

    def __init__(self, suffix: str = "", *, bulk_sql: bool = True):
        self.t = tables(suffix) if suffix else DEFAULT_TABLES
        self.name = self.t.tracking_name
        self.bulk_sql = bulk_sql  # False: every event through the mapper (for comparison)

    def create(self, engine: Engine, *, indexes: bool = True) -> None:
        """Create the tables; a rebuild asks for the indexes afterwards (`add_indexes`)."""
        with engine.begin() as conn:
            self._create(conn, indexes=indexes)

    def add_indexes(self, engine: Engine) -> None:
        with engine.begin() as conn:
            self._add_indexes(conn)

    def drop(self, engine: Engine) -> None:
        self.t.metadata.drop_all(engine)
        with engine.begin() as conn:
            forget_tracking(conn, self.name)

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        if not inspect(conn).has_table(self.t.claims.name):
            self._create(conn, indexes=True)  # a database made before this projection
        t, dialect = self.t, conn.dialect.name
        spent_before = int(conn.scalar(select(func.max(t.spending_deltas.c.seq))) or 0)
        points_before = int(conn.scalar(select(func.max(t.enrolment_deltas.c.seq))) or 0)
        params = {"start": start, "stop": stop}
        topics = CHANGES
        if self.bulk_sql:
            events = log.events_table
            claims_sql = _settled_sql(dialect, t.claims.name, events)
            conn.execute(text(claims_sql), {**params, "topic": SETTLED})
            enrolments_sql = _recorded_sql(dialect, t.enrolments.name, events)
            conn.execute(text(enrolments_sql), {**params, "topic": RECORDED})
            conn.execute(text(_spending_sql(t)), params)
            conn.execute(text(_points_sql(dialect, t)), params)
        else:
            topics = self.topics
        self._apply_events(conn, log, start, stop, topics)
        _merge(conn, t.spending_deltas, t.spending, SPENDING_CELL, "fund_fen", spent_before)
        _merge(
            conn, t.enrolment_deltas, t.enrolment_changes, ENROLMENT_CELL, "delta", points_before
        )

    def _create(self, conn: Connection, *, indexes: bool) -> None:
        self.t.metadata.create_all(conn)
        set_active_suffix(conn, self.version, name=self.name)
        if indexes:
            self._add_indexes(conn)

    def _add_indexes(self, conn: Connection) -> None:
        for attribute, label, columns in _INDEXES:
            table = getattr(self.t, attribute).name
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {table}_{label} ON {table} ({columns})"))

    def _apply_events(
        self, conn: Connection, log: EventLog, start: int, stop: int, topics: tuple[str, ...]
    ) -> None:
        claims: list[dict[str, Any]] = []
        spent: list[dict[str, Any]] = []
        enrolments: list[dict[str, Any]] = []
        points: list[dict[str, Any]] = []
        for n in notifications_in(log, start, stop, topics):
            e = log.mapper.to_domain_event(n)
            row, deltas = change_of(log, e)
            claim = isinstance(e, Claim.Settled | Claim.Corrected | Claim.Voided)
            (claims if claim else enrolments).append({**row, "notification_id": n.id})
            (spent if claim else points).extend({**d, "notification_id": n.id} for d in deltas)
        for table, rows in (
            (self.t.claims, claims),
            (self.t.spending_deltas, spent),
            (self.t.enrolments, enrolments),
            (self.t.enrolment_deltas, points),
        ):
            if rows:
                conn.execute(insert(table), rows)


# ---- one event through the mapper ---------------------------------------------------------


def change_of(log: EventLog, e: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The version row of a claim or enrolment event (`ins_claims` / `ins_enrolments`) and
    its deltas (spending, or enrolment change points)."""
    claim = isinstance(e, Claim.Settled | Claim.Corrected | Claim.Voided)
    deltas = _spent if claim else _points
    if isinstance(e, Claim.Settled | Enrolment.Recorded):
        new = _values(e)
        return _row(new, "recorded", e, None), deltas(new, 1)
    old = _before(log, e.originator_id, e.originator_version)
    if isinstance(e, Claim.Voided | Enrolment.Voided):
        return _row(old, "voided", e, e.reason), deltas(old, -1)
    new = {**old, **_values(e)}
    return _row(new, "corrected", e, e.reason), deltas(old, -1) + deltas(new, 1)


def change_points(
    from_month: str, to_month: str | None, birth_date: date
) -> list[tuple[str, str, int]]:
    """(month, age band, ±1) of one enrolment: in at its first month, across bands when the
    person turns over 60 (if before the end), out the month after its last."""
    first = age_band(birth_date, from_month)
    points = [(from_month, first, 1)]
    turn = turning_month(birth_date)
    if first == "to_60" and (to_month is None or turn <= to_month):
        points += [(turn, "to_60", -1), (turn, "over_60", 1)]
    if to_month is not None:
        points.append((month_after(to_month), age_band(birth_date, to_month), -1))
    return points


def turning_month(birth_date: date) -> str:
    """The first month in `over_60`: the month of the 61st birthday when it is on the 1st,
    else the month after (`coverage.age_band`: age in full years on the month's first day)."""
    birthday_month = f"{birth_date.year + 61:04d}-{birth_date.month:02d}"
    return month_after(birthday_month, 1 if birth_date.day > 1 else 0)


def _values(e: Any) -> dict[str, Any]:
    """The values an event sets (a first event also the record's identity)."""
    if isinstance(e, Claim.Settled | Claim.Corrected):
        found = {k: getattr(e, k) for k in CLAIM_VALUES}
        found["out_of_area"], found["fund_fen"] = bool(e.out_of_area), int(e.fund_fen)
        found["settled_on"] = e.settled_on.isoformat()
        found["month"] = found["settled_on"][:7]
        if isinstance(e, Claim.Settled):
            found.update(claim_id=e.claim_id, insured_ref=e.insured_ref)
        return found
    if isinstance(e, Enrolment.Recorded | Enrolment.Corrected):
        found = {k: getattr(e, k) for k in ENROLMENT_VALUES}
        found["birth_date"] = e.birth_date.isoformat()
        if isinstance(e, Enrolment.Recorded):
            found.update(insured_ref=e.insured_ref, from_month=e.from_month)
        return found
    return {}  # a void changes no value


def _before(log: EventLog, originator_id: Any, version: int) -> dict[str, Any]:
    """A record's values just before its event at `version`, folded from its own events."""
    state: dict[str, Any] = {}
    for stored in log.app_recorder.select_events(originator_id, lte=version - 1):
        state.update(_values(log.mapper.to_domain_event(stored)))
    return state


def _row(values: dict[str, Any], state: str, e: Any, reason: str | None) -> dict[str, Any]:
    return {**values, "state": state, "import_ref": e.import_ref, "reason": reason}


def _spent(row: dict[str, Any], sign: int) -> list[dict[str, Any]]:
    return [{**{k: row[k] for k in SPENDING_CELL}, "delta_fen": sign * row["fund_fen"]}]


def _points(row: dict[str, Any], sign: int) -> list[dict[str, Any]]:
    born = date.fromisoformat(row["birth_date"])
    return [
        {
            "community_code": row["community_code"],
            "insurance_type": row["insurance_type"],
            "age_band": band,
            "month": month,
            "delta": sign * delta,
        }
        for month, band, delta in change_points(row["from_month"], row["to_month"], born)
    ]


# ---- the bulk events in SQL ---------------------------------------------------------------


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
_RECORDED_FIELDS = ("insured_ref", "from_month", *ENROLMENT_VALUES, "import_ref")
_DATES = ("settled_on", "birth_date")  # stored as {"_type_": "date_iso", "_data_": "…"}


def _json_rows(dialect: str, events: str, fields: tuple[str, ...]) -> str:
    """`SELECT nid, <fields>` of the events of topic `:topic` with ids in (start, stop]."""
    paths = {name: [name, "_data_"] if name in _DATES else [name] for name in fields}
    if dialect == "postgresql":
        columns = ", ".join(
            "j" + "".join(f"->'{p}'" for p in path[:-1]) + f"->>'{path[-1]}' AS {name}"
            for name, path in paths.items()
        )
        return (
            f"SELECT notification_id AS nid, {columns} FROM (SELECT notification_id, "
            f"convert_from(state, 'UTF8')::jsonb AS j FROM {events} "
            "WHERE notification_id > :start AND notification_id <= :stop "
            "AND topic = :topic OFFSET 0) AS e"  # OFFSET 0: each event's JSON parsed once
        )
    columns = ", ".join(
        f"json_extract(j, '$.{'.'.join(path)}') AS {name}" for name, path in paths.items()
    )
    return (
        f"SELECT id AS nid, {columns} FROM (SELECT rowid AS id, CAST(state AS TEXT) AS j "
        f"FROM {events} WHERE rowid > :start AND rowid <= :stop AND topic = :topic)"
    )


def _settled_sql(dialect: str, claims: str, events: str) -> str:
    pg = dialect == "postgresql"
    boolean = "out_of_area::boolean" if pg else "out_of_area"
    fen = "fund_fen::bigint" if pg else "fund_fen"
    return (
        f"INSERT INTO {claims} (notification_id, claim_id, insured_ref, community_code, "
        "institution_code, out_of_area, settled_on, month, fund_fen, state, import_ref, reason) "
        "SELECT nid, claim_id, insured_ref, community_code, institution_code, "
        f"{boolean}, settled_on, substr(settled_on, 1, 7), {fen}, 'recorded', import_ref, NULL "
        f"FROM ({_json_rows(dialect, events, _SETTLED_FIELDS)}) AS s"
    )


def _recorded_sql(dialect: str, enrolments: str, events: str) -> str:
    names = ", ".join(_RECORDED_FIELDS)
    return (
        f"INSERT INTO {enrolments} (notification_id, {names}, state, reason) "
        f"SELECT nid, {names}, 'recorded', NULL "
        f"FROM ({_json_rows(dialect, events, _RECORDED_FIELDS)}) AS r"
    )


def _spending_sql(t: InsuranceTables) -> str:
    """Each settled claim of the range adds its amount to its cell."""
    return (
        f"INSERT INTO {t.spending_deltas.name} "
        "(notification_id, community_code, month, out_of_area, delta_fen) "
        "SELECT notification_id, community_code, month, out_of_area, fund_fen "
        f"FROM {t.claims.name} WHERE notification_id > :start AND notification_id <= :stop "
        "AND state = 'recorded'"
    )


def _points_sql(dialect: str, t: InsuranceTables) -> str:
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


def _merge(
    conn: Connection,
    deltas: Table,
    sums: Table,
    cell: tuple[str, ...],
    total: str,
    after_seq: int,
) -> None:
    """Add the deltas written since `after_seq` to the current sums."""
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

"""The insurance fund's large facts (医保结算与参保登记) as the log stood at any position.

One catch-up projection keeps, for claims (one `Claim` per settlement):

- `ins_claims`: one row per version of a claim (a voided row keeps the values it takes out);
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
- `ins_enrolment_changes`: the current sums per community × insurance type × band × month
  (people enrolled in month m: the sum of the changes with month ≤ m, taken when read).

Like the equivalents cube, the bulk-imported events (`Claim.Settled`, `Enrolment.Recorded`:
millions a year) are read straight from the stored JSON in SQL (`json_extract` on SQLite,
`jsonb` on PostgreSQL) — a catch-up runs no Python per event; the rare corrections and voids
go through the library's mapper, with the state before them folded from the record's own
events (`bulk_sql=False` maps every event in Python: the same tables, tested). The queries
are in `insurance_queries`.
"""

from __future__ import annotations

import functools
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

from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.coverage import age_band, month_after
from dangliang.ledger.eventlog import EventLog
from dangliang.projections import insurance_sql as sql
from dangliang.projections.equivalents import set_active_suffix
from dangliang.projections.tracking import (
    create_missing,
    forget_tracking,
    notifications_in,
    topic_of,
)

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


@functools.cache
def tables(suffix: str = "") -> InsuranceTables:
    """The tables (`ins_claims`, …); a suffix names a second set (`ins_claims_<suffix>`).
    Defined once per process and suffix (SQLAlchemy's compiled statements are cached on them)."""
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
        self.t = tables(suffix)
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
            claims_sql = sql.settled_sql(dialect, t.claims.name, events)
            conn.execute(text(claims_sql), {**params, "topic": SETTLED})
            enrolments_sql = sql.recorded_sql(dialect, t.enrolments.name, events)
            conn.execute(text(enrolments_sql), {**params, "topic": RECORDED})
            conn.execute(text(sql.spending_sql(t)), params)
            conn.execute(text(sql.points_sql(dialect, t)), params)
        else:
            topics = self.topics
        self._apply_events(conn, log, start, stop, topics)
        sql.merge(conn, t.spending_deltas, t.spending, SPENDING_CELL, "fund_fen", spent_before)
        sql.merge(
            conn, t.enrolment_deltas, t.enrolment_changes, ENROLMENT_CELL, "delta", points_before
        )

    def _create(self, conn: Connection, *, indexes: bool) -> None:
        create_missing(conn, self.t.metadata)
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

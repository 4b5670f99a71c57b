"""Registry: the reference data every import is checked against — institutions, staff postings,
catalogue items and their dated equivalent values (with the notification that set each value,
so re-pricing and as-of queries can tell which value stood when) — and the names of the
users (`reg_users`: name → aggregate id), so listing them needs no scan of the whole log.

Values are stored as integers scaled by 10^4 (`value_e4`): exact on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    select,
)

from dangliang.domain.catalogue import CatalogueItem
from dangliang.domain.institution import Institution
from dangliang.domain.staff import Staff
from dangliang.domain.users import ApiUser
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.tracking import (
    create_missing,
    empty_tables,
    notifications_in,
    topic_of,
)

E4 = Decimal(10_000)

metadata = MetaData()

institutions = Table(
    "reg_institutions",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("parent_code", String(64)),
    Column("remote", Boolean, nullable=False),
)
headcount = Table(
    "reg_headcount",
    metadata,
    Column("institution_code", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("headcount", Integer, nullable=False),
)
staff = Table(
    "reg_staff",
    metadata,
    Column("staff_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
)
postings = Table(
    "reg_staff_postings",
    metadata,
    Column("staff_id", String(64), primary_key=True),
    Column("from_date", Date, primary_key=True),
    Column("to_date", Date),
    Column("institution_code", String(64), nullable=False),
    Column("post", String(32), nullable=False),
    Column("establishment", String(8), nullable=False),
)
items = Table(
    "reg_catalogue_items",
    metadata,
    Column("item_code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("unit", String(32), nullable=False),
)
item_values = Table(
    "reg_catalogue_values",
    metadata,
    Column("notification_id", BigInteger, primary_key=True),
    Column("item_code", String(64), nullable=False, index=True),
    Column("effective_from", Date, nullable=False),
    Column("value_e4", BigInteger, nullable=False),
    Column("reference", String(500), nullable=False),
)

users = Table(  # a user's state is their aggregate's; this only says who exists
    "reg_users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("user_id", String(36), nullable=False),
)


class RegistryProjection:
    """Reference data; small, so it is simply deleted and rebuilt when asked."""

    name = "registry"
    version = "2"  # "2": users' names. Bumped with each new table: old databases replay once
    batch_size = 1_000_000
    topics: tuple[str, ...] = tuple(
        topic_of(c)
        for c in (
            Institution.Registered,
            Institution.Described,
            Institution.HeadcountSet,
            Staff.Registered,
            Staff.Renamed,
            Staff.Posted,
            CatalogueItem.Defined,
            CatalogueItem.Described,
            CatalogueItem.ValueSet,
            ApiUser.Added,
        )
    )

    def create(self, engine: Engine) -> None:
        create_missing(engine, metadata)

    def drop(self, engine: Engine) -> None:
        empty_tables(engine, metadata, self.name)

    def process(self, conn: Connection, log: EventLog, start: int, stop: int) -> None:
        rows = Replacements()
        for n in notifications_in(log, start, stop, self.topics):
            e = log.mapper.to_domain_event(n)
            if isinstance(e, Institution.Registered | Staff.Registered | CatalogueItem.Defined):
                # Remember the code of each new aggregate: later events carry only its id.
                self._codes[e.originator_id] = (
                    e.code
                    if isinstance(e, Institution.Registered)
                    else e.staff_id
                    if isinstance(e, Staff.Registered)
                    else e.item_code
                )
            if isinstance(e, Institution.Registered | Institution.Described):
                code = (
                    e.code
                    if isinstance(e, Institution.Registered)
                    else self._institution_code(conn, e)
                )
                rows.put(
                    institutions,
                    code=code,
                    name=e.name,
                    kind=e.kind,
                    parent_code=e.parent_code,
                    remote=e.remote,
                )
            elif isinstance(e, Institution.HeadcountSet):
                code = self._institution_code(conn, e)
                rows.put(headcount, institution_code=code, year=e.year, headcount=e.headcount)
            elif isinstance(e, Staff.Registered):
                rows.put(staff, staff_id=e.staff_id, name=e.name)
            elif isinstance(e, Staff.Renamed):
                rows.put(staff, staff_id=self._staff_code(conn, e), name=e.name)
            elif isinstance(e, Staff.Posted):
                rows.put(
                    postings,
                    staff_id=self._staff_code(conn, e),
                    from_date=e.from_date,
                    to_date=e.to_date,
                    institution_code=e.institution_code,
                    post=e.post,
                    establishment=e.establishment,
                )
            elif isinstance(e, CatalogueItem.Defined | CatalogueItem.Described):
                code = (
                    e.item_code
                    if isinstance(e, CatalogueItem.Defined)
                    else self._item_code(conn, e)
                )
                rows.put(items, item_code=code, name=e.name, category=e.category, unit=e.unit)
            elif isinstance(e, ApiUser.Added):
                rows.put(users, name=e.name, user_id=str(e.originator_id))
            elif isinstance(e, CatalogueItem.ValueSet):
                rows.put(
                    item_values,
                    notification_id=n.id,
                    item_code=self._item_code(conn, e),
                    effective_from=e.effective_from,
                    value_e4=int(e.equivalent_value * E4),
                    reference=e.reference,
                )
        rows.write(conn)

    def __init__(self) -> None:
        # Follow-up events carry only the aggregate id; the code comes from the registry
        # itself. Ids are deterministic (domain/ids.py), so an id → code cache never goes stale.
        self._codes: dict[object, str] = {}

    def _institution_code(self, conn: Connection, e: object) -> str:
        return self._code(conn, e, institutions.c.code, "institution")

    def _staff_code(self, conn: Connection, e: object) -> str:
        return self._code(conn, e, staff.c.staff_id, "staff")

    def _item_code(self, conn: Connection, e: object) -> str:
        return self._code(conn, e, items.c.item_code, "catalogue-item")

    def _code(self, conn: Connection, e: object, column: Column, kind: str) -> str:  # type: ignore[type-arg]
        from dangliang.domain import ids

        originator_id = e.originator_id  # type: ignore[attr-defined]
        if originator_id in self._codes:
            return self._codes[originator_id]
        make = {
            "institution": ids.institution_id,
            "staff": ids.staff_id,
            "catalogue-item": ids.catalogue_item_id,
        }[kind]
        for (code,) in conn.execute(select(column)):
            self._codes[make(code)] = code
        return self._codes[originator_id]


class Replacements:
    """A batch's rows, written together at its end: each row replaces the row with its
    primary key (every event sets all of its row's columns: a name, a posting, a value), so
    of several rows with one key in a batch the last stands, as if each had been written in
    turn; per table one `DELETE` of the keys and one `INSERT`, each for all the rows."""

    def __init__(self) -> None:
        self._rows: dict[Table, dict[tuple[Any, ...], dict[str, Any]]] = {}

    def put(self, table: Table, **row: Any) -> None:
        key = tuple(row[column.name] for column in table.primary_key)
        self._rows.setdefault(table, {})[key] = row

    def write(self, conn: Connection) -> None:
        for table, rows in self._rows.items():
            keys = [column.name for column in table.primary_key]
            conn.execute(
                delete(table).where(*(table.c[k] == bindparam(f"key_{k}") for k in keys)),
                [{f"key_{k}": row[k] for k in keys} for row in rows.values()],
            )
            conn.execute(table.insert(), list(rows.values()))
        self._rows = {}


@dataclass
class Registry:
    """The reference data in memory, for validating a file of any size against it."""

    institutions: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    staff_postings: dict[str, list[tuple[date, date | None, str]]] = field(default_factory=dict)
    item_categories: dict[str, str] = field(default_factory=dict)
    item_value_starts: dict[str, list[date]] = field(default_factory=dict)
    staff_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection) -> Registry:
        reg = cls(institutions=load_institutions(conn))
        for sid, name in conn.execute(select(staff.c.staff_id, staff.c.name)):
            reg.staff_names[sid] = name
        for sid, from_date, to_date, inst in conn.execute(
            select(
                postings.c.staff_id,
                postings.c.from_date,
                postings.c.to_date,
                postings.c.institution_code,
            ).order_by(postings.c.from_date)
        ):
            reg.staff_postings.setdefault(sid, []).append((from_date, to_date, inst))
        for code, category in conn.execute(select(items.c.item_code, items.c.category)):
            reg.item_categories[code] = category
        for code, start in conn.execute(
            select(item_values.c.item_code, item_values.c.effective_from).distinct()
        ):
            reg.item_value_starts.setdefault(code, []).append(start)
        for starts in reg.item_value_starts.values():
            starts.sort()
        return reg

    def institution_of(self, staff_id: str, day: date) -> str | None:
        for from_date, to_date, inst in self.staff_postings.get(staff_id, ()):
            if from_date <= day and (to_date is None or day <= to_date):
                return inst
        return None

    def first_value_date(self, item_code: str) -> date | None:
        starts = self.item_value_starts.get(item_code)
        return starts[0] if starts else None

    def has_value_on(self, item_code: str, day: date) -> bool:
        starts = self.item_value_starts.get(item_code, [])
        return bisect_right(starts, day) > 0


def load_institutions(conn: Connection) -> dict[str, tuple[str, str | None]]:
    """code → (kind, parent code): what the API checks on every request, without the staff
    postings and catalogue values a whole `Registry` loads."""
    query = select(institutions.c.code, institutions.c.kind, institutions.c.parent_code)
    return {code: (kind, parent) for code, kind, parent in conn.execute(query)}


def user_ids(conn: Connection) -> list[str]:
    """The aggregate id of every user ever added (users are never removed, only disabled)."""
    return [str(u) for u in conn.execute(select(users.c.user_id).order_by(users.c.name)).scalars()]


def institution_names(conn: Connection) -> dict[str, str]:
    """Institution code → name (the registry's small table; what pages label codes with)."""
    query = select(institutions.c.code, institutions.c.name)
    return {code: name for code, name in conn.execute(query)}


def item_names(conn: Connection) -> dict[str, str]:
    """Catalogue item code → name."""
    query = select(items.c.item_code, items.c.name)
    return {code: name or "" for code, name in conn.execute(query)}

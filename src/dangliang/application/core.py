"""The core every use case shares: the event log, the read-model database and the
projections, kept caught up (read-your-writes), and the reads of what is in force."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, MetaData, func, select

from dangliang.application.accounts import Users
from dangliang.application.computation_cache import ComputationCache
from dangliang.application.sessions import WebSessions
from dangliang.domain.errors import DomainError, NotFound
from dangliang.domain.payout import period_of_run
from dangliang.ledger.eventlog import EventLog
from dangliang.ledger.exclusive import exclusive
from dangliang.projections import equivalents as eq
from dangliang.projections import facts as inp
from dangliang.projections import registry as reg
from dangliang.projections.equivalents_queries import position_at, recorded_at
from dangliang.projections.facts_queries import PolicyInForce, RunRecord, policy_at, runs_at
from dangliang.projections.insurance_cube import InsuranceProjection
from dangliang.projections.tracking import (
    Projection,
    catch_up,
    ensure_tracking_row,
    locked_position,
    move_position,
    position,
    positions,
)
from dangliang.settings import Database

Progress = Callable[[str, int, int], Any]


@dataclass
class Status:
    database: str
    head: int
    projections: dict[str, int]
    counts: dict[str, int]


class Core:
    """The stores and the read models; each use-case area (`data_entry`, `policy_admin`,
    `computations`, `pay_runs`, `audit`) adds its commands and queries to it."""

    def __init__(self, database: Database, log: EventLog, engine: Engine, write_engine: Engine):
        self.database = database
        self.log = log
        self.engine = engine  # reads
        self.write_engine = write_engine  # projection writes (serialised on SQLite)
        self.registry_projection = reg.RegistryProjection()
        self.inputs_projection = inp.InputsProjection()
        self.users = Users(log, self.institutions, user_ids=self._user_ids)
        self.sessions = WebSessions(engine, write_engine)
        self.computation_cache = ComputationCache()  # by log position (computations)

    def one_at_a_time(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Hold the county's lock `name` across processes for a block: from a check that
        reads several aggregates to the append that relies on it (`ledger.exclusive`)."""
        return exclusive(self.database, self.write_engine, name)

    # ---- projections ---------------------------------------------------------------------

    def equivalents_projection(self) -> eq.EquivalentsProjection:
        """The active version of the equivalents cube (a blue-green rebuild switches it)."""
        with self.engine.connect() as conn:
            return eq.EquivalentsProjection(eq.active_suffix(conn))

    def projections(self) -> list[Projection]:
        return [
            self.registry_projection,
            self.inputs_projection,
            self.equivalents_projection(),
            InsuranceProjection(),
        ]

    def catch_up(self, progress: Progress | None = None) -> int:
        """Read-your-writes: bring every read model up to the log's head; return the head."""
        head = self.log.head()
        for p in self._behind(self.projections(), head):
            report = functools.partial(progress, p.name) if progress else None
            catch_up(self.write_engine, self.log, p, until=head, progress=report)
        return head

    def _behind(self, projections: list[Projection], head: int) -> list[Projection]:
        """The projections not yet at `head`, read without taking the write lock: most calls
        (every API read) find none, and concurrent readers then never queue for it."""
        with self.engine.connect() as conn:
            at = positions(conn, [p.name for p in projections])
        return [p for p in projections if at[p.name] < head]

    def registry(self) -> reg.Registry:
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.Registry.load(conn)

    def institutions(self) -> dict[str, tuple[str, str | None]]:
        """Registered institutions: code → (kind, parent code)."""
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.load_institutions(conn)

    def _user_ids(self) -> list[str]:
        """Every user's aggregate id, from the registry brought up to the log's head."""
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.user_ids(conn)

    def _catch_up_registry(self) -> None:
        for p in self._behind([self.registry_projection], self.log.head()):
            catch_up(self.write_engine, self.log, p)

    def rebuild(self, *, blue_green: bool = False, progress: Progress | None = None) -> int:
        """Drop every read model and rebuild it from the log; return the position reached.

        Without `blue_green` the tables are emptied first, so readers briefly see a partial
        view. With it, the cube is built under a second name while readers keep the old one,
        and the switch happens in one transaction once the new one has caught up.
        """
        # Results kept before are still right (same log), but a reader of this process that
        # read the cube half rebuilt must not leave what it computed behind.
        self.computation_cache.clear()
        try:
            return self._rebuild(blue_green, progress)
        finally:
            self.computation_cache.clear()

    def _rebuild(self, blue_green: bool, progress: Progress | None) -> int:
        report = (
            (lambda name: functools.partial(progress, name)) if progress else (lambda name: None)
        )
        self._rebuild_small(self.registry_projection, reg.metadata)
        self._rebuild_small(self.inputs_projection, inp.metadata)
        fund = InsuranceProjection()
        fund.drop(self.write_engine)
        fund.create(self.write_engine, indexes=False)
        catch_up(self.write_engine, self.log, fund, progress=report(fund.name))
        fund.add_indexes(self.write_engine)
        # The hash chain is not a read model: it is sealed as events are appended (ledger) and
        # never rebuilt — it is the record of what the log held, which `audit verify` checks.
        old = self.equivalents_projection()
        if not blue_green:
            old.drop(self.write_engine)
            old.create(self.write_engine, indexes=False)
            head = catch_up(self.write_engine, self.log, old, progress=report(old.name))
            old.add_indexes(self.write_engine)
            return head
        new = eq.EquivalentsProjection("b" if old.suffix == "a" else "a")
        new.drop(self.write_engine)
        new.create(self.write_engine, indexes=False)
        catch_up(self.write_engine, self.log, new, progress=report(new.name))
        new.add_indexes(self.write_engine)
        with self.write_engine.begin() as conn:  # the last stretch and the switch, at once
            start = locked_position(conn, new.name)
            head = self.log.head()
            if head > start:
                new.process(conn, self.log, start, head)
                move_position(conn, new.name, start, head)
            eq.set_active_suffix(conn, new.suffix)
        old.drop(self.write_engine)
        return head

    def _upgrade_inputs(self) -> None:
        """A database written by a version whose small projections (the inputs, the registry)
        recorded fewer kinds of facts is replayed once into the current ones, so an upgrade
        needs no manual step."""
        self._upgrade_small(self.inputs_projection, inp.metadata)
        self._upgrade_small(self.registry_projection, reg.metadata)

    def _upgrade_small(
        self, p: reg.RegistryProjection | inp.InputsProjection, metadata: MetaData
    ) -> None:
        with self.engine.connect() as conn:
            stored = eq.stored_version(conn, p.name)
            started = position(conn, p.name) > 0
        if stored == p.version:
            return
        if started:
            self._rebuild_small(p, metadata)
        with self.write_engine.begin() as conn:
            eq.set_active_suffix(conn, p.version, name=p.name)

    def _rebuild_small(
        self, p: reg.RegistryProjection | inp.InputsProjection, metadata: MetaData
    ) -> None:
        """Reference data and compensation inputs are small: emptied and replayed in one
        transaction, so no reader ever sees them half built."""
        ensure_tracking_row(self.write_engine, p.name)
        head = self.log.head()
        with self.write_engine.begin() as conn:
            start = locked_position(conn, p.name)  # no catch-up interleaves with this
            for table in reversed(metadata.sorted_tables):
                conn.execute(table.delete())
            p.process(conn, self.log, 0, head)
            move_position(conn, p.name, start, head)

    # ---- reads of what is in force -------------------------------------------------------

    def policy(self, *, position: int | None = None, scheme: str = "compensation") -> PolicyInForce:
        self.catch_up()
        with self.engine.connect() as conn:
            return policy_at(conn, position, scheme=scheme)

    def resolve_position(self, *, as_of: datetime | None, position: int | None) -> int:
        """Catch up, then the log position to compute at: now, at a moment, or given."""
        head = self.catch_up()
        if as_of is not None:
            return position_at(self.log, as_of)
        if position is None:
            return head
        require_within_log(position, head)
        return position

    def payout_runs(self, *, position: int | None = None) -> dict[str, RunRecord]:
        self.catch_up()
        with self.engine.connect() as conn:
            return runs_at(conn, position)

    def payout_run(self, run_id: str) -> RunRecord:
        period = period_of_run(run_id)  # a malformed id gets its own message
        self.catch_up()
        with self.engine.connect() as conn:
            found = runs_at(conn, period=period).get(run_id)
        if found is None:
            raise NotFound(f"没有批次 {run_id}", f"no run {run_id}")
        return found

    def _recorded_at(self, position: int) -> datetime | None:
        if position == 0:
            return None
        found = self.log.app_recorder.select_notifications(start=position, limit=1)
        return recorded_at(self.log, found[0]) if found else None

    def _institution_name(self, code: str) -> str:
        with self.engine.connect() as conn:
            query = select(reg.institutions.c.name).where(reg.institutions.c.code == code)
            return conn.execute(query).scalar_one_or_none() or ""

    def status(self) -> Status:
        self.catch_up()
        with self.engine.connect() as conn:
            at = positions(conn, [p.name for p in self.projections()])
            counts = {
                "institutions": conn.scalar(select(func.count()).select_from(reg.institutions))
                or 0,
                "staff": conn.scalar(select(func.count()).select_from(reg.staff)) or 0,
                "catalogue_items": conn.scalar(select(func.count()).select_from(reg.items)) or 0,
            }
        return Status(self.database.describe(), self.log.head(), at, counts)

    def projection_status(self) -> Status:
        """Positions without catching up (what `projections status` shows)."""
        with self.engine.connect() as conn:
            at = positions(conn, [p.name for p in self.projections()])
        return Status(self.database.describe(), self.log.head(), at, {})

    def close(self) -> None:
        self.log.close()
        self.engine.dispose()
        self.write_engine.dispose()


def require_within_log(position: int, head: int) -> None:
    if not 0 <= position <= head:
        raise DomainError(
            f"位置 {position} 超出日志范围（0–{head}）",
            f"position {position} is outside the log (0–{head})",
        )

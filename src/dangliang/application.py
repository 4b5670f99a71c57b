"""The service layer: one object whose methods are the commands and queries of dangliang.

The CLI and the HTTP API are thin shells around it. `bootstrap(settings)` wires the event log,
the read-model database and the projections; nothing is opened at import time.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from sqlalchemy import Engine, MetaData, create_engine, event, func, select, text

from dangliang import __version__, payouts, performance
from dangliang import compensation as comp
from dangliang.bulk import bulk_writer
from dangliang.domain import ids
from dangliang.domain.errors import DomainError, NotFound
from dangliang.domain.imports import DataImport
from dangliang.domain.payout import PERFORMANCE, PayoutPeriod, PayoutRefused, period_of_run
from dangliang.domain.policy import CountyPolicy
from dangliang.eventlog import EventLog
from dangliang.importers import corrections, inputs, reference
from dangliang.importers.services import ImportResult, ServiceImporter, file_import_ref
from dangliang.policy.parameters import (
    BUILTIN_BUNDLES,
    ParameterTree,
    load_builtin_bundle,
    load_bundle,
    parse_value_text,
    show_value,
    value_to_canonical,
)
from dangliang.projections import equivalents as eq
from dangliang.projections import inputs as inp
from dangliang.projections import registry as reg
from dangliang.projections.base import (
    Projection,
    catch_up,
    ensure_tracking_row,
    locked_position,
    move_position,
    position,
    tracking_metadata,
)
from dangliang.projections.chain import ChainProjection, chain_head, format_head
from dangliang.projections.chain import verify as chain_verify
from dangliang.settings import Database, Settings, SettingsError
from dangliang.users import Users

Progress = Callable[[str, int, int], Any]


INPUT_LOADERS = {
    "scores": inputs.load_scores,
    "income": inputs.load_income,
    "pay-levels": inputs.load_pay_levels,
    "tasks": inputs.load_tasks,
    "force-majeure": inputs.load_force_majeure,
    "staff-coefficients": inputs.load_staff_coefficients,
    "outside-items": inputs.load_outside_items,
}
INPUT_KINDS = (*INPUT_LOADERS, "pools", "parameters")


def default_actor() -> str:
    """Who is acting: `DANGLIANG_ACTOR`, else the operating-system user."""
    explicit = os.environ.get("DANGLIANG_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (e.g. some containers)
        return "unknown"


@dataclass
class Status:
    database: str
    head: int
    projections: dict[str, int]
    counts: dict[str, int]


class Dangliang:
    def __init__(self, database: Database, log: EventLog, engine: Engine, write_engine: Engine):
        self.database = database
        self.log = log
        self.engine = engine  # reads
        self.write_engine = write_engine  # projection writes (serialised on SQLite)
        self.registry_projection = reg.RegistryProjection()
        self.inputs_projection = inp.InputsProjection()
        self.chain_projection = ChainProjection()
        self.users = Users(log, self.institutions)

    # ---- projections --------------------------------------------------------------------

    def equivalents_projection(self) -> eq.EquivalentsProjection:
        """The active version of the equivalents cube (a blue-green rebuild switches it)."""
        with self.engine.connect() as conn:
            return eq.EquivalentsProjection(eq.active_suffix(conn))

    def projections(self) -> list[Projection]:
        return [
            self.registry_projection,
            self.inputs_projection,
            self.equivalents_projection(),
            self.chain_projection,
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
            return [p for p in projections if position(conn, p.name) < head]

    def registry(self) -> reg.Registry:
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.Registry.load(conn)

    def institutions(self) -> dict[str, tuple[str, str | None]]:
        """Registered institutions: code → (kind, parent code)."""
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.load_institutions(conn)

    def _catch_up_registry(self) -> None:
        for p in self._behind([self.registry_projection], self.log.head()):
            catch_up(self.write_engine, self.log, p)

    def rebuild(self, *, blue_green: bool = False, progress: Progress | None = None) -> int:
        """Drop every read model and rebuild it from the log; return the position reached.

        Without `blue_green` the tables are emptied first, so readers briefly see a partial
        view. With it, the cube is built under a second name while readers keep the old one,
        and the switch happens in one transaction once the new one has caught up.
        """
        report = (
            (lambda name: functools.partial(progress, name)) if progress else (lambda name: None)
        )
        self._rebuild_small(self.registry_projection, reg.metadata)
        self._rebuild_small(self.inputs_projection, inp.metadata)
        # The hash chain is not rebuilt: it is the record of what the log held when each event
        # was first chained, which `audit verify` compares the log with.
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
        """A database written by a version whose inputs projection recorded fewer kinds of
        facts is replayed once into the current one, so an upgrade needs no manual step."""
        with self.engine.connect() as conn:
            stored = eq.stored_version(conn, self.inputs_projection.name)
            started = position(conn, self.inputs_projection.name) > 0
        if stored == self.inputs_projection.version:
            return
        if started:
            self._rebuild_small(self.inputs_projection, inp.metadata)
        with self.write_engine.begin() as conn:
            eq.set_active_suffix(
                conn, self.inputs_projection.version, name=self.inputs_projection.name
            )

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

    # ---- commands -----------------------------------------------------------------------

    def load_institutions(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_institutions(self.log, self.registry(), Path(path), actor)

    def load_headcount(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_headcount(self.log, self.registry(), Path(path), actor)

    def load_staff(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_staff(self.log, self.registry(), Path(path), actor)

    def load_catalogue(self, path: Path, *, actor: str) -> reference.LoadResult:
        return reference.load_catalogue(self.log, self.registry(), Path(path), actor)

    def load_inputs(self, kind: str, path: Path, *, actor: str) -> reference.LoadResult:
        """Load a file of inputs (`INPUT_KINDS`): scores, income, pay levels, directive tasks,
        force-majeure declarations, parameter changes; performance-pay pools, staff
        coefficients and items outside the total."""
        if kind == "parameters":
            return inputs.load_parameter_changes(self.log, self.policy().tree, path, actor)
        if kind == "pools":  # the minimum reward share and surplus range are policy
            return inputs.load_pools(self.log, self.registry(), self.policy().tree, path, actor)
        loader = INPUT_LOADERS.get(kind)
        if loader is None:
            raise DomainError(
                f"未知的输入类型：{kind}", f"unknown input kind {kind!r}; one of {INPUT_KINDS}"
            )
        return loader(self.log, self.registry(), path, actor)

    def import_services(
        self,
        path: Path,
        *,
        actor: str,
        today: date,
        skip_bad_rows: bool = False,
        progress: Progress | None = None,
        batch_size: int = 100_000,
    ) -> ImportResult:
        writer = bulk_writer(self.database, self.log.events_table)
        try:
            importer = ServiceImporter(
                self.registry(), writer, actor=actor, today=today, batch_size=batch_size
            )
            result = importer.run(Path(path), skip_bad_rows=skip_bad_rows, progress=progress)
        finally:
            writer.close()
        self.log.save(
            DataImport(
                kind="services",
                file_name=Path(path).name,
                import_ref=result.import_ref,
                rows=result.rows,
                inserted=result.inserted,
                already_present=result.already_present,
                rejected=result.rejected,
                actor=actor,
            )
        )
        return result

    def import_corrections(
        self, path: Path, *, actor: str, today: date
    ) -> corrections.CorrectionsResult:
        result = corrections.import_corrections(
            self.log, self.registry(), Path(path), actor=actor, today=today
        )
        self.log.save(
            DataImport(
                kind="corrections",
                file_name=Path(path).name,
                import_ref=file_import_ref(Path(path)),
                rows=result.rows,
                inserted=result.corrected + result.voided,
                already_present=result.already_applied,
                rejected=0,
                actor=actor,
            )
        )
        return result

    # ---- queries ------------------------------------------------------------------------

    def equivalents(
        self,
        period: str,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
        institution: str | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Equivalents for a month (`2024-03`) or year (`2024`), now or as the log stood at
        a moment (transaction time) or a log position."""
        head = self.catch_up()
        if position is not None:
            _require_within(position, head)
        projection = self.equivalents_projection()
        with self.engine.connect() as conn:
            if as_of is not None:
                position = eq.position_at(self.log, as_of)
            result = eq.equivalents(
                conn, projection.t, period, position=position, institution=institution, by=by
            )
        result["as_of"] = as_of.isoformat() if as_of else None
        result["position"] = head if position is None else position
        result["log_head"] = head
        return result

    # ---- policy and compensation ------------------------------------------------------

    def adopt_policy(
        self, source: str, *, reference: str, actor: str
    ) -> tuple[bool, ParameterTree]:
        """Validate a bundle (a file, or a built-in name such as `zhuji`) and record its
        adoption; False when exactly this bundle is already in force with no later changes."""
        tree = (
            load_builtin_bundle(source)
            if source in BUILTIN_BUNDLES and not Path(source).exists()
            else load_bundle(source)
        )
        policy = self._county_policy()
        if policy is None:
            policy = CountyPolicy.establish(actor=actor)
        changed = policy.adopt(
            bundle_name=tree.source,
            canonical_json=tree.canonical_json(),
            digest=tree.digest(),
            reference=reference,
            actor=actor,
        )
        if changed:
            self.log.save(policy)
        return changed, tree

    def change_parameter(
        self, path: str, value: str, *, start: date, reason: str, approver: str, actor: str
    ) -> bool:
        """Record one dated change of a parameter (a unit price, the advance ratio…)."""
        in_force = self.policy().tree
        param = in_force.parameter(path)
        parsed = parse_value_text(value, param.unit)
        in_force.with_value(path, start, parsed, reason)  # checks the date as a load would
        policy = self._county_policy()
        assert policy is not None  # policy() above found an adoption
        changed = policy.change(
            path=path,
            start=start,
            value_json=json.dumps(value_to_canonical(parsed), ensure_ascii=False),
            reason=reason,
            approver=approver,
            actor=actor,
        )
        if changed:
            self.log.save(policy)
        return changed

    def _county_policy(self) -> CountyPolicy | None:
        try:
            found: CountyPolicy = self.log.repository.get(ids.county_policy_id())
        except AggregateNotFoundError:
            return None
        return found

    def policy(self, *, position: int | None = None) -> inp.PolicyInForce:
        self.catch_up()
        with self.engine.connect() as conn:
            return inp.policy_at(conn, position)

    def parameters_in_force(self, *, on: date | None, position: int) -> dict[str, Any]:
        """The policy at a log position as rows: every dated value of every parameter (or
        the one in force `on` a day), with its unit and reference."""
        found = self.policy(position=position)
        rows = []
        for path in found.tree:
            param = found.tree.parameter(path)
            for v in param.values:
                if on is None or param.in_force(on) == v:
                    rows.append(
                        {
                            "path": path,
                            "unit": param.unit,
                            "effective_from": v.start.isoformat(),
                            "value": show_value(v.value),
                            "reference": v.reference,
                        }
                    )
        return {
            "bundle": found.bundle_name,
            "digest": found.tree.digest(),
            "position": position,
            "parameters": rows,
        }

    def resolve_position(self, *, as_of: datetime | None, position: int | None) -> int:
        """Catch up, then the log position to compute at: now, at a moment, or given."""
        head = self.catch_up()
        if as_of is not None:
            return eq.position_at(self.log, as_of)
        if position is None:
            return head
        _require_within(position, head)
        return position

    def compute(
        self,
        period: comp.Period,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
        tree: ParameterTree | None = None,
    ) -> comp.Computation:
        """Advances of a month or the settlement of a year, as the log stood at a position."""
        at = self.resolve_position(as_of=as_of, position=position)
        with self.engine.connect() as conn:
            return comp.compute(conn, self.equivalents_projection().t, period, at, tree=tree)

    def what_if(
        self,
        period: comp.Period,
        scenario: comp.Scenario,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """The scenario beside the baseline, per institution; nothing is written."""
        at = self.resolve_position(as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            policy, county = comp.gather(conn, t, period, at)  # once for both runs
        baseline = comp.run(period, at, policy, county)
        reform = comp.run(period, at, policy, county, tree=scenario.apply(policy.tree))
        return comp.difference(baseline, reform, scenario)

    def explain(
        self,
        institution: str,
        period: comp.Period,
        *,
        component: str | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        at = self.resolve_position(as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            computation = comp.compute(conn, t, period, at)
            return comp.explain(conn, t, computation, institution, component)

    def records(
        self,
        institution: str,
        period: str,
        *,
        item: str | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """The service records behind an institution's equivalents in a month or year."""
        at = self.resolve_position(as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            rows = eq.records_in(
                conn,
                t,
                self.log.events_table,
                institution,
                eq.months_of(period),
                item=item,
                position=at,
            )
        return {"institution": institution, "period": period, "position": at, "records": rows}

    # ---- performance pay (绩效工资分配) ------------------------------------------------

    def distribute(
        self,
        period: comp.Period,
        *,
        institution: str | None = None,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> performance.PerformanceResult:
        """Each institution's performance pay shared among its staff (a year, or a month's
        provisional share), as the log stood at a position."""
        at = self.resolve_position(as_of=as_of, position=position)
        with self.engine.connect() as conn:
            return performance.compute(
                conn, self.equivalents_projection().t, period, at, institution=institution
            )

    def explain_staff(
        self,
        staff_id: str,
        period: comp.Period,
        *,
        as_of: datetime | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """One person's performance pay: every step with their own entry, per institution."""
        found = self.distribute(period, as_of=as_of, position=position)
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            parts = [
                {
                    "institution": code,
                    "share": d.staff[staff_id].as_json(),
                    "steps": d.explain(staff_id),
                    "equivalents_by_item": performance.staff_equivalents(
                        conn, t, code, period, found.position
                    ).get(staff_id, []),
                }
                for code, d in sorted(found.distributions.items())
                if staff_id in d.staff
            ]
        if not parts:
            raise NotFound(
                f"{period.label} 的绩效分配中没有职工 {staff_id}",
                f"staff {staff_id} is in no distribution of {period.label}",
            )
        return {
            "staff_id": staff_id,
            "period": period.label,
            "position": found.position,
            "institutions": parts,
        }

    # ---- payout runs (支付批次) ---------------------------------------------------------

    def run_payout(self, period: comp.Period, *, actor: str, today: date) -> inp.RunRecord:
        """Compute and record a payout run (draft) for a month that has ended (advances) or a
        year that has ended (settlement); it supersedes the period's draft, if any."""
        if today <= payouts.period_end(period):
            raise PayoutRefused(
                f"{period.label} 尚未结束（截至 {payouts.period_end(period)}），不能计算支付批次",
                f"{period.label} has not ended (it ends on {payouts.period_end(period)}): "
                "a payout run is computed after the period",
            )
        position = self.catch_up()
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            open_drafts = [
                r.run_id
                for r in payouts.compensation_runs(conn, position).values()
                if r.state == "draft" and r.period != period.label
            ]
            if open_drafts:
                # Two open drafts could both carry the same adjustment and pay it twice.
                raise PayoutRefused(
                    f"请先审核或退回草稿批次 {', '.join(open_drafts)}",
                    f"approve or reject the draft run(s) {', '.join(open_drafts)} first",
                )
            results = payouts.compute_run(conn, t, period, position)
            _, head = chain_head(conn, position)
        return self._record_run(period.label, results, position, head, actor)

    def _record_run(
        self, label: str, results: dict[str, Any], position: int, head: str, actor: str
    ) -> inp.RunRecord:
        found = self._payout_period(label)
        aggregate = found or PayoutPeriod.open(period=label, actor=actor)
        run_id = aggregate.record_run(
            position=position,
            position_recorded_at=self._recorded_at(position),
            chain_head=head,
            policy_bundle=results["policy"]["bundle"],
            parameters_digest=results["policy"]["parameters_digest"],
            results_json=payouts.canonical(results),
            results_digest=payouts.results_digest(results),
            software=f"dangliang {__version__}",
            actor=actor,
        )
        self.log.save(aggregate)
        return self.payout_run(run_id)

    def run_distribution(self, period: comp.Period, *, actor: str, today: date) -> inp.RunRecord:
        """Compute and record a performance-pay distribution run (draft): a month's
        provisional shares, or the year's final shares with the difference to what the
        approved monthly runs paid. Approved, paid and replayed like payout runs."""
        if today <= payouts.period_end(period):
            raise PayoutRefused(
                f"{period.label} 尚未结束，不能计算绩效分配批次",
                f"{period.label} has not ended: a distribution run is computed after it",
            )
        position = self.catch_up()
        t = self.equivalents_projection().t
        with self.engine.connect() as conn:
            results = performance.compute_run(conn, t, period, position)
            _, head = chain_head(conn, position)
        return self._record_run(f"{PERFORMANCE}{period.label}", results, position, head, actor)

    def approve_payout(self, run_id: str, *, reference: str, actor: str) -> inp.RunRecord:
        """Approve a draft run (maker-checker: not by whoever computed it)."""
        return self._act(
            run_id, lambda p: p.approve(run_id=run_id, reference=reference, actor=actor)
        )

    def reject_payout(self, run_id: str, *, reason: str, actor: str) -> inp.RunRecord:
        return self._act(run_id, lambda p: p.reject(run_id=run_id, reason=reason, actor=actor))

    def mark_payout_paid(self, run_id: str, *, reference: str, actor: str) -> inp.RunRecord:
        return self._act(
            run_id, lambda p: p.mark_paid(run_id=run_id, reference=reference, actor=actor)
        )

    def _act(self, run_id: str, command: Callable[[PayoutPeriod], None]) -> inp.RunRecord:
        found = self._payout_period(period_of_run(run_id))
        if found is None:
            raise NotFound(f"没有批次 {run_id}", f"no run {run_id}")
        command(found)
        self.log.save(found)
        return self.payout_run(run_id)

    def _payout_period(self, label: str) -> PayoutPeriod | None:
        try:
            found: PayoutPeriod = self.log.repository.get(ids.payout_period_id(label))
        except AggregateNotFoundError:
            return None
        return found

    def _recorded_at(self, position: int) -> datetime | None:
        if position == 0:
            return None
        found = self.log.app_recorder.select_notifications(start=position, limit=1)
        return eq.recorded_at(self.log, found[0]) if found else None

    def payout_runs(self, *, position: int | None = None) -> dict[str, inp.RunRecord]:
        self.catch_up()
        with self.engine.connect() as conn:
            return inp.runs_at(conn, position)

    def payout_run(self, run_id: str) -> inp.RunRecord:
        found = self.payout_runs().get(run_id)
        if found is None:
            period_of_run(run_id)  # a malformed id gets its own message
            raise NotFound(f"没有批次 {run_id}", f"no run {run_id}")
        return found

    def write_payslips(self, run_id: str, folder: Path) -> list[Path]:
        """A distribution run's payslips (one HTML per person, `CODE/STAFF.html`) and each
        institution's distribution sheet (`CODE.xlsx`), from what the run recorded."""
        from dangliang import payslips

        run = self.payout_run(run_id)
        written: list[Path] = []
        for institution in self.distribution_results(run)["institutions"]:
            code = institution["code"]
            doc = self.distribution_doc(run, code)
            written.extend(payslips.write_payslips(doc, folder / code))
            written.append(payslips.write_distribution_sheet(doc, folder / f"{code}.xlsx"))
        return written

    def distribution_doc(self, run: inp.RunRecord, code: str) -> dict[str, Any]:
        """What a distribution run recorded for one institution, with the run's header and
        each person's equivalents by item: the document payslips and sheets are made from."""
        found = [i for i in self.distribution_results(run)["institutions"] if i["code"] == code]
        if not found:
            raise NotFound(
                f"批次 {run.run_id} 中没有机构 {code}",
                f"run {run.run_id} has no institution {code}",
            )
        period = payouts.period_of(run.period.removeprefix(PERFORMANCE))
        with self.engine.connect() as conn:
            equivalents = performance.staff_equivalents(
                conn, self.equivalents_projection().t, code, period, run.position
            )
        return {
            **payouts.run_header(run),
            "period": period.label,
            "institution": {"code": code, "name": self._institution_name(code)},
            "distribution": found[0],
            "equivalents": equivalents,
        }

    @staticmethod
    def distribution_results(run: inp.RunRecord) -> dict[str, Any]:
        if run.ledger != "performance":
            raise PayoutRefused(
                f"{run.run_id} 不是绩效分配批次（支付单请用 payout statement）",
                f"{run.run_id} is not a distribution run (use payout statement for payouts)",
            )
        return run.results

    def _institution_name(self, code: str) -> str:
        with self.engine.connect() as conn:
            query = select(reg.institutions.c.name).where(reg.institutions.c.code == code)
            return conn.execute(query).scalar_one_or_none() or ""

    def replay_payout(self, run_id: str) -> dict[str, Any]:
        """Recompute a run from the log as it stood at the run's position and compare it with
        what the run recorded: identical to the fen, or every difference listed."""
        run = self.payout_run(run_id)
        t = self.equivalents_projection().t
        period = payouts.period_of(run.period.removeprefix(PERFORMANCE))
        with self.engine.connect() as conn:
            again = (
                performance.compute_run(conn, t, period, run.position)
                if run.ledger == "performance"
                else payouts.compute_run(conn, t, period, run.position)
            )
            _, head = chain_head(conn, run.position)
        differences = payouts.compare(run.results, again)
        digest_ok = payouts.results_digest(run.results) == run.results_digest
        return {
            "run_id": run_id,
            "position": run.position,
            "identical": not differences and digest_ok and head == run.chain_head,
            "differences": differences,
            "results_digest_ok": digest_ok,
            "chain_head_recorded": run.chain_head,
            "chain_head_now": head,
        }

    def diff_payouts(self, run_a: str, run_b: str) -> dict[str, Any]:
        a, b = self.payout_run(run_a), self.payout_run(run_b)
        for run in (a, b):
            if run.ledger == "performance":
                raise PayoutRefused(
                    f"{run.run_id} 是绩效分配批次：只能比较支付批次",
                    f"{run.run_id} is a distribution run: only payout runs can be compared",
                )
        with self.engine.connect() as conn:
            return payouts.diff_runs(conn, self.equivalents_projection().t, a, b)

    def verify_log(
        self,
        *,
        expected_head: tuple[int, str] | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> dict[str, Any]:
        """Recompute the hash chain over the stored events and compare it with the chain kept
        as they were recorded. Every payout run's recorded chain head (and `expected_head`,
        from a signed document) is checked against the chain recomputed from the log itself,
        so a log edited and re-chained is caught too."""
        self.chain_projection.create(self.write_engine)  # a dropped chain is re-chained here
        catch_up(self.write_engine, self.log, self.chain_projection)
        with self.engine.connect() as conn:
            runs = inp.runs_at(conn)
            run_heads = {r.run_id: (r.position, r.chain_head) for r in runs.values()}
            report = chain_verify(
                conn,
                self.log,
                expected_head=expected_head,
                expected_heads=sorted(set(run_heads.values())),
                progress=progress,
            )
        lines = []
        ok = report.ok
        if report.ok:
            lines.append(
                f"哈希链完整 / chain intact: {report.checked:,} events checked, head "
                f"{format_head(report.head)}; {len(run_heads)} payout run head(s) match"
                + (f"; {report.unchained:,} not yet chained" if report.unchained else "")
            )
        else:
            for problem in report.problems:
                lines.append(f"#{problem.notification_id} {problem.kind}: {problem.message}")
            if report.problem_count > len(report.problems):
                lines.append(f"… {report.problem_count - len(report.problems)} more")
        for run_id, (at, head) in sorted(run_heads.items()):
            recomputed = report.recomputed_at.get(at)
            if recomputed is not None and recomputed != head:
                ok = False
                lines.append(
                    f"批次 {run_id} 记录的链头与日志不符 / run {run_id} recorded chain head "
                    f"{head} at position {at}; the log now gives {recomputed}"
                )
        first = report.first_problem
        return {
            "ok": ok,
            "checked": report.checked,
            "head": format_head(report.head),
            "unchained": report.unchained,
            "first_problem": None
            if first is None
            else {
                "kind": first.kind,
                "notification_id": first.notification_id,
                "originator_id": first.originator_id,
                "originator_version": first.originator_version,
                "topic": first.topic,
                "message": first.message,
            },
            "problem_count": report.problem_count,
            "runs_checked": len(run_heads),
            "lines": lines,
        }

    def status(self) -> Status:
        self.catch_up()
        with self.engine.connect() as conn:
            positions = {p.name: position(conn, p.name) for p in self.projections()}
            counts = {
                "institutions": conn.scalar(select(func.count()).select_from(reg.institutions))
                or 0,
                "staff": conn.scalar(select(func.count()).select_from(reg.staff)) or 0,
                "catalogue_items": conn.scalar(select(func.count()).select_from(reg.items)) or 0,
            }
        return Status(self.database.describe(), self.log.head(), positions, counts)

    def projection_status(self) -> Status:
        """Positions without catching up (what `projections status` shows)."""
        with self.engine.connect() as conn:
            positions = {p.name: position(conn, p.name) for p in self.projections()}
        return Status(self.database.describe(), self.log.head(), positions, {})

    def close(self) -> None:
        self.log.close()
        self.engine.dispose()
        self.write_engine.dispose()


def _require_within(position: int, head: int) -> None:
    if not 0 <= position <= head:
        raise DomainError(
            f"位置 {position} 超出日志范围（0–{head}）",
            f"position {position} is outside the log (0–{head})",
        )


def bootstrap(settings: Settings) -> Dangliang:
    database = settings.database
    engine = _engine(database)
    write_engine = _engine(database, immediate=True) if database.backend == "sqlite" else engine
    with _schema_lock(engine):
        if database.backend == "postgres" and database.schema:
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{database.schema}"'))
        log = EventLog(database)  # the library creates its tables and functions here
        if log.mapper.cipher or log.mapper.compressor:
            raise SettingsError(
                "the projections read the log's JSON directly: disable event cipher/compression"
            )
        for metadata in (tracking_metadata, reg.metadata, inp.metadata, eq.versions_metadata):
            metadata.create_all(write_engine)
        app = Dangliang(database, log, engine, write_engine)
        app.equivalents_projection().create(write_engine)
        app.chain_projection.create(write_engine)
        app._upgrade_inputs()
    return app


@contextlib.contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """On PostgreSQL, processes starting at the same moment create tables and functions one
    at a time (concurrent `CREATE … IF NOT EXISTS` / `CREATE OR REPLACE FUNCTION` fail with
    "tuple concurrently updated"). SQLite serialises DDL by itself."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext('dangliang-bootstrap'))"))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext('dangliang-bootstrap'))"))
            conn.commit()


def _engine(database: Database, *, immediate: bool = False) -> Engine:
    """SQLAlchemy engine for the read models. With `immediate` (SQLite only), every
    transaction starts with BEGIN IMMEDIATE: it takes the write lock up front, so two
    processes catching up at once queue instead of failing on a stale snapshot."""
    if database.backend == "sqlite":
        assert database.sqlite_path is not None
        database.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(database.sqlalchemy_url(), connect_args={"timeout": 120})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()
            if immediate:
                dbapi_conn.isolation_level = None  # we issue BEGIN ourselves

        if immediate:

            @event.listens_for(engine, "begin")
            def _begin(conn: Any) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if database.schema:
        connect_args["options"] = f"-csearch_path={database.schema}"
    return create_engine(database.sqlalchemy_url(), connect_args=connect_args, pool_pre_ping=True)

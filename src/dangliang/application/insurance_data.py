"""Insurance-fund data entry (医保基金数据导入): the files of the medical-insurance fund —
communities, enrolment (per person and monthly counts), claims, their corrections, the fund's
years and the communities' scores — each checked whole before anything is appended.

One method, `import_insurance(kind, path, …)`, for every kind of `INSURANCE_KINDS`. Claims
and per-person enrolment go through the bulk import (staged, batched, idempotent, as service
records do); the other kinds through their aggregates, all of a file in one transaction.
Every import is recorded as a `DataImport` (kind, file, digest, counts, who).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from dangliang.application.core import Core, Progress
from dangliang.domain.errors import DomainError
from dangliang.domain.imports import DataImport
from dangliang.importers import insurance_loaders as loaders
from dangliang.importers import insurance_revisions as revisions
from dangliang.importers.bulk_import import BulkImporter, BulkSpec, ImportResult
from dangliang.importers.bulk_insurance import claims_spec, enrolment_spec
from dangliang.ledger.bulk import bulk_writer
from dangliang.projections.insurance_inputs import communities_at
from dangliang.projections.tracking import catch_up

INSURANCE_KINDS = {
    "communities": "医共体",
    "enrolment": "参保人员",
    "enrolment_counts": "参保人数",
    "claims": "医保结算记录",
    "claim_corrections": "结算记录更正",
    "enrolment_corrections": "参保登记更正",
    "fund_years": "医保基金年度",
    "community_scores": "医共体考核",
}
"""Kind (also the file format's name, docs/formats.md) → its Chinese label."""
BULK_INSURANCE_KINDS = ("claims", "enrolment")
"""The kinds imported in bulk: the only ones where `skip_bad_rows` applies."""


class InsuranceData(Core):
    def import_insurance(
        self,
        kind: str,
        path: Path,
        *,
        actor: str,
        today: date,
        skip_bad_rows: bool = False,
        progress: Progress | None = None,
        batch_size: int = 100_000,
    ) -> ImportResult:
        """Import a file of `kind` (`INSURANCE_KINDS`; `-` may stand for `_`).

        Raises `ProblemsFound` with every problem (file, row, column, reason) when the file
        is refused; nothing is written then. With `skip_bad_rows` (claims and enrolment only)
        the good rows are imported and the bad ones written to `<file>.rejects.csv`. The
        other kinds are all or nothing. `today` bounds the dates (no settlement or birth in
        the future); `progress(phase, done, total)` is told how a bulk import advances.
        """
        kind = kind.strip().replace("-", "_")
        if kind not in INSURANCE_KINDS:
            raise DomainError(
                f"未知的医保数据类型：{kind}",
                f"unknown insurance data kind {kind!r}; one of {', '.join(INSURANCE_KINDS)}",
            )
        if skip_bad_rows and kind not in BULK_INSURANCE_KINDS:
            raise DomainError(
                f"{INSURANCE_KINDS[kind]}文件须整份导入，不能跳过错误行",
                f"a {kind} file is imported whole; skipping bad rows is only for "
                f"{' and '.join(BULK_INSURANCE_KINDS)}",
            )
        path = Path(path)
        if kind in BULK_INSURANCE_KINDS:
            result = self._bulk_insurance(
                kind, path, actor, today, skip_bad_rows, progress, batch_size
            )
        else:
            result = self._small_insurance(kind, path, actor, today)
        self.log.save(
            DataImport(
                kind=kind,
                file_name=path.name,
                import_ref=result.import_ref,
                rows=result.rows,
                inserted=result.inserted,
                already_present=result.already_present,
                rejected=result.rejected,
                actor=actor,
            )
        )
        return result

    def registered_communities(self) -> dict[str, list[str]]:
        """Medical communities as the log stands: code → member institution codes (read from
        the inputs projection's `community` facts, brought up to the log's head first)."""
        for p in self._behind([self.inputs_projection], self.log.head()):
            catch_up(self.write_engine, self.log, p)
        with self.engine.connect() as conn:
            return {c.code: list(c.members) for c in communities_at(conn).values()}

    def _bulk_insurance(
        self,
        kind: str,
        path: Path,
        actor: str,
        today: date,
        skip_bad_rows: bool,
        progress: Progress | None,
        batch_size: int,
    ) -> ImportResult:
        communities = set(self.registered_communities())
        spec: BulkSpec[Any] = (
            claims_spec(communities) if kind == "claims" else enrolment_spec(communities)
        )
        writer = bulk_writer(self.database, self.log.events_table)
        try:
            importer = BulkImporter(spec, writer, actor=actor, today=today, batch_size=batch_size)
            return importer.run(path, skip_bad_rows=skip_bad_rows, progress=progress)
        finally:
            writer.close()

    def _small_insurance(
        self, kind: str, path: Path, actor: str, today: date
    ) -> loaders.InsuranceResult:
        if kind == "fund_years":
            return loaders.load_fund_years(self.log, path, actor)
        communities = self.registered_communities()
        if kind == "communities":
            return loaders.load_communities(self.log, self.institutions(), communities, path, actor)
        if kind == "enrolment_counts":
            return loaders.load_enrolment_counts(self.log, communities, path, actor)
        if kind == "community_scores":
            return loaders.load_community_scores(self.log, communities, path, actor)
        if kind == "claim_corrections":
            return revisions.import_claim_corrections(
                self.log, set(communities), path, actor=actor, today=today
            )
        return revisions.import_enrolment_corrections(
            self.log, set(communities), path, actor=actor, today=today
        )

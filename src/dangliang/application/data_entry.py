"""Data entry (数据录入): reference data, compensation inputs, service records and their
corrections, each file checked whole before anything is appended to the log."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dangliang.application.core import Core, Progress
from dangliang.domain.errors import DomainError
from dangliang.domain.imports import DataImport
from dangliang.importers import corrections, input_files, performance_pay_inputs, reference
from dangliang.importers.services import ImportResult, ServiceImporter, file_import_ref
from dangliang.ledger.bulk import ImportBatches, bulk_writer

INPUT_LOADERS = {
    "scores": input_files.load_scores,
    "income": input_files.load_income,
    "pay-levels": input_files.load_pay_levels,
    "tasks": input_files.load_tasks,
    "force-majeure": input_files.load_force_majeure,
    "staff-coefficients": performance_pay_inputs.load_staff_coefficients,
    "outside-items": performance_pay_inputs.load_outside_items,
}
INPUT_KINDS = (*INPUT_LOADERS, "pools", "parameters")


class DataEntry(Core):
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
            return input_files.load_parameter_changes(self.log, self.policy().tree, path, actor)
        if kind == "pools":  # the minimum reward share and surplus range are policy
            return performance_pay_inputs.load_pools(
                self.log, self.registry(), self.policy().tree, path, actor
            )
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
            batches = ImportBatches(
                self.log, kind="services", file_name=Path(path).name, actor=actor
            )
            importer = ServiceImporter(
                self.registry(),
                writer,
                actor=actor,
                today=today,
                batch_size=batch_size,
                batches=batches,
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

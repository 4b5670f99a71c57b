"""The county the fault tests kill commands on: its files, and the databases each command
starts from (prepared once per backend, copied for every kill point).

Two sizes: a quick one for the normal test run, and a full one (`DANGLIANG_FAULT_POINTS` set)
where each command runs for about one to three seconds on a 2-core machine, so that the
seeded kill points fall between the commits inside it (an import of 60,000 records in
batches of 2,000 commits 30 times).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from dangliang.application import Dangliang
from dangliang.demo.generator import GeneratedCounty, generate
from dangliang.domain.ids import service_record_id_hex
from dangliang.domain.periods import Period
from dangliang.importers.formats import CORRECTIONS
from tests.conftest import load_reference

COUNTY_SEED = 17
MAKER, CHECKER, IMPORTER, AUDITOR = "maker", "checker", "importer", "auditor"
RUN_MONTH = Period(2024, 3)  # the payout run's month; its run id once computed
RUN_ID = "2024-03#1"
APPROVAL_REFERENCE = "审批单 17 / approval 17"


@dataclass(frozen=True)
class Sizes:
    records: int  # service records in the county's file
    batch: int  # records per committed import batch
    corrections: int  # rows of the corrections file

    @property
    def batches(self) -> int:
        return -(-self.records // self.batch)


QUICK = Sizes(records=4_000, batch=250, corrections=300)
FULL = Sizes(records=60_000, batch=2_000, corrections=3_000)


def points_wanted() -> int:
    """Kill points per command and backend: `DANGLIANG_FAULT_POINTS`, else 1."""
    return int(os.environ.get("DANGLIANG_FAULT_POINTS", "1"))


def full_run() -> bool:
    return "DANGLIANG_FAULT_POINTS" in os.environ


def kill_seed() -> int:
    return int(os.environ.get("DANGLIANG_FAULT_SEED", "17"))


@dataclass(frozen=True)
class CountyFiles:
    county: GeneratedCounty
    sizes: Sizes
    header: list[str]
    rows: list[list[str]]  # the services file's rows, in file order
    services: Path  # every record
    early: Path  # January to March
    late: Path  # April to December
    corrections: Path  # voids and corrections of the first records

    def ids(self, rows: Sequence[Sequence[str]]) -> list[str]:
        """The records' ids (hex), as the log stores them."""
        inst, source = self.header.index("institution_code"), self.header.index("source_id")
        return [service_record_id_hex(r[inst], r[source]) for r in rows]

    def write(self, path: Path, rows: Sequence[Sequence[str]]) -> Path:
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.header)
            w.writerows(rows)
        return path


def county_files(folder: Path, sizes: Sizes) -> CountyFiles:
    county = generate(folder, records=sizes.records, seed=COUNTY_SEED, year=2024)
    with county.files["services"].open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    day = header.index("service_date")
    files = CountyFiles(
        county=county,
        sizes=sizes,
        header=header,
        rows=rows,
        services=county.files["services"],
        early=folder / "services-early.csv",
        late=folder / "services-late.csv",
        corrections=folder / "corrections.csv",
    )
    files.write(files.early, [r for r in rows if r[day] < "2024-04"])
    files.write(files.late, [r for r in rows if r[day] >= "2024-04"])
    _write_corrections(files, sizes.corrections)
    return files


def _write_corrections(files: CountyFiles, count: int) -> None:
    """Every third row voids a record, the others add one to its quantity."""
    h = files.header.index
    with files.corrections.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, list(CORRECTIONS.column_names), restval="")
        w.writeheader()
        for n, row in enumerate(files.rows[:count]):
            key = {"institution_code": row[h("institution_code")], "source_id": row[h("source_id")]}
            if n % 3 == 0:
                w.writerow({**key, "action": "void", "reason": "重复上报 / reported twice"})
            else:
                quantity = int(float(row[h("quantity")])) + 1
                w.writerow(
                    {
                        **key,
                        "action": "correct",
                        "quantity": str(quantity),
                        "reason": "数量有误 / wrong quantity",
                    }
                )


# ---- what each command starts from ----------------------------------------------------------


def load_county(app: Dangliang, files: CountyFiles) -> None:
    """Reference data, compensation inputs, the policy and the performance-pay inputs."""
    county = files.county
    load_reference(app, county, actor=IMPORTER)
    for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
        app.load_inputs(kind, county.files[kind.replace("-", "_")], actor=IMPORTER)
    app.adopt_policy("zhuji", reference="故障测试 / fault tests", actor=IMPORTER)
    for kind in ("pools", "staff-coefficients", "outside-items"):
        app.load_inputs(kind, county.files[kind.replace("-", "_")], actor=IMPORTER)


def import_all(app: Dangliang, files: CountyFiles) -> None:
    app.import_services(files.services, actor=IMPORTER, today=date.today())


def run_drafted(app: Dangliang, files: CountyFiles) -> None:
    """January to March imported, March's run computed (a draft, by the maker), then April to
    December imported and not yet caught up: approving the run catches them up after it
    commits."""
    app.import_services(files.early, actor=IMPORTER, today=date.today())
    app.run_payout(RUN_MONTH, actor=MAKER, today=date.today())
    app.import_services(files.late, actor=IMPORTER, today=date.today())


@dataclass(frozen=True)
class Template:
    """A starting database: `steps` on top of `base` (a copy of it), read models caught up
    afterwards or not."""

    name: str
    steps: Callable[[Dangliang, CountyFiles], None]
    caught_up: bool
    base: Template | None = None

    def build(self, app: Dangliang, files: CountyFiles) -> None:
        """Everything from an empty database."""
        if self.base is not None:
            self.base.build(app, files)
        self.steps(app, files)


COUNTY = Template("fault-county", load_county, caught_up=True)
IMPORTED = Template("fault-imported", import_all, caught_up=True, base=COUNTY)
IMPORTED_BEHIND = Template("fault-imported-behind", import_all, caught_up=False, base=COUNTY)
DRAFTED = Template("fault-drafted", run_drafted, caught_up=False, base=COUNTY)

"""A deterministic synthetic county for demos, tests and benchmarks (示例县数据生成器).

ALL DATA WRITTEN BY THIS MODULE IS SYNTHETIC. The county is shaped like De Qing (德清县:
12 centres, 127 village clinics, after 德清县卫生健康局《持续创新、深化拓展 推进基层卫生
健康事业高质量发展》, 2024) and uses its real township and street names so the demo reads
naturally, but every institution code, headcount, person, name, catalogue value and service
record is invented. No equivalent value here is official: each catalogue row says
"示例数值，非官方 / illustrative value, not official".

One `random.Random(seed)` drives the county, so the same arguments give byte-identical files
(the XLSX variant too: its zip timestamps and document dates are pinned). Service rows are
streamed out day by day in chunks, so memory does not grow with the number of records; the
per-row work is a few `random()` calls and `bisect`s over pools prepared beforehand.

The compensation inputs (assessment scores, medical-service income, pay levels, directive
tasks, a force-majeure declaration) come from a second generator seeded from the same seed,
so they leave every other file exactly as it was; the performance-pay inputs (approved pools,
personal coefficients, amounts outside the pool) from a third, for the same reason; the
medical-insurance fund (communities, enrolment, two years of claims, the fund's years, the
communities' scores; `county_fund.py`, all 示例数据) from a fourth.

This module holds the entry point `generate` and the file writers; the rows come from
`county_reference.py` (institutions, headcount, staff, catalogue), `county_inputs.py` (the
compensation and performance-pay inputs) and `service_records.py` (the service records).
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO

from dangliang.demo.county_fund import write_fund
from dangliang.demo.county_inputs import (
    INPUT_FILES,
    PERFORMANCE_FILES,
    coefficient_rows,
    force_majeure_rows,
    income_rows,
    outside_rows,
    pay_level_rows,
    pool_rows,
    score_rows,
    task_rows,
)
from dangliang.demo.county_reference import (
    BASIC_MEDICAL,
    BASIC_PUBLIC_HEALTH,
    _headcount,
    _institutions,
    _staff,
    catalogue_rows,
    institution_rows,
    service_days,
    staff_rows,
)
from dangliang.demo.service_records import ServiceRow, service_chunks
from dangliang.importers.formats import (
    CATALOGUE,
    FORCE_MAJEURE,
    HEADCOUNT,
    INCOME,
    INSTITUTIONS,
    OUTSIDE_ITEMS,
    PAY_LEVELS,
    POOLS,
    SCORES,
    SERVICES,
    STAFF,
    STAFF_COEFFICIENTS,
    TASKS,
    FileFormat,
)

SERVICES_FORMATS = ("csv", "csv-bom", "csv-gb18030", "xlsx", "jsonl")


@dataclass(frozen=True)
class GeneratedCounty:
    """What `generate` wrote: counts and the path of every file (keyed by format name)."""

    out_dir: Path
    institutions: int
    village_clinics: int
    staff: int
    items: int
    records: int
    files: dict[str, Path]
    insured: int = 0  # people in the fund's enrolment file
    claims: int = 0  # the fund's claims, of the year and the year before


# --- public entry point -----------------------------------------------------------------


def generate(
    out_dir: Path,
    records: int,
    seed: int,
    year: int = 2024,
    services_format: str = "csv",
    progress: Callable[[int], None] | None = None,
) -> GeneratedCounty:
    """Write a synthetic county's reference files and `records` service records to out_dir.

    `services_format`: csv (UTF-8), csv-bom, csv-gb18030 (Chinese headers, as Chinese Excel
    saves it), xlsx or jsonl; the reference files are always UTF-8 CSV. `progress(n)` is told
    every ~10,000 service rows how many were written since its last call. Service dates never
    lie after today, so a run for the current year also depends on today's date; a year that
    has not started is refused.
    """
    if services_format not in SERVICES_FORMATS:
        raise ValueError(f"services_format must be one of {', '.join(SERVICES_FORMATS)}")
    if records < 0:
        raise ValueError("records must not be negative")
    days = service_days(year, date.today())
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    institutions = _institutions(rng)
    centres = [i for i in institutions if not i.parent_code]
    headcount = _headcount(rng, centres, year)
    staff = _staff(rng, institutions, headcount, year, days)
    catalogue = catalogue_rows(year)

    files = {
        "institutions": out_dir / "institutions.csv",
        "headcount": out_dir / "headcount.csv",
        "staff": out_dir / "staff.csv",
        "catalogue": out_dir / "catalogue.csv",
        "services": out_dir / f"services.{_extension(services_format)}",
        **{name: out_dir / file for name, file in INPUT_FILES.items()},
        **{name: out_dir / file for name, file in PERFORMANCE_FILES.items()},
    }
    _write_csv(files["institutions"], INSTITUTIONS, institution_rows(institutions))
    _write_csv(files["headcount"], HEADCOUNT, headcount)
    _write_csv(files["staff"], STAFF, staff_rows(staff))
    _write_csv(files["catalogue"], CATALOGUE, catalogue)
    inputs_rng = random.Random(f"dangliang-inputs-{seed}")  # leaves `rng` as it was
    last_month = days[-1].month
    _write_csv(files["scores"], SCORES, score_rows(inputs_rng, institutions, year))
    _write_csv(
        files["income"], INCOME, income_rows(inputs_rng, centres, headcount, year, last_month)
    )
    _write_csv(files["pay_levels"], PAY_LEVELS, pay_level_rows(inputs_rng, centres, year))
    _write_csv(files["tasks"], TASKS, task_rows(inputs_rng, centres, year))
    _write_csv(
        files["force_majeure"],
        FORCE_MAJEURE,
        force_majeure_rows(inputs_rng, centres, year, last_month),
    )
    performance_rng = random.Random(f"dangliang-performance-{seed}")  # leaves the others be
    pools = pool_rows(performance_rng, institutions, headcount, staff, year)
    _write_csv(files["pools"], POOLS, pools)
    _write_csv(
        files["staff_coefficients"],
        STAFF_COEFFICIENTS,
        coefficient_rows(performance_rng, staff, year),
    )
    directors = {row[6] for row in pools if row[6]}
    _write_csv(
        files["outside_items"],
        OUTSIDE_ITEMS,
        outside_rows(performance_rng, staff, year, directors),
    )
    fund_rng = random.Random(f"dangliang-fund-{seed}")  # leaves the others be
    fund = write_fund(out_dir, fund_rng, institutions, year, days[-1], records)
    files.update(fund.files)
    chunks = service_chunks(rng, staff, days, records)
    _write_services(files["services"], services_format, chunks, progress)

    return GeneratedCounty(
        out_dir=out_dir,
        institutions=len(institutions),
        village_clinics=len(institutions) - len(centres),
        staff=len(staff),
        items=len(BASIC_MEDICAL) + len(BASIC_PUBLIC_HEALTH),
        records=records,
        files=files,
        insured=fund.people,
        claims=fund.claims,
    )


# --- writers ----------------------------------------------------------------------------


def _extension(services_format: str) -> str:
    return services_format if services_format in ("xlsx", "jsonl") else "csv"


def _write_csv(path: Path, fmt: FileFormat, rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fmt.column_names)
        writer.writerows(rows)


def _write_services(
    path: Path,
    services_format: str,
    chunks: Iterator[list[ServiceRow]],
    progress: Callable[[int], None] | None,
) -> None:
    def counted() -> Iterator[list[ServiceRow]]:
        for chunk in chunks:
            yield chunk
            if progress is not None:
                progress(len(chunk))

    if services_format == "xlsx":
        _write_services_xlsx(path, counted())
    elif services_format == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as f:
            _write_services_jsonl(f, counted())
    else:
        encoding = {"csv": "utf-8", "csv-bom": "utf-8-sig", "csv-gb18030": "gb18030"}
        with path.open("w", encoding=encoding[services_format], newline="") as f:
            writer = csv.writer(f)
            if services_format == "csv-gb18030":  # as Chinese Excel saves it: Chinese headers
                writer.writerow([c.label_zh for c in SERVICES.columns])
            else:
                writer.writerow(SERVICES.column_names)
            for chunk in counted():
                writer.writerows(chunk)


def _write_services_jsonl(f: IO[str], chunks: Iterator[list[ServiceRow]]) -> None:
    """One object per line: quantity as a JSON number, blank optional fields left out."""
    names = SERVICES.column_names
    quantity = names.index("quantity")
    for chunk in chunks:
        lines = []
        for row in chunk:
            obj: dict[str, object] = {n: v for n, v in zip(names, row, strict=True) if v}
            obj["quantity"] = int(row[quantity])
            lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        f.write("\n".join(lines) + "\n")


def _write_services_xlsx(path: Path, chunks: Iterator[list[ServiceRow]]) -> None:
    """First (only) sheet, canonical headers; quantity as a number, dates as ISO text."""
    # imported here: only this variant needs openpyxl
    from openpyxl import Workbook
    from openpyxl.xml.functions import tostring

    workbook = Workbook(write_only=True)
    pinned = datetime(2000, 1, 1)
    workbook.properties.created = pinned
    workbook.properties.modified = pinned
    workbook.properties.creator = "dangliang generator (synthetic data)"
    sheet = workbook.create_sheet(SERVICES.label_zh)
    sheet.append(list(SERVICES.column_names))
    quantity = SERVICES.column_names.index("quantity")
    for chunk in chunks:
        for row in chunk:
            cells: list[object] = list(row)
            cells[quantity] = int(row[quantity])
            sheet.append(cells)
    raw = path.with_suffix(".xlsx.tmp")
    try:
        workbook.save(raw)
        workbook.properties.modified = pinned  # save() stamps the current time; pin it again
        core = tostring(workbook.properties.to_tree())
        _pin_zip(raw, path, {"docProps/core.xml": core})
    finally:
        raw.unlink(missing_ok=True)


def _pin_zip(source: Path, target: Path, replace_entries: dict[str, bytes]) -> None:
    """Copy a zip with every entry's timestamp fixed, so equal content gives equal bytes."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            pinned = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            pinned.compress_type = zipfile.ZIP_DEFLATED
            pinned.external_attr = 0o600 << 16
            if info.filename in replace_entries:
                dst.writestr(pinned, replace_entries[info.filename])
                continue
            with src.open(info) as r, dst.open(pinned, "w", force_zip64=True) as w:
                shutil.copyfileobj(r, w, 1 << 20)

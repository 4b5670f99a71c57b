"""Payout-run statements (支付单): one payout run (支付批次) exported for finance bureaus.

A run comes as its JSON form (a plain mapping, money as decimal strings; see `write_json`).
`write_statement(run, path)` picks the format from the suffix:

- `.xlsx` — sheet 「支付单」: a header block (title, run id, period, kind, state, who computed and
  approved it and when, paid reference, log position and when it was recorded, chain head,
  policy bundle, parameters digest, results digest; and, when the run has them, the run it
  supersedes, the reason it was sent back, the approval reference and the software version),
  then one row per institution with one column per component, the summary columns and a 合计
  totals row; money as numbers (`#,##0.00`), text never read as a formula. Sheet 「调整明细」:
  one row per adjustment line (earlier periods recomputed) with its causes. Byte-for-byte the
  same for the same run (timestamps pinned to `computed_at`).
- `.csv` — the table only (UTF-8 with BOM, bilingual headers `中文 json_key`, one row per
  institution and a totals row, money as plain decimal strings with at least 2 places). No
  metadata and no adjustment lines: the JSON carries everything.
- `.json` — the run as given (keys in the given order), UTF-8, indent 2.
A fund run (`insurance_…` kinds) has its own layout: `payouts.insurance_statements`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dangliang.domain.errors import InvalidValue
from dangliang.domain.payout import STATES_ZH
from dangliang.importers.cell_text import csv_text, text_into

if TYPE_CHECKING:  # openpyxl is imported only when an XLSX is written
    from openpyxl import Workbook
    from openpyxl.worksheet.worksheet import Worksheet

# ---------------------------------------------------------------- labels (中文 / English)


@dataclass(frozen=True)
class Column:
    """A table column: `key` is the field in the run's JSON form (also the CSV's English name)."""

    key: str
    zh: str
    width: int = 16
    money: bool = True

    @property
    def csv_header(self) -> str:
        return f"{self.zh} {self.key}"


TITLE = "基层医疗卫生机构补偿 {kind}支付单 {period}"


@dataclass(frozen=True)
class Kind:
    """A kind of payout run and the summary columns its statement shows after the components."""

    zh: str
    en: str
    summary: tuple[Column, ...]
    title: str = TITLE


CODE = Column("code", "机构编码", 14, money=False)
NAME = Column("name", "机构名称", 28, money=False)
COMPONENT_COLUMNS = (
    Column("basic_medical", "基本医疗"),
    Column("basic_public_health", "基本公卫"),
    Column("directive_tasks", "指令性任务"),
    Column("remote_adjustment", "边缘乡镇调节补助", 18),
    Column("year_end_bonus", "年终考核奖（财政）", 20),
)
ADJUSTMENTS = Column("adjustments", "以前期间调整")
PAYABLE = Column("payable", "本次应付")

KINDS = {
    "monthly_advance": Kind(
        "按月预拨",
        "monthly advance",
        (Column("total", "预拨基数"), Column("advances", "本月预拨"), ADJUSTMENTS, PAYABLE),
    ),
    "annual_settlement": Kind(
        "年终清算",
        "year-end settlement",
        (
            Column("total", "合计"),
            Column("advances", "已预拨"),
            Column("settlement", "清算差额"),
            ADJUSTMENTS,
            PAYABLE,
        ),
    ),
}

ADJUSTMENT_COLUMNS = (
    CODE,
    NAME,
    Column("period", "调整期间", 12, money=False),
    Column("run_id", "原批次", 14, money=False),
    Column("paid", "已支付"),
    Column("new", "重算金额"),
    Column("amount", "调整额"),
    Column("causes", "原因", 90, money=False),
)

SHEET_STATEMENT = "支付单"
SHEET_ADJUSTMENTS = "调整明细"
TOTAL_LABEL = "合计"
ILLUSTRATIVE_NOTE = "示例数值，非官方 / illustrative figures, not official"
CREATOR = "dangliang"
DASH = "—"
MONEY_FORMAT = "#,##0.00"

HEADER_LABELS = {
    "run_id": "批次编号 run id",
    "supersedes": "替代批次 supersedes",
    "period": "期间 period",
    "kind": "类型 kind",
    "state": "状态 state",
    "rejected_reason": "退回原因 rejected reason",
    "computed": "计算人 / 时间 computed by / at",
    "approved": "审核人 / 时间 approved by / at",
    "approval_reference": "审批单号 approval reference",
    "paid_reference": "支付凭证号 paid reference",
    "position": "日志位置 / 记录时间 log position / recorded at",
    "chain_head": "哈希链头 chain head",
    "bundle": "政策参数包 policy bundle",
    "parameters_digest": "参数摘要 parameters digest",
    "results_digest": "结果摘要 results digest",
    "software": "软件版本 software",
    "rule_set": "规则版本 rule set",
}
OPTIONAL_HEADERS = ("supersedes", "rejected_reason", "approval_reference", "software", "rule_set")
"""Header rows shown only when the run has a value for them."""

FORMATS = (".xlsx", ".csv", ".json")

Cell = str | int | Decimal

# ---------------------------------------------------------------- public API


def write_statement(run: Mapping[str, Any], path: Path) -> Path:
    """Write the run's statement in the format named by the suffix (.xlsx, .csv, .json)."""
    writers: dict[str, Callable[[Mapping[str, Any], Path], Path]] = {
        ".xlsx": write_xlsx,
        ".csv": write_csv,
        ".json": write_json,
    }
    writer = writers.get(path.suffix.lower())
    if writer is None:
        allowed = ", ".join(FORMATS)
        raise InvalidValue(
            f"不支持的支付单格式「{path.suffix or '（无扩展名）'}」，可用：{allowed}",
            f"unsupported statement format {path.suffix or '(no suffix)'!r}; use one of {allowed}",
        )
    return writer(run, path)


def write_json(run: Mapping[str, Any], path: Path) -> Path:
    """The run as given (keys in the given order), UTF-8, indent 2; a `Decimal` as a string."""
    text = json.dumps(run, ensure_ascii=False, indent=2, default=_json_default) + "\n"
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(run: Mapping[str, Any], path: Path) -> Path:
    """The table only: bilingual header, one row per institution, a totals row.

    UTF-8 with BOM so that Excel opens the Chinese correctly; money as plain decimal strings.
    The run's metadata and adjustment lines are not in the CSV: the JSON form carries everything.
    """
    columns = table_columns(run_kind(run))

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([c.csv_header for c in columns])
            for values in _table_rows(run, columns):
                writer.writerow([_plain(v) for v in values])

    return write_atomically(path, write)


def write_xlsx(run: Mapping[str, Any], path: Path) -> Path:
    """Sheets 「支付单」 (header block, table, totals) and 「调整明细」; deterministic bytes."""
    from openpyxl import Workbook  # imported here: only this format needs openpyxl

    kind = run_kind(run)
    when = timestamp(run)
    workbook = Workbook()
    statement = workbook.active
    assert statement is not None
    statement.title = SHEET_STATEMENT
    _fill_statement(statement, run, kind)
    _fill_adjustments(workbook.create_sheet(SHEET_ADJUSTMENTS), run)
    workbook.properties.creator = CREATOR
    workbook.properties.title = title(run, kind)
    workbook.properties.created = when
    return write_atomically(path, lambda tmp: save_pinned(workbook, tmp, when))


def table_columns(kind: Kind) -> tuple[Column, ...]:
    """The statement table's columns for a kind of run."""
    return (CODE, NAME, *COMPONENT_COLUMNS, *kind.summary)


# ---------------------------------------------------------------- reading the run


def _field(mapping: Mapping[str, Any], key: str, where: str = "run") -> Any:
    if key not in mapping:
        raise InvalidValue(f"支付批次缺少字段 {where}.{key}", f"the run has no field {where}.{key}")
    return mapping[key]


def run_kind(run: Mapping[str, Any]) -> Kind:
    name = _field(run, "kind")
    if name not in KINDS:
        allowed = ", ".join(KINDS)
        raise InvalidValue(
            f"未知的支付批次类型「{name}」，可用：{allowed}",
            f"unknown run kind {name!r}; expected one of {allowed}",
        )
    return KINDS[name]


def _money(value: Any, where: str) -> Decimal:
    """A money field as an exact Decimal (strings, ints and Decimals; never a float)."""
    try:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise InvalidOperation
        amount = Decimal(value)
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise InvalidValue(
            f"{where} 不是金额：{value!r}", f"{where} is not a money amount: {value!r}"
        ) from None
    return amount


def institution_values(inst: Mapping[str, Any], columns: Sequence[Column]) -> list[Cell]:
    code = str(_field(inst, "code", "institutions[]"))
    where = f"institutions[{code}]"
    components = _field(inst, "components", where)
    values: list[Cell] = []
    for c in columns:
        if not c.money:
            values.append(str(_field(inst, c.key, where)))
        elif c in COMPONENT_COLUMNS:
            money = _field(components, c.key, f"{where}.components")
            values.append(_money(money, f"{where}.components.{c.key}"))
        else:
            values.append(_money(_field(inst, c.key, where), f"{where}.{c.key}"))
    return values


def totals_values(run: Mapping[str, Any], columns: Sequence[Column]) -> list[Cell]:
    totals = _field(run, "totals")
    return [
        _money(_field(totals, c.key, "totals"), f"totals.{c.key}") if c.money else ""
        for c in columns[1:]
    ]


def _table_rows(run: Mapping[str, Any], columns: Sequence[Column]) -> Iterator[list[Cell]]:
    """One row per institution, then the totals row (label in the first column)."""
    for inst in _field(run, "institutions"):
        yield institution_values(inst, columns)
    yield [TOTAL_LABEL, *totals_values(run, columns)]


def adjustment_rows(run: Mapping[str, Any]) -> Iterator[list[Cell]]:
    for inst in _field(run, "institutions"):
        code, name = str(inst["code"]), str(inst["name"])
        for n, line in enumerate(inst.get("adjustment_lines") or ()):
            where = f"institutions[{code}].adjustment_lines[{n}]"
            yield [
                code,
                name,
                str(_field(line, "period", where)),
                str(_field(line, "run_id", where)),
                *(
                    _money(_field(line, k, where), f"{where}.{k}")
                    for k in ("paid", "new", "amount")
                ),
                "\n".join(str(c) for c in line.get("causes") or ()),
            ]


def title(run: Mapping[str, Any], kind: Kind) -> str:
    return kind.title.format(kind=kind.zh, period=_field(run, "period"))


def header_rows(run: Mapping[str, Any], kind: Kind) -> list[tuple[str, tuple[Cell, ...]]]:
    """The header block: (label, values) rows."""
    state = str(_field(run, "state"))
    policy = _field(run, "policy")

    def text(value: Any) -> str:
        return DASH if value is None or value == "" else str(value)

    rows: list[tuple[str, tuple[Any, ...]]] = [
        ("run_id", (_field(run, "run_id"),)),
        ("supersedes", (run.get("supersedes"),)),
        ("period", (_field(run, "period"),)),
        ("kind", (f"{kind.zh} {kind.en}",)),
        ("state", (f"{STATES_ZH.get(state, '')} {state}".strip(),)),
        ("rejected_reason", (run.get("rejected_reason"),)),
        ("computed", (run.get("computed_by"), run.get("computed_at"))),
        ("approved", (run.get("approved_by"), run.get("approved_at"))),
        ("approval_reference", (run.get("approval_reference"),)),
        ("paid_reference", (run.get("paid_reference"),)),
        ("position", (int(_field(run, "position")), run.get("position_recorded_at"))),
        ("chain_head", (_field(run, "chain_head"),)),
        ("bundle", (policy.get("bundle"),)),
        ("parameters_digest", (policy.get("parameters_digest"),)),
        ("results_digest", (_field(run, "results_digest"),)),
        ("software", (run.get("software"),)),
        ("rule_set", (run.get("rule_set"),)),
    ]
    return [
        (HEADER_LABELS[key], tuple(v if isinstance(v, int) else text(v) for v in values))
        for key, values in rows
        if key not in OPTIONAL_HEADERS or values[0] not in (None, "")
    ]


def timestamp(run: Mapping[str, Any]) -> datetime:
    """`computed_at` as naive UTC: the XLSX's created/modified times and zip entry times."""
    value = _field(run, "computed_at")
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidValue(
            f"computed_at 不是 ISO 时间：{value!r}", f"computed_at is not an ISO time: {value!r}"
        ) from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return max(when, datetime(1980, 1, 1))  # the earliest time a zip entry can carry


# ---------------------------------------------------------------- XLSX layout


def put(sheet: Worksheet, row: int, col: int, value: Cell, bold: bool = False) -> None:
    """One cell: money as a number with the money format; text always as text (never a formula)."""
    from openpyxl.styles import Font

    cell = sheet.cell(row=row, column=col)
    if isinstance(value, Decimal):
        cell.value = value
        cell.number_format = MONEY_FORMAT
    elif isinstance(value, int):
        cell.value = value
        cell.number_format = "0"
    else:
        text_into(cell, value)
    if bold:
        cell.font = Font(bold=True)


def put_row(sheet: Worksheet, row: int, values: Sequence[Cell], bold: bool = False) -> None:
    for col, value in enumerate(values, start=1):
        put(sheet, row, col, value, bold)


def set_widths(sheet: Worksheet, columns: Sequence[Column]) -> None:
    from openpyxl.utils import get_column_letter

    for col, c in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(col)].width = c.width


def write_header_block(sheet: Worksheet, run: Mapping[str, Any], kind: Kind) -> int:
    """Title and the run's identity rows (label over columns A:B, values from C); next free row."""
    from openpyxl.styles import Font

    text_into(sheet.cell(row=1, column=1), title(run, kind)).font = Font(bold=True, size=14)
    row = 2
    for label, values in header_rows(run, kind):
        put(sheet, row, 1, label, bold=True)
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=2)
        for col, value in enumerate(values, start=3):
            put(sheet, row, col, value)
        row += 1
    return row + 1  # a blank line before the table


def _fill_statement(sheet: Worksheet, run: Mapping[str, Any], kind: Kind) -> None:
    from openpyxl.styles import Alignment, Border, Side

    columns = table_columns(kind)
    head = write_header_block(sheet, run, kind)
    put_row(sheet, head, [c.zh for c in columns], bold=True)
    for col in range(1, len(columns) + 1):
        sheet.cell(row=head, column=col).alignment = Alignment(horizontal="center")
    *institutions, totals = _table_rows(run, columns)
    for n, values in enumerate(institutions, start=head + 1):
        put_row(sheet, n, values)
    last = head + 1 + len(institutions)
    put_row(sheet, last, totals, bold=True)
    for col in range(1, len(columns) + 1):
        sheet.cell(row=last, column=col).border = Border(top=Side(style="thin"))
    if run.get("illustrative"):
        put(sheet, last + 2, 1, ILLUSTRATIVE_NOTE)
    sheet.freeze_panes = sheet.cell(row=head + 1, column=3)
    set_widths(sheet, columns)
    print_setup(sheet, head)


def _fill_adjustments(sheet: Worksheet, run: Mapping[str, Any]) -> None:
    """Header row, one row per adjustment line (causes wrapped), a totals row if any."""
    from openpyxl.styles import Alignment

    put_row(sheet, 1, [c.zh for c in ADJUSTMENT_COLUMNS], bold=True)
    lines = list(adjustment_rows(run))
    wrap = Alignment(wrap_text=True, vertical="top")
    for row, values in enumerate(lines, start=2):
        put_row(sheet, row, values)
        sheet.cell(row=row, column=len(ADJUSTMENT_COLUMNS)).alignment = wrap
    if lines:
        amount = [c.key for c in ADJUSTMENT_COLUMNS].index("amount")
        total = sum((Decimal(values[amount]) for values in lines), Decimal(0))
        totals: list[Cell] = ["" for _ in ADJUSTMENT_COLUMNS]
        totals[0], totals[amount] = TOTAL_LABEL, total
        put_row(sheet, len(lines) + 2, totals, bold=True)
    sheet.freeze_panes = "C2"
    set_widths(sheet, ADJUSTMENT_COLUMNS)
    print_setup(sheet, 1)


def print_setup(sheet: Worksheet, header_row: int) -> None:
    """Printed landscape, one page wide, the table header repeated on every page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = f"{header_row}:{header_row}"


# ---------------------------------------------------------------- files


def save_pinned(workbook: Workbook, path: Path, when: datetime) -> None:
    """Save with the document times and every zip entry's time set to `when`."""
    from openpyxl.xml.functions import tostring

    buffer = io.BytesIO()
    workbook.save(buffer)  # stamps `modified` with the clock: pinned again below
    workbook.properties.modified = when
    core = tostring(workbook.properties.to_tree())
    stamp = when.timetuple()[:6]
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=stamp)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            data = core if info.filename == "docProps/core.xml" else src.read(info)
            dst.writestr(entry, data)


def write_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Write to a sibling temporary file, then rename: no half-written statement is left."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(value: Cell) -> str:
    """Text as is, except that text a spreadsheet would run as a formula (`=…`, `+…`, `-…`,
    `@…`) gets a leading `'` (`cell_text.csv_text`); money as a plain decimal with at least
    the 2 places of the fen ("0" → "0.00")."""
    if not isinstance(value, Decimal):
        return csv_text(str(value))
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        value = value.quantize(Decimal("0.01"))  # only adds zeros: exact
    return format(value, "f")


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot write {type(value).__name__} to JSON")

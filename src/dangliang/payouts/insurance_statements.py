"""Insurance fund statements (医保基金拨付单): one fund run exported for the medical-insurance
and finance bureaus, like the compensation statements (`payouts.statements`, same header
block, same pinned bytes):

- `.xlsx` — sheet 「拨付单」: the run's header block, one row per medical community (budget,
  spending, what this run pays) and a 合计 row; 「结算明细」: every figure of every community
  with its Chinese label; 「基金」: the fund's own figures (revenue, withheld funds…);
  「结余分配」: a surplus split down to institutions (Zhijiang); 「调整明细」: earlier years
  recomputed after a correction, with the causes.
- `.csv` — the 拨付单 table only (UTF-8 with BOM, bilingual headers).
- `.json` — the run as given.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from dangliang.domain.errors import InvalidValue
from dangliang.importers.cell_text import csv_text
from dangliang.payouts.statements import (
    CREATOR,
    FORMATS,
    ILLUSTRATIVE_NOTE,
    TOTAL_LABEL,
    Cell,
    Column,
    Kind,
    print_setup,
    put,
    put_row,
    save_pinned,
    set_widths,
    timestamp,
    title,
    write_atomically,
    write_header_block,
    write_json,
)

NAME = Column("name", "医共体名称", 24, money=False)
ADJUSTMENTS = Column("adjustments", "以前年度调整")
PAYABLE = Column("payable", "本次应付")
TITLE = "医保基金 {kind}拨付单 {period}"
KINDS = {
    "insurance_advance": Kind(
        "预拨",
        "advance",
        (
            Column("budget", "本期预算"),
            Column("spending", "本期基金支出"),
            Column("balance", "本期结余"),
            Column("advance", "本期预拨"),
            ADJUSTMENTS,
            PAYABLE,
        ),
        TITLE,
    ),
    "insurance_settlement": Kind(
        "年终清算",
        "year-end settlement",
        (
            Column("budget", "年度预算"),
            Column("spending", "年度基金支出"),
            Column("final", "年度应拨"),
            Column("advances_paid", "已预拨"),
            Column("settlement", "清算差额"),
            ADJUSTMENTS,
            PAYABLE,
        ),
        TITLE,
    ),
}
FIGURES_ZH = {
    "budget": "预算",
    "allotment": "划拨额（扣除风险金等后按人头分配）",
    "spending": "统筹基金支出（计入本医共体）",
    "spending_in_area": "县域内就医支出",
    "spending_out_of_area": "异地就医支出",
    "balance": "结余（负数为超支）",
    "advance": "预拨",
    "surplus": "结余",
    "retained_direct": "结余直接留用",
    "retained_assessed": "结余考核后留用",
    "returned_to_fund": "结余返还基金",
    "surplus_county": "结余县级部分",
    "surplus_township": "结余乡镇级部分",
    "surplus_village": "结余村级部分",
    "overspend": "超支",
    "overspend_base": "超支分担基数",
    "community_bears": "医共体分担超支",
    "fund_bears": "基金承担超支",
    "final": "年度应拨",
    "revenue": "本年度筹资",
    "prior_spending": "上年度基金支出",
    "budget_total": "预算总额",
    "reserve": "风险金",
    "critical_illness": "大病保险基金",
    "out_of_area": "异地就医补偿基金",
    "to_communities": "划拨牵头医院（医共体）",
    "unallocated": "未分配",
    "out_of_area_spending": "异地就医支出",
    "out_of_area_balance": "异地就医补偿基金结余",
}
LEVELS_ZH = {"county": "县级（牵头医院）", "township": "乡镇级", "village": "村级"}


def write_insurance_statement(run: Mapping[str, Any], path: Path) -> Path:
    """Write a fund run's statement in the format named by the suffix (.xlsx, .csv, .json)."""
    writers: dict[str, Callable[[Mapping[str, Any], Path], Path]] = {
        ".xlsx": _write_xlsx,
        ".csv": _write_csv,
        ".json": write_json,
    }
    writer = writers.get(path.suffix.lower())
    if writer is None:
        allowed = ", ".join(FORMATS)
        raise InvalidValue(
            f"不支持的拨付单格式「{path.suffix or '（无扩展名）'}」，可用：{allowed}",
            f"unsupported statement format {path.suffix or '(no suffix)'!r}; use one of {allowed}",
        )
    return writer(run, path)


def _kind(run: Mapping[str, Any]) -> Kind:
    found = KINDS.get(str(run.get("kind")))
    if found is None:
        raise InvalidValue(
            f"不是医保基金批次：{run.get('run_id')}", f"not a fund run: {run.get('run_id')}"
        )
    return found


def _columns(kind: Kind) -> tuple[Column, ...]:
    return (Column("code", "医共体编码", 14, money=False), NAME, *kind.summary)


def _value(row: Mapping[str, Any], key: str) -> Decimal:
    figures = row.get("figures", {})
    return Decimal(row[key] if key in row else figures.get(key, "0"))


def _rows(run: Mapping[str, Any], columns: Sequence[Column]) -> Iterator[list[Cell]]:
    for row in run["communities"]:
        yield [str(row[c.key]) if not c.money else _value(row, c.key) for c in columns]
    totals = run["totals"]
    yield [TOTAL_LABEL, "", *(Decimal(totals.get(c.key, "0")) for c in columns[2:])]


def _write_csv(run: Mapping[str, Any], path: Path) -> Path:
    columns = _columns(_kind(run))

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8-sig", newline="") as f:
            out = csv.writer(f)
            out.writerow([c.csv_header for c in columns])
            for values in _rows(run, columns):
                out.writerow([csv_text(v) if isinstance(v, str) else v for v in values])

    return write_atomically(path, write)


def _write_xlsx(run: Mapping[str, Any], path: Path) -> Path:
    from openpyxl import Workbook

    kind = _kind(run)
    when = timestamp(run)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "拨付单"
    columns = _columns(kind)
    head = write_header_block(sheet, run, kind)
    put_row(sheet, head, [c.zh for c in columns], bold=True)
    *rows, totals = _rows(run, columns)
    for n, values in enumerate(rows, start=head + 1):
        put_row(sheet, n, values)
    put_row(sheet, head + 1 + len(rows), totals, bold=True)
    if run.get("illustrative"):
        put(sheet, head + 3 + len(rows), 1, ILLUSTRATIVE_NOTE)
    set_widths(sheet, columns)
    print_setup(sheet, head)
    _figures_sheet(book.create_sheet("结算明细"), run)
    _table(
        book.create_sheet("基金"),
        ("项目", "key", "金额"),
        [[FIGURES_ZH.get(k, k), k, Decimal(v)] for k, v in run["fund"].items()]
        + [[f"人数：{k}", k, int(v)] for k, v in run.get("counts", {}).items()],
    )
    _table(
        book.create_sheet("结余分配"),
        ("医共体编码", "级别", "机构编码", "机构名称", "金额"),
        [
            [
                row["code"],
                LEVELS_ZH.get(a["level"], a["level"]),
                a["code"],
                a["name"],
                Decimal(a["amount"]),
            ]
            for row in run["communities"]
            for a in row.get("allocation", [])
        ],
    )
    _table(
        book.create_sheet("调整明细"),
        ("医共体编码", "调整年度", "原清算批次", "已支付", "重算应拨", "调整额", "原因"),
        [
            [
                row["code"],
                line["period"],
                line["settled_by"],
                Decimal(line["paid"]),
                Decimal(line["final_now"]),
                Decimal(line["amount"]),
                "\n".join(line["causes"]),
            ]
            for row in run["communities"]
            for line in row.get("adjustment_lines", [])
        ],
    )
    book.properties.creator = CREATOR
    book.properties.title = title(run, kind)
    book.properties.created = when
    return write_atomically(path, lambda tmp: save_pinned(book, tmp, when))


def _figures_sheet(sheet: Any, run: Mapping[str, Any]) -> None:
    """One row per figure, one column per community."""
    communities = run["communities"]
    keys = list(dict.fromkeys(k for row in communities for k in row["figures"]))
    _table(
        sheet,
        ("项目", "key", *(f"{row['code']} {row['name']}" for row in communities)),
        [
            [FIGURES_ZH.get(k, k), k, *(Decimal(row["figures"].get(k, "0")) for row in communities)]
            for k in keys
        ],
    )


def _table(sheet: Any, header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> None:
    put_row(sheet, 1, list(header), bold=True)
    for n, values in enumerate(rows, start=2):
        put_row(sheet, n, values)
    set_widths(sheet, [Column(h, h, max(12, 2 * len(h) + 4), money=False) for h in header])

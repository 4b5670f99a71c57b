"""Payslips (工资条 / 绩效工资明细) and the distribution sheet of one institution
(docs/performance.md).

A distribution comes as its JSON form (a plain mapping, money as decimal strings): the
institution, period, run and log identity, the policy, `Distribution.as_json()` under
"distribution" and each person's equivalents by item and month under "equivalents".

- `payslip_html(doc, staff_id)`: one printable, self-contained HTML page (inline CSS with
  `@media print`, no JavaScript, every value escaped): header, the person, their equivalents
  by item and month with a total, the weight and months share, and the amounts.
- `write_payslips(doc, folder)`: one `<staff_id>.html` per person (atomic writes).
- `write_distribution_sheet(doc, path)`: an XLSX, sheet 「绩效工资分配表」: header block, one
  row per person, a 合计 row equal to the distribution's totals; money as numbers
  (`#,##0.00`), text never read as a formula; deterministic bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dangliang.domain.errors import InvalidValue
from dangliang.domain.payout import STATES_ZH
from dangliang.domain.staff import POSTS_ZH
from dangliang.importers.cell_text import text_into
from dangliang.payouts.statements import (
    DASH,
    ILLUSTRATIVE_NOTE,
    MONEY_FORMAT,
    Cell,
    Column,
    _money,
    print_setup,
    put,
    put_row,
    save_pinned,
    set_widths,
    timestamp,
    write_atomically,
)
from dangliang.policy.distribution_allocation import EPIDEMIC_ALLOWANCE, FAMILY_DOCTOR_FEES

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

# ---------------------------------------------------------------- labels (中文)

OUTSIDE_ZH = {
    FAMILY_DOCTOR_FEES: "家庭医生签约服务费",
    "family_doctor_fee": "家庭医生签约服务费",  # the short key some callers use
    EPIDEMIC_ALLOWANCE: "公卫医生防疫补贴",
    "director_salary": "院长（主任）年薪",
}
"""Outside-total kinds (总量外项目); other kinds are shown under their own key."""
OUTSIDE_COLUMNS = ("家庭医生签约服务费", "公卫医生防疫补贴")

SHEET = "绩效工资分配表"
SHEET_TITLE = "{name} {period} 绩效工资分配表"
PAYSLIP_TITLE = "{name} {period} 绩效工资明细（工资条）"
TOTAL_LABEL = "合计"
DIRECTOR_NOTE = "院长（主任）年薪在单位绩效工资总量外单列核定，不参与本分配"
PINNED = datetime(1980, 1, 1)  # the XLSX times when the document has no `computed_at`
RATIO_FORMAT = "0.0000"
WEIGHT_FORMAT = "0.000000"
SAFE_ID = re.compile(r"[0-9A-Za-z_\-\u4e00-\u9fff]+")

STAFF_COLUMNS = (
    Column("staff_id", "工号", 12, money=False),
    Column("name", "姓名", 12, money=False),
    Column("post", "岗位", 10, money=False),
    Column("establishment", "在编", 8, money=False),
    Column("months_share", "在岗月数占比", 12, money=False),
    Column("weight", "分配权重", 14, money=False),
    Column("base", "基础性绩效"),
    Column("reward", "奖励性绩效"),
    Column("surplus", "结余再分配"),
    Column("floor_top_up", "保底补足"),
    Column("floor_contribution", "保底调剂"),
    Column("performance_pay", "绩效工资合计"),
)
"""The table's columns before the outside-total items; then 年终考核奖, 其中财政, 合计."""
TAIL_COLUMNS = (
    Column("year_end_bonus", "年终考核奖"),
    Column("year_end_bonus_finance", "其中财政"),
    Column("total", "合计"),
)

# ---------------------------------------------------------------- public API


def payslip_html(doc: Mapping[str, Any], staff_id: str) -> str:
    """One person's printable payslip as a self-contained HTML page (UTF-8, no JavaScript)."""
    share = _staff(doc, staff_id)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_e(payslip_title(doc))} {_e(share.get('name', ''))}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        payslip_section(doc, staff_id),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def payslip_title(doc: Mapping[str, Any]) -> str:
    """「机构 期间 绩效工资明细（工资条）」."""
    name = _field(doc, "institution").get("name", "")
    return PAYSLIP_TITLE.format(name=name, period=str(_field(doc, "period")))


def payslip_section(doc: Mapping[str, Any], staff_id: str) -> str:
    """The payslip itself, `<main class="slip">…</main>` styled by `CSS`: what `payslip_html`
    wraps, and what a PDF of a whole institution prints one to a page."""
    share = _staff(doc, staff_id)
    inst = _field(doc, "institution")
    parts = ['<main class="slip">', f"<h1>{_e(payslip_title(doc))}</h1>"]
    if doc.get("illustrative"):
        parts.append(f'<p class="note">{_e(ILLUSTRATIVE_NOTE)}</p>')
    parts += _identity_table(doc, inst, str(_field(doc, "period")))
    parts += _person_table(share)
    parts += _equivalents_table(doc, share)
    parts += _amounts_table(share)
    parts.append("</main>")
    return "\n".join(parts)


def write_payslips(doc: Mapping[str, Any], folder: Path) -> list[Path]:
    """One `<staff_id>.html` per person of the distribution, in its order (atomic writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for share in _field(_field(doc, "distribution"), "staff"):
        staff_id = str(_field(share, "staff_id", "distribution.staff[]"))
        if not SAFE_ID.fullmatch(staff_id):
            raise InvalidValue(
                f"工号 {staff_id!r} 不能用作文件名", f"staff id {staff_id!r} is not a file name"
            )
        written.append(_write_text(folder / f"{staff_id}.html", payslip_html(doc, staff_id)))
    return written


def _write_text(path: Path, text: str) -> Path:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write_atomically(path, write)


def write_distribution_sheet(doc: Mapping[str, Any], path: Path) -> Path:
    """The institution's XLSX 「绩效工资分配表」: header block, one row per person, 合计 row."""
    from openpyxl import Workbook  # imported here: only this output needs openpyxl

    when = timestamp(doc) if doc.get("computed_at") else PINNED
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = SHEET
    _fill_sheet(sheet, doc)
    workbook.properties.creator = "dangliang"
    workbook.properties.title = _sheet_title(doc)
    workbook.properties.created = when
    return write_atomically(path, lambda tmp: save_pinned(workbook, tmp, when))


def money_text(value: Any, where: str = "amount") -> str:
    """A money amount as shown on a payslip: thousands separators and the fen, "1,234.50"."""
    return format(_money(value, where), ",.2f")


# ---------------------------------------------------------------- reading the document


def _field(mapping: Mapping[str, Any], key: str, where: str = "doc") -> Any:
    if key not in mapping:
        raise InvalidValue(f"分配结果缺少字段 {where}.{key}", f"the document has no {where}.{key}")
    return mapping[key]


def _staff(doc: Mapping[str, Any], staff_id: str) -> Mapping[str, Any]:
    for share in _field(_field(doc, "distribution"), "staff"):
        if share.get("staff_id") == staff_id:
            return share  # type: ignore[no-any-return]
    raise InvalidValue(f"本次分配中无职工 {staff_id}", f"no staff {staff_id} in this distribution")


def _outside_label(kind: str) -> str:
    return OUTSIDE_ZH.get(kind, kind)


def _post_zh(post: Any) -> str:
    return POSTS_ZH.get(str(post), str(post))


def _text(value: Any) -> str:
    return DASH if value is None or value == "" else str(value)


def _decimal(value: Any, where: str) -> Decimal:
    return _money(value, where)  # exact Decimal from a string (ratios and weights too)


def _state(doc: Mapping[str, Any]) -> str:
    state = doc.get("state")
    if not state:
        return DASH
    return f"{STATES_ZH.get(str(state), '')} {state}".strip()


def _position(doc: Mapping[str, Any]) -> str:
    position = doc.get("position")
    return DASH if position is None else str(position)


def _policy(doc: Mapping[str, Any]) -> str:
    policy = doc.get("policy") or {}
    return " / ".join(_text(policy.get(k)) for k in ("bundle", "parameters_digest"))


# ---------------------------------------------------------------- HTML

CSS = (
    "body{font-family:'Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei',SimSun,"
    "sans-serif;font-size:12px;color:#000;background:#fff;margin:0}"
    ".slip{max-width:190mm;margin:8mm auto;padding:0 4mm}"
    "h1{font-size:16px;text-align:center;margin:0 0 4px}"
    "h2{font-size:13px;margin:10px 0 4px;border-bottom:1px solid #000}"
    ".note{text-align:center;color:#a00;margin:0 0 6px}"
    "table{width:100%;border-collapse:collapse;margin-bottom:4px}"
    "th,td{border:1px solid #888;padding:2px 6px;text-align:left}"
    "th{background:#eee;font-weight:bold}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "tr.total td,tr.total th{font-weight:bold;border-top:2px solid #000}"
    ".mono{font-family:monospace;word-break:break-all}"
    "@media print{@page{size:A4;margin:10mm}body{font-size:11px}"
    ".slip{margin:0;max-width:none;padding:0}th{background:none}"
    "table,tr{page-break-inside:avoid}}"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _row(label: str, value: str, *, num: bool = False, total: bool = False) -> str:
    cls = ' class="total"' if total else ""
    td = '<td class="num">' if num else "<td>"
    return f"<tr{cls}><th>{_e(label)}</th>{td}{_e(value)}</td></tr>"


def _identity_table(doc: Mapping[str, Any], inst: Mapping[str, Any], period: str) -> list[str]:
    rows = [
        _row("机构", f"{_text(inst.get('name'))}（{_text(inst.get('code'))}）"),
        _row("期间", period),
    ]
    if doc.get("run_id"):
        rows.append(_row("批次编号", str(doc["run_id"])))
    if doc.get("state"):
        rows.append(_row("状态", _state(doc)))
    rows.append(_row("日志位置", _position(doc)))
    if doc.get("chain_head"):
        rows.append(f'<tr><th>哈希链头</th><td class="mono">{_e(doc["chain_head"])}</td></tr>')
    if doc.get("policy"):
        rows.append(_row("政策参数", _policy(doc)))
    return ['<table class="identity">', *rows, "</table>"]


def _person_table(share: Mapping[str, Any]) -> list[str]:
    sid = str(share.get("staff_id"))
    months = _decimal(_field(share, "months_share", f"staff[{sid}]"), f"staff[{sid}].months_share")
    weight = _decimal(_field(share, "weight", f"staff[{sid}]"), f"staff[{sid}].weight")
    rows = [
        _row("工号", sid),
        _row("姓名", _text(share.get("name"))),
        _row("岗位", _post_zh(share.get("post"))),
        _row("编制", "在编" if share.get("establishment") else "编外"),
        _row("在岗月数占比", format(months, ".4f"), num=True),
        _row("分配权重（当量×个人考核系数×岗位系数×在岗月数占比）", format(weight, "f"), num=True),
    ]
    if share.get("floor") is not None:
        rows.append(_row("保底额", money_text(share["floor"], f"staff[{sid}].floor"), num=True))
    out = ["<h2>人员与系数</h2>", '<table class="person">', *rows, "</table>"]
    if share.get("director"):
        out.append(f'<p class="note">{_e(DIRECTOR_NOTE)}</p>')
    return out


def _equivalents_table(doc: Mapping[str, Any], share: Mapping[str, Any]) -> list[str]:
    sid = str(share.get("staff_id"))
    lines = list((doc.get("equivalents") or {}).get(sid) or ())
    lines.sort(key=lambda line: (str(line.get("item", "")), str(line.get("month", ""))))
    out = [
        "<h2>工作当量</h2>",
        '<table class="equivalents">',
        "<tr><th>项目</th><th>月份</th><th>数量</th><th>当量值</th><th>当量</th></tr>",
    ]
    total = Decimal(0)
    for n, line in enumerate(lines):
        where = f"equivalents[{sid}][{n}]"
        equivalents = _decimal(_field(line, "equivalents", where), f"{where}.equivalents")
        total += equivalents
        item = " ".join(str(v) for v in (line.get("item"), line.get("name")) if v)
        cells = (
            f"<td>{_e(item)}</td><td>{_e(_text(line.get('month')))}</td>"
            f'<td class="num">{_e(_text(line.get("quantity")))}</td>'
            f'<td class="num">{_e(_text(line.get("equivalent_value")))}</td>'
            f'<td class="num">{_e(line["equivalents"])}</td>'
        )
        out.append(f"<tr>{cells}</tr>")
    out.append(
        f'<tr class="total"><th colspan="4">当量合计</th>'
        f'<td class="num">{_e(equivalent_total_text(total))}</td></tr>'
    )
    out.append("</table>")
    return out


def equivalent_total_text(total: Decimal) -> str:
    """Equivalents as shown: 4 places, no thousands separator ("1234.5000")."""
    return format(total.quantize(Decimal("0.0001")), "f")


def _amounts_table(share: Mapping[str, Any]) -> list[str]:
    sid = str(share.get("staff_id"))

    def m(key: str) -> str:
        return money_text(_field(share, key, f"staff[{sid}]"), f"staff[{sid}].{key}")

    contribution = _money(share.get("floor_contribution", "0"), f"staff[{sid}].floor_contribution")
    rows = [
        _row("基础性绩效", m("base"), num=True),
        _row("奖励性绩效", m("reward"), num=True),
        _row("结余再分配", m("surplus"), num=True),
        _row("保底补足", m("floor_top_up"), num=True),
        _row(
            "保底调剂（调出，减）",
            money_text(-contribution) if contribution else m("floor_contribution"),
            num=True,
        ),
        _row("绩效工资合计", m("performance_pay"), num=True, total=True),
    ]
    outside = share.get("outside") or {}
    for kind in sorted(outside):
        label = f"总量外项目：{_outside_label(kind)}"
        rows.append(
            _row(label, money_text(outside[kind], f"staff[{sid}].outside.{kind}"), num=True)
        )
    rows += [
        _row("年终考核奖", m("year_end_bonus"), num=True),
        _row("　其中财政", m("year_end_bonus_finance"), num=True),
        _row("合计", m("total"), num=True, total=True),
    ]
    return ["<h2>金额（元）</h2>", '<table class="amounts">', *rows, "</table>"]


# ---------------------------------------------------------------- XLSX


def _sheet_title(doc: Mapping[str, Any]) -> str:
    inst = _field(doc, "institution")
    return SHEET_TITLE.format(name=_text(inst.get("name")), period=_field(doc, "period"))


def _outside_kinds(doc: Mapping[str, Any]) -> list[str]:
    """Column labels for the outside-total items: the two known ones, then any others."""
    dist = _field(doc, "distribution")
    seen = {_outside_label(k) for s in _field(dist, "staff") for k in (s.get("outside") or {})}
    seen |= {_outside_label(k) for k in (_field(dist, "totals").get("outside") or {})}
    return [*OUTSIDE_COLUMNS, *sorted(seen - set(OUTSIDE_COLUMNS))]


def _outside_by_label(outside: Mapping[str, Any], where: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for kind, amount in outside.items():
        label = _outside_label(kind)
        out[label] = out.get(label, Decimal("0.00")) + _money(amount, f"{where}.{kind}")
    return out


def _staff_row(share: Mapping[str, Any], labels: Sequence[str]) -> list[Cell]:
    sid = str(_field(share, "staff_id", "distribution.staff[]"))
    where = f"staff[{sid}]"
    values: list[Cell] = [
        sid,
        _text(share.get("name")),
        _post_zh(share.get("post")),
        "在编" if share.get("establishment") else "编外",
        _decimal(_field(share, "months_share", where), f"{where}.months_share"),
        _decimal(_field(share, "weight", where), f"{where}.weight"),
    ]
    values += [_money(_field(share, c.key, where), f"{where}.{c.key}") for c in STAFF_COLUMNS[6:]]
    outside = _outside_by_label(share.get("outside") or {}, f"{where}.outside")
    values += [outside.get(label, Decimal("0.00")) for label in labels]
    values += [_money(_field(share, c.key, where), f"{where}.{c.key}") for c in TAIL_COLUMNS]
    return values


def _totals_row(totals: Mapping[str, Any], labels: Sequence[str]) -> list[Cell]:
    values: list[Cell] = [TOTAL_LABEL, "", "", "", "", ""]
    values += [
        _money(_field(totals, c.key, "totals"), f"totals.{c.key}") for c in STAFF_COLUMNS[6:]
    ]
    outside = _outside_by_label(totals.get("outside") or {}, "totals.outside")
    values += [outside.get(label, Decimal("0.00")) for label in labels]
    values += [_money(_field(totals, c.key, "totals"), f"totals.{c.key}") for c in TAIL_COLUMNS]
    return values


def _header_rows(doc: Mapping[str, Any]) -> list[tuple[str, Cell]]:
    totals = _field(_field(doc, "distribution"), "totals")
    inst = _field(doc, "institution")
    rows: list[tuple[str, Cell]] = [
        ("机构 institution", f"{_text(inst.get('name'))}（{_text(inst.get('code'))}）"),
        ("期间 period", str(_field(doc, "period"))),
        ("批次编号 run id", _text(doc.get("run_id"))),
        ("状态 state", _state(doc)),
        (
            "日志位置 log position",
            int(doc["position"]) if doc.get("position") is not None else DASH,
        ),
        ("哈希链头 chain head", _text(doc.get("chain_head"))),
        ("政策参数 policy", _policy(doc)),
    ]
    for key, label in (
        ("pool", "绩效工资总量 pool"),
        ("base_pool", "基础性绩效总额 base pool"),
        ("reward_pool", "奖励性绩效总额 reward pool"),
        ("surplus_redistributed", "结余再分配额 surplus redistributed"),
    ):
        rows.append((label, _money(_field(totals, key, "totals"), f"totals.{key}")))
    return rows


def _fill_sheet(sheet: Worksheet, doc: Mapping[str, Any]) -> None:
    from openpyxl.styles import Alignment, Border, Font, Side

    dist = _field(doc, "distribution")
    labels = _outside_kinds(doc)
    columns = (
        *STAFF_COLUMNS,
        *(Column(f"outside:{label}", label, 18) for label in labels),
        *TAIL_COLUMNS,
    )
    text_into(sheet.cell(row=1, column=1), _sheet_title(doc)).font = Font(bold=True, size=14)
    row = 2
    for label, value in _header_rows(doc):
        put(sheet, row, 1, label, bold=True)
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=2)
        put(sheet, row, 3, value)
        row += 1
    head = row + 1
    put_row(sheet, head, [c.zh for c in columns], bold=True)
    for col in range(1, len(columns) + 1):
        sheet.cell(row=head, column=col).alignment = Alignment(horizontal="center")
    row = head + 1
    for share in _field(dist, "staff"):
        put_row(sheet, row, _staff_row(share, labels))
        sheet.cell(row=row, column=5).number_format = RATIO_FORMAT
        sheet.cell(row=row, column=6).number_format = WEIGHT_FORMAT
        row += 1
    put_row(sheet, row, _totals_row(_field(dist, "totals"), labels), bold=True)
    for col in range(1, len(columns) + 1):
        sheet.cell(row=row, column=col).border = Border(top=Side(style="thin"))
    if doc.get("illustrative"):
        put(sheet, row + 2, 1, ILLUSTRATIVE_NOTE)
    sheet.freeze_panes = sheet.cell(row=head + 1, column=3)
    set_widths(sheet, columns)
    print_setup(sheet, head)


__all__ = [
    "MONEY_FORMAT",
    "SHEET",
    "equivalent_total_text",
    "money_text",
    "payslip_html",
    "payslip_section",
    "payslip_title",
    "write_distribution_sheet",
    "write_payslips",
]

"""A payout run's statement as printable HTML (支付单 / 拨付单), for the PDF (`payouts.pdf`).

Made from the same JSON as the XLSX — a compensation run's `payouts.runs.run_json(run)`, or a
fund run's (`insurance_…` kinds) — and laid out as the XLSX is: the title; the header block:
the county (`run["county"]`, else the one a built-in bundle names), then the XLSX's rows (run
id, period, kind, state, who computed and approved it, the log position, chain head, policy
bundle and digests); one row per institution (a fund run: per medical community) with the
XLSX's columns and a 合计 row; the adjustment lines (earlier periods recomputed, with their
causes) when there are any. Money with thousands separators and the fen ("1,234,567.89", as
the XLSX's `#,##0.00` shows it); every value escaped; no JavaScript, nothing fetched.

Printed A4 landscape with 12 mm margins, the table header repeated on every page and
「第 N 页 / 共 M 页」 at the foot of each page (CSS page counters).

`narrow(run, codes)` keeps only some rows — what a clerk may print — and drops the county's
own figures: the statement then has no 合计 rows and says whose lines it shows.
"""

from __future__ import annotations

import html
from collections.abc import Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from dangliang.payouts import insurance_statements as fund
from dangliang.payouts import statements as st
from dangliang.payouts.payslips import money_text
from dangliang.payouts.pdf import FONT_STACK
from dangliang.payouts.statements import DASH, ILLUSTRATIVE_NOTE, TOTAL_LABEL, Cell, Column
from dangliang.policy.bundle_loader import BUILTIN_BUNDLES, load_builtin_bundle

COUNTY_LABEL = "县（市、区） county"
SCOPE_NOTE = "本单仅列出 {codes} 的数据，不含全县汇总 / only the lines of {codes}; no county totals"
ADJUSTMENTS_TITLE = "调整明细（以前期间重算） adjustments"
FUND_ADJUSTMENT_COLUMNS = (
    Column("code", "医共体编码", money=False),
    Column("period", "调整年度", money=False),
    Column("settled_by", "原清算批次", money=False),
    Column("paid", "已支付"),
    Column("final_now", "重算应拨"),
    Column("amount", "调整额"),
    Column("causes", "原因", money=False),
)
"""The columns of a fund run's 「调整明细」 sheet (`insurance_statements`)."""
COUNTY_WIDE = ("totals", "fund", "counts", "figures", "county_steps")
"""What a narrowed statement leaves out: the county's totals and the fund's own figures."""

CSS = (
    "@page{size:A4 landscape;margin:12mm;"
    "@bottom-left{content:string(doctitle);font-size:7.5pt;color:#444}"
    '@bottom-center{content:"第 " counter(page) " 页 / 共 " counter(pages) " 页";'
    "font-size:7.5pt}"
    "@bottom-right{content:string(runref);font-size:7.5pt;color:#444}}"
    f"body{{font-family:{FONT_STACK};font-size:8.5pt;color:#000;background:#fff;margin:0}}"
    "h1{font-size:14pt;text-align:center;margin:0 0 4pt;string-set:doctitle content()}"
    "h2{font-size:10.5pt;margin:10pt 0 3pt}"
    ".ref{text-align:center;margin:0 0 4pt;string-set:runref content()}"
    ".note{text-align:center;color:#a00;margin:0 0 4pt}"
    "table{border-collapse:collapse;margin:0 0 6pt}"
    "table.lines{width:100%}"
    "th,td{border:0.5pt solid #777;padding:1.5pt 3pt;vertical-align:top;text-align:left}"
    "thead th{background:#eee;text-align:center}"
    "table.header th{font-weight:normal;color:#333;white-space:nowrap}"
    "td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    "tr{break-inside:avoid}"
    "tr.total td{font-weight:bold;border-top:1.2pt solid #000}"
    ".adjustments th,.adjustments td:not(:last-child){white-space:nowrap}"
    '.mono{font-family:"Noto Sans Mono CJK SC",monospace;word-break:break-all}'
    "@media screen{body{margin:8mm}}"
)


def statement_html(run: Mapping[str, Any]) -> str:
    """The run's statement as one self-contained, printable HTML page (UTF-8)."""
    fund_kind = fund.KINDS.get(str(run.get("kind")))
    kind = fund_kind or st.run_kind(run)
    title = st.title(run, kind)
    adjustment_columns: Sequence[Column]
    if fund_kind is None:
        columns = st.table_columns(kind)
        rows = [st.institution_values(i, columns) for i in run["institutions"]]
        totals = [TOTAL_LABEL, *st.totals_values(run, columns)] if "totals" in run else None
        adjustment_columns, lines = st.ADJUSTMENT_COLUMNS, list(st.adjustment_rows(run))
    else:  # the 拨付单's own columns and values, so that the PDF and the XLSX agree
        columns = fund._columns(fund_kind)
        rows = [_community_values(row, columns) for row in run["communities"]]
        totals = _fund_totals(run["totals"], columns) if "totals" in run else None
        adjustment_columns, lines = FUND_ADJUSTMENT_COLUMNS, list(_fund_adjustment_rows(run))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="ref">批次编号 {_e(run.get("run_id", DASH))}</p>',
    ]
    if run.get("illustrative"):
        parts.append(f'<p class="note">{_e(ILLUSTRATIVE_NOTE)}</p>')
    if "scope" in run:
        codes = "、".join(str(c) for c in run["scope"]) or DASH
        parts.append(f'<p class="note">{_e(SCOPE_NOTE.format(codes=codes))}</p>')
    parts += _header_table(run, kind)
    parts += _table("lines statement", columns, rows, totals)
    if lines:
        parts.append(f"<h2>{_e(ADJUSTMENTS_TITLE)}</h2>")
        total = _sum_row(lines) if "totals" in run else None  # narrowed: no 合计 at all
        parts += _table("lines adjustments", adjustment_columns, lines, total)
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def narrow(run: Mapping[str, Any], codes: Collection[str]) -> dict[str, Any]:
    """The run with only the rows of `codes` (institutions; a fund run's communities) and
    none of the county's own figures; `scope` names the rows kept."""
    key = "communities" if str(run.get("kind")) in fund.KINDS else "institutions"
    out = {k: v for k, v in run.items() if k not in COUNTY_WIDE}
    out[key] = [row for row in run[key] if row["code"] in codes]
    out["scope"] = [row["code"] for row in out[key]]
    return out


@cache
def county_of(bundle: str) -> str | None:
    """The county a built-in bundle's metadata names (the examples'); None for a county's own
    bundle: the log keeps a bundle's parameters, not its metadata."""
    name = bundle.removesuffix(".yaml")
    if name not in BUILTIN_BUNDLES:
        return None
    return load_builtin_bundle(name).metadata.get("county")


# ---------------------------------------------------------------- rows


def _community_values(row: Mapping[str, Any], columns: Sequence[Column]) -> list[Cell]:
    return [fund._value(row, c.key) if c.money else str(row[c.key]) for c in columns]


def _fund_totals(totals: Mapping[str, Any], columns: Sequence[Column]) -> list[Cell]:
    """A fund run totals what adds up (budget, spending, what is paid), not every column (no
    balance): a column it does not total is left blank, not shown as 0.00."""
    return [
        TOTAL_LABEL,
        "",
        *(Decimal(totals[c.key]) if c.key in totals else "" for c in columns[2:]),
    ]


def _fund_adjustment_rows(run: Mapping[str, Any]) -> Iterator[list[Cell]]:
    for row in run["communities"]:
        for line in row.get("adjustment_lines") or ():
            yield [
                str(row["code"]),
                str(line["period"]),
                str(line["settled_by"]),
                Decimal(line["paid"]),
                Decimal(line["final_now"]),
                Decimal(line["amount"]),
                "\n".join(str(c) for c in line.get("causes") or ()),
            ]


def _sum_row(lines: Sequence[Sequence[Cell]]) -> list[Cell]:
    """合计 under the last money column (the adjustment amount), blank elsewhere."""
    money = [n for n, v in enumerate(lines[0]) if isinstance(v, Decimal)][-1]
    out: list[Cell] = ["" for _ in lines[0]]
    out[0] = TOTAL_LABEL
    out[money] = sum((Decimal(line[money]) for line in lines), Decimal(0))
    return out


# ---------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(value: Cell) -> str:
    if isinstance(value, Decimal):
        return f'<td class="num">{money_text(value)}</td>'
    if isinstance(value, int):
        return f'<td class="num">{value}</td>'
    return f"<td>{'<br>'.join(_e(line) for line in str(value).splitlines())}</td>"


def _table(
    cls: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    totals: Sequence[Cell] | None,
) -> list[str]:
    head = "".join(f"<th>{_e(c.zh)}</th>" for c in columns)
    out = [f'<table class="{cls}">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    out += [f"<tr>{''.join(_cell(v) for v in values)}</tr>" for values in rows]
    if totals is not None:
        out.append(f'<tr class="total">{"".join(_cell(v) for v in totals)}</tr>')
    out += ["</tbody>", "</table>"]
    return out


def _header_table(run: Mapping[str, Any], kind: st.Kind) -> list[str]:
    county = run.get("county") or county_of(str((run.get("policy") or {}).get("bundle")))
    rows = [(COUNTY_LABEL, (county or DASH,)), *st.header_rows(run, kind)]
    out = ['<table class="header">']
    for label, values in rows:
        text = " / ".join(str(v) for v in values)
        mono = ' class="mono"' if label == st.HEADER_LABELS["chain_head"] else ""
        out.append(f"<tr><th>{_e(label)}</th><td{mono}>{_e(text)}</td></tr>")
    out.append("</table>")
    return out


__all__ = ["CSS", "county_of", "narrow", "statement_html"]

"""A person's text in a spreadsheet: written as text, never run as a formula.

Every document dangliang writes for people to open in a spreadsheet — the statements (支付单,
拨付单), the distribution sheets, the problem reports of imports and the rejects files — puts
the text that people supplied (institution, staff and community names, user names, reasons,
references, file names, the cells of an imported file) through these functions, so that a
name such as `=HYPERLINK("http://x","y")` is shown, not run.

- **XLSX** (`text_into`, `text_cell`): the cell's type is set to string (an inline string,
  data type "s"), so `=…`, `+…`, `-…`, `@…` and `#N/A` come back exactly as supplied. Text that a
  spreadsheet would take for a formula if it were typed (see `looks_like_formula`) also gets
  the quote-prefix style — the mark Excel and LibreOffice give text entered after a leading
  apostrophe — so that editing the cell keeps it text. The text itself is not changed, with
  one exception the format forces: characters XML cannot hold (control characters other than
  tab and line feed) or would not keep (a carriage return, read back as a line feed) are
  written in the format's own escape `_xHHHH_` (ECMA-376 Part 1, §22.9.2.19; what Excel writes
  itself), which spreadsheets show as the character; a literal `_xHHHH_` in the text is
  escaped the same way (`_x005F_xHHHH_`) so that it is shown as written.
- **CSV** (`csv_text`): a CSV cell has no type, so the only defence is in the text (OWASP's
  CSV-injection advice): a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
  gets a leading apostrophe `'`, unless it is a plain number (`-2`, `+3.50`: a spreadsheet reads
  it as a number and runs nothing). `from_csv_text` takes the apostrophe off again; the CSV
  reader does, so a rejects file imports back as the cells it was made of.
"""

from __future__ import annotations

import re
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What a cell's text starts with when a spreadsheet may run it (OWASP, CSV injection)."""
QUOTE = "'"

_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_NOT_IN_XML = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]")  # tab and line feed are kept
_ESCAPE_LOOKALIKE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet could run `text` as a formula (starts with =, +, -, @, tab,
    carriage return), or read it as an error value (`#N/A`, `#REF!`…)."""
    return text.startswith(FORMULA_START) or text.startswith("#")


def xlsx_text(text: str) -> str:
    """`text` as an XLSX cell stores it: unchanged, except characters XML cannot hold or keep
    and literal `_xHHHH_`, written in the format's escape (spreadsheets show the original)."""
    if "_x" in text:
        text = _ESCAPE_LOOKALIKE.sub(r"_x005F_\1", text)
    if _NOT_IN_XML.search(text):
        text = _NOT_IN_XML.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    return text


def text_into(cell: Any, text: str) -> Any:
    """Put `text` into an openpyxl cell (of a normal or a write-only sheet) as a string,
    never a formula or an error value; the cell."""
    cell.value = xlsx_text(text)
    cell.data_type = "s"
    if looks_like_formula(text):
        cell.quotePrefix = True
    return cell


def text_cell(sheet: Any, text: str) -> Any:
    """A write-only sheet's cell holding `text` as a string (see `text_into`)."""
    from openpyxl.cell import WriteOnlyCell  # imported here: only a spreadsheet needs it

    return text_into(WriteOnlyCell(sheet), text)


def csv_text(text: str) -> str:
    """`text` for a CSV cell that spreadsheets open: a leading `'` when it would start a
    formula (a plain number stays as it is), or when it already starts with `'` before one
    (so that `from_csv_text` gives back exactly `text`)."""
    if _needs_quote(text):
        return QUOTE + text
    return text


def from_csv_text(text: str) -> str:
    """The text `csv_text` was given: its leading `'` taken off again."""
    if text.startswith(QUOTE) and _needs_quote(text[1:]):
        return text[1:]
    return text


def _needs_quote(text: str) -> bool:
    while text.startswith(QUOTE):
        text = text[1:]
    return text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text)

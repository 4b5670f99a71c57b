"""docs/formats.md documents src/dangliang/importers/formats.py: the two must not drift apart.

Every header spelling (canonical name, Chinese label, alias) and every vocabulary word the code
accepts must appear verbatim on the page; each format's column table must list exactly that
format's columns, with the same label, aliases and required flag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from dangliang.importers import formats
from dangliang.importers.fields import validate_chunk
from dangliang.importers.formats import FORMATS, Column, FileFormat
from dangliang.importers.services import ServiceRow

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "formats.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

VOCABULARIES: dict[str, Mapping[str, Sequence[str]]] = {
    "INSTITUTION_KINDS": formats.INSTITUTION_KINDS,
    "CATEGORIES": formats.CATEGORIES,
    "POSTS": formats.POSTS,
    "ESTABLISHMENT": formats.ESTABLISHMENT,
    "CORRECTION_ACTIONS": formats.CORRECTION_ACTIONS,
}


def all_columns() -> list[tuple[str, Column]]:
    return [(f.name, c) for f in FORMATS.values() for c in f.columns]


def section(fmt: FileFormat) -> str:
    """The text of the `## name / label` section of the document."""
    heading = f"## {fmt.name} / {fmt.label_zh}"
    assert heading in DOC, f"docs/formats.md has no section {heading!r}"
    start = DOC.index(heading)
    end = DOC.find("\n## ", start + len(heading))
    return DOC[start : end if end != -1 else len(DOC)]


def column_table(fmt: FileFormat) -> dict[str, list[str]]:
    """canonical name → the cells of its row in the section's column table."""
    rows: dict[str, list[str]] = {}
    for line in section(fmt).splitlines():
        m = re.match(r"^\| `([a-z_]+)` \|", line)
        if m:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[m.group(1)] = cells
    return rows


# --------------------------------------------------------------------- words on the page


def test_the_document_exists_and_mentions_the_source_module() -> None:
    assert DOC_PATH.is_file()
    assert "src/dangliang/importers/formats.py" in DOC


@pytest.mark.parametrize(
    ("fmt", "column"), all_columns(), ids=[f"{f}.{c.name}" for f, c in all_columns()]
)
def test_every_header_spelling_appears_verbatim(fmt: str, column: Column) -> None:
    assert f"`{column.name}`" in DOC
    for spelling in column.all_names:
        assert spelling in DOC, f"{fmt}.{column.name}: {spelling!r} missing from docs/formats.md"


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_has_a_section_with_its_key(name: str) -> None:
    fmt = FORMATS[name]
    text = section(fmt)
    assert f"[{fmt.name}](#" in DOC  # listed in the overview table
    key = " + ".join(f"`{k}`" for k in fmt.key)
    assert f"Key: {key}" in text


@pytest.mark.parametrize("vocabulary", list(VOCABULARIES))
def test_every_vocabulary_code_and_spelling_appears(vocabulary: str) -> None:
    for code, spellings in VOCABULARIES[vocabulary].items():
        row = next((line for line in DOC.splitlines() if line.startswith(f"| `{code}` |")), None)
        assert row is not None, f"{vocabulary}: no table row for `{code}`"
        for s in spellings:
            assert s in row, f"{vocabulary}: {s!r} missing from the row of `{code}`"


def test_true_false_words_appear() -> None:
    true_row = next(line for line in DOC.splitlines() if line.startswith("| true |"))
    false_row = next(line for line in DOC.splitlines() if line.startswith("| false |"))
    for word in formats.TRUE_WORDS:
        shown = word if not word.isascii() else f"`{word}`"
        assert shown in true_row, word
    for word in formats.FALSE_WORDS:
        shown = word if not word.isascii() else f"`{word}`"
        assert shown in false_row, word


# ------------------------------------------------------------------ each format's table


@pytest.mark.parametrize(
    ("fmt_name", "column"), all_columns(), ids=[f"{f}.{c.name}" for f, c in all_columns()]
)
def test_column_row_in_its_format_table(fmt_name: str, column: Column) -> None:
    table = column_table(FORMATS[fmt_name])
    assert column.name in table, f"the {fmt_name} table has no row for `{column.name}`"
    cells = table[column.name]
    name, label, others, required = cells[0], cells[1], cells[2], cells[3]
    assert name == f"`{column.name}`"
    assert label == column.label_zh
    documented = [a.strip() for a in others.split(",") if a.strip()]
    assert documented == list(column.aliases)
    assert required == ("yes" if column.required else "no")


@pytest.mark.parametrize("name", list(FORMATS))
def test_format_table_lists_no_extra_columns(name: str) -> None:
    fmt = FORMATS[name]
    assert set(column_table(fmt)) <= set(fmt.column_names)


@pytest.mark.parametrize("name", list(FORMATS))
def test_csv_examples_use_known_headers(name: str) -> None:
    """Every CSV example header in a section names only columns of that format."""
    fmt = FORMATS[name]
    accepted = fmt.header_map()
    blocks = re.findall(r"```csv\n(.*?)```", section(fmt), flags=re.S)
    assert blocks, f"no CSV example for {name}"
    for block in blocks:
        header = block.splitlines()[0].split(",")
        unknown = [h for h in header if formats.normalise_header(h) not in accepted]
        assert unknown == [], f"{name}: example header has unknown columns {unknown}"
        missing = [
            c.name
            for c in fmt.columns
            if c.required
            and not any(
                formats.normalise_header(h) == formats.normalise_header(n)
                for h in header
                for n in c.all_names
            )
        ]
        assert missing == [], f"{name}: example header lacks required {missing}"


# ------------------------------------------------------------- the example problem report


def test_example_problem_lines_match_the_messages_the_code_produces() -> None:
    base = {
        "source_id": "S1",
        "institution_code": "C02",
        "staff_id": "S00078",
        "item_code": "BM001",
        "quantity": "1",
        "service_date": "2024-01-02",
        "patient_ref": None,
        "compliant": None,
    }
    _, problems = validate_chunk(
        TypeAdapter(list[ServiceRow]),
        "services.csv",
        [(7, {**base, "quantity": "-2"}), (12, {**base, "service_date": "2024-02-30"})],
    )
    assert len(problems) == 2
    for p in problems:
        assert f"  {p}\n" in DOC, f"docs/formats.md does not show: {p}"

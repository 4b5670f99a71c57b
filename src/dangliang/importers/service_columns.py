"""Service records checked a column at a time (按列校验): the import's fast path.

The row-by-row checks (`fields` types through pydantic, then `services.check_references`) cost
about 5 µs a row in Python. Almost every row of a real file is plain: codes that are codes, a
whole quantity, an ISO date, a staff member posted at the row's institution that day. This
module finds those rows for a whole chunk at once with polars — every check one expression over
a column, the reference checks as look-ups and one join — and builds their compact states as
columns too. A row it is not sure of (any check failing, a decimal quantity, a date written
another way, text JSON must escape, a staff member with overlapping postings) is left to the
row-by-row path, which accepts it or names its problems exactly as it always has: the fast path
only ever says "this row is fine", never what is wrong, so the problem report cannot change.

`tests/unit/importers/test_service_columns.py` checks, for generated rows good and bad, that
the fast path accepts only rows the row-by-row path accepts, and prepares them byte for byte
the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import polars as pl

from dangliang.domain.ids import service_record_id_hex
from dangliang.importers.csv_columns import as_read, rows_of
from dangliang.importers.formats import FALSE_WORDS, SERVICES, TRUE_WORDS
from dangliang.ledger.compact import EPOCH_ORDINAL
from dangliang.projections.registry import Registry

COLUMNS = tuple(SERVICES.column_names)  # source_id, institution_code, … compliant
_CODE = r"^[A-Za-z0-9_.\-]{1,64}$"
_WHOLE = r"^[1-9][0-9]{0,5}$"  # 1 … 999,999: canonical as written (a decimal goes row by row)
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_JSON_PLAIN = r'^[^"\\\x00-\x1f]*$'  # nothing JSON would escape
_YES = [w.lower() for w in TRUE_WORDS]
_NO = [w.lower() for w in FALSE_WORDS]

Prepared = tuple[str, int, str]
Numbered = list[tuple[int, dict[str, Any]]]


class ServiceColumns:
    """The fast path for one import, with the reference data it checks against."""

    def __init__(self, registry: Registry, today: date):
        self.today = today
        self.institutions = pl.Series(sorted(registry.institutions), dtype=pl.String)
        starts = {
            item: days[0]
            for item, days in registry.item_value_starts.items()
            if days and item in registry.item_categories
        }
        self.first_value = pl.DataFrame(
            {"item_code": list(starts), "first_value": _dates(starts.values())},
            schema={"item_code": pl.String, "first_value": pl.Date},
        )
        self.postings = _single_postings(registry)

    def split(self, chunk: Sequence[tuple[int, dict[str, Any]]]) -> tuple[list[Prepared], Numbered]:
        """`(prepared, rest)` of rows as the readers yield them: the rows found fine, as
        `(id hex, row number, compact body)`, and the rows left to the row-by-row path."""
        if not chunk:
            return [], []
        try:
            frame = pl.DataFrame(
                {
                    "row": [n for n, _ in chunk],
                    **{c: [r.get(c) for _, r in chunk] for c in COLUMNS},
                },
                schema={"row": pl.Int64, **dict.fromkeys(COLUMNS, pl.String)},
            )
        except (TypeError, pl.exceptions.PolarsError):  # a cell that is not text: row by row
            return [], list(chunk)
        prepared, rest = self._split(self._checked(frame))
        taken = set(rest["row"].to_list())
        return prepared, [(n, r) for n, r in chunk if n in taken]

    def split_frame(self, frame: pl.DataFrame) -> tuple[list[Prepared], Numbered]:
        """The same for a frame of cells as in a plain CSV file (`csv_columns`): rows whose
        cells the `csv` reader would change go row by row too, as its dicts."""
        prepared, rest = self._split(self._checked(frame, as_read(COLUMNS)))
        return prepared, rows_of(rest, COLUMNS)

    def _split(self, checked: pl.DataFrame) -> tuple[list[Prepared], pl.DataFrame]:
        fine = checked.filter(pl.col("fine"))
        ids = [
            service_record_id_hex(i, s)
            for i, s in zip(fine["institution_code"], fine["source_id"], strict=True)
        ]
        rows, bodies = fine["row"].to_list(), fine["body"].to_list()
        return list(zip(ids, rows, bodies, strict=True)), checked.filter(~pl.col("fine"))

    def _checked(self, frame: pl.DataFrame, *more: pl.Expr) -> pl.DataFrame:
        c = pl.col
        plain = [c(name).str.contains(_JSON_PLAIN) for name in COLUMNS]
        day = c("service_date").str.to_date("%Y-%m-%d", strict=False)
        compliant = c("compliant").str.to_lowercase()
        frame = frame.with_columns(day=day).join(
            self.first_value, on="item_code", how="left", maintain_order="left"
        )
        posted = (
            frame.select("row", "institution_code", "staff_id", "day")
            .join(self.postings, on=["staff_id", "institution_code"], how="inner")
            .filter(
                (c("from_date") <= c("day")) & (c("to_date").is_null() | (c("day") <= c("to_date")))
            )
            .select("row")
            .unique()
            .with_columns(posted=pl.lit(True))
        )
        frame = frame.join(posted, on="row", how="left", maintain_order="left")
        fine = pl.all_horizontal(
            c("source_id").is_not_null(),
            c("source_id").str.len_chars() <= 128,
            *(
                c(code).str.contains(_CODE)
                for code in ("institution_code", "staff_id", "item_code")
            ),
            c("quantity").str.contains(_WHOLE),
            c("service_date").str.contains(_ISO_DATE),
            c("day").is_not_null(),
            c("day") <= pl.lit(self.today.toordinal() - EPOCH_ORDINAL, pl.Int32).cast(pl.Date),
            c("compliant").is_null() | compliant.is_in(_YES) | compliant.is_in(_NO),
            *(p.fill_null(True) for p in plain),
            c("institution_code").is_in(self.institutions.implode()),
            c("first_value").is_not_null() & (c("first_value") <= c("day")),
            c("posted").fill_null(False),
            *more,
        ).fill_null(False)
        return frame.with_columns(fine=fine, body=_body(compliant.is_in(_NO)))


def _body(non_compliant: pl.Expr) -> pl.Expr:
    """`ledger.compact.service_record_tail`, as columns (only used on rows with plain text:
    nothing in them needs escaping)."""
    c = pl.col

    def q(name: str) -> pl.Expr:
        return pl.concat_str(pl.lit('"'), c(name), pl.lit('"'))

    patient = pl.when(c("patient_ref").is_null()).then(pl.lit("null")).otherwise(q("patient_ref"))
    tail = (
        pl.when(non_compliant.fill_null(False))
        .then(pl.concat_str(pl.lit(","), patient, pl.lit(","), c("quantity"), pl.lit(",0]")))
        .when(c("quantity") != "1")
        .then(pl.concat_str(pl.lit(","), patient, pl.lit(","), c("quantity"), pl.lit("]")))
        .when(c("patient_ref").is_not_null())
        .then(pl.concat_str(pl.lit(","), q("patient_ref"), pl.lit("]")))
        .otherwise(pl.lit("]"))
    )
    return pl.concat_str(
        pl.lit(","),
        q("institution_code"),
        pl.lit(","),
        q("source_id"),
        pl.lit(","),
        q("staff_id"),
        pl.lit(","),
        q("item_code"),
        pl.lit(","),
        c("day").cast(pl.Int32).cast(pl.String),  # days since 1970-01-01
        tail,
    )


def _single_postings(registry: Registry) -> pl.DataFrame:
    """Each staff member's postings, for staff whose postings never overlap (for them "posted
    at this institution that day" is one join; the others go row by row, where the first
    matching posting decides)."""
    staff, institution, starts, ends = [], [], [], []
    for person, postings in registry.staff_postings.items():
        if person not in registry.staff_names or _overlapping(postings):
            continue
        for from_date, to_date, inst in postings:
            staff.append(person)
            institution.append(inst)
            starts.append(from_date)
            ends.append(to_date)
    return pl.DataFrame(
        {
            "staff_id": staff,
            "institution_code": institution,
            "from_date": _dates(starts),
            "to_date": _dates(ends),
        },
        schema={
            "staff_id": pl.String,
            "institution_code": pl.String,
            "from_date": pl.Date,
            "to_date": pl.Date,
        },
    )


def _dates(days: Iterable[date | None]) -> pl.Series:
    """Dates as a polars column, built from their day numbers: polars takes a Python value
    for a date only if its type is exactly `datetime.date`, and a subclass (a test's frozen
    clock makes those, and so may a date library) would become an untyped object column."""
    ordinals = [None if d is None else d.toordinal() - EPOCH_ORDINAL for d in days]
    return pl.Series(ordinals, dtype=pl.Int32).cast(pl.Date)


def _overlapping(postings: Sequence[tuple[date, date | None, str]]) -> bool:
    ordered = sorted(postings, key=lambda p: p[0])
    for (_, end, _), (start, _, _) in itertools.pairwise(ordered):
        if end is None or start <= end:
            return True
    return False

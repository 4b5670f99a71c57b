"""The bulk import (批量导入) of large files of facts: validate the whole file, then append in
batches. Service records (`services`), claims and per-person enrolment (`bulk_insurance`)
each describe themselves with a `BulkSpec`; this module does the rest, the same for all.

Pass 1 streams the file: every row is checked (types, then the spec's reference checks) and
every problem is collected with its file, row and column; valid rows are turned into the
stored form of their created event (the spec's body builder, byte for byte what the library's
mapper writes) and staged in a temporary file (`staging.Staging`), so memory stays flat however
large the file is. Rows already in the log with the same content are counted and skipped; the
same key with *different* content is a problem (send a corrections file instead); a key
repeated within the file is a problem naming the first row.

Only when the file has no problem (or with `skip_bad_rows`) does pass 2 append the staged
events, one transaction per batch. A killed import leaves whole batches; running it again
finds them present and completes the rest. Repeats are refused by the store's primary key.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from json.encoder import encode_basestring as json_encode_string  # what json.dumps uses
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from pydantic import TypeAdapter

from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.cell_text import csv_text
from dangliang.importers.csv_columns import NotPlain, column_frames
from dangliang.importers.fields import validate_chunk
from dangliang.importers.formats import FileFormat
from dangliang.importers.readers import open_table
from dangliang.ledger.bulk import BatchOpening, BulkWriter, ImportBatches
from dangliang.ledger.staging import NEW, STORED, Staging

Progress = Callable[[str, int, int], Any]

Prepared = tuple[str, int, str]  # (aggregate id hex, row number, stored body without timestamp)
RawRows = dict[int, dict[str, Any]]
InFlight = tuple["Future[dict[str, bytes]]", list[Prepared], list[Problem], RawRows]
Checked = tuple[list[Prepared], list[Problem], RawRows]
Numbered = list[tuple[int, dict[str, Any]]]
Split = tuple[list[Prepared], Numbered]


class FastPath(Protocol):
    """A chunk checked a column at a time (`service_columns`): the rows found fine, prepared,
    and the rest for the row-by-row checks."""

    def split(self, chunk: Numbered) -> Split: ...

    def split_frame(self, frame: Any) -> Split:
        """The same for a frame of a plain CSV file's cells (`csv_columns.column_frames`)."""


R = TypeVar("R")


@dataclass
class ImportResult:
    """What an import did (导入结果)."""

    file: str
    import_ref: str
    rows: int = 0
    inserted: int = 0
    already_present: int = 0
    rejected: int = 0
    rejects_file: Path | None = None
    problems: list[Problem] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase, for benchmarks

    def summary(self) -> str:
        text = (
            f"{self.file}: 共 {self.rows} 行，新增 {self.inserted}，已存在 {self.already_present}，"
            f"拒收 {self.rejected} / {self.rows} rows, {self.inserted} new, "
            f"{self.already_present} already present, {self.rejected} rejected"
        )
        if self.rejects_file:
            text += f" (rejects: {self.rejects_file})"
        return text


@dataclass(frozen=True)
class BulkSpec(Generic[R]):
    """What one kind of bulk file is: its format, its row model, the checks against the
    reference data, the key of its aggregate and the stored form of its created event.

    `check(file, rows, today)` returns the rows that pass and the problems of the others;
    `key_hex(row)` is the aggregate id (`uuid5_hex`); `body(row, tail)` the stored state of
    the created event. In the long form (`compact` False) that is the library's JSON after its
    timestamp, ending with `tail` (`recorded_tail`): byte for byte what the library's mapper
    writes for the aggregate's own event (each kind has its test). In the compact form
    (`ledger.compact`: service records) it is the record's state after its batch's number,
    and `same(stored, body)` says whether a stored state holds the same facts. `fast(today)`,
    when given, checks a chunk a column at a time and returns the rows it found fine,
    prepared, and the rest for the row-by-row checks (which alone name problems).
    `key_column`, `key_zh` and `key_en` name the key in the problems about it.
    """

    fmt: FileFormat
    rows: TypeAdapter[list[R]]
    check: Callable[[str, list[tuple[int, R]], date], tuple[list[tuple[int, R]], list[Problem]]]
    key_hex: Callable[[R], str]
    body: Callable[[R, str], str]
    created_topic: str
    key_column: str
    key_zh: str
    key_en: str
    compact: bool = False
    fast: Callable[[date], FastPath] | None = None
    same: Callable[[bytes, str], bool] = field(
        default=lambda stored, body: content_part(stored) == content_part(body.encode())
    )


def file_import_ref(path: Path) -> str:
    """`sha256:` + the first 16 hex digits of the file's digest: which file brought a record."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:16]


def content_part(state: bytes) -> bytes:
    """The part of a stored created event that is the fact itself: without the timestamp,
    the actor and the import reference (which differ between two imports)."""
    return state[state.index(b'"originator_topic"') : state.rindex(b',"actor":')]


_q = json_encode_string


def recorded_tail(actor: str, import_ref: str) -> str:
    """The end of every bulk-imported created event: who imported it, from which file."""
    return f',"actor":{_q(actor)},"import_ref":{_q(import_ref)}}}'


@dataclass(frozen=True)
class CheckContext:
    """What the checks of one import need."""

    file: str
    today: date
    actor: str
    import_ref: str


class BulkImporter(Generic[R]):
    def __init__(
        self,
        spec: BulkSpec[R],
        writer: BulkWriter,
        *,
        actor: str,
        today: date,
        chunk_size: int = 10_000,
        batch_size: int = 100_000,
        batches: ImportBatches | None = None,
        frame_rows: int = 50_000,
    ):
        if spec.compact and batches is None:
            raise ValueError("a compact-form import needs its ImportBatches")
        self.spec = spec
        self.batches = batches
        self.writer = writer
        self.actor = actor
        self.today = today
        self.chunk_size = chunk_size
        self.frame_rows = frame_rows  # rows a plain CSV file is read in at a time
        self.batch_size = batch_size

    def run(
        self,
        path: Path,
        *,
        skip_bad_rows: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        path = Path(path)
        result = ImportResult(file=str(path), import_ref=file_import_ref(path))
        self._import_ref = result.import_ref
        staging = Staging()
        try:
            started = time.perf_counter()
            try:
                problems, rejected_rows = self._validate_and_stage(
                    path, result, staging, progress, keep_rejected=skip_bad_rows
                )
            except NotPlain:  # a ragged line in a file that looked plain: row by row, again
                staging.close()
                staging = Staging()
                result.rows = 0
                problems, rejected_rows = self._validate_and_stage(
                    path, result, staging, progress, columnar=False, keep_rejected=skip_bad_rows
                )
            result.seconds["validate"] = time.perf_counter() - started
            result.problems = problems
            file_level = any(p.row is None or p.row <= 1 for p in problems)
            if problems and (file_level or not skip_bad_rows):
                raise ProblemsFound(problems)
            result.rejected = len({p.row for p in problems})
            if problems:
                result.rejects_file = write_rejects(path, rejected_rows, problems, self.spec.fmt)
            started = time.perf_counter()
            self._append(staging, result, progress)
            result.seconds["write"] = time.perf_counter() - started
        finally:
            staging.close()
        return result

    # ---- pass 1 -------------------------------------------------------------------------

    def _validate_and_stage(
        self,
        path: Path,
        result: ImportResult,
        staging: Staging,
        progress: Progress | None,
        *,
        columnar: bool = True,
        keep_rejected: bool = True,
    ) -> tuple[list[Problem], dict[int, dict[str, Any]]]:
        """Check every row, chunk by chunk; the look-up of already-stored records for one
        chunk runs on a thread (inside the database, GIL released) while the next chunk is
        checked. (Checking in worker processes was measured slower on two cores: moving the
        rows between processes costs about what the checks do.) A plain CSV file is read a
        batch of columns at a time when the spec has a fast path (`csv_columns`). The rows
        with problems are kept, for the rejects file, only if `keep_rejected` (a refused
        file's rows are not needed: a file of a million bad rows would hold them all)."""
        spec = self.spec
        reader = open_table(path, spec.fmt)
        context = CheckContext(reader.display_name, self.today, self.actor, self._import_ref)
        problems: list[Problem] = list(reader.problems)
        rejected_rows: dict[int, dict[str, Any]] = {}
        key_hashes = [array("Q") for _ in range(256)]
        lookups: deque[InFlight] = deque()

        def settle() -> None:
            future, prepared, bad, raw = lookups.popleft()
            bad.extend(self._stage(staging, context.file, prepared, future.result()))
            problems.extend(bad)
            if keep_rejected:
                rejected_rows.update((p.row, raw[p.row]) for p in bad if p.row in raw)

        fast = spec.fast(self.today) if spec.fast and columnar else None
        frames = column_frames(reader, self.frame_rows) if fast else None
        parts: Iterator[Split]
        if fast is not None and frames is not None:
            reader.close()
            parts = (fast.split_frame(frame) for frame in frames)
        else:
            parts = (([], chunk) for chunk in _chunks(reader, self.chunk_size))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dangliang-lookup") as db:
            for found, chunk in parts:
                if frames is not None:  # the frame's rows left to the row-by-row checks
                    prepared, bad, raw = check_chunk(spec, context, chunk, found=found)
                else:
                    prepared, bad, raw = check_chunk(spec, context, chunk, fast)
                for oid, _, _ in prepared:
                    h = int(oid[:16], 16)
                    key_hashes[h >> 56].append(h)
                stored = db.submit(self.writer.first_events, [oid for oid, _, _ in prepared])
                lookups.append((stored, prepared, bad, raw))
                if len(lookups) > 1:
                    settle()
                result.rows += len(chunk) + len(found)
                if progress:
                    progress("validate", *reader.progress())
            while lookups:
                settle()
        problems.extend(p for p in reader.problems if p not in problems)
        duplicates = _duplicate_hashes(key_hashes)
        if duplicates:
            problems.extend(self._duplicate_problems(context.file, staging, duplicates))
        wanted = (
            {p.row for p in problems if p.row and p.row > 1 and p.row not in rejected_rows}
            if keep_rejected
            else set()
        )
        if wanted:
            # The rejects file shows the cells as the file had them: read those rows again.
            rejected_rows.update((n, row) for n, row in open_table(path, spec.fmt) if n in wanted)
        return problems, rejected_rows

    def _stage(
        self,
        staging: Staging,
        name: str,
        prepared: list[Prepared],
        existing: dict[str, bytes],
    ) -> list[Problem]:
        """Stage a chunk, marking rows the log already has with the same content; the same
        key with other content is a problem (a change goes through a corrections file)."""
        if not existing:
            staging.add([(oid, row_number, body, NEW) for oid, row_number, body in prepared])
            return []
        spec = self.spec
        entries: list[tuple[str, int, str, int]] = []
        problems: list[Problem] = []
        for oid, row_number, body in prepared:
            stored = existing.get(oid)
            if stored is None:
                entries.append((oid, row_number, body, NEW))
            elif spec.same(stored, body):
                entries.append((oid, row_number, body, STORED))
            else:
                problems.append(
                    Problem(
                        name,
                        row_number,
                        spec.key_column,
                        f"该{spec.key_zh}已导入且内容不同；如需修改请提交更正文件",
                        f"this {spec.key_en} was already imported with different content; "
                        "send a corrections file to change it",
                    )
                )
        staging.add(entries)
        return problems

    def _duplicate_problems(
        self,
        name: str,
        staging: Staging,
        duplicates: set[int],
    ) -> list[Problem]:
        """The second and later rows with the same key."""
        spec = self.spec
        first_row: dict[str, int] = {}
        problems: list[Problem] = []
        for oid, row_number, _ in staging.rows_with_hash_prefixes(
            [f"{h:016x}" for h in duplicates]
        ):
            if oid not in first_row:
                first_row[oid] = row_number
                continue
            problems.append(
                Problem(
                    name,
                    row_number,
                    spec.key_column,
                    f"文件内{spec.key_zh}重复（与第 {first_row[oid]} 行相同）",
                    f"duplicate {spec.key_en} within the file (same as row {first_row[oid]})",
                )
            )
        return problems

    # ---- pass 2 -------------------------------------------------------------------------

    def _append(self, staging: Staging, result: ImportResult, progress: Progress | None) -> None:
        staging.mark_skipped([p.row for p in result.problems if p.row is not None])
        counts = staging.counts()
        result.already_present += counts.get(STORED, 0)
        to_write = counts.get(NEW, 0)
        done = 0

        def committed(size: int, inserted: int) -> None:
            nonlocal done
            done += size
            result.inserted += inserted
            # Another import may have written some of them since pass 1: refused by the key.
            result.already_present += size - inserted
            if progress:
                progress("write", done, to_write)

        opening: BatchOpening = TimestampHead()
        if self.spec.compact:
            assert self.batches is not None
            if not to_write:
                return
            self.batches.start(result.import_ref)
            opening = self.batches
        self.writer.append(staging, self.batch_size, self.spec.created_topic, opening, committed)


class TimestampHead:
    """The long form's batches: no event of their own; each record's JSON starts with the
    batch's time (the staged body is the rest of the JSON, after its opening brace)."""

    def event(self, rows: int) -> None:
        return None

    def prefix(self, position: int | None) -> bytes:
        stamp = datetime.now(tz=UTC).isoformat().encode()
        return b'{"timestamp":{"_type_":"datetime_iso","_data_":"' + stamp + b'"},'


def check_chunk(
    spec: BulkSpec[Any],
    ctx: CheckContext,
    chunk: list[tuple[int, dict[str, Any]]],
    fast: FastPath | None = None,
    found: list[Prepared] | None = None,
) -> Checked:
    """Validate a chunk of rows and prepare the stored form of the good ones: the rows the
    fast path is sure of (`found`, or found here by `fast`), the others row by row; in file
    order. The raw rows returned are the chunk's (the rows read as dicts): a frame's rows the
    fast path took have none, and are read again if they are refused later."""
    found = list(found or ())
    rest = chunk
    if fast is not None:
        sure, rest = fast.split(chunk)
        found += sure
    # The cells as read, for the rejects file: a row can still be refused after this, when
    # the log turns out to hold its key with other content.
    raw = dict(chunk)
    if not rest:
        return sorted(found, key=lambda p: p[1]), [], raw
    good, bad = validate_chunk(spec.rows, ctx.file, rest)
    good, more = spec.check(ctx.file, good, ctx.today)
    bad.extend(more)
    tail = recorded_tail(ctx.actor, ctx.import_ref)
    key_hex, body = spec.key_hex, spec.body
    cut = 0 if spec.compact else 1  # the long form's opening brace comes with the timestamp
    prepared = [(key_hex(r), row_number, body(r, tail)[cut:]) for row_number, r in good]
    if found:
        prepared = sorted(found + prepared, key=lambda p: p[1])
    return prepared, bad, raw


def _chunks(
    rows: Iterable[tuple[int, dict[str, Any]]], size: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for numbered in rows:
        chunk.append(numbered)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _duplicate_hashes(buckets: list[array]) -> set[int]:  # type: ignore[type-arg]
    """Keys that occur more than once, bucketed so only 1/256 of them is sorted at a time."""
    found: set[int] = set()
    for bucket in buckets:
        ordered = sorted(bucket)
        found.update(a for a, b in itertools.pairwise(ordered) if a == b)
    return found


def write_rejects(
    path: Path, rows: dict[int, dict[str, Any]], problems: list[Problem], fmt: FileFormat
) -> Path:
    """`<file>.rejects.csv`: each rejected row with its spreadsheet row number and reasons."""
    out = path.with_name(path.name + ".rejects.csv")
    reasons: dict[int, list[str]] = {}
    for p in problems:
        if p.row is not None:
            reasons.setdefault(p.row, []).append(
                f"{p.column or ''}: {p.message_zh} / {p.message_en}"
            )
    columns = list(fmt.column_names)
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", *columns, "reason"])
        for row_number in sorted(reasons):
            raw = rows.get(row_number, {})
            cells = (csv_text(_cell(raw.get(c))) for c in columns)
            w.writerow([row_number, *cells, csv_text("; ".join(reasons[row_number]))])
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and "_data_" in value:
        return str(value["_data_"])
    return str(value)

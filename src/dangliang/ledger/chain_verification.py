"""Verifying the hash chain (防篡改校验): `verify` and the report it gives.

`verify` streams the events table and `audit_chain` side by side in notification-id order,
recomputes every link with the record encoding of `chain` (see its module docstring), and
names each event whose stored bytes, order or presence changed since it was chained — as a
`ChainProblem` of one of the kinds below — and whether the log still hashes to the heads it
is given (e.g. the one printed on a signed run document).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from dangliang.ledger.chain import (
    GENESIS,
    GENESIS_HEX,
    HEX32,
    Tables,
    chain_head,
    chain_pages,
    count_after,
    encode_row,
    event_pages,
    flatten,
    format_head,
    last_event_id,
    tables_of,
    unhex,
)
from dangliang.ledger.eventlog import EventLog
from dangliang.ledger.sealing import late_seals

Progress = Callable[[int, int], Any]  # (reached, end)

# kinds of ChainProblem
CHANGED = "changed"  # the event's stored bytes differ from what was chained
MISSING = "missing"  # a chained event is no longer in the log
UNEXPECTED = "unexpected"  # an event below the chain's head that the chain never saw
REORDERED = "reordered"  # a chained event is now stored under another notification id
CHAIN_ALTERED = "chain_altered"  # audit_chain's digest was edited; the event is intact
HEAD_MISMATCH = "head_mismatch"  # the log does not hash to the expected (signed) head
UNSEALED = "unsealed"  # an event after the chain's head: stored, but never sealed


@dataclass(frozen=True)
class ChainProblem:
    """One event whose stored bytes, order or presence no longer match the chain."""

    kind: str  # changed | missing | unexpected | reordered | chain_altered | head_mismatch
    # | unsealed
    notification_id: int
    originator_id: str | None
    originator_version: int | None
    topic: str | None
    message: str  # 中文 / English
    other_id: int | None = None  # reordered: the id the same event is stored (or chained) at


@dataclass
class ChainReport:
    ok: bool
    checked: int  # chained events whose link was recomputed and compared
    head: tuple[int, str]  # the stored chain's head (what `chain_head` returns)
    recomputed_head: tuple[int, str]  # the log as it is now, chained from genesis, at head id
    first_problem: ChainProblem | None
    problems: list[ChainProblem] = field(default_factory=list)  # the first `max_problems`
    problem_count: int = 0  # all of them
    unchained: int = 0  # events after the chain's head (each also an `unsealed` problem)
    # every `audit seal`: (first id, last id, events, sealed at, actor, reason)
    late_seals: list[tuple[int, int, int, str, str, str]] = field(default_factory=list)
    expected_head: tuple[int, str] | None = None
    # the recomputed digest at each position asked for (expected heads), as 64 hex digits
    recomputed_at: dict[int, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        """One bilingual line for the CLI."""
        head = format_head(self.head)
        signed = "，与签署的链头一致" if self.expected_head else ""
        signed_en = ", matching the signed head" if self.expected_head else ""
        late = sum(n for _, _, n, *_ in self.late_seals)
        late_zh = f"；其中 {late} 个事件是事后封存的（见 audit seal 记录）" if late else ""
        late_en = f"; {late} of them were sealed late (see the audit seal records)" if late else ""
        if self.ok:
            return (
                f"哈希链完整：已校验 {self.checked} 个事件{signed}，链头 {head}{late_zh} / "
                f"chain intact: {self.checked} events checked{signed_en}, head {head}{late_en}"
            )
        assert self.first_problem is not None
        return (
            f"哈希链校验失败（{self.problem_count} 处问题）/ chain verification failed "
            f"({self.problem_count} problems): {self.first_problem.message}"
        )


def _describe(originator_id: str | None, version: int | None, topic: str | None) -> str:
    short_topic = (topic or "?").rsplit(":", 1)[-1]
    return f"{originator_id or '?'} v{version if version is not None else '?'} {short_topic}"


def _problem(
    kind: str,
    nid: int,
    row: Sequence[Any] | None,
    *,
    other_id: int | None = None,
    detail: str = "",
) -> ChainProblem:
    oid = _display_id(row[1]) if row is not None else None
    version = row[2] if row is not None and type(row[2]) is int else None
    topic = row[3] if row is not None and isinstance(row[3], str) else None
    what = _describe(oid, version, topic)
    if kind == CHANGED:
        message = (
            f"第 {nid} 号事件（{what}）的存储内容在入链后被改动 / "
            f"event {nid} ({what}) was changed after it was chained"
        )
    elif kind == MISSING:
        message = (
            f"已入链的第 {nid} 号事件已不在事件日志中（被删除）/ "
            f"event {nid} was chained but is no longer in the log (deleted)"
        )
    elif kind == UNEXPECTED:
        message = (
            f"第 {nid} 号事件（{what}）不在哈希链中，是在链经过该编号之后插入的 / "
            f"event {nid} ({what}) is not in the chain: it was inserted after the chain "
            "had passed its id"
        )
    elif kind == REORDERED and detail == "moved_to":
        message = (
            f"已入链的第 {nid} 号事件现在存放在第 {other_id} 号（顺序被改动）/ "
            f"the event chained as {nid} is now stored as {other_id} (order changed)"
        )
    elif kind == REORDERED:
        message = (
            f"第 {nid} 号事件（{what}）入链时是第 {other_id} 号（顺序被改动）/ "
            f"event {nid} ({what}) was chained as {other_id} (order changed)"
        )
    elif kind == UNSEALED:
        message = (
            f"第 {nid} 号事件（{what}）在日志中却未封存进哈希链：它是在链之外写入的 / "
            f"event {nid} ({what}) is stored but was never sealed into the chain: it was "
            "written around the sealing write path"
        )
    elif kind == CHAIN_ALTERED:
        message = (
            f"哈希链中第 {nid} 号的摘要被改动，事件本身未变 / "
            f"the chain's digest for event {nid} was altered; the event itself is unchanged"
        )
    else:
        message = detail
    return ChainProblem(kind, nid, oid, version, topic, message, other_id)


def _display_id(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 32 and HEX32.fullmatch(value):
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return None if value is None else str(value)


@dataclass
class _Suspect:
    """A problem kept with what the reorder check needs: the stored link it broke (targets)
    and the row now stored at its id (candidates)."""

    index: int  # in the problems list
    nid: int
    row: Sequence[Any] | None = None  # the event now stored at nid (changed, unexpected)
    previous: bytes | None = None  # the stored digest before nid (changed, missing)
    stored: bytes | None = None  # the stored digest at nid (changed, missing)


class _Problems:
    def __init__(self, limit: int):
        self.limit = limit
        self.items: list[ChainProblem] = []
        self.suspects: list[_Suspect] = []
        self.count = 0

    def add(self, problem: ChainProblem, suspect: _Suspect | None = None) -> bool:
        """Count the problem; keep it (and its suspect) while under the limit."""
        self.count += 1
        if len(self.items) >= self.limit:
            return False
        if suspect is not None:
            suspect.index = len(self.items)
            self.suspects.append(suspect)
        self.items.append(problem)
        return True


def verify(
    conn: Connection,
    log: EventLog,
    *,
    expected_head: tuple[int, str] | None = None,
    expected_heads: Sequence[tuple[int, str]] = (),
    progress: Progress | None = None,
    page: int = 20_000,
    max_problems: int = 1_000,
) -> ChainReport:
    """Recompute the chain from the events table and compare it with `audit_chain`.

    Both tables are streamed in notification-id order and merged by id. Every chained event's
    link is checked against the *stored* digest before it, so one edited, deleted or inserted
    row is reported at that row and the events after it still verify (each problem is
    localised). Alongside, the chain is recomputed from genesis over the log as it stands
    now; `expected_head` (id, digest), e.g. from a signed run document, must equal that
    recomputation at that id — which also catches a chain rewritten to match a tampered log.
    A head is the chain as it stood at a log position: its digest is the one of the last
    event at or before that id (as `chain_head(conn, position)` gives it), so heads recorded
    at positions — e.g. every payout run's — can be passed together as `expected_heads`.
    Events after the chain's head were never sealed (every write seals what it appends
    before it commits): each is an `unsealed` problem. Ranges sealed late by `audit seal` are
    listed in the report.
    """
    dialect = conn.dialect.name
    tables = tables_of(conn, log.events_table)
    head = chain_head(conn)
    expected = [*([expected_head] if expected_head else []), *expected_heads]
    positions = sorted({nid for nid, _ in expected})
    at: dict[int, bytes] = {}  # the recomputed digest at each expected position
    settled = 0  # positions[:settled] are in `at`
    end = max(head[0], *positions) if positions else head[0]
    events = flatten(event_pages(tables, 0, end, page))
    chain = flatten(chain_pages(tables, 0, head[0], page))
    problems = _Problems(max_problems)
    anchor = GENESIS  # the stored digest of the last chained id passed
    pure = GENESIS  # the log as it is now, chained from genesis
    recomputed_head = (0, GENESIS_HEX)
    pending: tuple[_Suspect, bytes] | None = None  # a broken link, and its recomputed digest
    checked = 0
    ev = next(events, None)
    ch = next(chain, None)
    sha256 = hashlib.sha256
    step = 0
    while ev is not None or ch is not None:
        if ch is None or (ev is not None and ev[0] < ch[0]):
            assert ev is not None  # the loop runs while either stream has rows
            nid = ev[0]
            while settled < len(positions) and positions[settled] < nid:
                at[positions[settled]] = pure
                settled += 1
            pure = sha256(pure + encode_row(ev, dialect)).digest()
            if nid <= head[0]:
                problems.add(_problem(UNEXPECTED, nid, ev), _Suspect(0, nid, row=ev))
                recomputed_head = (nid, pure.hex())
            ev = next(events, None)
            continue
        nid = int(ch[0])
        if ev is None or nid < ev[0]:
            stored = unhex(ch[1])
            problems.add(
                _problem(MISSING, nid, None), _Suspect(0, nid, previous=anchor, stored=stored)
            )
            pending = None
            anchor = stored if stored is not None else anchor
            ch = next(chain, None)
            continue
        while settled < len(positions) and positions[settled] < nid:
            at[positions[settled]] = pure
            settled += 1
        record = encode_row(ev, dialect)
        computed = sha256(anchor + record).digest()
        pure = computed if pure == anchor else sha256(pure + record).digest()
        recomputed_head = (nid, pure.hex())
        checked += 1
        if computed.hex() == ch[1]:  # the usual case: no need to parse the stored digest
            pending = None
            anchor = computed
        else:
            stored = unhex(ch[1])
            if pending is not None and sha256(pending[1] + record).digest() == stored:
                # the link holds from the recomputed digest before: that stored digest, not
                # its event, was altered
                before = pending[0]
                problems.items[before.index] = _problem(CHAIN_ALTERED, before.nid, before.row)
                before.previous = before.stored = before.row = None  # not moved either
                pending = None
            else:
                suspect = _Suspect(0, nid, row=ev, previous=anchor, stored=stored)
                kept = problems.add(_problem(CHANGED, nid, ev), suspect)
                pending = (suspect, computed) if kept else None
            # continue from the stored link, so later events are checked on their own
            anchor = stored if stored is not None else computed
        ev = next(events, None)
        ch = next(chain, None)
        step += 1
        if progress is not None and step % page == 0:
            progress(nid, end)
    if progress is not None:
        progress(end, end)
    for position in positions[settled:]:
        at[position] = pure
    _find_reorders(problems, dialect)
    for nid, digest in expected:
        _check_expected(problems, (nid, digest), at[nid])
    unchained = count_after(tables, head[0])
    _add_unsealed(problems, tables, head[0], page)
    ordered = sorted(problems.items, key=lambda p: (p.kind == HEAD_MISMATCH, p.notification_id))
    return ChainReport(
        ok=problems.count == 0,
        checked=checked,
        head=head,
        recomputed_head=recomputed_head,
        first_problem=ordered[0] if ordered else None,
        problems=ordered,
        problem_count=problems.count,
        unchained=unchained,
        expected_head=expected_head,
        late_seals=late_seals(tables),
        recomputed_at={nid: digest.hex() for nid, digest in at.items()},
    )


def _find_reorders(problems: _Problems, dialect: str) -> None:
    """A broken link at id T whose stored digest is reproduced by the event now stored at
    another problem id C (encoded with id T) means that event was moved: from T to C."""
    targets = [s for s in problems.suspects if s.previous is not None and s.stored is not None]
    candidates = [s for s in problems.suspects if s.row is not None]
    if not targets or not candidates:
        return
    sha256 = hashlib.sha256
    for target in targets:
        assert target.previous is not None
        for candidate in candidates:
            if candidate.nid == target.nid:
                continue
            row = candidate.row
            assert row is not None
            record = encode_row((target.nid, *row[1:]), dialect)
            if sha256(target.previous + record).digest() != target.stored:
                continue
            moved = ChainProblem(
                REORDERED,
                target.nid,
                _display_id(row[1]),
                row[2] if type(row[2]) is int else None,
                row[3] if isinstance(row[3], str) else None,
                _problem(
                    REORDERED, target.nid, None, other_id=candidate.nid, detail="moved_to"
                ).message,
                candidate.nid,
            )
            problems.items[target.index] = moved
            if problems.items[candidate.index].kind != REORDERED:
                problems.items[candidate.index] = _problem(
                    REORDERED, candidate.nid, row, other_id=target.nid
                )
            break


def _check_expected(problems: _Problems, expected: tuple[int, str], recomputed: bytes) -> None:
    nid, digest = expected
    if recomputed.hex() == digest.lower():
        return
    message = (
        f"签署的链头 {nid}:{digest} 与事件日志不符：日志重新计算得 {recomputed.hex()} / "
        f"the signed head {nid}:{digest} does not match the log, which recomputes to "
        f"{recomputed.hex()} at that position"
    )
    problems.count += 1  # kept even past the limit: it is the verdict on the signed head
    problems.items.append(ChainProblem(HEAD_MISMATCH, nid, None, None, None, message))


def _add_unsealed(problems: _Problems, tables: Tables, after: int, page: int) -> None:
    """Name every event stored after the chain's head (counting those past the limit)."""
    for rows in event_pages(tables, after, last_event_id(tables), page):
        for row in rows:
            if not problems.add(_problem(UNSEALED, row[0], row)):
                problems.count += count_after(tables, row[0])
                return


__all__ = [
    "CHAIN_ALTERED",
    "CHANGED",
    "HEAD_MISMATCH",
    "MISSING",
    "REORDERED",
    "UNEXPECTED",
    "UNSEALED",
    "ChainProblem",
    "ChainReport",
    "verify",
]

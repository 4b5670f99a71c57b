"""Sealing a bulk import's batch beside its insert (`bulk`): the batch is hashed into the
chain on a thread while the database inserts it, as it will be stored, and the digests are
kept only when the insert stored exactly that — every record, at the ids after the batch's
own event, in that order; else the batch is read back and sealed (`sealing.seal_appended`).
The record encoding is `chain`'s; `record_digests` computes it for a batch without building
its rows (tested equal to `chain.digests`).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from dangliang.ledger.chain import (
    GENESIS,
    Tables,
    digests,
    field,
    ids_after,
    stored_head,
    unhex,
    uuid_text,
)
from dangliang.ledger.sealing import seal_appended

_LENGTH = struct.Struct(">Q").pack
_HEX32_RUN = re.compile(r"(?:[0-9a-f]{32})*")


@dataclass
class Ahead:
    """A batch's chain, being hashed while the batch is inserted: the log position of the
    batch's own event, its records' ids (32 hex digits) in the order they were hashed (at the
    ids after it), and the digests to come."""

    position: int
    ids: list[str]
    digests: Future[tuple[list[tuple[int, str]], bytes]]

    def keep(self, sealing: Tables, inserted: int, stored: Callable[[int], str]) -> bool:
        """Write the digests if the records were stored exactly as hashed — every one
        inserted, at the ids after the batch's event, in that order (`stored(position)`: the
        ids stored after it, in id order, as 32 hex digits each, run together); else False
        and nothing written."""
        chained, _ = self.digests.result()
        if inserted != len(self.ids) or chained[-1][0] != self.position + inserted:
            return False
        if stored(self.position) != "".join(self.ids):
            return False
        sealing.insert_digests(chained)
        return True


def seal_ahead(
    hasher: ThreadPoolExecutor,
    sealing: Tables,
    batch: tuple[StoredEvent, str, int] | None,
    records: Sequence[tuple[str, str]],
    topic: str,
    start: bytes,
) -> Ahead | None:
    """Start hashing a batch into the chain on a thread while the database inserts it (the
    insert runs without the GIL: the two share the machine's cores). `batch` is the batch's
    own event, its id as the table stores it and its log position; `records` the records'
    `(id as 32 hex digits, staged body)` in insert order, each hashed at the next id, with
    its state `start + body`. `Ahead.keep` checks that this is what the insert did before
    the digests are kept (`seal_batch`). Only when nothing but the batch's own event is
    unsealed."""
    ids = [rid for rid, _ in records]
    if batch is None or not is_hex32_run(ids):
        return None
    own, own_id, position = batch
    head = stored_head(sealing)
    previous = unhex(head[1]) if head[0] else GENESIS
    if previous is None or ids_after(sealing, head[0], 2) != [position]:
        return None
    own_row = (position, own_id, own.originator_version, own.topic, own.state)
    future = hasher.submit(
        record_digests, previous, own_row, records, topic, start, sealing.dialect
    )
    return Ahead(position, ids, future)


def seal_batch(
    sealing: Tables,
    ahead: Ahead | None,
    inserted: int,
    appended: int,
    stored: Callable[[int], str],
) -> None:
    """Seal a batch inside its transaction: with the digests hashed ahead when the insert
    stored what was hashed, else by reading the `appended` new events back."""
    if ahead is None or not ahead.keep(sealing, inserted, stored):
        seal_appended(sealing, appended)


def record_digests(
    previous: bytes,
    head: Sequence[Any],
    records: Sequence[tuple[str, str]],
    topic: str,
    start: bytes,
    dialect: str,
) -> tuple[list[tuple[int, str]], bytes]:
    """`digests` of a batch as a bulk import stores it, without building its rows: `head`,
    the batch's own row as the table holds it, then `records` — `(id as 32 hex digits,
    body)` — at the ids after it, each version 1 of `topic` with the state `start + body`.
    Only for ids known to be 32 lowercase hex digits (`is_hex32_run`): their canonical text
    is then the same on both backends."""
    out, previous = digests(previous, [head], dialect)
    sha256, join, length = hashlib.sha256, b"".join, _LENGTH
    middle = field(b"1") + field(topic.encode())
    id_length = length(36)
    for n, (hex32, body) in enumerate(records, head[0] + 1):
        number, state = b"%d" % n, start + body.encode()
        record = (
            previous,
            length(len(number)),
            number,
            id_length,
            uuid_text(hex32).encode(),
            middle,
            length(len(state)),
            state,
        )
        previous = sha256(join(record)).digest()  # h_n = SHA-256(h_prev || record)
        out.append((n, previous.hex()))
    return out, previous


def is_hex32_run(ids: Sequence[str]) -> bool:
    """Every id is 32 lowercase hex digits (one regular-expression pass over them all)."""
    return _HEX32_RUN.fullmatch("".join(ids)) is not None

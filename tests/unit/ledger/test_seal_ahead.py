"""A batch hashed ahead (`batch_seal.Ahead`) is kept only when the records were stored exactly as
they were hashed; otherwise nothing is written and the writer seals the batch by reading it
back. The whole path — the digests a bulk import writes verify — is covered by the import,
sealing and fault tests on both backends."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.ledger.batch_seal import Ahead, is_hex32_run, record_digests
from dangliang.ledger.chain import GENESIS, digests, encode_row, uuid_text


class Chain:
    def __init__(self) -> None:
        self.written: list[tuple[int, str]] = []

    def insert_digests(self, rows: list[tuple[int, str]]) -> None:
        self.written += rows


def ahead(position: int, ids: list[str]) -> Ahead:
    rows = [(position, "b" * 32, 2, "BatchWritten", b"{}")]
    rows += [(position + n, i, 1, "S", b"[7]") for n, i in enumerate(ids, start=1)]
    done: Future[Any] = Future()
    done.set_result(digests(GENESIS, rows, "sqlite"))
    return Ahead(position, ids, done)


def test_kept_when_every_record_is_where_it_was_hashed() -> None:
    ids = ["1" * 32, "2" * 32]
    chain = Chain()
    assert ahead(10, ids).keep(chain, 2, lambda position: "".join(ids))  # type: ignore[arg-type]
    assert [n for n, _ in chain.written] == [10, 11, 12]
    first = encode_row((10, "b" * 32, 2, "BatchWritten", b"{}"), "sqlite")
    assert chain.written[0][1] == hashlib.sha256(GENESIS + first).hexdigest()


def test_not_kept_when_a_record_was_refused_or_stored_in_another_order() -> None:
    ids = ["1" * 32, "2" * 32]
    for inserted, stored in ((1, ids[:1]), (2, list(reversed(ids))), (2, [*ids, "3" * 32])):
        chain = Chain()
        assert not ahead(10, ids).keep(chain, inserted, lambda position, s=stored: "".join(s))  # type: ignore[arg-type, misc]
        assert chain.written == []


@settings(max_examples=60)
@given(
    dialect=st.sampled_from(["sqlite", "postgresql"]),
    position=st.integers(min_value=1, max_value=10**12),
    ids=st.lists(st.binary(min_size=16, max_size=16).map(bytes.hex), max_size=6),
    bodies=st.lists(st.text(max_size=30), min_size=6, max_size=6),
    start=st.binary(max_size=12),
    topic=st.sampled_from(["S", "dangliang.domain.service:ServiceRecord.Recorded"]),
)
def test_record_digests_are_the_digests_of_the_rows_as_stored(
    dialect: str, position: int, ids: list[str], bodies: list[str], start: bytes, topic: str
) -> None:
    """The writer's shortcut hashes exactly what `digests` hashes over the rows the table
    then holds: ids as each backend stores them, version 1, `start + body` as the state."""
    own_id = "b" * 32 if dialect == "sqlite" else uuid_text("b" * 32)
    own = (position, own_id, 2, "BatchWritten", b'{"rows":3}')
    records = list(zip(ids, bodies, strict=False))
    stored = [
        (position + n, rid if dialect == "sqlite" else uuid_text(rid), 1, topic, start + b.encode())
        for n, (rid, b) in enumerate(records, start=1)
    ]
    assert record_digests(GENESIS, own, records, topic, start, dialect) == digests(
        GENESIS, [own, *stored], dialect
    )
    assert is_hex32_run(ids) and not is_hex32_run([*ids, "A" * 32])

"""The hash chain over the event log (防篡改), on SQLite and PostgreSQL.

The log is tampered with the way someone with database access would do it — plain SQL on the
events table — and `verify` must fail and name exactly the event that was changed, deleted,
moved or slipped in. The chain head is also recomputed by an independent implementation of
the record encoding documented in `dangliang.ledger.chain`, as an auditor would. (That every
command seals what it appends, and the refusal of writes over unsealed events: `test_sealing`.)
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.ledger import chain as ch
from dangliang.ledger.chain import chain_head
from dangliang.ledger.chain_verification import ChainReport, verify
from dangliang.settings import Settings
from tests.conftest import PrepareApp, load_reference

TODAY = date(2025, 1, 1)
RECORDED = "%ServiceRecord.Recorded"


@pytest.fixture
def chained(prepared_app: PrepareApp, county: GeneratedCounty) -> Dangliang:
    """A county's reference data and services in the log, sealed as they were written."""

    def prepare(app: Dangliang) -> None:
        load_reference(app, county, actor="t")
        app.import_services(county.files["services"], actor="t", today=TODAY)

    return prepared_app("chain-loaded", prepare, caught_up=False)


def rechain(app: Dangliang) -> None:
    """Throw the chain away and chain the log as it is now, from genesis — what a tamperer
    with write access to both tables would do (never done by dangliang)."""
    with app.write_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_chain"))
        tables = ch.tables_of(conn, app.log.events_table)
        ch.extend(tables, (0, ch.GENESIS_HEX), ch.last_event_id(tables))


def id_column(app: Dangliang) -> str:
    return "notification_id" if app.write_engine.dialect.name == "postgresql" else "rowid"


def recorded_ids(app: Dangliang) -> list[int]:
    """Notification ids of the service records' events, in log order."""
    col, table = id_column(app), app.log.events_table
    with app.engine.connect() as conn:
        compact = "'SR1', 'S'"  # the compact forms (ledger.compact)
        query = (
            f"SELECT {col} FROM {table} WHERE topic LIKE :t OR topic IN ({compact}) ORDER BY {col}"
        )
        return [int(r[0]) for r in conn.execute(text(query), {"t": RECORDED})]


def event_row(app: Dangliang, nid: int) -> Any:
    col, table = id_column(app), app.log.events_table
    with app.engine.connect() as conn:
        return conn.execute(
            text(
                f"SELECT originator_id, originator_version, topic, state FROM {table} "
                f"WHERE {col} = :id"
            ),
            {"id": nid},
        ).one()


def tamper(app: Dangliang, sql: str, **params: Any) -> None:
    """Plain SQL on the events table, as someone with database access would write it."""
    sql = sql.format(table=app.log.events_table, id=id_column(app))
    with app.write_engine.begin() as conn:
        conn.execute(text(sql), params)


def run_verify(app: Dangliang, **kw: Any) -> ChainReport:
    with app.engine.connect() as conn:
        return verify(conn, app.log, **kw)


def current_head(app: Dangliang, position: int | None = None) -> tuple[int, str]:
    with app.engine.connect() as conn:
        return chain_head(conn, position)


def chain_rows(app: Dangliang) -> list[tuple[int, str]]:
    with app.engine.connect() as conn:
        query = "SELECT notification_id, digest FROM audit_chain ORDER BY notification_id"
        return [(int(a), str(b)) for a, b in conn.execute(text(query))]


def auditor_head(app: Dangliang) -> tuple[int, str]:
    """The chain recomputed from the module docstring alone, with hashlib and plain SQL."""
    col, table = id_column(app), app.log.events_table
    digest, last = bytes(32), 0
    with app.engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {col}, originator_id, originator_version, topic, state FROM {table} "
                f"ORDER BY {col}"
            )
        )
        for nid, originator, version, topic, state in rows:
            fields = [
                str(nid).encode(),
                str(uuid.UUID(str(originator))).encode(),  # canonical, with hyphens
                str(version).encode(),
                topic.encode("utf-8"),
                bytes(state),
            ]
            record = b"".join(len(f).to_bytes(8, "big") + f for f in fields)
            digest, last = hashlib.sha256(digest + record).digest(), int(nid)
    return last, digest.hex()


def changed_one_byte(state: bytes) -> bytes:
    """The same JSON with its first digit changed (still valid JSON, one byte different)."""
    data = bytearray(state)
    i = next(i for i, b in enumerate(data) if chr(b).isdigit())
    data[i] = ord(str((int(chr(data[i])) + 1) % 10))
    return bytes(data)


# ---- an intact log ----------------------------------------------------------------------


def test_intact_log_verifies_and_head_matches_an_independent_recomputation(
    chained: Dangliang,
) -> None:
    head = current_head(chained)
    assert head[0] == chained.log.head()
    assert head == auditor_head(chained)

    report = run_verify(chained, expected_head=head)
    assert report.ok, report.message
    assert report.first_problem is None and report.problems == []
    assert report.head == head
    assert report.recomputed_head == head
    assert report.checked == len(chain_rows(chained)) == head[0]
    assert report.unchained == 0
    assert "哈希链完整" in report.message and "chain intact" in report.message


def test_empty_log_head_is_genesis(db_url: str) -> None:
    app = bootstrap(Settings(db_url))
    try:
        assert current_head(app) == (0, "0" * 64)
        report = run_verify(app, expected_head=(0, "0" * 64))
        assert report.ok and report.checked == 0
    finally:
        app.close()


def test_sealing_batch_by_batch_equals_a_chain_built_from_scratch(
    db_url: str, county: GeneratedCounty, tmp_path: Path
) -> None:
    half = tmp_path / "half.csv"
    with county.files["services"].open(encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))
    with half.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(lines[: len(lines) // 2])
    app = bootstrap(Settings(db_url))
    try:
        load_reference(app, county, actor="t")
        # many small transactions, each sealing its own batch
        app.import_services(half, actor="t", today=TODAY, batch_size=700)
        early_head = current_head(app)
        assert early_head[0] == app.log.head()
        app.import_services(county.files["services"], actor="t", today=TODAY, batch_size=700)
        assert current_head(app)[0] == app.log.head()  # sealed before it returned
        report = run_verify(app, page=300)
        assert report.ok and report.unchained == 0 and report.checked == app.log.head()
        incremental = chain_rows(app)

        rechain(app)
        assert chain_rows(app) == incremental
        assert current_head(app) == auditor_head(app)
        assert current_head(app, early_head[0]) == early_head  # a head printed earlier holds
        assert run_verify(app, expected_head=early_head, page=300).ok
    finally:
        app.close()


# ---- tampering --------------------------------------------------------------------------


def test_a_changed_byte_is_named(chained: Dangliang) -> None:
    target = recorded_ids(chained)[100]
    originator, version, topic, state = event_row(chained, target)
    tamper(
        chained,
        "UPDATE {table} SET state = :s WHERE {id} = :n",
        s=changed_one_byte(state),
        n=target,
    )

    report = run_verify(chained)
    assert not report.ok
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.notification_id) == ("changed", target)
    assert problem.originator_id == str(uuid.UUID(str(originator)))
    assert (problem.originator_version, problem.topic) == (version, topic)
    assert f"第 {target} 号事件" in problem.message and f"event {target} " in problem.message
    assert report.problem_count == 1  # localised: the events after it still verify
    assert report.recomputed_head != report.head
    assert "哈希链校验失败" in report.message and "chain verification failed" in report.message


def test_a_deleted_event_is_named(chained: Dangliang) -> None:
    target = recorded_ids(chained)[200]
    tamper(chained, "DELETE FROM {table} WHERE {id} = :n", n=target)

    report = run_verify(chained)
    assert not report.ok
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.notification_id) == ("missing", target)
    assert report.problem_count == 1


def test_many_problems_are_counted_and_the_first_ones_kept(chained: Dangliang) -> None:
    targets = recorded_ids(chained)[10:60:10]
    for target in targets:
        tamper(chained, "DELETE FROM {table} WHERE {id} = :n", n=target)
    seen: list[tuple[int, int]] = []
    report = run_verify(
        chained, max_problems=3, page=500, progress=lambda a, b: seen.append((a, b))
    )
    assert report.problem_count == len(targets) == 5
    assert [p.notification_id for p in report.problems] == targets[:3]
    assert seen and seen[-1] == (report.head[0], report.head[0])


def test_the_last_event_deleted_is_named(chained: Dangliang) -> None:
    target = chained.log.head()
    tamper(chained, "DELETE FROM {table} WHERE {id} = :n", n=target)

    report = run_verify(chained)
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.notification_id) == ("missing", target)


def test_swapped_states_are_named_at_the_first_of_them(chained: Dangliang) -> None:
    ids = recorded_ids(chained)
    a, b = ids[300], ids[310]
    state_a, state_b = event_row(chained, a)[3], event_row(chained, b)[3]
    tamper(chained, "UPDATE {table} SET state = :s WHERE {id} = :n", s=state_b, n=a)
    tamper(chained, "UPDATE {table} SET state = :s WHERE {id} = :n", s=state_a, n=b)

    report = run_verify(chained)
    assert not report.ok
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.notification_id) == ("changed", a)
    assert [(p.kind, p.notification_id) for p in report.problems] == [
        ("changed", a),
        ("changed", b),
    ]


def test_swapped_versions_are_named_at_the_first_of_them(chained: Dangliang) -> None:
    # two events of one aggregate change places in its history (version 1 ↔ version 2)
    col, table = id_column(chained), chained.log.events_table
    with chained.engine.connect() as conn:
        originator = conn.execute(
            text(
                f"SELECT originator_id FROM {table} GROUP BY originator_id "
                f"HAVING count(*) >= 2 ORDER BY min({col}) LIMIT 1"
            )
        ).scalar_one()
        (a, va), (b, vb) = conn.execute(
            text(
                f"SELECT {col}, originator_version FROM {table} WHERE originator_id = :o "
                "ORDER BY originator_version LIMIT 2"
            ),
            {"o": originator},
        ).all()
    swap = "UPDATE {table} SET originator_version = :v WHERE {id} = :n"
    tamper(chained, swap, v=-1, n=a)
    tamper(chained, swap, v=va, n=b)
    tamper(chained, swap, v=vb, n=a)

    report = run_verify(chained)
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.notification_id) == ("changed", a)
    assert report.first_problem.originator_version == vb  # as it is stored now
    assert [p.notification_id for p in report.problems] == [a, b]


def test_swapped_rows_are_reported_as_reordered(chained: Dangliang) -> None:
    ids = recorded_ids(chained)
    a, b = ids[500], ids[520]
    moved = event_row(chained, a)
    tamper(chained, "UPDATE {table} SET {id} = -1 WHERE {id} = :n", n=a)
    tamper(chained, "UPDATE {table} SET {id} = :a WHERE {id} = :b", a=a, b=b)
    tamper(chained, "UPDATE {table} SET {id} = :b WHERE {id} = -1", b=b)

    report = run_verify(chained)
    assert not report.ok
    first = report.first_problem
    assert first is not None
    assert (first.kind, first.notification_id, first.other_id) == ("reordered", a, b)
    assert first.originator_id == str(uuid.UUID(str(moved[0])))  # the event chained at a
    assert f"now stored as {b}" in first.message
    assert [(p.kind, p.notification_id, p.other_id) for p in report.problems] == [
        ("reordered", a, b),
        ("reordered", b, a),
    ]


def test_an_event_slipped_in_below_the_head_is_named(chained: Dangliang) -> None:
    # a gap below the head: an id the chain never saw (on PostgreSQL a rolled-back append
    # leaves one; here it is made by removing an event and chaining the log again)
    gap = recorded_ids(chained)[600]
    row = event_row(chained, gap)
    tamper(chained, "DELETE FROM {table} WHERE {id} = :n", n=gap)
    rechain(chained)
    assert run_verify(chained).ok

    tamper(
        chained,
        "INSERT INTO {table} ({id}, originator_id, originator_version, topic, state) "
        "VALUES (:n, :o, :v, :t, :s)",
        n=gap,
        o=row[0],
        v=row[1],
        t=row[2],
        s=row[3],
    )
    report = run_verify(chained)
    assert not report.ok
    problem = report.first_problem
    assert problem is not None
    assert (problem.kind, problem.notification_id) == ("unexpected", gap)
    assert problem.originator_id == str(uuid.UUID(str(row[0])))
    assert report.problem_count == 1


def test_an_edited_chain_digest_is_told_apart_from_an_edited_event(chained: Dangliang) -> None:
    target = recorded_ids(chained)[700]
    with chained.write_engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_chain SET digest = :d WHERE notification_id = :n"),
            {"d": "ab" * 32, "n": target},
        )
    report = run_verify(chained)
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.notification_id) == (
        "chain_altered",
        target,
    )
    assert report.problem_count == 1
    assert report.recomputed_head == auditor_head(chained)  # the log itself is intact


def test_a_signed_head_catches_a_chain_rebuilt_over_a_tampered_log(chained: Dangliang) -> None:
    signed = current_head(chained)
    assert run_verify(chained, expected_head=signed).ok

    wrong = run_verify(chained, expected_head=(signed[0], "f" * 64))
    assert not wrong.ok
    assert wrong.first_problem is not None
    assert (wrong.first_problem.kind, wrong.first_problem.notification_id) == (
        "head_mismatch",
        signed[0],
    )
    assert "签署的链头" in wrong.first_problem.message
    assert "signed head" in wrong.first_problem.message

    target = recorded_ids(chained)[50]
    state = event_row(chained, target)[3]
    tamper(
        chained,
        "UPDATE {table} SET state = :s WHERE {id} = :n",
        s=changed_one_byte(state),
        n=target,
    )
    rechain(chained)  # the tamperer re-chains the log
    assert run_verify(chained).ok  # consistent with itself …
    report = run_verify(chained, expected_head=signed)
    assert not report.ok  # … but not with the head on the signed document
    assert report.first_problem is not None
    assert (report.first_problem.kind, report.first_problem.notification_id) == (
        "head_mismatch",
        signed[0],
    )


def test_unsealed_events_are_named_and_a_signed_head_is_still_recomputed(
    chained: Dangliang,
) -> None:
    head = auditor_head(chained)
    last = [head[0] - 2, head[0] - 1, head[0]]
    with chained.write_engine.begin() as conn:  # as if they had been written around sealing
        conn.execute(text("DELETE FROM audit_chain WHERE notification_id >= :n"), {"n": last[0]})
    report = run_verify(chained, expected_head=head)
    assert [(p.kind, p.notification_id) for p in report.problems] == [("unsealed", n) for n in last]
    assert report.unchained == 3 and "never sealed" in report.problems[0].message
    assert report.recomputed_at == {head[0]: head[1]}  # the log itself is intact
    # a head is the chain at a log position: after the last event it stays the same
    beyond = run_verify(chained, expected_head=(head[0] + 1, head[1]))
    assert {p.kind for p in beyond.problems} == {"unsealed"}
    assert "head_mismatch" in {
        p.kind for p in run_verify(chained, expected_head=(head[0] - 1, head[1])).problems
    }


def test_heads_recorded_at_several_positions_are_checked_at_once(chained: Dangliang) -> None:
    ids = recorded_ids(chained)
    positions = [0, ids[10], ids[900], chained.log.head()]
    signed = [(p, current_head(chained, p)[1]) for p in positions]
    report = run_verify(chained, expected_heads=signed)
    assert report.ok, report.message
    assert report.recomputed_at == dict(signed)

    target = ids[500]  # between the second and the third position
    state = event_row(chained, target)[3]
    tamper(
        chained,
        "UPDATE {table} SET state = :s WHERE {id} = :n",
        s=changed_one_byte(state),
        n=target,
    )
    report = run_verify(chained, expected_heads=signed)
    assert [(p.kind, p.notification_id) for p in report.problems] == [
        ("changed", target),
        ("head_mismatch", positions[2]),
        ("head_mismatch", positions[3]),
    ]


def test_heads_print_and_parse() -> None:
    head = (42, "0123456789abcdef" * 4)
    assert ch.parse_head(ch.format_head(head)) == head
    with pytest.raises(ValueError):
        ch.parse_head("42:xyz")


def test_encode_record_is_the_same_on_both_backends() -> None:
    sqlite_form = ch.encode_row((7, "2e78ca8f394755deb7d613463ebec232", 1, "t:T", b"{}"), "sqlite")
    pg_form = ch.encode_row(
        (7, "2e78ca8f-3947-55de-b7d6-13463ebec232", 1, "t:T", b"{}"), "postgresql"
    )
    assert (
        sqlite_form
        == pg_form
        == ch.encode_record(7, "2e78ca8f394755deb7d613463ebec232", 1, "t:T", b"{}")
    )
    # a hand-written id in another form never encodes like a proper one
    other = ch.encode_row((7, "2e78ca8f-3947-55de-b7d6-13463ebec232", 1, "t:T", b"{}"), "sqlite")
    assert other != sqlite_form

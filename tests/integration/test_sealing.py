"""Sealing at write time (封存), on SQLite and PostgreSQL.

Every command that appends events seals them into the hash chain before it returns, so an
edit, deletion, reordering or retyping of a stored event made at any moment afterwards is
named by `audit verify` — including the very first time verify runs (the chain is never built
by verify). Writes are refused while an event is stored unsealed; `audit seal` seals such
events deliberately and the record of it shows in every later verify.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, text

from dangliang.application import Dangliang
from dangliang.demo.generator import GeneratedCounty
from dangliang.domain.errors import InvalidValue
from dangliang.domain.periods import Period
from dangliang.importers.formats import CORRECTIONS
from dangliang.ledger.chain import chain_head
from dangliang.ledger.chain_verification import verify
from dangliang.ledger.sealing import UnsealedEvents
from tests.conftest import PrepareApp, load_reference

TODAY = date(2025, 3, 1)
YEAR = 2024
TAMPERINGS = ("edit", "delete", "reorder", "retype")


def id_column(conn: Connection) -> str:
    return "notification_id" if conn.dialect.name == "postgresql" else "rowid"


def tamper_and_verify(app: Dangliang, kind: str, target: int) -> list[tuple[str, int]]:
    """Tamper with the stored event `target` the way someone with database access would,
    verify inside the same transaction, roll it back; the (kind, id) of every problem."""
    with app.write_engine.connect() as conn, conn.begin():
        table, col = app.log.events_table, id_column(conn)
        if kind == "edit":
            state = bytes(
                conn.execute(
                    text(f"SELECT state FROM {table} WHERE {col} = :n"), {"n": target}
                ).scalar_one()
            )
            edited = state.replace(b'"', b"'", 1)  # one byte of the JSON
            conn.execute(
                text(f"UPDATE {table} SET state = :s WHERE {col} = :n"),
                {"s": edited, "n": target},
            )
        elif kind == "delete":
            conn.execute(text(f"DELETE FROM {table} WHERE {col} = :n"), {"n": target})
        elif kind == "reorder":  # swap the event with the one before it
            for sql, params in (
                (f"UPDATE {table} SET {col} = -1 WHERE {col} = :a", {"a": target}),
                (f"UPDATE {table} SET {col} = :a WHERE {col} = :b", {"a": target, "b": target - 1}),
                (f"UPDATE {table} SET {col} = :b WHERE {col} = -1", {"b": target - 1}),
            ):
                conn.execute(text(sql), params)
        elif conn.dialect.name == "sqlite":  # retype: the same bytes, stored as TEXT
            conn.execute(
                text(f"UPDATE {table} SET state = CAST(state AS TEXT) WHERE {col} = :n"),
                {"n": target},
            )
            stored_as = conn.execute(
                text(f"SELECT typeof(state) FROM {table} WHERE {col} = :n"), {"n": target}
            ).scalar_one()
            assert stored_as == "text"
        else:  # PostgreSQL types a column, not a value: the column's type changes
            conn.execute(
                text(
                    f"ALTER TABLE {table} ALTER COLUMN state TYPE text "
                    "USING convert_from(state, 'UTF8')"
                )
            )
        report = verify(conn, app.log, max_problems=50)
        conn.rollback()
    return [(p.kind, p.notification_id) for p in report.problems]


def assert_named(app: Dangliang, kind: str, target: int) -> None:
    found = tamper_and_verify(app, kind, target)
    expected = {
        "edit": [("changed", target)],
        "delete": [("missing", target)],
        "reorder": [("reordered", target - 1), ("reordered", target)],
    }.get(kind)
    if expected is not None:
        assert found == expected, (kind, target, found)
    elif app.write_engine.dialect.name == "sqlite":
        assert found == [("changed", target)], (kind, target, found)
    else:  # every event's state changed type: each is named
        assert found[:2] == [("changed", 1), ("changed", 2)], found


@dataclass
class Watch:
    """Runs a command and, once it returns, checks that what it appended is sealed and that
    tampering with one of its events (chosen by a seeded generator, the kind of tampering
    rotating) is named by verify."""

    app: Dangliang
    rng: random.Random
    checked: list[str]

    def __call__(self, name: str, command: Callable[[], Any]) -> Any:
        before = self.app.log.head()
        result = command()
        head = self.app.log.head()
        assert head > before, f"{name} appended nothing"
        with self.app.engine.connect() as conn:
            assert chain_head(conn)[0] == head, f"{name} returned before sealing"
        kind = TAMPERINGS[len(self.checked) % len(TAMPERINGS)]
        target = self.rng.randint(max(before + 1, 2), head)
        assert_named(self.app, kind, target)
        self.checked.append(f"{name}:{kind}")
        return result


def corrections_file(path: Path, services: Path) -> Path:
    with services.open(encoding="utf-8", newline="") as f:
        first, second = list(csv.DictReader(f))[:2]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, list(CORRECTIONS.column_names), restval="")
        w.writeheader()
        w.writerow(
            {
                "institution_code": first["institution_code"],
                "source_id": first["source_id"],
                "action": "correct",
                "reason": "HIS 录入错误",
                "quantity": "3",
            }
        )
        w.writerow(
            {
                "institution_code": second["institution_code"],
                "source_id": second["source_id"],
                "action": "void",
                "reason": "重复上报",
            }
        )
    return path


def test_every_command_seals_what_it_appends_before_it_returns(
    db_url: str, county: GeneratedCounty, tmp_path: Path
) -> None:
    from dangliang.application import bootstrap
    from dangliang.settings import Settings

    app = bootstrap(Settings(db_url))
    try:
        watch = Watch(app, random.Random(17), [])
        files, actor = county.files, "经办人 maker"
        watch("institutions", lambda: app.load_institutions(files["institutions"], actor=actor))
        watch("headcount", lambda: app.load_headcount(files["headcount"], actor=actor))
        watch("staff", lambda: app.load_staff(files["staff"], actor=actor))
        watch("catalogue", lambda: app.load_catalogue(files["catalogue"], actor=actor))
        for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
            watch(kind, lambda k=kind: app.load_inputs(k, files[k.replace("-", "_")], actor=actor))
        watch(
            "import",
            lambda: app.import_services(
                files["services"], actor=actor, today=TODAY, batch_size=1_000
            ),
        )
        corrections = corrections_file(tmp_path / "corrections.csv", files["services"])
        watch("corrections", lambda: app.import_corrections(corrections, actor=actor, today=TODAY))
        watch("policy", lambda: app.adopt_policy("zhuji", reference="测试", actor=actor))
        watch(
            "parameter",
            lambda: app.change_parameter(
                "unit_price.basic_medical",
                "13.00",
                start=date(YEAR, 1, 1),
                reason="价格调整",
                approver="财政局",
                actor=actor,
            ),
        )
        for kind in ("pools", "staff-coefficients", "outside-items"):
            watch(kind, lambda k=kind: app.load_inputs(k, files[k.replace("-", "_")], actor=actor))
        run = watch("run", lambda: app.run_payout(Period(YEAR, 1), actor=actor, today=TODAY))
        watch("approve", lambda: app.approve_payout(run.run_id, reference="审批", actor="复核人"))
        watch("paid", lambda: app.mark_payout_paid(run.run_id, reference="付款", actor=actor))
        year = watch("settle", lambda: app.run_payout(Period(YEAR), actor=actor, today=TODAY))
        watch("approve", lambda: app.approve_payout(year.run_id, reference="审批", actor="复核人"))
        watch("distribute", lambda: app.run_distribution(Period(YEAR), actor=actor, today=TODAY))
        watch(
            "user",
            lambda: app.users.add("核对员", role="auditor", institution=None, actor=actor),
        )
        assert len(watch.checked) == 23
        assert {c.split(":")[1] for c in watch.checked} == set(TAMPERINGS)
        with app.engine.connect() as conn:  # and untouched, everything verifies
            assert verify(conn, app.log).ok
    finally:
        app.close()


@pytest.fixture(scope="module")
def first_half(county: GeneratedCounty, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sealing") / "first-half.csv"
    with county.files["services"].open(encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(lines[: len(lines) // 2])
    return path


@pytest.fixture
def sealed(prepared_app: PrepareApp, county: GeneratedCounty, first_half: Path) -> Dangliang:
    """Reference data and the first half of the services, sealed as written."""

    def prepare(app: Dangliang) -> None:
        load_reference(app, county, actor="t")
        app.import_services(first_half, actor="t", today=TODAY)

    return prepared_app("sealing-loaded", prepare, caught_up=False)


def test_an_edit_right_after_an_import_is_caught_by_the_first_verify(sealed: Dangliang) -> None:
    """The hole this closes: the chain used to be built by the first `verify`, so an event
    edited before it was sealed as if it were the original."""
    target = sealed.log.head() // 2
    with sealed.write_engine.begin() as conn:
        table, col = sealed.log.events_table, id_column(conn)
        conn.execute(
            text(f"UPDATE {table} SET state = :s WHERE {col} = :n"),
            {"s": b'{"edited": true}', "n": target},
        )
    result = sealed.verify_log()
    assert not result["ok"]
    assert result["first_problem"]["notification_id"] == target
    assert result["first_problem"]["kind"] == "changed"


def test_writes_are_refused_while_an_event_is_unsealed_until_audit_seal(
    sealed: Dangliang, county: GeneratedCounty
) -> None:
    head = sealed.log.head()
    with sealed.write_engine.begin() as conn:  # as a version that chained later left it
        conn.execute(text("DELETE FROM audit_chain WHERE notification_id > :n"), {"n": head - 5})
    with pytest.raises(UnsealedEvents) as refused:  # a command through the library's recorder
        sealed.users.add("核对员", role="auditor", institution=None, actor="t")
    assert (refused.value.count, refused.value.first, refused.value.last) == (5, head - 4, head)
    assert "dangliang audit seal" in str(refused.value)
    with pytest.raises(UnsealedEvents):  # the batched import path refuses too
        sealed.import_services(county.files["services"], actor="t", today=TODAY)
    with pytest.raises(UnsealedEvents):
        sealed.load_inputs("scores", county.files["scores"], actor="t")
    assert sealed.log.head() == head  # nothing was written
    result = sealed.verify_log()
    assert not result["ok"] and result["problem_count"] == 5
    assert result["first_problem"]["kind"] == "unsealed"

    with pytest.raises(InvalidValue, match="reason"):
        sealed.seal_unsealed("审计员", " ")
    sealed_now = sealed.seal_unsealed("审计员", "升级前写入，已核对")
    assert sealed_now == {"sealed": 5, "first": head - 4, "last": head}
    assert sealed.seal_unsealed("审计员", "again") == {"sealed": 0, "first": 0, "last": 0}
    result = sealed.verify_log()
    assert result["ok"]
    late = result["late_seals"]
    assert [(s["first"], s["last"], s["events"], s["actor"], s["reason"]) for s in late] == [
        (head - 4, head, 5, "审计员", "升级前写入，已核对")
    ]
    assert any("sealed late" in line for line in result["lines"])
    sealed.import_services(county.files["services"], actor="t", today=TODAY)  # writes again
    assert sealed.log.head() > head
    assert sealed.verify_log()["ok"]

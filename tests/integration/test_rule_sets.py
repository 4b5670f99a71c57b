"""Rule sets pinned for replay, on SQLite and PostgreSQL: a run records the version of its
pipeline's rules, a replay computes with that version and says which, a new version (here a
test-only one that differs in one figure) is recorded by new runs without touching how the
old runs replay, a version the software does not have is refused, and runs recorded before
runs named their rule set read as version 1 (a database written then opens and replays:
tests/integration/test_upgrade.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from sqlalchemy import Connection

from dangliang.application import Dangliang, bootstrap
from dangliang.domain.payout import PayoutPeriod
from dangliang.domain.periods import Period
from dangliang.payouts import rulesets
from dangliang.payouts import runs as payouts
from dangliang.projections.equivalents import EquivalentsTables
from dangliang.settings import Settings
from tests.conftest import Prepare
from tests.e2e.cli import dangliang
from tests.integration.test_compensation import YEAR, prepared
from tests.integration.test_payouts import run_and_approve

FEN = Decimal("0.01")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Versions registered by the test are gone afterwards: the registry is restored."""
    monkeypatch.setattr(rulesets, "_VERSIONS", {p: dict(v) for p, v in rulesets._VERSIONS.items()})
    monkeypatch.setattr(rulesets, "_CURRENT", dict(rulesets._CURRENT))


def one_fen_more(calls: list[int]) -> rulesets.ComputeRun:
    """A compensation version that differs from v1 in one figure: the first institution's
    payable (and so the county's) is one fen more. `calls` gets the position of each call."""

    def compute_run(
        conn: Connection, t: EquivalentsTables, period: Period, position: int
    ) -> dict[str, Any]:
        calls.append(position)
        out = rulesets.rule_set("compensation", "1").compute_run(conn, t, period, position)
        first = out["institutions"][0]
        first["payable"] = str(Decimal(first["payable"]) + FEN)
        out["totals"]["payable"] = str(Decimal(out["totals"]["payable"]) + FEN)
        return out

    return compute_run


@pytest.fixture
def county_db(prepared_url: Prepare, county: Any) -> Iterator[tuple[Dangliang, str]]:
    """A copy of the county with the Zhuji policy (shared with test_payouts), and its URL."""
    url = prepared_url("compensation-zhuji", lambda a: prepared(a, county))
    app = bootstrap(Settings(url))
    yield app, url
    app.close()


def register_v2(calls: list[int]) -> rulesets.RuleSet:
    return rulesets.register(
        rulesets.RuleSet(
            pipeline="compensation",
            version="2",
            compute_run=one_fen_more(calls),
            since="test",
            summary="测试：多一分 / test: one fen more",
            clauses=(),
        ),
        current=True,
    )


def test_every_pipeline_has_a_documented_current_version() -> None:
    for pipeline in rulesets.PIPELINES:
        current = rulesets.current(pipeline)
        assert current.version == "1" and current.label == f"{pipeline} v1"
        assert " / " in current.summary and current.since and current.clauses
    with pytest.raises(ValueError, match="never reused"):
        rulesets.register(rulesets.current("compensation"))


def test_a_new_version_is_recorded_by_new_runs_and_never_used_for_old_ones(
    county_db: tuple[Dangliang, str], registry: None
) -> None:
    app, url = county_db
    march = run_and_approve(app, Period(YEAR, 3))
    assert app.payout_run(march).rule_set == "1"
    replay = app.replay_payout(march)
    assert replay["identical"]
    assert (replay["rule_set"], replay["rule_set_current"]) == (
        "compensation v1",
        "compensation v1",
    )

    calls: list[int] = []
    register_v2(calls)
    april = app.run_payout(Period(YEAR, 4), actor="maker", today=Period(YEAR + 1).first_day)
    assert april.rule_set == "2" and calls == [april.position]
    # v2 differs from v1 in exactly that one figure (and the county's total of it).
    with app.engine.connect() as conn:
        v1 = rulesets.rule_set("compensation", "1").compute_run(
            conn, app.equivalents_projection().t, Period(YEAR, 4), april.position
        )
    first = v1["institutions"][0]["code"]
    assert [d.split(":")[0] for d in payouts.compare(v1, april.results)] == [
        f"institutions.{first}.payable",
        "totals.payable",
    ]

    calls.clear()
    replay = app.replay_payout(march)
    assert replay["identical"], replay["differences"]
    assert calls == []  # the v1 run is recomputed by v1, not by the current v2
    assert (replay["rule_set"], replay["rule_set_current"]) == (
        "compensation v1",
        "compensation v2",
    )
    replay = app.replay_payout(april.run_id)
    assert replay["identical"] and replay["rule_set"] == "compensation v2"
    assert calls == [april.position]

    out = dangliang("audit", "replay", march, "--db", url)
    assert out.returncode == 0, out.stderr
    assert "规则版本 / rule set: compensation v1 (当前新批次用 / new runs use compensation v2)" in (
        out.stdout
    )


def test_a_rule_set_the_software_does_not_have_is_refused(
    county_db: tuple[Dangliang, str], registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, url = county_db
    register_v2([])
    run = app.run_payout(Period(YEAR, 3), actor="maker", today=Period(YEAR + 1).first_day)
    # The log now holds a v2 run; software without v2 (an older one) opens it.
    v1 = rulesets.rule_set("compensation", "1")
    monkeypatch.setitem(rulesets._VERSIONS, "compensation", {"1": v1})
    monkeypatch.setitem(rulesets._CURRENT, "compensation", "1")
    with pytest.raises(rulesets.UnknownRuleSet) as refused:
        app.replay_payout(run.run_id)
    assert "规则版本 compensation v2" in refused.value.message_zh
    assert "no rule set compensation v2 (it has: v1)" in refused.value.message_en
    out = dangliang("audit", "replay", run.run_id, "--db", url)
    assert out.returncode == 1 and "compensation v2" in out.stderr
    assert "identical" not in out.stdout


def test_a_run_recorded_before_rule_sets_reads_as_version_1(
    county_db: tuple[Dangliang, str],
) -> None:
    """The run event as versions before this one stored it (no `rule_set`, no class version)
    is upcast to rule set "1": it was computed by the code that is now v1 of its pipeline."""
    app, _ = county_db
    run = app.run_payout(Period(YEAR, 3), actor="maker", today=Period(YEAR + 1).first_day)
    (stored,) = app.log.app_recorder.select_notifications(start=run.recorded_at_position, limit=1)
    state = json.loads(stored.state)
    assert (state.pop("class_version"), state.pop("rule_set")) == (2, "1")
    old = StoredEvent(
        stored.originator_id, stored.originator_version, stored.topic, json.dumps(state).encode()
    )
    event = app.log.mapper.to_domain_event(old)
    assert isinstance(event, PayoutPeriod.RunComputed)
    assert (event.rule_set, event.run_id, event.results_digest) == (
        "1",
        run.run_id,
        run.results_digest,
    )

"""Two requests changing the same period's runs at the same moment, on SQLite and PostgreSQL:
the one saved second is refused with `PayoutRefused` (the API's 409: reload and try again),
not an error from the log (a 500); what the first recorded stands."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from dangliang.application import Dangliang
from dangliang.domain.payout import PayoutPeriod, PayoutRefused
from dangliang.domain.periods import Period
from tests.conftest import PrepareApp
from tests.integration.test_compensation import YEAR, prepared

AFTER_YEAR = date(YEAR + 1, 1, 10)
MARCH = Period(YEAR, 3)


def next_load_gives(app: Dangliang, stale: PayoutPeriod, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next load of a period gives `stale`, as a request that loaded the period before
    another request saved it holds it; later loads read the log again."""
    real = app._payout_period
    loads = iter([stale])
    monkeypatch.setattr(app, "_payout_period", lambda label: next(loads, None) or real(label))


def test_a_run_or_a_decision_saved_second_is_a_conflict_to_retry(
    prepared_app: PrepareApp, county: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = prepared_app("compensation-zhuji", lambda a: prepared(a, county))
    first = app.run_payout(MARCH, actor="maker", today=AFTER_YEAR)

    as_loaded = app._payout_period("2024-03")  # two requests load the period …
    assert as_loaded is not None
    second = app.run_payout(MARCH, actor="maker", today=AFTER_YEAR)  # … one saves first
    assert second.supersedes == first.run_id
    next_load_gives(app, as_loaded, monkeypatch)
    with pytest.raises(PayoutRefused, match="changed at the same moment"):
        app.run_payout(MARCH, actor="maker2", today=AFTER_YEAR)  # … the other is refused
    monkeypatch.undo()
    runs = {r.run_id: r.state for r in app.payout_runs().values() if r.period == "2024-03"}
    assert runs == {first.run_id: "superseded", second.run_id: "draft"}

    as_loaded = app._payout_period("2024-03")  # two auditors open the draft …
    assert as_loaded is not None
    app.approve_payout(second.run_id, reference="审批-1", actor="checker")  # … one approves
    next_load_gives(app, as_loaded, monkeypatch)
    with pytest.raises(PayoutRefused, match="reload and try again"):
        app.reject_payout(second.run_id, reason="同时退回", actor="checker2")
    monkeypatch.undo()
    assert app.payout_run(second.run_id).state == "approved"

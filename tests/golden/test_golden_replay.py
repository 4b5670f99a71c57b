"""The golden replay corpus, on SQLite and PostgreSQL: every run of every fixed log replays
with the rule set it recorded, identical to what it recorded and to its stored statement, to
the fen — so a change to what an old rule set computes fails here (tests/golden/README.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, NamedTuple

import pytest

from dangliang.application import Dangliang, bootstrap
from dangliang.payouts import rulesets
from dangliang.policy import subsidy_amounts
from dangliang.settings import Settings
from tests.conftest import PreparedDatabases
from tests.e2e.cli import dangliang
from tests.golden import build_corpus, corpus


class Loaded(NamedTuple):
    app: Dangliang
    url: str  # for the command line


GoldenApp = Callable[[str, str], Loaded]


@pytest.fixture(scope="module")
def golden(prepared_databases: PreparedDatabases) -> Iterator[GoldenApp]:
    """`golden(backend, name)`: the application on a database holding corpus `name`'s log
    (loaded once per module and backend, through the recorder, then caught up)."""
    opened: dict[tuple[str, str], Loaded] = {}

    def app_of(backend: str, name: str) -> Loaded:
        if (backend, name) not in opened:
            url = prepared_databases.copy(
                backend,
                f"golden-{name}",
                lambda app: corpus.load_log(app, corpus.read_log(name)),
                caught_up=True,
            )
            opened[backend, name] = Loaded(bootstrap(Settings(url)), url)
        return opened[backend, name]

    yield app_of
    for app, url in opened.values():
        app.close()
        prepared_databases.drop(url)


@pytest.mark.parametrize("name", corpus.names())
def test_every_run_replays_to_the_fen_and_matches_its_statement(
    golden: GoldenApp, backend: str, name: str
) -> None:
    app = golden(backend, name).app
    runs = app.payout_runs()
    assert {r: v.rule_set_label for r, v in runs.items()} == {
        r: about["rule_set"] for r, about in corpus.manifest(name)["runs"].items()
    }
    assert corpus.check(app, name) == []


def test_a_rule_step_one_fen_off_is_caught(
    golden: GoldenApp, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step 6 (basic medical) giving C01 one fen more: the settlement run is reported, with
    the figure, the recorded amount and the recomputed one."""
    app = golden(backend, "v1-deqing").app
    step = subsidy_amounts._basic_medical

    def one_fen_more(*args: Any) -> Decimal:
        amount = step(*args)
        return amount + Decimal("0.01") if args[2].code == "C01" else amount

    assert corpus.check(app, "v1-deqing", only={"2024#1"}) == []
    monkeypatch.setattr(subsidy_amounts, "_basic_medical", one_fen_more)
    problems = corpus.check(app, "v1-deqing", only={"2024#1"})
    recorded = corpus.statement_doc("v1-deqing", "2024#1")["results"]["institutions"][0]
    assert recorded["code"] == "C01"
    amount = Decimal(recorded["components"]["basic_medical"])
    assert (
        f"2024#1 (compensation v1) institutions.C01.components.basic_medical: recorded "
        f"{amount} != recomputed {amount + Decimal('0.01')}"
    ) in problems
    assert all(p.startswith("2024#1 (compensation v1) ") for p in problems)


def test_a_statement_csv_cell_changed_is_caught(golden: GoldenApp, backend: str) -> None:
    app = golden(backend, "v1-deqing").app
    run = app.payout_run("2024#1")
    stored = (corpus.CORPORA / "v1-deqing" / "statements" / "2024_1.csv").read_text("utf-8")
    replay: dict[str, Any] = {"differences": []}
    assert corpus.csv_problems("2024#1", stored, run, replay) == []
    payable = run.results["totals"]["payable"]
    edited = stored.replace(f",{payable}\n", ",0.01\n")
    assert corpus.csv_problems("2024#1", edited, run, replay) == [
        f"2024#1 statement CSV 合计.payable: stored 0.01 != now {payable}"
    ]


def test_the_replay_commands_say_which_rule_set(golden: GoldenApp, backend: str) -> None:
    url = golden(backend, "v1-deqing").url
    for command, run_id, said in (
        ("audit", "2024#1", "compensation v1"),
        ("audit", "perf-2024#1", "performance v1"),
        ("insurance", "ins-2024#1", "insurance v1"),
    ):
        out = dangliang(command, "replay", run_id, "--db", url)
        assert out.returncode == 0, out.stderr
        assert f"规则版本 / rule set: {said}\n" in out.stdout


def test_every_rule_set_has_runs_in_the_corpus() -> None:
    """A new version is not done until a corpus holds runs recorded under it."""
    recorded = {
        about["rule_set"]
        for name in corpus.names()
        for about in corpus.manifest(name)["runs"].values()
    }
    registered = {
        rule_set.label for p in rulesets.PIPELINES for rule_set in rulesets.versions(p).values()
    }
    assert registered <= recorded, f"no golden runs under {sorted(registered - recorded)}"
    assert {"v1-deqing", "v1-zhijiang"} <= set(corpus.names())


def test_a_corpus_is_never_rebuilt() -> None:
    for name in corpus.names():
        with pytest.raises(SystemExit, match="never rebuilt or overwritten"):
            build_corpus.build(name, "deqing", fund_only=False)

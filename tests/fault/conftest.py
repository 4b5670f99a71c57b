"""The fault tests' shared pieces: the county's files, one fork server, the starting databases
(prepared once per backend by `tests/conftest.py`'s `PreparedDatabases`, copied per kill
point), an uninterrupted reference run of each command, and the report of where every kill
landed (written to `DANGLIANG_FAULT_REPORT` when that is set)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from dangliang.application import Dangliang, bootstrap
from dangliang.settings import Settings
from tests.conftest import PreparedDatabases, _admin_connect, require_postgres
from tests.fault.county import (
    FULL,
    QUICK,
    CountyFiles,
    Template,
    county_files,
    full_run,
    kill_seed,
    points_wanted,
)
from tests.fault.forkserver import Command, ForkServer, Outcome
from tests.fault.scenarios import Scenario, always
from tests.fault.state import CommitWatcher, Snapshot, snapshot

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass(frozen=True)
class Reference:
    """An uninterrupted run of a command on a copy of its starting database."""

    seconds: float
    start: Snapshot  # the starting database (every copy holds the same)
    final: Snapshot  # after the run and a catch-up
    outcome: Outcome
    commits: tuple[float, ...]  # when its commits happened (seconds from its start)


@dataclass(frozen=True)
class KillPoint:
    """When to kill: `fraction` of the reference run's duration after the start, or as soon
    as `after_commit` commits have been seen."""

    fraction: float | None = None
    after_commit: int | None = None

    def describe(self, reference: Reference) -> str:
        if self.after_commit is not None:
            return f"after commit {self.after_commit} of {len(reference.commits)}"
        assert self.fraction is not None
        return f"at {self.fraction:.2f} of {reference.seconds:.2f}s"


class Lab:
    """Copies of the starting databases, commands run through the fork server, the
    uninterrupted reference runs (one per command and backend) and the report."""

    def __init__(
        self,
        databases: PreparedDatabases,
        server: ForkServer,
        files: CountyFiles,
        scratch: Path,
    ) -> None:
        self.databases = databases
        self.server = server
        self.files = files
        self.scratch = scratch  # TMPDIR of the commands: a killed import's staging file
        self.references: dict[tuple[str, str], Reference] = {}
        self.report: list[dict[str, Any]] = []

    def fresh(self, backend: str, template: Template) -> str:
        """A copy of a starting database. A template on top of another is made from a copy
        of that one (the county's reference data is loaded once per backend, not once per
        template); where PostgreSQL may not create databases, each copy is built whole."""
        files = self.files
        name = f"{template.name}-{files.sizes.records}"
        key = (backend, name, template.caught_up)
        derived = template.base is not None and key not in self.databases.templates
        if derived and self._can_derive(backend):
            self._derive(key, template)

        def build(app: Dangliang) -> None:
            template.build(app, files)

        return self.databases.copy(backend, name, build, template.caught_up)

    def _can_derive(self, backend: str) -> bool:
        if backend == "sqlite":
            return True
        require_postgres()
        return self.databases._postgres_can_create_databases()

    def _derive(self, key: tuple[str, str, bool], template: Template) -> None:
        """Make `template` from a copy of its base and register it with the prepared
        databases as if they had built it (`PreparedDatabases.templates`)."""
        assert template.base is not None
        url = self.fresh(key[0], template.base)
        app = bootstrap(Settings(url))
        try:
            template.steps(app, self.files)
            if template.caught_up:
                app.catch_up()
        finally:
            app.close()
        if key[0] == "sqlite":
            path = Settings(url).database.sqlite_path
            conn = sqlite3.connect(path)
            try:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file
            finally:
                conn.close()
            self.databases.templates[key] = str(path)
        else:
            dbname = url.rsplit("/", 1)[1]
            self.databases.copies.remove(dbname)  # a template now: dropped at the end
            self.databases.templates[key] = dbname

    def drop(self, url: str) -> None:
        self.databases.drop(url)
        for leftover in self.scratch.glob("dangliang-staging-*"):
            leftover.unlink(missing_ok=True)  # left by a killed import; none is running now

    def command(self, url: str, args: Sequence[str], kill_after: float | None = None) -> Command:
        return Command(("--db", url, *args), {"TMPDIR": str(self.scratch)}, kill_after=kill_after)

    def run(self, url: str, args: Sequence[str], kill_after: float | None = None) -> Outcome:
        return self.server.one(self.command(url, args, kill_after))

    def settle(self, url: str) -> None:
        """Wait until the killed command's database sessions are gone (PostgreSQL ends a dead
        client's session, and rolls back its open transaction, once it notices)."""
        if url.startswith("sqlite") or "schema=" in url:
            return
        dbname = url.rsplit("/", 1)[1]
        deadline = time.monotonic() + 60
        with _admin_connect(url) as conn:
            while time.monotonic() < deadline:
                others = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (dbname,),
                ).fetchone()[0]
                if not others:
                    return
                time.sleep(0.01)
        raise AssertionError(f"a killed command's session to {dbname} did not end")

    def reference(self, scenario: Scenario, backend: str) -> Reference:
        key = (scenario.name, backend)
        if key not in self.references:
            url = self.fresh(backend, scenario.template)
            try:
                start = snapshot(url)
                with CommitWatcher(url) as watch:
                    outcome = self.run(url, scenario.args(self.files))
                assert outcome.returncode == 0, outcome
                caught_up = self.run(url, ["status"])
                assert caught_up.returncode == 0, caught_up
                final = snapshot(url)
                assert always(final) == []
            finally:
                self.drop(url)
            self.references[key] = Reference(
                outcome.elapsed, start, final, outcome, tuple(watch.commits)
            )
        return self.references[key]

    def kill_points(self, scenario: Scenario, backend: str) -> list[KillPoint]:
        """Seeded kill points. Half of them (rounded up; the one point of the quick run) are
        commits: the command is killed as soon as its j-th commit is seen (j drawn in each of
        equal stretches of the commits the uninterrupted run made), so that the kill lands
        where some of its transactions are committed and the next is under way — between an
        import's batches, between the corrections and the import's record, in the middle of a
        catch-up. The others are moments spread over the uninterrupted run's duration: one in
        each of equal stretches of [0, 1.02] of it (a little past the end, where the command
        may be done; from five such points on, the first is the very start and the last the
        very end)."""
        reference = self.reference(scenario, backend)
        n = points_wanted()
        rng = random.Random(f"{kill_seed()}/{scenario.name}/{backend}")
        commits = len(reference.commits)
        at_commits = (n + 1) // 2 if commits else 0
        timed = [(i + rng.random()) / (n - at_commits) * 1.02 for i in range(n - at_commits)]
        if n - at_commits >= 5:
            timed[0], timed[-1] = 0.0, 1.0
        points = [KillPoint(fraction=round(f, 4)) for f in timed]
        for i in range(at_commits):
            j = 1 + int((i + rng.random()) / at_commits * commits)
            points.append(KillPoint(after_commit=min(j, commits)))
        return points

    def run_killed(
        self, url: str, args: Sequence[str], point: KillPoint, seconds: float
    ) -> Outcome:
        """Run a command and kill it at `point` (`seconds`: the uninterrupted run's)."""
        if point.after_commit is None:
            assert point.fraction is not None
            return self.run(url, args, kill_after=point.fraction * seconds)
        with CommitWatcher(url) as watch:
            watch.kill_at_commit = point.after_commit
            started = self.server.start([self.command(url, args)])
            watch.pid = started.pids[0]
            (outcome,) = self.server.wait(started)
        return outcome


@pytest.fixture(scope="session")
def fault_files(tmp_path_factory: pytest.TempPathFactory) -> CountyFiles:
    return county_files(tmp_path_factory.mktemp("fault-county"), FULL if full_run() else QUICK)


@pytest.fixture(scope="session")
def lab(
    prepared_databases: PreparedDatabases,
    fault_files: CountyFiles,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("fault-runs")
    scratch = folder / "tmp"
    scratch.mkdir()
    server = ForkServer(folder)
    lab = Lab(prepared_databases, server, fault_files, scratch)
    try:
        yield lab
    finally:
        server.close()
        target = os.environ.get("DANGLIANG_FAULT_REPORT")
        if target:
            Path(target).write_text(
                json.dumps(
                    {
                        "seed": kill_seed(),
                        "points": points_wanted(),
                        "sizes": asdict(fault_files.sizes),
                        "references": {
                            f"{name}/{backend}": {
                                "seconds": round(ref.seconds, 3),
                                "commits": [round(c, 3) for c in ref.commits],
                            }
                            for (name, backend), ref in lab.references.items()
                        },
                        "kills": lab.report,
                    },
                    ensure_ascii=False,
                    indent=1,
                ),
                encoding="utf-8",
            )

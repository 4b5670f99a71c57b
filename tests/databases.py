"""Databases for the tests: the PostgreSQL server's helpers, and databases prepared once per
test run and copied for each test (`PreparedDatabases`).

A preparation is a name and a function that writes to a fresh, bootstrapped database; it may
start from another preparation's database (`Preparation.base`: the county's records, then a
policy adopted on top, then a year's inputs), so that what several share is written once.
The first test of the run that asks for a preparation builds its template; every test then
gets a copy: a file copy of the checkpointed template on SQLite, `CREATE DATABASE … TEMPLATE`
on PostgreSQL. A PostgreSQL copy costs the server ~0.3 s even of the empty template (the
whole catalogue goes through the WAL), so each process keeps one spare copy of every template
it has copied, made in a background thread while the test runs, and drops the copies its
tests are done with there too: the next test of the same template starts at once, on the same
`CREATE DATABASE … TEMPLATE` of the same, never-changing template. Under pytest-xdist the
workers share the templates: the first worker to ask builds it (under a file lock) and the
others copy it. The run's controller (the process that started the workers, or the only
process) names the run and its folder for the templates (`start_run`) and drops them at its
end (`end_run`); each process drops its own copies.
Where the server refuses to create databases, each test gets a fresh schema and the
preparation is run again (slower, same result).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from dangliang.application import Dangliang, bootstrap
from dangliang.settings import Settings

PG_BASE_URL = os.environ.get("DANGLIANG_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_TAG = "DANGLIANG_TEST_RUN"  # the run's name: dltest_<RUN_TAG>_… are its PostgreSQL databases
RUN_DIR = "DANGLIANG_TEST_RUN_DIR"  # the run's folder: the SQLite templates and the locks

_pg_checked: tuple[bool, str] | None = None


def postgres_available() -> tuple[bool, str]:
    global _pg_checked
    if _pg_checked is None:
        try:
            _admin_connect(PG_BASE_URL, connect_timeout=3).close()
            _pg_checked = (True, "")
        except Exception as e:  # any failure to connect means: no PostgreSQL here
            _pg_checked = (False, f"{type(e).__name__}: {e}".strip())
    return _pg_checked


def require_postgres() -> None:
    ok, why = postgres_available()
    if ok:
        return
    message = (
        f"PostgreSQL not reachable at {PG_BASE_URL} ({why}); "
        "set DANGLIANG_TEST_PG_URL to point the PostgreSQL tests at a server"
    )
    if IN_CI:
        pytest.fail(f"CI=true requires PostgreSQL: {message}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {message}")


def drop_schema(url: str) -> None:
    from dangliang.settings import parse_db_url

    with _admin_connect(url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{parse_db_url(url).schema}" CASCADE')


def _admin_connect(url: str, **options: Any) -> Any:
    """An autocommit connection to the database of `url` (DDL: schemas and databases)."""
    import psycopg

    from dangliang.settings import parse_db_url

    db = parse_db_url(url)
    return psycopg.connect(
        host=db.host,
        port=db.port,
        user=db.user,
        dbname=db.dbname,
        password=db.password or None,
        autocommit=True,
        **options,
    )


def _with_dbname(url: str, dbname: str) -> str:
    """The PostgreSQL URL of another database on the same server (no schema)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{dbname}", "", ""))


# ---------------------------------------------------------------- the run


def start_run() -> None:
    """In the run's controller, before any worker starts: the run's name and folder, which
    the workers inherit through the environment."""
    os.environ[RUN_TAG] = f"{int(time.time())}_{uuid.uuid4().hex[:6]}"
    os.environ[RUN_DIR] = tempfile.mkdtemp(prefix="dangliang-tests-")


def end_run() -> None:
    """In the run's controller, after every worker has ended: drop the run's templates."""
    tag, folder = os.environ.pop(RUN_TAG, None), os.environ.pop(RUN_DIR, None)
    if not tag or not folder:
        return
    if (Path(folder) / "postgres").exists():  # some process created databases
        with _admin_connect(PG_BASE_URL) as conn:
            found = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (f"dltest\\_{tag}\\_%",),
            )
            names = [name for (name,) in found.fetchall()]
        with ThreadPoolExecutor(4) as dropping:  # a few at a time: the run's last seconds
            list(dropping.map(_drop_database, names))
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- prepared databases

Prepare = Callable[[Dangliang], object]


@dataclass(frozen=True)
class Preparation:
    """What a prepared database holds: `prepare` run on a copy of `base`'s database (or on a
    fresh one). `prepare` may return what the tests need to know of it (JSON: user tokens)."""

    name: str
    prepare: Prepare
    base: Preparation | None = None


class PreparedDatabases:
    """Databases prepared once per run (see the module's docstring) and copied for each test.

    `templates` maps (backend, name, caught up) to the template (a SQLite file's path, a
    PostgreSQL database's name) as this process knows it; `copies` are this process's
    PostgreSQL copies, dropped by `drop` or `close`; `spares` maps a PostgreSQL template to
    the copy being made of it in the background (`background`) for the next test."""

    def __init__(self, root: Path) -> None:
        self.root = root  # this process's copies (SQLite)
        run_dir, tag = os.environ.get(RUN_DIR), os.environ.get(RUN_TAG)
        # Outside a run (a script using this class), the templates are this object's own.
        self.own_templates = not (run_dir and tag)
        self.shared = Path(run_dir) if run_dir else root
        # dltest_<when>_<who>_…: a run killed before its end leaves databases that a later
        # run drops once they are a day old (a running session's never are).
        self.tag = tag or f"{int(time.time())}_{uuid.uuid4().hex[:6]}"
        self.templates: dict[tuple[str, str, bool], str] = {}
        self.results: dict[tuple[str, str, bool], Any] = {}
        self.copies: list[str] = []
        self.can_create_databases: bool | None = None
        self.spares: dict[str, Future[str]] = {}
        self.dropping: list[Future[None]] = []
        self.background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-copies")

    def copy(
        self,
        backend: str,
        name: str,
        prepare: Prepare,
        caught_up: bool,
        base: Preparation | None = None,
    ) -> str:
        """A URL to a new database holding what `prepare` wrote (on a copy of `base`'s
        database if given), with every read model caught up unless `caught_up` is false."""
        preparation = Preparation(name, prepare, base)
        if backend != "sqlite":
            require_postgres()
            if not self._postgres_can_create_databases():
                return self._fresh_schema(preparation, caught_up)
        key = self._template(backend, preparation, caught_up)
        if backend == "sqlite":
            copy = self.root / f"copy-{uuid.uuid4().hex[:12]}.db"
            shutil.copyfile(self.templates[key], copy)
            return f"sqlite:///{copy}"
        template = self.templates[key]
        spare = self.spares.pop(template, None)
        dbname = spare.result() if spare is not None else self._create_copy(template)
        self.spares[template] = self.background.submit(self._create_copy, template)
        self.copies.append(dbname)
        return _with_dbname(PG_BASE_URL, dbname)

    def _create_copy(self, template: str) -> str:
        dbname = f"dltest_{self.tag}_{uuid.uuid4().hex[:8]}"
        with _admin_connect(PG_BASE_URL) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{template}"')
        return dbname

    def result(self, backend: str, name: str, caught_up: bool = True) -> Any:
        """What the preparation `name` returned when its template was built."""
        return self.results[(backend, name, caught_up)]

    def drop(self, url: str) -> None:
        """Drop a copy (PostgreSQL) once its test is done; SQLite copies go with tmp_path."""
        if url.startswith("sqlite"):
            return
        if "schema=" in url:
            drop_schema(url)
            return
        dbname = urlsplit(url).path.lstrip("/")
        self.copies.remove(dbname)
        self.dropping.append(self.background.submit(_drop_database, dbname))

    def close(self) -> None:
        """Drop this process's copies and spares (and the templates, outside a run:
        `end_run` drops the run's)."""
        self.background.shutdown(wait=True)
        spares = [f.result() for f in self.spares.values() if f.exception() is None]
        self.spares.clear()
        failed = [e for f in self.dropping if (e := f.exception()) is not None]
        self.dropping.clear()
        names = [
            *self.copies,
            *spares,
            *(self.templates.values() if self.own_templates else ()),
        ]
        names = [n for n in names if not n.endswith(".db")]
        if names:
            with _admin_connect(PG_BASE_URL) as conn:
                for dbname in names:
                    conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if failed:  # a copy that could not be dropped (the run's end drops it)
            raise failed[0]

    # ------------------------------------------------------------ templates

    def _template(self, backend: str, preparation: Preparation, caught_up: bool) -> Any:
        """The key of the preparation's template, built if no process of the run has yet."""
        key = (backend, preparation.name, caught_up)
        if key in self.templates:
            return key
        base_key = None
        if preparation.base is not None:
            base_key = self._template(backend, preparation.base, caught_up)
        slug = f"{backend}-{preparation.name}-{int(caught_up)}".replace("/", "_")
        with self._lock(slug):
            record = self.shared / f"{slug}.json"
            if not record.exists():
                template, result = self._build_template(
                    backend, preparation, caught_up, base_key, slug
                )
                written = record.with_suffix(".tmp")
                # What a preparation returns is kept when it is JSON (user tokens), else None.
                found = {"template": template, "result": result}
                written.write_text(json.dumps(found, default=lambda _: None))
                written.replace(record)
            found = json.loads(record.read_text())
        self.templates[key] = found["template"]
        self.results[key] = found["result"]
        return key

    def _build_template(
        self,
        backend: str,
        preparation: Preparation,
        caught_up: bool,
        base_key: Any,
        slug: str,
    ) -> tuple[str, Any]:
        prepare = _caught_up(preparation.prepare) if caught_up else preparation.prepare
        if backend == "sqlite":
            path = self.shared / f"template-{slug}.db"
            if base_key is not None:
                shutil.copyfile(self.templates[base_key], path)
            result = _build(f"sqlite:///{path}", prepare)
            with sqlite3.connect(path) as conn:  # everything into the main file, WAL emptied
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return str(path), result
        template = f"dltest_{self.tag}_tpl_{uuid.uuid4().hex[:8]}"
        (self.shared / "postgres").touch()  # for end_run: this run created databases
        like = f' TEMPLATE "{self.templates[base_key]}"' if base_key is not None else ""
        with _admin_connect(PG_BASE_URL) as conn:
            conn.execute(f'CREATE DATABASE "{template}"{like}')
        return template, _build(_with_dbname(PG_BASE_URL, template), prepare)

    @contextmanager
    def _lock(self, slug: str) -> Iterator[None]:
        """One process of the run at a time builds or reads the template `slug`."""
        with (self.shared / f"{slug}.lock").open("w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(held, fcntl.LOCK_UN)

    def _postgres_can_create_databases(self) -> bool:
        if self.can_create_databases is None:
            import psycopg

            probe = f"dltest_{self.tag}_probe_{uuid.uuid4().hex[:6]}"
            try:
                with _admin_connect(PG_BASE_URL) as conn:
                    conn.execute(f'CREATE DATABASE "{probe}"')
                    conn.execute(f'DROP DATABASE "{probe}"')
                self.can_create_databases = True
                self._drop_abandoned()
            except psycopg.errors.InsufficientPrivilege:
                self.can_create_databases = False
        return self.can_create_databases

    def _drop_abandoned(self) -> None:
        """Drop the test databases of runs killed more than a day ago."""
        day_ago = time.time() - 86_400
        with _admin_connect(PG_BASE_URL) as conn:
            names = conn.execute(r"SELECT datname FROM pg_database WHERE datname LIKE 'dltest\_%'")
            for (name,) in names.fetchall():
                when = name.split("_")[1]
                if when.isdigit() and int(when) < day_ago:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _fresh_schema(self, preparation: Preparation, caught_up: bool) -> str:
        """Where databases cannot be created: a new schema with the preparation (and its
        bases) run on it."""
        url = f"{PG_BASE_URL}?schema=t_{uuid.uuid4().hex[:12]}"
        chain: list[Preparation] = []
        step: Preparation | None = preparation
        while step is not None:
            chain.insert(0, step)
            step = step.base

        def everything(application: Dangliang) -> None:
            for each in chain:
                each.prepare(application)

        _build(url, _caught_up(everything) if caught_up else everything)
        return url


def _drop_database(dbname: str) -> None:
    with _admin_connect(PG_BASE_URL) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _caught_up(prepare: Prepare) -> Prepare:
    def prepare_and_catch_up(application: Dangliang) -> object:
        found = prepare(application)
        application.catch_up()
        return found

    return prepare_and_catch_up


def _build(url: str, prepare: Prepare) -> Any:
    application = bootstrap(Settings(url))
    try:
        return prepare(application)
    finally:
        application.close()

"""Running pg_restore's script under another schema name: statements end where SQL says they
do (not inside quotes or a function body), the schema is renamed only where it qualifies a
name, COPY rows pass through untouched, and statements a dangliang dump never holds are
refused before anything runs."""

from __future__ import annotations

from typing import Any

import pytest

from dangliang.ledger.postgres_load import ArchiveRefused, Script, scan


def test_a_statement_ends_at_a_semicolon_outside_quotes_and_function_bodies() -> None:
    assert scan("SET lock_timeout = 0;\n", None) == (None, True)
    assert scan("CREATE TABLE public.t (\n", None) == (None, False)
    assert scan("COMMENT ON TABLE public.t IS 'a; b';\n", None) == (None, True)
    assert scan("COMMENT ON TABLE public.t IS 'it''s;\n", None) == ("'", False)
    assert scan("still quoted;' ;\n", "'") == (None, True)
    body = scan("CREATE FUNCTION public.f() RETURNS int AS $$BEGIN RETURN 1;\n", None)
    assert body == ("$$", False)
    assert scan("END;$$;\n", "$$") == (None, True)
    assert scan("AS $body$ x; $body$ LANGUAGE sql; -- done;\n", None) == (None, True)
    assert scan("SELECT a$b$c;\n", None) == (None, True)  # $ inside a name opens no quote


class FakeCopy:
    def __init__(self, rows: list[bytes]) -> None:
        self.rows = rows

    def __enter__(self) -> FakeCopy:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def write(self, data: bytes) -> None:
        self.rows.append(data)


class FakeConnection:
    """Records what would be executed, and the rows each COPY received."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self.copied: dict[str, list[bytes]] = {}

    def execute(self, statement: bytes) -> None:
        self.executed.append(statement.decode())

    def cursor(self) -> FakeConnection:
        return self

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *_: Any) -> None:
        return None

    def copy(self, statement: str) -> FakeCopy:
        self.copied[statement] = []
        return FakeCopy(self.copied[statement])


SCRIPT = b"""--
-- PostgreSQL database dump
--

\\restrict abc123

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE SCHEMA deqing;
CREATE TABLE deqing.dangliang_events (
    notification_id bigint NOT NULL,
    state bytea
);
CREATE FUNCTION deqing.f() RETURNS SETOF bigint
    LANGUAGE plpgsql
    AS $$BEGIN INSERT INTO "deqing"."dangliang_events" VALUES (1);
END;$$;
CREATE TABLE deqing.deqing_notes (note text);
ALTER TABLE ONLY deqing.dangliang_events ALTER COLUMN notification_id
    SET DEFAULT nextval('deqing.dangliang_events_notification_id_seq'::regclass);
COPY deqing.dangliang_events (notification_id, state) FROM stdin;
1\t\\\\x7b7d
2\t\\\\x6465716e696e672e
\\.
COPY deqing.deqing_notes (note) FROM stdin;
deqing.t stays as it is; CREATE SCHEMA x;
\\.
SELECT pg_catalog.setval('deqing.dangliang_events_notification_id_seq', 2, true);

\\unrestrict abc123
"""


def test_the_script_runs_under_the_new_schema_with_rows_untouched() -> None:
    conn = FakeConnection()
    seen: list[tuple[int, int]] = []
    script = Script("deqing", "dl_restoring_1", "dangliang_events", 2, lambda *a: seen.append(a))
    script.run(conn, iter(SCRIPT.splitlines(keepends=True)))  # type: ignore[arg-type]
    executed = "\n".join(conn.executed)
    assert "CREATE SCHEMA" not in executed  # the new schema is created by the loader
    assert "deqing." not in executed.replace('"dl_restoring_1".deqing_notes', "")
    assert 'INSERT INTO "dl_restoring_1"."dangliang_events"' in executed
    assert "nextval('\"dl_restoring_1\".dangliang_events_notification_id_seq'" in executed
    assert 'CREATE TABLE "dl_restoring_1".deqing_notes' in executed  # a name, not a qualifier
    copies = {k.split(" (")[0]: b"".join(v) for k, v in conn.copied.items()}
    assert copies['COPY "dl_restoring_1".dangliang_events'] == (
        b"1\t\\\\x7b7d\n2\t\\\\x6465716e696e672e\n"
    )
    assert copies['COPY "dl_restoring_1".deqing_notes'] == (
        b"deqing.t stays as it is; CREATE SCHEMA x;\n"
    )
    assert seen == [(2, 2)]  # the events table's rows, counted


@pytest.mark.parametrize(
    "statement",
    [
        b"DROP TABLE deqing.dangliang_events;\n",
        b"UPDATE deqing.dangliang_events SET state = NULL;\n",
        b"DO $$BEGIN PERFORM 1; END$$;\n",
        b"\\! rm -rf /\n",
        b"SELECT pg_sleep(100);\n",
    ],
)
def test_a_statement_no_dangliang_dump_holds_is_refused_before_it_runs(
    statement: bytes,
) -> None:
    conn = FakeConnection()
    script = Script("deqing", "dl_restoring_1", "dangliang_events", 0, None)
    lines = [b"SET lock_timeout = 0;\n", statement]
    with pytest.raises(ArchiveRefused, match="never contains"):
        script.run(conn, iter(lines))  # type: ignore[arg-type]
    assert conn.executed == ["SET lock_timeout = 0;"]

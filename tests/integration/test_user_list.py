"""The list of users (`Users.all_users`) on SQLite and PostgreSQL: read from the registry's
names, not by scanning the log; a user added appears at once (by the API, the CLI or another
process), a disabled one stays listed, and a database whose registry was built before it held
names gets them at the next start."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from dangliang.application import Dangliang, bootstrap
from dangliang.projections import equivalents as eq
from dangliang.projections import registry as reg
from dangliang.projections.tracking import notifications_in
from dangliang.settings import Settings
from tests.conftest import Prepare, load_reference


def names(app: Dangliang) -> list[str]:
    return [u.name for u in app.users.all_users()]


def test_a_new_user_is_listed_at_once_without_a_scan_of_the_log(
    prepared_url: Prepare, county: Any, monkeypatch: Any
) -> None:
    url = prepared_url("reference", lambda a: load_reference(a, county))
    app, other = bootstrap(Settings(url)), bootstrap(Settings(url))
    try:
        assert names(app) == []
        app.users.add("乙审计员", role="auditor", institution=None, actor="t")
        assert names(app) == ["乙审计员"]
        other.users.add("甲管理员", role="admin", institution=None, actor="t")  # elsewhere
        app.users.add("丙填报员", role="clerk", institution="C01", actor="t")
        app.users.disable("乙审计员", reason="调岗", actor="甲管理员")
        scans: list[Any] = []
        monkeypatch.setattr(
            "dangliang.application.accounts.notifications_in",
            lambda *a, **k: scans.append(a) or notifications_in(*a, **k),
        )
        listed = app.users.all_users()
        assert [u.name for u in listed] == sorted(["甲管理员", "乙审计员", "丙填报员"])
        assert [u.active for u in listed if u.name == "乙审计员"] == [False]
        assert [u.institution for u in listed if u.name == "丙填报员"] == ["C01"]
        assert scans == []  # the registry answered
    finally:
        app.close()
        other.close()


def test_a_registry_built_before_it_kept_names_is_replayed_once_at_start(
    prepared_url: Prepare, county: Any
) -> None:
    url = prepared_url("reference", lambda a: load_reference(a, county))
    app = bootstrap(Settings(url))
    try:
        app.users.add("老用户", role="auditor", institution=None, actor="t")
        assert names(app) == ["老用户"]
        with app.write_engine.begin() as conn:  # as the previous version left it
            conn.execute(delete(reg.users))
            conn.execute(
                delete(eq.projection_versions).where(eq.projection_versions.c.name == "registry")
            )
        assert names(app) == []
    finally:
        app.close()
    again = bootstrap(Settings(url))
    try:
        assert names(again) == ["老用户"]
        with again.engine.connect() as conn:
            assert eq.stored_version(conn, "registry") == reg.RegistryProjection.version
        assert "C01" in again.institutions()  # the reference data replayed with them
    finally:
        again.close()

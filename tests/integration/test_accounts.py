"""User accounts on SQLite and PostgreSQL: passwords and sign-in, must-change after an admin
sets one, disable/enable, role changes in force at once, self-disable refused, token expiry
(also through the HTTP API), history for an admin, the `dangliang users …` commands, and users
recorded by old code."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from fastapi.testclient import TestClient
from freezegun import freeze_time

from dangliang.api import PREFIX, create_app
from dangliang.application import Dangliang, bootstrap
from dangliang.application.accounts import TEMPORARY_ALPHABET, Users
from dangliang.cli.main import main
from dangliang.domain.errors import InvalidValue, NotFound
from dangliang.domain.users import ApiUser, UserRefused, WeakPassword, WrongPassword
from dangliang.settings import Settings
from tests.conftest import Prepare, PrepareApp, load_reference, sqlite_only
from tests.e2e.test_equivalents_cli import run

FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only
PASSWORD = "春眠不觉晓2024"


@pytest.fixture
def accounts(prepared_app: PrepareApp, county: Any) -> Dangliang:
    """The county's reference data (institutions C01…, village clinics C01V01…); passwords
    hashed with cheap parameters."""
    app = prepared_app("reference", lambda a: load_reference(a, county))
    app.users.hasher = FAST
    return app


def test_sign_in_needs_the_right_password_of_an_active_user(accounts: Dangliang) -> None:
    users = accounts.users
    users.add("局管理员", role="admin", institution=None, actor="tester", password=PASSWORD)
    users.add("财政审计", role="auditor", institution=None, actor="tester")

    signed_in = users.sign_in("局管理员", PASSWORD)
    assert signed_in is not None and signed_in.role == "admin" and signed_in.scope is None
    assert signed_in.must_change_password  # set by someone else: to be changed
    assert users.sign_in("局管理员", PASSWORD + "x") is None
    assert users.sign_in("局管理员", "") is None
    assert users.sign_in("无此人", PASSWORD) is None
    assert users.sign_in("财政审计", PASSWORD) is None  # no password set

    users.add("二号管理员", role="admin", institution=None, actor="tester")
    users.disable("局管理员", reason="休假", actor="二号管理员")
    assert users.sign_in("局管理员", PASSWORD) is None
    assert users.principal("局管理员") is None
    users.enable("局管理员", actor="二号管理员")
    assert users.sign_in("局管理员", PASSWORD) is not None
    with pytest.raises(UserRefused, match="not disabled"):
        users.enable("局管理员", actor="二号管理员")


def test_the_owner_replaces_a_password_an_admin_set(accounts: Dangliang) -> None:
    users = accounts.users
    users.add("C01填报员", role="clerk", institution="C01", actor="局管理员", password=PASSWORD)
    with pytest.raises(WrongPassword, match="current password is wrong"):
        users.change_own_password("C01填报员", "猜的密码guess", "新密码abc123")
    with pytest.raises(WeakPassword, match="differ"):
        users.change_own_password("C01填报员", PASSWORD, PASSWORD)
    with pytest.raises(WeakPassword, match="digits only"):
        users.change_own_password("C01填报员", PASSWORD, "2024202420")
    users.change_own_password("C01填报员", PASSWORD, "新密码abc123")
    principal = users.sign_in("C01填报员", "新密码abc123")
    assert principal is not None and not principal.must_change_password
    assert users.sign_in("C01填报员", PASSWORD) is None
    last = users.history("C01填报员")[-1]
    assert (last["what"], last["actor"]) == ("本人修改密码", "C01填报员")

    temporary = users.reset_password("C01填报员", actor="局管理员")
    assert len(temporary) == 12 and set(temporary) <= set(TEMPORARY_ALPHABET)
    assert users.sign_in("C01填报员", "新密码abc123") is None
    principal = users.sign_in("C01填报员", temporary)
    assert principal is not None and principal.must_change_password
    users.set_password("C01填报员", "我自己的密码ok", actor="C01填报员", must_change=False)
    assert users.principal("C01填报员").must_change_password is False  # type: ignore[union-attr]


@sqlite_only  # the rules; users are added on both backends by the tests around it
def test_password_rules_refuse_before_anything_is_recorded(accounts: Dangliang) -> None:
    users = accounts.users
    head = accounts.log.head()
    for weak, why in (("short", "at least 8"), ("12345678", "digits only"), ("张三", "at least")):
        with pytest.raises(WeakPassword, match=why):
            users.add("张三", role="admin", institution=None, actor="t", password=weak)
    with pytest.raises(WeakPassword, match="user name"):
        users.add("zhangsan01", role="admin", institution=None, actor="t", password="ZhangSan01")
    assert accounts.log.head() == head
    users.add("张三", role="admin", institution=None, actor="t")
    with pytest.raises(WeakPassword, match="at least 8"):
        users.set_password("张三", "abc", actor="t", must_change=True)
    with pytest.raises(NotFound, match="no user"):
        users.set_password("李四", PASSWORD, actor="t", must_change=True)
    assert accounts.log.head() == head + 1


def test_a_role_change_narrows_a_clerk_at_once(accounts: Dangliang) -> None:
    users = accounts.users
    users.add("填报员", role="clerk", institution="C01", actor="局管理员", password=PASSWORD)
    before = users.principal("填报员")
    assert before is not None and "C01" in before.scope and "C01V01" in before.scope  # type: ignore[operator]
    assert not before.may_see("C02")
    users.change_role("填报员", role="clerk", institution="C02", actor="局管理员")
    after = users.principal("填报员")
    assert after is not None and after.may_see("C02V01") and not after.may_see("C01")
    with pytest.raises(NotFound, match="unknown institution: X9"):
        users.change_role("填报员", role="clerk", institution="X9", actor="局管理员")
    with pytest.raises(InvalidValue, match="clerk needs --institution"):
        users.change_role("填报员", role="clerk", institution=None, actor="局管理员")
    users.change_role("填报员", role="auditor", institution=None, actor="局管理员")
    auditor = users.sign_in("填报员", PASSWORD)
    assert auditor is not None and (auditor.role, auditor.scope) == ("auditor", None)


def test_an_admin_may_neither_disable_nor_demote_themselves(accounts: Dangliang) -> None:
    users = accounts.users
    users.add("局管理员", role="admin", institution=None, actor="tester")
    with pytest.raises(UserRefused, match="disable yourself"):
        users.disable("局管理员", reason="误操作", actor="局管理员")
    with pytest.raises(UserRefused, match="demote themselves"):
        users.change_role("局管理员", role="auditor", institution=None, actor="局管理员")
    with pytest.raises(UserRefused, match="disable yourself"):
        users.revoke("局管理员", reason="误操作", actor="局管理员")
    assert users.principal("局管理员").role == "admin"  # type: ignore[union-attr]
    users.add("二号管理员", role="admin", institution=None, actor="tester")
    users.change_role("局管理员", role="auditor", institution=None, actor="二号管理员")
    users.disable("局管理员", reason="调岗", actor="二号管理员")
    assert users.principal("局管理员") is None


def test_tokens_expire(accounts: Dangliang) -> None:
    users = accounts.users
    now = datetime.now(UTC)
    token = users.add("审计", role="auditor", institution=None, actor="t", token_days=30)
    forever = users.add("长期", role="auditor", institution=None, actor="t", token_days=None)
    assert users.authenticate(token) is not None
    assert users.authenticate(token, now=now + timedelta(days=29)) is not None
    later = now + timedelta(days=31)
    assert users.authenticate(token, now=later) is None
    assert users.token_expired(token, now=later) and not users.token_expired(token)
    assert not users.token_expired(token + "x", now=later)
    assert users.authenticate(forever, now=now + timedelta(days=36_500)) is not None
    with freeze_time(now + timedelta(days=31)):
        assert users.authenticate(token) is None
        assert users.authenticate(forever) is not None
    renewed = users.issue_token("审计", actor="t", days=400)
    assert users.authenticate(renewed, now=later) is not None
    with pytest.raises(InvalidValue, match="positive"):
        users.issue_token("审计", actor="t", days=0)
    user: ApiUser = accounts.log.repository.get(users._find("审计").id)  # type: ignore[union-attr]
    assert user.token_expires_at is not None
    assert timedelta(days=399) < user.token_expires_at - now < timedelta(days=401)


def test_an_expired_token_gets_401_saying_so(accounts: Dangliang) -> None:
    token = accounts.users.add("审计", role="auditor", institution=None, actor="t", token_days=1)
    client = TestClient(create_app(accounts))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(PREFIX + "/me", headers=headers).json()["role"] == "auditor"
    with freeze_time(datetime.now(UTC) + timedelta(days=2)):
        expired = client.get(PREFIX + "/me", headers=headers)
        invalid = client.get(PREFIX + "/me", headers={"Authorization": f"Bearer {token}x"})
    assert expired.status_code == invalid.status_code == 401
    assert expired.json()["message_en"].startswith("the token has expired")
    assert "过期" in expired.json()["message_zh"]
    assert 'error="invalid_token"' in expired.headers["www-authenticate"]
    assert invalid.json()["message_en"].startswith("the token is invalid")
    accounts.users.add("局管理员", role="admin", institution=None, actor="t")
    accounts.users.revoke("审计", reason="离职", actor="局管理员")
    with freeze_time(datetime.now(UTC) + timedelta(days=2)):  # revoked: not "expired"
        revoked = client.get(PREFIX + "/me", headers=headers)
    assert revoked.json()["message_en"].startswith("the token is invalid")


def test_history_says_who_did_what_and_never_shows_a_hash(accounts: Dangliang) -> None:
    users = accounts.users
    users.add("填报员", role="clerk", institution="C01", actor="局管理员", token_days=None)
    users.reset_password("填报员", actor="局管理员")
    users.change_role("填报员", role="auditor", institution=None, actor="局管理员")
    users.disable("填报员", reason="调岗", actor="局管理员")
    users.enable("填报员", actor="局管理员")
    users.issue_token("填报员", actor="局管理员")
    history = users.history("填报员")
    assert [h["actor"] for h in history] == ["局管理员"] * 6
    assert all(isinstance(h["at"], datetime) for h in history)
    assert [h["at"] for h in history] == sorted(h["at"] for h in history)
    whats = [h["what"] for h in history]
    assert whats[0].startswith("添加用户，角色 机构填报员") and "C01" in whats[0]
    assert "令牌长期有效" in whats[0]
    assert whats[1:5] == [
        "设置临时密码（下次登录须修改）",
        "角色改为 财政审计员 / finance auditor",
        "停用：调岗",
        "重新启用（需新令牌才能调用接口）",
    ]
    assert whats[5].startswith("签发新令牌") and "有效期至" in whats[5]
    user = users._find("填报员")
    assert user is not None and user.password_hash
    assert not any(user.password_hash in str(h) for h in history)


def test_a_password_hashed_with_weaker_parameters_is_rehashed_at_sign_in(
    accounts: Dangliang,
) -> None:
    users = accounts.users
    users.add("局管理员", role="admin", institution=None, actor="t", password=PASSWORD)
    old_hash = users._find("局管理员").password_hash  # type: ignore[union-attr]
    stronger = Users(
        accounts.log,
        accounts.institutions,
        PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1),
    )
    assert stronger.sign_in("局管理员", PASSWORD) is not None
    user = stronger._find("局管理员")
    assert user is not None and user.password_hash is not None
    assert user.password_hash != old_hash and "t=2" in user.password_hash
    assert user.must_change_password  # as it was
    assert stronger.history("局管理员")[-1]["actor"] == "局管理员"
    head = accounts.log.head()
    assert stronger.sign_in("局管理员", PASSWORD) is not None
    assert accounts.log.head() == head  # nothing more to rehash


# ---- the command line -----------------------------------------------------------------------


def dangliang_with_input(db: str, text: str, *args: str) -> Any:
    return CliRunner().invoke(
        main, [*args, "--db", db], input=text, env={"DANGLIANG_ACTOR": "e2e"}, prog_name="dangliang"
    )


def test_users_commands(prepared_url: Prepare, county: Any) -> None:
    db = prepared_url("reference", lambda a: load_reference(a, county))
    added = dangliang_with_input(
        db, f"{PASSWORD}\n{PASSWORD}\n", "users", "add", "局管理员", "--role", "admin",
        "--password-prompt", "--token-days", "0",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout.strip().splitlines()[-1].startswith("dl_")
    assert "password set" in added.stdout and "no expiry" in added.stdout
    assert PASSWORD not in added.stdout
    weak = dangliang_with_input(
        db, "123\n123\n", "users", "add", "某人", "--role", "auditor", "--password-prompt"
    )
    assert weak.exit_code == 1 and "at least 8" in weak.stderr

    clerk = run("users", "add", "C01填报员", "--role", "clerk", "--institution", "C01", db=db)
    assert clerk.returncode == 0 and "90 days" in clerk.stdout
    reset = run("users", "password", "C01填报员", "--reset", db=db)
    assert reset.returncode == 0, reset.stderr
    temporary = reset.stdout.strip().splitlines()[-1]
    set_own = dangliang_with_input(
        db, "又一个密码abc\n又一个密码abc\n", "users", "password", "局管理员"
    )
    assert set_own.exit_code == 0 and "password set for 局管理员" in set_own.stdout

    moved = run("users", "role", "C01填报员", "--role", "clerk", "--institution", "C02", db=db)
    assert moved.returncode == 0 and "role changed" in moved.stdout
    bad = run("users", "role", "C01填报员", "--role", "auditor", "--institution", "C02", db=db)
    assert bad.returncode == 1 and "other roles take none" in bad.stderr
    assert run("users", "revoke", "C01填报员", "--reason", "调岗", db=db).returncode == 0
    listed = run("users", "list", db=db).stdout
    line = next(x for x in listed.splitlines() if x.startswith("C01填报员"))
    assert "C02" in line and "revoked" in line and "must change" in line and "token until" in line
    assert "added by e2e" in line and temporary not in listed
    enabled = run("users", "enable", "C01填报员", db=db)
    assert enabled.returncode == 0 and "users token C01填报员" in enabled.stdout
    listed = run("users", "list", db=db).stdout
    line = next(x for x in listed.splitlines() if x.startswith("C01填报员"))
    assert "active" in line and "no token" in line
    admin = next(x for x in listed.splitlines() if x.startswith("局管理员"))
    assert "never expires" in admin and "有密码 password" in admin
    assert run("users", "enable", "C01填报员", db=db).returncode == 1

    app = bootstrap(Settings(db))
    try:
        assert app.users.sign_in("C01填报员", temporary) is not None
        assert app.users.sign_in("局管理员", "又一个密码abc") is not None
    finally:
        app.close()


# ---- users recorded before passwords and token expiry ----------------------------------------

FIXTURE = Path(__file__).parent.parent / "fixtures" / "pre_regroup"


@pytest.fixture
def old_app(tmp_path: Path) -> Iterator[Dangliang]:
    path = tmp_path / "pre_regroup.db"
    with gzip.open(FIXTURE / "pre_regroup.db.gz") as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    app = bootstrap(Settings(f"sqlite:///{path}"))
    yield app
    app.close()


def test_users_recorded_by_old_code_never_expire_and_take_the_new_events(
    old_app: Dangliang,
) -> None:
    users = old_app.users
    found = {u.name: u for u in users.all_users()}
    assert set(found) == {"审计员", "C01填报员"}
    for user in found.values():
        assert user.active and user.token_expires_at is None and user.password_hash is None
    assert users.history("C01填报员")[0]["what"].endswith("令牌长期有效")
    users.hasher = FAST
    users.set_password("C01填报员", PASSWORD, actor="builder", must_change=True)
    users.change_role("审计员", role="admin", institution=None, actor="builder")
    assert users.sign_in("C01填报员", PASSWORD) is not None
    assert users.principal("审计员").role == "admin"  # type: ignore[union-attr]
    assert old_app.verify_log()["ok"]

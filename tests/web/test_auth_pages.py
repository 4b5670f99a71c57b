"""Signing in and out of the workbench, sessions, CSRF, roles on pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time

from dangliang.web import auth_pages
from dangliang.web.guard import SESSION_COOKIE, safe_next
from tests.web.conftest import PASSWORD, PEOPLE, Site, csrf_of, sign_in


def test_a_page_sends_a_stranger_to_sign_in_and_back(sqlite_site: Site) -> None:
    client = sqlite_site.anonymous()
    page = client.get("/audit", headers={"Accept": "text/html"})
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/audit"
    fragment = client.get("/audit", headers={"Accept": "application/json"})
    assert fragment.status_code == 401

    form = client.get("/login?next=/audit")
    assert form.status_code == 200 and "用户名" in form.text and "密码" in form.text
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    done = client.post(
        "/login",
        data={
            "username": PEOPLE["auditor"],
            "password": PASSWORD,
            "login_csrf": token,
            "next": "/audit",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/audit"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and f"{SESSION_COOKIE}=" in cookie
    assert client.get("/audit").status_code == 200


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    sqlite_site: Site,
) -> None:
    client = sqlite_site.anonymous()
    wrong = sign_in(client, PEOPLE["admin"], "not-the-password")
    unknown = sign_in(client, "没有这个人", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码不正确" in wrong.text and "用户名或密码不正确" in unknown.text
    assert SESSION_COOKIE not in client.cookies


def test_the_sign_in_form_needs_its_own_csrf_token(sqlite_site: Site) -> None:
    client = sqlite_site.anonymous()
    client.get("/login")
    forged = client.post(
        "/login", data={"username": PEOPLE["admin"], "password": PASSWORD, "login_csrf": "x"}
    )
    assert forged.status_code == 400 and SESSION_COOKIE not in client.cookies


def test_five_wrong_passwords_lock_the_name_for_ten_minutes(sqlite_site: Site) -> None:
    name = "锁定测试员"
    sqlite_site.service.users.add(
        name, role="auditor", institution=None, actor="tester", password=PASSWORD
    )
    sqlite_site.service.users.set_password(name, PASSWORD, actor="tester", must_change=False)
    client = sqlite_site.anonymous()
    for _ in range(auth_pages.LOCK_AFTER):
        assert sign_in(client, name, "wrong-password-1").status_code == 401
    locked = sign_in(client, name, PASSWORD)
    assert locked.status_code == 429 and "10 分钟" in locked.text
    auth_pages.throttle.succeeded(name)  # the lock is per process; clear it for other tests
    assert sign_in(client, name, PASSWORD).status_code == 303


def test_sign_out_ends_the_session_at_once(sqlite_site: Site) -> None:
    client = sqlite_site.anonymous()
    sign_in(client, PEOPLE["auditor"], PASSWORD)
    token = client.cookies[SESSION_COOKIE]
    out = client.post("/logout", data={"csrf_token": csrf_of(client)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    client.cookies.set(SESSION_COOKIE, token)  # a copied cookie does not come back to life
    assert client.get("/audit", headers={"Accept": "text/html"}).status_code == 303


def test_a_form_without_the_session_csrf_token_is_refused(sqlite_site: Site) -> None:
    client = sqlite_site.client("admin")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/audit").status_code == 200  # still signed in


def test_a_session_expires_after_a_working_day(sqlite_site: Site) -> None:
    client = sqlite_site.anonymous()
    sign_in(client, PEOPLE["auditor"], PASSWORD)
    assert client.get("/audit").status_code == 200
    token = client.cookies[SESSION_COOKIE]
    later = datetime.now(UTC) + timedelta(hours=8, minutes=1)
    with freeze_time(later):
        # The browser drops the cookie when it expires; one sent anyway is refused too.
        client.cookies.set(SESSION_COOKIE, token)
        page = client.get("/audit", headers={"Accept": "text/html"})
        assert page.status_code == 303
        again = client.get(page.headers["location"])
        assert "登录已过期" in again.text


def test_disabling_a_user_ends_their_sessions_at_the_next_request(sqlite_site: Site) -> None:
    users = sqlite_site.service.users
    users.add("停用测试员", role="auditor", institution=None, actor="tester", password=PASSWORD)
    users.set_password("停用测试员", PASSWORD, actor="tester", must_change=False)
    client = sqlite_site.anonymous()
    sign_in(client, "停用测试员", PASSWORD)
    assert client.get("/audit").status_code == 200
    users.disable("停用测试员", reason="离职", actor="局管理员")
    assert client.get("/audit", headers={"Accept": "text/html"}).status_code == 303
    assert sign_in(client, "停用测试员", PASSWORD).status_code == 401


def test_a_password_set_by_an_admin_must_be_changed_first(sqlite_site: Site) -> None:
    users = sqlite_site.service.users
    users.add("新同事", role="auditor", institution=None, actor="局管理员", password="Temp-pass-1")
    client = sqlite_site.anonymous()
    first = sign_in(client, "新同事", "Temp-pass-1")
    assert first.status_code == 303 and first.headers["location"] == "/account/password"
    assert client.get("/audit").headers["location"] == "/account/password"
    csrf = csrf_of(client)
    differ = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "old_password": "Temp-pass-1",
            "new_password": "my-own-pass-9",
            "repeat_password": "my-own-pass-8",
        },
    )
    assert differ.status_code == 422 and "不一致" in differ.text
    done = client.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "old_password": "Temp-pass-1",
            "new_password": "my-own-pass-9",
            "repeat_password": "my-own-pass-9",
        },
    )
    assert done.status_code == 303
    assert client.get("/audit").status_code == 200
    assert sign_in(sqlite_site.anonymous(), "新同事", "my-own-pass-9").status_code == 303


def test_a_clerk_may_not_open_the_audit_page(sqlite_site: Site) -> None:
    page = sqlite_site.get("clerk", "/audit")
    assert page.status_code == 403 and "无权" in page.text
    assert sqlite_site.post("clerk", "/audit/verify").status_code == 403


def test_pages_speak_english_when_asked(sqlite_site: Site) -> None:
    client = sqlite_site.client("auditor")
    back = client.get("/lang/en?next=/audit")
    assert back.status_code == 303 and back.headers["location"] == "/audit"
    page = client.get("/audit")
    assert 'lang="en"' in page.text and "Verify the hash chain" in page.text
    client.get("/lang/zh?next=/audit")
    assert "校验哈希链" in client.get("/audit").text


def test_after_sign_in_only_a_path_of_this_site_is_followed() -> None:
    assert safe_next("/runs?year=2024") == "/runs?year=2024"
    for outside in ("https://evil.example/", "//evil.example/", "/\\evil", "", None):
        assert safe_next(outside) == "/"


def test_a_refreshed_part_of_a_page_gets_a_short_refusal_not_the_sign_in_page(
    sqlite_site: Site,
) -> None:
    fragment = {"Accept": "text/html-fragment"}
    signed_out = sqlite_site.anonymous().get("/audit", headers=fragment)
    assert signed_out.status_code == 401
    assert "data-finished" in signed_out.text and "<html" not in signed_out.text
    refused = sqlite_site.client("clerk").get("/audit", headers=fragment)
    assert refused.status_code == 403 and "<html" not in refused.text


def test_every_response_says_how_long_the_server_took(sqlite_site: Site) -> None:
    for response in (
        sqlite_site.get("auditor", "/audit"),
        sqlite_site.client("auditor").get("/api/v1/health"),
    ):
        timing = response.headers["server-timing"]
        assert re.fullmatch(r"app;dur=\d+\.\d", timing) and float(timing[8:]) > 0

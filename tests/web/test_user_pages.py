"""The bureau admin manages users in the browser; each change is an event with its actor."""

from __future__ import annotations

import re

from tests.web.conftest import PEOPLE, Site, sign_in


def _temporary(page_text: str) -> str:
    found = re.search(r'id="temporary-password-value"[^>]*>([^<]+)<', page_text)
    assert found, page_text[:300]
    return found.group(1)


def test_an_admin_adds_a_person_who_then_chooses_their_own_password(sqlite_site: Site) -> None:
    added = sqlite_site.post("admin", "/users", {"name": "新审计员", "role": "auditor"})
    assert added.status_code == 201
    temporary = _temporary(added.text)
    assert 'data-user="新审计员"' in added.text

    client = sqlite_site.anonymous()
    first = sign_in(client, "新审计员", temporary)
    assert first.headers["location"] == "/account/password"
    history = sqlite_site.get("admin", "/users/新审计员")
    assert history.status_code == 200
    assert PEOPLE["admin"] in history.text  # the actor of the change
    user = next(u for u in sqlite_site.service.users.all_users() if u.name == "新审计员")
    assert user.role == "auditor" and user.added_by == PEOPLE["admin"]


def test_disable_enable_reset_and_role_change_take_effect_at_once(sqlite_site: Site) -> None:
    added = sqlite_site.post("admin", "/users", {"name": "调岗员", "role": "auditor"})
    temporary = _temporary(added.text)
    users = sqlite_site.service.users
    users.change_own_password("调岗员", temporary, "own-pass-123")
    client = sqlite_site.anonymous()
    assert sign_in(client, "调岗员", "own-pass-123").status_code == 303
    assert client.get("/audit").status_code == 200

    role = sqlite_site.post("admin", "/users/调岗员/role", {"role": "clerk", "institution": "C02"})
    assert role.status_code == 303
    assert client.get("/audit").status_code == 403  # a clerk now, from this request on
    principal = users.principal("调岗员")
    assert principal is not None and principal.institution == "C02"

    disabled = sqlite_site.post("admin", "/users/调岗员/disable", {"reason": "离职"})
    assert disabled.status_code == 303
    assert client.get("/audit", headers={"Accept": "text/html"}).status_code == 303
    assert sign_in(sqlite_site.anonymous(), "调岗员", "own-pass-123").status_code == 401

    assert sqlite_site.post("admin", "/users/调岗员/enable").status_code == 303
    reset = sqlite_site.post("admin", "/users/调岗员/reset")
    new_temporary = _temporary(reset.text)
    assert sign_in(sqlite_site.anonymous(), "调岗员", "own-pass-123").status_code == 401
    again = sign_in(sqlite_site.anonymous(), "调岗员", new_temporary)
    assert again.headers["location"] == "/account/password"

    whats = [h["what"] for h in users.history("调岗员")]
    assert len(whats) >= 6  # added, password set, own password, role, disabled, enabled, reset


def test_an_admin_cannot_disable_themselves(sqlite_site: Site) -> None:
    page = sqlite_site.get("admin", "/users")
    me = PEOPLE["admin"]
    row = re.search(rf'<tr data-user="{me}".*?</tr>', page.text, re.S)
    assert row and "/disable" not in row.group(0)  # not offered
    forged = sqlite_site.post("admin", f"/users/{me}/disable", {"reason": "试试"})
    assert forged.status_code == 409
    assert sqlite_site.service.users.principal(me) is not None


def test_only_an_admin_manages_users(sqlite_site: Site) -> None:
    for who in ("auditor", "clerk"):
        assert sqlite_site.get(who, "/users").status_code == 403
        refused = sqlite_site.post(who, "/users", {"name": "越权", "role": "admin"})
        assert refused.status_code == 403
    assert "越权" not in {u.name for u in sqlite_site.service.users.all_users()}


def test_a_bad_request_is_explained_and_changes_nothing(sqlite_site: Site) -> None:
    before = sqlite_site.service.log.head()
    clerk_without_institution = sqlite_site.post(
        "admin", "/users", {"name": "缺机构", "role": "clerk"}
    )
    assert clerk_without_institution.status_code == 422
    assert "机构" in clerk_without_institution.text
    unknown = sqlite_site.post(
        "admin", "/users", {"name": "错机构", "role": "clerk", "institution": "NOPE"}
    )
    assert unknown.status_code == 404
    assert sqlite_site.service.log.head() == before

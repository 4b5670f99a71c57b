"""Who may open which page (角色权限), checked on every page and every fragment.

The roles are the API's (`dangliang.api.access`): an admin may do everything; an auditor
reads everything, approves or rejects runs and verifies the log; a clerk imports and reads
only their institution and its village clinics. A page declares what it needs with one of
the dependencies below:

- `Viewer` — anyone signed in; `page(*roles)` — one of these roles;
- `form(*roles)` — the same for a POST, which must also carry the session's CSRF token (a
  hidden `csrf_token` field, or the `X-CSRF-Token` header for a script's request).

A clerk asking for another institution gets 403 (`require_institution`), on a page, in a
fragment and in a download alike; charts and tables are built only from what the viewer
may see, so nothing of another institution reaches the browser, not even a tooltip.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from dangliang.api.access import APPROVE, AUDIT_READ, IMPORT, READ, WRITE
from dangliang.application import Dangliang
from dangliang.application.accounts import Principal

SESSION_COOKIE = "dl_session"
PASSWORD_PAGE = "/account/password"

# The roles allowed each kind of action: the API's, so a page and its endpoint never differ.
AUDIT = AUDIT_READ  # county-wide: runs' documents, replay, diff, what-if, audit
ADMIN = WRITE


class PageError(Exception):
    """A refusal shown as a page (403, 404, 409, 422) in the viewer's language."""

    def __init__(self, status: int, message_zh: str, message_en: str):
        self.status = status
        self.message_zh = message_zh
        self.message_en = message_en
        super().__init__(f"{message_zh} / {message_en}")


class SignInNeeded(Exception):
    """No live session: a page redirects to the sign-in page, a fragment gets 401."""

    def __init__(self, next_path: str, expired: bool = False):
        self.next_path = next_path
        self.expired = expired


class PasswordChangeNeeded(Exception):
    """The person signed in with a password an admin set: they choose their own first."""


def service(request: Request) -> Dangliang:
    found: Dangliang = request.app.state.dangliang
    return found


def viewer(request: Request) -> Principal:
    """The signed-in person (their role and scope as the log stands now)."""
    app = service(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = app.sessions.find(token)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if session is None:
        raise SignInNeeded(here, expired=token is not None)
    principal = app.users.principal(session.user_name)
    if principal is None:  # disabled since they signed in
        app.sessions.end(token)
        raise SignInNeeded(here)
    request.state.principal = principal
    request.state.session = session
    request.state.csrf = session.csrf_token
    if principal.must_change_password and request.url.path not in (PASSWORD_PAGE, "/logout"):
        raise PasswordChangeNeeded()
    return principal


Viewer = Annotated[Principal, Depends(viewer)]
Service = Annotated[Dangliang, Depends(service)]


def _require_role(principal: Principal, roles: tuple[str, ...]) -> Principal:
    if principal.role not in roles:
        raise PageError(
            403,
            "您的角色无权打开此页面或进行此操作",
            f"your role ({principal.role}) may not open this page or do this",
        )
    return principal


def page(*roles: str) -> Callable[..., Principal]:
    """A dependency: the signed-in person, if their role is one of `roles`; else 403."""

    def check(principal: Viewer) -> Principal:
        return _require_role(principal, roles)

    return check


def form(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency for a POST: `page(*roles)` and the session's CSRF token."""

    async def check(request: Request, principal: Viewer) -> Principal:
        _require_role(principal, roles)
        sent = request.headers.get("X-CSRF-Token")
        if sent is None:
            sent = str((await request.form()).get("csrf_token") or "") or None
        if not request.state.session.accepts_csrf(sent):
            raise PageError(
                403,
                "表单已过期或来源不明，请刷新页面后重试",
                "the form has expired or did not come from this site; reload and try again",
            )
        return principal

    return check


def require_institution(principal: Principal, code: str) -> None:
    if not principal.may_see(code):
        raise PageError(
            403,
            f"机构填报员只能查看本机构（{principal.institution}）及其村卫生室",
            f"a clerk may only see {principal.institution} and its village clinics",
        )


def next_link(path: str) -> str:
    return "/login?next=" + quote(path, safe="/")


def safe_next(path: str | None) -> str:
    """Where to go after signing in: only a path of this site (never another host)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


__all__ = [
    "ADMIN",
    "APPROVE",
    "AUDIT",
    "IMPORT",
    "PASSWORD_PAGE",
    "READ",
    "SESSION_COOKIE",
    "PageError",
    "PasswordChangeNeeded",
    "Service",
    "SignInNeeded",
    "Viewer",
    "form",
    "next_link",
    "page",
    "require_institution",
    "safe_next",
    "service",
    "viewer",
]

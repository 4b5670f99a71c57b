"""Signing in and out, choosing one's own password, and the page language.

- `GET/POST /login`: user name and password (argon2, `Users.sign_in`). The form carries a
  CSRF token of its own (a cookie and a hidden field that must match), since there is no
  session yet. Five wrong passwords for a name within ten minutes lock that name for the
  rest of the ten minutes (per server process), so a password cannot be guessed quickly.
- `POST /logout`: the session stops working at once.
- `GET/POST /account/password`: the person chooses their own password; required before
  anything else after an admin added them or reset their password.
- `GET /lang/{zh|en}`: the page language (a cookie), back to the page one came from.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from dangliang.application.accounts import Principal
from dangliang.domain.errors import DomainError
from dangliang.web.guard import (
    PASSWORD_PAGE,
    READ,
    SESSION_COOKIE,
    PageError,
    Service,
    Viewer,
    form,
    safe_next,
)
from dangliang.web.rendering import render

router = APIRouter()

LOGIN_CSRF_COOKIE = "dl_login_csrf"
LOCK_AFTER = 5
LOCK_SECONDS = 600


class SignInThrottle:
    """Failed sign-ins per user name in the last ten minutes (this process only)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, name: str) -> deque[float]:
        found = self._failures[name]
        while found and found[0] < time.monotonic() - LOCK_SECONDS:
            found.popleft()
        return found

    def locked(self, name: str) -> bool:
        with self._lock:
            return len(self._recent(name)) >= LOCK_AFTER

    def failed(self, name: str) -> None:
        with self._lock:
            self._recent(name).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name, None)


throttle = SignInThrottle()


def _cookie_flags(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https"}


def _login_form(
    request: Request, next_path: str, name: str = "", status: int = 200, **message: str
) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status=status, next=next_path, name=name, login_csrf=token, **message
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_flags(request))  # type: ignore[arg-type]
    return response


@router.get("/login")
def login_page(request: Request, app: Service, next: str = "/") -> Response:
    expired = app.sessions.find(request.cookies.get(SESSION_COOKIE)) is None and bool(
        request.cookies.get(SESSION_COOKIE)
    )
    notice = {"notice_zh": "登录已过期，请重新登录", "notice_en": "Your session has expired."}
    return _login_form(request, safe_next(next), "", 200, **(notice if expired else {}))


@router.post("/login")
def login(
    request: Request,
    app: Service,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=200)],
    login_csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = safe_next(next)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, login_csrf):
        return _login_form(
            request,
            target,
            username,
            400,
            error_zh="登录表单已过期，请重新输入",
            error_en="The sign-in form expired; please enter your details again.",
        )
    name = username.strip()
    if throttle.locked(name):
        return _login_form(
            request,
            target,
            name,
            429,
            error_zh="密码错误次数过多，请 10 分钟后再试，或请管理员重置密码",
            error_en="Too many wrong passwords: try again in 10 minutes or ask an admin.",
        )
    principal = app.users.sign_in(name, password)
    if principal is None:
        throttle.failed(name)
        return _login_form(
            request,
            target,
            name,
            401,
            error_zh="用户名或密码不正确，或该用户已停用",
            error_en="Wrong user name or password, or the user is disabled.",
        )
    throttle.succeeded(name)
    token, _ = app.sessions.start(principal.name)
    go = PASSWORD_PAGE if principal.must_change_password else target
    response = RedirectResponse(go, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(app.sessions.lifetime.total_seconds()),
        **_cookie_flags(request),  # type: ignore[arg-type]
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(
    request: Request, app: Service, _: Annotated[Principal, Depends(form(*READ))]
) -> Response:
    app.sessions.end(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get(PASSWORD_PAGE)
def password_page(request: Request, me: Viewer) -> Response:
    return render(request, "account_password.html")


@router.post(PASSWORD_PAGE)
def change_password(
    request: Request,
    app: Service,
    _: Annotated[Principal, Depends(form(*READ))],
    old_password: Annotated[str, Form(max_length=200)],
    new_password: Annotated[str, Form(max_length=200)],
    repeat_password: Annotated[str, Form(max_length=200)],
) -> Response:
    name = request.state.principal.name
    if new_password != repeat_password:
        return render(
            request,
            "account_password.html",
            status=422,
            error_zh="两次输入的新密码不一致",
            error_en="The two new passwords differ.",
        )
    try:
        app.users.change_own_password(name, old_password, new_password)
    except DomainError as e:
        return render(
            request,
            "account_password.html",
            status=422,
            error_zh=e.message_zh,
            error_en=e.message_en,
        )
    return RedirectResponse("/?password=changed", status_code=303)


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str = "/") -> Response:
    if code not in ("zh", "en"):
        raise PageError(404, "没有这种语言", "no such language")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie("lang", code, max_age=365 * 86400, samesite="lax")
    return response

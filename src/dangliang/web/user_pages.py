"""Users (用户管理): the bureau admin adds people, disables and re-enables them, resets their
password and changes their role, in the browser. Each change is an event in the log with the
admin as its actor (`domain.users.ApiUser`), so who could do what, from when, is auditable.

- `GET /users`: everyone, with role, institution, state, password and API token expiry;
- `GET /users/{name}`: one person's history (who added, disabled, reset, changed them, when);
- `POST /users` (add), `/users/{name}/disable`, `/enable`, `/reset`, `/role`.

A new person gets a temporary password, shown once on the page that confirms the change, to
be changed at their first sign-in; a reset does the same and ends their open sessions. An
admin cannot disable or demote themselves (the county is never left without an admin by a
slip of the mouse).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from dangliang.application.accounts import Principal, temporary_password
from dangliang.domain.users import ROLES
from dangliang.web.guard import ADMIN, Service, form, page
from dangliang.web.rendering import render

router = APIRouter()

Admin = Annotated[Principal, Depends(page(*ADMIN))]
AdminForm = Annotated[Principal, Depends(form(*ADMIN))]
Name = Annotated[str, Path(max_length=200)]


def _listing(request: Request, app: Service, status: int = 200, **context: Any) -> Response:
    institutions = sorted(app.institutions())
    return render(
        request,
        "users/list.html",
        status=status,
        users=app.users.all_users(),
        roles=list(ROLES),
        institutions=institutions,
        **context,
    )


@router.get("/users")
def users_page(request: Request, app: Service, _: Admin, done: str = "") -> Response:
    return _listing(request, app, done=done[:40])


@router.get("/users/{name}")
def user_history(request: Request, app: Service, _: Admin, name: Name) -> Response:
    return render(request, "users/history.html", name=name, history=app.users.history(name))


@router.post("/users")
def add_user(
    request: Request,
    app: Service,
    me: AdminForm,
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form(max_length=20)],
    institution: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    temporary = temporary_password(name)
    app.users.add(
        name,
        role=role,
        institution=institution or None,
        actor=me.name,
        password=temporary,
    )
    return _listing(
        request, app, status=201, shown_once={"name": name.strip(), "password": temporary}
    )


@router.post("/users/{name}/disable")
def disable_user(
    app: Service,
    me: AdminForm,
    name: Name,
    reason: Annotated[str, Form(max_length=200)],
) -> Response:
    app.users.disable(name, reason=reason, actor=me.name)
    app.sessions.end_all(name)
    return RedirectResponse("/users?done=disabled", status_code=303)


@router.post("/users/{name}/enable")
def enable_user(app: Service, me: AdminForm, name: Name) -> Response:
    app.users.enable(name, actor=me.name)
    return RedirectResponse("/users?done=enabled", status_code=303)


@router.post("/users/{name}/reset")
def reset_password(request: Request, app: Service, me: AdminForm, name: Name) -> Response:
    temporary = app.users.reset_password(name, actor=me.name)
    app.sessions.end_all(name)
    return _listing(request, app, shown_once={"name": name, "password": temporary})


@router.post("/users/{name}/role")
def change_role(
    app: Service,
    me: AdminForm,
    name: Name,
    role: Annotated[str, Form(max_length=20)],
    institution: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    app.users.change_role(name, role=role, institution=institution or None, actor=me.name)
    return RedirectResponse("/users?done=role", status_code=303)

"""Who may do what (角色权限), checked on every endpoint.

- `admin` 县卫健局管理员: everything;
- `auditor` 财政审计员: read everything; approve or reject payout runs; verify the log;
- `clerk` 机构填报员: import service records and corrections of, and read, only their
  institution and its village clinics.

A route declares what it needs with one of the dependencies below; a clerk's reads are then
narrowed to their institutions by `scoped` (or refused with 403 when they name another one).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dangliang.api.refusals import ApiError
from dangliang.api.response_cache import CACHE_UNTIL, FOREVER
from dangliang.application import Dangliang
from dangliang.application.accounts import Principal

bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `dangliang users add NAME --role ROLE`.",
)

# RFC 6750's challenge for an expired token.
EXPIRED_CHALLENGE = 'Bearer error="invalid_token", error_description="The access token expired"'

# Roles allowed to take each kind of action.
READ = ("admin", "auditor", "clerk")
APPROVE = ("admin", "auditor")
VERIFY = ("admin", "auditor")
AUDIT_READ = ("admin", "auditor")  # county-wide documents: replay, diff, statements, what-if
WRITE = ("admin",)
IMPORT = ("admin", "clerk")


def service(request: Request) -> Dangliang:
    found: Dangliang = request.app.state.dangliang
    return found


def authenticated(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    if credentials is None:
        raise ApiError(
            401,
            "需要令牌（Authorization: Bearer …）",
            "a token is required (Authorization: Bearer …)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    users = service(request).users
    now = datetime.now(UTC)
    found = users.authenticate(credentials.credentials, now=now)
    if found is None and users.token_expired(credentials.credentials, now=now):
        raise ApiError(
            401,
            "令牌已过期，请管理员换发（dangliang users token）",
            "the token has expired; ask an admin for a new one (dangliang users token)",
            headers={"WWW-Authenticate": EXPIRED_CHALLENGE},
        )
    if found is None:
        raise ApiError(
            401,
            "令牌无效、已被替换或用户已停用",
            "the token is invalid, replaced, or its user revoked",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    # an answer made for this token may be kept until the token expires (response_cache)
    setattr(request.state, CACHE_UNTIL, found.token_expires_at or FOREVER)
    return found


def allow(*roles: str) -> Callable[..., Principal]:
    """A dependency: the caller, if their role is one of `roles`; else 403."""

    def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if principal.role not in roles:
            raise ApiError(
                403,
                f"角色 {principal.role} 无权进行此操作（需要 {'、'.join(roles)}）",
                f"role {principal.role} may not do this (needs one of: {', '.join(roles)})",
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(allow(*READ))]
Approver = Annotated[Principal, Depends(allow(*APPROVE))]
Verifier = Annotated[Principal, Depends(allow(*VERIFY))]
Auditor = Annotated[Principal, Depends(allow(*AUDIT_READ))]
Admin = Annotated[Principal, Depends(allow(*WRITE))]
Importer = Annotated[Principal, Depends(allow(*IMPORT))]
Service = Annotated[Dangliang, Depends(service)]


def require_institution(principal: Principal, institution: str) -> None:
    if not principal.may_see(institution):
        raise ApiError(
            403,
            f"机构填报员 {principal.name} 只能查看本机构（{principal.institution}）及其村卫生室",
            f"clerk {principal.name} may only see {principal.institution} and its village "
            f"clinics, not {institution}",
        )


def scoped(doc: dict[str, Any], principal: Principal, institution: str | None) -> dict[str, Any]:
    """`doc["institutions"]` narrowed to one institution (when asked) or to a clerk's scope;
    a clerk does not get the county's totals."""
    if institution is not None:
        require_institution(principal, institution)
        doc["institutions"] = [r for r in doc["institutions"] if r["code"] == institution]
    elif principal.scope is not None:
        doc["institutions"] = [r for r in doc["institutions"] if r["code"] in principal.scope]
    if principal.scope is not None:
        for county_wide in ("totals", "county_steps"):
            doc.pop(county_wide, None)
    return doc

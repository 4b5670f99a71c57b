"""API users (接口用户) and their roles, as facts in the log.

A user is added with a role and, for an institution clerk, the institution they work for; the
token they authenticate with is shown once and only its SHA-256 digest is recorded. A new
token replaces the old one; a revoked user can no longer authenticate. Being in the log, who
could act, from when, with which role, is auditable like everything else.

Roles (what each may do is enforced by the HTTP API, `dangliang.api.access`):

- `admin` 县卫健局管理员 (bureau admin): everything;
- `auditor` 财政审计员 (finance auditor): read everything, approve or reject payout runs,
  verify the log; nothing else;
- `clerk` 机构填报员 (institution clerk): import service records and corrections of, and read,
  only their institution and its village clinics.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import DomainError, InvalidValue
from dangliang.domain.values import require_text

ROLES: dict[str, str] = {
    "admin": "县卫健局管理员 / bureau admin",
    "auditor": "财政审计员 / finance auditor",
    "clerk": "机构填报员 / institution clerk",
}
TOKEN_PREFIX = "dl_"


class UserRefused(DomainError):
    """A user command the facts do not allow (a name taken, a revoked user…)."""


def token_digest(token: str) -> str:
    """What is recorded of a token: its SHA-256 (tokens are 256-bit random, so no salt or
    slow hash is needed, as for GitHub's or Stripe's API keys)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(user_id: UUID) -> str:
    """`dl_<user id>_<secret>`: the id finds the user without a scan; the secret is checked
    against the recorded digest."""
    return f"{TOKEN_PREFIX}{user_id.hex}_{secrets.token_urlsafe(32)}"


def user_id_of_token(token: str) -> UUID | None:
    """The user id a token names, or None for anything that is not shaped like a token."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    hex_id, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not secret or len(hex_id) != 32:
        return None
    try:
        return UUID(hex=hex_id)
    except ValueError:
        return None


class ApiUser(Aggregate):
    class Added(Aggregate.Created):
        """接口用户已添加."""

        name: str
        role: str
        institution: str | None
        token_digest: str
        actor: str

    class TokenIssued(Aggregate.Event):
        """新令牌已签发 (the previous one stops working)."""

        token_digest: str
        actor: str

    class Revoked(Aggregate.Event):
        """用户已停用."""

        reason: str
        actor: str

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return ids.api_user_id(name)

    @classmethod
    def add(
        cls, *, name: str, role: str, institution: str | None, token: str, actor: str
    ) -> ApiUser:
        require_text(name, "用户名", "a user name")
        if role not in ROLES:
            raise InvalidValue(
                f"未知角色：{role!r}（可选 {', '.join(ROLES)}）",
                f"unknown role {role!r}; one of {', '.join(ROLES)}",
            )
        if (role == "clerk") != (institution is not None):
            raise InvalidValue(
                "机构填报员须指定机构，其他角色不指定机构",
                "an institution clerk needs --institution; other roles take none",
            )
        return cls(
            name=name.strip(),
            role=role,
            institution=institution,
            token_digest=token_digest(token),
            actor=actor,
        )

    @event(Added)
    def __init__(
        self, name: str, role: str, institution: str | None, token_digest: str, actor: str
    ) -> None:
        self.name = name
        self.role = role
        self.institution = institution
        self.token_digest = token_digest
        self.active = True
        self.added_by = actor

    def issue_token(self, *, token: str, actor: str) -> None:
        """A new token; the old one stops working. A revoked user is not re-activated."""
        self._require_active()
        self._token_issued(token_digest=token_digest(token), actor=actor)

    @event(TokenIssued)
    def _token_issued(self, token_digest: str, actor: str) -> None:
        self.token_digest = token_digest

    def revoke(self, *, reason: str, actor: str) -> None:
        self._require_active()
        require_text(reason, "停用原因", "a reason")
        self._revoked(reason=reason.strip(), actor=actor)

    @event(Revoked)
    def _revoked(self, reason: str, actor: str) -> None:
        self.active = False

    def accepts(self, token: str) -> bool:
        """The token is this active user's current one (compared in constant time)."""
        return self.active and hmac.compare_digest(self.token_digest, token_digest(token))

    def _require_active(self) -> None:
        if not self.active:
            raise UserRefused(f"用户 {self.name} 已停用", f"user {self.name} has been revoked")

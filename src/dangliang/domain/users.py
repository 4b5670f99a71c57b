"""Users (用户) and their roles, as facts in the log: API tokens and workbench passwords.

A user is added with a role and, for an institution clerk, the institution they work for; the
token they authenticate with is shown once and only its SHA-256 digest is recorded, with the
moment it stops working (or none: it never expires). A new token replaces the old one. A user
who signs in to the browser workbench has a password, of which only its argon2 hash is
recorded (hashing is the application's: `application.accounts`); a password set by an admin
must be changed by its owner at the next sign-in. A disabled (revoked) user can neither use a
token nor sign in until re-enabled; re-enabling does not bring the old token back. Being in
the log, who could act, from when, with which role, is auditable like everything else.

Roles (what each may do is enforced by the HTTP API, `dangliang.api.access`):

- `admin` 县卫健局管理员 (bureau admin): everything;
- `auditor` 财政审计员 (finance auditor): read everything, approve or reject payout runs,
  verify the log; nothing else;
- `clerk` 机构填报员 (institution clerk): import service records and corrections of, and read,
  only their institution and its village clinics.

Events never read a clock: a token's expiry is computed by the caller and passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
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
PASSWORD_MIN = 8
PASSWORD_MAX = 128


class UserRefused(DomainError):
    """A user command the facts do not allow (a name taken, a revoked user…)."""


class WeakPassword(InvalidValue):
    """A password that breaks the rules (`check_password`)."""


class WrongPassword(DomainError):
    """The current password given to change one's own password is not the user's."""


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


def check_password(name: str, password: str) -> None:
    """Refuse a password that is too short or too long, the user's own name, digits only, or
    one character repeated."""
    if len(password) < PASSWORD_MIN:
        raise WeakPassword(
            f"密码至少 {PASSWORD_MIN} 个字符",
            f"a password needs at least {PASSWORD_MIN} characters",
        )
    if len(password) > PASSWORD_MAX:
        raise WeakPassword(
            f"密码至多 {PASSWORD_MAX} 个字符", f"a password has at most {PASSWORD_MAX} characters"
        )
    if password.strip().casefold() == name.strip().casefold():
        raise WeakPassword("密码不能与用户名相同", "a password may not be the user name")
    if password.isdigit():
        raise WeakPassword(
            "密码不能全是数字，请加入字母或符号",
            "a password may not be digits only; add letters or symbols",
        )
    if len(set(password)) == 1:
        raise WeakPassword(
            "密码不能是同一个字符的重复", "a password may not be one character repeated"
        )


def check_role(role: str, institution: str | None) -> None:
    """A known role; a clerk has an institution, other roles none."""
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


class ApiUser(Aggregate):
    class Added(Aggregate.Created):
        """接口用户已添加."""

        class_version = 2

        name: str
        role: str
        institution: str | None
        token_digest: str
        actor: str
        token_expires_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["token_expires_at"] = None  # tokens issued before expiry existed never expire

    class TokenIssued(Aggregate.Event):
        """新令牌已签发 (the previous one stops working)."""

        class_version = 2

        token_digest: str
        actor: str
        token_expires_at: datetime | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["token_expires_at"] = None

    class Revoked(Aggregate.Event):
        """用户已停用."""

        reason: str
        actor: str

    class Reinstated(Aggregate.Event):
        """用户已重新启用 (the token revoked with the user does not come back)."""

        actor: str

    class PasswordSet(Aggregate.Event):
        """密码已设置 (its argon2 hash; `must_change`: set by an admin, to be changed by its
        owner at the next sign-in)."""

        password_hash: str
        must_change: bool
        actor: str

    class RoleChanged(Aggregate.Event):
        """角色已变更."""

        role: str
        institution: str | None
        actor: str

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return ids.api_user_id(name)

    @classmethod
    def add(
        cls,
        *,
        name: str,
        role: str,
        institution: str | None,
        token: str,
        actor: str,
        token_expires_at: datetime | None = None,
    ) -> ApiUser:
        require_text(name, "用户名", "a user name")
        check_role(role, institution)
        return cls(
            name=name.strip(),
            role=role,
            institution=institution,
            token_digest=token_digest(token),
            actor=actor,
            token_expires_at=token_expires_at,
        )

    @event(Added)
    def __init__(
        self,
        name: str,
        role: str,
        institution: str | None,
        token_digest: str,
        actor: str,
        token_expires_at: datetime | None,
    ) -> None:
        self.name = name
        self.role = role
        self.institution = institution
        self.token_digest: str | None = token_digest
        self.token_expires_at = token_expires_at
        self.password_hash: str | None = None
        self.must_change_password = False
        self.active = True
        self.added_by = actor

    def issue_token(
        self, *, token: str, actor: str, token_expires_at: datetime | None = None
    ) -> None:
        """A new token; the old one stops working. A revoked user is not re-activated."""
        self._require_active()
        self._token_issued(
            token_digest=token_digest(token), actor=actor, token_expires_at=token_expires_at
        )

    @event(TokenIssued)
    def _token_issued(
        self, token_digest: str, actor: str, token_expires_at: datetime | None
    ) -> None:
        self.token_digest = token_digest
        self.token_expires_at = token_expires_at

    def revoke(self, *, reason: str, actor: str) -> None:
        self._require_active()
        require_text(reason, "停用原因", "a reason")
        self._revoked(reason=reason.strip(), actor=actor)

    @event(Revoked)
    def _revoked(self, reason: str, actor: str) -> None:
        self.active = False

    def reinstate(self, *, actor: str) -> None:
        """Re-enable a disabled user: the password signs in again; the API needs a new token."""
        if self.active:
            raise UserRefused(f"用户 {self.name} 未停用", f"user {self.name} is not disabled")
        self._reinstated(actor=actor)

    @event(Reinstated)
    def _reinstated(self, actor: str) -> None:
        self.active = True
        self.token_digest = None
        self.token_expires_at = None

    def set_password(self, *, password_hash: str, must_change: bool, actor: str) -> None:
        """Record a password's argon2 hash (never the password: anything else is refused)."""
        self._require_active()
        if not password_hash.startswith("$argon2"):
            raise InvalidValue("只记录密码的 argon2 散列", "only an argon2 hash of a password")
        self._password_set(password_hash=password_hash, must_change=must_change, actor=actor)

    @event(PasswordSet)
    def _password_set(self, password_hash: str, must_change: bool, actor: str) -> None:
        self.password_hash = password_hash
        self.must_change_password = must_change

    def change_role(self, *, role: str, institution: str | None, actor: str) -> None:
        self._require_active()
        check_role(role, institution)
        if (role, institution) == (self.role, self.institution):
            raise UserRefused(
                f"用户 {self.name} 的角色与机构没有变化",
                f"user {self.name} already has this role and institution",
            )
        self._role_changed(role=role, institution=institution, actor=actor)

    @event(RoleChanged)
    def _role_changed(self, role: str, institution: str | None, actor: str) -> None:
        self.role = role
        self.institution = institution

    def token_expired(self, now: datetime) -> bool:
        return self.token_expires_at is not None and now >= self.token_expires_at

    def holds(self, token: str) -> bool:
        """The token is this user's current one, whatever its state (constant time)."""
        current = self.token_digest or ""
        return hmac.compare_digest(current, token_digest(token)) and bool(current)

    def accepts(self, token: str, now: datetime) -> bool:
        """The token is this active user's current one and has not expired at `now`."""
        return self.active and self.holds(token) and not self.token_expired(now)

    def _require_active(self) -> None:
        if not self.active:
            raise UserRefused(f"用户 {self.name} 已停用", f"user {self.name} has been revoked")

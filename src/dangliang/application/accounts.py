"""Users: add, tokens, passwords, sign-in, disable/enable, roles, history (`dangliang users …`,
the API, the browser workbench).

Users are aggregates in the log (`domain.users.ApiUser`), read from it by id (ids come from
names). Who exists is listed from the registry's names (`reg_users`, kept with the reference
data), so the list needs no scan of a log of millions of records; each user's state is then
read from their own events. Passwords are hashed here with argon2id
(`argon2.PasswordHasher`); the log holds only the hash.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue, NotFound
from dangliang.domain.users import (
    ROLES,
    ApiUser,
    UserRefused,
    WeakPassword,
    WrongPassword,
    check_password,
    new_token,
    user_id_of_token,
)
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.tracking import notifications_in, topic_of

Institutions = dict[str, tuple[str, str | None]]  # code → (kind, parent code)

TOKEN_DAYS = 90
# A temporary password: no 0/O, 1/l/I, so it can be read out over the phone.
TEMPORARY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
TEMPORARY_LENGTH = 12


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their role and the institutions they may see."""

    name: str
    role: str
    institution: str | None
    scope: frozenset[str] | None  # None: every institution
    must_change_password: bool = False
    token_expires_at: datetime | None = None  # None: the token never expires

    def may_see(self, institution: str) -> bool:
        return self.scope is None or institution in self.scope


class Users:
    def __init__(
        self,
        log: EventLog,
        institutions: Callable[[], Institutions],
        hasher: PasswordHasher | None = None,
        *,
        user_ids: Callable[[], list[str]] | None = None,
    ):
        self.log = log
        self.institutions = institutions  # code → (kind, parent code), caught up
        self.user_ids = user_ids  # every user's aggregate id, caught up (None: scan the log)
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # ---- adding, tokens ---------------------------------------------------------------------

    def add(
        self,
        name: str,
        *,
        role: str,
        institution: str | None,
        actor: str,
        password: str | None = None,
        token_days: int | None = TOKEN_DAYS,
    ) -> str:
        """Record a new user; return their token (shown once, only its digest is kept). With a
        password, the user also signs in to the workbench and must change it at the first
        sign-in. `token_days=None`: the token never expires."""
        if self._find(name) is not None:
            raise UserRefused(
                f"已有用户 {name.strip()}（换发令牌用 users token）",
                f"user {name.strip()} exists (use `users token` for a new token)",
            )
        self._require_institution(institution)
        if password is not None:
            check_password(name, password)
        token = new_token(ids.api_user_id(name))
        user = ApiUser.add(
            name=name,
            role=role,
            institution=institution,
            token=token,
            actor=actor,
            token_expires_at=expiry(token_days),
        )
        if password is not None:
            user.set_password(
                password_hash=self.hasher.hash(password), must_change=True, actor=actor
            )
        self.log.save(user)
        return token

    def issue_token(self, name: str, *, actor: str, days: int | None = TOKEN_DAYS) -> str:
        """A new token for `name` (valid for `days`, or for ever with None); the old one stops
        working at once."""
        user = self._get(name)
        token = new_token(user.id)
        user.issue_token(token=token, actor=actor, token_expires_at=expiry(days))
        self.log.save(user)
        return token

    # ---- passwords ---------------------------------------------------------------------------

    def set_password(self, name: str, password: str, *, actor: str, must_change: bool) -> None:
        """Set a password (`must_change`: set by an admin, to be changed at the next sign-in)."""
        user = self._get(name)
        check_password(user.name, password)
        self._record_password(user, password, must_change=must_change, actor=actor)

    def reset_password(self, name: str, *, actor: str) -> str:
        """A generated temporary password, to be changed at the next sign-in; returned to be
        shown once."""
        user = self._get(name)
        temporary = temporary_password(user.name)
        self._record_password(user, temporary, must_change=True, actor=actor)
        return temporary

    def change_own_password(self, name: str, old: str, new: str) -> None:
        """The user changes their own password, proving the current one."""
        user = self._get(name)
        if not user.active:
            raise UserRefused(f"用户 {user.name} 已停用", f"user {user.name} has been revoked")
        if user.password_hash is None or not self._verify(user.password_hash, old):
            raise WrongPassword("原密码不正确", "the current password is wrong")
        if new == old:
            raise WeakPassword(
                "新密码不能与原密码相同", "the new password must differ from the old"
            )
        check_password(user.name, new)
        self._record_password(user, new, must_change=False, actor=user.name)

    def sign_in(self, name: str, password: str) -> Principal | None:
        """The principal of an active user whose password this is; None otherwise (unknown,
        wrong password, disabled, no password) — one answer for all, in about the same time."""
        user = self._find(name)
        if user is None or user.password_hash is None:
            self._verify(self._dummy(), password)
            return None
        if not self._verify(user.password_hash, password) or not user.active:
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            self._rehash(user, password)
        return self._principal(user)

    # ---- state and role ----------------------------------------------------------------------

    def disable(self, name: str, *, reason: str, actor: str) -> None:
        """Disable (停用) a user: their token and password stop working at once."""
        user = self._get(name)
        if actor == user.name:
            raise UserRefused(
                "不能停用自己（请另一位管理员操作）",
                "you may not disable yourself (ask another admin)",
            )
        user.revoke(reason=reason, actor=actor)
        self.log.save(user)

    def revoke(self, name: str, *, reason: str, actor: str) -> None:
        """`disable`, by the name the CLI has always used."""
        self.disable(name, reason=reason, actor=actor)

    def enable(self, name: str, *, actor: str) -> None:
        """Re-enable a disabled user: the password works again; the API needs a new token."""
        user = self._get(name)
        user.reinstate(actor=actor)
        self.log.save(user)

    def change_role(self, name: str, *, role: str, institution: str | None, actor: str) -> None:
        """A new role (and institution, for a clerk), in force from the next request."""
        user = self._get(name)
        if actor == user.name and user.role == "admin" and role != "admin":
            raise UserRefused(
                "管理员不能撤销自己的管理员角色（请另一位管理员操作）",
                "an admin may not demote themselves (ask another admin)",
            )
        self._require_institution(institution)
        user.change_role(role=role, institution=institution, actor=actor)
        self.log.save(user)

    # ---- who is calling ----------------------------------------------------------------------

    def authenticate(self, token: str, *, now: datetime | None = None) -> Principal | None:
        """The principal a token belongs to, or None (unknown, replaced, expired or revoked)."""
        user = self._holder(token)
        if user is None or not user.accepts(token, now or datetime.now(UTC)):
            return None
        return self._principal(user)

    def token_expired(self, token: str, *, now: datetime | None = None) -> bool:
        """The token is an active user's current one, but it has expired (so a refusal can say
        so instead of calling it invalid)."""
        user = self._holder(token)
        return (
            user is not None
            and user.active
            and user.holds(token)
            and user.token_expired(now or datetime.now(UTC))
        )

    def principal(self, name: str) -> Principal | None:
        """The active user's principal as the log stands now (role, scope); None when unknown
        or disabled. A session asks on every request, so changes take effect at once."""
        user = self._find(name)
        if user is None or not user.active:
            return None
        return self._principal(user)

    def scope_of(self, user: ApiUser) -> frozenset[str] | None:
        """A clerk sees their institution and its village clinics (乡村一体化管理)."""
        if user.institution is None:
            return None
        institutions = self.institutions()
        return frozenset(
            {user.institution}
            | {code for code, (_, parent) in institutions.items() if parent == user.institution}
        )

    # ---- listing -----------------------------------------------------------------------------

    def all_users(self) -> list[ApiUser]:
        """Every user ever added (disabled ones too), by name."""
        if self.user_ids is not None:
            wanted: list[Any] = [UUID(i) for i in self.user_ids()]
        else:  # no registry to ask: read every `Added` from the log
            found = notifications_in(self.log, 0, self.log.head(), (topic_of(ApiUser.Added),))
            wanted = [n.originator_id for n in found]
        users: list[ApiUser] = [self.log.repository.get(i) for i in wanted]
        return sorted(users, key=lambda u: u.name)

    def history(self, name: str) -> list[dict[str, Any]]:
        """Each of the user's events, oldest first: when, what (中文), who did it. Never a hash
        or a token digest."""
        user = self._get(name)
        events: list[Any] = list(self.log.repository.event_store.get(user.id))
        return [
            {"at": e.timestamp, "what": describe(e, user.name), "actor": e.actor} for e in events
        ]

    # ---- helpers -----------------------------------------------------------------------------

    def _principal(self, user: ApiUser) -> Principal:
        return Principal(
            user.name,
            user.role,
            user.institution,
            self.scope_of(user),
            must_change_password=user.must_change_password,
            token_expires_at=user.token_expires_at,
        )

    def _holder(self, token: str) -> ApiUser | None:
        user_id = user_id_of_token(token)
        if user_id is None:
            return None
        try:
            user: ApiUser = self.log.repository.get(user_id)
        except AggregateNotFoundError:
            return None
        return user

    def _record_password(
        self, user: ApiUser, password: str, *, must_change: bool, actor: str
    ) -> None:
        user.set_password(
            password_hash=self.hasher.hash(password), must_change=must_change, actor=actor
        )
        self.log.save(user)

    def _rehash(self, user: ApiUser, password: str) -> None:
        """Re-record a password hashed with weaker parameters than today's."""
        user.set_password(
            password_hash=self.hasher.hash(password),
            must_change=user.must_change_password,
            actor=user.name,
        )
        # Another sign-in (or an admin) may have recorded one at the same time: nothing lost.
        with contextlib.suppress(RecordConflictError):
            self.log.save(user)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        """A hash to verify against when there is none, so the answer takes as long."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def _require_institution(self, institution: str | None) -> None:
        if institution is not None and institution not in self.institutions():
            raise NotFound(f"未登记的机构：{institution}", f"unknown institution: {institution}")

    def _find(self, name: str) -> ApiUser | None:
        try:
            user: ApiUser = self.log.repository.get(ids.api_user_id(name))
        except AggregateNotFoundError:
            return None
        return user

    def _get(self, name: str) -> ApiUser:
        user = self._find(name)
        if user is None:
            raise NotFound(f"没有用户 {name}", f"no user {name}")
        return user


def expiry(days: int | None, now: datetime | None = None) -> datetime | None:
    """When a token issued `now` for `days` stops working (None: never)."""
    if days is None:
        return None
    if days < 1:
        raise InvalidValue(
            "令牌有效天数须为正整数（长期有效不设天数）",
            "token days must be a positive number (none: never expires)",
        )
    return (now or datetime.now(UTC)) + timedelta(days=days)


def temporary_password(name: str) -> str:
    """A readable random password that passes the rules."""
    while True:
        found = "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(TEMPORARY_LENGTH))
        try:
            check_password(name, found)
        except WeakPassword:
            continue
        return found


def describe(e: Any, name: str) -> str:
    """What an event of a user's means, in Chinese, for an admin's history page."""
    if isinstance(e, ApiUser.Added):
        where = f"，机构 {e.institution}" if e.institution else ""
        return f"添加用户，角色 {ROLES[e.role]}{where}；{_token_until(e.token_expires_at)}"
    if isinstance(e, ApiUser.TokenIssued):
        return f"签发新令牌（旧令牌作废）；{_token_until(e.token_expires_at)}"
    if isinstance(e, ApiUser.Revoked):
        return f"停用：{e.reason}"
    if isinstance(e, ApiUser.Reinstated):
        return "重新启用（需新令牌才能调用接口）"
    if isinstance(e, ApiUser.PasswordSet):
        if e.must_change:
            return "设置临时密码（下次登录须修改）"
        return "本人修改密码" if e.actor == name else "设置密码"
    if isinstance(e, ApiUser.RoleChanged):
        where = f"，机构 {e.institution}" if e.institution else ""
        return f"角色改为 {ROLES[e.role]}{where}"
    return type(e).__name__


def _token_until(at: datetime | None) -> str:
    return f"令牌有效期至 {at:%Y-%m-%d %H:%M} UTC" if at else "令牌长期有效"

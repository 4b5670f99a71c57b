"""API users: add, issue a token, revoke, list, authenticate (`dangliang users …`, the API).

Users are aggregates in the log (`domain.users.ApiUser`); there are few of them, so listing
reads their events from the log instead of keeping a read model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eventsourcing.application import AggregateNotFoundError

from dangliang.domain import ids
from dangliang.domain.errors import NotFound
from dangliang.domain.users import ApiUser, UserRefused, new_token, user_id_of_token
from dangliang.ledger.eventlog import EventLog
from dangliang.projections.tracking import notifications_in, topic_of

Institutions = dict[str, tuple[str, str | None]]  # code → (kind, parent code)


@dataclass(frozen=True)
class Principal:
    """Who is calling the API: the user, their role and the institutions they may see."""

    name: str
    role: str
    institution: str | None
    scope: frozenset[str] | None  # None: every institution

    def may_see(self, institution: str) -> bool:
        return self.scope is None or institution in self.scope


class Users:
    def __init__(self, log: EventLog, institutions: Callable[[], Institutions]):
        self.log = log
        self.institutions = institutions  # code → (kind, parent code), caught up

    def add(self, name: str, *, role: str, institution: str | None, actor: str) -> str:
        """Record a new user; return their token (shown once, only its digest is kept)."""
        if self._find(name) is not None:
            raise UserRefused(
                f"已有用户 {name.strip()}（换发令牌用 users token）",
                f"user {name.strip()} exists (use `users token` for a new token)",
            )
        if institution is not None and institution not in self.institutions():
            raise NotFound(f"未登记的机构：{institution}", f"unknown institution: {institution}")
        token = new_token(ids.api_user_id(name))
        self.log.save(
            ApiUser.add(name=name, role=role, institution=institution, token=token, actor=actor)
        )
        return token

    def issue_token(self, name: str, *, actor: str) -> str:
        user = self._get(name)
        token = new_token(user.id)
        user.issue_token(token=token, actor=actor)
        self.log.save(user)
        return token

    def revoke(self, name: str, *, reason: str, actor: str) -> None:
        user = self._get(name)
        user.revoke(reason=reason, actor=actor)
        self.log.save(user)

    def all_users(self) -> list[ApiUser]:
        topics = (topic_of(ApiUser.Added),)
        found = notifications_in(self.log, 0, self.log.head(), topics)
        users: list[ApiUser] = [self.log.repository.get(n.originator_id) for n in found]
        return sorted(users, key=lambda u: u.name)

    def authenticate(self, token: str) -> Principal | None:
        """The principal a token belongs to, or None (unknown, replaced or revoked)."""
        user_id = user_id_of_token(token)
        if user_id is None:
            return None
        try:
            user: ApiUser = self.log.repository.get(user_id)
        except AggregateNotFoundError:
            return None
        if not user.accepts(token):
            return None
        return Principal(user.name, user.role, user.institution, self.scope_of(user))

    def scope_of(self, user: ApiUser) -> frozenset[str] | None:
        """A clerk sees their institution and its village clinics (乡村一体化管理)."""
        if user.institution is None:
            return None
        institutions = self.institutions()
        return frozenset(
            {user.institution}
            | {code for code, (_, parent) in institutions.items() if parent == user.institution}
        )

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

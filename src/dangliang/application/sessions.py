"""Browser sessions (登录会话) of the web workbench.

A session is a random 256-bit token in an HttpOnly cookie; the database keeps only its
SHA-256, the user's name, a CSRF token for the session's forms and when it expires. It is
not an event: signing in and out is not a fact about the county's money, and a session
must be deletable (sign-out) without rewriting history. The user behind a session is looked
up on every request (`Users.principal`), so disabling a user or changing their role takes
effect at once, whatever sessions they hold.

The table lives beside the read models but is not one: a projection rebuild leaves it alone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, delete, insert, select

from dangliang.projections.tracking import create_missing

SESSION_HOURS = 8  # a working day; then the person signs in again

metadata = MetaData()
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_digest", String(64), primary_key=True),
    Column("user_name", String(200), nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Session:
    """A signed-in browser: whose it is, the token its forms must carry, until when."""

    user_name: str
    csrf_token: str
    expires_at: datetime

    def accepts_csrf(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token, token)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class WebSessions:
    def __init__(self, engine: Engine, write_engine: Engine, hours: int = SESSION_HOURS):
        self.engine = engine
        self.write_engine = write_engine
        self.lifetime = timedelta(hours=hours)

    @staticmethod
    def create(write_engine: Engine) -> None:
        create_missing(write_engine, metadata)

    def start(self, user_name: str) -> tuple[str, Session]:
        """A new session for a user who has just signed in: the cookie's token (shown once)
        and the session. Expired sessions are cleared on the way."""
        token = secrets.token_urlsafe(32)
        now = _now()
        session = Session(user_name, secrets.token_urlsafe(32), now + self.lifetime)
        with self.write_engine.begin() as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
            conn.execute(
                insert(web_sessions).values(
                    token_digest=_digest(token),
                    user_name=user_name,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return token, session

    def find(self, token: str | None) -> Session | None:
        """The live session a cookie's token names, or None (unknown, signed out, expired)."""
        if not token or len(token) > 200:
            return None
        t = web_sessions.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.user_name, t.csrf_token, t.expires_at).where(
                    t.token_digest == _digest(token)
                )
            ).first()
        if row is None:
            return None
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if expires <= _now():
            return None
        return Session(row.user_name, row.csrf_token, expires)

    def end(self, token: str | None) -> None:
        """Sign out: the token stops working at once."""
        if token:
            gone = web_sessions.c.token_digest == _digest(token)
            with self.write_engine.begin() as conn:
                conn.execute(delete(web_sessions).where(gone))

    def end_all(self, user_name: str) -> int:
        """Every session of a user (their password was reset or they were disabled)."""
        with self.write_engine.begin() as conn:
            done = conn.execute(delete(web_sessions).where(web_sessions.c.user_name == user_name))
        return done.rowcount or 0

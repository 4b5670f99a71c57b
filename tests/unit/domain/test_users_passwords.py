"""Users' passwords (hashes only), token expiry, disable/enable and role changes as events; old
events without the new fields still decode."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    UUIDAsHex,
)

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue
from dangliang.domain.users import (
    ApiUser,
    UserRefused,
    WeakPassword,
    check_password,
    new_token,
)

NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"


def make(
    role: str = "clerk", institution: str | None = "C01", expires: datetime | None = None
) -> tuple[ApiUser, str]:
    token = new_token(ids.api_user_id("李四"))
    user = ApiUser.add(
        name="李四",
        role=role,
        institution=institution,
        token=token,
        actor="admin",
        token_expires_at=expires,
    )
    return user, token


def test_a_new_user_has_no_password_and_a_token_that_never_expires_by_default() -> None:
    user, token = make()
    assert (user.password_hash, user.must_change_password, user.token_expires_at) == (
        None,
        False,
        None,
    )
    assert user.accepts(token, NOW + timedelta(days=36_500))


def test_a_token_stops_working_when_it_expires() -> None:
    user, token = make(expires=NOW + timedelta(days=90))
    assert user.accepts(token, NOW + timedelta(days=89, hours=23))
    assert not user.accepts(token, NOW + timedelta(days=90))
    assert user.token_expired(NOW + timedelta(days=90)) and user.holds(token)
    renewed = new_token(user.id)
    user.issue_token(token=renewed, actor="admin", token_expires_at=NOW + timedelta(days=200))
    assert user.accepts(renewed, NOW + timedelta(days=120)) and not user.holds(token)
    user.issue_token(token=token, actor="admin")  # no expiry: for ever
    assert user.accepts(token, NOW + timedelta(days=36_500))


def test_only_a_hash_is_recorded_with_who_set_it_and_whether_it_must_change() -> None:
    user, _ = make()
    user.set_password(password_hash=HASH, must_change=True, actor="admin")
    assert (user.password_hash, user.must_change_password) == (HASH, True)
    user.set_password(password_hash=HASH, must_change=False, actor="李四")
    assert user.must_change_password is False
    events = user.collect_events()
    assert [type(e).__name__ for e in events] == ["Added", "PasswordSet", "PasswordSet"]
    assert [e.actor for e in events[1:]] == ["admin", "李四"]  # type: ignore[attr-defined]
    with pytest.raises(InvalidValue, match="argon2"):
        user.set_password(password_hash="correct horse battery", must_change=False, actor="x")


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1!", "at least 8"),
        ("x" * 129, "at most 128"),
        ("李四", "at least 8"),
        ("Wangwu2025", "the user name"),
        ("12345678901", "digits only"),
        ("aaaaaaaaaa", "one character repeated"),
    ],
)
def test_password_rules(password: str, why: str) -> None:
    name = "wangwu2025" if why == "the user name" else "李四"
    with pytest.raises(WeakPassword, match=why) as refused:
        check_password(name, password)
    assert refused.value.message_zh  # Chinese first, English second
    assert isinstance(refused.value, InvalidValue)


def test_good_passwords_pass() -> None:
    for password in ("correct horse", "春风又绿江南岸2025", "Abcd1234", "12345678a"):
        check_password("李四", password)


def test_disable_then_enable_brings_back_the_password_but_not_the_token() -> None:
    user, token = make()
    user.set_password(password_hash=HASH, must_change=False, actor="admin")
    with pytest.raises(UserRefused, match="not disabled"):
        user.reinstate(actor="admin")
    user.revoke(reason="休假", actor="admin")
    assert not user.accepts(token, NOW)
    with pytest.raises(UserRefused, match="revoked"):
        user.set_password(password_hash=HASH, must_change=True, actor="admin")
    with pytest.raises(UserRefused, match="revoked"):
        user.change_role(role="auditor", institution=None, actor="admin")
    user.reinstate(actor="admin")
    assert user.active and user.password_hash == HASH
    assert not user.accepts(token, NOW) and not user.holds(token)
    fresh = new_token(user.id)
    user.issue_token(token=fresh, actor="admin")
    assert user.accepts(fresh, NOW)


def test_a_role_change_is_checked_like_adding() -> None:
    user, _ = make()
    with pytest.raises(InvalidValue, match="unknown role"):
        user.change_role(role="root", institution=None, actor="admin")
    with pytest.raises(InvalidValue, match="clerk needs --institution"):
        user.change_role(role="auditor", institution="C01", actor="admin")
    with pytest.raises(InvalidValue, match="clerk needs --institution"):
        user.change_role(role="clerk", institution=None, actor="admin")
    with pytest.raises(UserRefused, match="already has"):
        user.change_role(role="clerk", institution="C01", actor="admin")
    user.change_role(role="clerk", institution="C02", actor="admin")
    assert (user.role, user.institution) == ("clerk", "C02")
    user.change_role(role="auditor", institution=None, actor="admin")
    assert (user.role, user.institution) == ("auditor", None)


def mapper() -> Mapper:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DatetimeAsISO(), DecimalAsStr()):
        transcoder.register(transcoding)
    return Mapper(transcoder=transcoder)


def as_version_1(stored: StoredEvent) -> StoredEvent:
    """The event as the code before token expiry stored it: no field, no class version."""
    state = json.loads(stored.state)
    assert state.pop("class_version") == 2
    del state["token_expires_at"]
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )


def test_events_stored_before_token_expiry_decode_as_never_expiring() -> None:
    user, token = make(expires=NOW)
    user.issue_token(token=token, actor="admin", token_expires_at=NOW)
    m = mapper()
    stored = [as_version_1(m.to_stored_event(e)) for e in user.collect_events()]
    added, issued = (m.to_domain_event(s) for s in stored)
    assert isinstance(added, ApiUser.Added) and isinstance(issued, ApiUser.TokenIssued)
    assert added.token_expires_at is None and issued.token_expires_at is None
    old = added.mutate(None)
    issued.mutate(old)
    assert old is not None and old.token_expires_at is None
    assert old.accepts(token, NOW + timedelta(days=36_500))


def test_new_events_round_trip_their_expiry() -> None:
    user, _ = make(expires=NOW)
    m = mapper()
    (added,) = (m.to_domain_event(m.to_stored_event(e)) for e in user.collect_events())
    assert added.token_expires_at == NOW  # type: ignore[attr-defined]

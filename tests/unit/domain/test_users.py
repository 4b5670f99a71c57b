"""API users as an aggregate: roles, tokens kept as digests, replacement and revocation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue
from dangliang.domain.users import ApiUser, UserRefused, new_token, token_digest, user_id_of_token

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def make(role: str = "admin", institution: str | None = None) -> tuple[ApiUser, str]:
    token = new_token(ids.api_user_id("张三"))
    return ApiUser.add(
        name="张三", role=role, institution=institution, token=token, actor="t"
    ), token


def test_a_token_names_its_user_and_only_its_digest_is_kept() -> None:
    user, token = make()
    assert user_id_of_token(token) == user.id == ids.api_user_id(" 张三 ")
    assert user.token_digest == token_digest(token) and token not in repr(user.__dict__)
    assert user.accepts(token, NOW)
    assert not user.accepts(token + "x", NOW) and not user.accepts("", NOW)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "dl_",
        "dl_123_abc",
        "xx_" + "0" * 32 + "_s",
        "dl_" + "g" * 32 + "_s",
        "dl_" + "0" * 32 + "_",
    ],
)
def test_anything_not_shaped_like_a_token_names_nobody(text: str) -> None:
    assert user_id_of_token(text) is None


def test_roles_and_institutions() -> None:
    with pytest.raises(InvalidValue, match="unknown role"):
        make(role="superuser")
    with pytest.raises(InvalidValue, match="clerk needs --institution"):
        make(role="clerk")
    with pytest.raises(InvalidValue, match="clerk needs --institution"):
        make(role="auditor", institution="C01")
    clerk, _ = make(role="clerk", institution="C01")
    assert (clerk.role, clerk.institution) == ("clerk", "C01")


def test_a_new_token_replaces_the_old_and_revocation_is_final() -> None:
    user, old = make()
    new = new_token(user.id)
    user.issue_token(token=new, actor="t")
    assert user.accepts(new, NOW) and not user.accepts(old, NOW)
    with pytest.raises(InvalidValue, match="reason"):
        user.revoke(reason=" ", actor="t")
    user.revoke(reason="离职", actor="t")
    assert not user.accepts(new, NOW)
    with pytest.raises(UserRefused, match="revoked"):
        user.issue_token(token=new_token(user.id), actor="t")

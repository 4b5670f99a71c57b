"""Answers kept per log position (`api.response_cache`), on SQLite and PostgreSQL.

A kept answer is served only while the log's head is where it was made, only to the same
token, only until that token expires; writes, other callers and other routes are unaffected.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from dangliang.api import create_app
from tests.api.conftest import World

CACHE = "x-dangliang-cache"


def test_a_second_read_at_the_same_position_is_the_kept_answer(world: World) -> None:
    first = world.get("/equivalents", "admin", period="2024")
    second = world.get("/equivalents", "admin", period="2024")
    assert first.status_code == second.status_code == 200
    assert (first.headers[CACHE], second.headers[CACHE]) in {("miss", "hit"), ("hit", "hit")}
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    other = world.get("/equivalents", "admin", period="2024-03")  # another query: its own
    assert other.headers[CACHE] == "miss" and other.content != first.content


def test_each_token_gets_its_own_answer_and_a_clerk_only_their_scope(world: World) -> None:
    admin = world.get("/equivalents", "admin", period="2024").json()
    world.get("/equivalents", "clerk", period="2024")
    clerk = world.get("/equivalents", "clerk", period="2024")
    assert clerk.headers[CACHE] == "hit"
    codes = {r["code"] for r in clerk.json()["institutions"]}
    assert codes < {r["code"] for r in admin["institutions"]}
    assert world.get("/equivalents", "admin", period="2024").json() == admin


def test_a_write_moves_the_head_and_the_next_read_is_computed_again(world: World) -> None:
    world.get("/compensation", "auditor", period="2024")
    assert world.get("/compensation", "auditor", period="2024").headers[CACHE] == "hit"
    world.service.users.add("新来的审计员", role="auditor", institution=None, actor="t")
    again = world.get("/compensation", "auditor", period="2024")
    assert again.status_code == 200 and again.headers[CACHE] == "miss"
    assert world.get("/compensation", "auditor", period="2024").headers[CACHE] == "hit"


def test_an_expired_token_is_refused_even_when_its_answer_was_kept(world: World) -> None:
    token = world.service.users.add(
        "一日审计员", role="auditor", institution=None, actor="t", token_days=1
    )
    client = TestClient(create_app(world.service))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/equivalents?period=2024", headers=headers).status_code == 200
    kept = client.get("/api/v1/equivalents?period=2024", headers=headers)
    assert kept.headers[CACHE] == "hit"
    with freeze_time(datetime.now(UTC) + timedelta(days=2)):
        late = client.get("/api/v1/equivalents?period=2024", headers=headers)
    assert late.status_code == 401 and "expired" in late.text


def test_refusals_and_unlisted_routes_are_never_kept(world: World) -> None:
    for _ in range(2):
        bad = world.client.get(
            "/api/v1/equivalents?period=2024", headers={"Authorization": "Bearer nonsense"}
        )
        assert bad.status_code == 401 and bad.headers.get(CACHE) == "miss"
        forbidden = world.get("/payout-runs/diff", "clerk", a="2024-03#1", b="2024-03#2")
        assert forbidden.status_code == 403 and forbidden.headers.get(CACHE) == "miss"
        me = world.get("/me", "admin")  # not a listed route: passes through untouched
        assert me.status_code == 200 and CACHE not in me.headers


def test_concurrent_first_requests_compute_the_answer_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import httpx

    service, calls = world.service, []
    original = service.equivalents

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "equivalents", counted)
    service.users.add("并发审计员", role="auditor", institution=None, actor="t")  # a new head
    app = create_app(service)

    async def ten() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await asyncio.gather(
                *(
                    client.get("/api/v1/equivalents?period=2024", headers=world.auth("auditor"))
                    for _ in range(10)
                )
            )

    answers = asyncio.run(ten())
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert len(calls) == 1  # one computed, nine waited for it
    assert sorted(a.headers[CACHE] for a in answers) == ["hit"] * 9 + ["miss"]

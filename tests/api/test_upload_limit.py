"""The upload limit (`api.upload_limit`, `DANGLIANG_MAX_UPLOAD_MB`), on SQLite and PostgreSQL:
a body over it is refused with 413 as it arrives — declared by its Content-Length, sent
chunked, or longer than its Content-Length said — by the API (problem JSON) and by the
workbench (a page); nothing is imported, no job is started, no temporary file is left; a body
of exactly the limit is imported."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dangliang.api import PREFIX
from dangliang.api.upload_limit import DEFAULT_MAX_UPLOAD_MB, ENV_MAX_UPLOAD, max_upload_bytes
from dangliang.settings import SettingsError
from dangliang.web import create_site
from tests.api.conftest import PASSWORD, PEOPLE, World
from tests.web.conftest import csrf_of, sign_in

LIMIT = 2 * 1024 * 1024  # over the form parser's 1 MB in memory: a refused upload spools to disk
BOUNDARY = "dangliang-test-boundary"


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder everything of an upload goes to (spooled parts, kept uploads)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(scope="module")
def limited(world: World) -> Iterator[tuple[TestClient, TestClient]]:
    """(API client, workbench client signed in as the administrator) of an app whose limit is
    2 MB."""
    old = os.environ.get(ENV_MAX_UPLOAD)
    os.environ[ENV_MAX_UPLOAD] = "2"
    try:
        app = create_site(world.service)
    finally:
        if old is None:
            del os.environ[ENV_MAX_UPLOAD]
        else:
            os.environ[ENV_MAX_UPLOAD] = old
    assert app.state.max_upload_bytes == LIMIT
    api = TestClient(app)
    api.headers["Authorization"] = f"Bearer {world.tokens['admin']}"
    web = TestClient(app, follow_redirects=False)
    sign_in(web, PEOPLE["admin"], PASSWORD)
    return api, web


def multipart(content: bytes, fields: dict[str, str] | None = None) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in (fields or {}).items()
    ]
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="services.csv"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    return b"".join([*parts, head, content, f"\r\n--{BOUNDARY}--\r\n".encode()])


def sized(world: World, size: int, fields: dict[str, str] | None = None) -> bytes:
    """A multipart body of exactly `size` bytes: 200 of the county's service rows, padded in a
    column the importer ignores."""
    lines = world.county.files["services"].read_text("utf-8").splitlines()
    header, rows = lines[0] + ",note", lines[1:201]
    bare = multipart(("\n".join([header, *(r + "," for r in rows)]) + "\n").encode(), fields)
    pad = size - len(bare)
    assert pad > 0
    each, extra = divmod(pad, len(rows))
    padded = [
        r + "," + "x" * (each + (extra if n == len(rows) - 1 else 0)) for n, r in enumerate(rows)
    ]
    body = multipart(("\n".join([header, *padded]) + "\n").encode(), fields)
    assert len(body) == size
    return body


def chunks(body: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def leftovers(spool: Path) -> list[str]:
    """Files in the spool folder, and files this process still holds open in it."""
    named = [str(p) for p in spool.rglob("*")]
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(spool)):
            held.append(target)
    return named + held


KIND = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def test_the_limit_is_read_from_the_environment() -> None:
    assert max_upload_bytes({}) == DEFAULT_MAX_UPLOAD_MB * 1024 * 1024 == 512 * 1024 * 1024
    assert max_upload_bytes({ENV_MAX_UPLOAD: "0.5"}) == 512 * 1024
    assert max_upload_bytes({ENV_MAX_UPLOAD: " 2 "}) == LIMIT
    for bad in ("0", "-1", "lots", "nan", "inf"):
        with pytest.raises(SettingsError, match=ENV_MAX_UPLOAD):
            max_upload_bytes({ENV_MAX_UPLOAD: bad})


def test_an_api_upload_over_the_limit_is_refused_as_it_arrives(
    world: World, limited: tuple[TestClient, TestClient], spool: Path
) -> None:
    api, _ = limited
    head = world.service.log.head()
    over = sized(world, LIMIT + 1)
    sent = {
        "content-length": api.post(f"{PREFIX}/imports/services", headers=KIND, content=over),
        "chunked": api.post(f"{PREFIX}/imports/services", headers=KIND, content=chunks(over)),
        "a length that lies": api.post(
            f"{PREFIX}/imports/services",
            headers={**KIND, "Content-Length": "1000"},
            content=chunks(over),
        ),
        "declared only": api.post(  # refused on the Content-Length alone, nothing read
            f"{PREFIX}/imports/services",
            headers={**KIND, "Content-Length": str(10 * LIMIT)},
            content=chunks(over[:1000]),
        ),
        "fund": api.post(f"{PREFIX}/insurance/imports/claims", headers=KIND, content=chunks(over)),
    }
    for how, response in sent.items():
        assert response.status_code == 413, (how, response.text[:300])
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["connection"] == "close"  # the rest is not read
        body = response.json()
        assert body["title"] == "文件过大 / file too large"
        assert "超过上限 2 MB" in body["message_zh"]
        assert "over the limit of 2 MB; nothing was imported" in body["message_en"]
    assert world.service.log.head() == head
    assert leftovers(spool) == []


def test_an_upload_of_exactly_the_limit_is_imported(
    world: World, limited: tuple[TestClient, TestClient], spool: Path
) -> None:
    api, _ = limited
    body = sized(world, LIMIT)
    chunked = api.post(f"{PREFIX}/imports/services", headers=KIND, content=chunks(body))
    assert chunked.status_code == 200, chunked.text[:500]
    assert chunked.json()["rows"] == 200
    whole = api.post(f"{PREFIX}/imports/services", headers=KIND, content=body)
    assert whole.status_code == 200 and whole.json()["unchanged"] == 200  # imported once
    assert leftovers(spool) == []


def test_a_workbench_upload_over_the_limit_is_a_413_page_and_starts_no_job(
    world: World, limited: tuple[TestClient, TestClient], spool: Path
) -> None:
    _, web = limited
    fields = {"csrf_token": csrf_of(web), "kind": "services"}
    jobs = world.service.import_jobs
    admin = world.service.users.authenticate(world.tokens["admin"])
    assert admin is not None
    before = [j["id"] for j in jobs.recent(admin)]
    over = sized(world, LIMIT + 1, fields)
    page = {"Accept": "text/html", **KIND}
    for content in (over, chunks(over)):
        refused = web.post("/imports", headers=page, content=content)
        assert refused.status_code == 413
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["connection"] == "close"
        assert "文件过大" in refused.text and "超过上限 2 MB" in refused.text
    assert [j["id"] for j in jobs.recent(admin)] == before
    assert leftovers(spool) == []

    under = web.post("/imports", headers=page, content=sized(world, LIMIT, fields))
    assert under.status_code == 303, under.text[:500]
    job = under.headers["location"].rsplit("/", 1)[1]
    assert jobs.wait(job, 120)["state"] == "done"
    assert leftovers(spool) == []  # the job deleted its copy


def test_the_upload_form_states_the_limit(limited: tuple[TestClient, TestClient]) -> None:
    _, web = limited
    form = web.get("/imports", headers={"Accept": "text/html"})
    assert form.status_code == 200
    assert f'data-max-bytes="{LIMIT}"' in form.text
    assert "单个文件最大 2 MB" in form.text


def test_the_openapi_document_names_the_413(limited: tuple[TestClient, TestClient]) -> None:
    api, _ = limited
    paths = api.get(f"{PREFIX}/openapi.json").json()["paths"]
    for path in (f"{PREFIX}/imports/{{kind}}", f"{PREFIX}/insurance/imports/{{kind}}"):
        assert "application/problem+json" in paths[path]["post"]["responses"]["413"]["content"]


def test_any_other_body_over_1_mb_is_refused_before_it_is_read_into_memory(
    world: World, limited: tuple[TestClient, TestClient]
) -> None:
    api, web = limited
    head = world.service.log.head()
    big_json = b'{"period": "' + b"x" * (1024 * 1024) + b'"}'
    as_json = api.post(
        f"{PREFIX}/payout-runs",
        headers={"Content-Type": "application/json"},
        content=chunks(big_json),
    )
    disguised = api.post(f"{PREFIX}/payout-runs", headers=KIND, content=sized(world, LIMIT))
    for response in (as_json, disguised):  # a multipart body only counts as an upload there
        assert response.status_code == 413, response.text[:300]
        assert "超过上限 1 MB" in response.json()["message_zh"]
        assert "request body is too large" in response.json()["message_en"]
    form = web.post(
        "/login",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
        content=b"username=" + b"x" * (1024 * 1024 + 1),
    )
    assert form.status_code == 413 and "请求内容过大" in form.text
    assert world.service.log.head() == head
    small = api.post(f"{PREFIX}/payout-runs", json={"period": "2024-07"})
    assert small.status_code == 201, small.text  # a body under 1 MB is read as before

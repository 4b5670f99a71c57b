"""A prepared county behind the workbench, with one person of each role signed in.

The county is the API tests' (`tests/api/conftest.py`: reference data, a year of service
records, inputs, the Zhuji bundle, performance-pay inputs and the insurance fund), built once
per backend for the whole session; each person gets a password and a `TestClient` of their
own (its cookie jar holds their session). Tests that write use periods of their own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.settings import Settings
from dangliang.web import create_site
from tests.api.conftest import prepare
from tests.conftest import PG_BASE_URL, drop_schema, require_postgres

PASSWORD = "correct-horse-42"
PEOPLE = {  # who → user name (tests/api/conftest.py `prepare` adds them)
    "admin": "局管理员",
    "auditor": "财政审计",
    "clerk": "C01填报员",
    "clerk2": "C02填报员",
}


@dataclass
class Site:
    service: Dangliang
    county: GeneratedCounty
    backend: str
    clients: dict[str, TestClient] = field(default_factory=dict)

    def client(self, who: str) -> TestClient:
        """A browser-like client signed in as `who` (admin, auditor, clerk, clerk2)."""
        if who not in self.clients:
            client = TestClient(create_site(self.service), follow_redirects=False)
            sign_in(client, PEOPLE[who], PASSWORD)
            self.clients[who] = client
        return self.clients[who]

    def anonymous(self) -> TestClient:
        return TestClient(create_site(self.service), follow_redirects=False)

    def get(self, who: str, path: str, **params: object):  # type: ignore[no-untyped-def]
        return self.client(who).get(path, params=params, headers={"Accept": "text/html"})

    def post(self, who: str, path: str, data: dict[str, object] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        """A form POST carrying the person's CSRF token."""
        client = self.client(who)
        fields = {"csrf_token": csrf_of(client), **(data or {})}
        return client.post(path, data=fields, **kwargs)


def csrf_of(client: TestClient) -> str:
    """The session's CSRF token, as a page carries it in its `<meta name="csrf-token">`."""
    page = client.get("/account/password", headers={"Accept": "text/html"})
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str):  # type: ignore[no-untyped-def]
    form = client.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', form.text)
    assert token, form.text[:500]
    return client.post(
        "/login",
        data={"username": name, "password": password, "login_csrf": token.group(1), "next": "/"},
    )


@pytest.fixture(scope="session")
def make_site(
    tmp_path_factory: pytest.TempPathFactory, county: GeneratedCounty
) -> Iterator[Callable[[str], Site]]:
    made: dict[str, Site] = {}
    schemas: list[str] = []

    def make(backend: str) -> Site:
        if backend in made:
            return made[backend]
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'web.db'}"
        else:
            require_postgres()
            url = f"{PG_BASE_URL}?schema=web_{uuid.uuid4().hex[:12]}"
            schemas.append(url)
        service = bootstrap(Settings(url))
        prepare(service, county)
        for name in PEOPLE.values():
            service.users.set_password(name, PASSWORD, actor="tester", must_change=False)
        made[backend] = Site(service, county, backend)
        return made[backend]

    yield make
    for site in made.values():
        site.service.close()
    for url in schemas:
        drop_schema(url)


@pytest.fixture(
    scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def site(request: pytest.FixtureRequest, make_site: Callable[[str], Site]) -> Site:
    """The prepared county behind the workbench, per backend, shared by the session."""
    return make_site(request.param)


@pytest.fixture
def sqlite_site(make_site: Callable[[str], Site]) -> Site:
    """The same on SQLite only, for tests of the pages' own behaviour."""
    return make_site("sqlite")

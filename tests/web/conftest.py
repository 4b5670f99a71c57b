"""A prepared county behind the workbench, with one person of each role signed in.

The county is a copy of the API tests' (`tests/api/conftest.py` `world_copy`: reference data,
a year of service records, inputs, the Zhuji bundle, performance-pay inputs, the insurance
fund, and a password for each person), one per backend for the whole session; each person
gets a `TestClient` of their own (its cookie jar holds their session). Tests that write use
periods of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.settings import Settings
from dangliang.web import create_site
from tests.api.conftest import PASSWORD, PEOPLE, world_copy
from tests.conftest import PreparedDatabases


@dataclass
class Site:
    service: Dangliang
    county: GeneratedCounty
    backend: str
    clients: dict[str, TestClient] = field(default_factory=dict)
    # A client entered once keeps one event loop for all its requests (not one each)
    opened: ExitStack = field(default_factory=ExitStack)

    def client(self, who: str) -> TestClient:
        """A browser-like client signed in as `who` (admin, auditor, clerk, clerk2)."""
        if who not in self.clients:
            client = self.opened.enter_context(
                TestClient(create_site(self.service), follow_redirects=False)
            )
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
    prepared_databases: PreparedDatabases, county: GeneratedCounty
) -> Iterator[Callable[[str], Site]]:
    made: dict[str, Site] = {}

    def make(backend: str) -> Site:
        if backend not in made:
            url, _ = world_copy(prepared_databases, backend, county)
            made[backend] = Site(bootstrap(Settings(url)), county, backend)
        return made[backend]

    yield make
    for site in made.values():
        site.opened.close()
        site.service.close()


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

"""A prepared county behind the HTTP API, with one user of each role.

Preparing a county costs a few seconds per backend, so a test module shares one (`world`);
tests that write use periods of their own, so the order they run in does not matter. The
schema fuzzing gets a database of its own (`make_world`), since it writes at random.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dangliang.api import create_app
from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.settings import Settings
from tests.conftest import PG_BASE_URL, drop_schema, load_reference, require_postgres

API = "/api/v1"


@dataclass
class World:
    service: Dangliang
    client: TestClient
    county: GeneratedCounty
    tokens: dict[str, str]  # admin, auditor, clerk (C01), clerk2 (C02)
    runs_recorded: bool = False  # the fuzzing's runs (tests/api/test_schema_fuzz.py)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str, **params: object) -> object:
        return self.client.get(API + path, params=params, headers=self.auth(who))

    def post(self, path: str, who: str, json: object = None, **kwargs: object) -> object:
        return self.client.post(API + path, json=json, headers=self.auth(who), **kwargs)


def prepare(service: Dangliang, county: GeneratedCounty) -> dict[str, str]:
    """Reference data, inputs, the service records, the Zhuji bundle, performance-pay inputs
    and four users; returns their tokens."""
    load_reference(service, county)
    for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
        service.load_inputs(kind, county.files[kind.replace("-", "_")], actor="tester")
    service.import_services(county.files["services"], actor="tester", today=date(2025, 6, 1))
    service.adopt_policy("zhuji", reference="测试 test", actor="tester")
    for kind in ("pools", "staff-coefficients", "outside-items"):
        service.load_inputs(kind, county.files[kind.replace("-", "_")], actor="tester")
    users = service.users
    return {
        "admin": users.add("局管理员", role="admin", institution=None, actor="tester"),
        "auditor": users.add("财政审计", role="auditor", institution=None, actor="tester"),
        "clerk": users.add("C01填报员", role="clerk", institution="C01", actor="tester"),
        "clerk2": users.add("C02填报员", role="clerk", institution="C02", actor="tester"),
    }


@pytest.fixture(scope="module")
def make_world(
    tmp_path_factory: pytest.TempPathFactory, county: GeneratedCounty
) -> Iterator[Callable[[str], World]]:
    """`make_world("sqlite" | "postgres")`: a prepared county (closed at the module's end)."""
    opened: list[tuple[Dangliang, str | None]] = []
    made: dict[str, World] = {}  # pytest may ask again when the order of the tests switches

    def make(backend: str) -> World:
        if backend in made:
            return made[backend]
        if backend == "sqlite":
            url, schema_url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'api.db'}", None
        else:
            require_postgres()
            url = schema_url = f"{PG_BASE_URL}?schema=api_{uuid.uuid4().hex[:12]}"
        service = bootstrap(Settings(url))
        opened.append((service, schema_url))
        tokens = prepare(service, county)
        made[backend] = World(service, TestClient(create_app(service)), county, tokens)
        return made[backend]

    yield make
    for service, schema_url in opened:
        service.close()
        if schema_url:
            drop_schema(schema_url)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(request: pytest.FixtureRequest, make_world: Callable[[str], World]) -> World:
    """One prepared county per backend, shared by a test module."""
    return make_world(request.param)


def upload(world: World, kind: str, path: Path, who: str = "admin", name: str | None = None):
    """POST a file to `/imports/KIND` as `who`."""
    return world.post(
        f"/imports/{kind}", who, files={"file": (name or path.name, path.read_bytes())}
    )

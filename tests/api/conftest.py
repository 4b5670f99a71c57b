"""A prepared county behind the HTTP API, with one user of each role.

Preparing the county costs a few seconds, so it is prepared once per backend and test run
(`world_copy`, through tests/conftest.py's `PreparedDatabases`) and each test module gets a
copy of it (`world`); tests that write use periods of their own, so the order they run in does
not matter. The schema fuzzing gets a copy of its own (`make_world`), since it writes at
random. The workbench's tests (tests/web, tests/browser) use copies of the same database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dangliang.api import create_app
from dangliang.application import Dangliang, bootstrap
from dangliang.demo.generator import GeneratedCounty
from dangliang.settings import Settings
from tests.conftest import PreparedDatabases, reference

API = "/api/v1"
PEOPLE = {"admin": "局管理员", "auditor": "财政审计", "clerk": "C01填报员", "clerk2": "C02填报员"}
ROLE_OF = {"admin": "admin", "auditor": "auditor", "clerk": "clerk", "clerk2": "clerk"}
INSTITUTION_OF = {"clerk": "C01", "clerk2": "C02"}


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
    """On the county's reference data: inputs, the service records, the Zhuji bundle,
    performance-pay inputs, the insurance fund and four users; returns their tokens."""
    for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
        service.load_inputs(kind, county.files[kind.replace("-", "_")], actor="tester")
    service.import_services(county.files["services"], actor="tester", today=date(2025, 6, 1))
    service.adopt_policy("zhuji", reference="测试 test", actor="tester")
    for kind in ("pools", "staff-coefficients", "outside-items"):
        service.load_inputs(kind, county.files[kind.replace("-", "_")], actor="tester")
    prepare_fund(service)
    users = service.users
    return {
        who: users.add(name, role=ROLE_OF[who], institution=INSTITUTION_OF.get(who), actor="tester")
        for who, name in PEOPLE.items()
    }


FUND_FILES = {
    "communities": (
        "community_code,name,lead_hospital_code,lead_hospital_name,members\n"
        "YGT01,县人民医院医共体,H001,县人民医院,C01;C02;C03\n"
        "YGT02,县中医院医共体,H002,县中医院,C04;C05\n"
    ),
    "fund_years": (
        "year,revenue,prior_spending,reference\n2024,900000.00,600000.00,医保〔2024〕1号\n"
    ),
    "community_scores": (
        "community_code,year,score,reference\nYGT01,2024,88,考核〔2025〕1号\n"
        "YGT02,2024,61.5,考核〔2025〕1号\n"
    ),
    "enrolment_counts": "community_code,month,insurance_type,age_band,count\n"
    + "".join(
        f"{c},2024-{m:02d},{t},{b},{n}\n"
        for c, base in (("YGT01", 120), ("YGT02", 80))
        for m in range(1, 13)
        for t, b, n in (
            ("employee", "to_60", base),
            ("employee", "over_60", base // 4),
            ("resident", "to_60", base // 2),
            ("resident", "over_60", base // 3 + m // 6),
        )
    ),
    "claims": "claim_id,insured_ref,community_code,institution_code,out_of_area,settled_on,"
    "fund_amount\n"
    + "".join(
        f"K{n:04d},P{n % 97:03d},{'YGT01' if n % 3 else 'YGT02'},"
        f"{'X9' if n % 11 == 0 else 'C01'},{'是' if n % 11 == 0 else '否'},"
        f"2024-{n % 12 + 1:02d}-15,{1500 + (n * 37) % 900}.{n % 100:02d}\n"
        for n in range(600)
    ),
}


def prepare_fund(service: Dangliang) -> None:
    """The county's medical-insurance fund: two communities, a year of monthly enrolment
    counts and 600 claims, the fund's year and scores, the De Qing bundle."""
    with tempfile.TemporaryDirectory(prefix="dangliang-fund-") as folder:
        for kind, text in FUND_FILES.items():
            path = Path(folder) / f"{kind}.csv"
            path.write_text(text, encoding="utf-8")
            service.import_insurance(kind, path, actor="tester", today=date(2025, 6, 1))
    service.adopt_policy(
        "deqing_insurance", reference="测试 test", actor="tester", scheme="insurance"
    )


PASSWORD = "correct-horse-42"  # every person's workbench password (tests/web, tests/browser)


def world_copy(
    prepared_databases: PreparedDatabases, backend: str, county: GeneratedCounty
) -> tuple[str, dict[str, str]]:
    """A URL to a new copy of the prepared world (built once per run on a copy of the
    county's reference data, then copied: a file copy on SQLite, a template database on
    PostgreSQL) and the people's tokens (a copy holds the same users, so the template's
    tokens work on every copy)."""

    def build(service: Dangliang) -> dict[str, str]:
        tokens = prepare(service, county)
        for name in PEOPLE.values():
            service.users.set_password(name, PASSWORD, actor="tester", must_change=False)
        return tokens

    url = prepared_databases.copy(backend, "api-world", build, True, reference(county))
    return url, prepared_databases.result(backend, "api-world")


@pytest.fixture(scope="module")
def make_world(
    prepared_databases: PreparedDatabases, county: GeneratedCounty
) -> Iterator[Callable[[str], World]]:
    """`make_world("sqlite" | "postgres")`: a copy of the prepared county (closed and
    dropped at the module's end)."""
    opened: list[tuple[Dangliang, str]] = []
    made: dict[str, World] = {}  # pytest may ask again when the order of the tests switches
    clients = ExitStack()  # a client entered once keeps one event loop for all its requests

    def make(backend: str) -> World:
        if backend in made:
            return made[backend]
        url, tokens = world_copy(prepared_databases, backend, county)
        service = bootstrap(Settings(url))
        opened.append((service, url))
        client = clients.enter_context(TestClient(create_app(service)))
        made[backend] = World(service, client, county, tokens)
        return made[backend]

    yield make
    clients.close()
    for service, url in opened:
        service.close()
        prepared_databases.drop(url)


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

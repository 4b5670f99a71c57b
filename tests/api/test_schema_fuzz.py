"""Property-based fuzzing of the OpenAPI schema (schemathesis over Hypothesis).

Every operation of `/api/v1/openapi.json` gets the schema's examples, its coverage cases
(boundaries, missing and wrong-typed parameters, other methods) and random valid and invalid
requests, on each backend against a database of its own (the fuzzing writes at random: runs,
approvals, parameter changes, imports). No response may be a 5xx, and each must have a status
the schema documents for the operation, a content type it documents and a body matching the
documented schema. As admin, so that the handlers run; again, with fewer examples and no
coverage phase, as a clerk (reads narrowed to an institution) and without a token.

What runs where (the coverage phase is most of the requests, and it tests the validation in
front of the database): by default the deep fuzzing as admin runs on SQLite, and PostgreSQL
gets the admin's examples and a few random requests per operation, without the coverage
phase (what differs between the backends is behind the validation: the queries, the types
the server accepts); the clerk and the anonymous caller run on SQLite.
`--hypothesis-profile=thorough` (tests/conftest.py) runs every role on both backends, the
coverage phase on both, with ten times the examples.

The seed is fixed and Hypothesis's example database off, so a run in CI repeats a run here
(the same requests, as long as the code and the schema are the same). A failure prints the
request as a curl command and a `@reproduce_failure` blob.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dangliang.api import create_app
from tests.api.conftest import API, World
from tests.conftest import examples, thorough

pytestmark = pytest.mark.slow  # every operation, three roles, two backends

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SEED = 20240301

# Known values mixed into the random ones, so that requests also get past the lookups to the
# work: this county's institutions and staff (seed 11), periods with data, runs, parameters.
DICTIONARIES = {
    "institutions": ["C01", "C01V01", "C02", "C02V03", "C03", "S00001"],
    "codes": ["C01", "C01V02", "C02", "S00001", "S00002", "S00150"],
    "staff": ["S00001", "S00002", "S00150", "C01"],
    "periods": ["2024", "2024-03", "2024-01", "2024-12", "2025", "2023-06"],
    "runs": ["2024-03#1", "perf-2024#1", "perf-2024#2", "2024#1"],
    "parameters": [
        "unit_price.basic_medical",
        "unit_price.basic_public_health",
        "advance.ratio",
        "assessment.pass_score",
        "public_health_full_purchase",
        "performance_pay.village_doctor_floor",
    ],
    "values": ["13.00", "0.90", "0", "true", "60", "32000.00", "-1"],
    "days": ["2024-01-01", "2024-03-15", "2024-07-01", "2025-01-01"],
}
BINDINGS = {  # parameter → (dictionary, how often a value is taken from it)
    "path.code": ("codes", 0.75),
    "path.institution": ("institutions", 0.75),
    "query.institution": ("institutions", 0.5),
    "body.institution": ("institutions", 0.5),
    "path.staff_id": ("staff", 0.75),
    "query.period": ("periods", 0.75),
    "body.period": ("periods", 0.75),
    "path.run_id": ("runs", 0.75),
    "query.a": ("runs", 0.75),
    "query.b": ("runs", 0.75),
    "body.path": ("parameters", 0.75),
    "body.changes[*].path": ("parameters", 0.75),
    "body.value": ("values", 0.75),
    "body.changes[*].value": ("values", 0.75),
    "body.effective_from": ("days", 0.5),
    "body.changes[*].effective_from": ("days", 0.5),
}


def config(*, coverage: bool) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"mode": "all", "database": "none"},
            "phases": {"coverage": {"enabled": coverage}, "stateful": {"enabled": False}},
            "dictionaries": {name: {"values": values} for name, values in DICTIONARIES.items()},
            "parameters": {
                key: {"dictionary": name, "probability": p} for key, (name, p) in BINDINGS.items()
            },
        }
    )


def fuzz_settings(max_examples: int) -> settings:
    """Random cases per operation (and generation mode); some requests take a second."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
        print_blob=True,
    )


POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
BOTH = ["sqlite", POSTGRES]
# The deep fuzzing's backends: SQLite, and PostgreSQL too in the thorough profile.
DEEP = BOTH if thorough() else ["sqlite"]


def runs_recorded(world: World) -> World:
    """The world with a paid payout run (`2024-03#1`, the schema's example) and a draft
    distribution run (`perf-2024#1`), so that the run documents exist."""
    if world.runs_recorded:
        return world
    admin, auditor = world.auth("admin"), world.auth("auditor")
    for path, body, headers in (
        ("/payout-runs", {"period": "2024-03"}, admin),
        ("/payout-runs/2024-03%231/approve", {"reference": "审-1"}, auditor),
        ("/payout-runs/2024-03%231/paid", {"reference": "付-1"}, admin),
        ("/distribution-runs", {"period": "2024"}, admin),
    ):
        response = world.client.post(API + path, json=body, headers=headers)
        assert response.is_success, response.text
    world.runs_recorded = True
    return world


@pytest.fixture(scope="module", params=DEEP)
def fuzz_world(request: pytest.FixtureRequest, make_world: Callable[[str], World]) -> World:
    """A county of its own per backend (the module's, see `make_world`), its runs recorded."""
    return runs_recorded(make_world(request.param))


@pytest.fixture(scope="module", params=BOTH)
def fuzz_world_each(request: pytest.FixtureRequest, make_world: Callable[[str], World]) -> World:
    """The same on each backend, whatever the profile."""
    return runs_recorded(make_world(request.param))


@pytest.fixture(scope="module", params=[POSTGRES])
def fuzz_world_postgres(
    request: pytest.FixtureRequest, make_world: Callable[[str], World]
) -> World:
    """The same on PostgreSQL."""
    return runs_recorded(make_world(request.param))


# The schema as the app serves it (building it needs no database): fuzzed in depth (with the
# coverage phase: boundaries, missing and wrong-typed parameters) and lightly. Loaded here and
# each case sent to the backend's app by `check`, since schemathesis's per-fixture schema
# (`schemathesis.pytest.from_fixture`) fails under pytest 9 (`Function` has no `_nodeid`).
OPENAPI = create_app().openapi()
deep = schemathesis.openapi.from_dict(OPENAPI, config=config(coverage=True))
light = schemathesis.openapi.from_dict(OPENAPI, config=config(coverage=False))


def check(case: schemathesis.Case, world: World, who: str | None) -> None:
    """Send the case to this backend's app in-process, with `who`'s token (a negative case
    may drop the header: then 401 is what the schema expects)."""
    headers = world.auth(who) if who else {}
    response = case.call(app=world.client.app, headers=headers)
    case.validate_response(response, checks=CHECKS, headers=headers)


@deep.parametrize()
@fuzz_settings(max_examples=examples(6))
def test_fuzz_as_admin(case: schemathesis.Case, fuzz_world: World) -> None:
    check(case, fuzz_world, "admin")


if not thorough():  # there the deep fuzzing covers PostgreSQL

    @light.parametrize()
    @fuzz_settings(max_examples=3)
    def test_fuzz_as_admin_on_postgres(case: schemathesis.Case, fuzz_world_postgres: World) -> None:
        check(case, fuzz_world_postgres, "admin")


@light.parametrize()
@fuzz_settings(max_examples=examples(4))
def test_fuzz_as_clerk(case: schemathesis.Case, fuzz_world: World) -> None:
    check(case, fuzz_world, "clerk")


@light.parametrize()
@fuzz_settings(max_examples=examples(2))
def test_fuzz_without_token(case: schemathesis.Case, fuzz_world: World) -> None:
    check(case, fuzz_world, None)


def test_diff_of_a_distribution_run_is_refused(fuzz_world_each: World) -> None:
    """Found by the fuzzing: a payout run diffed with a distribution run was a 500."""
    for a, b in (("2024-03#1", "perf-2024#1"), ("perf-2024#1", "2024-03#1")):
        response = fuzz_world_each.client.get(
            f"{API}/payout-runs/diff",
            params={"a": a, "b": b},
            headers=fuzz_world_each.auth("admin"),
        )
        assert response.status_code == 409, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "perf-2024#1 is a distribution run" in response.json()["message_en"]

"""Institution compensation, what-if, explanations and staff performance pay (reads only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from dangliang.api import models
from dangliang.api.access import Auditor, Reader, Service, require_institution, scoped
from dangliang.api.params import AsOf, InstitutionQuery, PeriodQuery, Position, moment, parse_period
from dangliang.calculation.compensation import EXPLAINABLE
from dangliang.domain.problems import Problem
from dangliang.policy.parameter_values import ParameterLookupError, PolicyError
from dangliang.policy.parameters_from_log import parse_value_text
from dangliang.policy.reform import Change, Scenario

router = APIRouter()

Code = Annotated[str, Path(max_length=64, description="机构编码 / staff id")]


@router.get("/compensation", response_model=models.Computation, tags=["compensation"])
def compensation(
    app: Service,
    principal: Reader,
    period: PeriodQuery,
    institution: InstitutionQuery = None,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """A month's advances or a year's settlement per institution (docs/compensation.md):
    equivalents, prices, score, coefficient, every component, total, advances, settlement;
    computed, not recorded (a payout run records it)."""
    computed = app.compute(parse_period(period), as_of=moment(as_of), position=position)
    return scoped(computed.as_json(), principal, institution)


@router.post("/compensation/what-if", response_model=models.WhatIf, tags=["compensation"])
def what_if(body: models.WhatIfIn, app: Service, principal: Auditor) -> dict[str, Any]:
    """The period computed again with changed parameters, beside the baseline, per
    institution and component. Nothing is written."""
    found = parse_period(body.period)
    tree = app.policy().tree
    changes, problems = [], []
    for i, c in enumerate(body.changes):
        try:
            value = parse_value_text(c.value, tree.parameter(c.path).unit)
            changes.append(Change(c.path, value, c.effective_from or found.first_day))
        except ParameterLookupError as e:
            problems.append(Problem("request", None, f"changes.{i}", e.message_zh, e.message_en))
    if problems:
        raise PolicyError(problems)
    scenario = Scenario(", ".join(f"{c.path}={c.value}" for c in body.changes), tuple(changes))
    diff = app.what_if(found, scenario, as_of=moment(body.as_of), position=body.position)
    return scoped(diff, principal, body.institution)


@router.get("/explain/institution/{code}", response_model=models.Explanation, tags=["compensation"])
def explain_institution(
    code: Code,
    app: Service,
    principal: Reader,
    period: PeriodQuery,
    component: Annotated[str | None, Query(description=f"One of {', '.join(EXPLAINABLE)}.")] = None,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """Why an institution gets its amount: rule and clause → parameters (value, effective
    date, reference) → inputs → equivalents by item and month → the records behind them."""
    require_institution(principal, code)
    return app.explain(
        code, parse_period(period), component=component, as_of=moment(as_of), position=position
    )


@router.get("/explain/staff/{code}", response_model=models.Explanation, tags=["performance pay"])
def explain_staff(
    code: Code,
    app: Service,
    principal: Reader,
    period: PeriodQuery,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """One person's performance pay: every step with their own entry, per institution."""
    found = app.explain_staff(code, parse_period(period), as_of=moment(as_of), position=position)
    parts = [p for p in found["institutions"] if principal.may_see(p["institution"])]
    if not parts:
        require_institution(principal, found["institutions"][0]["institution"])
    return {**found, "institutions": parts}


@router.get("/distribution", response_model=models.Distribution, tags=["performance pay"])
def distribution(
    app: Service,
    principal: Reader,
    period: PeriodQuery,
    institution: InstitutionQuery = None,
    as_of: AsOf = None,
    position: Position = None,
) -> dict[str, Any]:
    """Each institution's performance pay shared among its staff (computed, not recorded)."""
    if institution is not None:
        require_institution(principal, institution)
    found = app.distribute(
        parse_period(period), institution=institution, as_of=moment(as_of), position=position
    )
    return scoped(found.as_json(), principal, institution)

"""Compensation inputs and county policy as aggregates: what they refuse, and idempotence;
policy parameters back from the log (canonical JSON, recorded changes, typed values)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dangliang.domain.errors import InvalidValue
from dangliang.domain.inputs import ForceMajeure, InstitutionYear
from dangliang.domain.policy import CountyPolicy
from dangliang.policy import load_builtin_bundle
from dangliang.policy.parameter_values import ParameterLookupError
from dangliang.policy.parameters_from_log import (
    parse_value_text,
    tree_from_canonical_json,
    value_to_canonical,
)

D = Decimal


def test_institution_year_refuses_bad_facts_and_ignores_repeats() -> None:
    y = InstitutionYear.open(institution_code="C01", year=2024, actor="t")
    with pytest.raises(InvalidValue, match="0–100"):
        y.score_assessment(score=D("100.5"), reference="r", actor="t")
    with pytest.raises(InvalidValue, match="reference"):
        y.score_assessment(score=D("90"), reference=" ", actor="t")
    assert y.score_assessment(score=D("90"), reference="r", actor="t")
    assert not y.score_assessment(score=D("90"), reference="r", actor="t")
    with pytest.raises(InvalidValue, match="1st of a month"):
        y.report_income(month=date(2024, 3, 15), amount=D("1"), actor="t")
    with pytest.raises(InvalidValue, match="not in 2024"):
        y.report_income(month=date(2025, 1, 1), amount=D("1"), actor="t")
    with pytest.raises(InvalidValue, match="2 places"):
        y.report_income(month=date(2024, 3, 1), amount=D("1.001"), actor="t")
    with pytest.raises(InvalidValue, match="not been assigned"):
        y.complete_task(task_code="T9", completion=D("1"), actor="t")
    assert y.assign_task(task_code="T1", name="疫情防控", amount=D("100"), reference="r", actor="t")
    with pytest.raises(InvalidValue, match="0–1"):
        y.complete_task(task_code="T1", completion=D("1.2"), actor="t")
    assert y.complete_task(task_code="T1", completion=D("0.5"), actor="t")
    assert not y.complete_task(task_code="T1", completion=D("0.50"), actor="t")
    assert [type(e).__name__ for e in y.collect_events()] == [
        "Opened",
        "AssessmentScored",
        "DirectiveTaskAssigned",
        "DirectiveTaskCompleted",
    ]


def test_force_majeure_declarations() -> None:
    with pytest.raises(InvalidValue, match="before first_month"):
        ForceMajeure.declare(
            code="F",
            first_month=date(2024, 3, 1),
            last_month=date(2024, 2, 1),
            institutions=[],
            reason="疫情",
            reference="r",
            actor="t",
        )
    fm = ForceMajeure.declare(
        code="F",
        first_month=date(2024, 2, 1),
        last_month=date(2024, 3, 1),
        institutions=["C02", "C01"],
        reason="疫情",
        reference="r",
        actor="t",
    )
    assert fm.institutions == ["C01", "C02"]
    same = dict(first_month=date(2024, 2, 1), last_month=date(2024, 3, 1), reason="疫情")
    assert not fm.amend(institutions=["C01", "C02"], reference="r", actor="t", **same)
    assert fm.amend(institutions=["C01"], reference="r2", actor="t", **same)


def test_county_policy_adoption_and_changes() -> None:
    tree = load_builtin_bundle("zhuji")
    policy = CountyPolicy.establish(actor="t")
    with pytest.raises(InvalidValue, match="adopt one first"):
        policy.change(
            path="advance.ratio",
            start=date(2025, 1, 1),
            value_json='"0.9"',
            reason="r",
            approver="a",
            actor="t",
        )
    kwargs = dict(
        bundle_name="zhuji.yaml",
        canonical_json=tree.canonical_json(),
        digest=tree.digest(),
        actor="t",
    )
    with pytest.raises(InvalidValue):
        policy.adopt(reference="", **kwargs)
    assert policy.adopt(reference="r", **kwargs)
    assert not policy.adopt(reference="r", **kwargs)
    change = dict(path="advance.ratio", start=date(2025, 1, 1), reason="r", actor="t")
    with pytest.raises(InvalidValue, match="approver"):
        policy.change(value_json='"0.9"', approver=" ", **change)
    assert policy.change(value_json='"0.9"', approver="a", **change)
    assert not policy.change(value_json='"0.9"', approver="a", **change)
    assert policy.change(value_json='"0.95"', approver="a", **change)
    assert policy.change(value_json='"0.9"', approver="a", **change)  # back again: a change
    assert policy.adopt(reference="r", **kwargs)  # re-adopting drops the changes: recorded


@pytest.mark.parametrize("name", ["zhuji", "point_value"])
def test_a_bundle_survives_the_log_exactly(name: str) -> None:
    tree = load_builtin_bundle(name)
    back = tree_from_canonical_json(tree.canonical_json(), tree.source)
    assert back.digest() == tree.digest()
    for path in tree:  # bands come back with their columns sorted: compare by content
        assert [
            (v.start, value_to_canonical(v.value), v.reference) for v in back.parameter(path).values
        ] == [
            (v.start, value_to_canonical(v.value), v.reference) for v in tree.parameter(path).values
        ]


def test_recorded_changes_keep_later_values() -> None:
    tree = load_builtin_bundle("point_value")
    changed = tree.with_value("budget.basic_medical", date(2023, 7, 1), D("1"), "r")
    starts = [v.start for v in changed.parameter("budget.basic_medical").values]
    assert starts == [date(2023, 1, 1), date(2023, 7, 1), date(2024, 1, 1)]
    with pytest.raises(ParameterLookupError, match="1st of a month"):
        tree.with_value("advance.ratio", date(2024, 7, 2), D("0.9"), "r")


def test_values_typed_by_people() -> None:
    assert parse_value_text("13.00", "CNY/EU") == D("13.00")
    assert parse_value_text("null", "ratio") is None
    assert parse_value_text("true", "boolean") is True
    bands = parse_value_text('[{"min_score": "0", "coefficient": "0.8"}]', "bands")
    assert isinstance(bands, tuple) and bands[0]["coefficient"] == D("0.8")
    for bad, unit in (("1,000", "CNY"), ("yes", "boolean"), ("-1", "ratio"), ("1e3", "CNY")):
        with pytest.raises(ParameterLookupError):
            parse_value_text(bad, unit)


def test_the_pipeline_refuses_an_unknown_or_mid_year_pricing_mode() -> None:
    from dangliang.policy.subsidy import compute_year
    from dangliang.policy.subsidy_records import CountyInputs, InstitutionInputs

    county = CountyInputs(2024, {"C01": InstitutionInputs("C01")})
    tree = load_builtin_bundle("zhuji")
    typo = tree.with_overrides({"pricing.mode": "fix"}, on=date(2024, 1, 1), reference="t")
    with pytest.raises(ParameterLookupError, match="one of: fixed, point_value"):
        compute_year(typo, county)
    switched = tree.with_overrides(
        {"pricing.mode": "point_value"}, on=date(2024, 7, 1), reference="t"
    )
    with pytest.raises(ParameterLookupError, match="from 1 January only"):
        compute_year(switched, county)
    bands = tree.with_overrides(
        {"assessment.coefficient_mode": "steps"}, on=date(2024, 1, 1), reference="t"
    )
    scored = CountyInputs(2024, {"C01": InstitutionInputs("C01", score=D("90"))})
    with pytest.raises(ParameterLookupError, match="linear, bands"):
        compute_year(bands, scored)

"""Unit tests for dated policy parameters: loading, validation, lookup by date, digest, reforms.

Small bundles are written inline; the line numbers asserted below are the lines of those texts
(the first line after the opening quotes is line 1).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dangliang.domain.problems import ProblemsFound
from dangliang.policy import (
    BUILTIN_BUNDLES,
    Band,
    ParameterLookupError,
    ParameterTree,
    PolicyError,
    load_builtin_bundle,
    load_bundle,
    load_bundle_text,
)

BUNDLES_DIR = Path(__file__).resolve().parents[3] / "src" / "dangliang" / "policy" / "bundles"
DOC = (Path(__file__).resolve().parents[3] / "docs" / "policy.md").read_text(encoding="utf-8")
INSURANCE_DOC = (Path(__file__).resolve().parents[3] / "docs" / "insurance.md").read_text(
    encoding="utf-8"
)

PRICES = """\
unit_price:
  basic_medical:
    description: 基本医疗标准当量单价 / unit price, basic medical
    unit: CNY/EU
    monthly: true
    values:
      2022-01-01: {value: "12.50", reference: "doc A 1"}
      2023-01-01: {value: "13.00", reference: "doc A 2"}
      2023-07-01: {value: "13.40", reference: "doc A 3"}
growth_cap:
  description: cap
  unit: ratio
  values:
    2022-01-01: {value: "0.10", reference: "doc B"}
    2024-01-01: {value: null, reference: "doc B amended"}
"""


def load(text: str, name: str = "t.yaml") -> ParameterTree:
    return load_bundle_text(text, name)


def refused(text: str, name: str = "t.yaml") -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_bundle_text(text, name)
    return [str(p) for p in caught.value.problems]


def one_param(value: str, unit: str = "CNY", extra: str = "") -> str:
    """A bundle of one parameter `p`; the value is on line 6."""
    return (
        "p:\n"
        "  description: d\n"
        f"  unit: {unit}\n{extra}"
        "  values:\n"
        "    2022-01-01:\n"
        f"      value: {value}\n"
        "      reference: r\n"
    )


# --- the shipped bundles ---------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_BUNDLES)
def test_builtin_bundles_load_and_every_reference_is_labelled_illustrative(name: str) -> None:
    tree = load_builtin_bundle(name)
    same = load_bundle(BUNDLES_DIR / f"{name}.yaml")
    assert tree.digest() == same.digest()
    assert len(tree) > 10
    for path in tree:
        for dated in tree.parameter(path).values:
            assert "示例数值，非官方" in dated.reference, path
            assert "illustrative" in dated.reference, path


def test_zhuji_values_follow_the_document() -> None:
    zhuji = load_builtin_bundle("zhuji")
    on = date(2024, 3, 1)
    assert zhuji.get("pricing.mode", on).as_text() == "fixed"
    cap = zhuji.get("basic_medical_growth_cap", on)
    assert cap.as_decimal() == Decimal("0.10")
    assert "基本医疗年度当量增长不超过10%" in cap.reference
    assert zhuji.get("year_end_bonus.per_head", on).as_decimal() == Decimal("60000")
    assert zhuji.get("year_end_bonus.finance_share_per_head", on).as_decimal() == Decimal("10000")
    assert zhuji.get("remote_adjustment.low", on).as_decimal() == Decimal("0.10")
    assert zhuji.get("remote_adjustment.high", on).as_decimal() == Decimal("0.30")
    assert zhuji.get("public_health_full_purchase", on).as_bool() is True
    assert zhuji.get("force_majeure_top_up", on).as_bool() is True
    assert zhuji.get("income_offset", on).as_bool() is False
    price = zhuji.get("unit_price.basic_medical", on)
    assert isinstance(price.value, Decimal)
    assert (price.start, price.unit) == (date(2022, 1, 1), "CNY/EU")


def test_point_value_bundle_has_budgets_and_no_growth_cap() -> None:
    bundle = load_builtin_bundle("point_value")
    assert bundle.get("pricing.mode", date(2024, 3, 1)).as_text() == "point_value"
    assert bundle.get("budget.basic_medical", date(2023, 6, 1)).as_decimal() == Decimal("6E7")
    assert bundle.get("budget.basic_medical", date(2024, 6, 1)).as_decimal() == Decimal("6.3E7")
    assert bundle.get("pricing.reserve_ratio", date(2024, 1, 1)).as_decimal() == Decimal("0.05")
    assert bundle.get("basic_medical_growth_cap", date(2024, 1, 1)).is_off


def test_bundles_share_paths_except_pricing() -> None:
    zhuji, point = (set(load_builtin_bundle(n)) for n in ("zhuji", "point_value"))
    assert zhuji - point == {"unit_price.basic_medical", "unit_price.basic_public_health"}
    assert point - zhuji == {
        "budget.basic_medical",
        "budget.basic_public_health",
        "pricing.reserve_ratio",
        "pricing.provisional_monthly",
        "pricing.final_at_year_end",
        "assessment.coefficient_bands",
    }


def test_docs_table_lists_every_parameter_of_every_builtin_bundle() -> None:
    """Compensation bundles in docs/policy.md, the insurance fund's in docs/insurance.md."""
    for name in BUILTIN_BUNDLES:
        tree = load_builtin_bundle(name)
        insurance = tree.metadata.get("scheme") == "insurance"
        doc, page = (INSURANCE_DOC, "insurance.md") if insurance else (DOC, "policy.md")
        for path in tree:
            unit = tree.parameter(path).unit
            row = re.compile(rf"^\| `{re.escape(path)}` \| {re.escape(unit)} \|", re.MULTILINE)
            assert row.search(doc), f"docs/{page} has no row for {name}: {path} ({unit})"


# --- lookup by date --------------------------------------------------------------------------


def test_get_picks_the_value_in_force_on_the_date() -> None:
    tree = load(PRICES)
    price = "unit_price.basic_medical"
    assert tree.get(price, date(2022, 1, 1)).value == Decimal("12.50")
    assert tree.get(price, date(2022, 12, 31)).value == Decimal("12.50")
    assert tree.get(price, date(2023, 1, 1)).value == Decimal("13.00")
    assert tree.get(price, date(2023, 6, 30)).value == Decimal("13.00")
    latest = tree.get(price, date(2030, 1, 1))
    assert (latest.value, latest.start, latest.reference) == (
        Decimal("13.40"),
        date(2023, 7, 1),
        "doc A 3",
    )
    assert latest.unit == "CNY/EU"
    assert latest.path == price
    assert str(latest.value) == "13.40"  # kept as written


def test_no_value_before_the_first_start_date() -> None:
    with pytest.raises(ParameterLookupError, match=r"2021-12-31.*2022-01-01"):
        load(PRICES).get("unit_price.basic_medical", date(2021, 12, 31))


def test_unknown_path_and_group_path_are_clear_errors() -> None:
    tree = load(PRICES)
    with pytest.raises(ParameterLookupError, match=r"did you mean: unit_price\.basic_medical"):
        tree.get("unit_price.basic_medcal", date(2023, 1, 1))
    with pytest.raises(ParameterLookupError, match=r"is a group.*unit_price\.basic_medical"):
        tree.get("unit_price", date(2023, 1, 1))


def test_null_switches_a_parameter_off_from_its_date() -> None:
    tree = load(PRICES)
    before = tree.get("growth_cap", date(2023, 12, 31))
    assert before.optional_decimal() == Decimal("0.10")
    assert not before.is_off
    after = tree.get("growth_cap", date(2024, 1, 1))
    assert after.is_off
    assert after.value is None
    assert after.optional_decimal() is None
    assert after.start == date(2024, 1, 1)
    with pytest.raises(ParameterLookupError, match="switched off"):
        after.as_decimal()


def test_snapshot_is_the_tree_on_one_date() -> None:
    tree = load(PRICES)
    snapshot = tree.at(date(2023, 8, 1))
    assert snapshot["unit_price.basic_medical"].value == Decimal("13.40")
    assert "growth_cap" in snapshot
    assert "nothing" not in snapshot
    assert list(snapshot) == ["growth_cap", "unit_price.basic_medical"]
    assert not list(tree.at(date(2020, 1, 1)))


def test_typed_accessors_refuse_the_wrong_type() -> None:
    tree = load(PRICES)
    with pytest.raises(ParameterLookupError, match="not a switch"):
        tree.get("growth_cap", date(2022, 5, 1)).as_bool()
    with pytest.raises(ParameterLookupError, match="not text"):
        tree.get("growth_cap", date(2022, 5, 1)).as_text()


# --- values ----------------------------------------------------------------------------------


def test_yaml_float_refused_with_file_line_and_key() -> None:
    problems = refused(one_param("12.50"), "zhuji.yaml")
    assert problems == [
        'zhuji.yaml:6:p.values.2022-01-01.value: 金额、比率等数值请写成字符串（加引号）："12.50"，'
        '而不是 12.50 / write amounts as strings (in quotes): "12.50", not 12.50'
    ]


def test_yaml_int_refused_too() -> None:
    [problem] = refused(one_param("60000"))
    assert problem.startswith("t.yaml:6:p.values.2022-01-01.value:")
    assert "write amounts as strings" in problem


@pytest.mark.parametrize("text", ['"1,000"', '"1e3"', '"abc"', '"NaN"', '""', "true"])
def test_malformed_numbers_refused(text: str) -> None:
    [problem] = refused(one_param(text))
    assert "expected a number written as a string" in problem


def test_negative_and_fractional_counts_refused_but_percent_points_may_be_negative() -> None:
    assert "must not be negative" in refused(one_param('"-1"', "ratio"))[0]
    assert "whole number" in refused(one_param('"1.5"', "count"))[0]
    tree = load(one_param('"-2.5"', "percent_points"))
    assert tree.get("p", date(2022, 1, 1)).value == Decimal("-2.5")


def test_booleans_are_true_or_false_only() -> None:
    assert load(one_param("false", "boolean")).get("p", date(2022, 2, 1)).as_bool() is False
    for text in ("yes", "on", '"true"', '"1"'):
        [problem] = refused(one_param(text, "boolean"))
        assert "true or false" in problem


def test_text_values() -> None:
    assert load(one_param("fixed", "text")).get("p", date(2022, 2, 1)).as_text() == "fixed"
    assert "expected non-empty text" in refused(one_param('"  "', "text"))[0]


def test_bands_are_parsed_as_decimals() -> None:
    text = one_param(
        '\n        - {min_score: "0", coefficient: "0.70"}'
        '\n        - {min_score: "60", coefficient: "0.85"}'
        '\n        - {min_score: "90", coefficient: "1.00"}',
        "bands",
    )
    bands = load(text).get("p", date(2022, 1, 1)).as_bands()
    assert [b.as_dict() for b in bands] == [
        {"min_score": Decimal("0"), "coefficient": Decimal("0.70")},
        {"min_score": Decimal("60"), "coefficient": Decimal("0.85")},
        {"min_score": Decimal("90"), "coefficient": Decimal("1.00")},
    ]
    assert all(isinstance(v, Decimal) for b in bands for _, v in b.columns)
    assert bands[1]["coefficient"] == Decimal("0.85")
    assert bands[1].names() == ("min_score", "coefficient")


def test_bad_bands_refused() -> None:
    unsorted = one_param(
        '\n        - {min_score: "60", coefficient: "0.85"}'
        '\n        - {min_score: "60", coefficient: "0.90"}',
        "bands",
    )
    assert "strictly ascending order of min_score" in refused(unsorted)[0]
    ragged = one_param(
        '\n        - {min_score: "0", coefficient: "0.85"}\n        - {min_score: "60"}', "bands"
    )
    assert "same columns" in refused(ragged)[0]
    floating = one_param('\n        - {min_score: "0", coefficient: 0.85}', "bands")
    [problem] = refused(floating)
    assert problem.startswith("t.yaml:7:p.values.2022-01-01.value[0].coefficient:")
    assert "write amounts as strings" in problem


# --- structure -------------------------------------------------------------------------------


def test_duplicate_key_refused_naming_both_lines() -> None:
    text = """\
a:
  description: d
  unit: CNY
  values:
    2022-01-01: {value: "1", reference: r}
a:
  description: again
  unit: CNY
  values:
    2022-01-01: {value: "2", reference: r}
"""
    assert refused(text) == [
        "t.yaml:6:a: 重复的键（第 1 行已有） / duplicate key (already on line 1)"
    ]


def test_duplicate_start_date_refused() -> None:
    text = one_param('"1"') + '    2022-01-01: {value: "2", reference: r}\n'
    [problem] = refused(text)
    assert problem.startswith("t.yaml:8:p.values.2022-01-01:")
    assert "already on line 5" in problem
    quoted = one_param('"1"') + '    "2022-01-01": {value: "2", reference: r}\n'
    assert refused(quoted) == [
        "t.yaml:8:p.values.2022-01-01: 同一生效日期写了两次（第 5 行已有） / "
        "the same start date is given twice (already on line 5)"
    ]


def test_unknown_key_refused() -> None:
    [problem] = refused(one_param('"1"', extra="  reference: misplaced\n"))
    assert problem.startswith("t.yaml:4:p.reference:")
    assert "unknown key 'reference'" in problem


def test_unknown_key_in_a_dated_value_refused() -> None:
    text = one_param('"1"') + "      note: n\n"
    [problem] = refused(text)
    assert problem.startswith("t.yaml:8:p.values.2022-01-01.note:")


def test_missing_reference_refused() -> None:
    text = one_param('"1"').replace("      reference: r\n", "")
    assert refused(text) == [
        "t.yaml:5:p.values.2022-01-01.reference: 缺少依据（reference：政策文件及条款） / "
        "missing reference"
    ]
    assert "non-empty" in refused(one_param('"1"').replace("reference: r", 'reference: ""'))[0]


def test_missing_and_unknown_unit_refused() -> None:
    text = one_param('"1"').replace("  unit: CNY\n", "")
    assert refused(text) == ["t.yaml:1:p.unit: 缺少单位（unit） / missing unit"]
    [problem] = refused(one_param('"1"', unit="RMB"))
    assert problem.startswith("t.yaml:3:p.unit:")
    assert "unknown unit 'RMB'" in problem


def test_start_date_must_be_first_of_month_where_monthly() -> None:
    monthly = one_param('"1"', extra="  monthly: true\n").replace("2022-01-01", "2022-01-15")
    assert refused(monthly, "zhuji.yaml") == [
        "zhuji.yaml:6:p.values.2022-01-15: 生效日期必须是某月 1 日 / "
        "must be the 1st of a month (monthly: true)"
    ]
    anyday = load(one_param('"1"').replace("2022-01-01", "2022-01-15"))
    assert anyday.get("p", date(2022, 1, 15)).start == date(2022, 1, 15)


def test_invalid_start_dates_refused() -> None:
    for key in ("2022-02-30", "2022-1-5", "'2022-13-01'", "first"):
        [problem] = refused(one_param('"1"').replace("2022-01-01", key))
        assert problem.startswith("t.yaml:5:p.values.")
        assert "valid date YYYY-MM-DD" in problem


def test_a_bare_value_is_not_a_parameter() -> None:
    [problem] = refused("pricing:\n  mode: fixed\n")
    assert problem.startswith("t.yaml:2:pricing.mode:")
    assert "not a bare value" in problem


def test_yaml_syntax_error_has_a_line() -> None:
    [problem] = refused("a:\n  b: [1, 2\n  c: 3\n")
    assert re.match(r"t\.yaml:\d+: YAML", problem)


def test_several_errors_are_all_reported_in_one_policy_error() -> None:
    text = """\
p:
  description: d
  unit: CNY/EU
  monthly: true
  colour: blue
  values:
    2022-01-15: {value: "1", reference: r}
    2022-02-01: {value: 2.5, reference: r}
    2022-03-01: {value: "3"}
q:
  unit: boolean
  values:
    2022-01-01: {value: maybe, reference: r}
Bad Name:
  description: d
"""
    with pytest.raises(PolicyError) as caught:
        load(text)
    error = caught.value
    assert isinstance(error, ProblemsFound)
    where = [(p.row, p.column) for p in error.problems]
    assert where == [
        (5, "p.colour"),
        (7, "p.values.2022-01-15"),
        (8, "p.values.2022-02-01.value"),
        (9, "p.values.2022-03-01.reference"),
        (10, "q.description"),
        (13, "q.values.2022-01-01.value"),
        (14, "Bad Name"),
    ]
    assert all(p.file == "t.yaml" for p in error.problems)
    assert "7 problem(s)" in str(error)


def test_load_bundle_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "county.yaml"
    good.write_text(PRICES, encoding="utf-8-sig")
    assert load_bundle(good).source == "county.yaml"
    bad = tmp_path / "broken.yaml"
    bad.write_bytes(one_param("1").encode())
    with pytest.raises(PolicyError) as caught:
        load_bundle(bad)
    assert str(caught.value.problems[0]).startswith("broken.yaml:6:")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("p: é".encode("latin-1"))
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_bundle(latin)


# --- digest ----------------------------------------------------------------------------------


REORDERED = """\
growth_cap:
  values:
    2024-01-01: {reference: "doc B amended", value: null}
    2022-01-01: {reference: "doc B", value: "0.1"}
  unit: ratio
  description: the cap (description is not part of the digest)
unit_price:
  basic_medical:
    values:
      2023-07-01: {value: "13.40", reference: "doc A 3"}
      2023-01-01: {value: "13.0", reference: "doc A 2"}
      2022-01-01: {value: "12.50", reference: "doc A 1"}
    monthly: true
    unit: CNY/EU
    description: x
"""


def test_digest_is_stable_under_key_order_and_spelling() -> None:
    assert load(PRICES).digest() == load(REORDERED, "other.yaml").digest()
    assert re.fullmatch(r"[0-9a-f]{64}", load(PRICES).digest())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"13.40"', '"13.41"'),  # a value
        ("2023-07-01", "2023-08-01"),  # a start date
        ('"doc A 3"', '"doc A 3bis"'),  # a reference
        ("unit: ratio", "unit: percent_points"),  # a unit
        ("value: null", 'value: "0.2"'),  # switching back on
    ],
)
def test_digest_changes_with_any_value_change(old: str, new: str) -> None:
    assert old in PRICES
    assert load(PRICES.replace(old, new)).digest() != load(PRICES).digest()


# --- reforms ---------------------------------------------------------------------------------


def test_with_overrides_leaves_the_baseline_unchanged() -> None:
    baseline = load(PRICES)
    digest = baseline.digest()
    reform = baseline.with_overrides(
        {"unit_price.basic_medical": Decimal("14.00")}, on=date(2023, 3, 1), reference="what-if"
    )
    price = "unit_price.basic_medical"
    assert baseline.get(price, date(2024, 1, 1)).value == Decimal("13.40")
    assert baseline.digest() == digest
    assert reform.digest() != digest
    assert reform.get(price, date(2023, 2, 1)).value == Decimal("13.00")
    changed = reform.get(price, date(2024, 1, 1))
    assert (changed.value, changed.start, changed.reference) == (
        Decimal("14.00"),
        date(2023, 3, 1),
        "what-if",
    )


def test_with_overrides_until_restores_the_baseline() -> None:
    reform = load(PRICES).with_overrides(
        {"growth_cap": None}, on=date(2022, 6, 1), until=date(2023, 1, 1), reference="pause cap"
    )
    assert reform.get("growth_cap", date(2022, 5, 31)).value == Decimal("0.10")
    assert reform.get("growth_cap", date(2022, 6, 1)).is_off
    restored = reform.get("growth_cap", date(2023, 1, 1))
    assert (restored.value, restored.reference) == (Decimal("0.10"), "doc B")
    assert reform.get("growth_cap", date(2024, 2, 1)).is_off


def test_with_overrides_checks_values_like_loading() -> None:
    baseline = load(PRICES)
    with pytest.raises(PolicyError) as caught:
        baseline.with_overrides(
            {
                "unit_price.basic_medical": 13.0,  # type: ignore[dict-item]
                "growth_cap": Decimal("-0.1"),
                "no.such": Decimal(1),
            },
            on=date(2023, 3, 15),
            reference=" ",
        )
    messages = "\n".join(str(p) for p in caught.value.problems)
    assert "needs Decimal, got float" in messages
    assert "must not be negative" in messages
    assert "unknown policy parameter 'no.such'" in messages
    assert "must be the 1st of a month" in messages
    assert "needs a reference" in messages


def test_with_overrides_accepts_bands_as_mappings() -> None:
    text = one_param('\n        - {min_score: "0", coefficient: "1"}', "bands")
    reform = load(text).with_overrides(
        {"p": [{"min_score": Decimal(0), "coefficient": Decimal("0.9")}]},
        on=date(2023, 1, 1),
        reference="what-if",
    )
    assert reform.get("p", date(2023, 1, 1)).as_bands() == (
        Band((("min_score", Decimal(0)), ("coefficient", Decimal("0.9")))),
    )

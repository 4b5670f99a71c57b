"""Reform scenarios (what-if): read like bundles, every problem with file:line:key."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from dangliang.policy import PolicyError, load_builtin_bundle
from dangliang.policy.reform import Change, load_scenario, scenario_from_sets


def test_a_scenario_file_changes_a_copy(tmp_path: Path) -> None:
    tree = load_builtin_bundle("zhuji")
    file = tmp_path / "s.yaml"
    file.write_text(
        "description: 单价 13\n"
        "changes:\n"
        '  - {path: unit_price.basic_medical, value: "13.00", from: 2024-07-01}\n'
        '  - {path: advance.ratio, value: "0.90", from: 2024-01-01, until: 2024-07-01}\n'
        "  - {path: income_offset, value: true, from: 2024-01-01}\n",
        encoding="utf-8",
    )
    scenario = load_scenario(file, tree)
    assert scenario.changes[0] == Change(
        "unit_price.basic_medical", Decimal("13.00"), date(2024, 7, 1)
    )
    reform = scenario.apply(tree)
    assert reform.get("unit_price.basic_medical", date(2024, 6, 1)).value == Decimal("12.50")
    assert reform.get("unit_price.basic_medical", date(2024, 7, 1)).value == Decimal("13.00")
    assert reform.get("advance.ratio", date(2024, 8, 1)).value == Decimal("0.85")  # until
    assert reform.get("income_offset", date(2024, 1, 1)).value is True
    assert tree.get("unit_price.basic_medical", date(2024, 7, 1)).value == Decimal("12.50")
    assert reform.digest() != tree.digest()


def test_every_problem_of_a_scenario_is_reported_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "descripton: x\n"
        "changes:\n"
        "  - {path: unit_price.basic_medical, value: 13.0, from: 2024-01-01}\n"
        '  - {path: price.basic_medical, value: "13", from: 2024-01-01}\n'
        '  - {path: advance.ratio, value: "0.9", from: 2024-01-05}\n'
        '  - {path: advance.ratio, value: "0.9", form: 2024-01-01}\n',
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as refused:
        load_scenario(file, load_builtin_bundle("zhuji"))
    lines = refused.value.report().splitlines()
    assert [line.split(": ")[0] for line in lines] == [
        "bad.yaml:1:descripton",
        "bad.yaml:3:changes[0]",
        "bad.yaml:4:changes[1]",
        "bad.yaml:5:changes[2]",
        "bad.yaml:6:changes[3]",
    ]
    assert "in quotes" in lines[1] and "did you mean" in lines[2] and "1st of a month" in lines[3]


def test_set_options() -> None:
    tree = load_builtin_bundle("zhuji")
    ok = scenario_from_sets(
        ["unit_price.basic_medical = 13", "income_offset=true"], tree, date(2024, 1, 1)
    )
    assert [c.path for c in ok.changes] == ["unit_price.basic_medical", "income_offset"]
    with pytest.raises(PolicyError) as refused:
        scenario_from_sets(
            ["unit_price.basic_medical", "nope=1", "advance.ratio=x"], tree, date(2024, 1, 1)
        )
    assert len(refused.value.problems) == 3

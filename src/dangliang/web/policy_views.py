"""What the policy pages show: the parameters in force grouped as the bundle groups them, the
history of adoptions and changes (who, when, why, old → new), and a what-if's form and
result.

Everything comes from the application: the parameters in force (`parameters_in_force`,
`policy`), the history (`policy_history`: every adoption and change with its log position
and time, and the value each change replaced) and the what-if (`what_if`,
`insurance_what_if`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from dangliang.domain.problems import Problem
from dangliang.policy.bundle_loader import BUILTIN_BUNDLES, load_builtin_bundle
from dangliang.policy.parameter_values import ParameterLookupError
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import parse_value_text
from dangliang.policy.reform import Change, Scenario
from dangliang.web.dashboards import dec, yuan_point

SCHEMES = {
    "compensation": ("机构补偿政策", "Institution compensation"),
    "insurance": ("医保基金政策", "Insurance fund"),
}
WHAT_IF_ROWS = 3  # change rows on the form (blank rows are ignored)


# ---- parameters in force ----------------------------------------------------------------------


@lru_cache(maxsize=8)
def _builtin_descriptions(digest: str) -> dict[str, str]:
    """Descriptions of groups and parameters, from the built-in bundle with this digest (a
    bundle stored in the log keeps values and references, not descriptions)."""
    for name in BUILTIN_BUNDLES:
        tree = load_builtin_bundle(name)
        if tree.digest() == digest:
            found = {path: group.description for path, group in tree.groups.items()}
            found.update({path: tree.parameter(path).description for path in tree})
            found["metadata.document"] = tree.metadata.get("document", "")
            return found
    return {}


def descriptions(digest: str) -> dict[str, str]:
    return _builtin_descriptions(digest)


def bilingual(text: str) -> tuple[str, str]:
    zh, sep, en = text.partition(" / ")
    return (zh.strip(), en.strip()) if sep else (text, text)


@dataclass
class ParameterGroup:
    path: str
    description: tuple[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)


def grouped(rows: list[dict[str, Any]], described: dict[str, str]) -> list[ParameterGroup]:
    """The rows of `parameters_in_force` by their group (the path up to its last part)."""
    groups: dict[str, ParameterGroup] = {}
    for r in rows:
        parent = r["path"].rpartition(".")[0]
        group = groups.get(parent)
        if group is None:
            text = described.get(parent, "") if parent else ""
            group = groups[parent] = ParameterGroup(
                parent, bilingual(text) if text else ("基本参数", "General")
            )
        group.rows.append({**r, "description": bilingual(described.get(r["path"], ""))})
    return [groups[k] for k in sorted(groups)]


# ---- what-if ------------------------------------------------------------------------------------


@dataclass
class ChangeRow:
    """One change as typed on the form (kept to show the form again)."""

    path: str = ""
    value: str = ""
    effective_from: str = ""


def form_rows(paths: list[str], values: list[str], starts: list[str]) -> list[ChangeRow]:
    count = max(len(paths), len(values), len(starts), WHAT_IF_ROWS)

    def at(items: list[str], i: int) -> str:
        return items[i].strip() if i < len(items) else ""

    return [ChangeRow(at(paths, i), at(values, i), at(starts, i)) for i in range(count)]


def scenario_of(
    rows: list[ChangeRow], tree: ParameterTree, first_day: date
) -> tuple[Scenario | None, list[Problem]]:
    """The form's changes as a scenario, exactly as the API's what-if reads them; every
    problem (unknown path, value of the wrong kind, bad date) with its row."""
    changes, problems, typed = [], [], []
    for i, row in enumerate(rows):
        if not row.path or not row.value:
            if row.value and not row.path:
                problems.append(_problem(i, "path", "请选择参数", "choose a parameter"))
            continue
        try:
            start = date.fromisoformat(row.effective_from) if row.effective_from else first_day
        except ValueError:
            problems.append(
                _problem(
                    i,
                    "effective_from",
                    f"生效日期应为 YYYY-MM-DD：{row.effective_from!r}",
                    f"the effective date must be YYYY-MM-DD: {row.effective_from!r}",
                )
            )
            continue
        try:
            value = parse_value_text(row.value, tree.parameter(row.path).unit)
        except ParameterLookupError as e:
            problems.append(_problem(i, "value", e.message_zh, e.message_en))
            continue
        changes.append(Change(row.path, value, start))
        typed.append(f"{row.path}={row.value}")
    if not changes and not problems:
        problems.append(_problem(0, "value", "请至少填写一项参数调整", "enter at least one change"))
    if problems:
        return None, problems
    return Scenario(", ".join(typed), tuple(changes)), []


def _problem(i: int, column: str, zh: str, en: str) -> Problem:
    return Problem("what-if", i + 1, column, zh, en)


def compensation_result(found: dict[str, Any]) -> dict[str, Any]:
    """The what-if of institution compensation as the page shows it: per institution the
    baseline, scenario and difference, and the difference of each component, with totals."""
    rows = [{**r, "changed": Decimal(r["difference"]) != 0} for r in found["institutions"]]
    components = list(rows[0]["components"]) if rows else []
    totals = {
        c: str(sum((Decimal(r["components"][c]) for r in rows), Decimal(0))) for c in components
    }
    return {
        "rows": rows,
        "components": components,
        "component_totals": totals,
        "totals": found.get("totals"),
        "chart": {
            "dl_unit": "yuan",
            "dl_links": {
                r["code"]: f"/explain/institution/{r['code']}?period={found['period']}"
                for r in rows
            },
            "grid": {"left": 10, "right": 20, "top": 20, "bottom": 60, "containLabel": True},
            "xAxis": {
                "type": "category",
                "data": [r["code"] for r in rows],
                "axisLabel": {"rotate": 60},
            },
            "yAxis": {"type": "value"},
            "series": [
                {
                    "type": "bar",
                    "name": "difference",
                    "data": [yuan_point(dec(r["difference"])) for r in rows],
                }
            ],
        },
    }


def insurance_result(found: dict[str, Any]) -> dict[str, Any]:
    """The fund's what-if: per community each compared figure; the chart shows the final
    payment's difference (the advance's, for a month or quarter)."""
    communities = found["communities"]
    keys = sorted({k for c in communities for k in c["figures"]})
    key = "final" if "final" in keys else "advance"
    return {
        "communities": communities,
        "keys": keys,
        "fund": found.get("fund") or {},
        "chart_key": key,
        "chart": {
            "dl_unit": "yuan",
            "grid": {"left": 10, "right": 20, "top": 20, "bottom": 30, "containLabel": True},
            "xAxis": {"type": "category", "data": [c["code"] for c in communities]},
            "yAxis": {"type": "value"},
            "series": [
                {
                    "type": "bar",
                    "name": key,
                    "data": [
                        yuan_point(dec(c["figures"].get(key, {}).get("difference", "0")))
                        for c in communities
                    ],
                }
            ],
        },
    }

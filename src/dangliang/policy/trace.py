"""What a rule step read and produced (计算轨迹), recorded by the step itself as it runs.

A rule step receives a `StepRecorder`; it reads every policy parameter through
`recorder.param(path, on)` (so the value, its start date and reference are kept) and notes its
inputs and results. `dangliang explain` prints these steps: the explanation comes from the code
that computed the number, never from a second implementation (STYLE.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from dangliang.policy.parameter_values import ParameterValue
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import value_to_canonical


@dataclass(frozen=True)
class Rule:
    """A named rule step of docs/compensation.md, with where it comes from."""

    name: str
    title_zh: str
    title_en: str
    step: int  # docs/compensation.md step number
    clause: str  # the policy clause, or "configurable"


@dataclass
class Step:
    """One run of a rule step for one institution (or the county) and period."""

    rule: Rule
    period: str
    parameters: list[ParameterValue] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.name,
            "title": f"{self.rule.title_zh} / {self.rule.title_en}",
            "domain_step": self.rule.step,
            "clause": self.rule.clause,
            "period": self.period,
            "parameters": [
                {
                    "path": p.path,
                    "value": value_to_canonical(p.value),
                    "unit": p.unit,
                    "effective_from": p.start.isoformat(),
                    "reference": p.reference,
                }
                for p in self.parameters
            ],
            "inputs": to_json(self.inputs),
            "outputs": to_json(self.outputs),
            "notes": list(self.notes),
        }


class StepRecorder:
    """Handed to a rule step: reads parameters (keeping each one read) and takes notes."""

    def __init__(self, tree: ParameterTree, step: Step) -> None:
        self._tree = tree
        self.step = step

    def param(self, path: str, on: date) -> ParameterValue:
        found = self._tree.get(path, on)
        if found not in self.step.parameters:
            self.step.parameters.append(found)
        return found

    def inputs(self, **values: Any) -> None:
        self.step.inputs.update(values)

    def outputs(self, **values: Any) -> None:
        self.step.outputs.update(values)

    def note(self, text: str) -> None:
        self.step.notes.append(text)


def to_json(value: Any) -> Any:
    """Decimals as exact strings, dates as ISO text, mappings and sequences recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value

"""Load compensation inputs (补偿计算输入): assessment scores, medical-service income, pay
levels, directive tasks, force-majeure declarations and dated policy-parameter changes. The
inputs of performance pay inside an institution (docs/performance.md: approved pools, personal
assessment coefficients and the amounts paid outside the pool) are loaded by
`performance_pay_inputs.py`, which reuses this module's helpers.

The same rules as the reference loaders (`reference.py`), whose machinery this module reuses:
each file is validated whole and every problem is collected with its file, row and column;
each row is then applied to its aggregate in memory, where the domain's own rules may still
refuse it; only when nothing was refused are all the new events saved in one transaction.
Loading the same file again records nothing.

Formats: `formats.py` (SCORES, INCOME, PAY_LEVELS, TASKS, FORCE_MAJEURE, PARAMETER_CHANGES),
documented for people in `docs/formats.md`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain import ids
from dangliang.domain.inputs import ForceMajeure, InstitutionYear
from dangliang.domain.policy import CountyPolicy
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.fields import (
    Code,
    CodeList,
    IsoDate,
    Month,
    Ratio,
    Score,
    Text,
    Year,
    Yuan,
)
from dangliang.importers.formats import (
    FORCE_MAJEURE,
    INCOME,
    PARAMETER_CHANGES,
    PAY_LEVELS,
    SCORES,
    TASKS,
)
from dangliang.importers.reference import (
    LoadResult,
    Session,
    apply,
    read,
    unknown_institutions,
)
from dangliang.ledger.eventlog import EventLog
from dangliang.policy.parameter_values import ParameterLookupError
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import parse_value_text, value_to_canonical
from dangliang.projections.registry import Registry

__all__ = [
    "LoadResult",
    "load_force_majeure",
    "load_income",
    "load_parameter_changes",
    "load_pay_levels",
    "load_scores",
    "load_tasks",
]

NO_POLICY = (
    "尚未采用政策参数包，请先采用：dangliang policy load FILE",
    "adopt a policy bundle first: dangliang policy load FILE",
)


class ScoreRow(TypedDict):
    institution_code: Code
    year: Year
    score: Score
    reference: Text


class IncomeRow(TypedDict):
    institution_code: Code
    month: Month
    amount: Yuan


class PayLevelRow(TypedDict):
    institution_code: Code
    year: Year
    per_head: Yuan


class TaskRow(TypedDict):
    institution_code: Code
    year: Year
    task_code: Code
    name: Text
    amount: Yuan
    reference: Text
    completion: Ratio | None


class ForceMajeureRow(TypedDict):
    code: Code
    first_month: Month
    last_month: Month
    institutions: CodeList | None
    reason: Text
    reference: Text


# A banded table written as JSON rows may be longer than an ordinary text cell.
ValueText = Annotated[str, Field(min_length=1, max_length=20_000)]


class ParameterChangeRow(TypedDict):
    path: Text
    value: ValueText
    effective_from: IsoDate
    reason: Text
    approver: Text


def institution_year(
    session: Session, institution_code: str, year: int, actor: str
) -> tuple[InstitutionYear, bool]:
    """The institution's aggregate for the year, opened when it does not exist yet."""
    found: InstitutionYear | None = session.get(ids.institution_year_id(institution_code, year))
    if found is not None:
        return found, False
    opened = InstitutionYear.open(institution_code=institution_code, year=year, actor=actor)
    session.add(opened)
    return opened, True


# ---- institution-year facts ------------------------------------------------------------


def load_scores(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    """综合考核得分: one score (0–100) per institution and year, with its reference."""
    name, rows, problems = read(path, SCORES, TypeAdapter(list[ScoreRow]))
    problems.extend(unknown_institutions(name, rows, registry))

    def apply_row(session: Session, r: ScoreRow) -> bool:
        year, opened = institution_year(session, r["institution_code"], r["year"], actor)
        scored = year.score_assessment(score=r["score"], reference=r["reference"], actor=actor)
        return opened or scored

    return apply(log, name, rows, problems, apply_row, "score")


def load_income(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    """医疗服务收入（不含药品）: one amount per institution and month, in yuan."""
    name, rows, problems = read(path, INCOME, TypeAdapter(list[IncomeRow]))
    problems.extend(unknown_institutions(name, rows, registry))

    def apply_row(session: Session, r: IncomeRow) -> bool:
        month = r["month"]
        year, opened = institution_year(session, r["institution_code"], month.year, actor)
        reported = year.report_income(month=month, amount=r["amount"], actor=actor)
        return opened or reported

    return apply(log, name, rows, problems, apply_row, "amount")


def load_pay_levels(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    """在编职工人均年收入: the actual yearly income per establishment head, in yuan."""
    name, rows, problems = read(path, PAY_LEVELS, TypeAdapter(list[PayLevelRow]))
    problems.extend(unknown_institutions(name, rows, registry))

    def apply_row(session: Session, r: PayLevelRow) -> bool:
        year, opened = institution_year(session, r["institution_code"], r["year"], actor)
        reported = year.report_pay_level(per_head=r["per_head"], actor=actor)
        return opened or reported

    return apply(log, name, rows, problems, apply_row, "per_head")


def load_tasks(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    """指令性任务: each task assigned (fixed amount), and its completion once reported."""
    name, rows, problems = read(path, TASKS, TypeAdapter(list[TaskRow]))
    problems.extend(unknown_institutions(name, rows, registry))

    def apply_row(session: Session, r: TaskRow) -> bool:
        year, opened = institution_year(session, r["institution_code"], r["year"], actor)
        assigned = year.assign_task(
            task_code=r["task_code"],
            name=r["name"],
            amount=r["amount"],
            reference=r["reference"],
            actor=actor,
        )
        completed = r["completion"] is not None and year.complete_task(
            task_code=r["task_code"], completion=r["completion"], actor=actor
        )
        return opened or assigned or completed

    return apply(log, name, rows, problems, apply_row, "task_code")


# ---- force majeure ---------------------------------------------------------------------


def load_force_majeure(log: EventLog, registry: Registry, path: Path, actor: str) -> LoadResult:
    """不可抗力认定: months declared affected, for the listed institutions or (blank) all."""
    name, rows, problems = read(path, FORCE_MAJEURE, TypeAdapter(list[ForceMajeureRow]))
    for row_number, r in rows:
        if r["last_month"] < r["first_month"]:
            problems.append(
                Problem(
                    name,
                    row_number,
                    "last_month",
                    f"截止月份 {r['last_month']:%Y-%m} 早于起始月份 {r['first_month']:%Y-%m}",
                    f"last_month {r['last_month']:%Y-%m} is before "
                    f"first_month {r['first_month']:%Y-%m}",
                )
            )
        problems.extend(
            Problem.unknown(name, row_number, "institutions", "机构编码", "institution code", code)
            for code in r["institutions"] or ()
            if code not in registry.institutions
        )

    def apply_row(session: Session, r: ForceMajeureRow) -> bool:
        details = dict(
            first_month=r["first_month"],
            last_month=r["last_month"],
            institutions=list(r["institutions"] or ()),
            reason=r["reason"],
            reference=r["reference"],
            actor=actor,
        )
        existing: ForceMajeure | None = session.get(ids.force_majeure_id(r["code"]))
        if existing is None:
            session.add(ForceMajeure.declare(code=r["code"], **details))  # type: ignore[arg-type]
            return True
        return existing.amend(**details)  # type: ignore[arg-type]

    return apply(log, name, rows, problems, apply_row, "first_month")


# ---- policy parameter changes ----------------------------------------------------------


@dataclass(frozen=True)
class _Change:
    path: str
    start: date
    value_json: str
    reason: str
    approver: str


def load_parameter_changes(
    log: EventLog, tree: ParameterTree, path: Path, actor: str
) -> LoadResult:
    """政策参数调整: dated changes of the adopted bundle's parameters, each with its reason
    and approver. `tree` is the adopted bundle; it says which paths exist and their units."""
    policy: CountyPolicy | None = Session(log).get(ids.county_policy_id())
    if policy is None or policy.digest is None:
        raise ProblemsFound([Problem(str(path), None, None, *NO_POLICY)])
    name, rows, problems = read(path, PARAMETER_CHANGES, TypeAdapter(list[ParameterChangeRow]))
    changes: list[tuple[int, _Change]] = []
    for row_number, r in rows:
        try:
            parameter = tree.parameter(r["path"])
        except ParameterLookupError as e:
            problems.append(Problem(name, row_number, "path", e.message_zh, e.message_en))
            continue
        ok = True
        if parameter.monthly and r["effective_from"].day != 1:
            ok = False
            day = r["effective_from"].isoformat()
            problems.append(
                Problem(
                    name,
                    row_number,
                    "effective_from",
                    f"{r['path']} 按月生效，生效日期必须是某月 1 日：{day}",
                    f"{r['path']} is a monthly parameter: the effective date must be "
                    f"the 1st of a month: {day}",
                )
            )
        try:
            value = parse_value_text(r["value"], parameter.unit)
        except ParameterLookupError as e:
            problems.append(Problem(name, row_number, "value", e.message_zh, e.message_en))
            continue
        if ok:
            value_json = json.dumps(value_to_canonical(value), ensure_ascii=False)
            changes.append(
                (
                    row_number,
                    _Change(r["path"], r["effective_from"], value_json, r["reason"], r["approver"]),
                )
            )

    def apply_row(session: Session, c: _Change) -> bool:
        county: CountyPolicy | None = session.get(ids.county_policy_id())
        assert county is not None
        return county.change(
            path=c.path,
            start=c.start,
            value_json=c.value_json,
            reason=c.reason,
            approver=c.approver,
            actor=actor,
        )

    return apply(log, name, changes, problems, apply_row, "value")

"""Compensation inputs (补偿计算输入) that are not service records: facts about an institution
in a year that the rule steps of docs/compensation.md read, and the county's force-majeure
declarations. Each is recorded with who entered it; a repeated identical fact records nothing.

Amounts are yuan as `Decimal` with at most 2 places; scores 0–100; ratios 0–1.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue
from dangliang.domain.values import decimal_places, require_first_of_month, require_text


class InstitutionYear(Aggregate):
    """One institution's inputs for one year: assessment, income, pay level, directive tasks."""

    class Opened(Aggregate.Created):
        institution_code: str
        year: int
        actor: str

    class AssessmentScored(Aggregate.Event):
        """综合考核得分 (0–100) for the year, with the assessment's reference."""

        score: Decimal
        reference: str
        actor: str

    class IncomeReported(Aggregate.Event):
        """医疗服务收入（不含药品）of one month, yuan."""

        month: date
        amount: Decimal
        actor: str

    class PayLevelReported(Aggregate.Event):
        """在编职工人均年收入: actual yearly income per establishment head, yuan."""

        per_head: Decimal
        actor: str

    class DirectiveTaskAssigned(Aggregate.Event):
        """指令性任务已下达: a task bought at a fixed amount (定项定额)."""

        task_code: str
        name: str
        amount: Decimal
        reference: str
        actor: str

    class PoolApproved(Aggregate.Event):
        """核定绩效工资总量 and its reward share (奖励性绩效占比), for the year."""

        pool: Decimal
        reward_share: Decimal
        reference: str
        actor: str

    class SurplusReported(Aggregate.Event):
        """收支结余（不含财政专项补助）and the share redistributed by assessment."""

        surplus: Decimal
        share: Decimal
        actor: str

    class DirectorNamed(Aggregate.Event):
        """院长（主任）: paid a separately approved salary, outside the pool."""

        staff_id: str
        actor: str

    class DirectiveTaskCompleted(Aggregate.Event):
        """指令性任务完成情况: the share of the task completed (0–1)."""

        task_code: str
        completion: Decimal
        actor: str

    @staticmethod
    def create_id(institution_code: str, year: int, **_: Any) -> UUID:
        return ids.institution_year_id(institution_code, year)

    @event(Opened)
    def __init__(self, institution_code: str, year: int, actor: str) -> None:
        self.institution_code = institution_code
        self.year = year
        self.score: tuple[Decimal, str] | None = None
        self.income: dict[date, Decimal] = {}
        self.pay_level: Decimal | None = None
        self.tasks: dict[str, tuple[str, Decimal, str]] = {}
        self.completion: dict[str, Decimal] = {}
        self.pool: tuple[Decimal, Decimal, str] | None = None
        self.surplus: tuple[Decimal, Decimal] | None = None
        self.director: str | None = None

    @classmethod
    def open(cls, *, institution_code: str, year: int, actor: str) -> InstitutionYear:
        return cls(institution_code=institution_code, year=year, actor=actor)

    def score_assessment(self, *, score: Decimal, reference: str, actor: str) -> bool:
        if not Decimal(0) <= score <= Decimal(100):
            raise InvalidValue(f"考核得分须在 0–100 之间：{score}", f"score must be 0–100: {score}")
        require_text(reference, "考核依据", "an assessment reference")
        if self.score == (score, reference):
            return False
        self._scored(score=score, reference=reference, actor=actor)
        return True

    @event(AssessmentScored)
    def _scored(self, score: Decimal, reference: str, actor: str) -> None:
        self.score = (score, reference)

    def report_income(self, *, month: date, amount: Decimal, actor: str) -> bool:
        require_first_of_month(month)
        if month.year != self.year:
            raise InvalidValue(
                f"月份 {month:%Y-%m} 不属于 {self.year} 年", f"{month:%Y-%m} is not in {self.year}"
            )
        _require_yuan(amount, "收入", "income")
        if self.income.get(month) == amount:
            return False
        self._income(month=month, amount=amount, actor=actor)
        return True

    @event(IncomeReported)
    def _income(self, month: date, amount: Decimal, actor: str) -> None:
        self.income[month] = amount

    def report_pay_level(self, *, per_head: Decimal, actor: str) -> bool:
        _require_yuan(per_head, "人均年收入", "income per head")
        if self.pay_level == per_head:
            return False
        self._pay_level(per_head=per_head, actor=actor)
        return True

    @event(PayLevelReported)
    def _pay_level(self, per_head: Decimal, actor: str) -> None:
        self.pay_level = per_head

    def assign_task(
        self, *, task_code: str, name: str, amount: Decimal, reference: str, actor: str
    ) -> bool:
        require_text(name, "任务名称", "a task name")
        require_text(reference, "下达依据", "the assigning document")
        _require_yuan(amount, "任务金额", "task amount")
        if self.tasks.get(task_code) == (name, amount, reference):
            return False
        self._task_assigned(
            task_code=task_code, name=name, amount=amount, reference=reference, actor=actor
        )
        return True

    @event(DirectiveTaskAssigned)
    def _task_assigned(
        self, task_code: str, name: str, amount: Decimal, reference: str, actor: str
    ) -> None:
        self.tasks[task_code] = (name, amount, reference)

    def complete_task(self, *, task_code: str, completion: Decimal, actor: str) -> bool:
        if task_code not in self.tasks:
            raise InvalidValue(
                f"任务 {task_code} 尚未下达", f"task {task_code} has not been assigned"
            )
        if not Decimal(0) <= completion <= Decimal(1) or decimal_places(completion) > 4:
            raise InvalidValue(
                f"完成比例须在 0–1 之间，最多 4 位小数：{completion}",
                f"completion must be 0–1 with at most 4 places: {completion}",
            )
        if self.completion.get(task_code) == completion:
            return False
        self._task_completed(task_code=task_code, completion=completion, actor=actor)
        return True

    @event(DirectiveTaskCompleted)
    def _task_completed(self, task_code: str, completion: Decimal, actor: str) -> None:
        self.completion[task_code] = completion

    # ---- performance pay (docs/performance.md) -------------------------------------------

    def approve_pool(
        self, *, pool: Decimal, reward_share: Decimal, reference: str, actor: str
    ) -> bool:
        """The approved performance-pay total; the minimum reward share is policy (checked
        where the policy is known: the loader and the distribution)."""
        _require_yuan(pool, "绩效工资总量", "performance-pay total")
        _require_ratio(reward_share, "奖励性绩效占比", "reward share")
        reference = require_text(reference, "核定依据", "the approving document")
        if self.pool == (pool, reward_share, reference):
            return False
        self._pool_approved(pool=pool, reward_share=reward_share, reference=reference, actor=actor)
        return True

    @event(PoolApproved)
    def _pool_approved(
        self, pool: Decimal, reward_share: Decimal, reference: str, actor: str
    ) -> None:
        self.pool = (pool, reward_share, reference)

    def report_surplus(self, *, surplus: Decimal, share: Decimal, actor: str) -> bool:
        _require_yuan(surplus, "收支结余", "surplus")
        _require_ratio(share, "结余再分配比例", "redistributed share")
        if self.surplus == (surplus, share):
            return False
        self._surplus_reported(surplus=surplus, share=share, actor=actor)
        return True

    @event(SurplusReported)
    def _surplus_reported(self, surplus: Decimal, share: Decimal, actor: str) -> None:
        self.surplus = (surplus, share)

    def name_director(self, *, staff_id: str, actor: str) -> bool:
        if self.director == staff_id:
            return False
        self._director_named(staff_id=require_text(staff_id, "院长工号", "a staff id"), actor=actor)
        return True

    @event(DirectorNamed)
    def _director_named(self, staff_id: str, actor: str) -> None:
        self.director = staff_id


OUTSIDE_KINDS: Final = MappingProxyType(
    {
        "family_doctor_fee": "家庭医生签约服务费",
        "epidemic_allowance": "公卫医生防疫补贴",
        "director_salary": "院长（主任）年薪",
    }
)
"""Amounts paid outside the performance-pay total (诸暨方案 二(四)2: fees and allowances
「不纳入绩效工资总量」; 「院长（主任）年薪在单位绩效工资总量外单列核定」)."""


class StaffYear(Aggregate):
    """One staff member's performance-pay inputs for a year (docs/performance.md)."""

    class Opened(Aggregate.Created):
        staff_id: str
        year: int
        actor: str

    class Assessed(Aggregate.Event):
        """个人考核系数 (personal assessment coefficient) for the year."""

        coefficient: Decimal
        reference: str
        actor: str

    class OutsideItemRecorded(Aggregate.Event):
        """An amount paid outside the pool (家庭医生签约服务费, 公卫医生防疫补贴)."""

        kind: str
        amount: Decimal
        reference: str
        actor: str

    @staticmethod
    def create_id(staff_id: str, year: int, **_: Any) -> UUID:
        return ids.staff_year_id(staff_id, year)

    @event(Opened)
    def __init__(self, staff_id: str, year: int, actor: str) -> None:
        self.staff_id = staff_id
        self.year = year
        self.coefficient: tuple[Decimal, str] | None = None
        self.outside: dict[str, tuple[Decimal, str]] = {}

    @classmethod
    def open(cls, *, staff_id: str, year: int, actor: str) -> StaffYear:
        return cls(staff_id=staff_id, year=year, actor=actor)

    def assess(self, *, coefficient: Decimal, reference: str, actor: str) -> bool:
        if not coefficient.is_finite() or not Decimal(0) <= coefficient <= Decimal(5):
            raise InvalidValue(
                f"个人考核系数须在 0–5 之间：{coefficient}",
                f"a personal coefficient must be 0–5: {coefficient}",
            )
        reference = require_text(reference, "考核依据", "an assessment reference")
        if self.coefficient == (coefficient, reference):
            return False
        self._assessed(coefficient=coefficient, reference=reference, actor=actor)
        return True

    @event(Assessed)
    def _assessed(self, coefficient: Decimal, reference: str, actor: str) -> None:
        self.coefficient = (coefficient, reference)

    def record_outside_item(
        self, *, kind: str, amount: Decimal, reference: str, actor: str
    ) -> bool:
        if kind not in OUTSIDE_KINDS:
            raise InvalidValue(
                f"未知的总量外项目：{kind}（可选：{', '.join(OUTSIDE_KINDS)}）",
                f"unknown item outside the total: {kind} (one of {', '.join(OUTSIDE_KINDS)})",
            )
        _require_yuan(amount, "金额", "amount")
        reference = require_text(reference, "依据", "a reference")
        if self.outside.get(kind) == (amount, reference):
            return False
        self._outside(kind=kind, amount=amount, reference=reference, actor=actor)
        return True

    @event(OutsideItemRecorded)
    def _outside(self, kind: str, amount: Decimal, reference: str, actor: str) -> None:
        self.outside[kind] = (amount, reference)


class ForceMajeure(Aggregate):
    """不可抗力认定: months declared affected (epidemic etc.), for some or all institutions.

    诸暨方案 二(四)3：「因疫情等不可抗因素造成的工作当量下降，参照上一年度予以补足」.
    """

    class Declared(Aggregate.Created):
        code: str
        first_month: date
        last_month: date
        institutions: list[str]  # empty: every institution of the county
        reason: str
        reference: str
        actor: str

    class Amended(Aggregate.Event):
        first_month: date
        last_month: date
        institutions: list[str]
        reason: str
        reference: str
        actor: str

    @staticmethod
    def create_id(code: str, **_: Any) -> UUID:
        return ids.force_majeure_id(code)

    @event(Declared)
    def __init__(
        self,
        code: str,
        first_month: date,
        last_month: date,
        institutions: list[str],
        reason: str,
        reference: str,
        actor: str,
    ) -> None:
        self.code = code
        self._set(first_month, last_month, institutions, reason, reference)

    @classmethod
    def declare(
        cls,
        *,
        code: str,
        first_month: date,
        last_month: date,
        institutions: list[str],
        reason: str,
        reference: str,
        actor: str,
    ) -> ForceMajeure:
        _check_declaration(first_month, last_month, reason, reference)
        return cls(
            code=code,
            first_month=first_month,
            last_month=last_month,
            institutions=sorted(institutions),
            reason=reason,
            reference=reference,
            actor=actor,
        )

    def amend(
        self,
        *,
        first_month: date,
        last_month: date,
        institutions: list[str],
        reason: str,
        reference: str,
        actor: str,
    ) -> bool:
        _check_declaration(first_month, last_month, reason, reference)
        new = (first_month, last_month, sorted(institutions), reason, reference)
        old = (self.first_month, self.last_month, self.institutions, self.reason, self.reference)
        if new == old:
            return False
        self._amended(
            first_month=first_month,
            last_month=last_month,
            institutions=sorted(institutions),
            reason=reason,
            reference=reference,
            actor=actor,
        )
        return True

    @event(Amended)
    def _amended(
        self,
        first_month: date,
        last_month: date,
        institutions: list[str],
        reason: str,
        reference: str,
        actor: str,
    ) -> None:
        self._set(first_month, last_month, institutions, reason, reference)

    def _set(
        self,
        first_month: date,
        last_month: date,
        institutions: list[str],
        reason: str,
        reference: str,
    ) -> None:
        self.first_month = first_month
        self.last_month = last_month
        self.institutions = list(institutions)
        self.reason = reason
        self.reference = reference


def _check_declaration(first: date, last: date, reason: str, reference: str) -> None:
    require_first_of_month(first)
    require_first_of_month(last)
    if last < first:
        raise InvalidValue("截止月份早于起始月份", "last_month is before first_month")
    require_text(reason, "认定原因", "a reason")
    require_text(reference, "认定依据（文号）", "the declaring document")


def _require_yuan(amount: Decimal, what_zh: str, what_en: str) -> None:
    if not amount.is_finite() or amount < 0 or decimal_places(amount) > 2:
        raise InvalidValue(
            f"{what_zh}须为非负金额，最多 2 位小数：{amount}",
            f"{what_en} must be a non-negative amount in yuan with at most 2 places: {amount}",
        )


def _require_ratio(value: Decimal, what_zh: str, what_en: str) -> None:
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(1) or decimal_places(value) > 4:
        raise InvalidValue(
            f"{what_zh}须在 0–1 之间，最多 4 位小数：{value}",
            f"{what_en} must be 0–1 with at most 4 places: {value}",
        )

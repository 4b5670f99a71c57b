"""Rule sets (规则版本): which code computes a run's figures, pinned so a run replays for ever.

Each of the three run pipelines has numbered versions of its whole computation — from the log
at a position to the results a run records (inputs gathered, rule steps, advances paid,
adjustments for closed periods and their totals):

- `compensation` — institution subsidies (机构补偿): monthly advances and the year-end
  settlement (`payouts.runs.compute_run` → `calculation.compensation` → `policy.subsidy*`);
- `performance` — staff pay (绩效工资分配): distribution runs (`calculation.performance` →
  `policy.distribution*`);
- `insurance` — the medical-insurance fund (医保基金): advances and settlements to medical
  communities (`payouts.insurance_runs.compute_run` → `calculation.fund` → `policy.insurance*`).

A run records the version it was computed with (`PayoutPeriod.RunComputed.rule_set`); a
replay computes with that version, never with whatever is current. A change that alters any
figure a run records is a new version: the old steps are kept under the old version (frozen,
never edited again), the new version is registered and made current, and new runs record it —
docs/payouts.md, "Rule versions (规则版本)". The golden replay corpus in `tests/golden/`
replays runs recorded under every version on every CI run, to the fen.

The registry lives here, in `payouts`, because two of the three entry points a version pins
(`runs.compute_run`, `insurance_runs.compute_run`) are in this layer; the third
(`calculation.performance.compute_run`) is below it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from dangliang.calculation import performance
from dangliang.domain.errors import DomainError
from dangliang.domain.periods import Period
from dangliang.payouts import insurance_runs, runs
from dangliang.projections.equivalents import EquivalentsTables

ComputeRun = Callable[[Connection, EquivalentsTables, Period, int], dict[str, Any]]
"""(connection, equivalents tables, period, log position) → the results a run records."""

PIPELINES = ("compensation", "performance", "insurance")
"""The pipelines, named as the ledgers of their runs (`PayoutPeriod`'s `ledger_of`)."""

PIPELINES_ZH = {"compensation": "机构补偿", "performance": "绩效工资分配", "insurance": "医保基金"}

FIRST = "1"
"""The version of every run recorded before runs recorded their rule set."""


class UnknownRuleSet(DomainError):
    """A run names a rule-set version this software does not have: it is refused, never
    computed with another version."""


@dataclass(frozen=True)
class RuleSet:
    """One version of a pipeline: the function that computes a run's results, and what it is."""

    pipeline: str
    version: str
    compute_run: ComputeRun
    since: str
    """When it became current (software version and date)."""
    summary: str
    """What it computes, bilingual: `中文 / English`."""
    clauses: tuple[str, ...]
    """The policy documents and clauses its steps implement (titles, never file names)."""

    @property
    def label(self) -> str:
        """`compensation v1`."""
        return label(self.pipeline, self.version)


def label(pipeline: str, version: str) -> str:
    return f"{pipeline} v{version}"


_VERSIONS: dict[str, dict[str, RuleSet]] = {p: {} for p in PIPELINES}
_CURRENT: dict[str, str] = {}


def register(rule_set: RuleSet, *, current: bool = False) -> RuleSet:
    """Add a version (a version number is never reused); `current`: new runs record it."""
    if rule_set.pipeline not in _VERSIONS:
        raise ValueError(f"unknown pipeline {rule_set.pipeline!r}; one of {PIPELINES}")
    versions = _VERSIONS[rule_set.pipeline]
    if rule_set.version in versions:
        raise ValueError(f"{rule_set.label} is already registered: a version is never reused")
    versions[rule_set.version] = rule_set
    if current:
        _CURRENT[rule_set.pipeline] = rule_set.version
    return rule_set


def current(pipeline: str) -> RuleSet:
    """The version new runs of `pipeline` are computed with and record."""
    return rule_set(pipeline, _CURRENT[pipeline])


def rule_set(pipeline: str, version: str) -> RuleSet:
    """A registered version; refused (UnknownRuleSet) when this software does not have it."""
    found = _VERSIONS.get(pipeline, {}).get(version)
    if found is None:
        known = ", ".join(f"v{v}" for v in _VERSIONS.get(pipeline, {})) or "—"
        raise UnknownRuleSet(
            f"本软件没有规则版本 {label(pipeline, version)}（已有：{known}）：该批次不能按其"
            "记录的规则复算，也不会改用其他版本；请使用含该版本的软件",
            f"this software has no rule set {label(pipeline, version)} (it has: {known}): "
            "the run cannot be recomputed with the rules it recorded, and no other version is "
            "used instead; use software that has that version",
        )
    return found


def versions(pipeline: str) -> dict[str, RuleSet]:
    """Every registered version of `pipeline`, oldest first."""
    return dict(_VERSIONS[pipeline])


# ---- the versions ---------------------------------------------------------------------------
# A version, once runs are recorded under it, computes exactly what it computed then. To change
# a figure: freeze what changes under the old version (e.g. `compute_run_v1` calling the old
# steps kept beside the new ones), register the new version as current. Never edit a version.

ZHUJI = "诸暨方案 二(四)2、二(四)3"
ZHIJIANG = "枝江市卫生计生局《推进市镇村一体化发展 奋力打造基层卫生综合改革示范市》(2017)"
DEQING = "德清县卫生健康局《持续创新、深化拓展 推进基层卫生健康事业高质量发展》(2024)"

register(
    RuleSet(
        pipeline="compensation",
        version="1",
        compute_run=runs.compute_run,
        since="dangliang 0.1.0 (2026-11), and every compensation run before runs named their rules",
        summary=(
            "按月预拨与年终清算：工作当量、增长上限、不可抗力补足、单价或点值、考核系数、收入"
            "抵扣、指令性任务、边缘乡镇调节、年终考核奖（财政部分）、预拨与清算（年终清算按已付"
            "预拨），已结期间的调整及其原因 / monthly advances and the year-end settlement: "
            "equivalents, growth cap, force-majeure top-up, unit price or point value, "
            "assessment coefficient, income offset, directive tasks, remote-township "
            "adjustment, year-end bonus (finance share), advances and settlement (against the "
            "advances paid), adjustments for closed periods with their causes "
            "(docs/compensation.md steps 1–11)"
        ),
        clauses=(ZHUJI,),
    ),
    current=True,
)

register(
    RuleSet(
        pipeline="performance",
        version="1",
        compute_run=performance.compute_run,
        since="dangliang 0.1.0 (2026-11), and every distribution run before runs named their rules",
        summary=(
            "机构内绩效工资分配：总量拆分、结余分配、权重（当量×个人系数×岗位系数×在岗月数）、"
            "基础与奖励部分、保底、总量外项目、年终奖；年度按月度暂发差额 / performance pay "
            "inside institutions: pool split, surplus, weights (equivalents × personal × post "
            "coefficient × months in post), base and reward parts, floors, items outside the "
            "total, year-end bonus; the year against the monthly provisional runs paid "
            "(docs/performance.md steps 1–8)"
        ),
        clauses=("诸暨方案 二(四)2", f"{ZHIJIANG} 3.「待遇留」"),
    ),
    current=True,
)

register(
    RuleSet(
        pipeline="insurance",
        version="1",
        compute_run=insurance_runs.compute_run,
        since="dangliang 0.1.0 (2026-11), and every fund run before runs named their rules",
        summary=(
            "医保基金按月/按季预拨与年终结算（德清规则或枝江规则，由政策参数 rule 选定），"
            "已结算年度的调整及其原因 / the fund's monthly or quarterly advances and the "
            "year-end settlement (the De Qing or the Zhijiang rule, as the policy's `rule` "
            "says), adjustments for settled years with their causes (docs/insurance.md)"
        ),
        clauses=(DEQING, ZHIJIANG),
    ),
    current=True,
)

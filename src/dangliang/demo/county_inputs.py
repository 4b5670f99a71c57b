"""The synthetic county's input files for the demo generator (`generator.py`): the
compensation inputs (assessment scores, medical-service income, pay levels, directive tasks,
a force-majeure declaration) and the performance-pay inputs (docs/performance.md: approved pools,
personal coefficients, amounts outside the pool), as rows of text. All values are
illustrative.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import date

from dangliang.demo.county_reference import Institution, Staff

# --- compensation inputs (all illustrative) ----------------------------------------------

INPUT_FILES = {  # format name → file name
    "scores": "assessment_scores.csv",
    "income": "medical_income.csv",
    "pay_levels": "pay_levels.csv",
    "tasks": "directive_tasks.csv",
    "force_majeure": "force_majeure.csv",
}
ASSESSMENT_REFERENCE = "{year}年度综合考核结果（示例） / illustrative assessment result"
# Scores in tenths: most institutions 75.0–98.0; one or two centres (never a remote one, so
# the remote-township adjustment still shows) fail the pass mark of 60 (zhuji.yaml).
PASSING_SCORES = (750, 980)
FAILING_SCORES = (480, 595)
# Monthly medical-service income (excluding drugs) per establishment head, yuan.
INCOME_PER_HEAD = (9_000, 16_000)
# 在编人均年收入 against the illustrative benchmark of 150,000 (remote_adjustment in
# zhuji.yaml, adjustment within 10%–30% of it): the first remote centre is slightly below
# (gap < 10%: the adjustment is raised to the 10% floor), the second far below (gap > 30%:
# cut to the 30% ceiling); the other centres lie around the benchmark.
PAY_BENCHMARK = 150_000
PAY_SLIGHTLY_BELOW = (142_000, 148_000)
PAY_FAR_BELOW = (88_000, 100_000)
PAY_OTHERS = (138_000, 186_000)
# (name, amount range in yuan, how many centres) of the directive tasks (指令性任务).
DIRECTIVE_TASKS: tuple[tuple[str, tuple[int, int], int], ...] = (
    ("疫情防控", (80_000, 200_000), 2),
    ("对口支援", (50_000, 120_000), 1),
    ("突发公共卫生事件处置", (30_000, 100_000), 1),
    ("重大公共卫生服务项目：两癌筛查", (40_000, 90_000), 1),
)
TASK_PARTIAL_COMPLETION = ("0.6", "0.75", "0.8")  # of one task; the others are done in full
TASK_REFERENCE = "县卫健局任务下达文件 {year}-{n}（示例） / illustrative directive"
FORCE_MAJEURE_REASON = (
    "突发疫情，门诊与住院量骤降（示例） / illustrative: epidemic, services collapsed"
)
FORCE_MAJEURE_REFERENCE = "县政府不可抗力认定 {year}-1（示例） / illustrative declaration"

# --- performance-pay inputs (docs/performance.md, all illustrative) -------------------------------

PERFORMANCE_FILES = {  # format name → file name
    "pools": "performance_pools.csv",
    "staff_coefficients": "staff_coefficients.csv",
    "outside_items": "outside_items.csv",
}
# Yearly pool per establishment head of a centre, and per village doctor of a clinic, yuan.
POOL_PER_HEAD_CENTRE = (60_000, 90_000)
POOL_PER_HEAD_CLINIC = (35_000, 60_000)
REWARD_SHARE_PERCENT = (60, 70)  # never below performance_pay.min_reward_share (0.60)
CENTRE_SURPLUS = (200_000, 1_200_000)
SURPLUS_SHARE_PERCENT = (40, 45, 50, 55, 60)  # within surplus_share_min/_max (0.40–0.60)
POOL_REFERENCE = "县人社局、财政局、卫健局 {year}年度绩效工资总量核定（示例） / illustrative"
DIRECTOR_POSTS = ("clinical", "admin")
COEFFICIENT_HUNDREDTHS = (80, 120)
COEFFICIENT_REFERENCE = "{year}年度个人绩效考核结果（示例） / illustrative personal assessment"
FAMILY_DOCTOR_FEE = (3_000, 15_000)  # yuan a year, by the hundred
FAMILY_DOCTOR_CLINICAL_SHARE = 0.4  # of centre clinical staff who have signed families
EPIDEMIC_ALLOWANCE = (2_000, 8_000)
DIRECTOR_SALARY = (180_000, 260_000)  # 院长年薪, yuan a year, by the hundred
OUTSIDE_REFERENCE = {
    "family_doctor_fee": "{year}年度家庭医生签约服务费结算（示例） / illustrative",
    "epidemic_allowance": "{year}年度公卫医生防疫补贴（示例） / illustrative",
    "director_salary": "{year}年度院长年薪核定（示例） / illustrative",
}


# --- compensation inputs ----------------------------------------------------------------


def score_rows(
    rng: random.Random, institutions: Sequence[Institution], year: int
) -> list[list[str]]:
    """综合考核得分 of every centre and clinic; one or two non-remote centres fail."""
    candidates = [i.code for i in institutions if not i.parent_code and not i.remote]
    failing = set(rng.sample(candidates, rng.randint(1, 2)))
    reference = ASSESSMENT_REFERENCE.format(year=year)
    rows: list[list[str]] = []
    for inst in institutions:
        tenths = rng.randint(*(FAILING_SCORES if inst.code in failing else PASSING_SCORES))
        rows.append([inst.code, str(year), f"{tenths // 10}.{tenths % 10}", reference])
    return rows


def income_rows(
    rng: random.Random,
    centres: Sequence[Institution],
    headcount: Sequence[Sequence[str]],
    year: int,
    last_month: int,
) -> list[list[str]]:
    """医疗服务收入（不含药品） of every centre for each month up to `last_month`, to the fen;
    busier in the winter months. Integer arithmetic, so the amounts are exact everywhere."""
    heads = {row[0]: int(row[2]) for row in headcount if row[1] == str(year)}
    rows: list[list[str]] = []
    for centre in centres:
        per_head = rng.randint(*INCOME_PER_HEAD)
        for month in range(1, last_month + 1):
            season = 110 if month in (1, 2, 12) else 100
            fen = heads[centre.code] * per_head * season * rng.randint(90, 110)
            fen //= 100  # yuan × 100 × 100 / 100 / 100 = fen
            rows.append([centre.code, f"{year}-{month:02d}", f"{fen // 100}.{fen % 100:02d}"])
    return rows


def pay_level_rows(
    rng: random.Random, centres: Sequence[Institution], year: int
) -> list[list[str]]:
    """在编人均年收入 of every centre: the remote ones below the benchmark (see PAY_*)."""
    remote = [c.code for c in centres if c.remote]
    ranges = dict(zip(remote, (PAY_SLIGHTLY_BELOW, PAY_FAR_BELOW), strict=False))
    rows: list[list[str]] = []
    for centre in centres:
        low, high = ranges.get(centre.code, PAY_OTHERS)
        rows.append([centre.code, str(year), str(rng.randint(low // 10, high // 10) * 10)])
    return rows


def task_rows(rng: random.Random, centres: Sequence[Institution], year: int) -> list[list[str]]:
    """A handful of directive tasks on some centres, all but one completed in full."""
    rows: list[list[str]] = []
    codes = [c.code for c in centres]
    for n, (name, (low, high), count) in enumerate(DIRECTIVE_TASKS, start=1):
        for centre in sorted(rng.sample(codes, count)):
            rows.append(
                [
                    centre,
                    str(year),
                    f"ZL{year}-{n:02d}",
                    f"{name}（示例）",
                    str(rng.randint(low // 1000, high // 1000) * 1000),
                    TASK_REFERENCE.format(year=year, n=n),
                    "1",
                ]
            )
    rng.choice(rows)[-1] = rng.choice(TASK_PARTIAL_COMPLETION)
    return rows


def force_majeure_rows(
    rng: random.Random, centres: Sequence[Institution], year: int, last_month: int
) -> list[list[str]]:
    """One declaration: two consecutive months (within the generated months when there are
    two), two or three centres."""
    first = rng.randint(1, max(1, min(11, last_month - 1)))
    affected = sorted(rng.sample([c.code for c in centres], rng.randint(2, 3)))
    return [
        [
            f"FM{year}-01",
            f"{year}-{first:02d}",
            f"{year}-{first + 1:02d}",
            ";".join(affected),
            FORCE_MAJEURE_REASON,
            FORCE_MAJEURE_REFERENCE.format(year=year),
        ]
    ]


# --- performance-pay inputs ------------------------------------------------------------


def pool_rows(
    rng: random.Random,
    institutions: Sequence[Institution],
    headcount: Sequence[Sequence[str]],
    staff: Sequence[Staff],
    year: int,
) -> list[list[str]]:
    """绩效工资总量 of every centre and clinic: reward share 0.60–0.70; each centre also has a
    surplus with a share of 0.40–0.60 and a director among its on-establishment staff who are
    in post all year (clinical or admin when there is one)."""
    heads = {row[0]: int(row[2]) for row in headcount if row[1] == str(year)}
    doctors: dict[str, int] = {}
    for s in staff:
        doctors[s.institution_code] = doctors.get(s.institution_code, 0) + 1
    new_year = date(year, 1, 1)
    reference = POOL_REFERENCE.format(year=year)
    rows: list[list[str]] = []
    for inst in institutions:
        centre = not inst.parent_code
        low, high = POOL_PER_HEAD_CENTRE if centre else POOL_PER_HEAD_CLINIC
        people = heads[inst.code] if centre else doctors.get(inst.code, 1)
        pool = people * rng.randint(low // 100, high // 100) * 100
        share = f"0.{rng.randint(*REWARD_SHARE_PERCENT)}"
        surplus = surplus_share = director = ""
        if centre:
            surplus = str(rng.randint(CENTRE_SURPLUS[0] // 1000, CENTRE_SURPLUS[1] // 1000) * 1000)
            surplus_share = f"0.{rng.choice(SURPLUS_SHARE_PERCENT)}"
            on = [
                s
                for s in staff
                if s.institution_code == inst.code
                and s.establishment == "on"
                and s.from_date <= new_year
                and s.to_date is None
            ]
            preferred = [s for s in on if s.post in DIRECTOR_POSTS] or on
            director = rng.choice(preferred).staff_id if preferred else ""
        rows.append(
            [inst.code, str(year), str(pool), share, surplus, surplus_share, director, reference]
        )
    return rows


def coefficient_rows(rng: random.Random, staff: Sequence[Staff], year: int) -> list[list[str]]:
    """个人考核系数 of every staff member, 0.80–1.20."""
    reference = COEFFICIENT_REFERENCE.format(year=year)
    rows: list[list[str]] = []
    for s in staff:
        hundredths = rng.randint(*COEFFICIENT_HUNDREDTHS)
        coefficient = f"{hundredths // 100}.{hundredths % 100:02d}"
        rows.append([s.staff_id, str(year), coefficient, reference])
    return rows


def outside_rows(
    rng: random.Random, staff: Sequence[Staff], year: int, directors: set[str]
) -> list[list[str]]:
    """Amounts outside the pool: a family-doctor fee for every village doctor and some
    centre clinical staff, an epidemic allowance for public-health staff, each director's
    annual salary."""
    rows: list[list[str]] = []
    for s in staff:
        kinds: list[tuple[str, tuple[int, int]]] = []
        if s.staff_id in directors:
            kinds.append(("director_salary", DIRECTOR_SALARY))
        if s.post == "village_doctor" or (
            s.post == "clinical" and rng.random() < FAMILY_DOCTOR_CLINICAL_SHARE
        ):
            kinds.append(("family_doctor_fee", FAMILY_DOCTOR_FEE))
        if s.post == "public_health":
            kinds.append(("epidemic_allowance", EPIDEMIC_ALLOWANCE))
        for kind, (low, high) in kinds:
            amount = rng.randint(low // 100, high // 100) * 100
            reference = OUTSIDE_REFERENCE[kind].format(year=year)
            rows.append([s.staff_id, str(year), kind, str(amount), reference])
    return rows

"""A deterministic synthetic county for demos, tests and benchmarks (示例县数据生成器).

ALL DATA WRITTEN BY THIS MODULE IS SYNTHETIC. The county is shaped like De Qing (德清县:
12 centres, 127 village clinics [seed 000]) and uses its real township and street names so
the demo reads naturally, but every institution code, headcount, person, name, catalogue
value and service record is invented. No equivalent value here is official: each catalogue
row says "示例数值，非官方 / illustrative value, not official".

One `random.Random(seed)` drives the county, so the same arguments give byte-identical files
(the XLSX variant too: its zip timestamps and document dates are pinned). Service rows are
streamed out day by day in chunks, so memory does not grow with the number of records; the
per-row work is a few `random()` calls and `bisect`s over pools prepared beforehand.

The compensation inputs (assessment scores, medical-service income, pay levels, directive
tasks, a force-majeure declaration) come from a second generator seeded from the same seed,
so they leave every other file exactly as it was; the performance-pay inputs (approved pools,
personal coefficients, amounts outside the pool) from a third, for the same reason.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import zipfile
from bisect import bisect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import IO, TypeVar

from dangliang.importers.formats import (
    CATALOGUE,
    FORCE_MAJEURE,
    HEADCOUNT,
    INCOME,
    INSTITUTIONS,
    OUTSIDE_ITEMS,
    PAY_LEVELS,
    POOLS,
    SCORES,
    SERVICES,
    STAFF,
    STAFF_COEFFICIENTS,
    TASKS,
    FileFormat,
)

SERVICES_FORMATS = ("csv", "csv-bom", "csv-gb18030", "xlsx", "jsonl")
PROGRESS_EVERY = 10_000

ILLUSTRATIVE = "示例数值，非官方 / illustrative value, not official"
WEAK_ITEM_REFERENCE = (
    "诸暨：提高长处方等薄弱项目当量值（示例） / illustrative, after Zhuji [seed 002]"
)


@dataclass(frozen=True)
class GeneratedCounty:
    """What `generate` wrote: counts and the path of every file (keyed by format name)."""

    out_dir: Path
    institutions: int
    village_clinics: int
    staff: int
    items: int
    records: int
    files: dict[str, Path]


# --- the county -------------------------------------------------------------------------

# (township or street, kind, remote). Two street centres are community health service
# centres; the other two streets keep a 卫生院 in this synthetic county. 莫干山镇 (mountains)
# and 洛舍镇 are flagged 边缘乡镇 (remote).
CENTRES: tuple[tuple[str, str, bool], ...] = (
    ("乾元镇", "township_health_centre", False),
    ("新市镇", "township_health_centre", False),
    ("武康街道", "community_health_centre", False),
    ("阜溪街道", "township_health_centre", False),
    ("舞阳街道", "community_health_centre", False),
    ("下渚湖街道", "township_health_centre", False),
    ("洛舍镇", "township_health_centre", True),
    ("钟管镇", "township_health_centre", False),
    ("禹越镇", "township_health_centre", False),
    ("新安镇", "township_health_centre", False),
    ("雷甸镇", "township_health_centre", False),
    ("莫干山镇", "township_health_centre", True),
)
VILLAGE_CLINICS = 127
CLINICS_WITH_TWO_DOCTORS = 64
COUNTY_HEADCOUNT = 420  # centres' establishment this year, ~35 a centre
CENTRE_SUFFIX = {"township_health_centre": "卫生院", "community_health_centre": "社区卫生服务中心"}
VILLAGE_FIRST = "东西南北上下前后新高安永和金青白龙凤双桥沈杨三五大小洪塘"
VILLAGE_SECOND = "桥山塘港湾坞溪圩浜庄田林墩埭口湖岭里"

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜钟陆汪范金石钱严孔戴莫费闻施俞褚"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红玉兰文斌浩宇晨晓婷琳雪峰海燕飞鹏辉亮"

# Share of centre staff by post, and records per working day per person (before a personal
# factor of 0.6–1.4). Admin and IT staff produce a few archive records only.
CENTRE_POSTS: tuple[tuple[str, int], ...] = (
    ("clinical", 35),
    ("nursing", 30),
    ("public_health", 15),
    ("medical_tech", 8),
    ("pharmacy", 5),
    ("admin", 5),
    ("it", 2),
)
POST_ACTIVITY = {
    "clinical": 1.6,
    "nursing": 1.3,
    "public_health": 1.2,
    "medical_tech": 1.0,
    "pharmacy": 1.2,
    "admin": 0.08,
    "it": 0.03,
    "village_doctor": 1.1,
}

# --- the catalogue ----------------------------------------------------------------------

# (code, name, unit, equivalent value, largest quantity per record). Illustrative values.
BASIC_MEDICAL: tuple[tuple[str, str, str, str, int], ...] = (
    ("BM001", "普通门诊诊疗", "人次", "1.0000", 1),
    ("BM002", "急诊诊疗", "人次", "1.5000", 1),
    ("BM003", "中医门诊诊疗", "人次", "1.2000", 1),
    ("BM004", "全科医生门诊诊疗", "人次", "1.1000", 1),
    ("BM005", "出诊（上门诊疗）", "次", "2.5000", 1),
    ("BM006", "长处方", "张", "0.8000", 1),
    ("BM007", "处方调剂", "张", "0.2000", 1),
    ("BM008", "住院床日", "床日", "3.0000", 10),
    ("BM009", "住院诊查", "床日", "0.8000", 10),
    ("BM010", "一级手术", "台", "8.0000", 1),
    ("BM011", "二级手术", "台", "15.0000", 1),
    ("BM012", "三级手术", "台", "30.0000", 1),
    ("BM013", "清创缝合", "次", "2.0000", 1),
    ("BM014", "一级护理", "床日", "1.5000", 10),
    ("BM015", "二级护理", "床日", "1.0000", 10),
    ("BM016", "三级护理", "床日", "0.6000", 10),
    ("BM017", "静脉输液", "次", "0.5000", 1),
    ("BM018", "肌内注射", "次", "0.2000", 1),
    ("BM019", "换药", "次", "0.6000", 1),
    ("BM020", "导尿", "次", "0.8000", 1),
    ("BM021", "中医适宜技术：针刺", "次", "1.5000", 1),
    ("BM022", "中医适宜技术：艾灸", "次", "1.2000", 1),
    ("BM023", "中医适宜技术：推拿", "次", "1.5000", 1),
    ("BM024", "中医适宜技术：拔罐", "次", "0.8000", 1),
    ("BM025", "中医适宜技术：中药熏蒸", "次", "1.0000", 1),
    ("BM026", "血常规检验", "项", "0.3000", 3),
    ("BM027", "生化检验", "项", "0.5000", 3),
    ("BM028", "心电图检查", "次", "0.6000", 1),
    ("BM029", "B超检查", "次", "1.2000", 1),
    ("BM030", "DR摄片", "次", "1.0000", 1),
    ("BM031", "康复治疗", "次", "1.5000", 1),
    ("BM032", "家庭病床巡诊", "次", "2.0000", 1),
    ("BM033", "雾化吸入", "次", "0.4000", 1),
    ("BM034", "院前急救出车", "次", "4.0000", 1),
    ("BM035", "口腔治疗", "次", "1.5000", 1),
)
BASIC_PUBLIC_HEALTH: tuple[tuple[str, str, str, str, int], ...] = (
    ("PH001", "居民健康档案建档", "份", "0.5000", 1),
    ("PH002", "居民健康档案更新", "份", "0.2000", 1),
    ("PH003", "健康教育讲座", "次", "3.0000", 1),
    ("PH004", "公众健康咨询活动", "次", "2.0000", 1),
    ("PH005", "预防接种", "剂次", "0.5000", 2),
    ("PH006", "0-6岁儿童健康管理", "人次", "1.0000", 1),
    ("PH007", "新生儿家庭访视", "人次", "1.5000", 1),
    ("PH008", "孕产妇健康管理", "人次", "1.2000", 1),
    ("PH009", "产后访视", "人次", "1.5000", 1),
    ("PH010", "老年人健康体检", "人次", "2.0000", 1),
    ("PH011", "老年人中医药健康管理", "人次", "0.8000", 1),
    ("PH012", "高血压患者随访", "人次", "0.6000", 1),
    ("PH013", "糖尿病患者随访", "人次", "0.6000", 1),
    ("PH014", "严重精神障碍患者随访", "人次", "1.0000", 1),
    ("PH015", "肺结核患者管理", "人次", "1.0000", 1),
    ("PH016", "0-36月儿童中医药健康管理", "人次", "0.6000", 1),
    ("PH017", "传染病报告与处理", "例", "1.0000", 1),
    ("PH018", "卫生监督协管巡查", "次", "1.5000", 1),
    ("PH019", "家庭医生签约", "人", "1.0000", 1),
    ("PH020", "家庭医生签约履约服务", "人次", "0.5000", 1),
    ("PH021", "高血压患者健康体检", "人次", "1.0000", 1),
    ("PH022", "糖尿病患者健康体检", "人次", "1.0000", 1),
    ("PH023", "老年人自理能力评估", "人次", "0.5000", 1),
    ("PH024", "慢阻肺患者健康管理", "人次", "0.8000", 1),
    ("PH025", "健康素养监测调查", "份", "0.5000", 1),
)
# Zhuji raises the values of weak items such as long prescriptions [seed 002]; the demo
# shows one mid-year change so that valid-time lookups are exercised.
WEAK_ITEM_CHANGE = ("BM006", "1.2000", 7)

# Which items each post records, with relative frequencies (outpatient visits common,
# surgery rare). Village doctors: simple outpatient work and public health.
# fmt: off
ITEM_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "clinical": (
        ("BM001", 40), ("BM004", 20), ("BM003", 5), ("BM002", 3), ("BM005", 1), ("BM006", 8),
        ("BM008", 3), ("BM009", 3), ("BM010", 0.5), ("BM011", 0.2), ("BM012", 0.05),
        ("BM013", 1), ("BM021", 2), ("BM022", 1), ("BM023", 1.5), ("BM024", 0.8),
        ("BM025", 0.5), ("BM031", 1), ("BM032", 0.5), ("BM034", 0.3), ("BM035", 1),
        ("PH011", 1), ("PH012", 3), ("PH013", 2), ("PH014", 0.3), ("PH016", 0.5),
        ("PH017", 0.3), ("PH019", 2), ("PH020", 3),
    ),
    "nursing": (
        ("BM014", 2), ("BM015", 3), ("BM016", 2), ("BM017", 12), ("BM018", 8), ("BM019", 6),
        ("BM020", 0.5), ("BM033", 4), ("PH005", 10), ("PH006", 3), ("PH007", 0.5),
        ("PH008", 1), ("PH009", 0.5), ("PH010", 2),
    ),
    "public_health": (
        ("PH001", 3), ("PH002", 8), ("PH003", 0.3), ("PH004", 0.3), ("PH005", 6), ("PH006", 4),
        ("PH007", 0.6), ("PH008", 1.5), ("PH009", 0.8), ("PH010", 6), ("PH011", 3),
        ("PH012", 10), ("PH013", 6), ("PH014", 1), ("PH015", 0.5), ("PH016", 1.5),
        ("PH017", 0.5), ("PH018", 1), ("PH019", 3), ("PH020", 5), ("PH021", 3), ("PH022", 2),
        ("PH023", 2), ("PH024", 1), ("PH025", 0.5),
    ),
    "medical_tech": (
        ("BM026", 10), ("BM027", 8), ("BM028", 6), ("BM029", 5), ("BM030", 4), ("PH010", 2),
    ),
    "pharmacy": (("BM007", 1),),
    "admin": (("PH002", 3), ("PH018", 1), ("PH025", 0.3)),
    "it": (("PH002", 1), ("PH025", 0.2)),
    "village_doctor": (
        ("BM001", 30), ("BM018", 4), ("BM019", 3), ("BM006", 5), ("BM005", 2), ("BM024", 1),
        ("BM021", 0.5), ("PH001", 2), ("PH002", 6), ("PH003", 0.3), ("PH004", 0.3),
        ("PH010", 2), ("PH011", 1), ("PH012", 12), ("PH013", 7), ("PH014", 0.5), ("PH019", 3),
        ("PH020", 6), ("PH021", 2), ("PH022", 1.5), ("PH024", 1),
    ),
}
# fmt: on
NON_COMPLIANT_SHARE = 0.03
MID_YEAR_SHARE = 0.03  # of centre staff joining, and again leaving, during the year


@dataclass(frozen=True)
class _Institution:
    code: str
    name: str
    kind: str
    parent_code: str
    remote: bool


@dataclass(frozen=True)
class _Staff:
    staff_id: str
    institution_code: str
    name: str
    post: str
    establishment: str
    from_date: date
    to_date: date | None
    activity: float


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

# --- performance-pay inputs (DOMAIN.md §5, all illustrative) -------------------------------

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


# --- public entry point -----------------------------------------------------------------


def generate(
    out_dir: Path,
    records: int,
    seed: int,
    year: int = 2024,
    services_format: str = "csv",
    progress: Callable[[int], None] | None = None,
) -> GeneratedCounty:
    """Write a synthetic county's reference files and `records` service records to out_dir.

    `services_format`: csv (UTF-8), csv-bom, csv-gb18030 (Chinese headers, as Chinese Excel
    saves it), xlsx or jsonl; the reference files are always UTF-8 CSV. `progress(n)` is told
    every ~10,000 service rows how many were written since its last call. Service dates never
    lie after today, so a run for the current year also depends on today's date; a year that
    has not started is refused.
    """
    if services_format not in SERVICES_FORMATS:
        raise ValueError(f"services_format must be one of {', '.join(SERVICES_FORMATS)}")
    if records < 0:
        raise ValueError("records must not be negative")
    days = _service_days(year, date.today())
    rng = random.Random(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    institutions = _institutions(rng)
    centres = [i for i in institutions if not i.parent_code]
    headcount = _headcount(rng, centres, year)
    staff = _staff(rng, institutions, headcount, year, days)
    catalogue = _catalogue_rows(year)

    files = {
        "institutions": out_dir / "institutions.csv",
        "headcount": out_dir / "headcount.csv",
        "staff": out_dir / "staff.csv",
        "catalogue": out_dir / "catalogue.csv",
        "services": out_dir / f"services.{_extension(services_format)}",
        **{name: out_dir / file for name, file in INPUT_FILES.items()},
        **{name: out_dir / file for name, file in PERFORMANCE_FILES.items()},
    }
    _write_csv(files["institutions"], INSTITUTIONS, _institution_rows(institutions))
    _write_csv(files["headcount"], HEADCOUNT, headcount)
    _write_csv(files["staff"], STAFF, _staff_rows(staff))
    _write_csv(files["catalogue"], CATALOGUE, catalogue)
    inputs_rng = random.Random(f"dangliang-inputs-{seed}")  # leaves `rng` as it was
    last_month = days[-1].month
    _write_csv(files["scores"], SCORES, _score_rows(inputs_rng, institutions, year))
    _write_csv(
        files["income"], INCOME, _income_rows(inputs_rng, centres, headcount, year, last_month)
    )
    _write_csv(files["pay_levels"], PAY_LEVELS, _pay_level_rows(inputs_rng, centres, year))
    _write_csv(files["tasks"], TASKS, _task_rows(inputs_rng, centres, year))
    _write_csv(
        files["force_majeure"],
        FORCE_MAJEURE,
        _force_majeure_rows(inputs_rng, centres, year, last_month),
    )
    performance_rng = random.Random(f"dangliang-performance-{seed}")  # leaves the others be
    pools = _pool_rows(performance_rng, institutions, headcount, staff, year)
    _write_csv(files["pools"], POOLS, pools)
    _write_csv(
        files["staff_coefficients"],
        STAFF_COEFFICIENTS,
        _coefficient_rows(performance_rng, staff, year),
    )
    directors = {row[6] for row in pools if row[6]}
    _write_csv(
        files["outside_items"],
        OUTSIDE_ITEMS,
        _outside_rows(performance_rng, staff, year, directors),
    )
    chunks = _service_chunks(rng, staff, days, records)
    _write_services(files["services"], services_format, chunks, progress)

    return GeneratedCounty(
        out_dir=out_dir,
        institutions=len(institutions),
        village_clinics=len(institutions) - len(centres),
        staff=len(staff),
        items=len(BASIC_MEDICAL) + len(BASIC_PUBLIC_HEALTH),
        records=records,
        files=files,
    )


# --- reference data ---------------------------------------------------------------------


def _service_days(year: int, today: date) -> list[date]:
    """Every day of the year on which services can lie: never after today."""
    first, last = date(year, 1, 1), min(date(year, 12, 31), today)
    if last < first:
        raise ValueError(f"year {year} has not started yet: no service dates before today")
    return [first + timedelta(d) for d in range((last - first).days + 1)]


def _institutions(rng: random.Random) -> list[_Institution]:
    """12 centres, each followed by its village clinics (10 or 11 each, 127 in all)."""
    per_centre, extra = divmod(VILLAGE_CLINICS, len(CENTRES))
    with_extra = set(rng.sample(range(len(CENTRES)), extra))
    out: list[_Institution] = []
    for n, (place, kind, remote) in enumerate(CENTRES):
        code = f"C{n + 1:02d}"
        out.append(_Institution(code, place + CENTRE_SUFFIX[kind], kind, "", remote))
        clinics = per_centre + (n in with_extra)
        for v, village in enumerate(_village_names(rng, clinics)):
            name = f"{place}{village}村卫生室"
            out.append(_Institution(f"{code}V{v + 1:02d}", name, "village_clinic", code, remote))
    return out


def _village_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(VILLAGE_FIRST) + rng.choice(VILLAGE_SECOND)
        if name not in names:
            names.append(name)
    return names


def _headcount(rng: random.Random, centres: Sequence[_Institution], year: int) -> list[list[str]]:
    """核定编制数 per centre for the previous and this year (village clinics have none).

    This year's figures are nudged to a fixed county total so that, whatever the seed, the
    county keeps about 600 staff.
    """
    now = [rng.randint(22, 48) for _ in centres]
    k = 0
    while (gap := COUNTY_HEADCOUNT - sum(now)) != 0:
        n = k % len(now)
        now[n] = min(60, max(20, now[n] + (1 if gap > 0 else -1)))
        k += 1
    rows: list[list[str]] = []
    for centre, headcount in zip(centres, now, strict=True):
        before = max(20, headcount - rng.randint(-1, 3))
        rows.append([centre.code, str(year - 1), str(before)])
        rows.append([centre.code, str(year), str(headcount)])
    return rows


def _staff(
    rng: random.Random,
    institutions: Sequence[_Institution],
    headcount: Sequence[Sequence[str]],
    year: int,
    days: Sequence[date],
) -> list[_Staff]:
    """Centre staff near their headcount, 1–2 village doctors per clinic; ids S00001…."""
    posts, weights = zip(*CENTRE_POSTS, strict=True)
    this_year = {row[0]: int(row[2]) for row in headcount if row[1] == str(year)}
    earliest, latest = date(year - 9, 1, 1), date(year - 1, 12, 31)
    span = (latest - earliest).days
    clinics = [i.code for i in institutions if i.parent_code]
    two_doctors = set(rng.sample(clinics, CLINICS_WITH_TWO_DOCTORS))
    staff: list[_Staff] = []
    for inst in institutions:
        if inst.parent_code:
            people = [("village_doctor", "off")] * (2 if inst.code in two_doctors else 1)
        else:
            on = this_year[inst.code] - rng.randint(2, 6)  # some posts stay vacant
            off = rng.randint(1, 4)
            people = [(rng.choices(posts, weights)[0], "on") for _ in range(on)]
            people += [(rng.choices(posts, weights)[0], "off") for _ in range(off)]
        for post, establishment in people:
            staff.append(
                _Staff(
                    staff_id=f"S{len(staff) + 1:05d}",
                    institution_code=inst.code,
                    name=rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.randint(1, 2))),
                    post=post,
                    establishment=establishment,
                    from_date=earliest + timedelta(rng.randint(0, span)),
                    to_date=None,
                    activity=POST_ACTIVITY[post] * rng.uniform(0.6, 1.4),
                )
            )
    return _move_some_mid_year(rng, staff, days)


def _move_some_mid_year(
    rng: random.Random, staff: list[_Staff], days: Sequence[date]
) -> list[_Staff]:
    """~3% of centre staff join during the year and ~3% leave (to_date inclusive).

    Only centre staff move, so every village clinic keeps its doctor all year.
    """
    centre_staff = [n for n, s in enumerate(staff) if s.post != "village_doctor"]
    movers = round(len(staff) * MID_YEAR_SHARE)
    chosen = rng.sample(centre_staff, 2 * movers)
    low, high = len(days) // 6, max(len(days) // 6, 5 * len(days) // 6)
    out = list(staff)
    for k, n in enumerate(chosen):
        day = days[rng.randint(low, high)]
        s = staff[n]
        out[n] = replace(s, from_date=day) if k < movers else replace(s, to_date=day)
    return out


def _catalogue_rows(year: int) -> list[list[str]]:
    start = f"{year}-01-01"
    rows = [
        [code, name, category, unit, value, start, ILLUSTRATIVE]
        for category, items in (
            ("basic_medical", BASIC_MEDICAL),
            ("basic_public_health", BASIC_PUBLIC_HEALTH),
        )
        for code, name, unit, value, _ in items
    ]
    code, value, month = WEAK_ITEM_CHANGE
    name, unit = next((i[1], i[2]) for i in BASIC_MEDICAL if i[0] == code)
    rows.append(
        [code, name, "basic_medical", unit, value, f"{year}-{month:02d}-01", WEAK_ITEM_REFERENCE]
    )
    return rows


def _institution_rows(institutions: Sequence[_Institution]) -> list[list[str]]:
    return [
        [i.code, i.name, i.kind, i.parent_code, "true" if i.remote else "false"]
        for i in institutions
    ]


def _staff_rows(staff: Sequence[_Staff]) -> list[list[str]]:
    return [
        [
            s.staff_id,
            s.institution_code,
            s.name,
            s.post,
            s.establishment,
            s.from_date.isoformat(),
            s.to_date.isoformat() if s.to_date else "",
        ]
        for s in staff
    ]


# --- compensation inputs ----------------------------------------------------------------


def _score_rows(
    rng: random.Random, institutions: Sequence[_Institution], year: int
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


def _income_rows(
    rng: random.Random,
    centres: Sequence[_Institution],
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


def _pay_level_rows(
    rng: random.Random, centres: Sequence[_Institution], year: int
) -> list[list[str]]:
    """在编人均年收入 of every centre: the remote ones below the benchmark (see PAY_*)."""
    remote = [c.code for c in centres if c.remote]
    ranges = dict(zip(remote, (PAY_SLIGHTLY_BELOW, PAY_FAR_BELOW), strict=False))
    rows: list[list[str]] = []
    for centre in centres:
        low, high = ranges.get(centre.code, PAY_OTHERS)
        rows.append([centre.code, str(year), str(rng.randint(low // 10, high // 10) * 10)])
    return rows


def _task_rows(rng: random.Random, centres: Sequence[_Institution], year: int) -> list[list[str]]:
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


def _force_majeure_rows(
    rng: random.Random, centres: Sequence[_Institution], year: int, last_month: int
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


def _pool_rows(
    rng: random.Random,
    institutions: Sequence[_Institution],
    headcount: Sequence[Sequence[str]],
    staff: Sequence[_Staff],
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


def _coefficient_rows(rng: random.Random, staff: Sequence[_Staff], year: int) -> list[list[str]]:
    """个人考核系数 of every staff member, 0.80–1.20."""
    reference = COEFFICIENT_REFERENCE.format(year=year)
    rows: list[list[str]] = []
    for s in staff:
        hundredths = rng.randint(*COEFFICIENT_HUNDREDTHS)
        coefficient = f"{hundredths // 100}.{hundredths % 100:02d}"
        rows.append([s.staff_id, str(year), coefficient, reference])
    return rows


def _outside_rows(
    rng: random.Random, staff: Sequence[_Staff], year: int, directors: set[str]
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


# --- service records --------------------------------------------------------------------

ServiceRow = tuple[str, str, str, str, str, str, str, str]
T = TypeVar("T")
_Weighted = tuple[list[T], list[float], float]


def _day_quotas(days: Sequence[date], records: int) -> list[int]:
    """Split `records` over the days exactly (largest remainder), busier on weekdays and in
    the winter months; integer arithmetic, so the split is the same on every machine."""
    weekday = (115, 100, 100, 100, 100, 55, 35)
    weights = [weekday[d.weekday()] * (110 if d.month in (1, 2, 12) else 100) for d in days]
    total = sum(weights)
    quotas = [records * w // total for w in weights]
    short = records - sum(quotas)
    by_remainder = sorted(range(len(days)), key=lambda d: (-(records * weights[d] % total), d))
    for d in by_remainder[:short]:
        quotas[d] += 1
    return quotas


def _service_chunks(
    rng: random.Random, staff: Sequence[_Staff], days: Sequence[date], records: int
) -> Iterator[list[ServiceRow]]:
    """Service rows in date order, in chunks of about PROGRESS_EVERY rows.

    Each row: a staff member active that day (weighted by post activity), an item from that
    post's pool, a quantity, a pseudonymous patient and, for public health, compliance.
    """
    pools = {post: _weighted(ITEM_POOLS[post]) for post in ITEM_POOLS}
    public_health = {i[0] for i in BASIC_PUBLIC_HEALTH}
    items = {i[0]: (i[4], i[0] in public_health) for i in (*BASIC_MEDICAL, *BASIC_PUBLIC_HEALTH)}
    sequence = {s.institution_code: 0 for s in staff}
    rand, bits = rng.random, rng.getrandbits
    chunk: list[ServiceRow] = []
    roster: _Weighted[tuple[str, str, _Weighted[str]]] = ([], [], 0.0)
    active_key: tuple[int, ...] | None = None
    for day, quota in zip(days, _day_quotas(days, records), strict=True):
        key = tuple(
            n
            for n, s in enumerate(staff)
            if s.from_date <= day and (s.to_date is None or day <= s.to_date)
        )
        if key != active_key:  # the roster changes only on the few join/leave days
            active_key = key
            roster = _weighted(
                ((s.staff_id, s.institution_code, pools[s.post]), s.activity)
                for s in (staff[n] for n in key)
            )
        people, bounds, total = roster
        iso = day.isoformat()
        for _ in range(quota):
            staff_id, inst, (codes, item_bounds, item_total) = people[
                bisect(bounds, rand() * total)
            ]
            code = codes[bisect(item_bounds, rand() * item_total)]
            qmax, is_ph = items[code]
            sequence[inst] += 1
            chunk.append(
                (
                    f"HIS{sequence[inst]:09d}",
                    inst,
                    staff_id,
                    code,
                    "1" if qmax == 1 else str(1 + int(rand() * qmax)),
                    iso,
                    f"P{bits(48):012x}",
                    ("false" if rand() < NON_COMPLIANT_SHARE else "true") if is_ph else "",
                )
            )
            if len(chunk) >= PROGRESS_EVERY:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _weighted(pairs: Iterable[tuple[T, float]]) -> _Weighted[T]:
    """(choices, boundaries, total): `choices[bisect(boundaries, random() * total)]` picks
    one in proportion to its weight. The last boundary is left out, so even a product that
    rounds up to `total` stays in range."""
    choices, weights = zip(*pairs, strict=True)
    cumulative = list(accumulate(weights))
    return list(choices), cumulative[:-1], cumulative[-1]


# --- writers ----------------------------------------------------------------------------


def _extension(services_format: str) -> str:
    return services_format if services_format in ("xlsx", "jsonl") else "csv"


def _write_csv(path: Path, fmt: FileFormat, rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fmt.column_names)
        writer.writerows(rows)


def _write_services(
    path: Path,
    services_format: str,
    chunks: Iterator[list[ServiceRow]],
    progress: Callable[[int], None] | None,
) -> None:
    def counted() -> Iterator[list[ServiceRow]]:
        for chunk in chunks:
            yield chunk
            if progress is not None:
                progress(len(chunk))

    if services_format == "xlsx":
        _write_services_xlsx(path, counted())
    elif services_format == "jsonl":
        with path.open("w", encoding="utf-8", newline="\n") as f:
            _write_services_jsonl(f, counted())
    else:
        encoding = {"csv": "utf-8", "csv-bom": "utf-8-sig", "csv-gb18030": "gb18030"}
        with path.open("w", encoding=encoding[services_format], newline="") as f:
            writer = csv.writer(f)
            if services_format == "csv-gb18030":  # as Chinese Excel saves it: Chinese headers
                writer.writerow([c.label_zh for c in SERVICES.columns])
            else:
                writer.writerow(SERVICES.column_names)
            for chunk in counted():
                writer.writerows(chunk)


def _write_services_jsonl(f: IO[str], chunks: Iterator[list[ServiceRow]]) -> None:
    """One object per line: quantity as a JSON number, blank optional fields left out."""
    names = SERVICES.column_names
    quantity = names.index("quantity")
    for chunk in chunks:
        lines = []
        for row in chunk:
            obj: dict[str, object] = {n: v for n, v in zip(names, row, strict=True) if v}
            obj["quantity"] = int(row[quantity])
            lines.append(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))
        f.write("\n".join(lines) + "\n")


def _write_services_xlsx(path: Path, chunks: Iterator[list[ServiceRow]]) -> None:
    """First (only) sheet, canonical headers; quantity as a number, dates as ISO text."""
    # imported here: only this variant needs openpyxl
    from openpyxl import Workbook
    from openpyxl.xml.functions import tostring

    workbook = Workbook(write_only=True)
    pinned = datetime(2000, 1, 1)
    workbook.properties.created = pinned
    workbook.properties.modified = pinned
    workbook.properties.creator = "dangliang generator (synthetic data)"
    sheet = workbook.create_sheet(SERVICES.label_zh)
    sheet.append(list(SERVICES.column_names))
    quantity = SERVICES.column_names.index("quantity")
    for chunk in chunks:
        for row in chunk:
            cells: list[object] = list(row)
            cells[quantity] = int(row[quantity])
            sheet.append(cells)
    raw = path.with_suffix(".xlsx.tmp")
    try:
        workbook.save(raw)
        workbook.properties.modified = pinned  # save() stamps the current time; pin it again
        core = tostring(workbook.properties.to_tree())
        _pin_zip(raw, path, {"docProps/core.xml": core})
    finally:
        raw.unlink(missing_ok=True)


def _pin_zip(source: Path, target: Path, replace_entries: dict[str, bytes]) -> None:
    """Copy a zip with every entry's timestamp fixed, so equal content gives equal bytes."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            pinned = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            pinned.compress_type = zipfile.ZIP_DEFLATED
            pinned.external_attr = 0o600 << 16
            if info.filename in replace_entries:
                dst.writestr(pinned, replace_entries[info.filename])
                continue
            with src.open(info) as r, dst.open(pinned, "w", force_zip64=True) as w:
                shutil.copyfileobj(r, w, 1 << 20)

"""The synthetic county's reference data for the demo generator (`generator.py`): its
institutions (centres and village clinics), headcount (核定编制数), staff and service
catalogue (服务项目目录), and the days on which services can lie.

ALL DATA HERE IS SYNTHETIC: the township and street names are De Qing's (德清县), but every
code, headcount, person, name and catalogue value is invented; each catalogue row says
"示例数值，非官方 / illustrative value, not official".
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

ILLUSTRATIVE = "示例数值，非官方 / illustrative value, not official"
WEAK_ITEM_REFERENCE = (
    "诸暨：提高长处方等薄弱项目当量值（示例） / illustrative, after Zhuji [seed 002]"
)


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
# Zhuji raises the values of weak items such as long prescriptions [诸暨方案]; the demo
# shows one mid-year change so that valid-time lookups are exercised.
WEAK_ITEM_CHANGE = ("BM006", "1.2000", 7)

MID_YEAR_SHARE = 0.03  # of centre staff joining, and again leaving, during the year


@dataclass(frozen=True)
class Institution:
    code: str
    name: str
    kind: str
    parent_code: str
    remote: bool


@dataclass(frozen=True)
class Staff:
    staff_id: str
    institution_code: str
    name: str
    post: str
    establishment: str
    from_date: date
    to_date: date | None
    activity: float


# --- reference data ---------------------------------------------------------------------


def service_days(year: int, today: date) -> list[date]:
    """Every day of the year on which services can lie: never after today."""
    first, last = date(year, 1, 1), min(date(year, 12, 31), today)
    if last < first:
        raise ValueError(f"year {year} has not started yet: no service dates before today")
    return [first + timedelta(d) for d in range((last - first).days + 1)]


def _institutions(rng: random.Random) -> list[Institution]:
    """12 centres, each followed by its village clinics (10 or 11 each, 127 in all)."""
    per_centre, extra = divmod(VILLAGE_CLINICS, len(CENTRES))
    with_extra = set(rng.sample(range(len(CENTRES)), extra))
    out: list[Institution] = []
    for n, (place, kind, remote) in enumerate(CENTRES):
        code = f"C{n + 1:02d}"
        out.append(Institution(code, place + CENTRE_SUFFIX[kind], kind, "", remote))
        clinics = per_centre + (n in with_extra)
        for v, village in enumerate(_village_names(rng, clinics)):
            name = f"{place}{village}村卫生室"
            out.append(Institution(f"{code}V{v + 1:02d}", name, "village_clinic", code, remote))
    return out


def _village_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(VILLAGE_FIRST) + rng.choice(VILLAGE_SECOND)
        if name not in names:
            names.append(name)
    return names


def _headcount(rng: random.Random, centres: Sequence[Institution], year: int) -> list[list[str]]:
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
    institutions: Sequence[Institution],
    headcount: Sequence[Sequence[str]],
    year: int,
    days: Sequence[date],
) -> list[Staff]:
    """Centre staff near their headcount, 1–2 village doctors per clinic; ids S00001…."""
    posts, weights = zip(*CENTRE_POSTS, strict=True)
    this_year = {row[0]: int(row[2]) for row in headcount if row[1] == str(year)}
    earliest, latest = date(year - 9, 1, 1), date(year - 1, 12, 31)
    span = (latest - earliest).days
    clinics = [i.code for i in institutions if i.parent_code]
    two_doctors = set(rng.sample(clinics, CLINICS_WITH_TWO_DOCTORS))
    staff: list[Staff] = []
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
                Staff(
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
    rng: random.Random, staff: list[Staff], days: Sequence[date]
) -> list[Staff]:
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


def catalogue_rows(year: int) -> list[list[str]]:
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


def institution_rows(institutions: Sequence[Institution]) -> list[list[str]]:
    return [
        [i.code, i.name, i.kind, i.parent_code, "true" if i.remote else "false"]
        for i in institutions
    ]


def staff_rows(staff: Sequence[Staff]) -> list[list[str]]:
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

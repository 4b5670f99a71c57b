"""The file formats the importers read: canonical English columns and their Chinese aliases.

`docs/formats.md` documents these tables for people; this module is the single source the
readers, the validators and the generator use, so the documentation and the code cannot
drift apart (a unit test checks that every alias here appears in the document).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dangliang.domain.coverage import AGE_BANDS, INSURANCE_TYPES
from dangliang.domain.inputs import OUTSIDE_KINDS


@dataclass(frozen=True)
class Column:
    name: str
    label_zh: str
    required: bool = True
    aliases: tuple[str, ...] = ()

    @property
    def all_names(self) -> tuple[str, ...]:
        return (self.name, self.label_zh, *self.aliases)


@dataclass(frozen=True)
class FileFormat:
    name: str
    label_zh: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def header_map(self) -> dict[str, str]:
        """Every accepted header spelling (case- and space-insensitive) → canonical name."""
        out: dict[str, str] = {}
        for column in self.columns:
            for alias in column.all_names:
                out[normalise_header(alias)] = column.name
        return out


def normalise_header(text: str) -> str:
    return "".join(text.split()).lower().lstrip("\ufeff")


SERVICES = FileFormat(
    name="services",
    label_zh="服务记录",
    key=("institution_code", "source_id"),
    columns=(
        Column("source_id", "来源编号", aliases=("记录编号", "his编号")),
        Column("institution_code", "机构编码"),
        Column("staff_id", "人员编号", aliases=("工号",)),
        Column("item_code", "项目编码"),
        Column("quantity", "数量"),
        Column("service_date", "服务日期"),
        Column("patient_ref", "患者标识", required=False),
        Column("compliant", "是否达标", required=False),
    ),
)

CORRECTIONS = FileFormat(
    name="corrections",
    label_zh="更正与作废",
    key=("institution_code", "source_id"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("source_id", "来源编号", aliases=("记录编号", "his编号")),
        Column("action", "操作"),
        Column("item_code", "项目编码", required=False),
        Column("quantity", "数量", required=False),
        Column("staff_id", "人员编号", required=False, aliases=("工号",)),
        Column("service_date", "服务日期", required=False),
        Column("compliant", "是否达标", required=False),
        Column("reason", "原因"),
    ),
)

CATALOGUE = FileFormat(
    name="catalogue",
    label_zh="服务项目目录",
    key=("item_code", "effective_from"),
    columns=(
        Column("item_code", "项目编码"),
        Column("name", "项目名称"),
        Column("category", "类别"),
        Column("unit", "单位"),
        Column("equivalent_value", "当量值"),
        Column("effective_from", "生效日期"),
        Column("reference", "政策依据"),
    ),
)

INSTITUTIONS = FileFormat(
    name="institutions",
    label_zh="机构",
    key=("code",),
    columns=(
        Column("code", "机构编码"),
        Column("name", "机构名称"),
        Column("kind", "机构类型"),
        Column("parent_code", "上级机构编码", required=False),
        Column("remote", "是否边缘乡镇", required=False),
    ),
)

HEADCOUNT = FileFormat(
    name="headcount",
    label_zh="核定编制数",
    key=("institution_code", "year"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("year", "年度"),
        Column("establishment_headcount", "编制人数"),
    ),
)

STAFF = FileFormat(
    name="staff",
    label_zh="人员",
    key=("staff_id", "from_date"),
    columns=(
        Column("staff_id", "人员编号", aliases=("工号",)),
        Column("institution_code", "机构编码"),
        Column("name", "姓名"),
        Column("post", "岗位"),
        Column("establishment", "编制"),
        Column("from_date", "起始日期"),
        Column("to_date", "截止日期", required=False),
    ),
)

# --- compensation inputs (补偿计算输入): facts the steps of docs/compensation.md read ---

SCORES = FileFormat(
    name="scores",
    label_zh="综合考核得分",
    key=("institution_code", "year"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("year", "年度", aliases=("考核年度",)),
        Column("score", "考核得分", aliases=("综合考核得分", "得分")),
        Column("reference", "考核依据"),
    ),
)

INCOME = FileFormat(
    name="income",
    label_zh="医疗服务收入",
    key=("institution_code", "month"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("month", "月份", aliases=("收入月份",)),
        Column("amount", "医疗服务收入", aliases=("医疗服务收入（不含药品）", "收入金额")),
    ),
)

PAY_LEVELS = FileFormat(
    name="pay_levels",
    label_zh="在编人均年收入",
    key=("institution_code", "year"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("year", "年度"),
        Column("per_head", "在编人均年收入", aliases=("在编职工人均年收入", "人均年收入")),
    ),
)

TASKS = FileFormat(
    name="tasks",
    label_zh="指令性任务",
    key=("institution_code", "year", "task_code"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("year", "年度"),
        Column("task_code", "任务编码"),
        Column("name", "任务名称"),
        Column("amount", "任务金额"),
        Column("reference", "下达依据"),
        Column("completion", "完成比例", required=False, aliases=("完成率",)),
    ),
)

FORCE_MAJEURE = FileFormat(
    name="force_majeure",
    label_zh="不可抗力认定",
    key=("code",),
    columns=(
        Column("code", "认定编号"),
        Column("first_month", "起始月份"),
        Column("last_month", "截止月份"),
        Column("institutions", "适用机构", required=False, aliases=("适用机构编码",)),
        Column("reason", "原因", aliases=("认定原因",)),
        Column("reference", "依据", aliases=("认定依据", "文号")),
    ),
)

PARAMETER_CHANGES = FileFormat(
    name="parameter_changes",
    label_zh="政策参数调整",
    key=("path", "effective_from"),
    columns=(
        Column("path", "参数", aliases=("参数路径",)),
        Column("value", "取值", aliases=("新值",)),
        Column("effective_from", "生效日期"),
        Column("reason", "调整原因"),
        Column("approver", "批准人"),
    ),
)

# --- performance pay inside an institution (机构内部绩效分配, docs/performance.md) ------

POOLS = FileFormat(
    name="pools",
    label_zh="绩效工资总量",
    key=("institution_code", "year"),
    columns=(
        Column("institution_code", "机构编码"),
        Column("year", "年度"),
        Column("pool", "绩效工资总量", aliases=("核定绩效工资总量",)),
        Column("reward_share", "奖励性绩效占比", aliases=("奖励性绩效工资占比",)),
        Column("surplus", "收支结余", required=False, aliases=("收支结余（不含财政专项补助）",)),
        Column("surplus_share", "结余再分配比例", required=False),
        Column("director_staff_id", "院长工号", required=False, aliases=("院长人员编号",)),
        Column("reference", "核定依据"),
    ),
)

STAFF_COEFFICIENTS = FileFormat(
    name="staff_coefficients",
    label_zh="个人考核系数",
    key=("staff_id", "year"),
    columns=(
        Column("staff_id", "人员编号", aliases=("工号",)),
        Column("year", "年度"),
        Column("coefficient", "个人考核系数"),
        Column("reference", "考核依据"),
    ),
)

OUTSIDE_ITEMS = FileFormat(
    name="outside_items",
    label_zh="绩效总量外项目",
    key=("staff_id", "year", "kind"),
    columns=(
        Column("staff_id", "人员编号", aliases=("工号",)),
        Column("year", "年度"),
        Column("kind", "项目", aliases=("项目类型",)),
        Column("amount", "金额"),
        Column("reference", "依据"),
    ),
)

# --- the medical-insurance fund (医保基金): communities, enrolment, claims -----------------

COMMUNITIES = FileFormat(
    name="communities",
    label_zh="医共体",
    key=("community_code",),
    columns=(
        Column("community_code", "医共体编码"),
        Column("name", "医共体名称"),
        Column("lead_hospital_code", "牵头医院编码"),
        Column("lead_hospital_name", "牵头医院名称"),
        Column("members", "成员机构", aliases=("成员机构编码",)),
    ),
)

ENROLMENT = FileFormat(
    name="enrolment",
    label_zh="参保人员",
    key=("insured_ref", "from_month"),
    columns=(
        Column("insured_ref", "参保人编号"),
        Column("insurance_type", "险种"),
        Column("birth_date", "出生日期"),
        Column("home", "参保属地"),
        Column("community_code", "医共体编码"),
        Column("from_month", "起始月份"),
        Column("to_month", "终止月份", required=False),
    ),
)

ENROLMENT_COUNTS = FileFormat(
    name="enrolment_counts",
    label_zh="参保人数",
    key=("community_code", "month", "insurance_type", "age_band"),
    columns=(
        Column("community_code", "医共体编码"),
        Column("month", "月份"),
        Column("insurance_type", "险种"),
        Column("age_band", "年龄段"),
        Column("count", "人数", aliases=("参保人数",)),
        Column("reason", "更正原因", required=False),
    ),
)

_FUND_AMOUNT = Column(
    "fund_amount", "统筹基金支付金额（元）", aliases=("统筹基金支付金额", "统筹基金支付金额(元)")
)

CLAIMS = FileFormat(
    name="claims",
    label_zh="医保结算记录",
    key=("claim_id",),
    columns=(
        Column("claim_id", "结算编号"),
        Column("insured_ref", "参保人编号"),
        Column("community_code", "医共体编码"),
        Column("institution_code", "就医机构编码"),
        Column("out_of_area", "异地就医", required=False),
        Column("settled_on", "结算日期"),
        _FUND_AMOUNT,
    ),
)

CLAIM_CORRECTIONS = FileFormat(
    name="claim_corrections",
    label_zh="结算记录更正",
    key=("claim_id",),
    columns=(
        Column("claim_id", "结算编号"),
        Column("action", "操作"),
        Column("community_code", "医共体编码", required=False),
        Column("institution_code", "就医机构编码", required=False),
        Column("out_of_area", "异地就医", required=False),
        Column("settled_on", "结算日期", required=False),
        Column(_FUND_AMOUNT.name, _FUND_AMOUNT.label_zh, False, _FUND_AMOUNT.aliases),
        Column("reason", "原因", aliases=("更正原因",)),
    ),
)

ENROLMENT_CORRECTIONS = FileFormat(
    name="enrolment_corrections",
    label_zh="参保登记更正",
    key=("insured_ref", "from_month"),
    columns=(
        Column("insured_ref", "参保人编号"),
        Column("from_month", "起始月份"),
        Column("action", "操作"),
        Column("insurance_type", "险种", required=False),
        Column("birth_date", "出生日期", required=False),
        Column("home", "参保属地", required=False),
        Column("community_code", "医共体编码", required=False),
        Column("to_month", "终止月份", required=False),
        Column("reason", "原因", aliases=("更正原因",)),
    ),
)

FUND_YEARS = FileFormat(
    name="fund_years",
    label_zh="医保基金年度",
    key=("year",),
    columns=(
        Column("year", "年度"),
        Column("revenue", "筹资总额（元）", aliases=("筹资总额", "筹资总额(元)")),
        Column(
            "prior_spending",
            "上年度基金支出（元）",
            required=False,
            aliases=("上年度基金支出", "上年度基金支出(元)"),
        ),
        Column("reference", "文号", aliases=("依据",)),
    ),
)

COMMUNITY_SCORES = FileFormat(
    name="community_scores",
    label_zh="医共体考核",
    key=("community_code", "year"),
    columns=(
        Column("community_code", "医共体编码"),
        Column("year", "年度", aliases=("考核年度",)),
        Column("score", "得分", aliases=("考核得分",)),
        Column("reference", "考核依据", aliases=("文号",)),
    ),
)

INSURANCE_FORMATS = {
    f.name: f
    for f in (
        COMMUNITIES,
        ENROLMENT,
        ENROLMENT_COUNTS,
        CLAIMS,
        CLAIM_CORRECTIONS,
        ENROLMENT_CORRECTIONS,
        FUND_YEARS,
        COMMUNITY_SCORES,
    )
}

FORMATS = {
    f.name: f
    for f in (
        SERVICES,
        CORRECTIONS,
        CATALOGUE,
        INSTITUTIONS,
        HEADCOUNT,
        STAFF,
        SCORES,
        INCOME,
        PAY_LEVELS,
        TASKS,
        FORCE_MAJEURE,
        PARAMETER_CHANGES,
        POOLS,
        STAFF_COEFFICIENTS,
        OUTSIDE_ITEMS,
    )
} | INSURANCE_FORMATS

# Controlled vocabularies: canonical English code → accepted spellings (Chinese first).
INSTITUTION_KINDS = {
    "township_health_centre": ("乡镇卫生院",),
    "community_health_centre": ("社区卫生服务中心",),
    "village_clinic": ("村卫生室",),
}
CATEGORIES = {
    "basic_medical": ("基本医疗", "基本医疗服务"),
    "basic_public_health": ("基本公共卫生", "基本公共卫生服务"),
}
POSTS = {
    "clinical": ("临床",),
    "nursing": ("护理",),
    "public_health": ("公共卫生",),
    "medical_tech": ("医技",),
    "pharmacy": ("药剂",),
    "admin": ("管理", "行政"),
    "it": ("信息",),
    "village_doctor": ("乡村医生",),
}
ESTABLISHMENT = {"on": ("在编",), "off": ("编外",)}
CORRECTION_ACTIONS = {"void": ("作废",), "correct": ("更正",)}
# Amounts paid outside the performance-pay total; the domain (domain/inputs.py) owns the list.
OUTSIDE_ITEM_KINDS = {code: (label,) for code, label in OUTSIDE_KINDS.items()}
# Insurance types and age bands; the domain (domain/coverage.py) owns the lists.
INSURANCE_TYPE_WORDS = {code: (label,) for code, label in INSURANCE_TYPES.items()}
AGE_BAND_WORDS = {code: (label,) for code, label in AGE_BANDS.items()}
TRUE_WORDS = ("true", "yes", "y", "1", "是", "达标")
FALSE_WORDS = ("false", "no", "n", "0", "否", "不达标")


def vocabulary_lookup(vocabulary: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Accepted spelling (lower-cased) → canonical code."""
    out: dict[str, str] = {}
    for code, spellings in vocabulary.items():
        out[code] = code
        for s in spellings:
            out[s.lower()] = code
    return out

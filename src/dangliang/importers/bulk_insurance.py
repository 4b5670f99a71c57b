"""Bulk imports of the insurance fund's large facts (医保基金): settled claims (医保结算记录,
two million rows a county-year) and per-person enrolment (参保人员).

Each is a `BulkSpec` for the bulk import (`bulk_import`), exactly as service records are: the
whole file is validated in pass 1 with every problem collected, nothing is written when there
is one (unless bad rows are skipped), a re-import adds nothing, and the same key with other
content is refused (corrections go through `insurance_revisions`). The stored events are
assembled directly, byte for byte what the library's mapper writes for `Claim.settle(...)`
and `Enrolment.record(...)` (tests/unit/importers/test_insurance_bodies.py).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from json.encoder import encode_basestring as json_encode_string  # what json.dumps uses

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.ids import uuid5_hex
from dangliang.domain.problems import Problem
from dangliang.importers.bulk_import import BulkSpec
from dangliang.importers.fields import Code, IsoDate, Text, YesNo
from dangliang.importers.formats import CLAIMS, ENROLMENT
from dangliang.importers.fund_fields import Fen, InsuranceType, MonthText, Reference, last_day
from dangliang.projections.tracking import topic_of

__all__ = [
    "ClaimRow",
    "EnrolmentRow",
    "claims_spec",
    "enrolment_body",
    "enrolment_spec",
    "settled_body",
    "unknown_community",
]


class ClaimRow(TypedDict):
    claim_id: Reference
    insured_ref: Reference
    community_code: Code
    institution_code: Reference
    out_of_area: YesNo | None
    settled_on: IsoDate
    fund_amount: Fen


class EnrolmentRow(TypedDict):
    insured_ref: Reference
    insurance_type: InsuranceType
    birth_date: IsoDate
    home: Text
    community_code: Code
    from_month: MonthText
    to_month: MonthText | None


CLAIM_ROWS = TypeAdapter(list[ClaimRow])
ENROLMENT_ROWS = TypeAdapter(list[EnrolmentRow])


def unknown_community(name: str, row: int, code: str, column: str = "community_code") -> Problem:
    return Problem(
        name,
        row,
        column,
        f"未登记的医共体：{code!r}（请先导入医共体文件）",
        f"unknown medical community {code!r} (import the communities file first)",
    )


def in_future(name: str, row: int, column: str, what_zh: str, what_en: str, day: date) -> Problem:
    return Problem(
        name, row, column, f"{what_zh}在未来：{day}", f"{what_en} is in the future: {day}"
    )


def born_after_start(name: str, row: int, born: date, from_month: str) -> Problem:
    return Problem(
        name,
        row,
        "birth_date",
        f"出生日期 {born} 晚于参保起始月份 {from_month}",
        f"birth date {born} is after the enrolment starts ({from_month})",
    )


def ends_before_start(name: str, row: int, from_month: str, to_month: str) -> Problem:
    return Problem(
        name,
        row,
        "to_month",
        f"终止月份 {to_month} 早于起始月份 {from_month}",
        f"to_month {to_month} is before from_month {from_month}",
    )


# ---- claims -----------------------------------------------------------------------------


def claims_spec(communities: Collection[str]) -> BulkSpec[ClaimRow]:
    """Claims as a bulk import; `communities` are the codes of the registered communities."""

    def check(
        name: str, good: list[tuple[int, ClaimRow]], today: date
    ) -> tuple[list[tuple[int, ClaimRow]], list[Problem]]:
        ok: list[tuple[int, ClaimRow]] = []
        problems: list[Problem] = []
        for row_number, r in good:
            bad = False
            if r["community_code"] not in communities:
                problems.append(unknown_community(name, row_number, r["community_code"]))
                bad = True
            if r["settled_on"] > today:
                problems.append(
                    in_future(
                        name,
                        row_number,
                        "settled_on",
                        "结算日期",
                        "settlement date",
                        r["settled_on"],
                    )
                )
                bad = True
            if not bad:
                ok.append((row_number, r))
        return ok, problems

    return BulkSpec(
        fmt=CLAIMS,
        rows=CLAIM_ROWS,
        check=check,
        key_hex=_claim_id_hex,
        body=settled_body,
        created_topic=topic_of(Claim.Settled),
        key_column="claim_id",
        key_zh="结算编号",
        key_en="claim id",
    )


def _claim_id_hex(r: ClaimRow) -> str:
    return uuid5_hex(f"claim|{r['claim_id']}")  # ids.claim_id(...).hex


_q = json_encode_string
_CLAIM_TOPIC_JSON = _q(topic_of(Claim))
_ENROLMENT_TOPIC_JSON = _q(topic_of(Enrolment))


def settled_body(r: ClaimRow, tail: str) -> str:
    """The stored JSON of a `Claim.Settled` event after its timestamp (`bulk_import`)."""
    return (
        f'{{"originator_topic":{_CLAIM_TOPIC_JSON},'
        f'"claim_id":{_q(r["claim_id"])},"insured_ref":{_q(r["insured_ref"])},'
        f'"community_code":{_q(r["community_code"])},'
        f'"institution_code":{_q(r["institution_code"])},'
        f'"out_of_area":{"true" if r["out_of_area"] else "false"},'
        f'"settled_on":{{"_type_":"date_iso","_data_":"{r["settled_on"].isoformat()}"}},'
        f'"fund_fen":{r["fund_amount"]}{tail}'
    )


# ---- enrolment --------------------------------------------------------------------------


def enrolment_spec(communities: Collection[str]) -> BulkSpec[EnrolmentRow]:
    """Per-person enrolment as a bulk import, against the registered communities' codes."""

    def check(
        name: str, good: list[tuple[int, EnrolmentRow]], today: date
    ) -> tuple[list[tuple[int, EnrolmentRow]], list[Problem]]:
        ok: list[tuple[int, EnrolmentRow]] = []
        problems: list[Problem] = []
        for row_number, r in good:
            found = enrolment_problems(name, row_number, r, communities, today)
            if found:
                problems.extend(found)
            else:
                ok.append((row_number, r))
        return ok, problems

    return BulkSpec(
        fmt=ENROLMENT,
        rows=ENROLMENT_ROWS,
        check=check,
        key_hex=_enrolment_id_hex,
        body=enrolment_body,
        created_topic=topic_of(Enrolment.Recorded),
        key_column="insured_ref",
        key_zh="参保登记（参保人编号与起始月份）",
        key_en="enrolment (insured person and from_month)",
    )


def enrolment_problems(
    name: str,
    row_number: int,
    r: EnrolmentRow,
    communities: Collection[str],
    today: date,
    given: Collection[str] | None = None,
) -> list[Problem]:
    """An enrolment's values against the communities and the calendar. `given`: the columns
    a correction filled in (the problems of the values it keeps were reported at import)."""
    found: list[Problem] = []
    community, born = r["community_code"], r["birth_date"]
    if (given is None or "community_code" in given) and community not in communities:
        found.append(unknown_community(name, row_number, community))
    if born > today:
        found.append(in_future(name, row_number, "birth_date", "出生日期", "birth date", born))
    elif born > last_day(r["from_month"]):
        found.append(born_after_start(name, row_number, born, r["from_month"]))
    to_month = r["to_month"]
    if to_month is not None and to_month < r["from_month"]:
        found.append(ends_before_start(name, row_number, r["from_month"], to_month))
    return found


def _enrolment_id_hex(r: EnrolmentRow) -> str:
    # ids.enrolment_id(...).hex
    return uuid5_hex(f"enrolment|{r['insured_ref']}|{r['from_month']}")


def enrolment_body(r: EnrolmentRow, tail: str) -> str:
    """The stored JSON of an `Enrolment.Recorded` event after its timestamp (`bulk_import`)."""
    to_month = "null" if r["to_month"] is None else f'"{r["to_month"]}"'
    return (
        f'{{"originator_topic":{_ENROLMENT_TOPIC_JSON},'
        f'"insured_ref":{_q(r["insured_ref"])},"from_month":"{r["from_month"]}",'
        f'"insurance_type":"{r["insurance_type"]}",'
        f'"birth_date":{{"_type_":"date_iso","_data_":"{r["birth_date"].isoformat()}"}},'
        f'"home":{_q(r["home"])},"community_code":{_q(r["community_code"])},'
        f'"to_month":{to_month}{tail}'
    )

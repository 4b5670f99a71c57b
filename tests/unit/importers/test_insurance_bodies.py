"""The bulk import's hand-assembled claim and enrolment events are byte for byte what the
library would store (as `test_recorded_body.py` shows for service records).

For any row, the stored state the importer writes equals the mapper's stored state of the
event `Claim.settle(...)` or `Enrolment.record(...)` produces, given the same timestamp, and
the importer's id is the aggregate's id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dangliang.domain.claims import Claim, Enrolment
from dangliang.domain.ids import claim_id, enrolment_id
from dangliang.importers.bulk_import import recorded_tail
from dangliang.importers.bulk_insurance import (
    claims_spec,
    enrolment_body,
    enrolment_spec,
    settled_body,
)
from tests.conftest import examples
from tests.unit.importers.test_recorded_body import MAPPER

text = st.text(min_size=1, max_size=20)  # any characters: quotes, backslashes, CJK, controls
codes = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)
days = st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 12, 31))
months = st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1990, 2030), st.integers(1, 12))
STAMP = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
IMPORT_REF = "sha256:0123456789abcdef"


def stored_state(aggregate: Any) -> tuple[bytes, Any]:
    (event,) = aggregate.collect_events()
    object.__setattr__(event, "timestamp", STAMP)
    stored = MAPPER.to_stored_event(event)
    return stored.state, stored.originator_id


def with_head(body: str) -> bytes:
    head = '{"timestamp":{"_type_":"datetime_iso","_data_":"' + STAMP.isoformat() + '"},'
    return (head + body[1:]).encode()


@settings(max_examples=examples(150))
@given(
    claim=text,
    insured=text,
    community=codes,
    institution=text,
    out_of_area=st.none() | st.booleans(),
    day=days,
    fen=st.integers(min_value=0, max_value=100_000_000_000),
    actor=text,
)
def test_claim_body_is_what_the_mapper_stores(
    claim: str,
    insured: str,
    community: str,
    institution: str,
    out_of_area: bool | None,
    day: date,
    fen: int,
    actor: str,
) -> None:
    row = {
        "claim_id": claim,
        "insured_ref": insured,
        "community_code": community,
        "institution_code": institution,
        "out_of_area": out_of_area,
        "settled_on": day,
        "fund_amount": fen,
    }
    expected, aggregate_id = stored_state(
        Claim.settle(
            claim_id=claim,
            insured_ref=insured,
            community_code=community,
            institution_code=institution,
            out_of_area=bool(out_of_area),
            settled_on=day,
            fund_fen=fen,
            actor=actor,
            import_ref=IMPORT_REF,
        )
    )
    assert with_head(settled_body(row, recorded_tail(actor, IMPORT_REF))) == expected  # type: ignore[arg-type]
    assert claims_spec(()).key_hex(row) == aggregate_id.hex == claim_id(claim).hex  # type: ignore[arg-type]


@settings(max_examples=examples(150))
@given(
    insured=text,
    from_month=months,
    to_month=st.none() | months,
    insurance_type=st.sampled_from(["employee", "resident"]),
    born=days,
    home=text,
    community=codes,
    actor=text,
)
def test_enrolment_body_is_what_the_mapper_stores(
    insured: str,
    from_month: str,
    to_month: str | None,
    insurance_type: str,
    born: date,
    home: str,
    community: str,
    actor: str,
) -> None:
    if to_month is not None and to_month < from_month:
        from_month, to_month = to_month, from_month
    row = {
        "insured_ref": insured,
        "insurance_type": insurance_type,
        "birth_date": born,
        "home": home,
        "community_code": community,
        "from_month": from_month,
        "to_month": to_month,
    }
    expected, aggregate_id = stored_state(
        Enrolment.record(
            insured_ref=insured,
            from_month=from_month,
            insurance_type=insurance_type,
            birth_date=born,
            home=home,
            community_code=community,
            to_month=to_month,
            actor=actor,
            import_ref=IMPORT_REF,
        )
    )
    assert with_head(enrolment_body(row, recorded_tail(actor, IMPORT_REF))) == expected  # type: ignore[arg-type]
    assert enrolment_spec(()).key_hex(row) == aggregate_id.hex  # type: ignore[arg-type]
    assert aggregate_id == enrolment_id(insured, from_month)

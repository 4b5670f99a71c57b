"""Who is insured where (参保登记, 参保人数) and what the pooled fund paid for them (统筹基金
支出, one settled claim each), as facts appended once and superseded, never edited: a
`Corrected` event carries the full new values with a reason, a `Voided` event takes a record
out (docs/insurance.md). Money is integer fen; months are `YYYY-MM` text.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.coverage import AGE_BANDS, require_fen, require_span, require_type
from dangliang.domain.errors import InvalidValue, NothingToCorrect, RecordVoided
from dangliang.domain.values import require_text


class _Superseded(Aggregate):
    """A record appended once, then only corrected (full new values) or voided."""

    voided = False

    def _refuse_if_voided(self, label: str) -> None:
        if self.voided:
            raise RecordVoided(
                f"{label} 已作废，不能再更正", f"{label} is voided; it cannot change"
            )


class Enrolment(_Superseded):
    """参保登记: one person insured with one community from a month (to a month, or still)."""

    class Recorded(Aggregate.Created):
        """参保登记已导入. Field order is part of the stored form (the bulk importer writes
        byte-identical events)."""

        insured_ref: str
        from_month: str
        insurance_type: str
        birth_date: date
        home: str
        community_code: str
        to_month: str | None
        actor: str
        import_ref: str

    class Corrected(Aggregate.Event):
        """参保登记已更正: the new full values, why, and who."""

        insurance_type: str
        birth_date: date
        home: str
        community_code: str
        to_month: str | None
        reason: str
        actor: str
        import_ref: str

    class Voided(Aggregate.Event):
        """参保登记已作废."""

        reason: str
        actor: str
        import_ref: str

    @staticmethod
    def create_id(insured_ref: str, from_month: str, **_: Any) -> UUID:
        return ids.enrolment_id(insured_ref, from_month)

    @event(Recorded)
    def __init__(
        self,
        insured_ref: str,
        from_month: str,
        insurance_type: str,
        birth_date: date,
        home: str,
        community_code: str,
        to_month: str | None,
        actor: str,
        import_ref: str,
    ) -> None:
        self.insured_ref = insured_ref
        self.from_month = from_month
        self.values = (insurance_type, birth_date, home, community_code, to_month)

    @classmethod
    def record(
        cls,
        *,
        insured_ref: str,
        from_month: str,
        insurance_type: str,
        birth_date: date,
        home: str,
        community_code: str,
        to_month: str | None,
        actor: str,
        import_ref: str = "",
    ) -> Enrolment:
        require_span(from_month, to_month)
        return cls(
            insured_ref=insured_ref,
            from_month=from_month,
            insurance_type=require_type(insurance_type),
            birth_date=birth_date,
            home=home,
            community_code=community_code,
            to_month=to_month,
            actor=actor,
            import_ref=import_ref,
        )

    def correct(
        self,
        *,
        insurance_type: str,
        birth_date: date,
        home: str,
        community_code: str,
        to_month: str | None,
        reason: str,
        actor: str,
        import_ref: str = "",
    ) -> None:
        label = f"参保登记 {self.insured_ref}/{self.from_month}"
        self._refuse_if_voided(label)
        require_span(self.from_month, to_month)
        values = (require_type(insurance_type), birth_date, home, community_code, to_month)
        if values == self.values:
            raise NothingToCorrect(f"{label} 更正内容与现有登记相同", f"{label}: nothing changes")
        self._corrected(
            insurance_type=insurance_type,
            birth_date=birth_date,
            home=home,
            community_code=community_code,
            to_month=to_month,
            reason=require_text(reason, "更正原因", "a reason"),
            actor=actor,
            import_ref=import_ref,
        )

    @event(Corrected)
    def _corrected(
        self,
        insurance_type: str,
        birth_date: date,
        home: str,
        community_code: str,
        to_month: str | None,
        reason: str,
        actor: str,
        import_ref: str,
    ) -> None:
        self.values = (insurance_type, birth_date, home, community_code, to_month)

    def void(self, *, reason: str, actor: str, import_ref: str = "") -> None:
        self._refuse_if_voided(f"参保登记 {self.insured_ref}/{self.from_month}")
        self._voided(
            reason=require_text(reason, "作废原因", "a reason"), actor=actor, import_ref=import_ref
        )

    @event(Voided)
    def _voided(self, reason: str, actor: str, import_ref: str) -> None:
        self.voided = True


class EnrolmentCount(Aggregate):
    """参保人数（按月汇总）: where a bureau has only totals — people enrolled with a community
    in a month, by insurance type and age band. A later count supersedes, with a reason."""

    class Recorded(Aggregate.Created):
        community_code: str
        month: str
        insurance_type: str
        age_band: str
        count: int
        actor: str
        import_ref: str

    class Corrected(Aggregate.Event):
        count: int
        reason: str
        actor: str
        import_ref: str

    @staticmethod
    def create_id(community_code: str, month: str, insurance_type: str, age_band: str, **_: Any):  # type: ignore[no-untyped-def]
        return ids.enrolment_count_id(community_code, month, insurance_type, age_band)

    @event(Recorded)
    def __init__(
        self,
        community_code: str,
        month: str,
        insurance_type: str,
        age_band: str,
        count: int,
        actor: str,
        import_ref: str,
    ) -> None:
        self.count = count

    @classmethod
    def record(
        cls,
        *,
        community_code: str,
        month: str,
        insurance_type: str,
        age_band: str,
        count: int,
        actor: str,
        import_ref: str = "",
    ) -> EnrolmentCount:
        if age_band not in AGE_BANDS:
            raise InvalidValue(
                f"年龄段应为 to_60 或 over_60：{age_band!r}", f"bad band {age_band!r}"
            )
        return cls(
            community_code=community_code,
            month=month,
            insurance_type=require_type(insurance_type),
            age_band=age_band,
            count=require_fen(count, "参保人数", "a count"),
            actor=actor,
            import_ref=import_ref,
        )

    def correct(self, *, count: int, reason: str, actor: str, import_ref: str = "") -> bool:
        if count == self.count:
            return False
        self._corrected(
            count=require_fen(count, "参保人数", "a count"),
            reason=require_text(reason, "更正原因", "a reason"),
            actor=actor,
            import_ref=import_ref,
        )
        return True

    @event(Corrected)
    def _corrected(self, count: int, reason: str, actor: str, import_ref: str) -> None:
        self.count = count


class Claim(_Superseded):
    """医保结算记录: what the pooled fund paid (统筹基金支付, fen) for one settled claim of an
    insured person — at an institution in the county, or out of the area (异地就医)."""

    class Settled(Aggregate.Created):
        """结算记录已导入. Field order is part of the stored form (bulk import)."""

        claim_id: str
        insured_ref: str
        community_code: str
        institution_code: str
        out_of_area: bool
        settled_on: date
        fund_fen: int
        actor: str
        import_ref: str

    class Corrected(Aggregate.Event):
        """结算记录已更正: the new full values, why, and who."""

        community_code: str
        institution_code: str
        out_of_area: bool
        settled_on: date
        fund_fen: int
        reason: str
        actor: str
        import_ref: str

    class Voided(Aggregate.Event):
        """结算记录已作废."""

        reason: str
        actor: str
        import_ref: str

    @staticmethod
    def create_id(claim_id: str, **_: Any) -> UUID:
        return ids.claim_id(claim_id)

    @event(Settled)
    def __init__(
        self,
        claim_id: str,
        insured_ref: str,
        community_code: str,
        institution_code: str,
        out_of_area: bool,
        settled_on: date,
        fund_fen: int,
        actor: str,
        import_ref: str,
    ) -> None:
        self.claim_id = claim_id
        self.insured_ref = insured_ref
        self.values = (community_code, institution_code, out_of_area, settled_on, fund_fen)

    @classmethod
    def settle(
        cls,
        *,
        claim_id: str,
        insured_ref: str,
        community_code: str,
        institution_code: str,
        out_of_area: bool,
        settled_on: date,
        fund_fen: int,
        actor: str,
        import_ref: str = "",
    ) -> Claim:
        return cls(
            claim_id=claim_id,
            insured_ref=insured_ref,
            community_code=community_code,
            institution_code=institution_code,
            out_of_area=out_of_area,
            settled_on=settled_on,
            fund_fen=require_fen(fund_fen, "统筹基金支付额", "the fund amount"),
            actor=actor,
            import_ref=import_ref,
        )

    def correct(
        self,
        *,
        community_code: str,
        institution_code: str,
        out_of_area: bool,
        settled_on: date,
        fund_fen: int,
        reason: str,
        actor: str,
        import_ref: str = "",
    ) -> None:
        label = f"结算记录 {self.claim_id}"
        self._refuse_if_voided(label)
        values = (community_code, institution_code, out_of_area, settled_on, fund_fen)
        if values == self.values:
            raise NothingToCorrect(f"{label} 更正内容与现有记录相同", f"{label}: nothing changes")
        self._corrected(
            community_code=community_code,
            institution_code=institution_code,
            out_of_area=out_of_area,
            settled_on=settled_on,
            fund_fen=require_fen(fund_fen, "统筹基金支付额", "the fund amount"),
            reason=require_text(reason, "更正原因", "a reason"),
            actor=actor,
            import_ref=import_ref,
        )

    @event(Corrected)
    def _corrected(
        self,
        community_code: str,
        institution_code: str,
        out_of_area: bool,
        settled_on: date,
        fund_fen: int,
        reason: str,
        actor: str,
        import_ref: str,
    ) -> None:
        self.values = (community_code, institution_code, out_of_area, settled_on, fund_fen)

    def void(self, *, reason: str, actor: str, import_ref: str = "") -> None:
        self._refuse_if_voided(f"结算记录 {self.claim_id}")
        self._voided(
            reason=require_text(reason, "作废原因", "a reason"), actor=actor, import_ref=import_ref
        )

    @event(Voided)
    def _voided(self, reason: str, actor: str, import_ref: str) -> None:
        self.voided = True

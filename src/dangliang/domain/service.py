"""ServiceRecord: one aggregate per delivered service item (服务记录).

A record is appended once (`Recorded`) and never changed; later facts point at it: a
`Corrected` event carries the full new values with a reason, a `Voided` event takes it out.
Events hold facts only (who, what, when, source); no equivalents or money.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import NothingToCorrect, RecordVoided
from dangliang.domain.values import positive_quantity


class ServiceRecord(Aggregate):
    class Recorded(Aggregate.Created):
        """服务记录已登记. Field order is part of the stored form: the bulk importer writes
        byte-identical events (tests/integration/test_import.py checks it)."""

        institution_code: str
        source_id: str
        staff_id: str
        item_code: str
        quantity: Decimal
        service_date: date
        patient_ref: str | None
        compliant: bool
        actor: str
        import_ref: str

    class Corrected(Aggregate.Event):
        """服务记录已更正: the new full values, why, and who."""

        item_code: str
        quantity: Decimal
        staff_id: str
        service_date: date
        compliant: bool
        reason: str
        actor: str

    class Voided(Aggregate.Event):
        """服务记录已作废."""

        reason: str
        actor: str

    @staticmethod
    def create_id(institution_code: str, source_id: str, **_: Any) -> UUID:
        return ids.service_record_id(institution_code, source_id)

    @event(Recorded)
    def __init__(
        self,
        institution_code: str,
        source_id: str,
        staff_id: str,
        item_code: str,
        quantity: Decimal,
        service_date: date,
        patient_ref: str | None,
        compliant: bool,
        actor: str,
        import_ref: str,
    ) -> None:
        self.institution_code = institution_code
        self.source_id = source_id
        self.staff_id = staff_id
        self.item_code = item_code
        self.quantity = quantity
        self.service_date = service_date
        self.patient_ref = patient_ref
        self.compliant = compliant
        self.voided = False

    @classmethod
    def record(
        cls,
        *,
        institution_code: str,
        source_id: str,
        staff_id: str,
        item_code: str,
        quantity: Decimal,
        service_date: date,
        patient_ref: str | None = None,
        compliant: bool = True,
        actor: str,
        import_ref: str = "",
    ) -> ServiceRecord:
        return cls(
            institution_code=institution_code,
            source_id=source_id,
            staff_id=staff_id,
            item_code=item_code,
            quantity=positive_quantity(quantity),
            service_date=service_date,
            patient_ref=patient_ref,
            compliant=compliant,
            actor=actor,
            import_ref=import_ref,
        )

    def correct(
        self,
        *,
        reason: str,
        actor: str,
        item_code: str | None = None,
        quantity: Decimal | None = None,
        staff_id: str | None = None,
        service_date: date | None = None,
        compliant: bool | None = None,
    ) -> None:
        """Correct the record; a field given as None stays as it is (blank = unchanged)."""
        self._refuse_if_voided("更正", "correct")
        new_item = self.item_code if item_code is None else item_code
        new_quantity = self.quantity if quantity is None else positive_quantity(quantity)
        new_staff = self.staff_id if staff_id is None else staff_id
        new_date = self.service_date if service_date is None else service_date
        new_compliant = self.compliant if compliant is None else compliant
        current = (self.item_code, self.quantity, self.staff_id, self.service_date, self.compliant)
        if (new_item, new_quantity, new_staff, new_date, new_compliant) == current:
            raise NothingToCorrect(
                f"更正内容与现有记录相同：{self.institution_code}/{self.source_id}",
                f"the correction changes nothing: {self.institution_code}/{self.source_id}",
            )
        self._corrected(
            item_code=new_item,
            quantity=new_quantity,
            staff_id=new_staff,
            service_date=new_date,
            compliant=new_compliant,
            reason=reason,
            actor=actor,
        )

    @event(Corrected)
    def _corrected(
        self,
        item_code: str,
        quantity: Decimal,
        staff_id: str,
        service_date: date,
        compliant: bool,
        reason: str,
        actor: str,
    ) -> None:
        self.item_code = item_code
        self.quantity = quantity
        self.staff_id = staff_id
        self.service_date = service_date
        self.compliant = compliant

    def void(self, *, reason: str, actor: str) -> None:
        self._refuse_if_voided("作废", "void")
        self._voided(reason=reason, actor=actor)

    @event(Voided)
    def _voided(self, reason: str, actor: str) -> None:
        self.voided = True

    def _refuse_if_voided(self, verb_zh: str, verb_en: str) -> None:
        if self.voided:
            raise RecordVoided(
                f"记录 {self.institution_code}/{self.source_id} 已作废，不能再{verb_zh}",
                f"record {self.institution_code}/{self.source_id} is voided; "
                f"it cannot be {verb_en}ed",
            )

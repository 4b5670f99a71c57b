"""Staff member (人员) and their postings: which institution, post and establishment, when."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue

POSTS_ZH = {
    "clinical": "临床",
    "nursing": "护理",
    "public_health": "公共卫生",
    "medical_tech": "医技",
    "pharmacy": "药剂",
    "admin": "管理",
    "it": "信息",
    "village_doctor": "乡村医生",
}


class Staff(Aggregate):
    class Registered(Aggregate.Created):
        """人员已登记."""

        staff_id: str
        name: str
        actor: str

    class Posted(Aggregate.Event):
        """任职记录: a posting from `from_date` (inclusive) to `to_date` (inclusive, None = open).
        A posting with the same from_date replaces the earlier one (e.g. a leaving date set)."""

        institution_code: str
        post: str
        establishment: str
        from_date: date
        to_date: date | None
        actor: str

    class Renamed(Aggregate.Event):
        name: str
        actor: str

    @staticmethod
    def create_id(staff_id: str, **_: Any) -> UUID:
        return ids.staff_id(staff_id)

    @event(Registered)
    def __init__(self, staff_id: str, name: str, actor: str) -> None:
        self.staff_id = staff_id
        self.name = name
        self.postings: dict[date, tuple[str, str, str, date | None]] = {}

    @classmethod
    def register(cls, *, staff_id: str, name: str, actor: str) -> Staff:
        return cls(staff_id=staff_id, name=name, actor=actor)

    def rename(self, *, name: str, actor: str) -> bool:
        if name == self.name:
            return False
        self._renamed(name=name, actor=actor)
        return True

    @event(Renamed)
    def _renamed(self, name: str, actor: str) -> None:
        self.name = name

    def post_to(
        self,
        *,
        institution_code: str,
        post: str,
        establishment: str,
        from_date: date,
        to_date: date | None,
        actor: str,
    ) -> bool:
        """Record a posting; False (nothing recorded) if the same posting is already there."""
        if post not in POSTS_ZH:
            raise InvalidValue(f"未知岗位：{post}", f"unknown post: {post}")
        if establishment not in ("on", "off"):
            raise InvalidValue(
                f"编制应为在编或编外：{establishment}",
                f"establishment must be on or off: {establishment}",
            )
        if to_date is not None and to_date < from_date:
            raise InvalidValue(
                f"截止日期早于起始日期：{to_date} < {from_date}",
                f"to_date is before from_date: {to_date} < {from_date}",
            )
        for other_from, (_, _, _, other_to) in self.postings.items():
            if other_from != from_date and _overlaps(from_date, to_date, other_from, other_to):
                raise InvalidValue(
                    f"{self.staff_id} 的任职期间与 {other_from} 起的任职重叠",
                    f"{self.staff_id}: posting overlaps the posting from {other_from}",
                )
        new = (institution_code, post, establishment, to_date)
        if self.postings.get(from_date) == new:
            return False
        self._posted(
            institution_code=institution_code,
            post=post,
            establishment=establishment,
            from_date=from_date,
            to_date=to_date,
            actor=actor,
        )
        return True

    @event(Posted)
    def _posted(
        self,
        institution_code: str,
        post: str,
        establishment: str,
        from_date: date,
        to_date: date | None,
        actor: str,
    ) -> None:
        self.postings[from_date] = (institution_code, post, establishment, to_date)

    def institution_on(self, day: date) -> str | None:
        for from_date, (institution_code, _, _, to_date) in self.postings.items():
            if from_date <= day and (to_date is None or day <= to_date):
                return institution_code
        return None


def _overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    return (a_to is None or b_from <= a_to) and (b_to is None or a_from <= b_to)

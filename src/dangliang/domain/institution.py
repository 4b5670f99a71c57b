"""Institution (机构): a township / community health centre or a village clinic under one."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue

KINDS_ZH = {
    "township_health_centre": "乡镇卫生院",
    "community_health_centre": "社区卫生服务中心",
    "village_clinic": "村卫生室",
}


class Institution(Aggregate):
    class Registered(Aggregate.Created):
        """机构已登记."""

        code: str
        name: str
        kind: str
        parent_code: str | None
        remote: bool
        actor: str

    class Described(Aggregate.Event):
        """机构信息已变更: the new name, kind, parent and remote flag."""

        name: str
        kind: str
        parent_code: str | None
        remote: bool
        actor: str

    class HeadcountSet(Aggregate.Event):
        """核定编制数: establishment headcount for a year."""

        year: int
        headcount: int
        actor: str

    @staticmethod
    def create_id(code: str, **_: Any) -> UUID:
        return ids.institution_id(code)

    @event(Registered)
    def __init__(
        self, code: str, name: str, kind: str, parent_code: str | None, remote: bool, actor: str
    ) -> None:
        self.code = code
        self._describe(name, kind, parent_code, remote)
        self.headcount: dict[int, int] = {}

    @classmethod
    def register(
        cls, *, code: str, name: str, kind: str, parent_code: str | None, remote: bool, actor: str
    ) -> Institution:
        check_kind(kind, parent_code)
        return cls(
            code=code, name=name, kind=kind, parent_code=parent_code, remote=remote, actor=actor
        )

    def describe(
        self, *, name: str, kind: str, parent_code: str | None, remote: bool, actor: str
    ) -> bool:
        """Record changed details; returns False (and records nothing) when nothing changed."""
        check_kind(kind, parent_code)
        if (name, kind, parent_code, remote) == (
            self.name,
            self.kind,
            self.parent_code,
            self.remote,
        ):
            return False
        self._described(name=name, kind=kind, parent_code=parent_code, remote=remote, actor=actor)
        return True

    @event(Described)
    def _described(
        self, name: str, kind: str, parent_code: str | None, remote: bool, actor: str
    ) -> None:
        self._describe(name, kind, parent_code, remote)

    def _describe(self, name: str, kind: str, parent_code: str | None, remote: bool) -> None:
        self.name = name
        self.kind = kind
        self.parent_code = parent_code
        self.remote = remote

    def set_headcount(self, *, year: int, headcount: int, actor: str) -> bool:
        if headcount < 0:
            raise InvalidValue("编制人数不能为负数", f"headcount must not be negative: {headcount}")
        if self.headcount.get(year) == headcount:
            return False
        self._headcount_set(year=year, headcount=headcount, actor=actor)
        return True

    @event(HeadcountSet)
    def _headcount_set(self, year: int, headcount: int, actor: str) -> None:
        self.headcount[year] = headcount


def check_kind(kind: str, parent_code: str | None) -> None:
    if kind not in KINDS_ZH:
        raise InvalidValue(f"未知机构类型：{kind}", f"unknown institution kind: {kind}")
    if kind == "village_clinic" and not parent_code:
        raise InvalidValue(
            "村卫生室必须填写上级机构", "a village clinic needs a parent institution"
        )
    if kind != "village_clinic" and parent_code:
        raise InvalidValue(
            "只有村卫生室有上级机构", "only a village clinic has a parent institution"
        )

"""Catalogue item (服务项目) and its dated equivalent values (当量值).

A value takes effect on the 1st of a month and holds until the next value; a change is a new
event and the whole history stays in the log, with the policy reference for each value.
Setting a value for a month that already had one is a retroactive change: recorded, never
overwritten in place.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue
from dangliang.domain.values import equivalent_value, require_first_of_month

CATEGORIES_ZH = {"basic_medical": "基本医疗", "basic_public_health": "基本公共卫生"}


class CatalogueItem(Aggregate):
    class Defined(Aggregate.Created):
        """服务项目已定义."""

        item_code: str
        name: str
        category: str
        unit: str
        actor: str

    class Described(Aggregate.Event):
        name: str
        category: str
        unit: str
        actor: str

    class ValueSet(Aggregate.Event):
        """当量值: value from `effective_from` (1st of a month) with its policy reference."""

        equivalent_value: Decimal
        effective_from: date
        reference: str
        actor: str

    @staticmethod
    def create_id(item_code: str, **_: Any) -> UUID:
        return ids.catalogue_item_id(item_code)

    @event(Defined)
    def __init__(self, item_code: str, name: str, category: str, unit: str, actor: str) -> None:
        self.item_code = item_code
        self.name = name
        self.category = category
        self.unit = unit
        self.values: dict[date, tuple[Decimal, str]] = {}

    @classmethod
    def define(
        cls, *, item_code: str, name: str, category: str, unit: str, actor: str
    ) -> CatalogueItem:
        check_category(category)
        return cls(item_code=item_code, name=name, category=category, unit=unit, actor=actor)

    def describe(self, *, name: str, category: str, unit: str, actor: str) -> bool:
        check_category(category)
        if (name, category, unit) == (self.name, self.category, self.unit):
            return False
        self._described(name=name, category=category, unit=unit, actor=actor)
        return True

    @event(Described)
    def _described(self, name: str, category: str, unit: str, actor: str) -> None:
        self.name = name
        self.category = category
        self.unit = unit

    def set_value(
        self, *, value: Decimal, effective_from: date, reference: str, actor: str
    ) -> bool:
        """Record a value; False (nothing recorded) when the same value and reference stand."""
        value = equivalent_value(value)
        require_first_of_month(effective_from)
        if not reference.strip():
            raise InvalidValue(
                "当量值必须注明政策依据", "an equivalent value needs a policy reference"
            )
        if self.values.get(effective_from) == (value, reference):
            return False
        self._value_set(
            equivalent_value=value, effective_from=effective_from, reference=reference, actor=actor
        )
        return True

    @event(ValueSet)
    def _value_set(
        self, equivalent_value: Decimal, effective_from: date, reference: str, actor: str
    ) -> None:
        self.values[effective_from] = (equivalent_value, reference)

    def value_on(self, day: date) -> Decimal | None:
        starts = [d for d in self.values if d <= day]
        return self.values[max(starts)][0] if starts else None


def check_category(category: str) -> None:
    if category not in CATEGORIES_ZH:
        raise InvalidValue(f"未知类别：{category}", f"unknown category: {category}")

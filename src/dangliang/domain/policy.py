"""A county's policy of one payment scheme as facts — compensation of institutions (补偿政策)
or the medical-insurance fund (医保基金政策), one aggregate each: which parameter bundle was
adopted, and every dated change of a parameter since (a unit price, the benchmark pay level,
the advance ratio…), each with its reason and approver.

Events hold the bundle in canonical JSON (`ParameterTree.canonical_json`) and its digest, so the
parameters any computation used are in the log, whatever happens to the file later. A change
holds its value in the same canonical form. Which values are valid is checked before the
command (the policy loader knows units); the aggregate keeps the facts and refuses a change
without a reason or approver (诸暨方案 二(四)3: a unit price changes only when 卫健、财政 decide).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from dangliang.domain import ids
from dangliang.domain.errors import InvalidValue
from dangliang.domain.values import require_text

SCHEMES = {"compensation": "补偿政策", "insurance": "医保基金政策"}


class CountyPolicy(Aggregate):
    class Established(Aggregate.Created):
        """本县政策已建立 (first adoption follows in the same save). Events recorded before
        the insurance scheme existed carry no `scheme`: they are compensation's."""

        actor: str
        scheme: str

    class Adopted(Aggregate.Event):
        """政策参数包已采用: the bundle (canonical JSON) in force from now on."""

        bundle_name: str
        canonical_json: str
        digest: str
        reference: str
        actor: str

    class ParameterChanged(Aggregate.Event):
        """政策参数已调整: `path` takes `value` (canonical JSON) from `start`."""

        path: str
        start: date
        value_json: str
        reason: str
        approver: str
        actor: str

    @staticmethod
    def create_id(scheme: str = "compensation", **_: Any) -> UUID:
        return ids.insurance_policy_id() if scheme == "insurance" else ids.county_policy_id()

    @event(Established)
    def __init__(self, actor: str, scheme: str = "compensation") -> None:
        self.scheme = scheme
        self.digest: str | None = None
        self.changes: dict[tuple[str, date], str] = {}  # since the last adoption

    @classmethod
    def establish(cls, *, actor: str, scheme: str = "compensation") -> CountyPolicy:
        if scheme not in SCHEMES:
            raise InvalidValue(f"没有政策类别 {scheme!r}", f"no policy scheme {scheme!r}")
        return cls(actor=actor, scheme=scheme)

    def adopt(
        self, *, bundle_name: str, canonical_json: str, digest: str, reference: str, actor: str
    ) -> bool:
        """Adopt a bundle; False (nothing recorded) when it is the one in force, unchanged."""
        require_text(reference, "采用依据（文号或会议纪要）", "an adoption reference")
        if digest == self.digest and not self.changes:
            return False
        self._adopted(
            bundle_name=bundle_name,
            canonical_json=canonical_json,
            digest=digest,
            reference=reference.strip(),
            actor=actor,
        )
        return True

    @event(Adopted)
    def _adopted(
        self, bundle_name: str, canonical_json: str, digest: str, reference: str, actor: str
    ) -> None:
        self.digest = digest
        self.changes = {}

    def change(
        self, *, path: str, start: date, value_json: str, reason: str, approver: str, actor: str
    ) -> bool:
        """Record a dated change; False when exactly this change is already in force."""
        if self.digest is None:
            raise InvalidValue(
                "尚未采用政策参数包，不能调整参数", "no policy bundle adopted yet: adopt one first"
            )
        require_text(reason, "调整原因", "a reason")
        require_text(approver, "批准人", "an approver")
        if self.changes.get((path, start)) == value_json:
            return False
        self._changed(
            path=path,
            start=start,
            value_json=value_json,
            reason=reason.strip(),
            approver=approver.strip(),
            actor=actor,
        )
        return True

    @event(ParameterChanged)
    def _changed(
        self, path: str, start: date, value_json: str, reason: str, approver: str, actor: str
    ) -> None:
        self.changes[(path, start)] = value_json

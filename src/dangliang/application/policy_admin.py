"""Policy administration (政策参数管理): adopt a bundle, record a dated change of one
parameter, list the parameters in force."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from dangliang.application.core import Core
from dangliang.domain import ids
from dangliang.domain.policy import CountyPolicy
from dangliang.policy.bundle_loader import BUILTIN_BUNDLES, load_builtin_bundle, load_bundle
from dangliang.policy.parameter_values import show_value
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import parse_value_text, value_to_canonical


class PolicyAdmin(Core):
    def adopt_policy(
        self, source: str, *, reference: str, actor: str
    ) -> tuple[bool, ParameterTree]:
        """Validate a bundle (a file, or a built-in name such as `zhuji`) and record its
        adoption; False when exactly this bundle is already in force with no later changes."""
        tree = (
            load_builtin_bundle(source)
            if source in BUILTIN_BUNDLES and not Path(source).exists()
            else load_bundle(source)
        )
        policy = self._county_policy()
        if policy is None:
            policy = CountyPolicy.establish(actor=actor)
        changed = policy.adopt(
            bundle_name=tree.source,
            canonical_json=tree.canonical_json(),
            digest=tree.digest(),
            reference=reference,
            actor=actor,
        )
        if changed:
            self.log.save(policy)
        return changed, tree

    def change_parameter(
        self, path: str, value: str, *, start: date, reason: str, approver: str, actor: str
    ) -> bool:
        """Record one dated change of a parameter (a unit price, the advance ratio…)."""
        in_force = self.policy().tree
        param = in_force.parameter(path)
        parsed = parse_value_text(value, param.unit)
        in_force.with_value(path, start, parsed, reason)  # checks the date as a load would
        policy = self._county_policy()
        assert policy is not None  # policy() above found an adoption
        changed = policy.change(
            path=path,
            start=start,
            value_json=json.dumps(value_to_canonical(parsed), ensure_ascii=False),
            reason=reason,
            approver=approver,
            actor=actor,
        )
        if changed:
            self.log.save(policy)
        return changed

    def _county_policy(self) -> CountyPolicy | None:
        try:
            found: CountyPolicy = self.log.repository.get(ids.county_policy_id())
        except AggregateNotFoundError:
            return None
        return found

    def parameters_in_force(self, *, on: date | None, position: int) -> dict[str, Any]:
        """The policy at a log position as rows: every dated value of every parameter (or
        the one in force `on` a day), with its unit and reference."""
        found = self.policy(position=position)
        rows = []
        for path in found.tree:
            param = found.tree.parameter(path)
            for v in param.values:
                if on is None or param.in_force(on) == v:
                    rows.append(
                        {
                            "path": path,
                            "unit": param.unit,
                            "effective_from": v.start.isoformat(),
                            "value": show_value(v.value),
                            "reference": v.reference,
                        }
                    )
        return {
            "bundle": found.bundle_name,
            "digest": found.tree.digest(),
            "position": position,
            "parameters": rows,
        }

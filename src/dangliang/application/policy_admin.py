"""Policy administration (政策参数管理): adopt a bundle, record a dated change of one
parameter, list the parameters in force — of either scheme: compensation of institutions
(补偿政策) or the medical-insurance fund (医保基金政策); a bundle names its scheme in its
metadata (`scheme: insurance`; none = compensation)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from dangliang.application.core import Core
from dangliang.domain.policy import SCHEMES, CountyPolicy
from dangliang.domain.problems import Problem
from dangliang.policy.bundle_loader import BUILTIN_BUNDLES, load_builtin_bundle, load_bundle
from dangliang.policy.parameter_values import PolicyError, show_value
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import parse_value_text, value_to_canonical


class PolicyAdmin(Core):
    def adopt_policy(
        self, source: str, *, reference: str, actor: str, scheme: str = "compensation"
    ) -> tuple[bool, ParameterTree]:
        """Validate a bundle (a file, or a built-in name such as `zhuji`) and record its
        adoption; False when exactly this bundle is already in force with no later changes."""
        tree = (
            load_builtin_bundle(source)
            if source in BUILTIN_BUNDLES and not Path(source).exists()
            else load_bundle(source)
        )
        declared = tree.metadata.get("scheme", "compensation")
        if declared != scheme:
            command = "insurance policy load" if declared == "insurance" else "policy load"
            raise PolicyError(
                [
                    Problem(
                        tree.source,
                        None,
                        "metadata.scheme",
                        f"这是{SCHEMES.get(declared, declared)}参数包，"
                        f"请用 dangliang {command} 采用",
                        f"this is a {declared} bundle: adopt it with `dangliang {command}`",
                    )
                ]
            )
        policy = self._county_policy(scheme)
        if policy is None:
            policy = CountyPolicy.establish(actor=actor, scheme=scheme)
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
        self,
        path: str,
        value: str,
        *,
        start: date,
        reason: str,
        approver: str,
        actor: str,
        scheme: str = "compensation",
    ) -> bool:
        """Record one dated change of a parameter (a unit price, the advance ratio…)."""
        in_force = self.policy(scheme=scheme).tree
        param = in_force.parameter(path)
        parsed = parse_value_text(value, param.unit)
        in_force.with_value(path, start, parsed, reason)  # checks the date as a load would
        policy = self._county_policy(scheme)
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

    def _county_policy(self, scheme: str) -> CountyPolicy | None:
        try:
            found: CountyPolicy = self.log.repository.get(CountyPolicy.create_id(scheme=scheme))
        except AggregateNotFoundError:
            return None
        return found

    def parameters_in_force(
        self, *, on: date | None, position: int, scheme: str = "compensation"
    ) -> dict[str, Any]:
        """The policy at a log position as rows: every dated value of every parameter (or
        the one in force `on` a day), with its unit and reference."""
        found = self.policy(position=position, scheme=scheme)
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

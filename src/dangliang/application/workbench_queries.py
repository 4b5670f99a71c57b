"""The reads the workbench's pages need besides the computations (工作台查询): names to label
codes with, the years the cube holds, the log's head and a scheme's policy history (who
adopted or changed what, when, why, old → new).

The web layer reads only through the application (docs/architecture.md): these methods
catch the read models up, as every other query does, and read them through the query
functions of `projections`; the pages never hold a table or a connection. `RunRecord` (what a
recorded run holds) is re-exported here for the pages that show runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from dangliang.application.core import Core
from dangliang.policy.parameter_values import show_value
from dangliang.policy.parameters import ParameterTree
from dangliang.policy.parameters_from_log import tree_from_canonical_json, value_from_canonical
from dangliang.projections import registry as reg
from dangliang.projections.equivalents_queries import months_held
from dangliang.projections.facts_queries import RunRecord, policy_facts

__all__ = ["PolicyHistoryEntry", "RunRecord", "WorkbenchQueries"]


@dataclass
class PolicyHistoryEntry:
    """One adoption of a bundle or one dated change of a parameter, as the log recorded it."""

    position: int
    at: datetime | None  # when it was recorded (the log's own time)
    kind: str  # "adoption" or "change"
    actor: str
    reference: str  # the adoption's document, or the change's reason
    approver: str = ""
    bundle: str = ""
    digest: str = ""
    path: str = ""
    effective_from: str = ""
    old: str = ""  # the value in force on the effective date just before the change
    new: str = ""
    changed_paths: list[str] = field(default_factory=list)  # an adoption's differing paths


class WorkbenchQueries(Core):
    def log_head(self) -> int:
        """The log's head position now (what a page says it shows; nothing caught up)."""
        return self.log.head()

    def institution_names(self) -> dict[str, str]:
        """Institution code → name, as the registry stands at the log's head."""
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.institution_names(conn)

    def item_names(self) -> dict[str, str]:
        """Catalogue item code → name, as the registry stands at the log's head."""
        self._catch_up_registry()
        with self.engine.connect() as conn:
            return reg.item_names(conn)

    def service_years(self) -> list[int]:
        """The years from the first to the last month with service records, newest first."""
        self.catch_up()
        with self.engine.connect() as conn:
            first, last = months_held(conn, self.equivalents_projection().t)
        if not first or not last:
            return []
        return list(range(int(last[:4]), int(first[:4]) - 1, -1))

    def policy_history(
        self, scheme: str = "compensation", *, position: int | None = None
    ) -> list[PolicyHistoryEntry]:
        """Every adoption and parameter change of a scheme up to a log position (now when
        None), oldest first; each change with the value it replaced (the value in force on
        its effective date just before it) and each later adoption with the paths whose
        dated values it changed. `policy()` keeps only what followed the last adoption."""
        at = self.resolve_position(as_of=None, position=position)
        with self.engine.connect() as conn:
            stored = policy_facts(conn, scheme, at)
        out: list[PolicyHistoryEntry] = []
        tree: ParameterTree | None = None
        for nid, kind, body in stored:
            moment = self._recorded_at(nid)
            if kind == "policy":
                new_tree = tree_from_canonical_json(body["canonical_json"], body["bundle_name"])
                out.append(
                    PolicyHistoryEntry(
                        nid,
                        moment,
                        "adoption",
                        body.get("actor", ""),
                        body["reference"],
                        bundle=body["bundle_name"],
                        digest=body["digest"],
                        changed_paths=_differing(tree, new_tree),
                    )
                )
                tree = new_tree
            elif tree is not None:
                param = tree.parameter(body["path"])
                start = date.fromisoformat(body["start"])
                before = param.in_force(start)
                value = value_from_canonical(json.loads(body["value_json"]), param.unit)
                out.append(
                    PolicyHistoryEntry(
                        nid,
                        moment,
                        "change",
                        body.get("actor", ""),
                        body["reason"],
                        approver=body["approver"],
                        path=body["path"],
                        effective_from=body["start"],
                        old=show_value(before.value) if before else "—",
                        new=show_value(value),
                    )
                )
                reference = f"{body['reason']}（批准：{body['approver']}）"
                tree = tree.with_value(body["path"], start, value, reference)
        return out


def _differing(old: ParameterTree | None, new: ParameterTree) -> list[str]:
    """The paths whose dated values a new adoption changes (none listed for the first)."""
    if old is None:
        return []
    paths = set(old) | set(new)
    return sorted(
        p
        for p in paths
        if p not in old or p not in new or old.parameter(p).values != new.parameter(p).values
    )

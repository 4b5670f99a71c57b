"""Computations kept by log position (计算结果缓存).

Why keeping them is correct: the event log is append-only, and every computation reads the
read models *as the log stood at a position P* (`cells(..., position=P)`, `policy_at(P)`,
`facts_for_year(P)`: rows with notification id ≤ P). Nothing recorded later changes what is
visible at P, so "the inputs of 2024 at P" and "the settlement of 2024 at P" are the same for
ever (docs/compensation.md: the same call with the same position gives the same numbers).
A key therefore names everything the value depends on:

- the active version of every read model it reads (`projection_versions`: the equivalents
  cube's table suffix, which a blue-green rebuild switches, and the formats of the inputs and
  the registry, which an upgrade replays): read models rebuilt from the same log must give
  the same answer, but a key per version means a rebuild never has to be trusted to;
- the period's label and the position;
- for a result, the parameters it was computed with: the policy's own (`BASELINE`), or a
  what-if's tree named by its digest (the digest covers every dated value with its
  reference, so two trees with one digest compute the same trace).

A new record moves the log's head, so the next request asks for a new key and computes it;
the old entries fall out of the LRU. A value is only stored when the cube stood at or beyond
P before and after it was computed (`keep`): a plain (not blue-green) rebuild in another
process empties the cube and rewinds its position, and what was read meanwhile is not kept.
The application also empties the cache when it rebuilds.

Values are shared between requests (FastAPI runs sync endpoints in a thread pool): callers
read them and never change them. Nothing does: `Computation`, `CountyResult`,
`PerformanceResult` are only read by `as_json`, `explain`, `difference`, which build new
dicts (`to_json` copies every container), the parameter tree is immutable, and the rule
steps never write into the gathered inputs (what-if already runs them twice on one gather).

Concurrent misses of one key compute it once: the first caller computes outside the cache's
lock while later callers of that key wait for it (other keys are not held up).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
BASELINE = "baseline"  # a result computed with the policy's own parameters


class PositionKeyedLRU:
    """A small bounded LRU of immutable values, safe across threads, computing each missing
    key once however many threads ask for it at the same time."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def get(
        self, key: Hashable, make: Callable[[], T], *, keep: Callable[[], bool] | None = None
    ) -> T:
        """The value kept for `key`, else `make()` (kept when `keep()` says so, or always)."""
        found, ok = self._look(key)
        if ok:
            return found  # type: ignore[no-any-return]
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        with making:  # one maker per key; the others wait here, then find its value
            found, ok = self._look(key)
            if ok:
                return found  # type: ignore[no-any-return]
            try:
                with self._lock:
                    self.misses += 1
                made = make()
                if keep is None or keep():
                    with self._lock:
                        self._entries[key] = made
                        self._entries.move_to_end(key)
                        while len(self._entries) > self.size:
                            self._entries.popitem(last=False)
                return made
            finally:
                with self._lock:
                    if self._making.get(key) is making:
                        del self._making[key]

    def _look(self, key: Hashable) -> tuple[Any, bool]:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key], True
        return None, False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def kept_keys(self) -> list[Hashable]:
        """The keys kept, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class ComputationCache:
    """The gathered inputs of a period (the expensive read: the whole county's cube for the
    year and the year before) and the results computed from them, per application."""

    def __init__(self, *, gathers: int = 8, results: int = 32) -> None:
        self.gathers = PositionKeyedLRU(gathers)
        self.results = PositionKeyedLRU(results)

    def clear(self) -> None:
        self.gathers.clear()
        self.results.clear()

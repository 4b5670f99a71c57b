"""What the steps of the demo share (the county's year in `county_year`, the insurance fund's
in `fund_year`): the maker-checker names and references of its runs, the step table and the
clock that times it, the progress display, and columns that line up with Chinese text."""

from __future__ import annotations

import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol

APPROVAL_REFERENCE = "演示审批 demo approval"
PAID_REFERENCE = "演示 demo"
STEPS = {
    1: "generate",
    2: "load",
    3: "import",
    4: "equivalents",
    5: "policy",
    6: "inputs",
    7: "advances",
    8: "settlement",
    9: "distribution",
    10: "summary",
    11: "documents",
    12: "fund inputs",
    13: "fund runs",
    14: "fund summary",
    15: "fund documents",
}


class ProgressDisplay(Protocol):
    """Where long steps report progress (the command line passes a terminal line)."""

    def __call__(self, phase: str, done: int, total: int) -> None: ...

    def finish(self) -> None: ...


ProgressLineFactory = Callable[[str], ProgressDisplay]  # the unit counted ("rows") → a display


def checker(actor: str) -> str:
    """The demo's second person: whoever approves must not be whoever computed the run."""
    return f"{actor}-checker"


class Clock:
    """The time each step took (several laps may belong to one step) and the total."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.steps: dict[int, float] = defaultdict(float)

    def lap(self, step: int) -> str:
        """Add the time since the previous lap to `step`; "(1.2s)" for the line it ends."""
        now = time.monotonic()
        took = now - self.last
        self.steps[step] += took
        self.last = now
        return f"({took:.1f}s)"

    def report(self) -> str:
        parts = " · ".join(f"{n}. {STEPS[n]} {s:.1f}s" for n, s in sorted(self.steps.items()))
        return f"— 用时 / time: {parts}; 共 / total {time.monotonic() - self.started:.1f}s"


def display_width(text: str) -> int:
    """Columns on a terminal: a CJK character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def rjust(text: str, width: int) -> str:
    return " " * max(width - display_width(text), 1) + text


def ljust(text: str, width: int) -> str:
    return text + " " * max(width - display_width(text), 1)

"""The synthetic county's service records for the demo generator (`generator.py`): which
items each post records and how often, and the rows themselves, streamed out day by day in
chunks so that memory does not grow with the number of records. The per-row work is a few
`random()` calls and `bisect`s over pools prepared beforehand.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from itertools import accumulate
from typing import TypeVar

from dangliang.demo.county_reference import BASIC_MEDICAL, BASIC_PUBLIC_HEALTH, Staff

PROGRESS_EVERY = 10_000

# Which items each post records, with relative frequencies (outpatient visits common,
# surgery rare). Village doctors: simple outpatient work and public health.
# fmt: off
ITEM_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "clinical": (
        ("BM001", 40), ("BM004", 20), ("BM003", 5), ("BM002", 3), ("BM005", 1), ("BM006", 8),
        ("BM008", 3), ("BM009", 3), ("BM010", 0.5), ("BM011", 0.2), ("BM012", 0.05),
        ("BM013", 1), ("BM021", 2), ("BM022", 1), ("BM023", 1.5), ("BM024", 0.8),
        ("BM025", 0.5), ("BM031", 1), ("BM032", 0.5), ("BM034", 0.3), ("BM035", 1),
        ("PH011", 1), ("PH012", 3), ("PH013", 2), ("PH014", 0.3), ("PH016", 0.5),
        ("PH017", 0.3), ("PH019", 2), ("PH020", 3),
    ),
    "nursing": (
        ("BM014", 2), ("BM015", 3), ("BM016", 2), ("BM017", 12), ("BM018", 8), ("BM019", 6),
        ("BM020", 0.5), ("BM033", 4), ("PH005", 10), ("PH006", 3), ("PH007", 0.5),
        ("PH008", 1), ("PH009", 0.5), ("PH010", 2),
    ),
    "public_health": (
        ("PH001", 3), ("PH002", 8), ("PH003", 0.3), ("PH004", 0.3), ("PH005", 6), ("PH006", 4),
        ("PH007", 0.6), ("PH008", 1.5), ("PH009", 0.8), ("PH010", 6), ("PH011", 3),
        ("PH012", 10), ("PH013", 6), ("PH014", 1), ("PH015", 0.5), ("PH016", 1.5),
        ("PH017", 0.5), ("PH018", 1), ("PH019", 3), ("PH020", 5), ("PH021", 3), ("PH022", 2),
        ("PH023", 2), ("PH024", 1), ("PH025", 0.5),
    ),
    "medical_tech": (
        ("BM026", 10), ("BM027", 8), ("BM028", 6), ("BM029", 5), ("BM030", 4), ("PH010", 2),
    ),
    "pharmacy": (("BM007", 1),),
    "admin": (("PH002", 3), ("PH018", 1), ("PH025", 0.3)),
    "it": (("PH002", 1), ("PH025", 0.2)),
    "village_doctor": (
        ("BM001", 30), ("BM018", 4), ("BM019", 3), ("BM006", 5), ("BM005", 2), ("BM024", 1),
        ("BM021", 0.5), ("PH001", 2), ("PH002", 6), ("PH003", 0.3), ("PH004", 0.3),
        ("PH010", 2), ("PH011", 1), ("PH012", 12), ("PH013", 7), ("PH014", 0.5), ("PH019", 3),
        ("PH020", 6), ("PH021", 2), ("PH022", 1.5), ("PH024", 1),
    ),
}
# fmt: on
NON_COMPLIANT_SHARE = 0.03


# --- service records --------------------------------------------------------------------

ServiceRow = tuple[str, str, str, str, str, str, str, str]
T = TypeVar("T")
_Weighted = tuple[list[T], list[float], float]


def _day_quotas(days: Sequence[date], records: int) -> list[int]:
    """Split `records` over the days exactly (largest remainder), busier on weekdays and in
    the winter months; integer arithmetic, so the split is the same on every machine."""
    weekday = (115, 100, 100, 100, 100, 55, 35)
    weights = [weekday[d.weekday()] * (110 if d.month in (1, 2, 12) else 100) for d in days]
    total = sum(weights)
    quotas = [records * w // total for w in weights]
    short = records - sum(quotas)
    by_remainder = sorted(range(len(days)), key=lambda d: (-(records * weights[d] % total), d))
    for d in by_remainder[:short]:
        quotas[d] += 1
    return quotas


def service_chunks(
    rng: random.Random, staff: Sequence[Staff], days: Sequence[date], records: int
) -> Iterator[list[ServiceRow]]:
    """Service rows in date order, in chunks of about PROGRESS_EVERY rows.

    Each row: a staff member active that day (weighted by post activity), an item from that
    post's pool, a quantity, a pseudonymous patient and, for public health, compliance.
    """
    pools = {post: _weighted(ITEM_POOLS[post]) for post in ITEM_POOLS}
    public_health = {i[0] for i in BASIC_PUBLIC_HEALTH}
    items = {i[0]: (i[4], i[0] in public_health) for i in (*BASIC_MEDICAL, *BASIC_PUBLIC_HEALTH)}
    sequence = {s.institution_code: 0 for s in staff}
    rand, bits = rng.random, rng.getrandbits
    chunk: list[ServiceRow] = []
    roster: _Weighted[tuple[str, str, _Weighted[str]]] = ([], [], 0.0)
    active_key: tuple[int, ...] | None = None
    for day, quota in zip(days, _day_quotas(days, records), strict=True):
        key = tuple(
            n
            for n, s in enumerate(staff)
            if s.from_date <= day and (s.to_date is None or day <= s.to_date)
        )
        if key != active_key:  # the roster changes only on the few join/leave days
            active_key = key
            roster = _weighted(
                ((s.staff_id, s.institution_code, pools[s.post]), s.activity)
                for s in (staff[n] for n in key)
            )
        people, bounds, total = roster
        iso = day.isoformat()
        for _ in range(quota):
            staff_id, inst, (codes, item_bounds, item_total) = people[
                bisect(bounds, rand() * total)
            ]
            code = codes[bisect(item_bounds, rand() * item_total)]
            qmax, is_ph = items[code]
            sequence[inst] += 1
            chunk.append(
                (
                    f"HIS{sequence[inst]:09d}",
                    inst,
                    staff_id,
                    code,
                    "1" if qmax == 1 else str(1 + int(rand() * qmax)),
                    iso,
                    f"P{bits(48):012x}",
                    ("false" if rand() < NON_COMPLIANT_SHARE else "true") if is_ph else "",
                )
            )
            if len(chunk) >= PROGRESS_EVERY:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _weighted(pairs: Iterable[tuple[T, float]]) -> _Weighted[T]:
    """(choices, boundaries, total): `choices[bisect(boundaries, random() * total)]` picks
    one in proportion to its weight. The last boundary is left out, so even a product that
    rounds up to `total` stays in range."""
    choices, weights = zip(*pairs, strict=True)
    cumulative = list(accumulate(weights))
    return list(choices), cumulative[:-1], cumulative[-1]

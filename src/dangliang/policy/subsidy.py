"""Institution compensation (机构补偿): the rule steps of docs/compensation.md as a pipeline.

Every step is a small function of (period, inputs, parameters) that reads its parameters
through a `StepRecorder`, so the trace of what it used is kept with its result (see
`policy.trace`). Pure: no I/O, no clock; the application gathers the inputs from the log.

The pipeline, for a year (annual settlement, 年终清算) or a month (advance, 预拨):

1. equivalents   EU per category and month (not voided; public health only when compliant)
2. growth_cap    basic-medical EU above `(1 + cap) × last year` is reported, not bought; the
                 excess is taken from the last months of the year (the work done after the
                 cap was reached)
3. force_majeure in declared months EU is topped up to the same month of last year; reported
                 apart from the capped EU (the top-up is not subject to the cap)
4. unit_price    fixed per category and month, or point value = budget × (1 − reserve) /
                 county EU (provisional per month, final on the year)
5. coefficient   assessment score → k (linear score/100, or bands); compliant public health
                 is bought in full when `public_health_full_purchase`
6. income offset basic medical = max(0, value × k − medical-service income) when switched on
7. directive tasks, 8. remote-township adjustment, 9. year-end bonus (finance share)
10. advances     ratio × month basis at the provisional coefficient; settlement = annual −
                 advances (positive: top-up 补差, negative: claw-back 扣回)

Rounding happens at named steps only (docs/compensation.md, rounding): equivalents at 4 places
(given so), point values at 6 places, and each money component, advance and per-head amount
to the fen, ROUND_HALF_UP. Sums of rounded components are exact.

This module runs the pipeline; the constants, inputs and results are in
`policy.subsidy_records`, steps 1–4 in `policy.subsidy_pricing` and steps 5–10 in
`policy.subsidy_amounts`.
"""

from __future__ import annotations

from dangliang.policy.parameters import ParameterTree
from dangliang.policy.subsidy_amounts import _advance, annual_amounts
from dangliang.policy.subsidy_pricing import (
    Run,
    annual_prices,
    bought_equivalents,
    month_prices,
)
from dangliang.policy.subsidy_records import MONTHS, ZERO, CountyInputs, CountyResult
from dangliang.policy.trace import Step

# ---------------------------------------------------------------------------------------------
# The pipeline


def compute_year(tree: ParameterTree, county: CountyInputs) -> CountyResult:
    """Annual amounts and year-end settlement of every institution (年终清算)."""
    year = county.year
    run = Run(tree, str(year))
    steps: dict[str, list[Step]] = {code: [] for code in county.institutions}
    bought = {
        code: bought_equivalents(run, year, inst, MONTHS, steps[code])
        for code, inst in county.institutions.items()
    }
    county_steps: list[Step] = []
    prices = annual_prices(run, year, bought, county_steps)
    months = [compute_month(tree, county, m) for m in MONTHS]
    results = {}
    for code, inst in county.institutions.items():
        computed_advances = sum((m.institutions[code].advances for m in months), ZERO)
        results[code] = annual_amounts(
            run, year, inst, bought[code], prices, computed_advances, steps[code]
        )
    return CountyResult(str(year), results, county_steps)


def compute_month(tree: ParameterTree, county: CountyInputs, month: int) -> CountyResult:
    """The month's advance of every institution (按月预拨): provisional, no cap, no tasks."""
    year = county.year
    run = Run(tree, f"{year}-{month:02d}")
    steps: dict[str, list[Step]] = {code: [] for code in county.institutions}
    bought = {
        code: bought_equivalents(run, year, inst, (month,), steps[code], cap=False)
        for code, inst in county.institutions.items()
    }
    county_steps: list[Step] = []
    prices = month_prices(run, year, month, bought, county_steps)
    results = {
        code: _advance(run, year, month, inst, bought[code], prices, steps[code])
        for code, inst in county.institutions.items()
    }
    return CountyResult(run.period, results, county_steps)

"""The garbage collector's thresholds: the same computations with Python's defaults and as
every entry point now runs them (`tune_garbage_collector`: imports frozen, a collection every
50,000 new objects instead of 700).

    python benchmarks/gc_benchmark.py --records 100000 --repeat 5

A county is generated and loaded once into a SQLite file (reference data, inputs, services,
the Zhuji bundle, performance-pay inputs, every read model caught up). Then each repeat runs
one fresh process per setting, in turn (default, tuned, default, tuned, …), and each process
times, on that database: the year's settlement (`compute --year`), one month's advances, the
year's staff distribution, and one institution's explanation. The table gives the median of
each and the ratio default / tuned per pair, so a machine that drifts affects both sides.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import fmt_s, log, machine_info, median, render_table

WORK = """
import gc, json, sys, time
from dangliang.application import bootstrap, tune_garbage_collector
from dangliang.domain.periods import Period
from dangliang.settings import Settings
if sys.argv[2] == "tuned":
    tune_garbage_collector()
app = bootstrap(Settings(sys.argv[1]))
app.catch_up()
out = {}
for name, work in (
    ("settlement", lambda: app.compute(Period(2024))),
    ("advances", lambda: app.compute(Period(2024, 3))),
    ("distribution", lambda: app.distribute(Period(2024))),
    ("explain", lambda: app.explain("C01", Period(2024))),
):
    started = time.perf_counter()
    work()
    out[name] = time.perf_counter() - started
out["collections"] = sum(s["collections"] for s in gc.get_stats())
app.close()
print(json.dumps(out))
"""
WORKS = ("settlement", "advances", "distribution", "explain")


def prepare(folder: Path, records: int) -> str:
    from dangliang.application import bootstrap
    from dangliang.demo.generator import generate
    from dangliang.settings import Settings

    county = generate(folder / "county", records=records, seed=2024, year=2024)
    url = f"sqlite:///{folder / 'gc.db'}"
    app = bootstrap(Settings(url))
    try:
        app.load_institutions(county.files["institutions"], actor="bench")
        app.load_headcount(county.files["headcount"], actor="bench")
        app.load_staff(county.files["staff"], actor="bench")
        app.load_catalogue(county.files["catalogue"], actor="bench")
        for kind in ("scores", "income", "pay-levels", "tasks", "force-majeure"):
            app.load_inputs(kind, county.files[kind.replace("-", "_")], actor="bench")
        app.import_services(county.files["services"], actor="bench", today=date(2025, 1, 10))
        app.adopt_policy("zhuji", reference="benchmark", actor="bench")
        for kind in ("pools", "staff-coefficients", "outside-items"):
            app.load_inputs(kind, county.files[kind.replace("-", "_")], actor="bench")
        app.catch_up()
    finally:
        app.close()
    return url


def one(url: str, setting: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WORK, url, setting], capture_output=True, text=True, check=True
    )
    found: dict[str, float] = json.loads(done.stdout)
    found["process"] = time.perf_counter() - started
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log(f"preparing a county of {args.records:,} records")
        url = prepare(Path(tmp), args.records)
        runs: dict[str, list[dict[str, float]]] = {"default": [], "tuned": []}
        for i in range(args.repeat):
            for setting in runs:
                runs[setting].append(one(url, setting))
            log(f"repeat {i + 1}/{args.repeat}")
    rows = []
    for name in (*WORKS, "process"):
        d = [r[name] for r in runs["default"]]
        t = [r[name] for r in runs["tuned"]]
        ratios = [a / b for a, b in zip(d, t, strict=True)]
        rows.append([name, fmt_s(median(d)), fmt_s(median(t)), f"{median(ratios):.2f}×"])
    d_gc = median([r["collections"] for r in runs["default"]])
    t_gc = median([r["collections"] for r in runs["tuned"]])
    rows.append(["collections", f"{d_gc:,.0f}", f"{t_gc:,.0f}", ""])
    for key, value in machine_info({"records": f"{args.records:,}"}).items():
        print(f"{key}: {value}")
    print(f"medians of {args.repeat} (seconds), one process per run, default and tuned in turn")
    print(render_table(["work", "default GC", "tuned GC", "default / tuned"], rows, markdown=True))


if __name__ == "__main__":
    main()

"""The golden replay corpus (金标准复算集): fixed logs with runs recorded under each rule set,
and every run's statement stored as files (tests/golden/README.md).

A corpus is a folder `corpora/NAME/`:
- `log.jsonl.gz` — every stored event of the log, in order: one JSON object per line with the
  originator id, its version, the topic and the stored state (the library's JSON, as text);
- `manifest.json` — how it was built, the number of events, and each run with its rule set;
- `statements/<run>.json` — each run's statement: its id, rule set, position, results digest
  and full results (every figure as recorded: fen and Decimal text);
- `statements/<run>.csv` — the human statement (支付单 / 拨付单) table of a payout or fund run.

Files are written once (`build_corpus.py` refuses to overwrite them) and never change: a
change to what a rule set computes fails the golden test instead.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import uuid
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from dangliang.application import Dangliang
from dangliang.payouts import runs as payouts
from dangliang.payouts.insurance_statements import write_insurance_statement
from dangliang.payouts.statements import write_statement
from dangliang.projections.facts_queries import RunRecord

HERE = Path(__file__).parent
CORPORA = HERE / "corpora"
LOG = "log.jsonl.gz"
MANIFEST = "manifest.json"
STATEMENTS = "statements"
BATCH = 2_000


def names() -> list[str]:
    """Every corpus in the tests."""
    return sorted(p.name for p in CORPORA.iterdir() if (p / LOG).exists())


def manifest(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((CORPORA / name / MANIFEST).read_text("utf-8"))
    return found


# ---- the log ----------------------------------------------------------------------------------


def read_log(name: str) -> list[StoredEvent]:
    with gzip.open(CORPORA / name / LOG, "rt", encoding="utf-8") as f:
        return [
            StoredEvent(uuid.UUID(e["id"]), e["version"], e["topic"], e["state"].encode("utf-8"))
            for e in map(json.loads, f)
        ]


def log_lines(events: Iterable[Any]) -> Iterator[str]:
    """Stored events (or the recorder's notifications) as the log file's lines."""
    for e in events:
        yield json.dumps(
            {
                "id": str(e.originator_id),
                "version": e.originator_version,
                "topic": e.topic,
                "state": bytes(e.state).decode("utf-8"),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


def load_log(app: Dangliang, events: list[StoredEvent]) -> int:
    """Append the stored events to an empty log through the library's recorder, in batches
    (whatever the write path does — sealing the hash chain — happens as for any write), then
    catch every read model up; the positions are the recorded ones."""
    assert app.log.head() == 0, "a corpus is loaded into an empty log"
    for start in range(0, len(events), BATCH):
        app.log.app_recorder.insert_events(events[start : start + BATCH])
    head = app.log.head()
    assert head == len(events), f"the log reached {head}, not {len(events)}: ids must not skip"
    return app.catch_up()


def dump_log(app: Dangliang) -> list[str]:
    """Every stored event of the application's log as the log file's lines."""
    lines: list[str] = []
    recorder = app.log.app_recorder
    start = 1
    while True:
        found = recorder.select_notifications(start=start, limit=BATCH)
        if not found:
            return lines
        lines.extend(log_lines(found))
        start = found[-1].id + 1


# ---- statements -------------------------------------------------------------------------------


def slug(run_id: str) -> str:
    """`2024-03#1` → `2024-03_1` (a file name)."""
    return run_id.replace("#", "_")


def statement(run: RunRecord) -> dict[str, Any]:
    """A run's statement as stored: what identifies it and everything it recorded."""
    return {
        "run_id": run.run_id,
        "ledger": run.ledger,
        "rule_set": run.rule_set_label,
        "position": run.position,
        "results_digest": run.results_digest,
        "results": run.results,
    }


def statement_doc(name: str, run_id: str) -> dict[str, Any]:
    """A stored statement of corpus `name`."""
    path = CORPORA / name / STATEMENTS / f"{slug(run_id)}.json"
    found: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return found


def statement_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def statement_csv(run: RunRecord) -> str | None:
    """The human statement's table (CSV) of a payout or fund run; None for a distribution."""
    if run.ledger == "performance":
        return None
    write = write_insurance_statement if run.ledger == "insurance" else write_statement
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statement.csv"
        write(payouts.run_json(run), path)
        return path.read_text("utf-8-sig")


def _csv_cells(text: str) -> dict[tuple[str, str], str]:
    """(row's first cell, column key) → cell; a header reads `中文 key`, the key is its last
    word, so a retitled column still compares by its key."""
    rows = list(csv.reader(io.StringIO(text)))
    keys = [h.split()[-1] if h.split() else h for h in rows[0]]
    return {(row[0], key): cell for row in rows[1:] for key, cell in zip(keys, row, strict=False)}


# ---- the check --------------------------------------------------------------------------------


def check(app: Dangliang, name: str, *, only: Collection[str] | None = None) -> list[str]:
    """Replay every run of a loaded corpus (or `only` those) with the rule set it recorded and
    compare, to the fen: the recomputation with what the run recorded (and its digest and
    chain head), what it recorded with its stored statement, and its human statement with
    the stored CSV. Returns every problem as `RUN (RULE SET) FIGURE: …`; empty when all hold."""
    folder = CORPORA / name / STATEMENTS
    problems: list[str] = []
    runs = app.payout_runs()
    stored = {p.stem for p in folder.glob("*.json")}
    if only is None:
        missing = sorted(set(map(slug, runs)) - stored)
        extra = sorted(stored - set(map(slug, runs)))
        problems += [f"{s}: a run of the log without a statement file" for s in missing]
        problems += [f"{s}: a statement file without a run in the log" for s in extra]
    for run_id, run in sorted(runs.items(), key=lambda r: r[1].recorded_at_position):
        if (only is not None and run_id not in only) or slug(run_id) not in stored:
            continue
        where = f"{run_id} ({run.rule_set_label})"
        doc = statement_doc(name, run_id)
        if doc["rule_set"] != run.rule_set_label or doc["position"] != run.position:
            problems.append(
                f"{where}: the statement file is of {doc['rule_set']} at {doc['position']}"
            )
        problems += [
            f"{where} {d} (statement file vs log)"
            for d in payouts.compare(doc["results"], run.results)
        ]
        replay = app.replay_payout(run_id)
        problems += [f"{where} {d}" for d in replay["differences"]]
        if not replay["results_digest_ok"]:
            problems.append(f"{where}: the recorded results do not match their digest")
        if replay["chain_head_recorded"] != replay["chain_head_now"]:
            problems.append(f"{where}: chain head {replay['chain_head_now']} != recorded")
        csv_file = folder / f"{slug(run_id)}.csv"
        if csv_file.exists():
            problems += csv_problems(where, csv_file.read_text("utf-8"), run, replay)
    return problems


def csv_problems(where: str, stored: str, run: RunRecord, replay: dict[str, Any]) -> list[str]:
    """The human statement made now from what the run recorded — which the replay has just
    compared with the recomputation — against the stored one, cell by cell."""
    if replay["differences"]:
        return []  # already reported figure by figure
    made = statement_csv(run)
    assert made is not None
    now = _csv_cells(made)
    return [
        f"{where} statement CSV {row}.{key}: stored {cell} != now {now.get((row, key))}"
        for (row, key), cell in _csv_cells(stored).items()
        if now.get((row, key)) != cell
    ]

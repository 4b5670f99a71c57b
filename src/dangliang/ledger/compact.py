"""The compact stored form of bulk-imported service records (服务记录的紧凑存储形式).

A county imports millions of service records a year. In the library's own stored form each
record repeats what all the records of one import share (the time, who imported, the file's
reference), the aggregate's topic and a type tag per field: ~630 bytes on disk a record. In
the compact form a record is still its own event, one row of the log, but its state is a JSON
array of its own facts, under a short topic:

    topic  S
    state  [batch, institution_code, source_id, staff_id, item_code, service_date,
            patient_ref, quantity, compliant]

- `batch` is the log position of the import's `BulkImport.BatchWritten` event, appended in the
  same transaction just before the batch's records: the record's time is that event's time;
  its actor and import reference are those of the import's `BulkImport.Started`;
- `service_date` is the number of days since 1970-01-01 (as Arrow, Parquet and Avro store a
  date: 20087 is 2024-12-30); `quantity` a JSON integer when whole, else its exact decimal
  text (never a JSON fraction, which would be read back as a float); `compliant` is 1 or 0;
- trailing values equal to their default (`compliant` 1, `quantity` 1, `patient_ref` null)
  are left out, so the usual record ends with its date or its patient reference.

Records imported before December 2026 are stored under `SR1`, the same array with the date as
ISO text ("2024-12-30", 7 bytes more a record); they are read as they are, and a file imported
again compares equal whichever form holds its records (`record_content`).

`CompactMapper` turns such a row back into the very `ServiceRecord.Recorded` event the
library's mapper gives for the long form, so aggregates, replays and every reader see one
kind of event. Events stored in the long form keep it and are read as before; old databases
open as they are and their hash chain is untouched. The equivalents projection reads every
form in SQL (`json_extract(state, '$[1]')` / `jsonb ->> 1`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from json.encoder import encode_basestring as _q  # what json.dumps uses
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing.persistence import (
    ApplicationRecorder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)
from eventsourcing.utils import get_topic, register_topic

from dangliang.domain.imports import BulkImport
from dangliang.domain.service import ServiceRecord
from dangliang.domain.values import canonical_decimal

# ServiceRecord.Recorded in compact form 2, what imports write. One letter: PostgreSQL pads a
# row to 8 bytes, and the topic and state of the usual record then fit in one step less (a
# 136-byte tuple becomes 128 for about half the records: BENCHMARKS.md, bytes per event).
SERVICE_RECORD_TOPIC = "S"
SERVICE_RECORD_TOPIC_V1 = "SR1"  # compact form 1 (the date as ISO text), still read
COMPACT_TOPICS = (SERVICE_RECORD_TOPIC, SERVICE_RECORD_TOPIC_V1)
for _topic in COMPACT_TOPICS:
    register_topic(_topic, ServiceRecord.Recorded)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # a compact date is days since 1970-01-01
# the tail of a form-1 state: four JSON strings, then the date as an ISO string
_V1_TAIL = re.compile(r'^,(?:"(?:[^"\\]|\\.)*",){4}"\d{4}-\d\d-\d\d"')
_SERVICE_RECORD = get_topic(ServiceRecord)
_FIELDS = 9  # batch + eight facts
_DEFAULTS: tuple[Any, ...] = (None, 1, 1)  # patient_ref, quantity, compliant
_DEFAULTS_WRITTEN = ("null", "1", "1")  # the same, as the compact form writes them


class BatchFacts(NamedTuple):
    """What every record of one batch shares: when it was appended, by whom, from which file."""

    timestamp: datetime
    actor: str
    import_ref: str


def _quantity_json(quantity: Decimal) -> str:
    """A quantity as the compact form writes it: an integer, or its exact decimal text."""
    text = str(canonical_decimal(quantity))
    return text if "." not in text else f'"{text}"'


def service_record_tail(
    institution_code: str,
    source_id: str,
    staff_id: str,
    item_code: str,
    quantity: Decimal,
    service_date: date,
    patient_ref: str | None,
    compliant: bool,
) -> str:
    """The compact state of a service record after its batch number: `,"…",…]`."""
    values = [
        _q(institution_code),
        _q(source_id),
        _q(staff_id),
        _q(item_code),
        str(service_date.toordinal() - EPOCH_ORDINAL),
        "null" if patient_ref is None else _q(patient_ref),
        _quantity_json(quantity),
        "1" if compliant else "0",
    ]
    while len(values) > 5 and values[-1] == _DEFAULTS_WRITTEN[len(values) - 6]:
        values.pop()  # trailing defaults are left out
    return "," + ",".join(values) + "]"


def compact_values(state: bytes) -> list[Any]:
    """The array of a compact state, its left-out defaults put back (nine values)."""
    values: list[Any] = json.loads(state)
    if len(values) < 6 or len(values) > _FIELDS:
        raise ValueError(f"a compact service record has 6 to 9 values, not {len(values)}")
    values.extend(_DEFAULTS[len(values) - 6 :])
    return values


def service_record_state_dict(values: list[Any], facts: BatchFacts) -> dict[str, Any]:
    """The event's state, as the library's mapper would give it for the long form."""
    _, institution, source, staff, item, day, patient, quantity, compliant = values
    return {
        "timestamp": facts.timestamp,
        "originator_topic": _SERVICE_RECORD,
        "institution_code": institution,
        "source_id": source,
        "staff_id": staff,
        "item_code": item,
        "quantity": _quantity(quantity),
        "service_date": compact_date(day),
        "patient_ref": patient,
        "compliant": bool(compliant),
        "actor": facts.actor,
        "import_ref": facts.import_ref,
    }


def compact_date(value: Any) -> date:
    """A compact form's date: days since 1970-01-01 (form 2), or ISO text (form 1)."""
    if type(value) is int:
        return date.fromordinal(EPOCH_ORDINAL + value)
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"a service date is a day number or ISO text, not {value!r}")


def _quantity(value: Any) -> Decimal:
    if type(value) is int or isinstance(value, str):
        return Decimal(value)
    raise ValueError(f"a quantity is an integer or decimal text, not {value!r}")


def long_form_tail(state: bytes) -> str:
    """A long-form `Recorded` state's facts as the compact tail, to compare a stored record
    of either form with a row being imported again."""
    d = json.loads(state)
    return service_record_tail(
        d["institution_code"],
        d["source_id"],
        d["staff_id"],
        d["item_code"],
        Decimal(d["quantity"]["_data_"]),
        date.fromisoformat(d["service_date"]["_data_"]),
        d["patient_ref"],
        bool(d["compliant"]),
    )


def record_content(state: bytes) -> str:
    """A stored service record's own facts as the compact tail that an import writes now,
    whichever form it is stored in."""
    if state[:1] == b"[":
        text = state.decode()
        tail = text[text.index(",") :]
        if _V1_TAIL.match(tail) is None:
            return tail
        # form 1: the date as ISO text
        _, institution, source, staff, item, day, patient, quantity, compliant = compact_values(
            state
        )
        return service_record_tail(
            institution,
            source,
            staff,
            item,
            _quantity(quantity),
            compact_date(day),
            patient,
            bool(compliant),
        )
    return long_form_tail(state)


class CompactMapper(Mapper[UUID]):
    """The library's mapper, which also reads the compact form (module docstring).

    `batch_facts` is set by the event log once its recorder exists; facts of a batch are read
    once and kept (a county has a few hundred batches a year)."""

    batch_facts: Callable[[int], BatchFacts]

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if stored_event.topic not in COMPACT_TOPICS:
            return super().to_domain_event(stored_event)
        try:
            values = compact_values(stored_event.state)
            state = service_record_state_dict(values, self.batch_facts(int(values[0])))
        except Exception as e:
            raise MapperDeserialisationError(
                f"Failed to read compact service record {stored_event.originator_id} "
                f"version {stored_event.originator_version}: {e}"
            ) from e
        cls = ServiceRecord.Recorded
        oid = stored_event.originator_id
        state["originator_id"] = oid if isinstance(oid, UUID) else UUID(str(oid))
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


class BatchFactsReader:
    """`BatchFacts` by the log position of a `BulkImport.BatchWritten` event, kept once read."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Mapper[UUID], keep: int = 4096):
        self._recorder = recorder
        self._mapper = mapper
        self._keep = keep
        self._known: dict[int, BatchFacts] = {}

    def __call__(self, position: int) -> BatchFacts:
        found = self._known.get(position)
        if found is not None:
            return found
        notes = self._recorder.select_notifications(start=position, limit=1, stop=position)
        batch = self._mapper.to_domain_event(notes[0]) if notes else None
        if not isinstance(batch, BulkImport.BatchWritten):
            raise LookupError(f"log position {position} is not a BulkImport.BatchWritten event")
        first = self._recorder.select_events(batch.originator_id, lte=1)
        started = self._mapper.to_domain_event(first[0]) if first else None
        if not isinstance(started, BulkImport.Started):
            raise LookupError(f"the import of batch {position} has no BulkImport.Started event")
        facts = BatchFacts(batch.timestamp, started.actor, started.import_ref)
        if len(self._known) >= self._keep:
            self._known.clear()
        self._known[position] = facts
        return facts

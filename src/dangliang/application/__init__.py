"""The application layer: the use cases of dangliang, one module per area, wired by
`bootstrap(settings)` into the `Dangliang` service the entry points call."""

from dangliang.application.bootstrap import (
    Dangliang,
    bootstrap,
    default_actor,
    tune_garbage_collector,
)
from dangliang.application.data_entry import INPUT_KINDS
from dangliang.application.insurance_data import INSURANCE_KINDS

__all__ = [
    "INPUT_KINDS",
    "INSURANCE_KINDS",
    "Dangliang",
    "bootstrap",
    "default_actor",
    "tune_garbage_collector",
]

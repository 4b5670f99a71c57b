"""Policy (政策): dated, cited parameters loaded from YAML bundles (see docs/policy.md).

The rule pipelines live here too (`subsidy*`: docs/compensation.md; `distribution*`:
docs/performance.md) and read their parameters through `ParameterTree.get`, so that every
computed number can cite the values it used.
"""

from dangliang.policy.bundle_loader import (
    BUILTIN_BUNDLES,
    load_builtin_bundle,
    load_bundle,
    load_bundle_text,
)
from dangliang.policy.parameter_values import (
    UNITS,
    Band,
    DatedValue,
    Group,
    OverrideValue,
    Parameter,
    ParameterLookupError,
    ParameterValue,
    ParamValue,
    PolicyError,
    unit_kind,
)
from dangliang.policy.parameters import ParameterSnapshot, ParameterTree

__all__ = [
    "BUILTIN_BUNDLES",
    "UNITS",
    "Band",
    "DatedValue",
    "Group",
    "OverrideValue",
    "ParamValue",
    "Parameter",
    "ParameterLookupError",
    "ParameterSnapshot",
    "ParameterTree",
    "ParameterValue",
    "PolicyError",
    "load_builtin_bundle",
    "load_bundle",
    "load_bundle_text",
    "unit_kind",
]

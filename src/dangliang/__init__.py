"""dangliang (当量): event-sourced workload-equivalent compensation for primary health care."""

__version__ = "0.1.0"

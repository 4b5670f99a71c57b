"""The workbench's own addresses, built in one place (every page links to these)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode


def _query(**params: Any) -> str:
    return urlencode({k: v for k, v in params.items() if v is not None})


def institution_href(code: str, year: int) -> str:
    return f"/institutions/{code}?year={year}"


def explain_href(code: str, period: str | int, component: str | None = None, **more: Any) -> str:
    """The explanation of an institution's amount (a component of it, when given)."""
    query = _query(period=period, component=component or None, **more)
    return f"/explain/institution/{code}?{query}"


def records_href(code: str, period: str | int, **more: Any) -> str:
    """The service records behind an institution's equivalents (paged)."""
    return f"/explain/institution/{code}/records?{_query(period=period, **more)}"

"""Explain (解释): from a yuan down to its components, parameters, items and records."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""County overview (概览): GET /."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""Audit (审计): verify the chain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

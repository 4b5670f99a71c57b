"""Policy (政策参数): parameters in force, history, what-if."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

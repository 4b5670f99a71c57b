"""Import (导入): upload, progress, result or problem list."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

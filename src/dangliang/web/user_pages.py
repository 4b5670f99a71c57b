"""Users (用户管理): the bureau admin adds, disables, enables, resets and changes roles."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

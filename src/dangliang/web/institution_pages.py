"""Institutions (机构): GET /institutions, GET /institutions/{code}."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

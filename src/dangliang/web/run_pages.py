"""Runs (支付批次): list, run, approve, reject, paid, documents, replay, diff."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""Serving the workbench and the API (`dangliang serve`, `dangliang demo --serve`)."""

from __future__ import annotations

import os

import click

from dangliang.application import bootstrap
from dangliang.settings import ENV_DB, Settings


def check_database(settings: Settings) -> None:
    """Open the database once, so that an unusable one fails here, clearly."""
    bootstrap(settings).close()


def serve_site(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """uvicorn over `dangliang.web.site_from_env` (each worker finds the database in the
    environment); blocks until stopped (Ctrl-C)."""
    import uvicorn

    from dangliang.api.server import NoDelayH11Protocol

    os.environ[ENV_DB] = settings.db_url
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    click.echo(
        f"数据库 / database: {settings.database.describe()}\n"
        f"工作台 / workbench: http://{shown}:{port}/\n"
        f"接口文档 / API docs: http://{shown}:{port}/docs  (tokens: `dangliang users add`)\n"
        "按 Ctrl-C 停止 / press Ctrl-C to stop"
    )
    uvicorn.run(
        "dangliang.web:site_from_env",
        factory=True,
        http=NoDelayH11Protocol,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )

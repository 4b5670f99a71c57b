"""The HTTP API (`dangliang serve`): the application's commands and queries over HTTP, with
API tokens and roles. OpenAPI docs at `/docs`; every route under `/api/v1`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from dangliang import __version__
from dangliang.api import refusals as errors
from dangliang.api import routes_compensation, routes_data, routes_insurance, routes_runs
from dangliang.api.response_cache import PositionCache, cached_routes
from dangliang.api.upload_limit import BodyLimit, max_upload_bytes
from dangliang.application import Dangliang, bootstrap, tune_garbage_collector
from dangliang.settings import Settings

PREFIX = "/api/v1"

DESCRIPTION = """\
工作当量补偿引擎 — the workload-equivalent compensation engine of a county's primary health care.

Authenticate with `Authorization: Bearer TOKEN`; tokens come from
`dangliang users add NAME --role admin|auditor|clerk [--institution CODE]`.

- **admin** (县卫健局管理员): everything;
- **auditor** (财政审计员): read everything, approve or reject payout runs, verify the log;
- **clerk** (机构填报员): import service records and corrections of, and read, only their
  institution and its village clinics.

Money and equivalents are decimal strings. A refusal is `application/problem+json` with every
problem found (file, row, column, reason): 400 a body that cannot be parsed, 401 no/bad token,
403 role or institution not allowed, 404 not found, 409 the state does not allow it, 413 a
body over its limit (an upload: `DANGLIANG_MAX_UPLOAD_MB`, 512 MB unless set; any other body
1 MB), 422 invalid input. Nothing is written by a refused request. Every write records the
calling user as the event's actor.
"""


def create_app(service: Dangliang | None = None, settings: Settings | None = None) -> FastAPI:
    """The FastAPI app over `service` (kept open by the caller) or over a service it
    bootstraps from `settings` (or the environment) at start-up and closes at shutdown."""

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        owned = service is None
        api.state.dangliang = service or bootstrap(settings or Settings.from_env(None))
        try:
            yield
        finally:
            if owned:
                api.state.dangliang.close()

    api = FastAPI(
        title="dangliang 当量",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url=f"{PREFIX}/openapi.json",
    )
    if service is not None:  # usable at once, also without running the lifespan
        api.state.dangliang = service
    errors.install(api)
    api.state.max_upload_bytes = max_upload_bytes()
    api.state.upload_routes = [  # the routes that take a file (the workbench adds its own)
        re.compile(f"{PREFIX}/imports/[^/]+"),
        re.compile(f"{PREFIX}/insurance/imports/[^/]+"),
    ]
    api.add_middleware(
        BodyLimit,
        max_bytes=api.state.max_upload_bytes,
        routes=api.state.upload_routes,
        refusal=errors.too_large,
    )
    api.add_middleware(PositionCache, head=_log_head, routes=cached_routes(PREFIX))
    root = APIRouter(prefix=PREFIX, responses=errors.ERROR_RESPONSES)
    for module in (routes_data, routes_compensation, routes_runs, routes_insurance):
        root.include_router(module.router)
    api.include_router(root)
    api.openapi = lambda: errors.document_problem_json(FastAPI.openapi(api))  # type: ignore[method-assign]
    return api


def _log_head(scope: dict[str, Any]) -> int:
    """The log's head for the response cache: the service's log, one indexed `max()`."""
    service: Dangliang = scope["app"].state.dangliang
    return service.log.head()


def app_from_env() -> FastAPI:
    """For `uvicorn --factory` (and `dangliang serve`): the database from `DANGLIANG_DB`."""
    tune_garbage_collector()  # each worker process
    return create_app()


__all__ = ["PREFIX", "app_from_env", "create_app"]

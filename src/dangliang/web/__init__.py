"""The web workbench (工作台): pages in Chinese for the bureau, the auditor and the
institutions, served beside the HTTP API by `dangliang serve`.

Pages are rendered on the server (Jinja2, `templates/`), with a little plain JavaScript
(`static/app.js`) for charts (Apache ECharts, vendored in `static/vendor/`: no CDN) and for
the import's progress. People sign in with a user name and password (argon2); the session is
an HttpOnly, SameSite cookie and every form carries the session's CSRF token
(`dangliang.web.guard`). The pages call the same application as the API and the CLI.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dangliang.api import create_app
from dangliang.application import Dangliang, tune_garbage_collector
from dangliang.settings import Settings
from dangliang.web import (
    audit_pages,
    auth_pages,
    explain_pages,
    import_pages,
    institution_pages,
    overview_pages,
    policy_pages,
    refusal_pages,
    run_pages,
    user_pages,
)
from dangliang.web.timing import ServerTiming

STATIC = Path(__file__).parent / "static"
PAGE_MODULES = (
    auth_pages,
    overview_pages,
    institution_pages,
    explain_pages,
    run_pages,
    import_pages,
    policy_pages,
    audit_pages,
    user_pages,
)


def create_site(service: Dangliang | None = None, settings: Settings | None = None) -> FastAPI:
    """The HTTP API (`/api/v1`, docs at `/docs`) and the workbench's pages in one app."""
    site = create_app(service, settings)
    site.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in PAGE_MODULES:
        site.include_router(module.router, include_in_schema=False)
    refusal_pages.install(site)
    site.state.upload_routes.append(re.compile("/imports"))  # its upload limit (api.upload_limit)
    site.add_middleware(ServerTiming)
    return site


def site_from_env() -> FastAPI:
    """For `uvicorn --factory` (and `dangliang serve`): the database from `DANGLIANG_DB`."""
    tune_garbage_collector()  # each worker process
    return create_site()


__all__ = ["create_site", "site_from_env"]

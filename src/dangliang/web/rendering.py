"""Pages are Jinja2 templates rendered on the server (`templates/`), in Chinese first.

Every template gets the request, the language (`lang`: `zh` or `en`, chosen with the
`lang` cookie), the signed-in person (`me`, a `Principal`, or None), the session's CSRF
token (`csrf`) and these helpers:

- `t("中文", "English")`: the label in the page's language;
- filters `money` (decimal strings, Decimals), `fen` (integer fen), `number`, `percent`,
  `period` (`2024-03` → `2024年3月`), `day` (a date or moment);
- `links`: the workbench's addresses (`links.explain_href(code, period, component)`, …);
- `chart(id, option, label)`: an ECharts chart whose option is built on the server (only
  from what the viewer may see) and drawn by `static/app.js`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from markupsafe import Markup, escape

from dangliang import __version__
from dangliang.web import formatting as fmt
from dangliang.web import links

ROLE_LABELS = {
    "admin": ("县卫健局管理员", "bureau admin"),
    "auditor": ("财政审计员", "finance auditor"),
    "clerk": ("机构填报员", "institution clerk"),
}


def _lang(ctx: Any) -> str:
    found: str = ctx.get("lang", "zh")
    return found


@pass_context
def _t(ctx: Any, zh: str, en: str) -> str:
    return en if _lang(ctx) == "en" else zh


@pass_context
def _money(ctx: Any, value: Any) -> str:
    return fmt.money(value, _lang(ctx))


@pass_context
def _fen(ctx: Any, value: int | None) -> str:
    return fmt.fen_money(value, _lang(ctx))


@pass_context
def _period(ctx: Any, value: str) -> str:
    return fmt.period_label(str(value), _lang(ctx))


@pass_context
def _day(ctx: Any, value: Any) -> str:
    return fmt.date_label(value, _lang(ctx))


@pass_context
def _role(ctx: Any, role: str) -> str:
    zh, en = ROLE_LABELS.get(role, (role, role))
    return en if _lang(ctx) == "en" else zh


def chart(chart_id: str, option: dict[str, Any], label: str, height: int = 320) -> Markup:
    """A chart's container with its option as JSON (drawn by static/app.js; the tests read
    the numbers back with `echarts.getInstanceByDom(el).getOption()`)."""
    data = json.dumps(option, ensure_ascii=False, default=str).replace("</", "<\\/")
    return Markup(
        f'<figure class="chart-box"><div class="chart" id="{escape(chart_id)}" role="img" '
        f'aria-label="{escape(label)}" style="height:{int(height)}px"></div>'
        f'<script type="application/json" data-chart-for="{escape(chart_id)}">{data}</script>'
        f"<figcaption>{escape(label)}</figcaption></figure>"
    )


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dangliang.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(t=_t, chart=chart, links=links, version=__version__)
    env.filters.update(
        money=_money,
        fen=_fen,
        number=fmt.number,
        percent=fmt.percent,
        period=_period,
        day=_day,
        role=_role,
    )
    return env


ENV = _environment()


def language(request: Request) -> str:
    return "en" if request.cookies.get("lang") == "en" else "zh"


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page `template` for this request, with the shared context."""
    state = request.state
    page = ENV.get_template(template).render(
        request=request,
        lang=language(request),
        me=getattr(state, "principal", None),
        csrf=getattr(state, "csrf", ""),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})

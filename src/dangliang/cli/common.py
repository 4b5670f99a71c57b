"""What every command shares: `--db`/`--actor` and a bootstrapped application
(`with_app`), the as-of and period options, and a progress line on the terminal."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from dangliang.application import bootstrap, default_actor
from dangliang.domain.errors import DomainError
from dangliang.domain.problems import ProblemsFound
from dangliang.settings import ENV_DB, Settings, SettingsError

F = TypeVar("F", bound=Callable[..., Any])


PHASES_ZH = {
    "validate": "校验",
    "write": "写入",
    "generate": "生成",
    "registry": "参考数据",
    "equivalents_a": "当量",
    "equivalents_b": "当量",
    "chain": "哈希链",
    "verify": "核验",
    "backup": "备份",
    "copy": "复制",
    "digest": "摘要",
    "load": "载入",
}


class ProgressLine:
    """A one-line progress display on a terminal (stderr); silent when not a terminal."""

    def __init__(self, unit: str = "") -> None:
        self.enabled = sys.stderr.isatty()
        self.unit = unit
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and done < total:
            return
        self._last = now
        pct = f"{100 * done / total:5.1f}%" if total else "     "
        label = PHASES_ZH.get(phase, phase)
        click.echo(
            f"\r{label} {phase:<9} {pct} {done:>12,}/{total:,} {self.unit} "
            f"{now - self.started:6.1f}s",
            nl=False,
            err=True,
        )
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            click.echo("", err=True)


def with_app(func: F) -> F:
    """Add `--db` and `--actor` to a command and hand it a bootstrapped application."""

    @click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help=f"Database URL (default: ${ENV_DB} or sqlite:///dangliang.db).",
    )
    @click.option(
        "--actor", default=None, help="Who is acting (default: $DANGLIANG_ACTOR or OS user)."
    )
    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, db_url: str | None, actor: str | None, **kwargs: Any) -> Any:
        root = ctx.find_root().params
        try:
            settings = Settings.from_env(db_url or root.get("db_url"))
            app = bootstrap(settings)
        except SettingsError as e:
            raise click.UsageError(str(e)) from e
        try:
            return func(app, actor or root.get("actor") or default_actor(), **kwargs)
        except ProblemsFound as e:
            echo_lines(e.lines())
            click.echo(
                f"已拒收：共 {len(e.problems)} 个问题，未写入任何数据 / refused: "
                f"{len(e.problems)} problem(s); nothing was written",
                err=True,
            )
            sys.exit(1)
        except DomainError as e:
            click.echo(f"错误 / error: {e}", err=True)
            sys.exit(1)
        finally:
            app.close()

    return wrapper  # type: ignore[return-value]


def as_of_options(func: F) -> F:
    """`--as-of MOMENT` / `--position N`: compute as the log stood then."""
    func = click.option(
        "--position",
        type=click.IntRange(min=0),
        default=None,
        help="As the log stood at this notification id (exact; what a payout run records).",
    )(func)
    return click.option(
        "--as-of",
        "as_of",
        type=click.DateTime(
            formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]
        ),
        default=None,
        help="As the log stood at this moment (UTC unless an offset is given).",
    )(func)


def period_options(func: F) -> F:
    func = click.option(
        "--year",
        type=click.IntRange(1949, 2200),
        default=None,
        help="A year: annual settlement (年终清算).",
    )(func)
    return click.option(
        "--month", default=None, metavar="YYYY-MM", help="A month: advances (按月预拨)."
    )(func)


def echo_lines(lines: Iterable[str], chunk: int = 10_000) -> None:
    """Print lines to stderr a chunk at a time, never the whole report as one string."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == chunk:
            click.echo("\n".join(batch), err=True)
            batch.clear()
    if batch:
        click.echo("\n".join(batch), err=True)

"""`dangliang users …` (API tokens and roles) and `dangliang serve` (the HTTP API).
Registered on the main group by `dangliang.cli.main`."""

from __future__ import annotations

import click

from dangliang.application import Dangliang, bootstrap
from dangliang.cli.common import with_app
from dangliang.domain.users import ROLES
from dangliang.settings import ENV_DB, Settings, SettingsError


def register(main: click.Group) -> None:
    @main.group()
    def users() -> None:
        """API users (接口用户): tokens and roles — admin, auditor, clerk."""

    @users.command("add")
    @click.argument("name")
    @click.option(
        "--role",
        required=True,
        type=click.Choice(list(ROLES)),
        help="admin 县卫健局管理员 (everything); auditor 财政审计员 (read everything, approve "
        "runs, verify); clerk 机构填报员 (import and read their institution only).",
    )
    @click.option(
        "--institution", default=None, metavar="CODE", help="A clerk's institution (机构编码)."
    )
    @with_app
    def users_add(
        app: Dangliang, actor: str, name: str, role: str, institution: str | None
    ) -> None:
        """Add a user and print their API token (shown once; only its digest is kept)."""
        token = app.users.add(name, role=role, institution=institution, actor=actor)
        _show_token(name, role, institution, token)

    @users.command("token")
    @click.argument("name")
    @with_app
    def users_token(app: Dangliang, actor: str, name: str) -> None:
        """Issue a new token for NAME; the old one stops working at once."""
        token = app.users.issue_token(name, actor=actor)
        click.echo(f"新令牌 / new token for {name} (the old one no longer works):")
        click.echo(token)

    @users.command("revoke")
    @click.argument("name")
    @click.option("--reason", required=True, help="Why (调岗、离职…).")
    @with_app
    def users_revoke(app: Dangliang, actor: str, name: str, reason: str) -> None:
        """Revoke a user: their token stops working."""
        app.users.revoke(name, reason=reason, actor=actor)
        click.echo(f"已停用 / revoked: {name}")

    @users.command("list")
    @with_app
    def users_list(app: Dangliang, actor: str) -> None:
        """Every user with role, institution and state (never a token)."""
        found = app.users.all_users()
        if not found:
            click.echo("没有用户 / no users yet: `dangliang users add NAME --role admin`")
        for u in found:
            state = "有效 active" if u.active else "已停用 revoked"
            click.echo(
                f"{u.name:<20} {u.role:<8} {u.institution or '-':<8} {state:<14} "
                f"added by {u.added_by}"
            )

    @main.command()
    @click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
    @click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
    @click.option(
        "--workers", default=1, show_default=True, type=click.IntRange(min=1), help="Processes."
    )
    @click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help=f"Database URL (default: ${ENV_DB} or sqlite:///dangliang.db).",
    )
    @click.pass_context
    def serve(ctx: click.Context, host: str, port: int, workers: int, db_url: str | None) -> None:
        """Serve the HTTP API (OpenAPI docs at http://HOST:PORT/docs)."""
        import os

        import uvicorn

        try:
            settings = Settings.from_env(db_url or ctx.find_root().params.get("db_url"))
            bootstrap(settings).close()  # fail here, clearly, if the database is unusable
        except SettingsError as e:
            raise click.UsageError(str(e)) from e
        # The app (in each worker process) finds the database in the environment.
        os.environ[ENV_DB] = settings.db_url
        click.echo(
            f"数据库 / database: {settings.database.describe()}\n"
            f"接口文档 / API docs: http://{host}:{port}/docs  (tokens: `dangliang users add`)"
        )
        from dangliang.api.server import NoDelayH11Protocol

        uvicorn.run(
            "dangliang.api:app_from_env",
            factory=True,
            http=NoDelayH11Protocol,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
        )


def _show_token(name: str, role: str, institution: str | None, token: str) -> None:
    where = f", institution {institution}" if institution else ""
    click.echo(f"已添加 / added {name}: {ROLES[role]}{where}")
    click.echo("令牌（只显示这一次，请妥善保管）/ token (shown once; keep it safe):")
    click.echo(token)

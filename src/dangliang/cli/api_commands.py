"""`dangliang users …` (API tokens, workbench passwords, roles) and `dangliang serve` (the
HTTP API). Registered on the main group by `dangliang.cli.main`."""

from __future__ import annotations

import click

from dangliang.application import Dangliang
from dangliang.application.accounts import TOKEN_DAYS
from dangliang.cli.common import with_app
from dangliang.cli.serving import check_database, serve_site
from dangliang.domain.users import ROLES, ApiUser
from dangliang.settings import ENV_DB, Settings, SettingsError

ROLE_HELP = (
    "admin 县卫健局管理员 (everything); auditor 财政审计员 (read everything, approve runs, "
    "verify); clerk 机构填报员 (import and read their institution only)."
)
token_days_option = click.option(
    "--token-days",
    default=TOKEN_DAYS,
    show_default=True,
    type=click.IntRange(min=0),
    help="Days until the API token expires (0: never).",
)


def register(main: click.Group) -> None:
    @main.group()
    def users() -> None:
        """Users (用户): API tokens, workbench passwords, roles — admin, auditor, clerk."""

    @users.command("add")
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(list(ROLES)), help=ROLE_HELP)
    @click.option(
        "--institution", default=None, metavar="CODE", help="A clerk's institution (机构编码)."
    )
    @click.option(
        "--password-prompt",
        is_flag=True,
        help="Also ask for a workbench password (to be changed at the first sign-in).",
    )
    @token_days_option
    @with_app
    def users_add(
        app: Dangliang,
        actor: str,
        name: str,
        role: str,
        institution: str | None,
        password_prompt: bool,
        token_days: int,
    ) -> None:
        """Add a user and print their API token (shown once; only its digest is kept)."""
        password = _ask_password(name) if password_prompt else None
        token = app.users.add(
            name,
            role=role,
            institution=institution,
            actor=actor,
            password=password,
            token_days=token_days or None,
        )
        if password is not None:
            click.echo(f"已设置密码，首次登录须修改 / password set; {name} changes it at sign-in")
        _show_token(name, role, institution, token, token_days)

    @users.command("token")
    @click.argument("name")
    @token_days_option
    @with_app
    def users_token(app: Dangliang, actor: str, name: str, token_days: int) -> None:
        """Issue a new token for NAME; the old one stops working at once."""
        token = app.users.issue_token(name, actor=actor, days=token_days or None)
        click.echo(f"新令牌 / new token for {name} (the old one no longer works):")
        click.echo(token)

    @users.command("password")
    @click.argument("name")
    @click.option(
        "--reset", is_flag=True, help="Generate a temporary password and print it (once)."
    )
    @with_app
    def users_password(app: Dangliang, actor: str, name: str, reset: bool) -> None:
        """Set NAME's workbench password (asked for, or generated with --reset); they must
        change it at their next sign-in."""
        if reset:
            temporary = app.users.reset_password(name, actor=actor)
            click.echo("下次登录须修改密码 / to be changed at the next sign-in")
            click.echo(f"{name} 的临时密码（只显示这一次）/ temporary password (shown once):")
            click.echo(temporary)
        else:
            app.users.set_password(name, _ask_password(name), actor=actor, must_change=True)
            click.echo(f"已设置密码 / password set for {name}")
            click.echo("下次登录须修改密码 / to be changed at the next sign-in")

    @users.command("revoke")
    @click.argument("name")
    @click.option("--reason", required=True, help="Why (调岗、离职…).")
    @with_app
    def users_revoke(app: Dangliang, actor: str, name: str, reason: str) -> None:
        """Revoke (disable) a user: their token and password stop working."""
        app.users.revoke(name, reason=reason, actor=actor)
        click.echo(f"已停用 / revoked: {name}")

    @users.command("enable")
    @click.argument("name")
    @with_app
    def users_enable(app: Dangliang, actor: str, name: str) -> None:
        """Re-enable a revoked user: their password works again; the API needs a new token."""
        app.users.enable(name, actor=actor)
        click.echo(f"已重新启用 / enabled: {name}")
        click.echo(f"接口令牌须重新签发 / for the API: `dangliang users token {name}`")

    @users.command("role")
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(list(ROLES)), help=ROLE_HELP)
    @click.option(
        "--institution", default=None, metavar="CODE", help="A clerk's institution (机构编码)."
    )
    @with_app
    def users_role(
        app: Dangliang, actor: str, name: str, role: str, institution: str | None
    ) -> None:
        """Change NAME's role (and institution); in force from their next request."""
        app.users.change_role(name, role=role, institution=institution, actor=actor)
        where = f", institution {institution}" if institution else ""
        click.echo(f"已变更角色 / role changed: {name} → {ROLES[role]}{where}")

    @users.command("list")
    @with_app
    def users_list(app: Dangliang, actor: str) -> None:
        """Every user with state, role, institution, password and token expiry (never a token
        or a password)."""
        found = app.users.all_users()
        if not found:
            click.echo("没有用户 / no users yet: `dangliang users add NAME --role admin`")
        for u in found:
            state = "有效 active" if u.active else "已停用 revoked"
            password = "有密码 password" if u.password_hash else "无密码 no password"
            if u.must_change_password:
                password += " (须修改 must change)"
            click.echo(
                f"{u.name:<20} {u.role:<8} {u.institution or '-':<8} {state:<14} "
                f"{password:<18} {_token_state(u)}  added by {u.added_by}"
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
        """Serve the workbench (http://HOST:PORT/) and the HTTP API (docs at /docs)."""
        try:
            settings = Settings.from_env(db_url or ctx.find_root().params.get("db_url"))
            check_database(settings)
        except SettingsError as e:
            raise click.UsageError(str(e)) from e
        serve_site(settings, host=host, port=port, workers=workers)


def _show_token(name: str, role: str, institution: str | None, token: str, token_days: int) -> None:
    where = f", institution {institution}" if institution else ""
    click.echo(f"已添加 / added {name}: {ROLES[role]}{where}")
    valid = f"{token_days} 天 / {token_days} days" if token_days else "长期 / no expiry"
    click.echo(f"令牌有效期 / token valid for: {valid}")
    click.echo("令牌（只显示这一次，请妥善保管）/ token (shown once; keep it safe):")
    click.echo(token)


def _ask_password(name: str) -> str:
    password: str = click.prompt(
        f"{name} 的密码 / password", hide_input=True, confirmation_prompt=True
    )
    return password


def _token_state(user: ApiUser) -> str:
    if user.token_digest is None:
        return "无令牌 no token"
    if user.token_expires_at is None:
        return "令牌长期 token never expires"
    return f"令牌至 token until {user.token_expires_at:%Y-%m-%d %H:%M} UTC"

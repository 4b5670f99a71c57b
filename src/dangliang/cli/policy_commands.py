"""`dangliang policy …`, `inputs …`: policy adoption (政策参数) and compensation inputs from files.

Registered on the main command group by `dangliang.cli.main`; same conventions (exit 1 when input
is refused, 2 on usage errors, `--json` for scripts and the API).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from dangliang.application import Dangliang
from dangliang.cli.common import as_of_options, with_app
from dangliang.domain.values import utc
from dangliang.policy.parameters import ParameterTree


def adoption_line(changed: bool, tree: ParameterTree) -> str:
    """What `policy load` (and `insurance policy load`) prints."""
    state = (
        "已采用 / adopted" if changed else "已在使用，未记录 / already in force, nothing recorded"
    )
    return f"{tree.source}: {len(tree)} 个参数 / parameters, digest {tree.digest()[:16]} — {state}"


def change_line(path: str, value: str, start: datetime, changed: bool) -> str:
    """What `policy set` (and `insurance policy set`) prints."""
    state = "已记录 / recorded" if changed else "已在使用，未记录 / already in force"
    return f"{path} = {value} from {start.date()}: {state}"


def register(main: click.Group) -> None:
    """Add the commands of this module to the `dangliang` group."""

    @main.group()
    def policy() -> None:
        """Policy parameters (政策参数): adopt a bundle, change a value, show what is in force."""

    @policy.command("load")
    @click.argument("source", metavar="FILE|NAME")
    @click.option(
        "--reference",
        required=True,
        help="The decision adopting it (文号 / meeting minutes), recorded with the adoption.",
    )
    @with_app
    def policy_load(app: Dangliang, actor: str, source: str, reference: str) -> None:
        """Validate a policy bundle (a YAML file, or a built-in: zhuji, point_value) and record
        its adoption. A bundle with problems is refused with file:line:key for each."""
        changed, tree = app.adopt_policy(source, reference=reference, actor=actor)
        click.echo(adoption_line(changed, tree))

    @policy.command("set")
    @click.argument("path")
    @click.argument("value")
    @click.option(
        "--from",
        "start",
        required=True,
        type=click.DateTime(["%Y-%m-%d"]),
        help="Effective date (1st of a month for monthly parameters).",
    )
    @click.option("--reason", required=True, help="Why (重大项目、价格调整…).")
    @click.option("--approver", required=True, help="Who approved it (卫健、财政).")
    @with_app
    def policy_set(
        app: Dangliang,
        actor: str,
        path: str,
        value: str,
        start: datetime,
        reason: str,
        approver: str,
    ) -> None:
        """Record a dated change of one parameter, e.g. a unit price:
        `policy set unit_price.basic_medical 13.00 --from 2025-01-01 --reason … --approver …`."""
        changed = app.change_parameter(
            path, value, start=start.date(), reason=reason, approver=approver, actor=actor
        )
        click.echo(change_line(path, value, start, changed))

    @policy.command("show")
    @click.option(
        "--on",
        "on",
        type=click.DateTime(["%Y-%m-%d"]),
        default=None,
        help="Values in force on this day (default: all dated values).",
    )
    @as_of_options
    @click.option("--json", "as_json", is_flag=True)
    @with_app
    def policy_show(
        app: Dangliang,
        actor: str,
        on: datetime | None,
        as_of: datetime | None,
        position: int | None,
        as_json: bool,
    ) -> None:
        """The parameters in force (adopted bundle plus recorded changes), with references."""
        at = app.resolve_position(as_of=utc(as_of), position=position)
        found = app.parameters_in_force(on=on.date() if on else None, position=at)
        if as_json:
            click.echo(json.dumps(found, ensure_ascii=False, indent=2))
            return
        click.echo(
            f"{found['bundle']} (log position {at}; parameters digest {found['digest'][:16]})"
        )
        for r in found["parameters"]:
            click.echo(
                f"  {r['path']:<40} {r['value']:>14} {r['unit']:<14} from {r['effective_from']}  "
                f"{r['reference']}"
            )

    @main.group(name="inputs")
    def inputs_group() -> None:
        """Compensation inputs (补偿计算输入) from files: each is recorded as events."""

    for kind, label in INPUT_COMMANDS.items():
        _input_command(inputs_group, with_app, kind, label)


INPUT_COMMANDS = {
    "scores": "综合考核得分 assessment scores per institution-year",
    "income": "医疗服务收入（不含药品） medical-service income per institution-month",
    "pay-levels": "在编人均年收入 actual income per establishment head, per institution-year",
    "tasks": "指令性任务 directive tasks: amount and completion",
    "force-majeure": "不可抗力认定 force-majeure declarations: months and institutions",
    "parameters": "政策参数调整 dated parameter changes with reason and approver",
    "pools": "绩效工资总量 performance-pay pools, reward share, surplus, director",
    "staff-coefficients": "个人考核系数 personal assessment coefficients per staff-year",
    "outside-items": "绩效总量外项目 amounts paid outside the pool per staff-year",
}


def _input_command(
    group: click.Group, with_app: Callable[[Callable[..., Any]], Any], kind: str, label: str
) -> None:
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @with_app
    def load(app: Dangliang, actor: str, file: Path) -> None:
        click.echo(app.load_inputs(kind, file, actor=actor).summary())

    load.__doc__ = (
        f"Load {label} (docs/formats.md). The whole file is checked first; "
        "a file with problems is refused and nothing is recorded."
    )
    group.command(name=kind)(load)

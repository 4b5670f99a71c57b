"""What users and scripts call stays: every command with its options and every HTTP route of
the code before the regroup (tests/fixtures/pre_regroup/surface.json, written by that code)
is still there. New commands, options and routes may be added; none may go or be renamed."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dangliang.api import create_app
from dangliang.cli.main import main

BEFORE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "pre_regroup" / "surface.json").read_text("utf-8")
)


def commands(cmd: click.Command, prefix: str = "") -> dict[str, set[str]]:
    """Each command's full name (`payout run`) → its options (first spelling) and arguments."""
    found = {prefix or "dangliang": {p.opts[0] if p.opts else str(p.name) for p in cmd.params}}
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            found.update(commands(sub, f"{prefix} {name}".strip()))
    return found


def test_every_command_and_option_is_still_there() -> None:
    now = commands(main)
    missing = {
        name: sorted(set(options) - now.get(name, set()))
        for name, options in BEFORE["cli"].items()
        if name not in now or set(options) - now[name]
    }
    assert missing == {}
    assert len(BEFORE["cli"]) == 55  # the main group, 10 groups and 44 commands


def test_every_http_route_is_still_there() -> None:
    schema = create_app().openapi()
    now = {f"{method.upper()} {path}" for path, ops in schema["paths"].items() for method in ops}
    assert sorted(set(BEFORE["api"]) - now) == []
    assert len(BEFORE["api"]) == 26

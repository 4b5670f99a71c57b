"""The layout is part of the design (docs/architecture.md): these tests fail on a wrong arrow,
a loose module, a name used twice or a module grown past what one reader holds in mind."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "dangliang"
ROOT = PACKAGE.parents[1]
MAX_LINES = 500
LAYERS = {  # top-level packages, outermost first (the import-linter contract in pyproject)
    "cli",
    "web",
    "api",
    "demo",
    "application",
    "payouts",
    "calculation",
    "importers",
    "projections",
    "ledger",
    "policy",
    "domain",
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_import_contracts_hold() -> None:
    """Dependencies point inward (layers), aggregates stay independent, the domain and the
    rules import no I/O library, the web reads only through the application, settings
    import nothing of dangliang."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.exists():
        pytest.fail(
            f"import-linter is not installed beside {sys.executable}: pip install -e .[test]"
        )
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 kept, 0 broken" in done.stdout, done.stdout


def test_the_top_holds_packages_of_the_layers_and_nothing_loose() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "settings.py"}
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages == LAYERS


def test_no_two_modules_share_a_name() -> None:
    names = Counter(p.name for p in modules() if p.name not in ("__init__.py", "__main__.py"))
    assert [n for n, count in names.items() if count > 1] == []


def test_no_module_is_longer_than_one_reader_holds() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in modules()
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}

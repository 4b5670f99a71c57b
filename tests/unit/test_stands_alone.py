"""The project stands alone: what a user gets (the package, its bundles, the docs, the README,
the benchmarks) cites a policy by its document's title and clause and explains the rules in
docs/, never by a file outside the repository (the team's rulebook or its copies of the
policy documents)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("src/dangliang", "docs", "benchmarks", "README.md", "BENCHMARKS.md")
OUTSIDE = ("DOMAIN.md", "seeds/", "../shared")


def test_nothing_shipped_points_outside_the_repository() -> None:
    found = []
    for place in SHIPPED:
        path = ROOT / place
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in files:
            if not file.is_file() or file.suffix not in {
                ".py",
                ".yaml",
                ".md",
                ".html",
                ".js",
                ".txt",
            }:
                continue
            text = file.read_text(encoding="utf-8", errors="replace")
            found += [f"{file.relative_to(ROOT)}: {o}" for o in OUTSIDE if o in text]
    assert found == []

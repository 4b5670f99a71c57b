"""Staging files: locked while in use, cleaned up after an import that was killed."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dangliang.ledger.staging import NEW, Staging, remove_abandoned_staging


def test_entries_round_trip_and_the_file_goes_away(tmp_path: Path) -> None:
    staging = Staging(tmp_path)
    staging.add([("a" * 32, 2, "{}", NEW), ("b" * 32, 3, "{}", NEW)])
    assert staging.counts() == {NEW: 2}
    assert list(staging.batches(1)) == [(1, 1), (2, 2)]
    staging.close()
    assert not staging.path.exists()


def test_abandoned_files_are_removed_but_a_live_one_is_kept(tmp_path: Path) -> None:
    live = Staging(tmp_path)
    abandoned = tmp_path / f"{Staging.PREFIX}dead.db"
    abandoned.write_bytes(b"left behind by a killed import")
    recent = tmp_path / f"{Staging.PREFIX}new.db"
    recent.write_bytes(b"just created by another import")
    old = time.time() - 3600
    for path in (abandoned, live.path):
        os.utime(path, (old, old))

    remove_abandoned_staging(tmp_path)

    assert not abandoned.exists()  # nobody holds its lock
    assert live.path.exists()  # locked by a running import
    assert recent.exists()  # too young to judge
    live.close()

"""The manifest written beside every backup (`BACKUP.manifest.json`): what the backup holds,
so `dangliang restore` can print it and check the restored log against it.

    {"format": "dangliang-backup", "format_version": 1, "backend": "sqlite" | "postgres",
     "schema": null | "public" | NAME, "file": NAME, "size": BYTES, "sha256": HEX,
     "events_table": NAME, "log_head": ID, "events": COUNT, "chain_head": "ID:DIGEST",
     "created_at": ISO-8601 UTC, "software_version": "0.1.0", "tool": "pg_dump (PostgreSQL) 15.2"}

`log_head` is the last notification id in the backed-up log and `chain_head` the hash chain's
head there, both read from the very data the backup holds (the same SQLite read transaction,
the same PostgreSQL snapshot); `sha256` and `size` are the backup file's.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dangliang.domain.errors import DomainError
from dangliang.ledger.chain import parse_head

FORMAT = "dangliang-backup"
FORMAT_VERSION = 1
SUFFIX = ".manifest.json"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BackupRefused(DomainError):
    """A backup or restore that cannot go ahead (nothing was changed)."""


@dataclass(frozen=True)
class Manifest:
    backend: str  # "sqlite" | "postgres"
    schema: str | None  # PostgreSQL: the schema dumped
    file: str  # the backup file's name, beside the manifest
    size: int
    sha256: str
    events_table: str
    log_head: int
    events: int
    chain_head: str  # "ID:DIGEST"
    created_at: str
    software_version: str
    tool: str
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        fields = asdict(self)
        ordered = {"format": fields.pop("format"), "format_version": fields.pop("format_version")}
        return json.dumps({**ordered, **fields}, ensure_ascii=False, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackupRefused(
                f"找不到备份清单 {path}：备份文件和它的清单应放在一起",
                f"no backup manifest at {path}: a backup file and its manifest belong together",
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise unreadable(path, str(e)) from None
        if not isinstance(found, dict) or found.get("format") != FORMAT:
            raise unreadable(path, f"not a {FORMAT} manifest")
        version = found.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BackupRefused(
                f"备份清单 {path} 的格式版本 {version} 比本程序新：请用更新版本的 dangliang 恢复",
                f"the manifest {path} has format version {version}, newer than this dangliang "
                "understands: restore it with a newer dangliang",
            )
        try:
            manifest = cls(**{k: found[k] for k in cls.__dataclass_fields__})
        except (KeyError, TypeError) as e:
            raise unreadable(path, f"missing or wrong field: {e}") from None
        manifest.check(path)
        return manifest

    def check(self, path: Path) -> None:
        problems = []
        if self.backend not in ("sqlite", "postgres"):
            problems.append(f"backend {self.backend!r}")
        if not _SHA256.fullmatch(str(self.sha256)):
            problems.append("sha256")
        for name in ("size", "log_head", "events"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                problems.append(name)
        try:
            parse_head(str(self.chain_head))
        except ValueError:
            problems.append("chain_head")
        if not isinstance(self.file, str) or Path(self.file).name != self.file:
            problems.append("file")
        if problems:
            raise unreadable(path, "bad " + ", ".join(problems))

    def write(self, path: Path) -> None:
        """Write the manifest (to a temporary name first, then renamed: never half written)."""
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as f:
            f.write(self.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)

    def lines(self) -> list[str]:
        where = "SQLite" if self.backend == "sqlite" else f"PostgreSQL, schema {self.schema}"
        return [
            f"  数据库 / backend:        {where}",
            f"  日志位置 / log head:     {self.log_head:,} ({self.events:,} events)",
            f"  链头 / chain head:       {self.chain_head}",
            f"  创建于 / created at:     {self.created_at} by dangliang {self.software_version} "
            f"with {self.tool}",
            f"  文件 / file:             {self.file}, {self.size:,} bytes, sha256 {self.sha256}",
        ]


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + SUFFIX)


def locate(path: Path) -> tuple[Path, Path]:
    """(backup file, manifest) for a path naming either of them."""
    if path.name.endswith(SUFFIX):
        manifest = Manifest.read(path)
        return path.with_name(manifest.file), path
    return path, manifest_path(path)


def unreadable(path: Path, why: str) -> BackupRefused:
    return BackupRefused(
        f"备份清单 {path} 无法读取：{why}", f"the backup manifest {path} cannot be read: {why}"
    )


__all__ = ["FORMAT", "SUFFIX", "BackupRefused", "Manifest", "locate", "manifest_path"]

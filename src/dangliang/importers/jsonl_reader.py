"""The JSON lines table reader: one JSON object per line, UTF-8 (with or without BOM), keys
as headers, as `readers.open_table` returns it for .jsonl, .ndjson and .json files.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from dangliang.importers.formats import FileFormat, normalise_header
from dangliang.importers.table_reader import Row, TableReader, file_size

# ---------------------------------------------------------------------------------------
# JSON lines
# ---------------------------------------------------------------------------------------


class JsonLinesReader(TableReader):
    """One JSON object per line, UTF-8 (with or without BOM); keys are headers.

    Numbers keep their exact text (1.10 stays "1.10"); true/false become "true"/"false";
    null is None. Unknown keys are listed once in `ignored_columns`. A missing key is not a
    reader problem: the column is None and the validator decides whether it was required.
    """

    def __init__(self, path: Path | str, fmt: FileFormat):
        super().__init__(path, fmt)
        self._binary: BinaryIO | None = None
        self._check_start()

    def _check_start(self) -> None:
        """File-level checks: the file opens, is not empty, and is not one big JSON array."""
        try:
            with open(self.path, "rb") as binary:
                self._total = file_size(binary)
                for lineno, raw in enumerate(binary, 1):
                    text = raw.lstrip(codecs.BOM_UTF8).strip()
                    if not text:
                        continue
                    if text.startswith(b"["):
                        self._file_problem(
                            lineno,
                            None,
                            "文件是一个 JSON 数组，请改为每行一个 JSON 对象（JSON lines）",
                            "the file is a JSON array; write one JSON object per line (JSON lines)",
                        )
                    return
        except OSError as exc:
            self._file_problem(None, None, f"无法打开文件：{exc}", f"cannot open the file: {exc}")
            return
        self._file_problem(None, None, "文件为空", "the file is empty")

    def progress(self) -> tuple[int, int]:
        binary = self._binary
        if binary is not None and not binary.closed:
            self._done = min(binary.tell(), self._total)
        return self._done, self._total

    def close(self) -> None:
        if self._binary is not None:
            self._binary.close()

    def _rows(self) -> Iterator[tuple[int, Row]]:
        columns = self.fmt.column_names
        header_map = self.fmt.header_map()
        key_names: dict[str, str | None] = {}  # key as written → canonical name (or None)
        loads = json.loads
        bad_line = self._bad_line
        self._done = 0
        binary = open(self.path, "rb")  # noqa: SIM115
        self._binary = binary
        try:
            for lineno, raw in enumerate(binary, 1):
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad_line(
                        lineno,
                        None,
                        f"第{lineno}行不是 UTF-8 编码（字节 0x{raw[exc.start]:02x}）",
                        f"line {lineno} is not UTF-8 (byte 0x{raw[exc.start]:02x})",
                    )
                    continue
                if not line.strip():
                    continue
                try:
                    obj = loads(line, parse_float=str, parse_int=str, parse_constant=str)
                except ValueError as exc:
                    reason = getattr(exc, "msg", str(exc))
                    bad_line(
                        lineno,
                        None,
                        f"第{lineno}行不是有效的 JSON：{reason}",
                        f"line {lineno} is not valid JSON: {reason}",
                    )
                    continue
                if type(obj) is not dict:
                    bad_line(
                        lineno,
                        None,
                        f'第{lineno}行不是 JSON 对象（应为 {{"列名": 值, …}}）',
                        f'line {lineno} is not a JSON object (expected {{"column": value, …}})',
                    )
                    continue
                out: Row = dict.fromkeys(columns)
                seen: dict[str, str] = {}
                ok = True
                for key, value in obj.items():
                    if key in key_names:
                        name = key_names[key]
                    else:
                        name = key_names[key] = header_map.get(normalise_header(key))
                        if name is None:
                            self._ignore(key)
                    if name is None:
                        continue
                    if name in seen:
                        ok = False
                        bad_line(
                            lineno,
                            name,
                            f"列重复：'{seen[name]}' 与 '{key}' 都对应 '{name}'",
                            f"duplicate column: '{seen[name]}' and '{key}' both mean '{name}'",
                        )
                        continue
                    seen[name] = key
                    kind = value.__class__
                    if kind is str:
                        out[name] = value.strip() or None
                    elif value is None:
                        pass
                    elif kind is bool:
                        out[name] = "true" if value else "false"
                    else:  # dict or list
                        ok = False
                        bad_line(
                            lineno,
                            name,
                            "值必须是文本或数字，不能是嵌套的对象或数组",
                            "the value must be text or a number, not a nested object or array",
                        )
                if ok:
                    yield lineno, out
        finally:
            self._done = min(binary.tell(), self._total)
            binary.close()
        self._done = self._total

    def _bad_line(self, lineno: int, column: str | None, zh: str, en: str) -> None:
        self._row_problem(lineno, column, zh, en)

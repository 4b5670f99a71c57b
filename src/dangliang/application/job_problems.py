"""The problems of a web import job (导入问题), one row each in `web_import_problems`.

A refused file may have millions of problems (a 512 MB upload wrong on every row). Kept as one
JSON text in the job's row, they ran into PostgreSQL's 1 GB limit for a field, and every look
at the job's status parsed all of them to show the first 200. Here they are rows: written with
the job's end, in the same transaction and a chunk of rows per statement; a status reads its
first few by their number; the workbook streams them all in order.

Jobs that ended before this table existed keep their problems in the row's `problems_json`;
`job_problems` reads those as before.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, Text, select

from dangliang.domain.problems import Problem

WRITE_CHUNK = 10_000  # problems a statement (an executemany)
READ_CHUNK = 10_000  # problems a fetch when streaming them all

metadata = MetaData()
problems_table = Table(
    "web_import_problems",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),  # the problem's place in the report, from 0
    Column("file", Text, nullable=False),
    Column("row", Integer),
    Column("column_name", String(200)),
    Column("message_zh", Text, nullable=False),
    Column("message_en", Text, nullable=False),
)


def write_problems(conn: Connection, job_id: str, problems: Iterable[Problem]) -> int:
    """Append a job's problems in report order, a chunk a statement; how many."""
    count = 0
    numbered = enumerate(problems)
    while chunk := list(itertools.islice(numbered, WRITE_CHUNK)):
        conn.execute(
            problems_table.insert(),
            [
                {
                    "job_id": job_id,
                    "seq": seq,
                    "file": p.file,
                    "row": p.row,
                    "column_name": p.column,
                    "message_zh": p.message_zh,
                    "message_en": p.message_en,
                }
                for seq, p in chunk
            ],
        )
        count += len(chunk)
    return count


def job_problems(
    engine: Engine, row: Mapping[str, Any], limit: int | None = None
) -> Iterator[Problem]:
    """A job's problems in report order (the first `limit`, or all, streamed a chunk of rows
    at a time): from the table, or from `problems_json` for a job that ended before it."""
    if row.get("problems_json"):
        old = json.loads(row["problems_json"])
        yield from (Problem(*p) for p in (old if limit is None else old[:limit]))
        return
    t = problems_table
    query = (
        select(t.c.file, t.c.row, t.c.column_name, t.c.message_zh, t.c.message_en)
        .where(t.c.job_id == row["id"])
        .order_by(t.c.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=READ_CHUNK).execute(query)
        for found in result:
            yield Problem(*found)

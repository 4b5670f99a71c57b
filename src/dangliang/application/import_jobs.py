"""Background imports (后台导入任务): an upload is checked and written on a worker thread
while the user watches its progress, then sees the counts or every problem found.

Jobs are rows of `web_import_jobs`, a table of their own beside the read models (not a
projection: a rebuild leaves it alone). Imports run one at a time per process (a
single-worker executor), so the log's bulk writer never runs twice at once from here.

States: `queued` → `running` → `done` (counts), `refused` (every problem; nothing was
written) or `failed` (an unexpected error, logged with its traceback). A job left `queued` or
`running` by a process that stopped reports `interrupted`: its row stops being refreshed
(progress, or a heartbeat every 30 s), and after 120 s it is taken for dead.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from dangliang.application import job_problems as problems_store
from dangliang.application.accounts import Principal
from dangliang.application.uploads import (
    KIND_LABELS,
    Forbidden,
    Importing,
    check_may_import,
    import_upload,
)
from dangliang.domain.errors import DomainError, NotFound
from dangliang.domain.problems import Problem, ProblemsFound
from dangliang.importers.cell_text import text_cell
from dangliang.projections.tracking import create_missing

if TYPE_CHECKING:
    from openpyxl import Workbook

logger = logging.getLogger(__name__)

metadata = MetaData()
jobs_table = Table(
    "web_import_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("state", String(16), nullable=False),
    Column("phase", String(16), nullable=False, default=""),
    Column("done", BigInteger, nullable=False, default=0),
    Column("total", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("result_json", Text),
    Column("problems_json", Text),  # jobs that ended before `job_problems`: their problems
    Column("problem_count", Integer, nullable=False, default=0),
    Column("error_zh", Text),
    Column("error_en", Text),
    Index("web_import_jobs_by_actor", "actor", "created_at"),
    Index("web_import_jobs_by_time", "created_at"),
)

RUNNING = ("queued", "running")
STATE_LABELS = {
    "queued": "排队中",
    "running": "导入中",
    "done": "已完成",
    "refused": "已拒收",
    "failed": "失败",
    "interrupted": "已中断",
}
PHASE_LABELS = {"": "", "scope": "核对机构范围", "validate": "检查", "write": "写入"}
PROGRESS_EVERY = 0.3  # seconds between two progress writes (a new phase is written at once)
HEARTBEAT = 30.0  # seconds between two refreshes of a live job's row
STALE = timedelta(seconds=120)  # a queued or running row not refreshed for this long is dead
SHOWN_PROBLEMS = 200  # problems in a status; the XLSX has every one
SHEET_PROBLEMS = 1_048_575  # problems a sheet: a spreadsheet's 1,048,576 rows, less the header
INTERRUPTED = (
    "服务器已重启，导入被中断；请重新上传该文件（已写入的记录不会重复写入）",
    "the server restarted and the import was interrupted; upload the file again "
    "(whatever was already written is not written twice)",
)


class ImportJobs:
    """Background imports of one application (`app.import_jobs`)."""

    def __init__(self, app: Importing):
        self.app = app
        self.engine = app.engine
        self.write_engine = app.write_engine  # BEGIN IMMEDIATE on SQLite
        create_missing(self.write_engine, metadata, problems_store.metadata)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dangliang-import")
        self._futures: dict[str, Future[None]] = {}  # this process's jobs, until they end
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    # ---- commands ------------------------------------------------------------------------

    def start(
        self, kind: str, path: Path, principal: Principal, *, display_name: str, today: date
    ) -> str:
        """Queue the import of the file at `path` (see `uploads.new_upload_path`) as `kind`
        for `principal`; return the job's id. The file is the job's from this call on: it is
        deleted (with its `dangliang-upload-` folder) when the job ends, or at once when the
        user may not import this kind (`Forbidden`, `DomainError`)."""
        path = Path(path)
        try:
            check_may_import(principal, kind)
        except DomainError:
            _remove(path)
            raise
        job_id = uuid.uuid4().hex
        now = _now()
        with self.write_engine.begin() as conn:
            conn.execute(
                jobs_table.insert().values(
                    id=job_id,
                    kind=kind,
                    file_name=display_name[:255],
                    actor=principal.name,
                    state="queued",
                    phase="",
                    done=0,
                    total=0,
                    created_at=now,
                    updated_at=now,
                    problem_count=0,
                )
            )
        future: Future[None] | None
        with self._lock:
            try:
                future = self._executor.submit(
                    self._run, job_id, kind, path, principal, display_name, today
                )
            except RuntimeError:  # closed: the application is shutting down
                future = None
            else:
                self._futures[job_id] = future
                self._paths[job_id] = path
                self._start_heartbeat()
        if future is None:
            _remove(path)
            self._finish(job_id, "interrupted", error=INTERRUPTED)
            raise RuntimeError("import jobs are closed")
        return job_id

    def close(self) -> None:
        """Wait for the running import; queued ones are marked interrupted (their files
        deleted). Called by `Dangliang.close()`."""
        self._stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            cancelled = [job for job, f in self._futures.items() if f.cancelled()]
        for job_id in cancelled:
            _remove(self._paths[job_id])
            with contextlib.suppress(Exception):
                self._finish(job_id, "interrupted", error=INTERRUPTED)
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)

    # ---- queries -------------------------------------------------------------------------

    def status(self, job_id: str, principal: Principal) -> dict[str, Any]:
        """The job's state, phase and progress (`percent` of the current phase), and its
        result, or its first 200 problems with `problem_count`. A clerk sees only their own
        jobs (`Forbidden`); an unknown id is `NotFound`."""
        return self._view(self._row(job_id, principal), problems=SHOWN_PROBLEMS)

    def recent(self, principal: Principal, limit: int = 20) -> list[dict[str, Any]]:
        """The latest jobs, newest first (a clerk: their own), without their problems."""
        columns = [c for c in jobs_table.c if c.name != "problems_json"]
        query = select(*columns).order_by(jobs_table.c.created_at.desc()).limit(limit)
        if principal.role == "clerk":
            query = query.where(jobs_table.c.actor == principal.name)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [self._view(dict(row), problems=0) for row in rows]

    def problems_xlsx(self, job_id: str, principal: Principal) -> bytes:
        """Every problem of the job as a workbook: 文件, 行, 列, 问题, Problem (English), on
        as many sheets as a spreadsheet's row limit needs (`SHEET_PROBLEMS` a sheet)."""
        from openpyxl import Workbook  # here: only this download needs openpyxl

        row = self._row(job_id, principal)
        book = Workbook(write_only=True)
        sheet = None
        for n, p in enumerate(problems_store.job_problems(self.engine, row)):
            if n % SHEET_PROBLEMS == 0:
                sheet = _problems_sheet(book, n // SHEET_PROBLEMS + 1)
            assert sheet is not None
            texts = [text_cell(sheet, v) for v in (p.column or "", p.message_zh, p.message_en)]
            sheet.append([text_cell(sheet, p.file), p.row, *texts])
        if sheet is None:
            _problems_sheet(book, 1)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()

    def wait(self, job_id: str, timeout: float) -> dict[str, Any]:
        """Wait up to `timeout` seconds for the job to end; its status then (as an
        administrator sees it), whether it ended or not."""
        with self._lock:
            future = self._futures.get(job_id)
        deadline = time.monotonic() + timeout
        if future is not None:
            with contextlib.suppress(FutureTimeout):
                future.result(timeout=timeout)
        while True:
            found = self._view(self._row(job_id, None), problems=SHOWN_PROBLEMS)
            if found["state"] not in RUNNING or time.monotonic() >= deadline:
                return found
            time.sleep(0.1)

    # ---- the worker ----------------------------------------------------------------------

    def _run(
        self, job_id: str, kind: str, path: Path, principal: Principal, name: str, today: date
    ) -> None:
        progress = _Progress(lambda *seen: self._progress(job_id, *seen))
        try:
            self._update(job_id, state="running")
            result = import_upload(
                self.app, kind, path, principal, display_name=name, today=today, progress=progress
            )
        except ProblemsFound as e:
            n = len(e.problems)
            refusal = (
                f"已拒收：共 {n} 个问题，未写入任何数据",
                f"refused: {n} problem(s); nothing was written",
            )
            self._finish(job_id, "refused", progress.last, problems=e.problems, error=refusal)
        except Forbidden as e:
            error = (e.message_zh, e.message_en)
            self._finish(job_id, "refused", progress.last, problems=e.problems, error=error)
        except DomainError as e:
            self._finish(job_id, "refused", progress.last, error=(e.message_zh, e.message_en))
        except Exception as e:
            logger.exception("import job %s (%s, %s) failed", job_id, kind, name)
            error = (
                f"导入失败（内部错误 {type(e).__name__}），详情见服务器日志（任务 {job_id}）",
                f"the import failed (internal error {type(e).__name__}); see the server's "
                f"log for job {job_id}",
            )
            self._finish(job_id, "failed", progress.last, error=error)
        else:
            self._finish(job_id, "done", progress.last, result=result.as_json())
        finally:
            _remove(path)

    def _progress(self, job_id: str, phase: str, done: int, total: int) -> None:
        try:
            self._update(job_id, phase=phase[:16], done=done, total=total)
        except Exception:  # a busy database must not stop the import
            logger.warning("import job %s: progress not recorded", job_id, exc_info=True)

    def _update(self, job_id: str, **values: Any) -> None:
        with self.write_engine.begin() as conn:
            _set(conn, job_id, **values)

    def _finish(
        self,
        job_id: str,
        state: str,
        last: tuple[str, int, int] | None = None,
        *,
        result: dict[str, Any] | None = None,
        problems: list[Problem] | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "finished_at": _now()}
        if last is not None:
            values.update(phase=last[0][:16], done=last[1], total=last[2])
        if result is not None:
            values["result_json"] = json.dumps(result, ensure_ascii=False)
        if error is not None:
            values["error_zh"], values["error_en"] = error
        try:
            with self.write_engine.begin() as conn:  # the row and its problems together
                if problems:
                    values["problem_count"] = problems_store.write_problems(conn, job_id, problems)
                _set(conn, job_id, **values)
        finally:
            with self._lock:
                self._futures.pop(job_id, None)
                self._paths.pop(job_id, None)

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=self._beat, name="dangliang-import-heartbeat", daemon=True
            )
            self._heartbeat.start()

    def _beat(self) -> None:
        """Keep the rows of this process's jobs fresh, so that others do not take a long
        import without progress (a big reference file) for an interrupted one."""
        while not self._stop.wait(HEARTBEAT):
            with self._lock:
                live = list(self._futures)
            if not live:
                continue
            try:
                with self.write_engine.begin() as conn:
                    conn.execute(
                        jobs_table.update()
                        .where(jobs_table.c.id.in_(live), jobs_table.c.state.in_(RUNNING))
                        .values(updated_at=_now())
                    )
            except Exception:
                logger.warning("import jobs: heartbeat not recorded", exc_info=True)

    # ---- reading rows --------------------------------------------------------------------

    def _row(self, job_id: str, principal: Principal | None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            found = conn.execute(select(jobs_table).where(jobs_table.c.id == job_id)).mappings()
            row = found.one_or_none()
        if row is None:
            raise NotFound(f"没有导入任务 {job_id}", f"no import job {job_id}")
        if principal is not None and principal.role == "clerk" and row["actor"] != principal.name:
            raise Forbidden(
                f"机构填报员 {principal.name} 只能查看自己的导入任务",
                f"clerk {principal.name} may only see their own import jobs",
            )
        return dict(row)

    def _view(self, row: dict[str, Any], *, problems: int) -> dict[str, Any]:
        state, error = row["state"], (row["error_zh"], row["error_en"])
        with self._lock:
            live = row["id"] in self._futures
        if state in RUNNING and not live and _now() - _utc(row["updated_at"]) > STALE:
            state, error = "interrupted", INTERRUPTED
        done, total = row["done"], row["total"]
        percent = 100 if state == "done" else (min(100, done * 100 // total) if total else 0)
        view: dict[str, Any] = {
            "id": row["id"],
            "kind": row["kind"],
            "kind_label": KIND_LABELS.get(row["kind"], row["kind"]),
            "file": row["file_name"],
            "actor": row["actor"],
            "state": state,
            "state_label": STATE_LABELS.get(state, state),
            "phase": row["phase"],
            "phase_label": PHASE_LABELS.get(row["phase"], row["phase"]),
            "done": done,
            "total": total,
            "percent": percent,
            "created_at": _utc(row["created_at"]).isoformat(),
            "updated_at": _utc(row["updated_at"]).isoformat(),
            "finished_at": _utc(row["finished_at"]).isoformat() if row["finished_at"] else None,
            "result": json.loads(row["result_json"]) if row["result_json"] else None,
            "problem_count": row["problem_count"],
            "message_zh": error[0],
            "message_en": error[1],
        }
        if problems:
            found = problems_store.job_problems(self.engine, row, limit=problems)
            view["problems"] = [p.as_dict() for p in found]
        return view


class Uploads(Importing):
    """`Dangliang`'s part: data entry, the fund's data and `import_jobs`, made with the
    application and closed with it."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.import_jobs = ImportJobs(self)

    def close(self) -> None:
        self.import_jobs.close()
        super().close()


class _Progress:
    """A job's `progress(phase, done, total)`: written at most every 0.3 s (a new phase at
    once); the last values seen are written when the job ends."""

    def __init__(self, write: Callable[[str, int, int], None]):
        self.write = write
        self.last: tuple[str, int, int] | None = None
        self._written_at = float("-inf")

    def __call__(self, phase: str, done: int, total: int) -> None:
        moved_on = self.last is None or self.last[0] != phase
        self.last = (phase, done, total)
        now = time.monotonic()
        if moved_on or now - self._written_at >= PROGRESS_EVERY:
            self._written_at = now
            self.write(phase, done, total)


def _set(conn: Connection, job_id: str, **values: Any) -> None:
    """Change a job's row (its `updated_at` too)."""
    conn.execute(
        jobs_table.update().where(jobs_table.c.id == job_id).values(updated_at=_now(), **values)
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes (written as UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _remove(path: Path) -> None:
    """Delete an upload, and its `dangliang-upload-` folder once empty."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
    if path.parent.name.startswith("dangliang-upload-"):
        with contextlib.suppress(OSError):
            path.parent.rmdir()


def _problems_sheet(book: Workbook, number: int) -> Any:
    """A sheet for problems, its header written: "问题 Problems", then "问题 Problems 2", …"""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    sheet = book.create_sheet("问题 Problems" if number == 1 else f"问题 Problems {number}")
    sheet.freeze_panes = "A2"
    for letter, width in zip("ABCDE", (24, 8, 20, 60, 60), strict=True):
        sheet.column_dimensions[letter].width = width
    bold = Font(bold=True)
    header = []
    for title in ("文件", "行", "列", "问题", "Problem"):
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    return sheet

"""The one seam between the GUI thread and the engine: a QObject in a QThread running queued jobs.

The GUI calls `Worker.submit(kind, fn, on_...)`; `fn(ctx)` runs on the worker thread with
`ctx.backend` (model, style store, prior: all owned by that thread), `ctx.cancel` (a
threading.Event checked per token / per file), `ctx.progress()` and `ctx.emit()`. Items
emitted are batched (at most one signal per ~30 ms) so a fast stream never floods the
GUI's event queue. Results and errors come back on the GUI thread through callbacks;
an error with no handler goes to `unhandledError`, never into the void.
"""

from __future__ import annotations

import atexit
import itertools
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from app.jobs.backend import (
    Backend,
    Cancelled,
    ImportReport,
    ModelInfo,
    SteerParams,
    StyleInfo,
    SweepParams,
    TuneParams,
    UserFacingError,
)
from engine.context import DEFAULT_NOTE_DEPTH
from engine.types import SamplingConfig

# Every worker thread, held until it has finished: a QThread destroyed while running aborts the
# process, which would happen if a Worker were dropped without shutdown().
_THREADS: set[QThread] = set()
_ORPHANS: list[tuple[QThread, QObject]] = []  # worker threads still busy at shutdown
_FLUSH_S = 0.03  # batch yielded items for this long: ~30 repaints/s at most
_PROGRESS_S = 0.05


@dataclass(frozen=True)
class JobError:
    """What went wrong in a job: a user's problem (one clear line) or a bug (with traceback)."""

    kind: str
    message: str
    user: bool
    details: str = ""


@dataclass
class _Job:
    id: int
    kind: str
    fn: Callable[[JobContext], Any]
    cancel: threading.Event
    on_yield: Callable[[list], None] | None = None
    on_progress: Callable[[int, int, str], None] | None = None
    on_done: Callable[[Any], None] | None = None
    on_error: Callable[[JobError], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    on_started: Callable[[], None] | None = None


class JobContext:
    """Handed to a job function on the worker thread."""

    def __init__(self, core: _Core, job: _Job) -> None:
        self._core = core
        self._job = job
        self.cancel = job.cancel
        self._buffer: list = []
        self._last_flush = time.perf_counter()
        self._last_progress = 0.0

    @property
    def backend(self) -> Backend:
        return self._core.backend

    def emit(self, item: Any) -> None:
        self._buffer.append(item)
        now = time.perf_counter()
        if now - self._last_flush >= _FLUSH_S:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._buffer:
            items, self._buffer = self._buffer, []
            self._core.yielded.emit(self._job.id, items)
        self._last_flush = now if now is not None else time.perf_counter()

    def progress(self, done: int, total: int, text: str = "", *, stage: bool = False) -> None:
        now = time.perf_counter()
        if stage or done >= total or now - self._last_progress >= _PROGRESS_S:
            self._last_progress = now
            self._core.progress.emit(self._job.id, int(done), int(total), str(text))

    def notify(self, line: str) -> None:
        self._core.notice.emit(str(line))

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


class _Core(QObject):
    """Lives on the worker thread; runs jobs one after another."""

    started = Signal(int)
    progress = Signal(int, int, int, str)
    yielded = Signal(int, object)
    finished = Signal(int, object)
    errored = Signal(int, object)
    cancelled = Signal(int)
    notice = Signal(str)

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.thread_id: int | None = None

    @Slot(object)
    def run_job(self, job: _Job) -> None:
        self.thread_id = threading.get_ident()
        if job.cancel.is_set():
            self.cancelled.emit(job.id)
            return
        self.started.emit(job.id)
        ctx = JobContext(self, job)
        try:
            result = job.fn(ctx)
            ctx.flush()
        except Cancelled:
            ctx.flush()
            self.cancelled.emit(job.id)
        except UserFacingError as exc:
            ctx.flush()
            self.errored.emit(job.id, JobError(job.kind, str(exc), True))
        except Exception as exc:  # noqa: BLE001 - a bug: report it with its traceback
            ctx.flush()
            self.errored.emit(job.id, JobError(
                job.kind, f"{type(exc).__name__}: {exc}", False, traceback.format_exc()))
        else:
            self.finished.emit(job.id, result)


class Worker(QObject):
    """GUI-side handle: submit jobs, cancel them, hear back on the GUI thread."""

    busyChanged = Signal(bool)
    jobStarted = Signal(int, str)
    jobEnded = Signal(int, str)
    unhandledError = Signal(object)  # JobError
    notice = Signal(str)  # one-line notices from the engine (e.g. falling back to the demo model)
    modelLoaded = Signal(object)  # ModelInfo
    libraryNotice = Signal(str)  # said once: the style library was set aside as damaged, or is read-only
    stylesChanged = Signal(object)  # list[StyleInfo]
    _submit = Signal(object)

    def __init__(self, backend: Backend, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend = backend
        self._ids = itertools.count(1)
        self._jobs: dict[int, _Job] = {}
        self._thread = QThread()
        self._thread.setObjectName("stylesteer-worker")
        self._core = _Core(backend)
        self._core.moveToThread(self._thread)
        self._submit.connect(self._core.run_job)
        self._core.started.connect(self._on_started)
        self._core.progress.connect(self._on_progress)
        self._core.yielded.connect(self._on_yielded)
        self._core.finished.connect(self._on_finished)
        self._core.errored.connect(self._on_errored)
        self._core.cancelled.connect(self._on_cancelled)
        self._core.notice.connect(self.notice)
        _THREADS.add(self._thread)
        self._thread.finished.connect(lambda t=self._thread: _THREADS.discard(t))
        self._thread.start()
        self._closed = False
        self.model: ModelInfo | None = None
        self.submit("open", lambda ctx: ctx.backend.open(),
                    on_done=lambda notice: self.libraryNotice.emit(notice) if notice else None)

    # --- job plumbing ------------------------------------------------------------
    def submit(self, kind: str, fn: Callable[[JobContext], Any], *,
               on_yield: Callable[[list], None] | None = None,
               on_progress: Callable[[int, int, str], None] | None = None,
               on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[JobError], None] | None = None,
               on_cancelled: Callable[[], None] | None = None,
               on_started: Callable[[], None] | None = None) -> int:
        if self._closed:
            raise RuntimeError("the worker has been shut down")
        job = _Job(next(self._ids), kind, fn, threading.Event(), on_yield, on_progress, on_done,
                   on_error, on_cancelled, on_started)
        was_busy = self.busy
        self._jobs[job.id] = job
        self._submit.emit(job)
        if not was_busy:
            self.busyChanged.emit(True)
        return job.id

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def pending(self, kind: str | None = None) -> list[int]:
        return [j.id for j in self._jobs.values() if kind is None or j.kind == kind]

    def cancel(self, job_id: int | None) -> None:
        job = self._jobs.get(job_id) if job_id is not None else None
        if job is not None:
            job.cancel.set()

    def cancel_kind(self, kind: str) -> None:
        for job in list(self._jobs.values()):
            if job.kind == kind:
                job.cancel.set()

    def cancel_all(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel.set()

    def set_lam(self, lam: float) -> None:
        """Acts on the stream in progress: the processor's lam is a thread-safe float."""
        self.backend.set_lam(lam)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        if self._closed:
            return
        self.cancel_all()
        self._closed = True
        done = threading.Event()

        def close(ctx: JobContext) -> None:
            try:
                ctx.backend.close()
            finally:
                done.set()

        job = _Job(next(self._ids), "close", close, threading.Event())
        self._submit.emit(job)
        done.wait(timeout_ms / 1000)
        self._thread.quit()
        if not self._thread.wait(timeout_ms):
            # A job that cannot be interrupted (a model download) is still running. Destroying a
            # running QThread aborts the process, so it is kept alive until the process exits.
            _ORPHANS.append((self._thread, self._core))
            self._thread.setParent(None)
        # Results still queued for the GUI thread belong to a window that is going away.
        self._jobs.clear()
        self.busyChanged.emit(False)

    @property
    def stuck(self) -> bool:
        """True after a shutdown that had to leave a job running."""
        return any(t is self._thread for t, _ in _ORPHANS)

    @property
    def thread(self) -> QThread:
        return self._thread

    # --- GUI-thread dispatch -----------------------------------------------------
    def _end(self, job_id: int) -> _Job | None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            self.jobEnded.emit(job.id, job.kind)
            if not self._jobs:
                self.busyChanged.emit(False)
        return job

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is not None:
            self.jobStarted.emit(job.id, job.kind)
            if job.on_started:
                job.on_started()

    @Slot(int, int, int, str)
    def _on_progress(self, job_id: int, done: int, total: int, text: str) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.on_progress:
            job.on_progress(done, total, text)

    @Slot(int, object)
    def _on_yielded(self, job_id: int, items: list) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.on_yield and not job.cancel.is_set():
            job.on_yield(items)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: Any) -> None:
        job = self._end(job_id)
        if job is not None and job.on_done:
            job.on_done(result)

    @Slot(int, object)
    def _on_errored(self, job_id: int, error: JobError) -> None:
        if self._closed:
            return
        job = self._end(job_id)
        if job is not None and job.on_error:
            job.on_error(error)
        else:
            self.unhandledError.emit(error)

    @Slot(int)
    def _on_cancelled(self, job_id: int) -> None:
        job = self._end(job_id)
        if job is not None and job.on_cancelled:
            job.on_cancelled()

    # --- the jobs the app uses ---------------------------------------------------
    def load_model(self, spec: str | None, *, device: str | None = None, quantize: str | None = None,
                   precision: str | None = None, **callbacks: Any) -> int:
        def job(ctx: JobContext) -> ModelInfo:
            return ctx.backend.load_model(spec, device=device, quantize=quantize, precision=precision,
                                          progress=ctx.progress, cancel=ctx.cancel,
                                          notify=ctx.notify)

        user_done = callbacks.pop("on_done", None)

        def done(info: ModelInfo) -> None:
            self.model = info
            self.modelLoaded.emit(info)
            if user_done:
                user_done(info)

        return self.submit("load_model", job, on_done=done, **callbacks)

    def list_styles(self, **callbacks: Any) -> int:
        user_done = callbacks.pop("on_done", None)

        def done(styles: list[StyleInfo]) -> None:
            self.stylesChanged.emit(styles)
            if user_done:
                user_done(styles)

        return self.submit("list_styles", lambda ctx: ctx.backend.list_styles(), on_done=done,
                           **callbacks)

    def import_paths(self, style: str, paths: Sequence[Path], **callbacks: Any) -> int:
        def job(ctx: JobContext) -> ImportReport:
            return ctx.backend.import_paths(style, [Path(p) for p in paths],
                                            progress=ctx.progress, cancel=ctx.cancel)

        return self.submit("import", job, **callbacks)

    def rebuild_style(self, style: str, **callbacks: Any) -> int:
        return self.submit("rebuild", lambda ctx: ctx.backend.rebuild_style(
            style, progress=ctx.progress, cancel=ctx.cancel), **callbacks)

    def rename_style(self, old: str, new: str, **callbacks: Any) -> int:
        return self.submit("rename", lambda ctx: ctx.backend.rename_style(old, new), **callbacks)

    def delete_style(self, style: str, **callbacks: Any) -> int:
        return self.submit("delete", lambda ctx: ctx.backend.delete_style(style), **callbacks)

    def save_blend(self, name: str, spec: str | Sequence[tuple[str, float]], **callbacks: Any) -> int:
        return self.submit("save_blend", lambda ctx: ctx.backend.save_blend(name, spec), **callbacks)

    def style_details(self, style: str, **callbacks: Any) -> int:
        return self.submit("details", lambda ctx: ctx.backend.style_details(style), **callbacks)

    def remove_document(self, style: str, sha256: str, **callbacks: Any) -> int:
        return self.submit("remove_document", lambda ctx: ctx.backend.remove_document(style, sha256),
                           **callbacks)

    def export_style(self, style: str, file: Path, **callbacks: Any) -> int:
        return self.submit("export", lambda ctx: ctx.backend.export_style(style, Path(file)), **callbacks)

    def import_style_file(self, file: Path, **callbacks: Any) -> int:
        return self.submit("import_file", lambda ctx: ctx.backend.import_style_file(Path(file)), **callbacks)

    def assemble_context(self, text: str, max_new_tokens: int, memory: str = "", authors_note: str = "",
                         note_depth: int = DEFAULT_NOTE_DEPTH, context_limit: int = 0, **callbacks: Any) -> int:
        """The prompt the model will see for `text`, cut by tokens at a paragraph, sentence or word start,
        with Memory first and the Author's note `note_depth` paragraphs before the end, within the model's window
        or `context_limit` tokens when that is smaller (0: the model's window)."""
        return self.submit("context", lambda ctx: ctx.backend.assemble_context(
            text, max_new_tokens, memory, authors_note, note_depth, context_limit), **callbacks)

    def count_tokens(self, text: str, **callbacks: Any) -> int:
        """Tokens in the whole of `text` (a TokenCount, or None with no model); a cancel is seen between batches."""
        return self.submit("count_tokens", lambda ctx: ctx.backend.count_tokens(text, ctx.cancel), **callbacks)

    def generate(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                 **callbacks: Any) -> int:
        return self._submit_stream("generate", lambda ctx: ctx.backend.generate(prompt, sampling, steer, ctx.cancel),
                                   lambda gen: gen.summary(), **callbacks)

    def compare(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                **callbacks: Any) -> int:
        return self._submit_stream("compare", lambda ctx: ctx.backend.compare(prompt, sampling, steer, ctx.cancel),
                                   lambda gen: gen.summaries(), **callbacks)

    def _submit_stream(self, kind: str, start: Callable[[JobContext], Any], finish: Callable[[Any], Any],
                       **callbacks: Any) -> int:
        """A job that emits every item of the stream `start` opens, then returns `finish(stream)`."""
        def job(ctx: JobContext) -> Any:
            stream = start(ctx)
            for item in stream:
                ctx.emit(item)
            return finish(stream)

        return self.submit(kind, job, **callbacks)

    def sweep(self, style: str, params: SweepParams, **callbacks: Any) -> int:
        return self.submit("sweep", lambda ctx: ctx.backend.sweep(
            style, params, progress=ctx.progress, cancel=ctx.cancel), **callbacks)

    def tune(self, style: str, params: TuneParams, **callbacks: Any) -> int:
        return self.submit("tune", lambda ctx: ctx.backend.tune(
            style, params, progress=ctx.progress, cancel=ctx.cancel), **callbacks)


def running_threads() -> list[QThread]:
    """Worker threads still running (a test must not leave one behind)."""
    return [t for t in list(_THREADS) if t.isRunning()]


@atexit.register
def _stop_threads() -> None:
    """At exit, stop worker threads nobody shut down, rather than abort in QThread's destructor."""
    for t in running_threads():
        t.quit()
        t.wait(5000)

"""One kind of background job at a time: a new one cancels the old, stale callbacks are dropped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.jobs.worker import JobError, Worker


class JobSlot:
    """Holds the current job of one kind (generation, compare, model load, tune, sweep).

    `start(launch, ...)` cancels the job in the slot, starts a new one through `launch` (a Worker
    method) and wraps its callbacks: yields and progress reach the caller only while that job is
    still the slot's, and an ending callback (done, error, cancelled) first empties the slot.
    Errors of a job that was replaced are still passed on, so none is ever silent.
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.job: int | None = None

    def busy(self) -> bool:
        return self.job is not None

    def current(self, job: int) -> bool:
        return self.job == job

    def stop(self) -> bool:
        """Ask the job in the slot to stop; its cancelled (or done) callback still runs, so the
        view that started it can settle (a Stop or Cancel button)."""
        if self.job is None:
            return False
        self.worker.cancel(self.job)
        return True

    def cancel(self) -> bool:
        """Cancel the job in the slot, if any, because another replaces it: its later callbacks are dropped."""
        if self.job is None:
            return False
        self.worker.cancel(self.job)
        self.job = None
        return True

    def start(self, launch: Callable[..., int], *args: Any,
              on_yield: Callable[[list], None] | None = None,
              on_progress: Callable[[int, int, str], None] | None = None,
              on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[JobError], None] | None = None,
              on_cancelled: Callable[[], None] | None = None,
              on_stale_error: Callable[[JobError], None] | None = None,
              **kwargs: Any) -> int:
        self.cancel()
        holder: list[int] = []

        def live() -> bool:
            return bool(holder) and self.job == holder[0]

        def ending(callback: Callable[..., None] | None) -> Callable[..., None]:
            def run(*a: Any) -> None:
                if not live():
                    return
                self.job = None
                if callback is not None:
                    callback(*a)
            return run

        def error(err: JobError) -> None:
            if live():
                ending(on_error)(err)
            elif on_stale_error is not None:
                on_stale_error(err)

        def passing(callback: Callable[..., None] | None) -> Callable[..., None] | None:
            if callback is None:
                return None
            return lambda *a: callback(*a) if live() else None

        # Callbacks always arrive through the event loop (queued from the worker thread), so the
        # job id is recorded before any of them can run.
        job = launch(*args, on_yield=passing(on_yield), on_progress=passing(on_progress),
                     on_done=ending(on_done), on_error=error, on_cancelled=ending(on_cancelled), **kwargs)
        holder.append(job)
        self.job = job
        return job

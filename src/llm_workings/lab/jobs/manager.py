"""Long jobs: at most `max_running` at once on worker threads, the rest in a queue with a place.

A job is a function of one argument, a `JobContext`: it reports progress with
`ctx.progress(fraction, message, **metrics)`, checks `ctx.check_cancelled()` (or `ctx.cancelled`)
between units of work, and returns a JSON-ready result. The manager knows nothing of what the
work is; training, sweeps and harvesting are all just functions.

    jobs = JobManager(max_running=1)
    job = jobs.submit("train", run, params={"recipe": "induction-2l"})
    jobs.view(job.id)      # {"state": "running", "fraction": 0.4, "metrics": {"loss": 2.1}, ...}
    jobs.cancel(job.id)    # a queued job leaves the queue; a running one stops at its next check

States: queued (with a 1-based place) -> running -> done | cancelled | paused | failed. A job's exception
becomes its `error` and never reaches the server. Finished jobs are kept, the newest `keep_finished`.

Pausing is the job's to honour: `jobs.pause(id)` sets `ctx.pause_requested`, and a job that can stop
with its work kept (a training run writes a checkpoint) raises `JobPaused`; resuming it is a new job.
`shutdown()` asks every running job to pause as well as to cancel, so work that can be kept is kept.
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApiError

QUEUED, RUNNING, DONE, CANCELLED, PAUSED, FAILED = "queued", "running", "done", "cancelled", "paused", "failed"
FINAL = frozenset({DONE, CANCELLED, PAUSED, FAILED})
MAX_POINTS = 1000  # progress points kept per job (the oldest go first): enough for a loss curve


class JobCancelled(Exception):
    """Raised by `JobContext.check_cancelled()` to unwind a job that was asked to stop."""


class JobPaused(Exception):
    """Raised by a job that stopped when asked to pause, its work kept; `result` says where (e.g. the step)."""

    def __init__(self, result: Any = None) -> None:
        super().__init__("paused")
        self.result = result


class JobFailed(Exception):
    """A failure already worded for the person who started the job (e.g. relayed from a child process)."""


@dataclass
class Job:
    id: str
    kind: str
    params: dict[str, Any]
    run: Callable[[JobContext], Any]
    state: str = QUEUED
    fraction: float = 0.0
    message: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    points: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    result: Any = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    pause_requested: threading.Event = field(default_factory=threading.Event)
    seq: int = 0  # the number of progress points so far: a stream's cursor


class JobContext:
    """What a running job sees of the manager: a progress reporter and a cancel flag."""

    def __init__(self, manager: JobManager, job: Job) -> None:
        self._manager, self._job = manager, job

    @property
    def cancelled(self) -> bool:
        return self._job.cancel_requested.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled(f"job {self._job.id} was cancelled")

    @property
    def pause_requested(self) -> bool:
        return self._job.pause_requested.is_set()

    def progress(self, fraction: float, message: str = "", **metrics: Any) -> None:
        self._manager._report(self._job, fraction, message, metrics)


class JobManager:
    def __init__(self, max_running: int = 1, max_queued: int = 8, keep_finished: int = 50) -> None:
        if max_running < 1 or max_queued < 0 or keep_finished < 1:
            raise ValueError(
                f"max_running and keep_finished must be at least 1 and max_queued at least 0, got "
                f"{max_running}, {keep_finished}, {max_queued}"
            )
        self.max_running, self.max_queued, self.keep_finished = max_running, max_queued, keep_finished
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}  # every job the manager still remembers, oldest first
        self._queue: deque[str] = deque()
        self._threads: dict[str, threading.Thread] = {}
        self._ids = itertools.count(1)
        self.closing = threading.Event()  # set by shutdown(): streams end, nothing new starts

    # -- asking ---------------------------------------------------------------------------------
    def submit(self, kind: str, run: Callable[[JobContext], Any], params: dict[str, Any] | None = None) -> Job:
        with self._lock:
            if self.closing.is_set():
                raise ApiError("the lab is shutting down; no new jobs start", status=503)
            if self._running_count() >= self.max_running and len(self._queue) >= self.max_queued:
                raise ApiError(
                    f"the job queue is full: {self.max_running} running and {len(self._queue)} waiting "
                    f"(at most {self.max_queued}); wait for one to finish or cancel one",
                    status=429,
                )
            job = Job(id=f"{next(self._ids)}-{uuid.uuid4().hex[:8]}", kind=kind, params=dict(params or {}), run=run)
            self._jobs[job.id] = job
            self._queue.append(job.id)
            self._start_queued()
            self._forget_old()
            return job

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._get(job_id)
            if job.state == QUEUED:
                self._queue.remove(job.id)
                self._finish(job, CANCELLED)
            elif job.state == RUNNING:
                job.cancel_requested.set()
            return self._view(job)

    def pause(self, job_id: str) -> dict[str, Any]:
        """Ask a running job to stop with its work kept; it ends `paused` if it can, else it runs on."""
        with self._lock:
            job = self._get(job_id)
            if job.state != RUNNING:
                raise ApiError(f"job {job_id} is {job.state}; only a running job can be paused", 409, "id")
            job.pause_requested.set()
            return self._view(job)

    def view(self, job_id: str, points_after: int | None = None) -> dict[str, Any]:
        """A job as the API shows it; with `points_after`, also its progress points with a higher `seq`."""
        with self._lock:
            view = self._view(self._get(job_id))
            if points_after is not None:
                view["points"] = [p for p in self._jobs[job_id].points if p["seq"] > points_after]
            return view

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._view(job) for job in self._jobs.values()]

    def reserved(self, kind: str, key: str, value: Any) -> bool:
        """Whether an unfinished job of `kind` has `params[key] == value` (so two jobs don't claim one name)."""
        with self._lock:
            return any(j.kind == kind and j.state not in FINAL and j.params.get(key) == value for j in self._jobs.values())

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every job and end every stream; wait up to `timeout` s for the running ones to unwind."""
        self.closing.set()
        with self._lock:
            for job_id in list(self._queue):
                self._finish(self._jobs[job_id], CANCELLED)
            self._queue.clear()
            for job in self._jobs.values():
                job.pause_requested.set()  # a job that can keep its work (a checkpoint) does so
                job.cancel_requested.set()
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- inside (callers hold the lock) ---------------------------------------------------------
    def _get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(f"no job {job_id!r}: it never existed, or finished long enough ago to be forgotten", 404, "id")
        return job

    def _view(self, job: Job) -> dict[str, Any]:
        return {
            "id": job.id,
            "kind": job.kind,
            "params": job.params,
            "state": job.state,
            "place": self._queue.index(job.id) + 1 if job.state == QUEUED else None,
            "fraction": job.fraction,
            "message": job.message,
            "metrics": job.metrics,
            "result": job.result,
            "error": job.error,
            "cancel_requested": job.cancel_requested.is_set(),
            "pause_requested": job.pause_requested.is_set(),
            "seq": job.seq,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
        }

    def _running_count(self) -> int:
        return sum(job.state == RUNNING for job in self._jobs.values())

    def _start_queued(self) -> None:
        while self._queue and self._running_count() < self.max_running:
            job = self._jobs[self._queue.popleft()]
            job.state, job.started = RUNNING, time.time()
            thread = threading.Thread(target=self._work, args=(job,), name=f"job-{job.id}", daemon=True)
            self._threads[job.id] = thread
            thread.start()

    def _finish(self, job: Job, state: str, result: Any = None, error: str | None = None) -> None:
        job.state, job.result, job.error, job.finished = state, result, error, time.time()
        if state == DONE:
            job.fraction = 1.0

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in FINAL]
        for job_id in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._jobs[job_id]

    # -- on the worker thread -------------------------------------------------------------------
    def _work(self, job: Job) -> None:
        try:
            result = job.run(JobContext(self, job))
            outcome = (DONE, result, None)
        except JobCancelled:
            outcome = (CANCELLED, None, None)
        except JobPaused as paused:
            outcome = (PAUSED, paused.result, None)
        except Exception as e:  # a job's failure is its own; the server and the other jobs go on
            if job.cancel_requested.is_set():
                outcome = (CANCELLED, None, None)
            elif isinstance(e, JobFailed):
                outcome = (FAILED, None, str(e))
            else:
                outcome = (FAILED, None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
                if not isinstance(e, ValueError):  # an unexpected error: keep its trace for whoever debugs it
                    traceback.print_exc()
        with self._lock:
            self._finish(job, *outcome)
            self._threads.pop(job.id, None)
            if not self.closing.is_set():
                self._start_queued()
            self._forget_old()

    def _report(self, job: Job, fraction: float, message: str, metrics: dict[str, Any]) -> None:
        with self._lock:
            job.fraction = min(1.0, max(0.0, float(fraction)))
            job.message, job.metrics = str(message), dict(metrics)
            job.seq += 1
            job.points.append({"seq": job.seq, "fraction": job.fraction, "message": job.message, "metrics": job.metrics})

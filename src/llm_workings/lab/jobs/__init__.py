"""Long jobs for the lab: a queue with a cap, progress streamed as Server-Sent Events, cancel.

    app.state.jobs = JobManager(config.max_jobs)
    app.include_router(router)          # /api/jobs...

A job is any function of a `JobContext` (progress, cancel and pause); `training` is the first kind.
"""

from .manager import (
    CANCELLED,
    DONE,
    FAILED,
    PAUSED,
    QUEUED,
    RUNNING,
    JobCancelled,
    JobContext,
    JobFailed,
    JobManager,
    JobPaused,
)
from .routes import router

__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "PAUSED",
    "QUEUED",
    "RUNNING",
    "JobCancelled",
    "JobContext",
    "JobFailed",
    "JobManager",
    "JobPaused",
    "router",
]

"""A job's progress as Server-Sent Events, for the browser's EventSource.

Events, in order: every progress point not yet sent ("progress", with the point's `seq` as the event
id, so a reconnecting EventSource resumes after the last one it saw), then the job's view ("state")
whenever its state, place in the queue, or cancel or pause request changes. The stream ends after the final
state, when the manager shuts down, or when the client goes away.

It polls the manager (a lock and a dict copy, ten times a second) instead of waiting on a thread:
an open stream then holds no worker thread, and it ends at once when the server stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi.sse import ServerSentEvent

from ..errors import ApiError
from .manager import FINAL, JobManager

POLL_SECONDS = 0.1
RETRY_MS = 1000  # how soon a dropped EventSource reconnects


async def job_events(jobs: JobManager, job_id: str, after: int = 0) -> AsyncIterator[ServerSentEvent]:
    cursor, sent = after, None
    first = True
    while True:
        try:
            view = jobs.view(job_id, points_after=cursor)
        except ApiError:  # forgotten meanwhile: nothing more will happen to it
            return
        for point in view.pop("points"):
            yield ServerSentEvent(event="progress", id=str(point["seq"]), data={"id": job_id, **point})
            cursor = point["seq"]
        shown = (view["state"], view["place"], view["cancel_requested"], view["pause_requested"])
        if shown != sent:
            yield ServerSentEvent(event="state", data=view, retry=RETRY_MS if first else None)
            sent, first = shown, False
        if view["state"] in FINAL or jobs.closing.is_set():
            return
        await asyncio.sleep(POLL_SECONDS)

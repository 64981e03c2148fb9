"""The one error a lab request can be refused with; the server turns it into `{"error", "field"}`."""

from __future__ import annotations


class ApiError(Exception):
    """A request the lab refuses: `status` is the HTTP code, the message names the problem."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field

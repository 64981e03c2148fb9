"""How a lab request is refused: `ApiError`, pydantic's errors, and the `{"error", "field"}` body they become."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel


class ApiError(Exception):
    """A request the lab refuses: `status` is the HTTP code, the message names the problem."""

    def __init__(self, message: str, status: int = 400, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field


class ErrorBody(BaseModel):
    """Every refusal's body: what was wrong and what was expected, and the field it is about (or null)."""

    error: str
    field: str | None = None


_WHERE = {"body": "request body", "query": "query", "path": "path", "header": "header"}


def describe_validation_error(errors: Sequence[dict[str, Any]]) -> tuple[str, str | None]:
    """The first of pydantic's errors as (message, field), worded the lab's way.

    Our own checks (see `settings.invalid`) word the part after the field's name; pydantic's
    built-in ones keep their wording, prefixed by the field and followed by what was posted.
    """
    if not errors:
        return "the request is not valid", None
    err = errors[0]
    loc = [part for part in err.get("loc", ()) if part not in _WHERE]
    named = [part for part in loc if isinstance(part, str)]
    ctx = err.get("ctx") or {}
    field = ctx.get("field") or (named[-1] if named else None)
    where = err.get("loc", ("body",))[0] if err.get("loc") else "body"
    subject = field or _WHERE.get(where, "request body")
    error_type = err.get("type", "")
    message = err.get("msg", "is not valid")
    if error_type == "lab":
        return message, field
    if error_type == "lab_field":
        return f"{subject} {message}", field
    if error_type == "missing":
        return f"{subject} is required", field
    if error_type == "json_invalid":
        return f"request body is not valid JSON: {ctx.get('error', message)}", None
    shown = repr(err.get("input"))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return f"{subject}: {message[:1].lower()}{message[1:]}; got {shown}", field

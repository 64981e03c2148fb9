"""Declarative settings tables: one row per control, validated here and drawn by the page.

A page fetches its table as JSON, builds its controls and its URL from it, and posts
settings back; `validate` turns a posted dict into clean values or an `ApiError`
that names the field. So the rules live in one place, in Python.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ApiError


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "choice", "int", "float", "int_list"
    default: Any
    label: str
    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None  # for int_list
    log_scale: bool = False  # the control should step geometrically
    live: bool = False  # may change mid-run without a reset
    group: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return d

    def coerce(self, value: Any) -> Any:
        """Return the clean value, or raise ApiError naming this field and what it expects."""
        name = self.name
        if self.kind == "choice":
            if value not in self.choices:
                raise ApiError(f"{name} must be one of {list(self.choices)}; got {value!r}", field=name)
            return value
        if self.kind == "int_list":
            if not isinstance(value, list) or not all(_is_int(v) for v in value):
                raise ApiError(f"{name} must be a list of integers; got {value!r}", field=name)
            if self.max_length is not None and len(value) > self.max_length:
                raise ApiError(f"{name} may have at most {self.max_length} entries; got {len(value)}", field=name)
            for v in value:
                self._check_range(int(v))
            return [int(v) for v in value]
        if self.kind == "int":
            if not _is_int(value):
                raise ApiError(f"{name} must be an integer; got {value!r}", field=name)
            return self._check_range(int(value))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ApiError(f"{name} must be a finite number; got {value!r}", field=name)
        return self._check_range(float(value))

    def _check_range(self, v: float) -> Any:
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise ApiError(f"{self.name} must be between {self.min:g} and {self.max:g}; got {v:g}", field=self.name)
        return v


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())


@dataclass(frozen=True)
class SettingsTable:
    settings: tuple[Setting, ...]
    by_name: dict[str, Setting] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {s.name: s for s in self.settings})

    def defaults(self) -> dict[str, Any]:
        return {s.name: (list(s.default) if isinstance(s.default, list) else s.default) for s in self.settings}

    def validate(self, posted: Any, partial: bool = False) -> dict[str, Any]:
        """Clean `posted` field by field; unknown names are refused. Missing ones take defaults unless partial."""
        if not isinstance(posted, dict):
            raise ApiError(f"settings must be a JSON object; got {type(posted).__name__}", field="settings")
        unknown = sorted(set(posted) - set(self.by_name))
        if unknown:
            raise ApiError(f"unknown setting {unknown[0]!r}; expected names from {list(self.by_name)}", field=unknown[0])
        clean = {} if partial else self.defaults()
        for name, value in posted.items():
            clean[name] = self.by_name[name].coerce(value)
        return clean

    def to_json(self) -> list[dict]:
        return [s.to_json() for s in self.settings]

"""Declarative settings tables, and the typed request bodies they and the routes share.

A page declares its controls once, as a `SettingsTable` of `Setting` rows. The same table
gives the page its controls (`to_json`, served as the page's schema) and the server its
pydantic model (`model`), so a rule such as "hidden layers have 1 to 16 neurons" is written
in one place. Every failed check raises a pydantic error whose message names the field and
says what was expected; the server turns it into `{"error", "field"}`.

Request bodies derive from `Body`, which refuses unknown fields by name. Bounded numbers
in a body use `bounded_int`, yes/no flags `Flag`, so their messages read like the table's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any, ClassVar

import fastapi
from pydantic import BaseModel, BeforeValidator, ConfigDict, create_model, model_validator
from pydantic_core import PydanticCustomError

# The error types the server reads: "lab_field" messages start after the field's name
# ("must be between 1 and 16; got 40"), the server prefixes it; "lab" messages are whole.
# A "field" in the error's context overrides the field found from the error's location.
FIELD_ERROR = "lab_field"
WHOLE_ERROR = "lab"


def invalid(message: str, field: str | None = None) -> PydanticCustomError:
    """An error whose message follows the field's name: raise invalid("must be ...")."""
    return PydanticCustomError(FIELD_ERROR, message.replace("{", "{{").replace("}", "}}"), {"field": field})


def refused(message: str, field: str | None = None) -> PydanticCustomError:
    """An error with a complete message, naming `field`."""
    return PydanticCustomError(WHOLE_ERROR, message.replace("{", "{{").replace("}", "}}"), {"field": field})


def _show(value: Any) -> str:
    """A posted value in an error message, cut short so an error never echoes a whole body."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) or (isinstance(v, float) and v.is_integer())


def check_int(value: Any, lo: int, hi: int) -> int:
    if not _is_int(value) or not lo <= value <= hi:
        raise invalid(f"must be an integer between {lo} and {hi}; got {_show(value)}")
    return int(value)


def bounded_int(lo: int, hi: int) -> Any:
    """An int field bounded to [lo, hi], refused in the table's words."""
    return Annotated[int, BeforeValidator(lambda value: check_int(value, lo, hi))]


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"must be true or false; got {_show(value)}")
    return value


Flag = Annotated[bool, BeforeValidator(_flag)]


class Body(BaseModel):
    """A request body: a JSON object whose fields are all declared; unknown ones are named."""

    model_config = ConfigDict(extra="forbid")
    unknown_field: ClassVar[str] = "unknown field {name!r}; expected fields from {known}"

    @model_validator(mode="before")
    @classmethod
    def _only_known_fields(cls, data: Any) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise invalid(f"must be a JSON object; got {_json_type(data)}")
        unknown = sorted(set(data) - set(cls.model_fields))
        if unknown:
            message = cls.unknown_field.format(name=unknown[0], known=sorted(cls.model_fields))
            raise refused(message, field=str(unknown[0]))
        return data


def omittable(model: type[Body]) -> Any:
    """A route's body that may be left out altogether, meaning every field at its default."""
    return Annotated[model, fastapi.Body(default_factory=model)]


def _json_type(value: Any) -> str:
    names = {list: "a list", str: "a string", bool: "true or false", int: "a number", float: "a number", bytes: "bytes"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # "choice", "int", "float", "int_list", "text"
    default: Any
    label: str
    help: str
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None  # entries of an int_list, characters of a text
    log_scale: bool = False  # the control should step geometrically
    live: bool = False  # may change mid-run without a reset
    group: str = ""

    def to_json(self) -> dict:
        d = asdict(self)
        d["choices"] = list(self.choices)
        return d

    def coerce(self, value: Any) -> Any:
        """Return the clean value, or raise a pydantic error saying what this field expects."""
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise invalid(f"must be one of {list(self.choices)}; got {_show(value)}")
            return value
        if self.kind == "text":
            if not isinstance(value, str):
                raise invalid(f"must be a string; got {_show(value)}")
            if self.max_length is not None and len(value) > self.max_length:
                raise invalid(f"may have at most {self.max_length} characters; got {len(value)}")
            return value
        if self.kind == "int_list":
            if not isinstance(value, list) or not all(_is_int(v) for v in value):
                raise invalid(f"must be a list of integers; got {_show(value)}")
            if self.max_length is not None and len(value) > self.max_length:
                raise invalid(f"may have at most {self.max_length} entries; got {len(value)}")
            return [self._check_range(int(v)) for v in value]
        if self.kind == "int":
            if not _is_int(value):
                raise invalid(f"must be an integer; got {_show(value)}")
            return self._check_range(int(value))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise invalid(f"must be a finite number; got {_show(value)}")
        return self._check_range(float(value))

    def _check_range(self, v: float) -> Any:
        if (self.min is not None and v < self.min) or (self.max is not None and v > self.max):
            raise invalid(f"must be between {self.min:g} and {self.max:g}; got {v:g}")
        return v

    def annotation(self) -> Any:
        value_type = {"choice": str, "text": str, "int": int, "float": float, "int_list": list[int]}[self.kind]
        return Annotated[value_type, BeforeValidator(self.coerce)]


@dataclass(frozen=True)
class SettingsTable:
    settings: tuple[Setting, ...]
    by_name: dict[str, Setting] = field(init=False, repr=False, compare=False)

    _all: type[Body] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {s.name: s for s in self.settings})
        object.__setattr__(self, "_all", self.model("Settings"))

    def defaults(self) -> dict[str, Any]:
        return {s.name: (list(s.default) if isinstance(s.default, list) else s.default) for s in self.settings}

    def model(self, name: str, only: tuple[str, ...] | None = None, unknown: str | None = None) -> type[Body]:
        """The pydantic model of these settings (or of the `only` ones); each field defaults to its row's default.

        `model_dump()` gives every setting; `model_dump(exclude_unset=True)` only the posted ones.
        `unknown` words the refusal of a name outside the model ({name}, {known} filled in).
        """
        rows = [s for s in self.settings if only is None or s.name in only]
        fields = {s.name: (s.annotation(), s.default) for s in rows}
        base = type(f"{name}Base", (Body,), {"unknown_field": unknown or "unknown setting {name!r}; expected names from {known}"})
        return create_model(name, __base__=base, **fields)

    def validate(self, posted: Any) -> dict[str, Any]:
        """Clean `posted` into every setting's value, missing ones taking their defaults (engine-side callers)."""
        return self._all.model_validate(posted).model_dump()

    def to_json(self) -> list[dict]:
        return [s.to_json() for s in self.settings]

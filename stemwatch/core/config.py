"""Loading and documenting the per-component YAML configuration.

Each component (monitor, trainer) owns one pydantic model with ``extra="forbid"``; this module
turns a YAML file into that model and turns validation failures into messages that name the
file, the field path and the bad value.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from stemwatch.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every configuration section: unknown keys are errors, not silently dropped.

    A component's top-level model names its component (``config_component``), so messages
    can point at the command that prints its documented defaults.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    config_component: ClassVar[str | None] = None


# json_schema_extra of a field whose value must never be shown
SECRET: dict[str, JsonValue] = {"secret": True}
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.-]*://[^/@:\s]*):[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the password of any URL in it replaced (``mailto://user:***@host``)."""
    return _URL_PASSWORD.sub(r"\g<head>:***@", text)


def _is_secret(model_cls: type[BaseModel], loc: tuple[int | str, ...]) -> bool:
    """Whether the value at ``loc`` is, or holds, a field marked :data:`SECRET`."""
    current: type[BaseModel] | None = model_cls
    for part in loc:
        if current is None:
            return False
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a list index, a dict key or a union's tag
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("secret"):
            return True
        current = _model_in(field.annotation)
    if current is not None and len(loc) < 3:  # a whole section: does it hold a secret?
        return any(
            isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("secret")
            for f in current.model_fields.values()
        )
    return False


def example_command(model_cls: type[BaseModel] | None) -> str:
    """The command that prints ``model_cls``'s commented defaults (its component's)."""
    component = getattr(model_cls, "config_component", None)
    if component:
        return f"`stemwatch config {component} --example`"
    return "`stemwatch config monitor --example` (or `trainer`)"


def format_validation_error(
    source: str, exc: ValidationError, model_cls: type[BaseModel] | None = None
) -> str:
    """One line per problem: ``source: field.path: message (got value)``. The value of a
    field marked :data:`SECRET` (alert URLs hold passwords and tokens) is never shown, and
    URL credentials anywhere are masked: this text goes to stderr and the journal."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; check the spelling against {example_command(model_cls)}"
        got = err.get("input")
        if err["type"] == "missing":
            got_text = ""
        elif model_cls is not None and _is_secret(model_cls, tuple(err["loc"])):
            got_text = " (value not shown: it may hold a password or token)"
        else:
            got_text = f" (got {redact(repr(got))})"
        lines.append(f"{source}: {loc}: {redact(msg)}{got_text}")
    return "\n".join(lines)


def validate_mapping(model_cls: type[M], data: Any, source: str) -> M:
    """Validate an already-parsed mapping; raise :class:`ConfigError` naming ``source``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the top level must be a mapping of fields, got {type(data).__name__}"
        )
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, model_cls)) from None


def load_config(model_cls: type[M], path: str | Path | None) -> M:
    """Load ``path`` into ``model_cls``; ``None`` gives the embedded defaults."""
    if path is None:
        return model_cls()
    p = Path(path)
    if not p.is_file():
        command = example_command(model_cls).split("`")[1]
        raise ConfigError(f"{p}: config file not found; write one with `{command} > {p.name}`")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{p}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file; a config must be UTF-8 YAML") from None
    if data is None:
        raise ConfigError(
            f"{p}: the file is empty (no settings at all); write one with `stemwatch config "
            "<component> --example`, or leave --config out to run on the defaults"
        )
    return validate_mapping(model_cls, data, str(p))


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if _is_model(annotation):
        return typing.cast(type[BaseModel], annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if _is_model(arg):
                return typing.cast(type[BaseModel], arg)
    return None


def example_yaml(model: BaseModel, indent: int = 0) -> str:
    """A commented YAML rendering of ``model``: each field preceded by its description."""
    pad = " " * indent
    out: list[str] = []
    for name, field in type(model).model_fields.items():
        if field.description:
            for line in field.description.splitlines():
                out.append(f"{pad}# {line}")
        value = getattr(model, name)
        if isinstance(value, BaseModel) and _model_in(field.annotation) is not None:
            out.append(f"{pad}{name}:")
            out.append(example_yaml(value, indent + 2))
        else:
            dumped = yaml.safe_dump(_plain(value), default_flow_style=True, width=10_000)
            dumped = dumped.removesuffix("\n").removesuffix("\n...").strip()
            out.append(f"{pad}{name}: {dumped}")
    return "\n".join(out)


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value

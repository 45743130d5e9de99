"""The one contract between trainer/ and monitor/: metadata carried inside the ONNX file.

The trainer writes a :class:`ModelMetadata` as JSON under the ONNX ``metadata_props`` key
:data:`METADATA_KEY`; the monitor reads it back (through onnxruntime, without the ``onnx``
package) and refuses a model without it. Everything inference needs to reproduce training's
preprocessing lives here: class names, positive class, tiling, normalisation recipe and the
calibration temperature (already applied inside the graph's ``probabilities`` output); and,
optionally, the description of the model's training domain the monitor scores images against
(:mod:`stemwatch.core.domain`).

Version policy (:meth:`ModelMetadata.from_props`), so that a deployed monitor keeps running
models exported by a newer stemwatch whenever it can honour them:

- a field this stemwatch does not know (added by a newer one) is ignored, with a debug log;
  adding a field therefore never needs a new schema version;
- :data:`SCHEMA_VERSION` is a MAJOR version. The writer bumps it only when a reader that
  ignores unknown fields would run the model wrongly (a field changes meaning, preprocessing
  gains a step that cannot be skipped); a newer MAJOR is refused;
- a value this stemwatch cannot apply (an unknown normalisation ``kind``) and a missing
  required field are refused.

Every refusal is a :class:`ModelMetadataError` naming the model file, the field, the value
and the fix.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stemwatch import __version__
from stemwatch.core.domain import DomainDescription
from stemwatch.core.errors import ModelMetadataError
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec

log = logging.getLogger(__name__)

METADATA_KEY = "stemwatch"
SCHEMA_VERSION = 1
"""The MAJOR metadata schema version this stemwatch writes and the newest it reads."""

_EXPORT_FIX = "re-export the model with `stemwatch export`"
_UPGRADE_FIX = "upgrade stemwatch where this model runs (pip install -U stemwatch)"


class ModelMetadata(BaseModel):
    """Everything the monitor needs to run an exported model exactly as it was trained.

    Built in code (the exporter, tests) it forbids unknown fields, so a typo fails at once;
    read from a model file (:meth:`from_props`) it ignores fields it does not know.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = SCHEMA_VERSION
    name: str = Field(description="Human name of the model, e.g. 'fastnet-synthetic-v1'.")
    architecture: str = Field(description="Registry name of the architecture.")
    class_names: list[str] = Field(min_length=2)
    positive_class: str = Field(description="The class whose probability the monitor tracks.")
    input_name: str = "image"
    output_name: str = "probabilities"
    logits_name: str | None = "logits"
    cam_output_name: str | None = Field(
        default=None, description="Output with the class activation map, if the model has one."
    )
    in_channels: int = 1
    tiling: TilingSpec = Field(default_factory=TilingSpec)
    normalisation: NormalisationRecipe = Field(default_factory=NormalisationRecipe)
    pixel_size_um: float | None = Field(
        default=None,
        gt=0,
        description="Pixel size (µm) of the training images before downsampling; None when "
        "unknown. An image at another pixel size shows the model cells at another scale.",
    )
    temperature: float = Field(default=1.0, gt=0, description="Applied inside the graph.")
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    domain: DomainDescription | None = Field(
        default=None,
        description="The training domain, for the monitor's domain check (optional: models "
        "without it run unchecked).",
    )
    stemwatch_version: str = ""
    created: str = ""

    @model_validator(mode="after")
    def _positive_is_a_class(self) -> ModelMetadata:
        if self.positive_class not in self.class_names:
            raise ValueError(
                f"positive_class {self.positive_class!r} is not one of {self.class_names}"
            )
        return self

    @property
    def positive_index(self) -> int:
        return self.class_names.index(self.positive_class)

    @property
    def input_size(self) -> int:
        return self.tiling.tile_size

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_props(cls, props: dict[str, str], source: str | Path) -> ModelMetadata:
        """Parse from an ONNX metadata_props mapping; ``source`` names the model in errors."""
        raw = props.get(METADATA_KEY)
        if raw is None:
            raise ModelMetadataError(
                f"{source}: the ONNX file carries no '{METADATA_KEY}' metadata; "
                "export it with `stemwatch export` so the monitor knows its classes, "
                "tiling and normalisation"
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ModelMetadataError(
                f"{source}: '{METADATA_KEY}' metadata is not JSON ({exc}); {_EXPORT_FIX}"
            ) from None
        if not isinstance(data, dict):
            raise ModelMetadataError(
                f"{source}: '{METADATA_KEY}' metadata is a JSON {type(data).__name__}, not an "
                f"object; {_EXPORT_FIX}"
            )
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | Path) -> ModelMetadata:
        """Apply the version policy (module docstring) to decoded metadata and validate it."""
        check_schema_version(data, source)
        data = _usable_domain(data, source)
        known, ignored = _known_fields(cls, data)
        if ignored:
            log.debug(
                "%s: ignoring metadata field(s) %s unknown to stemwatch %s (model written by "
                "stemwatch %s)",
                source,
                ", ".join(ignored),
                __version__,
                data.get("stemwatch_version") or "of unknown version",
            )
        try:
            return cls.model_validate(known)
        except ValidationError as exc:
            raise ModelMetadataError(_describe(exc, source)) from None


def check_schema_version(data: dict[str, Any], source: str | Path) -> None:
    """Refuse metadata without a schema version or with a MAJOR newer than this stemwatch's."""
    if "schema_version" not in data:
        raise ModelMetadataError(
            f"{source}: metadata lacks the required field 'schema_version'; {_EXPORT_FIX}"
        )
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelMetadataError(
            f"{source}: metadata field schema_version is {version!r}, not a schema version "
            f"(a whole number >= 1); {_EXPORT_FIX}"
        )
    if version > SCHEMA_VERSION:
        written = data.get("stemwatch_version")
        writer = f"stemwatch {written}" if written else "a newer stemwatch"
        raise ModelMetadataError(
            f"{source}: metadata field schema_version is {version} (written by {writer}); "
            f"stemwatch {__version__} reads up to {SCHEMA_VERSION}; "
            f"{_UPGRADE_FIX}, or export the model with a stemwatch that writes schema_version "
            f"{SCHEMA_VERSION}"
        )


def _usable_domain(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """``data`` without its domain description when this stemwatch cannot use it.

    The description is an optional extra: a model whose description is broken or of a kind
    this stemwatch does not know still classifies, so it runs without the domain check, with a
    warning, instead of being refused.
    """
    raw = data.get("domain")
    if raw is None:
        return data
    try:
        if not isinstance(raw, dict):
            raise ValueError(f"a JSON {type(raw).__name__}, not an object")
        known, _ = _known_fields(DomainDescription, raw)
        DomainDescription.model_validate(known)
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        why = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}" if first else str(exc)
        log.warning(
            "%s: metadata field domain cannot be used by stemwatch %s (%s); the model runs "
            "without the domain check (re-export it with `stemwatch export` to restore it)",
            source,
            __version__,
            why,
        )
        return {k: v for k, v in data.items() if k != "domain"}
    return data


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model of a field typed ``Model`` or ``Model | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _known_fields(
    model: type[BaseModel], data: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, Any], list[str]]:
    """``data`` without the keys ``model`` (and its nested models) does not declare."""
    known: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in data.items():
        info = model.model_fields.get(key)
        if info is None:
            ignored.append(f"{prefix}{key}")
            continue
        sub = _nested_model(info.annotation)
        if sub is not None and isinstance(value, dict):
            known[key], more = _known_fields(sub, value, f"{prefix}{key}.")
            ignored += more
        else:
            known[key] = value
    return known, ignored


def _describe(exc: ValidationError, source: str | Path) -> str:
    """The first validation problem as: model file, field, value, fix."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    kind = first["type"]
    if not loc:  # a rule across fields, e.g. positive_class must be one of class_names
        return f"{source}: invalid metadata: {first['msg']}; {_EXPORT_FIX}"
    if kind == "missing":
        return f"{source}: metadata lacks the required field '{loc}'; {_EXPORT_FIX}"
    value = first.get("input")
    if kind == "literal_error":
        expected = first.get("ctx", {}).get("expected", "")
        return (
            f"{source}: metadata field {loc} is {value!r}, which stemwatch {__version__} "
            f"cannot apply (it knows {expected}); {_UPGRADE_FIX}, or export the model with "
            f"one of those"
        )
    return f"{source}: metadata field {loc} is {value!r}: {first['msg']}; {_EXPORT_FIX}"

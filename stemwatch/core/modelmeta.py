"""The one contract between trainer/ and monitor/: metadata carried inside the ONNX file.

The trainer writes a :class:`ModelMetadata` as JSON under the ONNX ``metadata_props`` key
:data:`METADATA_KEY`; the monitor reads it back (through onnxruntime, without the ``onnx``
package) and refuses a model without it. Everything inference needs to reproduce training's
preprocessing lives here: class names, positive class, tiling, normalisation recipe and the
calibration temperature (already applied inside the graph's ``probabilities`` output).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stemwatch.core.errors import ModelMetadataError
from stemwatch.core.imaging import NormalisationRecipe, TilingSpec

METADATA_KEY = "stemwatch"
SCHEMA_VERSION = 1


class ModelMetadata(BaseModel):
    """Everything the monitor needs to run an exported model exactly as it was trained."""

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
    temperature: float = Field(default=1.0, gt=0, description="Applied inside the graph.")
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
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
                f"{source}: '{METADATA_KEY}' metadata is not JSON: {exc}"
            ) from None
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ModelMetadataError(
                f"{source}: metadata schema_version {data.get('schema_version')!r} is not "
                f"{SCHEMA_VERSION}; re-export the model with this stemwatch version"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise ModelMetadataError(
                f"{source}: invalid '{METADATA_KEY}' metadata at {loc}: {first['msg']}"
            ) from None

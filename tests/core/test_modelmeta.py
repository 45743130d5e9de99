"""The model-metadata version policy, on ONNX files whose metadata is written by hand.

A deployed monitor must keep running models from a newer stemwatch that only added fields,
and refuse (naming file, field, value and fix) only what it cannot honour.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from onnx import helper
from onnx_models import classifier_graph

from monitor.inference import load_model
from stemwatch.core.errors import ModelMetadataError
from stemwatch.core.modelfile import open_model, read_metadata
from stemwatch.core.modelmeta import METADATA_KEY, SCHEMA_VERSION


def metadata(**changes: Any) -> dict[str, Any]:
    """Metadata as a newer (or broken) exporter might write it: plain JSON, no pydantic."""
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "name": "hand-written",
        "architecture": "tiny-test-cnn",
        "class_names": ["undifferentiated", "differentiated"],
        "positive_class": "differentiated",
        "input_name": "image",
        "output_name": "probabilities",
        "tiling": {"downsample": 4, "tile_size": 32, "max_tiles": 8, "min_foreground_std": 0.0},
        "normalisation": {"kind": "percentile", "p_low": 1.0, "p_high": 99.8},
        "stemwatch_version": "9.9.0",
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def write_model(path: Path, meta: dict[str, Any] | str) -> Path:
    model = classifier_graph(tile_size=32)
    raw = meta if isinstance(meta, str) else json.dumps(meta)
    helper.set_model_props(model, {METADATA_KEY: raw})
    path.write_bytes(model.SerializeToString())
    return path


def test_added_fields_are_ignored_with_a_debug_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    meta = metadata(
        colour_space="gray",  # a field a newer stemwatch added
        tiling={"downsample": 4, "tile_size": 32, "max_tiles": 8, "overlap_policy": "mirror"},
        normalisation={"kind": "percentile", "p_low": 2.0, "p_high": 99.0, "robust": True},
    )
    path = write_model(tmp_path / "newer.onnx", meta)
    with caplog.at_level(logging.DEBUG, logger="stemwatch.core.modelmeta"):
        model = load_model(path)
    assert model.metadata.tiling.tile_size == 32 and model.metadata.normalisation.p_low == 2.0
    (record,) = [r for r in caplog.records if "ignoring metadata field" in r.getMessage()]
    text = record.getMessage()
    assert record.levelno == logging.DEBUG and "newer.onnx" in text and "9.9.0" in text
    for name in ("colour_space", "tiling.overlap_policy", "normalisation.robust"):
        assert name in text


def test_optional_fields_may_be_absent(tmp_path: Path) -> None:
    meta = metadata(tiling={"tile_size": 32}, normalisation=None, input_name=None, output_name=None)
    got = read_metadata(write_model(tmp_path / "lean.onnx", meta))
    assert got.tiling.downsample == 4 and got.normalisation.kind == "percentile"


def test_a_newer_major_version_is_refused(tmp_path: Path) -> None:
    path = write_model(tmp_path / "major.onnx", metadata(schema_version=SCHEMA_VERSION + 1))
    with pytest.raises(ModelMetadataError) as err:
        load_model(path)
    text = str(err.value)
    assert "major.onnx" in text and "schema_version" in text and "9.9.0" in text
    assert f"is {SCHEMA_VERSION + 1}" in text and "upgrade stemwatch" in text


def test_an_unknown_normalisation_kind_is_refused(tmp_path: Path) -> None:
    meta = metadata(normalisation={"kind": "zscore", "mean": 0.4})
    path = write_model(tmp_path / "zscore.onnx", meta)
    with pytest.raises(ModelMetadataError) as err:
        open_model(path)
    text = str(err.value)
    assert "zscore.onnx" in text and "normalisation.kind" in text and "'zscore'" in text
    assert "'percentile'" in text and "upgrade stemwatch" in text


@pytest.mark.parametrize("field", ["class_names", "positive_class", "name", "schema_version"])
def test_a_missing_required_field_is_refused(tmp_path: Path, field: str) -> None:
    path = write_model(tmp_path / "lacking.onnx", metadata(**{field: None}))
    with pytest.raises(ModelMetadataError) as err:
        load_model(path)
    text = str(err.value)
    assert "lacking.onnx" in text and f"'{field}'" in text and "stemwatch export" in text


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"schema_version": "1"}, "schema_version is '1'"),
        ({"schema_version": 0}, "schema_version is 0"),
        ({"temperature": -1.0}, "temperature is -1.0"),
        ({"tiling": {"tile_size": 4}}, "tiling.tile_size is 4"),
        ({"positive_class": "dead"}, "positive_class 'dead' is not one of"),
    ],
)
def test_a_bad_value_names_field_and_value(
    tmp_path: Path, changes: dict[str, Any], expected: str
) -> None:
    path = write_model(tmp_path / "bad.onnx", metadata(**changes))
    with pytest.raises(ModelMetadataError, match=r"bad\.onnx") as err:
        read_metadata(path)
    assert expected in str(err.value)


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]"])
def test_metadata_that_is_not_a_json_object_is_refused(tmp_path: Path, raw: str) -> None:
    with pytest.raises(ModelMetadataError, match=r"junk\.onnx: 'stemwatch' metadata is"):
        read_metadata(write_model(tmp_path / "junk.onnx", raw))


def test_metadata_written_in_code_still_forbids_unknown_fields() -> None:
    """The exporter builds ModelMetadata in Python: a typo there must fail, not vanish."""
    from pydantic import ValidationError

    from stemwatch.core.modelmeta import ModelMetadata

    with pytest.raises(ValidationError, match="colour_space"):
        ModelMetadata(**metadata(colour_space="gray"))

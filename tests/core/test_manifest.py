"""The manifest schema: one definition, written by the labeller and the synthetic microscope."""

from __future__ import annotations

import csv
from pathlib import Path

from stemwatch.core.manifest import MANIFEST_COLUMNS, missing_columns, write_manifest


def test_written_manifest_has_the_standard_columns_then_extras(tmp_path: Path) -> None:
    rows = [
        {"path": "a.tif", "label": "differentiated", "well": "A01", "hours_since_induction": None},
        {"path": "b.tif", "label": "undifferentiated", "state": 0.25, "unknown": "dropped"},
    ]
    path = write_manifest(tmp_path / "sub" / "manifest.csv", rows, extra_columns=["state"])
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        got = list(reader)
    assert reader.fieldnames == [*MANIFEST_COLUMNS, "state"]
    assert got[0]["well"] == "A01" and got[0]["hours_since_induction"] == ""
    assert got[1]["state"] == "0.25" and "unknown" not in got[1]


def test_missing_required_columns() -> None:
    assert missing_columns(["path", "label", "plate"]) == []
    assert missing_columns(["path", "well"]) == ["label"]
    assert missing_columns(None) == ["path", "label"]

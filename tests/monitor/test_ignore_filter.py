"""Temporary names, hidden files and non-image suffixes never reach the pipeline; analysis
outputs (thumbnails, masks), unread formats and names without a suffix do (to be recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import DEFAULT_SUFFIXES
from monitor.ignore import IgnoreFilter, ignore_reason
from monitor.scanner import scan_folder

ROOT = Path("/data/plate1")
F = IgnoreFilter.build(DEFAULT_SUFFIXES, ["*_overview.tif"])


@pytest.mark.parametrize(
    "name",
    [
        "P1_A01_1.tif",
        "P1_A01_1.TIF",
        "img.tiff",
        "well.png",
        "x.jpeg",
        "sub/folder/P1_B02_2.tif",
        "001001000.flex",
        "AS_09125_050116030001_D03f00d0.DIB",
        "A01f00d0.C01",
        "WellA01_ChannelDAPI_Seq0001.nd2",  # recorded as an unsupported format
        "plate.h5",
        "P1_A01_thumb.tif",  # recorded as an analysis output by the pipeline
        "thumbnails/P1_A01.tif",
        "noext",  # told apart by its first bytes
    ],
)
def test_images_are_accepted(name: str) -> None:
    assert F.reason(ROOT / name, ROOT) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("~$P1_A01.tif", "temporary"),
        ("P1_A01.tif.tmp", "temporary"),
        ("P1_A01.tif.part", "temporary"),
        ("P1_A01.tif.partial", "temporary"),
        (".P1_A01.tif", "hidden"),
        (".DS_Store", "hidden"),
        ("Thumbs.db", "temporary"),
        ("P1_A01.tif~", "temporary"),
        ("notes.txt", "not an image"),
        ("P1_A01.xml", "not an image"),
        ("MeasurementData.mlf", "not an image"),
        ("__MACOSX/P1_A01.tif", "folder"),
        (".sync/P1_A01.tif", "hidden folder"),
        ("P1_overview.tif", "temporary"),  # the extra pattern from the config
    ],
)
def test_auxiliary_files_are_ignored(name: str, why: str) -> None:
    reason = F.reason(ROOT / name, ROOT)
    assert reason is not None and why in reason


def test_hidden_parent_above_the_root_does_not_matter() -> None:
    root = Path("/home/u/.shares/scope")
    assert F.reason(root / "P1_A01.tif", root) is None
    assert ignore_reason(root / "P1_A01.tif", None, [".tif"]) is not None  # no root: all parts


def test_suffixes_are_configurable() -> None:
    only_tiff = IgnoreFilter.build(["tif", ".TIFF"])
    assert only_tiff.accepts("/x/a.tiff") and only_tiff.accepts("/x/a.tif")
    assert not only_tiff.accepts("/x/a.png")


def test_scan_lists_only_accepted_files(tmp_path: Path) -> None:
    for name in ["a.tif", "sub/b.tif", "c.tif.part", ".d.tif", "@eaDir/e.tif", "f.txt"]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    (tmp_path / "g.tif").mkdir()  # a folder with an image name is not a file
    found = {p.relative_to(tmp_path).as_posix() for p, _, _ in scan_folder(tmp_path, F)}
    assert found == {"a.tif", "sub/b.tif"}
    flat = {p.name for p, _, _ in scan_folder(tmp_path, F, recursive=False)}
    assert flat == {"a.tif"}


def test_scan_of_a_missing_folder_yields_nothing(tmp_path: Path) -> None:
    assert list(scan_folder(tmp_path / "gone", F)) == []

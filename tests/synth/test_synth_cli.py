"""`stemwatch synth dataset|plate|acquire` on tiny inputs; bad input is one line, exit 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from stemwatch.cli import main


def test_dataset_plate_and_acquire_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["synth", "dataset", str(tmp_path / "ds"), "--size", "64", "--experiments", "1"]
    assert main([*argv, "--wells-per-class", "1", "--fields", "1", "--hours", "0,24"]) == 0
    with (tmp_path / "ds" / "manifest.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert "wrote 4 images" in capsys.readouterr().out

    argv = ["synth", "plate", str(tmp_path / "pl"), "--wells", "A1,A2", "--fields", "1"]
    assert main([*argv, "--timepoints", "2", "--size", "64", "--bit-depth", "8"]) == 0
    assert len(list((tmp_path / "pl").glob("*.tif"))) == 4
    assert (tmp_path / "pl" / "ground_truth.csv").is_file()

    argv = ["synth", "acquire", str(tmp_path / "acq"), "--wells", "A01,B02", "--fields", "1"]
    argv += ["--timepoints", "2", "--size", "64", "--pass-interval", "0.2"]
    assert main([*argv, "--log", str(tmp_path / "acq.jsonl")]) == 0
    assert len(list((tmp_path / "acq").glob("*.tif"))) == 4
    assert len((tmp_path / "acq.jsonl").read_text().splitlines()) >= 4


def test_bad_plate_format_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["synth", "plate", str(tmp_path), "--wells", "97", "--timepoints", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "wells=97" in err


def test_contact_sheet_command(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "sheet.png"
    assert main(["synth", "sheet", str(out), "--size", "96"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

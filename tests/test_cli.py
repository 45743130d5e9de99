"""The command line lists its subcommands and turns user errors into one-line messages."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stemwatch.cli import main

SUBCOMMANDS = ["train", "export", "watch", "dashboard", "demo", "synth", "config"]


def test_help_lists_subcommands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "stemwatch", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in SUBCOMMANDS:
        assert name in out


def test_help_does_not_import_torch() -> None:
    code = "import sys, stemwatch.cli; stemwatch.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_config_is_one_line_error(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["config", "monitor", "--check", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert str(missing) in err[0] and "not found" in err[0]

"""The monitor's plate settings are the shared resolver's, validated at startup."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import MonitorConfig
from stemwatch.core.config import load_config
from stemwatch.core.errors import ConfigError
from stemwatch.core.platemeta import resolve, with_config


def test_user_regex_and_presets_reach_the_resolver(tmp_path: Path) -> None:
    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text(
        "plate:\n"
        "  user_regex: '(?P<plate>P\\d+)-(?P<well>[A-H]\\d+)-(?P<field>\\d+)'\n"
        "  presets: [incucyte]\n"
        "  use_mtime: false\n"
    )
    cfg = load_config(MonitorConfig, cfg_file)
    image = tmp_path / "P7-B3-2.tif"
    image.write_bytes(b"")
    loc = resolve(image, **with_config(cfg.plate))
    assert (loc.plate, loc.well, loc.field) == ("P7", "B03", 2)
    assert loc.time_s is None  # use_mtime: false was honoured


def test_bad_regex_fails_at_startup_naming_the_field(tmp_path: Path) -> None:
    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text("plate:\n  user_regex: '(?P<wel>[A-H]'\n")
    with pytest.raises(ConfigError) as err:
        load_config(MonitorConfig, cfg_file)
    assert "plate.user_regex" in str(err.value) and str(cfg_file) in str(err.value)


def test_unknown_preset_is_refused(tmp_path: Path) -> None:
    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text("plate:\n  presets: [nikon-magic]\n")
    with pytest.raises(ConfigError, match="nikon-magic"):
        load_config(MonitorConfig, cfg_file)

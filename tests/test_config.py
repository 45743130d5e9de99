"""Config files: commented examples that validate; errors name file, field and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemwatch.cli import main
from stemwatch.commands.config import COMPONENTS, component_model
from stemwatch.core.config import example_yaml, load_config
from stemwatch.core.errors import ConfigError


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_example_is_commented_and_validates(component: str, tmp_path: Path) -> None:
    model = component_model(component)
    text = example_yaml(model())
    assert text.count("\n# ") + text.count("  # ") > 5, "descriptions become comments"
    path = tmp_path / f"{component}.yaml"
    path.write_text(text)
    assert load_config(model, path) == model()


def test_example_command_prints_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "monitor", "--example"]) == 0
    assert "quiet_period_s:" in capsys.readouterr().out


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_unknown_field_names_file_and_path(component: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("nonsense_key: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(component_model(component), path)
    msg = str(err.value)
    assert str(path) in msg and "nonsense_key" in msg and "unknown field" in msg


def test_bad_value_names_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("watch:\n  quiet_period_s: soon\n")
    with pytest.raises(ConfigError) as err:
        load_config(component_model("monitor"), path)
    msg = str(err.value)
    assert "watch.quiet_period_s" in msg and "'soon'" in msg and str(path) in msg


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("watch:\n  quiet_period_s: [1, 2\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_config(component_model("monitor"), path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(component_model("trainer"), path)


def test_check_command_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  architecture: resnet9000\n")
    assert main(["config", "trainer", "--check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "model.architecture" in err and "resnet9000" in err


def test_secrets_never_reach_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11 #13: a bad alerts value printed the URL, password included."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "alerts:\n  channels:\n    lab: [mailto://lab:s3cretpw@mail.example.org]\n"
        "  urls: {x: 'slack://T000/B000/t0kenXYZ'}\n"
    )
    assert main(["config", "monitor", "--check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "alerts.channels" in err and "alerts.urls" in err
    assert "s3cretpw" not in err and "t0kenXYZ" not in err
    assert "value not shown" in err


def test_a_single_url_may_be_a_string(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("alerts:\n  urls: 'json://127.0.0.1:9/'\n")
    cfg = load_config(component_model("monitor"), path)
    assert cfg.alerts.urls == ["json://127.0.0.1:9/"]  # type: ignore[attr-defined]


def test_url_credentials_are_masked_in_any_message() -> None:
    from stemwatch.core.config import redact

    assert redact("got 'mailto://u:pw@host/x'") == "got 'mailto://u:***@host/x'"
    assert redact("use postgresql://USER@HOST/DB") == "use postgresql://USER@HOST/DB"


def test_an_empty_config_file_is_not_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 11 #13: an empty file passed as "valid"."""
    path = tmp_path / "monitor.yaml"
    path.write_text("# nothing yet\n")
    assert main(["config", "monitor", "--check", str(path)]) == 2
    assert "the file is empty" in capsys.readouterr().err


def test_try_name_shows_the_parse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "plate:\n"
        "  user_regex: '(?:^|/)(?P<plate>[^_/]+)_r(?P<row>\\d+)c(?P<col>\\d+)_t(?P<stamp>\\d{8})"
        "\\.tif$'\n"
        "  index_base: {row: 0, col: 0}\n"
        "  time_formats: {stamp: '%Y%m%d'}\n"
        "  presets: []\n"
    )
    rc = main(["config", "monitor", "--check", str(path), "--try-name", "PL1_r1c2_t20240301.tif",
               "--try-name", "PL1_r1c2.tif"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "user_regex: plate=PL1, well=B03, time_s=2024-03-01 00:00:00 UTC" in out
    assert "=> plate PL1, well B03, time 2024-03-01 00:00:00 UTC (from user_regex)" in out
    assert "=> not placed: cannot tell the well" in out


@pytest.mark.parametrize("component", sorted(COMPONENTS))
def test_the_command_an_error_suggests_works(
    component: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (issue 13, item 3): errors suggested `stemwatch config --example`, which fails."""
    path = tmp_path / "bad.yaml"
    path.write_text("nonsense_key: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(component_model(component), path)
    with pytest.raises(ConfigError) as missing:
        load_config(component_model(component), tmp_path / "absent.yaml")
    for message in (str(err.value), str(missing.value)):
        command = message.split("`")[1].split(" > ")[0]
        assert command.startswith("stemwatch config ")
        assert main(command.split()[1:]) == 0, command
        assert "# stemwatch" in capsys.readouterr().out

"""A facility: two daemons (two instruments, two folders) write to one real PostgreSQL server;
the dashboard's data layer, its page and `stemwatch status` see both instruments."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitor_helpers import DaemonThread, image_name, make_config, wait_for, write_tiff
from streamlit.testing.v1 import AppTest

from dashboard import data
from monitor.config import MonitorConfig
from monitor.daemon import check_instrument_free
from monitor.inference import LoadedModel
from stemwatch import store
from stemwatch.cli import build_parser, main
from stemwatch.core.errors import ConfigError
from stemwatch.core.platemeta import ImageLocation

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"

# the same plate name on both instruments (labs reuse names), and a second plate on one
PLATES = {"leica-sp8": ["P1"], "zeiss-cd7": ["P1", "P2"]}


@contextlib.contextmanager
def running_daemons(configs: list[MonitorConfig], model: LoadedModel) -> Iterator[None]:
    """Several daemons for the ``with`` block (each in its thread); then none left behind."""
    before = {t.ident for t in threading.enumerate()}
    daemons = [DaemonThread(c, model) for c in configs]
    for d in daemons:
        d.thread.start()
    try:
        yield
    finally:
        for d in daemons:
            d.stop()
    wait_for(
        lambda: not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()],
        5,
    )


def done(url: str, instrument: str) -> int:
    try:
        with store.open_db(url, readonly=True) as db:
            return store.counts(db, instrument=instrument).done
    except store.StoreError:  # not created yet
        return 0


def test_two_daemons_share_one_postgres_and_the_dashboard_sees_both(  # noqa: PLR0917
    tmp_path: Path,
    postgres_url: str,
    tiny_model_path: Path,
    tiny_model: LoadedModel,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configs = {
        name: make_config(tmp_path / name, tiny_model_path, database=postgres_url, instrument=name)
        for name in PLATES
    }
    expected = {}
    for name, plates in PLATES.items():
        folder = configs[name].folder
        assert folder is not None
        n = 0
        for plate in plates:
            for hour in (9, 10):
                for well in ("A01", "B02"):
                    write_tiff(folder / image_name(well, 1, hour, plate), seed=n)
                    n += 1
        expected[name] = n
    with running_daemons([configs["leica-sp8"], configs["zeiss-cd7"]], tiny_model):
        for name, n in expected.items():
            wait_for(lambda name=name, n=n: done(postgres_url, name) == n, 60)

        # the dashboard's data layer: every instrument's plates, grouped by instrument
        with data.reading(postgres_url) as db:
            plates = store.list_plates(db)
            grouped = data.plates_by_instrument(plates)
            assert {k: [p.plate for p in v] for k, v in grouped.items()} == PLATES
            choices = data.plate_choices(plates)
            assert list(choices) == ["leica-sp8 · P1", "zeiss-cd7 · P1", "zeiss-cd7 · P2"]
            for key, plate in choices.items():
                wells = store.well_summary(db, plate.plate, instrument=plate.instrument)
                assert [w.well for w in wells] == ["A01", "B02"], key
                assert all(w.n_timepoints == 2 for w in wells), key
            beats = store.heartbeats(db)
            assert [h.instrument for h in beats] == ["leica-sp8", "zeiss-cd7"]
            assert all(h.alive() for h in beats)
            models = {store.current_model(db, instrument=h.instrument) for h in beats}
            assert len(models) == 2  # one row per instrument, the same model file

        # `stemwatch status` and its health check over the shared database
        assert main(["status", "--db", postgres_url]) == 0
        out = capsys.readouterr().out
        assert "daemon:   leica-sp8: alive" in out and "daemon:   zeiss-cd7: alive" in out
        assert "plate:    zeiss-cd7/P2: 2 wells, 4 images" in out
        assert main(["status", "--db", postgres_url, "--check"]) == 0
        assert main(["status", "--db", postgres_url, "--check", "--instrument", "x"]) == 1
        capsys.readouterr()

        # a daemon on another computer under an instrument name in use is refused
        with store.open_db(postgres_url) as db:
            check_instrument_free(db, "leica-sp8")  # this computer: a restart, fine
            with pytest.raises(ConfigError, match="'leica-sp8' already has a running daemon"):
                check_instrument_free(db, "leica-sp8", host="other-pc")
            check_instrument_free(db, "olympus", host="other-pc")  # a new name: fine

    # stopped daemons fail the health check (a container restarts them)
    assert main(["status", "--db", postgres_url, "--check"]) == 1
    assert "UNHEALTHY: leica-sp8 stopped" in capsys.readouterr().out  # said on its way out

    # the page (after the daemons: Streamlit's threads outlive a test) lists both
    # instruments' plates and their daemons
    monkeypatch.setenv("STEMWATCH_DB", postgres_url)
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="plate").options == [
        "leica-sp8 · P1  (0 onsets)",
        "zeiss-cd7 · P1  (0 onsets)",
        "zeiss-cd7 · P2  (0 onsets)",
    ]
    at.selectbox(key="plate").select("zeiss-cd7 · P2").run()
    assert not at.exception, at.exception
    assert "Plate P2" in at.title[0].value
    assert any("zeiss-cd7" in c.value for c in at.caption)
    assert "Daemons (2 instruments)" in [s.value for s in at.subheader]

    # the other views: each instrument on its own line, plates and their instruments
    at.radio(key="view").set_value("instrument").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Instruments"
    assert list(at.dataframe[0].value["Instrument"]) == ["leica-sp8", "zeiss-cd7"]
    assert at.selectbox(key="inst_name").options == ["leica-sp8", "zeiss-cd7"]
    at.radio(key="view").set_value("plates").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(zip(table["Instrument"], table["Plate"], strict=True)) == [
        ("leica-sp8", "P1"),
        ("zeiss-cd7", "P1"),
        ("zeiss-cd7", "P2"),
    ]

    # the page's cached reads notice a commit on the server (no file to watch there)
    with store.open_db(postgres_url, instrument="olympus") as db:
        store.record_result(
            db,
            store.FileVersion("/x/Q1_A01.tif", 1, 1, "q1"),
            ImageLocation("Q1", "A01", 0, 0, 0.0, "test"),
            store.Prediction("m", 0.5),
        )
    at.run()
    assert not at.exception, at.exception
    assert "olympus · Q1  (0 onsets)" in at.selectbox(key="plate").options


def test_config_takes_a_path_or_a_postgres_url_and_says_what_is_wrong(tmp_path: Path) -> None:
    from stemwatch.core.config import load_config

    good = tmp_path / "good.yaml"
    good.write_text("database: postgresql://stemwatch@db.lab/stemwatch\ninstrument: leica-sp8\n")
    cfg = load_config(MonitorConfig, good)
    assert (cfg.database, cfg.instrument_name) == (
        "postgresql://stemwatch@db.lab/stemwatch",
        "leica-sp8",
    )
    assert MonitorConfig().instrument_name == store.default_instrument()  # empty: host name
    assert MonitorConfig(database=tmp_path / "x.db").database == str(tmp_path / "x.db")
    bad = tmp_path / "bad.yaml"
    bad.write_text("database: mysql://db/stemwatch\ninstrument: ' padded'\n")
    with pytest.raises(ConfigError) as exc:
        load_config(MonitorConfig, bad)
    lines = str(exc.value).splitlines()
    assert any(
        f"{bad}: database:" in line
        and "unsupported database URL scheme 'mysql'" in line
        and "postgresql://USER@HOST" in line
        for line in lines
    ), lines
    assert any(f"{bad}: instrument:" in line and "leading or trailing" in line for line in lines)


def test_watch_takes_db_and_instrument_from_flags_then_environment_then_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stemwatch.commands.watch import build_config

    cfg_file = tmp_path / "monitor.yaml"
    cfg_file.write_text("database: from-config.db\ninstrument: from-config\n")

    def built(*argv: str) -> MonitorConfig:
        args = build_parser().parse_args(["watch", "--config", str(cfg_file), *argv])
        cfg = build_config(args)
        assert isinstance(cfg, MonitorConfig)
        return cfg

    assert (built().database, built().instrument) == ("from-config.db", "from-config")
    monkeypatch.setenv("STEMWATCH_DB", "postgresql://sw@db/sw")
    monkeypatch.setenv("STEMWATCH_INSTRUMENT", "from-env")
    assert (built().database, built().instrument) == ("postgresql://sw@db/sw", "from-env")
    flags = built("--db", "flag.db", "--instrument", "from-flag")
    assert (flags.database, flags.instrument) == ("flag.db", "from-flag")

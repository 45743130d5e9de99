"""The monitor's domain check: bad frames marked unscored, out-of-domain images marked and kept
out of onset detection (through a real daemon on a real folder, then in `stemwatch status` and
on the dashboard), one alert per episode."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tifffile
from monitor_helpers import image_name, make_config, running_daemon
from onnx_models import build_classifier, tiny_metadata
from scipy import ndimage as ndi
from streamlit.testing.v1 import AppTest

from monitor.alerts import Alerter, AlertsConfig
from monitor.domain_check import DomainCheckConfig, domain_alert
from monitor.inference import load_model
from monitor.onset import OnsetConfig
from monitor.reanalyse import reanalyse
from stemwatch import store
from stemwatch.cli import main
from stemwatch.core.config import validate_mapping
from stemwatch.core.domain import (
    DomainDescription,
    calibrate_threshold,
    fit_gaussian,
    image_distance,
    tile_statistics,
)
from stemwatch.core.errors import ConfigError
from stemwatch.core.imaging import prepare
from stemwatch.core.platemeta import ImageLocation

# -- a model that knows its training domain ------------------------------------------------------


def cells(seed: int, size: int = 256) -> np.ndarray:
    """The test model's training domain: a fine, skewed texture (mostly dark, bright specks),
    which its brightness path scores as undifferentiated (p ~ 0)."""
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(rng.exponential(1.0, (size, size)), 1.2)
    img = (img - img.mean()) / img.std()
    noisy = 8000 + 2500 * img + rng.normal(0, 150, (size, size))
    return np.clip(noisy, 0, 65535).astype(np.uint16)


def foreign(seed: int) -> np.ndarray:
    """Unlike the training domain (the texture inverted: mostly bright, dark specks), and
    scored as differentiated (p ~ 0.8): it would trigger onset if it counted."""
    return (65535 - cells(seed)).astype(np.uint16)


@pytest.fixture(scope="module")
def domain_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test classifier with a statistics-only domain description fitted on 30
    ``cells`` images and calibrated on 30 others, as the exporter does."""
    meta = tiny_metadata(tile_size=32, downsample=4, max_tiles=16)

    def stats(seed: int) -> np.ndarray:
        return tile_statistics(prepare(cells(seed), meta.normalisation, meta.tiling).data)

    gaussian = fit_gaussian(np.concatenate([stats(s) for s in range(30)]), transform="none")
    held = np.array([image_distance(gaussian.distances(stats(s))) for s in range(100, 130)])
    scale = float(np.median(held))
    domain = DomainDescription(
        statistics=gaussian, statistics_scale=scale, threshold=calibrate_threshold(held / scale)
    )
    return build_classifier(
        tmp_path_factory.mktemp("domain-model") / "domain.onnx",
        brightness_gain=30.0,
        metadata=meta.model_copy(update={"domain": domain}),
    )


def put(folder: Path, name: str, pixels: np.ndarray) -> None:
    """Write a TIFF beside the folder and rename it in, as instruments do."""
    staging = folder.parent / "staging"
    staging.mkdir(exist_ok=True)
    tifffile.imwrite(staging / name, pixels)
    os.replace(staging / name, folder / name)


# -- the done-when test: a real daemon --------------------------------------------------------


def test_out_of_domain_image_is_marked_and_kept_out_of_onset_detection(
    tmp_path: Path,
    domain_model_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = make_config(
        tmp_path,
        domain_model_path,
        onset={"k": 1, "aggregate": "mean"},  # one differentiated time point would fire
        domain={"alert_window": 4, "alert_min_images": 2},
    )
    folder = config.folder
    assert folder is not None
    with running_daemon(config) as d:
        for hour, seed in zip((9, 10, 11, 12), (200, 201, 202, 203), strict=True):
            put(folder, image_name("A01", hour=hour), cells(seed))
        put(folder, image_name("A01", hour=13), foreign(204))
        put(folder, image_name("A02", hour=9), np.zeros((256, 256), np.uint16))
        put(folder, image_name("A02", hour=10), np.full((256, 256), np.nan, np.float32))
        # plate P2: its images keep falling outside, the lab is told once
        for i, well in enumerate(("B01", "B02", "B03")):
            put(folder, image_name(well, hour=9, plate="P2"), foreign(300 + i))
        d.settle()
        assert d.daemon.summary.done == 10 and d.daemon.summary.failed == 0
    db = store.open_db(config.database, readonly=True)

    a01 = store.images_for_well(db, "P1", "A01")
    outside = [i for i in a01 if i.out_of_domain]
    assert [Path(i.path).name for i in outside] == [image_name("A01", hour=13)]
    (odd,) = outside
    assert odd.probability is not None and odd.probability > 0.55  # would have fired
    assert odd.domain_score is not None and odd.domain_score > 1.0
    assert all(i.domain_score is not None and i.domain_score < 1.0 for i in a01[:4])
    series = store.well_series(db, "P1", "A01")
    assert len(series) == 4 and max(p.probability for p in series) < 0.1
    assert store.list_onsets(db) == []

    bad = {Path(i.path).name: i for i in store.images_for_well(db, "P1", "A02")}
    assert bad[image_name("A02", hour=9)].quality == "blank: every pixel is 0"
    nan = bad[image_name("A02", hour=10)].quality
    assert nan is not None and nan.startswith("nonfinite: no pixel is a finite number")
    assert all(i.status == "done" and i.probability is None for i in bad.values())
    assert store.well_series(db, "P1", "A02") == []

    alerts = [a for a in store.list_alerts(db) if a.kind == "domain"]
    assert len(alerts) == 1, [a.message for a in alerts]
    (alert,) = alerts
    assert alert.plate == "P2"
    assert "Images from plate P2 do not look like model test-tiny-cnn's training data" in (
        alert.message
    )
    assert "train a model on your own images" in alert.message.lower()
    assert "docs/domain-check.md#train-a-model-on-your-own-images" in alert.message
    db.close()

    assert main(["status", "--db", str(config.database), "--limit", "10"]) == 0
    out = capsys.readouterr().out
    assert "P1: 2 wells, 7 images" in out and "1 of 5 out of the model's domain" in out
    assert "2 bad frames (not analysed)" in out
    assert "NOT ANALYSED (blank: every pixel is 0)" in out
    assert "OUT OF DOMAIN (domain score" in out and "not used)" in out

    # ...and the dashboard marks them: A01's latest image is outside the model's domain, A02
    # has only bad frames; neither is coloured as a probability
    grid = _plate_grid_on_the_dashboard(config.database, monkeypatch, plate="P1")
    assert grid.loc["A01", "excluded"] == "domain" and np.isnan(grid.loc["A01", "probability"])
    assert grid.loc["A01", "status"].startswith("latest images outside the model's training")
    assert grid.loc["A02", "excluded"] == "quality" and np.isnan(grid.loc["A02", "probability"])


def _plate_grid_on_the_dashboard(
    database: Path, monkeypatch: pytest.MonkeyPatch, *, plate: str
) -> pd.DataFrame:
    """The plate heatmap's rows as Streamlit's AppTest renders the dashboard on ``database``."""
    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    monkeypatch.setenv("STEMWATCH_DB", str(database))
    at = AppTest.from_file(str(app), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    if at.selectbox(key="plate").value != plate:
        at.selectbox(key="plate").select(plate).run()
        assert not at.exception, at.exception
    (chart,) = [c for c in at.get("vega_lite_chart") if getattr(c, "key", None) == "plate_chart"]
    spec = json.loads(chart.proto.spec)
    sets = {ds.name: pa.ipc.open_stream(ds.data.data).read_pandas() for ds in chart.proto.datasets}
    return sets[spec["layer"][0]["data"]["name"]].set_index("well")


def test_model_without_a_description_runs_unchecked_and_says_so_once(
    tmp_path: Path, tiny_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, tiny_model_path)
    folder = config.folder
    assert folder is not None
    with caplog.at_level(logging.WARNING, logger="monitor"), running_daemon(config) as d:
        put(folder, image_name("A01", hour=9), cells(1))
        put(folder, image_name("A01", hour=10), foreign(2))
        d.settle()
        assert d.daemon.summary.done == 2
    said = [r for r in caplog.records if "carries no description of its training" in r.message]
    assert len(said) == 1
    db = store.open_db(config.database, readonly=True)
    images = store.images_for_well(db, "P1", "A01")
    assert [(i.domain_score, i.out_of_domain) for i in images] == [(None, None), (None, None)]
    assert len(store.well_series(db, "P1", "A01")) == 2  # both count: nothing to judge by
    db.close()


# -- the alert rule ----------------------------------------------------------------------------


CONFIG = DomainCheckConfig(alert_window=10, alert_fraction=0.5, alert_min_images=3)


def test_alert_rule() -> None:
    def rule(n: int, out: int) -> tuple[str | None, bool]:
        return domain_alert(
            store.DomainWindow(n, out, 2.5), CONFIG, plate="P7", model_name="default"
        )

    assert rule(10, 4) == (None, False)  # under half: no alert, but not clear either
    assert rule(2, 2)[0] is None  # two of two: too few to judge
    message, _ = rule(6, 3)
    assert message is not None and "3 of its last 6 images" in message
    assert "their median domain score is 2.5" in message and CONFIG.how_to in message
    assert rule(10, 2) == (None, True)  # at most a fifth: the episode may end
    assert rule(0, 0) == (None, True)


def test_clear_fraction_must_be_below_alert_fraction() -> None:
    with pytest.raises(ConfigError, match="clear_fraction"):
        validate_mapping(
            DomainCheckConfig, {"alert_fraction": 0.3, "clear_fraction": 0.3}, "monitor.yaml"
        )


def test_one_alert_per_episode_and_again_after_a_relapse(tmp_path: Path) -> None:
    db = store.open_db(tmp_path / "s.db", instrument="scope")
    alerter = Alerter(AlertsConfig(), db, domain=CONFIG)
    n = 0

    def scored(score: float) -> None:
        nonlocal n
        n += 1
        store.record_result(
            db,
            store.FileVersion(f"/i/{n}.tif", 1, 1, f"h{n}"),
            ImageLocation("P7", "A01", 0, n, n * 3600.0, "test", time_basis="elapsed"),
            store.Prediction("m" * 12, 0.5, domain_score=score, out_of_domain=score > 1),
        )

    raised = []
    for score in [0.5, 3.0, 3.0, 3.0, 3.0, 3.0]:  # outside from the second image on
        scored(score)
        raised.append(alerter.domain("P7", "m" * 12, "default", now=float(n)))
    assert [a is not None for a in raised] == [False, False, False, True, False, False]
    first = raised[3]
    assert first is not None and first.kind == "domain" and first.plate == "P7"
    for _ in range(10):  # the lab fixed it: in-domain images again
        scored(0.4)
        assert alerter.domain("P7", "m" * 12, "default", now=float(n)) is None
    condition = store.alert_condition(db, f"domain:P7:{'m' * 12}")
    assert condition is not None and not condition.active
    relapse = []
    for _ in range(10):  # and it comes back: a new episode, one new alert
        scored(2.0)
        relapse.append(alerter.domain("P7", "m" * 12, "default", now=float(n)))
    (again,) = [a for a in relapse if a is not None]
    assert relapse.index(again) == 4  # once half of the last ten are outside
    assert again.id != first.id
    assert len([a for a in store.list_alerts(db) if a.kind == "domain"]) == 2


def test_a_reanalysis_applies_the_domain_check_and_never_scores_bad_frames(
    tmp_path: Path, tiny_model_path: Path, domain_model_path: Path
) -> None:
    """A re-analysis (issue 10) with a model that describes its domain stores domain scores
    and keeps out-of-domain images out of that model's series, as the daemon does; a bad frame
    is never scored, by any model."""
    config = make_config(tmp_path, tiny_model_path)  # the daemon's model checks no domain
    folder = config.folder
    assert folder is not None
    with running_daemon(config) as d:
        put(folder, image_name("A01", hour=9), cells(1))
        put(folder, image_name("A01", hour=10), cells(2))
        put(folder, image_name("A01", hour=11), foreign(3))
        put(folder, image_name("A01", hour=12), np.zeros((256, 256), np.uint16))
        d.settle()
        assert d.daemon.summary.done == 4
    domain_model = load_model(domain_model_path)
    with store.open_db(config.database) as db:
        summary = reanalyse(db, domain_model, onset=OnsetConfig(k=1, aggregate="mean"))
        assert (summary.planned, summary.scored) == (3, 3)  # the blank frame is not planned
        images = store.images_for_well(db, "P1", "A01", model_hash=domain_model.model_hash)
        scores = {Path(i.path).name: (i.out_of_domain, i.quality) for i in images}
        assert scores[image_name("A01", hour=11)] == (True, None)
        assert scores[image_name("A01", hour=9)] == (False, None)
        assert scores[image_name("A01", hour=12)] == (None, "blank: every pixel is 0")
        series = store.well_series(db, "P1", "A01", model_hash=domain_model.model_hash)
        assert len(series) == 2 and max(p.probability for p in series) < 0.1
        assert store.list_onsets(db, model_hash=domain_model.model_hash) == []

"""Real results databases for the dashboard tests, filled through the daemon's write path
(store.record_result, onset.update_well, the Alerter), never with SQL."""

from __future__ import annotations

import io
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from monitor.alerts import Alerter, AlertsConfig
from monitor.domain_check import DomainCheckConfig
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.platemeta import ImageLocation

PLATE = "P1"
HOUR = 3600.0
TIMEPOINTS = 6
INTERVAL_H = 6.0
# well -> P(differentiated) per time point: B02 rises from 18 h on (onset), the others stay low
CURVES: dict[str, list[float]] = {
    "A01": [0.05, 0.08, 0.06, 0.10, 0.07, 0.09],
    "B02": [0.10, 0.12, 0.20, 0.70, 0.85, 0.92],
    "C03": [0.15, 0.10, 0.18, 0.22, 0.25, 0.20],
}
MISSING_WELL = "C03"  # its first image file is deleted after analysis
DAEMON_QUEUE = 7  # images the daemon reports as found and not yet analysed
# a second, smaller plate in the same database: per-plate figures must not count it
OTHER_PLATE = "P3"
OTHER_WELLS = ("A01", "A02")
OTHER_FAILED = 1


@dataclass(frozen=True)
class FilledDb:
    path: Path
    image_dir: Path
    onset_well: str
    missing_file: Path


def _tiff(path: Path, rng: np.random.Generator, level: float) -> None:
    base = rng.normal(1000 + 2000 * level, 300, size=(64, 64)).clip(0, 65535)
    tifffile.imwrite(path, base.astype(np.uint16))


def _cam_png(level: float) -> bytes:
    arr = np.full((8, 8), int(255 * level), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def fill_database(db: Path, image_dir: Path, *, with_alerts: bool = True) -> FilledDb:
    """Three wells, two fields, six time points 6 h apart, scored and run through onset."""
    rng = np.random.default_rng(0)
    image_dir.mkdir(parents=True, exist_ok=True)
    conn = store.open_db(db)
    store.record_watched_folder(conn, image_dir)  # as the daemon does at start
    alerter = Alerter(AlertsConfig(), conn)  # no channels: alerts go to the database only
    model_hash = "ab12cd34ef56" * 4
    store.register_model(
        conn,
        model_hash=model_hash,
        name="resnet-tiny-v1",
        metadata_json="{}",
        provider="CPUExecutionProvider",
    )
    missing: Path | None = None
    for well, curve in CURVES.items():
        for tp, p in enumerate(curve):
            for field in (1, 2):
                path = image_dir / f"{PLATE}_{well}_f{field}_t{tp:02d}.tif"
                _tiff(path, rng, p)
                st = path.stat()
                loc = ImageLocation(
                    plate=PLATE,
                    well=well,
                    field=field,
                    timepoint=tp,
                    time_s=tp * INTERVAL_H * HOUR,
                    source="test",
                    time_basis="elapsed",
                )
                fp = float(np.clip(p + (0.03 if field == 1 else -0.03), 0, 1))
                store.record_result(
                    conn,
                    store.FileVersion(str(path), st.st_size, st.st_mtime_ns),
                    loc,
                    store.Prediction(
                        model_hash, fp, tile_mean=fp, tile_sd=0.05, n_tiles=4, cam_png=_cam_png(fp)
                    ),
                )
                if well == MISSING_WELL and tp == 0 and field == 1:
                    missing = path
        event = update_well(conn, PLATE, well, OnsetConfig(), model_hash=model_hash)
        if event is not None and with_alerts:
            alerter.onset(event)
    for well in OTHER_WELLS:
        for field in (1, 2):
            path = image_dir / f"{OTHER_PLATE}_{well}_f{field}_t00.tif"
            _tiff(path, rng, 0.1)
            st = path.stat()
            loc = ImageLocation(OTHER_PLATE, well, field, 0, 0.0, "test", time_basis="elapsed")
            store.record_result(
                conn,
                store.FileVersion(str(path), st.st_size, st.st_mtime_ns),
                loc,
                store.Prediction(model_hash, 0.1, tile_mean=0.1, tile_sd=0.05, n_tiles=4),
            )
        update_well(conn, OTHER_PLATE, well, OnsetConfig(), model_hash=model_hash)
    store.record_failure(
        conn,
        store.FileVersion(str(image_dir / f"{OTHER_PLATE}_A03_f1_t00.tif"), 10, 1),
        reason="truncated TIFF",
        attempts=3,
        location=ImageLocation(OTHER_PLATE, "A03", 1, 0, 0.0, "test"),
    )
    if with_alerts:
        alerter.raise_alert(
            "stall", "No image arrived for 18 h (3 intervals); is the microscope running?"
        )
    # the daemon beats every minute: alive for the next three
    store.beat(
        conn,
        state="watching",
        detail="idle, 36 images done",
        queued=DAEMON_QUEUE,
        interval_s=60.0,
    )
    conn.close()
    assert missing is not None
    missing.unlink()
    return FilledDb(db, image_dir, "B02", missing)


LAYOUTS = (6, 12, 24, 48, 96, 384)


def fill_layouts(db: Path, *, with_series: bool = True) -> list[str]:
    """One plate per standard layout (``L6`` ... ``L384``), every well imaged at two time
    points with one field, some wells with an onset; no image files (the plate view does not
    need them). Returns the plate names."""
    from stemwatch.core.wells import plate_format

    model_hash = "cd34" * 16
    conn = store.open_db(db)
    store.register_model(
        conn, model_hash=model_hash, name="layouts", metadata_json="{}", provider="CPU"
    )
    rng = np.random.default_rng(1)
    names = []
    with store.batch(conn):
        for n in LAYOUTS:
            plate = f"L{n}"
            names.append(plate)
            for k, well in enumerate(plate_format(n).wells()):
                ps = [float(rng.uniform(0, 0.3)), float(rng.uniform(0, 1))]
                for tp, p in enumerate(ps):
                    loc = ImageLocation(
                        plate, well, 1, tp, tp * 6 * HOUR, "test", time_basis="elapsed"
                    )
                    store.record_result(
                        conn,
                        store.FileVersion(
                            f"/nowhere/{plate}_{well}_t{tp}.tif", 1, 1, f"{plate}{well}{tp}"
                        ),
                        loc,
                        store.Prediction(model_hash, p, n_tiles=1),
                    )
                series = [
                    store.TimePoint(tp, tp * 6 * HOUR, p, 0.02, 0.02, 1, 1, p)
                    for tp, p in enumerate(ps)
                ]
                onset = (
                    store.NewOnset(6 * HOUR, 1, 6 * HOUR, 1, ps[1], "elapsed")
                    if k % 7 == 3
                    else None
                )
                store.save_well_analysis(
                    conn, plate, well, model_hash=model_hash, series=series, onset=onset, episode=0
                )
    store.beat(conn, state="watching", detail="idle", queued=0, interval_s=60.0)
    conn.close()
    return names


# -- images left out of the series (issue 9): outside the training domain, bad frames -------

DOMAIN_MODEL = "ab12cd34ef56" * 4  # fill_database's model
OUTSIDE = "A04"  # both fields of its newest time point outside the training domain
BLANK = "B04"  # both fields of its newest time point blank
ONE_FIELD = "C04"  # one field of its newest time point outside, the other fine


def _flag_image(
    conn: store.Database,
    folder: Path,
    well: str,
    tp: int,
    field: int,
    *,
    p: float = 0.1,
    score: float | None = None,
    blank: bool = False,
) -> None:
    path = folder / f"{PLATE}_{well}_f{field}_t{tp:02d}.tif"
    pixels = np.zeros((32, 32), np.uint16) if blank else np.full((32, 32), 900, np.uint16)
    tifffile.imwrite(path, pixels)
    st = path.stat()
    version = store.FileVersion(str(path), st.st_size, st.st_mtime_ns, f"{well}{tp}{field}")
    t = tp * INTERVAL_H * HOUR
    loc = ImageLocation(PLATE, well, field, tp, t, "test", time_basis="elapsed")
    if blank:
        store.record_quality_issue(conn, version, loc, reason="blank: every pixel is 0")
        return
    prediction = store.Prediction(
        DOMAIN_MODEL,
        p,
        tile_mean=p,
        tile_sd=0.02,
        n_tiles=4,
        domain_score=score,
        out_of_domain=None if score is None else score > 1.0,
    )
    store.record_result(conn, version, loc, prediction)


def add_left_out_images(db: Path, image_dir: Path) -> None:
    """Three more wells of plate P1 with images left out of their series, run through onset
    detection, and the domain alert the daemon's Alerter raises for the plate: ``OUTSIDE``
    (its last two time points outside the domain, at probabilities that would fire onset),
    ``BLANK`` (blank frames at its last time point), ``ONE_FIELD`` (one of two fields outside
    at its last time point)."""
    with closing(store.open_db(db)) as conn:
        for well in (OUTSIDE, BLANK, ONE_FIELD):
            for tp in (0, 1, 2):
                for field in (1, 2):
                    _flag_image(conn, image_dir, well, tp, field, score=0.4)
        for field in (1, 2):
            _flag_image(conn, image_dir, OUTSIDE, 3, field, p=0.9, score=3.2)
            _flag_image(conn, image_dir, OUTSIDE, 4, field, p=0.95, score=2.8)
            _flag_image(conn, image_dir, BLANK, 3, field, blank=True)
        _flag_image(conn, image_dir, ONE_FIELD, 3, 1, p=0.9, score=5.0)
        _flag_image(conn, image_dir, ONE_FIELD, 3, 2, score=0.5)
        for well in (OUTSIDE, BLANK, ONE_FIELD):
            assert update_well(conn, PLATE, well, OnsetConfig(), model_hash=DOMAIN_MODEL) is None
        config = DomainCheckConfig(alert_window=6, alert_min_images=3, alert_fraction=0.5)
        alerter = Alerter(AlertsConfig(), conn, domain=config)
        assert alerter.domain(PLATE, DOMAIN_MODEL, "resnet-tiny-v1") is not None

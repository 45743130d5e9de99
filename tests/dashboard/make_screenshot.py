"""Write docs/dashboard.png: the served dashboard in headless Chromium on a synthetic plate.

Run by hand (not by the test suite): ``python tests/dashboard/make_screenshot.py [OUT.png]
[--wells 96] [--size 1280x800]`` (docs/dashboard.png; docs/dashboard-96.png with ``--wells 96``).
``--db DB --view models --plate P`` screenshots another view of an existing database
(docs/lab-compare.png: the Models view on the database of
``tests/benchmarks/eval_lab_loop.py``).

The images are the synthetic microscope's 24-well plate (real OME-TIFFs, resolved with
:func:`stemwatch.core.platemeta.resolve`); the model scores are *simulated* from the plate's ground
truth (a logistic rise after each induced well's true onset, plus field noise; activation maps
per tile likewise), so the picture shows every part of the page (onset rings, onset rules,
alerts) independently of how well today's model is trained. Everything is written through the
monitor's write API, onset detection and alerting included, as the daemon would.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from dashboard_browser import (
    DashboardServer,
    chrome,
    find_browser,
    free_port,
    wait_for_plate,
    wait_for_series,
)
from dashboard_browser import wait_for_text as wait_text
from PIL import Image

from monitor.alerts import Alerter, AlertsConfig
from monitor.onset import OnsetConfig, update_well
from stemwatch import store
from stemwatch.core.imaging import read_image
from stemwatch.core.platemeta import resolve
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec

ROOT = Path(__file__).resolve().parents[2]
PLATE = "iPSC-042"
VIEW_READY = {"models": "Accuracy on labelled wells"}  # text shown once a view is complete


def simulated_score(true_onset_h: float | None, t_h: float, rng: np.random.Generator) -> float:
    base = 0.08 + rng.normal(0, 0.04)
    if true_onset_h is not None:
        base += 0.85 / (1 + np.exp(-(t_h - true_onset_h - 4.0) / 4.0))
    return float(np.clip(base, 0.01, 0.99))


def simulated_cam(p: float, rng: np.random.Generator) -> bytes:
    tiles = np.clip(p + rng.normal(0, 0.15, size=(4, 4)), 0, 1)
    buf = io.BytesIO()
    Image.fromarray((tiles * 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def build_database(work: Path, wells: int = 24) -> Path:
    fields, side = (2, 256) if wells <= 24 else (1, 128)
    truth = generate_plate(
        work / "images",
        PlateSpec(
            wells=wells, n_fields=fields, n_timepoints=10, size=side, plate_name=PLATE, seed=3
        ),
    )
    onset_h = {w.well: w.true_onset_h for w in truth.wells}
    db = work / "stemwatch.db"
    conn = store.open_db(db)
    store.record_watched_folder(conn, work / "images")  # as the daemon does at start
    alerter = Alerter(AlertsConfig(), conn)
    model_hash = "5c0f3d9e" * 8
    store.register_model(
        conn,
        model_hash=model_hash,
        name="fastnet (simulated scores)",
        metadata_json="{}",
        provider="CPUExecutionProvider",
    )
    rng = np.random.default_rng(7)
    t0: float | None = None
    for path in sorted(truth.files):
        image = read_image(path)
        loc = resolve(path, ome_xml=image.ome_xml)
        t0 = loc.time_s if t0 is None else min(t0, loc.time_s or t0)
        st = path.stat()
        t_h = ((loc.time_s or 0.0) - (t0 or 0.0)) / 3600.0
        p = simulated_score(onset_h.get(loc.well), t_h, rng)
        store.record_result(
            conn,
            store.FileVersion(str(path), st.st_size, st.st_mtime_ns),
            loc,
            store.Prediction(
                model_hash,
                p,
                tile_mean=p,
                tile_sd=0.08,
                n_tiles=16,
                cam_png=simulated_cam(p, rng),
            ),
        )
    for well in sorted(onset_h):
        event = update_well(conn, PLATE, well, OnsetConfig(), model_hash=model_hash)
        if event is not None:
            alerter.onset(event)
    alerter.raise_alert(
        "disk", "The disk of /data/incoming has 4.2% free space (limit 5%); archive old runs."
    )
    store.beat(conn, state="watching", detail="idle, 480 images done", queued=0, interval_s=10.0)
    conn.close()
    return db


def first_plate(db: Path) -> str:
    from contextlib import closing

    from stemwatch import store

    with closing(store.open_db(db, readonly=True)) as conn:
        return store.list_plates(conn)[0].plate


def main(
    out: Path,
    existing_db: Path | None = None,
    *,
    wells: int = 24,
    width: int = 1280,
    height: int = 800,
    view: str = "plate",
    plate_name: str | None = None,
) -> int:
    """Screenshot the dashboard's page (``width`` x ``height`` CSS px) on ``existing_db`` (e.g.
    a `stemwatch demo` database), else on a synthetic plate of ``wells`` with simulated
    scores."""
    browser = find_browser()
    if browser is None:
        print("chromium/chromedriver missing: run scripts/ensure-browser.sh", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = existing_db or build_database(work, wells)
        plate = plate_name or (first_plate(db) if existing_db else PLATE)
        server = DashboardServer(db, free_port(), work / "server.log")
        try:
            server.wait_ready()
            driver = chrome(browser, width=width, height=height)
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            try:
                if view == "plate":
                    driver.get(server.url)
                    wait_text(driver, f"Plate {plate}")
                    wait_for_plate(driver)
                    wait_for_series(driver)
                else:
                    driver.get(f"{server.url}/?view={view}&plate={plate}")
                    wait_text(driver, f"{view.capitalize()} · plate {plate}")
                    if view in VIEW_READY:  # the view's figures, computed after its title
                        wait_text(driver, VIEW_READY[view])
                time.sleep(2.0)  # let the thumbnails and fonts settle
                driver.save_screenshot(str(out))
            finally:
                driver.quit()
        finally:
            server.stop()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Screenshot the dashboard into docs/.")
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "docs/dashboard.png")
    parser.add_argument("--db", type=Path, help="an existing database (default: simulated)")
    parser.add_argument("--wells", type=int, default=24, help="simulated plate (24)")
    parser.add_argument("--size", default="1280x800", help="page size in CSS px (1280x800)")
    parser.add_argument("--view", default="plate", help="the view to show (plate)")
    parser.add_argument("--plate", help="the plate to show (default: the first)")
    cli = parser.parse_args()
    w, h = (int(v) for v in cli.size.split("x"))
    raise SystemExit(
        main(
            cli.out,
            cli.db,
            wells=cli.wells,
            width=w,
            height=h,
            view=cli.view,
            plate_name=cli.plate,
        )
    )

"""Benchmark of the dashboard's first render on a large plate; prints figures.

    python tests/benchmarks/bench_dashboard.py [--db big.db] [--repeat 3] [--profile]

Builds (once; reused with ``--db``) a database of one 384-well plate x 4 fields x 200 time
points (307,200 scored images, 76,800 series points, onsets in a tenth of the wells, alerts),
written through the store's API like the daemon writes; the 32 newest images of the well the
page opens on are real 2048² uint16 TIFFs (their thumbnails are part of the first render).
Then measures, each on a fresh server process (cold caches):

- AppTest: the first ``run()`` of the page in a fresh Python process (script run only), and
  that process's CPU seconds;
- the real browser: from ``driver.get`` until the plate heatmap and the well's chart have
  drawn and both tables are on screen, measured from navigation after the server says ready
  (its start-to-ready time is printed too: ``stemwatch dashboard`` imports the page's modules
  before it is ready). Three renders: on the fresh server in a fresh browser profile (nothing
  cached: Streamlit's JavaScript is fetched and compiled), a reload (server and browser
  warm), and on a second fresh server in the browser that has shown the page before (the
  lab's daily case). Each with the CPU seconds of the server and of every Chromium process.

Target (issue 13): first render <= 2 s on 2 cores. ``--profile`` prints where the AppTest
run spends its time (cProfile, cumulative, the project's own functions). Not a test: it
asserts nothing. Wall-clock figures are noisy on a shared machine (the load average is
printed); the CPU seconds much less so. A database of an older stemwatch is migrated first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))

PLATE = "BIG384"
N_FIELDS = 4
N_TIMEPOINTS = 200
INTERVAL_H = 0.5
MODEL = "be" * 32
REAL_IMAGES = 32  # the newest images of the first-shown well are real files
TARGET_S = 2.0


def build(db: Path, images: Path, side: int) -> str:
    """The big database; returns the well the page opens on (the newest onset)."""
    from stemwatch import store
    from stemwatch.core.platemeta import ImageLocation
    from stemwatch.core.wells import plate_format

    images.mkdir(parents=True, exist_ok=True)
    wells = plate_format(384).wells()
    rng = np.random.default_rng(0)
    onset_wells = set(wells[3::10])
    first_shown = max(onset_wells)  # detected last (below), so the page opens on it
    t_build = time.perf_counter()
    conn = store.open_db(db)
    # (also builds the database of an older stemwatch, to measure "before": no batch, no
    # watched folders there)
    batch = getattr(store, "batch", None)
    if batch is None:
        from stemwatch.store.connection import transaction as batch
    if hasattr(store, "record_watched_folder"):
        store.record_watched_folder(conn, images)
    store.register_model(
        conn, model_hash=MODEL, name="bench", metadata_json="{}", provider="CPUExecutionProvider"
    )
    cam = _cam_png()
    for k, well in enumerate(wells):
        rise = 60 + (k % 100) if well in onset_wells else None
        ps = [
            float(np.clip(0.1 + (0.8 / (1 + np.exp(-(t - rise) / 5)) if rise else 0), 0, 1))
            for t in range(N_TIMEPOINTS)
        ]
        with batch(conn):
            for t, p in enumerate(ps):
                for f in range(1, N_FIELDS + 1):
                    path = images / f"{PLATE}_{well}_f{f}_t{t:03d}.tif"
                    loc = ImageLocation(
                        PLATE, well, f, t, t * INTERVAL_H * 3600, "bench", time_basis="elapsed"
                    )
                    store.record_result(
                        conn,
                        store.FileVersion(str(path), 1, 1, f"{well}-{f}-{t}"),
                        loc,
                        store.Prediction(
                            MODEL,
                            float(np.clip(p + rng.normal(0, 0.03), 0, 1)),
                            tile_sd=0.05,
                            n_tiles=64,
                            cam_png=cam if well == first_shown else None,
                        ),
                    )
            series = [
                store.TimePoint(t, t * INTERVAL_H * 3600, p, 0.03, 0.015, N_FIELDS, 256, p)
                for t, p in enumerate(ps)
            ]
            onset = None
            if rise is not None:
                h = rise * INTERVAL_H * 3600
                onset = store.NewOnset(h, rise, h + 3600, rise + 2, 0.6, "elapsed")
            store.save_well_analysis(
                conn,
                PLATE,
                well,
                model_hash=MODEL,
                series=series,
                onset=onset,
                episode=0,
                now=time.time() + (1000 if well == first_shown else 0),
            )
    for well in sorted(onset_wells):
        store.record_alert(conn, "onset", f"onset in {well}", plate=PLATE, well=well)
    store.beat(conn, state="watching", detail="idle", queued=0, interval_s=3600.0)
    conn.close()
    for t in range(N_TIMEPOINTS - REAL_IMAGES // N_FIELDS, N_TIMEPOINTS):
        for f in range(1, N_FIELDS + 1):
            px = rng.normal(2000, 300, size=(side, side)).clip(0, 65535).astype(np.uint16)
            tifffile.imwrite(images / f"{PLATE}_{first_shown}_f{f}_t{t:03d}.tif", px)
    print(f"built {db} in {time.perf_counter() - t_build:.0f} s ({db.stat().st_size / 1e6:.0f} MB)")
    return first_shown


def _cam_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    arr = np.zeros((128, 128, 3), np.uint8)
    arr[..., 0] = 200
    Image.fromarray(arr, "RGB").save(buf, format="PNG")
    return buf.getvalue()


APPTEST = """
import os, sys, time
from streamlit.testing.v1 import AppTest
os.environ["STEMWATCH_DB"] = sys.argv[1]
app, mode = sys.argv[2], sys.argv[3]
at = AppTest.from_file(app, default_timeout=300)
t0, c0 = time.perf_counter(), time.process_time()
at.run()
took, cpu = time.perf_counter() - t0, time.process_time() - c0
assert not at.exception, at.exception
assert any("Plate" in t.value for t in at.title), [t.value for t in at.title]
t1 = time.perf_counter()
if mode != "profile":
    at.run()
print(f"RESULT {took:.3f} {time.perf_counter() - t1:.3f} {cpu:.3f}")
if mode == "profile":
    import pstats
    stats = pstats.Stats(sys.argv[4])
    stats.sort_stats("cumulative").print_stats(r"(dashboard|stemwatch)/", 30)
"""

# AppTest runs the page in a thread of its own: the profiler is started inside it
PROFILED_APP = """
import cProfile, runpy
cProfile.run("runpy.run_path({app!r}, run_name='__main__')", {stats!r})
"""


def app_script() -> str:
    """The dashboard script of the stemwatch that is imported (PYTHONPATH may point at
    another checkout, to measure an older version)."""
    import dashboard

    return str(Path(dashboard.__file__).parent / "app.py")


def apptest_first_render(db: Path, *, profile: bool = False) -> tuple[float, float, float]:
    """Seconds of the first run (cold: a fresh process), of the second (warm caches), and the
    process's CPU seconds in the first."""
    with tempfile.TemporaryDirectory() as tmp:
        app, stats = app_script(), str(Path(tmp) / "page.prof")
        if profile:
            wrapper = Path(tmp) / "profiled_app.py"
            wrapper.write_text(PROFILED_APP.format(app=app, stats=stats))
            app = str(wrapper)
        run = subprocess.run(
            [sys.executable, "-c", APPTEST, str(db), app, "profile" if profile else "t", stats],
            check=False,
            capture_output=True,
            text=True,
        )
    if run.returncode != 0:
        raise SystemExit(f"AppTest run failed:\n{run.stderr[-3000:]}")
    out = run.stdout
    result, _, profile_text = out.partition("RESULT")[2].partition("\n")
    if profile:
        print(profile_text)
    cold, warm, cpu = result.split()
    return float(cold), float(warm), float(cpu)


# drawn: the plate heatmap and the well's chart have SVG marks, both tables are on screen and
# the well is named (one script call per poll: polling must not slow the page it waits for)
DRAWN_JS = """
const charts = [...document.querySelectorAll("[data-testid='stVegaLiteChart']")];
const drawn = charts.filter((c) => c.querySelector("svg.marks path")).length;
return drawn >= 2 && document.querySelectorAll("[data-testid='stDataFrame']").length >= 2
    && document.body.innerText.includes("Well " + arguments[0]);
"""


@dataclass(frozen=True)
class Render:
    wall_s: float  # navigation until drawn
    server_cpu_s: float  # CPU seconds of the server process meanwhile
    browser_cpu_s: float  # CPU seconds of every Chromium process meanwhile


@dataclass(frozen=True)
class BrowserRun:
    ready_s: float  # server start until its health endpoint answers
    first: Render  # on a fresh server, in a fresh browser profile (nothing cached)
    reload: Render  # the same page again: server and browser warm
    first_known: Render  # on a fresh server, in a browser that has shown the dashboard before


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its live descendants,
    from /proc (Linux; 0 elsewhere). Ended children count only where they were reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid: (parent, cpu seconds)
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # ended meanwhile
            continue
        # after the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14)
        cpu = sum(int(f) for f in fields[11:15]) / ticks
        stats[int(proc.name)] = (int(fields[1]), cpu)
    tree, total = {root}, 0.0
    grew = True
    while grew:
        grew = False
        for pid, (parent, _) in stats.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    for pid in tree:
        total += stats.get(pid, (0, 0.0))[1]
    return total


def restart_on(port: int, start: Any) -> Any:
    """A server started by ``start()`` on the port another one just left, once it is ready
    (an older stemwatch refuses a port in TIME_WAIT for up to a minute: retried)."""
    deadline = time.monotonic() + 120
    while True:
        server = start()
        try:
            server.wait_ready(timeout_s=300)
            return server
        except RuntimeError as exc:
            server.stop()
            if "already in use" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def browser_first_render(db: Path, work: Path, well: str) -> BrowserRun:
    from dashboard_browser import DashboardServer, chrome, find_browser, free_port
    from selenium.webdriver.support.ui import WebDriverWait

    browser = find_browser()
    if browser is None:
        raise SystemExit("chromium/chromedriver missing: run scripts/ensure-browser.sh")
    os.environ["SE_OFFLINE"] = "true"
    driver = chrome(browser, width=1280, height=800)
    port = free_port()  # both servers on one port: the browser's cache is per address

    def render(server: DashboardServer) -> Render:
        srv, chromium = server.proc.pid, driver.service.process.pid
        c0 = (tree_cpu_s(srv), tree_cpu_s(chromium))
        t0 = time.perf_counter()
        driver.get(server.url)
        WebDriverWait(driver, 300, poll_frequency=0.02).until(
            lambda d: d.execute_script(DRAWN_JS, well)
        )
        took = time.perf_counter() - t0
        return Render(took, tree_cpu_s(srv) - c0[0], tree_cpu_s(chromium) - c0[1])

    try:
        t_start = time.perf_counter()
        server = DashboardServer(db, port, work / "server.log")
        try:
            server.wait_ready(timeout_s=300)
            ready = time.perf_counter() - t_start
            first, reload = render(server), render(server)
        finally:
            server.stop()
        driver.get("about:blank")
        server = restart_on(port, lambda: DashboardServer(db, port, work / "server2.log"))
        try:
            known = render(server)
        finally:
            server.stop()
        return BrowserRun(ready, first, reload, known)
    finally:
        driver.quit()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="reuse (or build here) the big database")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image-side", type=int, default=2048)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = args.db or work / "big.db"
        images = db.parent / f"{db.stem}-images"
        if db.exists():
            from stemwatch import store

            store.open_db(db).close()  # built by an older stemwatch: migrated, as the daemon would
            with store.open_db(db, readonly=True) as conn:
                well = store.list_onsets(conn, PLATE)[0].well
        else:
            well = build(db, images, args.image_side)
        print(f"load average before: {os.getloadavg()[0]:.2f} (2 cores: above ~0.5 is shared)")
        if args.profile:
            apptest_first_render(db, profile=True)
        app = [apptest_first_render(db) for _ in range(args.repeat)]
        print(_line("AppTest first run (cold, fresh process)", [a[0] for a in app]))
        print(_line("  its CPU seconds", [a[2] for a in app], target=False))
        print(_line("AppTest second run (warm caches)", [a[1] for a in app]))
        if not args.skip_browser:
            web = [browser_first_render(db, work, well) for _ in range(args.repeat)]
            print(_line("server start until ready", [w.ready_s for w in web], target=False))
            _renders("browser first render (fresh server, fresh profile)", [w.first for w in web])
            _renders(
                "browser first render (fresh server, known browser)", [w.first_known for w in web]
            )
            _renders("browser reload (warm server)", [w.reload for w in web])
        print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def _renders(what: str, runs: list[Render]) -> None:
    print(_line(what, [r.wall_s for r in runs]))
    print(_line("  server CPU seconds in it", [r.server_cpu_s for r in runs], target=False))
    print(_line("  browser CPU seconds in it", [r.browser_cpu_s for r in runs], target=False))


def _line(what: str, xs: list[float], *, target: bool = True) -> str:
    med = statistics.median(xs)
    spread = f"{min(xs):.2f}-{max(xs):.2f}"
    line = f"{what}: median {med:.2f} s (range {spread}, n={len(xs)})"
    if not target:
        return line
    return f"{line}; target <= {TARGET_S} s: {'met' if med <= TARGET_S else 'NOT met'}"


if __name__ == "__main__":
    raise SystemExit(main())

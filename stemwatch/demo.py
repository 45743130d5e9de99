"""The demo: the whole system on a synthetic plate, on embedded defaults.

A synthetic microscope writes a plate time-lapse into ``<workdir>/incoming`` the way real
instruments do; the monitor daemon watches that folder with the bundled model and writes
``<workdir>/stemwatch.db``; the dashboard serves that database. Where no bundled model exists
and torch is installed, a tiny model is trained and exported first (about a minute on CPU).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from stemwatch import store
from stemwatch.core.errors import StemwatchError
from stemwatch.synth.acquire import AcquisitionSpec
from stemwatch.synth.spec import PlateSpec

log = logging.getLogger(__name__)


DEMO_PLATE = PlateSpec(
    wells=24, n_fields=2, n_timepoints=12, size=768, induction_h=6.0, plate_name="DEMO01"
)
"""The demo's plate: 24 wells imaged every 6 h, every other column induced at 6 h."""


@dataclass(frozen=True)
class DemoPlan:
    """What the demo acquires (``plate``, one pass every ``interval_s`` real seconds) and
    serves (the dashboard on ``port``; None: no dashboard)."""

    workdir: Path
    plate: PlateSpec = DEMO_PLATE
    interval_s: float = 8.0
    port: int | None = 8501
    linger: bool = True
    acquisition: AcquisitionSpec = field(default_factory=AcquisitionSpec)  # interval_s wins

    @property
    def incoming(self) -> Path:
        return self.workdir / "incoming"

    @property
    def database(self) -> Path:
        return self.workdir / "stemwatch.db"

    def previous_run(self) -> list[Path]:
        """What an earlier demo left in the workdir: its images and its database."""
        db = self.database
        candidates = [self.incoming, db, Path(f"{db}-wal"), Path(f"{db}-shm")]
        return [p for p in candidates if p.exists()]


def start_fresh(plan: DemoPlan) -> list[Path]:
    """Remove the previous run's images and database (a second demo would otherwise replay
    over them: an old finished plate and old alerts from the first second). The trained demo
    model, if any, is kept. Returns what was removed."""
    removed = plan.previous_run()
    for p in removed:
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    return removed


def find_or_build_model(workdir: Path, model: Path | None) -> Path:
    """The model to run: ``model``, else the bundled one, else a tiny one trained now."""
    from stemwatch.core.modelfile import bundled_model_path

    if model is not None:
        return model
    try:
        return bundled_model_path()
    except StemwatchError as missing:
        try:
            import torch  # noqa: F401
        except ImportError:
            raise StemwatchError(
                f"{missing}; or install the trainer (pip install -e '.[cpu,train]') so the demo "
                "can train a tiny model itself"
            ) from None
    return train_tiny_model(workdir / "model")


def train_tiny_model(out: Path) -> Path:
    """Generate a small labelled set, train the fast default on it and export it to ONNX."""
    from stemwatch.core.config import validate_mapping
    from stemwatch.synth.dataset import generate_dataset
    from trainer.config import TrainerConfig
    from trainer.export import export_onnx
    from trainer.train import run_training

    onnx_path = out / "demo-model.onnx"
    if onnx_path.is_file():
        return onnx_path
    log.info("no bundled model: training a tiny one in %s (about a minute)", out)
    manifest = generate_dataset(out / "data", n_experiments=2, wells_per_class=4, size=512, seed=1)
    cfg = validate_mapping(
        TrainerConfig,
        {
            "data": {"manifest": manifest},
            "runtime": {"out_dir": out / "run"},
            "optim": {"epochs": 6},
        },
        "demo model",
    )
    summary = run_training(cfg, overwrite=True)  # the demo's own folder: a rerun replaces it
    export_onnx(Path(summary["best_checkpoint"]), onnx_path)
    return onnx_path


def start_dashboard(database: Path, port: int) -> subprocess.Popen[bytes]:
    """Serve the dashboard for ``database`` in a child process."""
    from stemwatch.commands.dashboard import streamlit_argv

    argv = streamlit_argv(database, port=port, address="127.0.0.1")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL)


def run_demo(
    plan: DemoPlan, *, model: Path | None = None, stop: threading.Event | None = None
) -> int:
    """Acquire, watch, store and serve until the acquisition ends (and Ctrl-C, with linger)."""
    from dataclasses import replace

    from monitor.config import MonitorConfig
    from monitor.daemon import Daemon
    from stemwatch.synth.acquire import acquire_in_thread

    stop = stop or threading.Event()
    removed = start_fresh(plan)
    if removed:
        print(
            f"stemwatch demo: starting fresh in {plan.workdir}: removed the previous run's "
            + ", ".join(p.name for p in removed)
        )
    plan.incoming.mkdir(parents=True, exist_ok=True)
    model_path = find_or_build_model(plan.workdir, model)
    config = MonitorConfig.model_validate(
        {
            "folder": plan.incoming,
            "database": plan.database,
            "inference": {"model": model_path},
            "watch": {"quiet_period_s": 1.0},
        }
    )
    daemon_stop = threading.Event()  # the daemon stops once everything acquired is recorded
    daemon = Daemon(config, stop=daemon_stop)
    daemon_thread = threading.Thread(target=daemon.run, name="stemwatch-daemon", daemon=True)
    daemon_thread.start()
    dashboard = None
    if plan.port is not None:
        dashboard = start_dashboard(plan.database, plan.port)
        log.info("dashboard: http://127.0.0.1:%d", plan.port)
    acquisition = acquire_in_thread(
        plan.incoming, plan.plate, replace(plan.acquisition, interval_s=plan.interval_s)
    )
    try:
        while acquisition.is_alive() and not stop.is_set():
            acquisition.join(0.5)
        if acquisition.error is not None:
            raise StemwatchError(f"synthetic acquisition failed: {acquisition.error}")
        result = acquisition.result
        paths = sorted(result.final_paths()) if result else []
        truth = result.truth if result else ()
        _wait_until_recorded(plan.database, paths, stop, timeout_s=120.0)
        daemon_stop.set()  # finish the batch in flight, write the last wells' onsets
        daemon_thread.join(timeout=60)
        print(summary(plan, len(paths), [w.condition for w in truth]))
        if plan.linger and dashboard is not None:
            print(f"dashboard at http://127.0.0.1:{plan.port} — Ctrl-C to stop")
            while not stop.is_set() and dashboard.poll() is None:
                stop.wait(0.5)
    finally:
        acquisition.stop()
        stop.set()
        daemon_stop.set()
        daemon_thread.join(timeout=60)
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=20)
    return 0


def summary(plan: DemoPlan, n_files: int, conditions: Iterable[str]) -> str:
    """The end-of-demo line: images, the database's figures, onsets in wells (reset ones not
    counted, as the dashboard shows them)."""
    conditions = list(conditions)
    with closing(store.open_db(plan.database, readonly=True)) as conn:
        c = store.counts(conn)
        wells = {(o.plate, o.well) for o in store.list_onsets(conn, include_reset=False)}
    n_induced = sum(cond == "induced" for cond in conditions)
    rewrites = (
        f" and {c.superseded} re-acquired (the older version replaced)" if c.superseded else ""
    )
    return (
        f"stemwatch demo: {n_files} image files acquired into {plan.incoming}; "
        f"{c.done} analysed, {c.failed} failed{rewrites}; database {plan.database}; "
        f"onset flagged in {len(wells)} of {len(conditions)} wells ({n_induced} induced)"
    )


def _wait_until_recorded(
    database: Path, paths: list[Path], stop: threading.Event, timeout_s: float
) -> None:
    """Until every file, as it is on disk now (re-acquisitions included), is recorded."""
    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        if database.is_file():
            with closing(store.open_db(database, readonly=True)) as conn:
                if all(_recorded(conn, p) for p in paths):
                    return
        stop.wait(0.5)
    if not stop.is_set():
        log.warning("demo: gave up waiting for the daemon after %.0f s", timeout_s)


def _recorded(conn: store.Database, path: Path) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True  # gone: nothing to wait for
    version = store.FileVersion(str(path.resolve()), st.st_size, st.st_mtime_ns)
    return store.already_recorded(conn, version) is not None

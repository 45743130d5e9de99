"""The demo: the whole system on a synthetic plate, on embedded defaults.

A synthetic microscope writes a plate time-lapse into ``<workdir>/incoming`` the way real
instruments do; the monitor daemon watches that folder with the bundled model and writes
``<workdir>/stemwatch.db``; the dashboard serves that database. Where no bundled model exists
and torch is installed, a tiny model is trained and exported first (about a minute on CPU).
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from stemwatch.core.errors import StemwatchError
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

    @property
    def incoming(self) -> Path:
        return self.workdir / "incoming"

    @property
    def database(self) -> Path:
        return self.workdir / "stemwatch.db"


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
    manifest = generate_dataset(out / "data", size=512, seed=1)
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
    from monitor.config import MonitorConfig
    from monitor.daemon import Daemon
    from stemwatch import store
    from stemwatch.synth.acquire import AcquisitionSpec, acquire_in_thread

    stop = stop or threading.Event()
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
    daemon = Daemon(config, stop=stop)
    daemon_thread = threading.Thread(target=daemon.run, name="stemwatch-daemon", daemon=True)
    daemon_thread.start()
    dashboard = None
    if plan.port is not None:
        dashboard = start_dashboard(plan.database, plan.port)
        log.info("dashboard: http://127.0.0.1:%d", plan.port)
    acquisition = acquire_in_thread(
        plan.incoming, plan.plate, AcquisitionSpec(interval_s=plan.interval_s)
    )
    try:
        acquisition.join()
        if acquisition.error is not None:
            raise StemwatchError(f"synthetic acquisition failed: {acquisition.error}")
        result = acquisition.result
        expected = len(result.final_paths()) if result else 0
        truth = result.truth if result else ()
        _wait_until_processed(plan.database, expected, stop, timeout_s=120.0)
        with closing(store.open_db(plan.database, readonly=True)) as conn:
            c = store.counts(conn)
            onsets = store.list_onsets(conn)
        n_induced = sum(w.condition == "induced" for w in truth)
        print(
            f"stemwatch demo: {expected} images acquired into {plan.incoming}; database "
            f"{plan.database}: {c}; onset flagged in {len(onsets)} of {len(truth)} wells "
            f"({n_induced} induced)"
        )
        if plan.linger and dashboard is not None:
            print(f"dashboard at http://127.0.0.1:{plan.port} — Ctrl-C to stop")
            while not stop.is_set() and dashboard.poll() is None:
                stop.wait(0.5)
    finally:
        acquisition.stop()
        stop.set()
        daemon_thread.join(timeout=60)
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=20)
    return 0


def _wait_until_processed(
    database: Path, expected: int, stop: threading.Event, timeout_s: float
) -> None:
    from stemwatch import store

    deadline = time.monotonic() + timeout_s
    while not stop.is_set() and time.monotonic() < deadline:
        if database.is_file():
            with closing(store.open_db(database, readonly=True)) as conn:
                c = store.counts(conn)
            if c.done + c.failed >= expected:
                return
        stop.wait(0.5)
    log.warning("demo: gave up waiting for the daemon after %.0f s", timeout_s)

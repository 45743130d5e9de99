"""The thin path, each step real: synthetic images -> trained CNN -> ONNX -> daemon on a
watched folder -> SQLite -> dashboard page."""

from __future__ import annotations

import threading
from contextlib import closing
from pathlib import Path

import pytest

pytest.importorskip("torch")

from monitor.config import MonitorConfig
from monitor.daemon import Daemon
from stemwatch import store
from stemwatch.cli import main
from stemwatch.synth.dataset import generate_dataset
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec

TRAIN_YAML = """
data:
  manifest: {manifest}
  tiling: {{downsample: 2, tile_size: 64, max_tiles: 16}}
split: {{group_by: well, test_fraction: 0.25, val_fraction: 0.25}}
model: {{architecture: fastnet}}
optim: {{epochs: 2, batch_size: 32, patience: 2}}
runtime: {{out_dir: {out}, threads: 2, progress: false}}
"""


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e-model")
    manifest = generate_dataset(
        root / "data",
        n_experiments=2,
        wells_per_class=2,
        fields_per_well=1,
        timepoints_h=(0, 24, 48),
        size=128,
        seed=3,
    )
    cfg = root / "train.yaml"
    cfg.write_text(TRAIN_YAML.format(manifest=manifest, out=root / "run"))
    assert main(["train", "--config", str(cfg)]) == 0
    onnx_path = root / "model.onnx"
    images = sorted((root / "data").rglob("*.tif"))[:3]
    argv = ["export", str(root / "run" / "best.pt"), "-o", str(onnx_path)]
    assert main([*argv, "--parity-images", *map(str, images)]) == 0
    assert onnx_path.is_file() and not Path(f"{onnx_path}.data").exists()
    return onnx_path


def test_thin_path_end_to_end(exported_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    truth = generate_plate(
        folder, PlateSpec(wells=["A01", "A02"], n_fields=1, n_timepoints=3, size=128, seed=5)
    )
    n_images = sum(1 for _ in folder.rglob("*.tif"))
    assert n_images == 6, truth
    db = tmp_path / "results.db"
    config = MonitorConfig.model_validate(
        {
            "folder": folder,
            "database": db,
            "inference": {"model": exported_model},
            "watch": {"quiet_period_s": 0.2},
        }
    )
    summary = Daemon(config, once=True, stop=threading.Event()).run()
    assert summary.done == n_images and summary.failed == 0

    with closing(store.open_db(db, readonly=True)) as conn:
        assert store.counts(conn).done == n_images
        (plate_summary,) = store.list_plates(conn)
        plate = plate_summary.plate
        assert plate_summary.n_images == n_images
        wells = store.well_summary(conn, plate)
        assert {w.well for w in wells} == {"A01", "A02"}
        series = store.well_series(conn, plate, "A01")
        assert len(series) == 3
        assert all(0.0 <= p.probability <= 1.0 for p in series)

    from streamlit.testing.v1 import AppTest

    from stemwatch.commands.dashboard import app_path

    app = AppTest.from_file(str(app_path()), default_timeout=60)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEMWATCH_DB", str(db))
        app.run()
    assert not app.exception, app.exception
    page_text = " ".join(str(e.value) for e in app.markdown) + " ".join(
        str(e.value) for e in app.title
    )
    assert plate in page_text or any(plate in str(s.value) for s in app.selectbox)

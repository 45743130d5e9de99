"""Re-analysis: plan, score (workers, no database), one writer; resumable; the daemon's model
stays the default view; files changed since they were analysed are not scored."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from monitor_helpers import image_name, make_config, write_tiff
from onnx_models import build_classifier, tiny_metadata

from monitor.daemon import Daemon
from monitor.inference import LoadedModel, load_model
from monitor.onset import OnsetConfig
from monitor.reanalyse import (
    Recorder,
    Rescored,
    Unscorable,
    plan,
    reanalyse,
    score_chunk,
    score_tasks,
)
from stemwatch import store
from stemwatch.core.errors import ImageReadError, StemwatchError

WELLS = ["A01", "A02", "B01"]


@pytest.fixture
def analysed(tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel) -> Path:
    """A database the daemon filled: 3 wells x 4 time points, scored by the tiny model."""
    cfg = make_config(tmp_path, tiny_model_path)
    for i, well in enumerate(WELLS):
        for hour in range(4):
            write_tiff(cfg.folder / image_name(well, hour=9 + hour), seed=10 * i + hour)
    summary = Daemon(cfg, once=True, model=tiny_model).run()
    assert summary.done == 12
    return cfg.database


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    path = tmp_path_factory.mktemp("other") / "other.onnx"
    meta = tiny_metadata(tile_size=16, downsample=4, name="lab-v1")
    return load_model(
        build_classifier(path, tile_size=16, brightness_gain=8, seed=5, metadata=meta)
    )


def test_reanalysis_adds_a_model_beside_the_daemons(
    analysed: Path, tiny_model: LoadedModel, other: LoadedModel
) -> None:
    with store.open_db(analysed) as db:
        summary = reanalyse(db, other)
        assert (summary.planned, summary.scored, summary.unscorable) == (12, 12, [])
        assert summary.wells_updated == 3 and not summary.interrupted
        assert store.count_unscored(db, other.model_hash) == 0
        for well in WELLS:
            mine = store.well_series(db, "P1", well, model_hash=other.model_hash)
            theirs = store.well_series(db, "P1", well)  # the default view
            assert len(mine) == len(theirs) == 4
            assert {p.model_hash for p in theirs} == {tiny_model.model_hash}
            shown = store.images_for_well(db, "P1", well)
            assert {i.model_hash for i in shown} == {tiny_model.model_hash}
            scored = store.images_for_well(db, "P1", well, model_hash=other.model_hash)
            assert all(i.n_tiles == 16 for i in scored)  # tiled by the new model's recipe
        assert store.daemon_model_hash(db) == tiny_model.model_hash
        # the daemons' models stay the daemons'; the run is recorded with its model
        assert {m.model_hash for m in store.list_models(db)} == {tiny_model.model_hash}
        (run,) = store.reanalyses(db)
        assert (run.model_hash, run.name, run.planned, run.scored) == (
            other.model_hash,
            other.metadata.name,
            12,
            12,
        )
        assert run.interrupted is False and run.finished_at is not None
        assert store.find_models(db, other.metadata.name) == [other.model_hash]
        again = reanalyse(db, other)  # nothing left: nothing scored twice
        assert (again.planned, again.scored) == (0, 0)


def test_an_interrupted_run_resumes_where_it_stopped(analysed: Path, other: LoadedModel) -> None:
    stop = threading.Event()
    with store.open_db(analysed) as db:
        first = reanalyse(
            db,
            other,
            commit_images=2,
            decode_workers=1,
            batch_tiles=16,
            progress=lambda n: stop.set(),
            stop=stop,
        )
        assert first.interrupted and 0 < first.scored < 12
        assert store.reanalyses(db)[0].interrupted is True
        # every well the first run touched has a series, even a half-scored one
        assert first.wells_updated >= 1
        second = reanalyse(db, other)
        assert second.planned == 12 - first.scored and second.scored == second.planned
        assert store.count_unscored(db, other.model_hash) == 0
        for well in WELLS:
            assert len(store.well_series(db, "P1", well, model_hash=other.model_hash)) == 4


def test_changed_and_missing_files_are_not_scored(analysed: Path, other: LoadedModel) -> None:
    with store.open_db(analysed) as db:
        tasks = plan(db, other.model_hash, ["P1"])
        by_name = {Path(t.path).name: t for t in tasks}
        changed = Path(by_name[image_name("A01", hour=9)].path)
        write_tiff(changed, seed=999)  # rewritten in place: another content
        gone = Path(by_name[image_name("A02", hour=10)].path)
        gone.unlink()
        summary = reanalyse(db, other, plates=["P1"])
        reasons = {Path(u.path).name: u.reason for u in summary.unscorable}
        assert set(reasons) == {changed.name, gone.name}
        assert "changed since it was analysed" in reasons[changed.name]
        assert reasons[gone.name] == "missing"
        assert summary.scored == 10 and summary.remaining == 0
        assert store.count_unscored(db, other.model_hash) == 2  # tried again next run


def test_workers_score_out_of_order_and_one_writer_records(
    analysed: Path, other: LoadedModel, tmp_path: Path
) -> None:
    """The contract another engine (a Dask cluster) uses: chunks scored anywhere, in any
    order, from a model path; one Recorder writes."""
    with store.open_db(analysed) as db:
        tasks = plan(db, other.model_hash)
        chunks = [tasks[i : i + 5] for i in range(0, len(tasks), 5)]
        results = [score_chunk(c, str(other.path), model_hash=other.model_hash) for c in chunks]
        recorder = Recorder(db, other.model_hash, OnsetConfig(), tasks)
        for r in reversed(results):
            recorder.record(r)
        summary = recorder.finish()
        assert summary.scored == 12 and summary.wells_updated == 3
        local = score_tasks(tasks, other)
        by_id = {r.image_id: r for rs in results for r in rs}
        for r in local:
            assert isinstance(r, Rescored)
            remote = by_id[r.image_id]
            assert isinstance(remote, Rescored)
            assert remote.probability == pytest.approx(r.probability, abs=1e-6)
        with pytest.raises(StemwatchError, match="same file"):
            score_chunk(tasks[:1], str(other.path), model_hash="0" * 64)


def test_an_image_smaller_than_a_tile_is_unscorable(tmp_path: Path) -> None:
    small = write_tiff(tmp_path / "small.tif", seed=1, size=32)
    model = load_model(build_classifier(tmp_path / "m.onnx", tile_size=32, downsample=4))
    task = store.ImageToScore(1, str(small), None, None, "P", "A01")
    (result,) = score_tasks([task], model)
    assert isinstance(result, Unscorable) and "smaller than one tile" in result.reason


def test_a_file_of_several_planes_is_rescored_on_the_plane_the_daemon_analysed(
    tmp_path: Path,
) -> None:
    import tifffile

    from monitor.reanalyse import recorded_page
    from stemwatch.core.imaging import check_file, decode

    stack = np.zeros((1, 3, 4, 8, 8), np.uint16)  # T, C, Z
    for _, c, z in np.ndindex(1, 3, 4):
        stack[0, c, z] = 10 * c + z
    path = tmp_path / "czyx.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "TCZYX"})
    f = check_file(path, path.read_bytes())

    def pixel(channel: int | None, z: int | None) -> int:
        task = store.ImageToScore(1, str(path), None, None, "P", "A01", channel=channel, z=z)
        return int(decode(f, page=recorded_page(task, f)).pixels[0, 0])

    assert pixel(None, None) == 0  # recorded before v6: the first plane, as then
    assert pixel(2, 2) == 11  # channel 2, the middle of 4 planes
    assert pixel(3, 4) == 23  # channel 3, the last plane
    with pytest.raises(ImageReadError, match="no focal plane 3"):
        pixel(1, 3)

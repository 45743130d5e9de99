"""Re-analysis on a real Dask cluster: a LocalCluster of 2 worker processes on localhost.

The workers read and score the files; this process plans and is the one writer; an
interrupted run resumes without scoring anything twice; the results equal the in-process
engine's; the command line reaches the cluster by its scheduler address.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from monitor_helpers import image_name, make_config, write_tiff
from onnx_models import build_classifier, tiny_metadata

from monitor.daemon import Daemon
from monitor.inference import LoadedModel, load_model
from monitor.onset import OnsetConfig
from monitor.reanalyse import (
    Recorder,
    Rescored,
    map_path,
    parse_path_map,
    plan,
    reanalyse,
    score_tasks,
)
from stemwatch import store
from stemwatch.cli import main as cli
from stemwatch.core.errors import ConfigError, StemwatchError

distributed = pytest.importorskip("distributed", reason="the cluster extra (dask) is absent")

from monitor.cluster import ClusterSpec, DaskEngine, run_dask  # noqa: E402

WELLS = ["A01", "A02", "B01"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.LocalCluster]:
    """Two worker processes, one thread each, on localhost only (no dashboard)."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # no fixed port, localhost only
    ) as c:
        yield c


@pytest.fixture
def analysed(tmp_path: Path, tiny_model_path: Path, tiny_model: LoadedModel) -> Path:
    """A database the daemon filled: 3 wells x 4 time points, scored by the tiny model."""
    cfg = make_config(tmp_path, tiny_model_path)
    for i, well in enumerate(WELLS):
        for hour in range(4):
            write_tiff(cfg.folder / image_name(well, hour=9 + hour), seed=10 * i + hour)
    assert Daemon(cfg, once=True, model=tiny_model).run().done == 12
    return Path(cfg.database)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    path = tmp_path_factory.mktemp("other") / "lab-v1.onnx"
    meta = tiny_metadata(tile_size=16, downsample=4, name="lab-v1")
    return load_model(
        build_classifier(path, tile_size=16, brightness_gain=8, seed=5, metadata=meta)
    )


def engine(cluster: distributed.LocalCluster, **kw: int) -> DaskEngine:
    return DaskEngine(ClusterSpec(scheduler=cluster.scheduler_address, **kw))


def test_two_workers_score_and_one_writer_records(
    cluster: distributed.LocalCluster, analysed: Path, other: LoadedModel
) -> None:
    with (
        store.open_db(analysed) as db,
        distributed.Client(cluster.scheduler_address) as client,
        distributed.get_task_stream(client) as stream,
    ):
        summary = reanalyse(db, other, engine=engine(cluster, chunk_images=2))
        assert (summary.planned, summary.scored, summary.unscorable) == (12, 12, [])
        assert summary.wells_updated == 3 and not summary.interrupted
        assert summary.engine == f"the Dask cluster at {cluster.scheduler_address}"
        assert store.count_unscored(db, other.model_hash) == 0
        # the same figures as in this process
        local = {r.image_id: r for r in score_tasks(plan(db, "0" * 64), other)}
        for well in WELLS:
            for image in store.images_for_well(db, "P1", well, model_hash=other.model_hash):
                mine = local[image.id]
                assert isinstance(mine, Rescored)
                assert image.probability == pytest.approx(mine.probability, abs=1e-6)
            series = store.well_series(db, "P1", well, model_hash=other.model_hash)
            assert len(series) == 4
        assert reanalyse(db, other, engine=engine(cluster)).planned == 0  # nothing twice
    rescoring = [t for t in stream.data if "stemwatch-rescore" in str(t["key"])]
    assert len(rescoring) == 6  # 12 images in chunks of 2
    assert len({t["worker"] for t in rescoring}) == 2  # both worker processes scored


def test_an_interrupted_cluster_run_resumes_without_scoring_twice(
    cluster: distributed.LocalCluster, analysed: Path, other: LoadedModel
) -> None:
    stop = threading.Event()
    with store.open_db(analysed) as db:
        first = reanalyse(
            db,
            other,
            engine=engine(cluster, chunk_images=2, in_flight=2),
            progress=lambda n: stop.set(),  # Ctrl-C after the first chunk is recorded
            stop=stop,
        )
        assert first.interrupted and 2 <= first.scored <= 4  # the chunks in flight finish
        second = reanalyse(db, other, engine=engine(cluster, chunk_images=5))
        assert second.planned == 12 - first.scored == second.scored
        assert store.count_unscored(db, other.model_hash) == 0
        runs = sorted(store.reanalyses(db), key=lambda r: r.started_at)
        assert [r.interrupted for r in runs] == [True, False]
        assert sum(r.scored or 0 for r in runs) == 12  # each image scored once in all


def test_a_worker_that_sees_another_model_stops_the_run(
    cluster: distributed.LocalCluster, analysed: Path, other: LoadedModel, tiny_model: LoadedModel
) -> None:
    with store.open_db(analysed) as db, distributed.Client(cluster.scheduler_address) as client:
        tasks = plan(db, other.model_hash)
        recorder = Recorder(db, other.model_hash, OnsetConfig(), tasks)
        impostor = replace(other, path=tiny_model.path)  # the workers find another file
        with pytest.raises(StemwatchError, match="give every worker the same file"):
            run_dask(client, impostor, tasks, recorder)
        assert store.count_unscored(db, other.model_hash) == 12  # nothing recorded
        spec = ClusterSpec(scheduler=cluster.scheduler_address)
        with pytest.raises(StemwatchError, match="give every worker the same file"):
            reanalyse(db, impostor, engine=DaskEngine(spec))
        (run,) = store.reanalyses(db)  # the failed run says so
        assert run.interrupted is True and run.scored == 0 and run.finished_at is not None


def test_command_line_on_the_cluster_and_its_errors(
    cluster: distributed.LocalCluster, analysed: Path, other: LoadedModel, tmp_path: Path
) -> None:
    base = ["reanalyse", str(analysed), "--model", str(other.path)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli([*base, "--scheduler", cluster.scheduler_address])
    assert code == 0, out.getvalue()
    assert "12 of 12 image(s) scored" in out.getvalue()
    assert f"in the Dask cluster at {cluster.scheduler_address}" in out.getvalue()
    for bad, message in (
        (["--workers", "x"], "--workers 'x': expected a number"),
        (["--workers", "2", "--scheduler", cluster.scheduler_address], "give one or the other"),
        (["--path-map", "/data"], "expected FROM=TO"),
    ):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert cli([*base, *bad]) != 0
        assert message in err.getvalue(), err.getvalue()


def test_path_map_reads_the_archive_where_it_is_mounted(
    cluster: distributed.LocalCluster, analysed: Path, other: LoadedModel
) -> None:
    folder = analysed.parent / "incoming"
    archive = analysed.parent / "archive"
    folder.rename(archive)  # the daemon's folder, now mounted elsewhere
    with store.open_db(analysed) as db:
        moved = reanalyse(db, other, engine=engine(cluster), path_map=[(str(folder), str(archive))])
        assert moved.scored == 12 and moved.unscorable == []
    assert map_path("/data/in/a.tif", [("/data/in/", "/arch")]) == "/arch/a.tif"
    assert map_path("/data/inbox/a.tif", [("/data/in", "/arch")]) == "/data/inbox/a.tif"
    with pytest.raises(ConfigError, match="FROM=TO"):
        parse_path_map(["=/x"])


def test_the_default_engine_starts_a_cluster_only_for_a_large_plan() -> None:
    from monitor.cluster import AutoEngine
    from monitor.reanalyse import LocalEngine

    local = LocalEngine(2)
    auto = AutoEngine(local, workers=4, min_images=500)
    assert auto.for_plan(499) is local  # worker start-up would cost more than it saves
    big = auto.for_plan(500)
    assert isinstance(big, DaskEngine) and big.spec.workers == 4 and big.spec.scheduler is None
    assert AutoEngine(local, workers=2).for_plan(10**6) is local  # 2 cores: faster in-process


def test_local_cluster_workers_ignore_the_terminals_ctrl_c() -> None:
    """Ctrl-C goes to the whole process group; the command handles it (the chunks in flight
    are recorded), so the workers it started must not die of it."""
    import signal

    from monitor.cluster import connect

    # A test run started in the background (nohup, `make &`) inherits an ignored SIGINT:
    # install the interactive handler so that "ours is back" can fail.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with connect(ClusterSpec(workers=1)) as client:
            dispositions = client.run(signal.getsignal, signal.SIGINT)
        assert list(dispositions.values()) == [signal.SIG_IGN]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # ours is back
    finally:
        signal.signal(signal.SIGINT, inherited)

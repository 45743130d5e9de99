"""The live acquisition simulator writes like an instrument: bursts, slow chunked writes,
temp-name-then-rename, rewrites; every file complete at the end; stoppable."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import tifffile
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from stemwatch.synth.acquire import AcquisitionSpec, acquire, acquire_in_thread
from stemwatch.synth.difficulty import SynthError
from stemwatch.synth.plate import plan_plate
from stemwatch.synth.spec import PlateSpec

PLATE = PlateSpec(wells=["A01", "A02", "B01"], n_fields=2, n_timepoints=2, size=64, seed=3)


class _Recorder(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        dest = str(getattr(event, "dest_path", "") or "")
        with self.lock:
            self.events.append((event.event_type, str(event.src_path), dest))


def test_every_image_lands_complete_with_instrument_write_patterns(tmp_path: Path) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    rec = _Recorder()
    observer = Observer()
    observer.schedule(rec, str(folder), recursive=True)
    observer.start()
    try:
        result = acquire(
            folder,
            PLATE,
            AcquisitionSpec(
                interval_s=0.6,
                burst=2,
                chunked_fraction=0.4,
                rename_fraction=0.4,
                rewrite_fraction=0.25,
                chunk_span_s=0.1,
            ),
            log_path=tmp_path / "acquire.jsonl",
        )
        time.sleep(0.5)
    finally:
        observer.stop()
        observer.join()

    plan = plan_plate(PLATE)
    expected = {
        folder / plan.filename(w, f, t) for w in plan.well_names for f in range(2) for t in range(2)
    }
    # every image recorded exactly once as a first write, each rewritten one once more
    firsts = Counter(Path(r.path) for r in result.records if not r.rewrite)
    assert set(firsts) == expected and set(firsts.values()) == {1}
    rewrites = Counter(Path(r.path) for r in result.records if r.rewrite)
    assert rewrites and set(rewrites.values()) == {1}
    modes = Counter(r.mode for r in result.records)
    assert {"burst", "chunked", "rename", "direct", "rewrite"} <= set(modes)
    assert modes["burst"] == 2 * 2  # two files land at once at the start of each pass

    # on disk: exactly the final files (no temp names left), each complete and readable
    on_disk = {p for p in folder.iterdir() if p.suffix == ".tif"}
    assert on_disk == expected
    assert not list(folder.glob("*.part"))
    for path in expected:
        r = next(x for x in reversed(result.records) if Path(x.path) == path)
        w, f, t = r.well, r.field - 1, r.timepoint
        want = plan.encode(w, f, t, take=1 if r.rewrite else 0)
        assert path.read_bytes() == want
        assert tifffile.imread(path).shape == (64, 64)
    # a rewrite is a new acquisition of the same field: new bytes
    path = next(iter(rewrites))
    r = next(x for x in result.records if Path(x.path) == path)
    assert plan.encode(r.well, r.field - 1, r.timepoint) != path.read_bytes()

    # the log has one line per record
    lines = [json.loads(x) for x in (tmp_path / "acquire.jsonl").read_text().splitlines()]
    assert [x["path"] for x in lines] == [r.path for r in result.records]

    # what a watcher saw: renamed files arrive as moves from the temp name
    moved_to = {Path(dest) for kind, _, dest in rec.events if kind == "moved"}
    renamed = {Path(r.path) for r in result.records if r.mode == "rename"}
    assert renamed and renamed <= moved_to
    assert all(src.endswith(".part") for kind, src, _ in rec.events if kind == "moved")
    chunked = {str(r.path) for r in result.records if r.mode == "chunked"}
    modified = Counter(src for kind, src, _ in rec.events if kind == "modified")
    assert any(modified[p] >= 2 for p in chunked)  # grew in several writes


def test_acquisition_in_a_thread_stops_between_files(tmp_path: Path) -> None:
    plate = PlateSpec(wells=["A01", "A02"], n_fields=1, n_timepoints=50, size=64, seed=1)
    th = acquire_in_thread(tmp_path, plate, AcquisitionSpec(interval_s=0.2))
    time.sleep(0.5)
    result = th.stop(timeout=10)
    assert not th.is_alive() and th.error is None
    assert result is not None and result.stopped_early
    assert 0 < len(result.records) < 100
    for r in result.records:  # whatever was written is complete
        assert tifffile.imread(r.path).shape == (64, 64)


def test_schedule_follows_the_speedup(tmp_path: Path) -> None:
    t0 = time.monotonic()
    plate = PlateSpec(wells=["A01", "A02"], n_fields=1, n_timepoints=3, interval_h=6.0, size=64)
    result = acquire(tmp_path, plate, AcquisitionSpec(speedup=6 * 3600 / 0.3))
    elapsed = time.monotonic() - t0
    passes = [max(r.wall_s for r in result.records if r.timepoint == t) for t in range(3)]
    assert passes[0] < passes[1] < passes[2]
    assert elapsed >= 0.6  # two intervals of 0.3 s
    assert min(r.wall_s for r in result.records if r.timepoint == 2) >= 0.6


def test_passes_that_cannot_keep_up_are_reported_once_with_their_own_duration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bug (issue 13, item 2): one warning per pass, the cumulative lag as if it were this
    pass's, and a `--speedup` knob the demo does not have."""
    plate = PlateSpec(wells=["A01", "A02", "A03"], n_fields=2, n_timepoints=5, size=64)
    spec = AcquisitionSpec(interval_s=0.01, burst=1, chunk_span_s=0.05)
    with caplog.at_level("WARNING", logger="stemwatch.synth.acquire"):
        result = acquire(tmp_path, plate, spec)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # the first overrun, then one summary
    assert "--speedup" not in " ".join(warnings)
    assert "longer interval between passes" in warnings[0]
    took = float(warnings[0].split(" took ")[1].split(" s")[0])
    # the figure is pass 1's own duration, not the lag accumulated since the start
    first_pass = [r.wall_s for r in result.records if r.timepoint == 0]
    second_start = min(r.wall_s for r in result.records if r.timepoint == 1)
    assert took <= second_start + 0.05 and took >= max(first_pass) - 0.05
    assert "4 passes took longer" in warnings[1] or "of 4 passes" in warnings[1]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"speedup": 0.0}, "speedup=0.0"),
        ({"interval_s": -1.0}, "interval_s=-1.0"),
        ({"rewrite_fraction": 1.5}, "rewrite_fraction=1.5"),
        ({"chunked_fraction": 0.7, "rename_fraction": 0.6}, "rename_fraction = 1.3"),
        ({"n_chunks": 0}, "n_chunks=0"),
    ],
)
def test_bad_acquisition_settings_name_the_value(kwargs: dict, needle: str) -> None:
    with pytest.raises(SynthError, match=needle):
        AcquisitionSpec(**kwargs)

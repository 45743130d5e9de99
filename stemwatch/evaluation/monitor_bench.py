"""Benchmarks of the monitor pipeline: where time goes, throughput, latency, backlog memory.

The model is the bundled ``models/stemwatch-default.onnx`` when present, else a stand-in built
here with ``onnx.helper`` (this needs the trainer extra, onnx and torch; the benchmark itself
runs without them): the FastNet layout of the registry (strided 3x3 stem, seven
depthwise-separable blocks 32-64-64-128-128-256-256, global average pooling, linear, softmax,
and the class-activation-map output the exporter adds; batch norm folded into the
convolutions) at 128-px tiles after x4 downsampling, so its cost per tile matches the default
architecture's (~25 M multiply-adds). The weights are random: only the cost is meaningful.

Figures (``run_bench`` returns them, ``stemwatch bench`` prints them):

* ``stages``: per-image milliseconds of the ingest step (reading the file once, hashing the
  bytes, the structure check, decoding), downsampling, normalising, tiling and inference, on
  one core;
* ``inference_only``: images/s of the model alone on those images' tiles, with the pipeline's
  inference thread settings;
* ``backlog``: images/s and peak RSS of ``stemwatch watch --once`` over N images in a
  subprocess (the whole daemon: scan, stability, hash, decode, prepare, infer, SQLite, onset);
* ``latency``: a writer closes ``rate_hz`` images per second (one by default) while the
  daemon watches; seconds from the close to the prediction's row in the database (median,
  95th percentile).

``size`` and the image counts (``backlog``, ``latency_images``, ``inference_images``,
``preprocess_images``, ``repeat``) scale a run from the full figures down to a smoke test.
"""

from __future__ import annotations

import io
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stemwatch import store
from stemwatch.core.errors import StemwatchError

log = logging.getLogger(__name__)


class BenchError(StemwatchError):
    """The benchmark cannot run as asked."""


# ------------------------------------------------------------------------------ the model


def build_standin_model(
    path: Path, *, tile_size: int = 128, downsample: int = 4, width: float = 1.0
) -> Path:
    """Write a FastNet-shaped ONNX classifier with random weights (needs onnx and torch).

    ``width`` scales every layer's channels (cost grows about with its square), to see how
    the pipeline behaves when inference rather than decoding dominates.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        from trainer.architectures.fastnet import FASTNET_BLOCKS
    except ImportError as exc:
        raise BenchError(
            f"building a stand-in model needs the trainer extra ({exc}); pass --model PATH, "
            "or pip install 'stemwatch[train]'"
        ) from None
    from stemwatch.core.imaging import NormalisationRecipe, TilingSpec
    from stemwatch.core.modelmeta import METADATA_KEY, ModelMetadata

    rng = np.random.default_rng(0)
    inits: list[Any] = []
    nodes: list[Any] = []

    def conv(x: str, cin: int, cout: int, *, k: int, stride: int, groups: int, relu: bool) -> str:
        name = f"c{len(nodes)}"
        w = rng.normal(0, (2.0 / (k * k * cin / groups)) ** 0.5, (cout, cin // groups, k, k))
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"{name}_w"))
        inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), f"{name}_b"))
        pad = k // 2
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{name}_w", f"{name}_b"],
                [f"{name}_y"],
                kernel_shape=[k, k],
                strides=[stride, stride],
                pads=[pad] * 4,
                group=groups,
            )
        )
        out = f"{name}_y"
        if relu:
            nodes.append(helper.make_node("Relu", [out], [f"{name}_r"]))
            out = f"{name}_r"
        return out

    ch = max(8, round(24 * width))
    x = conv("image", 1, ch, k=3, stride=2, groups=1, relu=True)
    for base_ch, stride in FASTNET_BLOCKS:
        out_ch = max(8, round(base_ch * width))
        y = conv(x, ch, ch, k=3, stride=stride, groups=ch, relu=True)
        y = conv(y, ch, out_ch, k=1, stride=1, groups=1, relu=False)
        if stride == 1 and ch == out_ch:
            nodes.append(helper.make_node("Add", [y, x], [f"{y}_add"]))
            y = f"{y}_add"
        nodes.append(helper.make_node("Relu", [y], [f"{y}_r"]))
        x, ch = f"{y}_r", out_ch
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["feat"], axis=1))
    fc_w = rng.normal(0, 0.05, (2, ch)).astype(np.float32)
    inits += [
        numpy_helper.from_array(fc_w, "fc_w"),
        numpy_helper.from_array(np.zeros(2, np.float32), "fc_b"),
    ]
    nodes.append(helper.make_node("Gemm", ["feat", "fc_w", "fc_b"], ["logits"], transB=1))
    nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
    # class activation map, as the exporter adds for GAP networks: (N, h, w) log-odds evidence
    cam_w = (fc_w[1] - fc_w[0]).reshape(1, ch, 1, 1).astype(np.float32)
    inits += [
        numpy_helper.from_array(cam_w, "cam_w"),
        numpy_helper.from_array(np.array([1], np.int64), "cam_axis"),
    ]
    nodes.append(helper.make_node("Conv", [x, "cam_w"], ["cam4"]))
    nodes.append(helper.make_node("Squeeze", ["cam4", "cam_axis"], ["cam"]))
    graph = helper.make_graph(
        nodes,
        "fastnet_standin",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, tile_size, tile_size])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", None, None]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(
        cam_output_name="cam",
        name="bench-standin-fastnet",
        architecture="fastnet",
        class_names=["undifferentiated", "differentiated"],
        positive_class="differentiated",
        tiling=TilingSpec(downsample=downsample, tile_size=tile_size),
        normalisation=NormalisationRecipe(),
        stemwatch_version="bench",
    )
    helper.set_model_props(model, {METADATA_KEY: meta.to_json()})
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def pick_model(
    explicit: Path | None, workdir: Path, standin_width: float | None = None
) -> tuple[Path, str]:
    """The model to benchmark and a one-line description of which one it is."""
    from stemwatch.core.modelfile import bundled_model_path

    if explicit is not None:
        return explicit, f"{explicit} (given)"
    if standin_width is None:
        try:
            bundled = bundled_model_path()
        except StemwatchError:
            standin_width = 1.0
        else:
            return bundled, f"{bundled} (bundled default)"
    path = build_standin_model(workdir / "standin-fastnet.onnx", width=standin_width)
    what = "the default architecture's cost" if standin_width == 1.0 else f"width x{standin_width}"
    return path, f"stand-in FastNet (random weights, {what}; not the bundled model)"


# ------------------------------------------------------------------------------ the images


def synthetic_plane(seed: int, size: int) -> np.ndarray:
    """A 16-bit brightfield-like plane: smooth illumination, colony blobs, shot noise."""
    rng = np.random.default_rng(seed)
    small = rng.normal(0, 1, (size // 64 + 1, size // 64 + 1)).astype(np.float32)
    blobs = np.kron(small, np.ones((64, 64), np.float32))[:size, :size]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    illum = 1.0 - 0.3 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    img = 20000 * illum + 3000 * blobs + rng.normal(0, 800, (size, size)).astype(np.float32)
    return np.clip(img, 0, 65535).astype(np.uint16)


def ome_tiff_bytes(plane: np.ndarray, compression: str | None) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, plane, compression=compression, ome=True, metadata={"axes": "YX"})
    return buf.getvalue()


def image_name(i: int) -> str:
    """IncuCyte-style names over a 96-well plate, 4 fields, consecutive time points."""
    well = f"{'ABCDEFGH'[(i // 4) % 96 // 12]}{(i // 4) % 12 + 1:02d}"
    t = i // 384
    return f"BENCH_{well}_{i % 4 + 1}_2026y01m{1 + t // 24:02d}d_{t % 24:02d}h00m.tif"


def write_backlog(
    folder: Path, n: int, *, size: int, compression: str | None, distinct: int = 16
) -> list[Path]:
    """``n`` image files in ``folder``: ``distinct`` different images, the rest hard links
    (each path is its own record; disk holds only ``distinct`` images)."""
    folder.mkdir(parents=True, exist_ok=True)
    bases = []
    for k in range(min(distinct, n)):
        p = folder / image_name(k)
        p.write_bytes(ome_tiff_bytes(synthetic_plane(k, size), compression))
        bases.append(p)
    paths = list(bases)
    for i in range(len(bases), n):
        p = folder / image_name(i)
        os.link(bases[i % len(bases)], p)
        paths.append(p)
    old = time.time() - 3600
    for p in bases:
        os.utime(p, (old, old))
    return paths


# ------------------------------------------------------------------------------ figures


@dataclass
class BenchResult:
    model: str
    provider: str = ""
    image_size: int = 2048
    stages_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    tiles_per_image: int = 0
    inference_only_ips: dict[str, float] = field(default_factory=dict)
    preprocess_only_ips: dict[str, float] = field(default_factory=dict)
    backlog: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_s: dict[str, float] = field(default_factory=dict)
    workers: str = ""  # the worker plan the daemon ran with
    cores: int = 0


def _timeit(fn: Any, repeat: int) -> tuple[float, Any]:
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, out


def bench_stages(path: Path, model: Any, repeat: int = 5) -> tuple[dict[str, float], int]:
    """Best-of-``repeat`` milliseconds of each stage for one image file, on this thread."""
    from stemwatch.core import imaging

    meta = model.metadata
    ms: dict[str, float] = {}
    ms["read"], data = _timeit(lambda: imaging.read_bytes(path), repeat)
    ms["hash"], _ = _timeit(lambda: imaging.hash_bytes(data), repeat)
    ms["check"], file = _timeit(lambda: imaging.check_file(path, data), repeat)
    ms["decode"], image = _timeit(lambda: imaging.decode(file), repeat)
    ms["downsample"], small = _timeit(
        lambda: imaging.downsample(image.pixels, meta.tiling.downsample), repeat
    )
    ms["normalise"], norm = _timeit(lambda: imaging.normalise(small, meta.normalisation), repeat)
    ms["tiles"], tiles = _timeit(lambda: imaging.make_tiles(norm, meta.tiling), repeat)
    ms["prepare_total"], _ = _timeit(
        lambda: imaging.prepare(image.pixels, meta.normalisation, meta.tiling), repeat
    )
    ms["inference"], (_, cams) = _timeit(lambda: model.predict_with_cam(tiles.data), repeat)
    if cams is not None:
        from monitor.inference import cam_mosaic, cam_png

        ms["cam_png"], _ = _timeit(
            lambda: cam_png(cam_mosaic(cams, tiles.origins, meta.tiling.tile_size)), repeat
        )
    ms.update(bench_writer(probs=model.predict(tiles.data), repeat=repeat))
    return {k: round(v, 2) for k, v in ms.items()}, len(tiles.data)


def bench_writer(probs: np.ndarray, repeat: int = 5, history: int = 200) -> dict[str, float]:
    """Best-of-``repeat`` milliseconds of the writer's two steps for one image: ``database``
    (its record and prediction, one transaction) and ``onset`` (its well's aggregation and
    onset update), in a well that already holds ``history`` images (4 fields per time point),
    on a SQLite file in a temporary folder."""
    from monitor.onset import OnsetConfig
    from monitor.wellseries import WellSeries
    from stemwatch.core.aggregate import score_image
    from stemwatch.core.platemeta import ImageLocation

    score = score_image(probs)
    pred = store.Prediction(
        "bench", score.probability, tile_sd=score.tile_sd, n_tiles=score.n_tiles
    )
    best = {"database": float("inf"), "onset": float("inf")}
    with tempfile.TemporaryDirectory(prefix="stemwatch-bench-db-") as tmp:
        db = store.open_db(Path(tmp) / "bench.db")
        wells = WellSeries(OnsetConfig(), "bench")
        for i in range(history + repeat):
            tp, fld = divmod(i, 4)
            loc = ImageLocation("P1", "A01", fld, tp, 600.0 * tp, "bench", time_basis="elapsed")
            version = store.FileVersion(f"/bench/{i}.tif", 1000, i, f"h{i}")
            t0 = time.perf_counter()
            image_id = store.record_result(db, version, loc, pred)
            t1 = time.perf_counter()
            wells.image_scored(db, image_id)
            t2 = time.perf_counter()
            if i >= history:
                best["database"] = min(best["database"], t1 - t0)
                best["onset"] = min(best["onset"], t2 - t1)
        db.close()
    return {k: v * 1000 for k, v in best.items()}


def bench_inference_only(
    model: Any, tiles: np.ndarray, n_images: int, workers: int, batch_tiles: int = 32
) -> float:
    """Images/s of the model alone on ``tiles`` (one image's), ``workers`` threads."""
    per_worker = max(1, n_images // workers)
    imgs_per_batch = max(1, batch_tiles // len(tiles))
    batch = np.concatenate([tiles] * imgs_per_batch)  # the pipeline's batch size
    model.predict(batch)

    def work() -> None:
        for _ in range(max(1, per_worker // imgs_per_batch)):
            model.predict(batch)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    done = workers * max(1, per_worker // imgs_per_batch) * imgs_per_batch
    return done / dt


def bench_preprocess_only(path: Path, model: Any, n_images: int, workers: int) -> float:
    """Images/s of the ingest step (read, hash, check, decode) + prepare alone, ``workers``
    threads."""
    from stemwatch.core import imaging

    meta = model.metadata

    def one() -> None:
        data = imaging.read_bytes(path)
        imaging.hash_bytes(data)
        image = imaging.decode(imaging.check_file(path, data))
        imaging.prepare(image.pixels, meta.normalisation, meta.tiling)

    per = max(1, n_images // workers)

    def work() -> None:
        for _ in range(per):
            one()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return per * workers / (time.perf_counter() - t0)


def _db_times(db: Path) -> list[tuple[str, float]]:
    if not db.is_file():
        return []
    try:
        with store.open_db(db, readonly=True) as conn:
            return store.prediction_times(conn)
    except store.StoreError:  # the daemon is still creating it
        return []


def bench_backlog(
    workdir: Path,
    model_path: Path,
    *,
    n: int,
    size: int,
    compression: str | None,
    config_text: str,
) -> dict[str, float]:
    """``stemwatch watch --once`` over ``n`` waiting images in a subprocess: rate and peak RSS."""
    tag = compression or "none"
    folder = workdir / f"backlog-{tag}"
    t0 = time.perf_counter()
    write_backlog(folder, n, size=size, compression=compression)
    log.info("backlog: wrote %d %s images in %.1f s", n, tag, time.perf_counter() - t0)
    db = workdir / f"backlog-{tag}.db"
    cfg = workdir / f"backlog-{tag}.yaml"
    cfg.write_text(config_text)
    cmd = [sys.executable, "-m", "stemwatch", "--log-level", "WARNING", "watch", str(folder)]
    cmd += ["--once", "--db", str(db), "--model", str(model_path), "--config", str(cfg)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise BenchError(f"backlog run failed (exit {proc.returncode}): {err.strip()[-500:]}")
    if f": {n} processed, 0 failed" not in out:  # the daemon's own count
        raise BenchError(f"backlog run did not process all {n} images: {out.strip()[-300:]}")
    times = sorted(t for _, t in _db_times(db))
    if len(times) != n:
        raise BenchError(f"backlog run stored {len(times)} predictions, expected {n}")
    span = times[-1] - times[0]
    cpu_s = usage.ru_utime + usage.ru_stime
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    return {
        "images": n,
        "images_per_s": round((n - 1) / span, 2) if span > 0 else float("nan"),
        "wall_s_incl_startup": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_ms_per_image": round(cpu_s * 1000 / n, 1),
    }


def bench_latency(
    workdir: Path,
    model: Any,
    *,
    n: int,
    size: int,
    compression: str | None,
    quiet_s: float,
    rate_hz: float = 1.0,
) -> dict[str, float]:
    """A writer closes ``rate_hz`` images/s (written in 4 chunks) while the daemon watches.

    Waits for the daemon's own events: its first scan before writing, its count of finished
    images before reading the database."""
    from monitor.config import MonitorConfig
    from monitor.daemon import Daemon

    folder = workdir / "live"
    folder.mkdir(parents=True, exist_ok=True)
    db = workdir / "live.db"
    cfg = MonitorConfig.model_validate(
        {
            "folder": folder,
            "database": db,
            "watch": {"quiet_period_s": quiet_s},
            "inference": {"model": model.path},
        }
    )
    payloads = [
        ome_tiff_bytes(synthetic_plane(100 + k, size), compression) for k in range(min(n, 8))
    ]
    stop = threading.Event()
    daemon = Daemon(cfg, stop=stop, model=model)
    runner = threading.Thread(target=daemon.run, name="bench-daemon")
    runner.start()
    closed: dict[str, float] = {}
    try:
        if not daemon.started.wait(60):
            raise BenchError("latency run: the daemon did not start within 60 s")
        for i in range(n):
            t_next = time.time() + 1.0 / rate_hz
            data = payloads[i % len(payloads)]
            path = folder / image_name(i)
            step = -(-len(data) // 4)
            with path.open("wb") as fh:
                for k in range(0, len(data), step):
                    fh.write(data[k : k + step])
                    fh.flush()
                    time.sleep(0.02)
            closed[str(path)] = time.time()
            time.sleep(max(0.0, t_next - time.time()))
        daemon.counts.wait_for(lambda c: c.done + c.failed >= n, quiet_s + 30)
    finally:
        stop.set()
        runner.join(60)
    lat = sorted(t - closed[p] for p, t in _db_times(db) if p in closed)
    if len(lat) < n:
        raise BenchError(f"latency run stored {len(lat)} of {n} images")
    return {
        "images": n,
        "rate_hz": rate_hz,
        "quiet_period_s": quiet_s,
        "median_s": round(statistics.median(lat), 3),
        "p95_s": round(float(np.percentile(lat, 95)), 3),
        "max_s": round(lat[-1], 3),
    }


def run_bench(
    *,
    model_path: Path | None = None,
    size: int = 2048,
    backlog: int = 2000,
    latency_images: int = 30,
    quiet_s: float = 2.0,
    compressions: tuple[str | None, ...] = (None, "zlib"),
    decode_workers: int | str = "auto",
    inference_workers: int | str = "auto",
    intra_op_threads: int | str = "auto",
    workdir: Path | None = None,
    skip: tuple[str, ...] = (),
    standin_width: float | None = None,
    repeat: int = 5,
    inference_images: int = 200,
    preprocess_images: int = 60,
    rate_hz: float = 1.0,
) -> BenchResult:
    """All figures; ``skip`` may name "backlog" and/or "latency".

    ``repeat``: best-of count of the per-stage timings; ``inference_images`` and
    ``preprocess_images``: images in each stage-alone throughput run; ``rate_hz``: images per
    second written in the latency run.
    """
    counts = {
        "size": size,
        "backlog": backlog,
        "latency-images": latency_images,
        "repeat": repeat,
        "inference-images": inference_images,
        "preprocess-images": preprocess_images,
    }
    for name, value in counts.items():
        if value < 1:
            raise BenchError(f"--{name} must be at least 1, got {value}")
    if rate_hz <= 0:
        raise BenchError(f"--rate must be above 0 images/s, got {rate_hz}")
    from monitor.config import InferenceConfig
    from monitor.inference import CUDA, load_model
    from monitor.workers import intra_op_threads as session_threads
    from monitor.workers import plan_workers
    from stemwatch.core.cores import usable_cores

    threads = InferenceConfig.model_validate(
        {
            "decode_workers": decode_workers,
            "inference_workers": inference_workers,
            "intra_op_threads": intra_op_threads,
        }
    )

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="stemwatch-bench-")
        workdir = Path(tmp.name)
    try:
        path, description = pick_model(model_path, workdir, standin_width)
        model = load_model(path, intra_op_threads=session_threads(threads))
        model.warmup(16)
        plan = plan_workers(threads, cores=usable_cores(), gpu=model.provider == CUDA)
        decode_workers, inference_workers = plan.decode_workers, plan.inference_workers
        result = BenchResult(model=description, provider=model.provider, image_size=size)
        result.workers, result.cores = plan.describe(), plan.cores
        config_text = (  # as given: the daemon sizes "auto" itself, as a user's would
            f"watch:\n  quiet_period_s: {quiet_s}\n"
            f"inference:\n  decode_workers: {threads.decode_workers}\n"
            f"  inference_workers: {threads.inference_workers}\n"
            f"  intra_op_threads: {threads.intra_op_threads}\n"
        )
        for comp in compressions:
            tag = comp or "none"
            sample = workdir / f"sample-{tag}.tif"
            sample.write_bytes(ome_tiff_bytes(synthetic_plane(1, size), comp))
            stages, n_tiles = bench_stages(sample, model, repeat)
            result.stages_ms[tag] = stages
            result.tiles_per_image = n_tiles
        from stemwatch.core.imaging import prepare, read_image

        tiles = prepare(
            read_image(sample).pixels, model.metadata.normalisation, model.metadata.tiling
        ).data
        for w in sorted({1, inference_workers, 2}):
            result.inference_only_ips[f"{w}_thread"] = round(
                bench_inference_only(model, tiles, inference_images, w), 2
            )
        for comp in compressions:
            tag = comp or "none"
            result.preprocess_only_ips[f"{tag}_{decode_workers}_thread"] = round(
                bench_preprocess_only(
                    workdir / f"sample-{tag}.tif", model, preprocess_images, decode_workers
                ),
                2,
            )
        if "backlog" not in skip:
            for comp in compressions:
                # each stage alone right before, under the same load, with the same threads
                alone = bench_inference_only(model, tiles, inference_images, inference_workers)
                sample = workdir / f"sample-{comp or 'none'}.tif"
                pre = bench_preprocess_only(sample, model, preprocess_images, decode_workers)
                figures = bench_backlog(
                    workdir,
                    path,
                    n=backlog,
                    size=size,
                    compression=comp,
                    config_text=config_text,
                )
                figures["inference_only_ips"] = round(alone, 2)
                figures["of_inference_only"] = round(figures["images_per_s"] / alone, 3)
                figures["preprocess_only_ips"] = round(pre, 2)
                figures["of_slowest_stage"] = round(figures["images_per_s"] / min(alone, pre), 3)
                # what the cores allow at this CPU cost per image: cores / CPU s per image
                limit = plan.cores * 1000 / figures["cpu_ms_per_image"]
                figures["cpu_bound_ips"] = round(limit, 2)
                figures["of_cpu_bound"] = round(figures["images_per_s"] / limit, 3)
                result.backlog[comp or "none"] = figures
        if "latency" not in skip:
            result.latency_s = bench_latency(
                workdir,
                model,
                n=latency_images,
                size=size,
                compression=compressions[0],
                quiet_s=quiet_s,
                rate_hz=rate_hz,
            )
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


def format_result(r: BenchResult) -> str:
    """Human-readable lines of a :class:`BenchResult`."""
    lines = [
        f"model: {r.model} on {r.provider}",
        f"images: {r.image_size}² uint16 OME-TIFF",
        f"workers: {r.workers}",
    ]
    for tag, st in r.stages_ms.items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in st.items())
        lines.append(f"stages ms/image ({tag}, {r.tiles_per_image} tiles): {parts}")
    for k, v in r.inference_only_ips.items():
        lines.append(f"inference only ({k.replace('_', ' ')}): {v:.1f} images/s")
    for k, v in r.preprocess_only_ips.items():
        lines.append(f"preprocess only, read+hash+check+decode+prepare ({k}): {v:.1f} images/s")
    for tag, b in r.backlog.items():
        lines.append(
            f"backlog {b['images']:.0f} ({tag}): {b['images_per_s']:.2f} images/s, "
            f"peak RSS {b['peak_rss_mb']:.0f} MB, wall {b['wall_s_incl_startup']:.1f} s, "
            f"CPU {b['cpu_ms_per_image']:.1f} ms/image; {b['of_inference_only']:.0%} of "
            f"inference alone ({b['inference_only_ips']:.1f} images/s) and "
            f"{b['of_slowest_stage']:.0%} of the slowest stage alone (preprocessing "
            f"{b['preprocess_only_ips']:.1f} images/s), both measured just before; "
            f"{b['of_cpu_bound']:.0%} of the CPU-bound limit ({r.cores} cores / "
            f"{b['cpu_ms_per_image']:.1f} ms CPU per image = {b['cpu_bound_ips']:.1f} images/s)"
        )
    if r.latency_s:
        lt = r.latency_s
        lines.append(
            f"latency close->DB at {lt['rate_hz']:g} image/s ({lt['images']:.0f} images, quiet "
            f"{lt['quiet_period_s']} s): median {lt['median_s']:.2f} s, p95 {lt['p95_s']:.2f} s, "
            f"max {lt['max_s']:.2f} s"
        )
    return "\n".join(lines)


def as_dict(r: BenchResult) -> dict[str, Any]:
    return asdict(r)

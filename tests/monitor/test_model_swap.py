"""Promotion without a restart: the daemon swaps its model under a burst of images, on
request (SIGHUP) and when its model file is replaced, and loses or double-scores nothing."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from monitor_helpers import image_name, make_config, running_daemon, tiff_bytes, wait_for
from onnx_models import build_classifier

from monitor.inference import load_model
from stemwatch import store


def models(tmp_path: Path) -> tuple[Path, Path]:
    """Two different models: A cuts a 256-px image into 4 tiles, B into 16."""
    a = build_classifier(tmp_path / "a.onnx", tile_size=32, downsample=4, seed=1)
    b = build_classifier(tmp_path / "b.onnx", tile_size=16, downsample=4, seed=2)
    return a, b


def burst(folder: Path, start: int, n: int) -> list[str]:
    """``n`` images written as fast as the disk takes them (rename into place)."""
    names = []
    for i in range(start, start + n):
        name = image_name(f"A{1 + i % 12:02d}", field=1 + i // 12, hour=i % 24)
        tmp = folder / f".{name}.part"
        tmp.write_bytes(tiff_bytes(i))
        os.replace(tmp, folder / name)
        names.append(name)
    return names


def predictions(db: Path) -> list[tuple[str, str, int]]:
    """(path, model hash, tiles) of every prediction stored."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [
            (str(r[0]), str(r[1]), int(r[2]))
            for r in conn.execute(
                "SELECT i.path, p.model_hash, p.n_tiles FROM predictions p "
                "JOIN images i ON i.id = p.image_id"
            )
        ]
    finally:
        conn.close()


@pytest.mark.parametrize("trigger", ["request", "file replaced"])
def test_model_swap_under_a_burst_loses_and_repeats_nothing(tmp_path: Path, trigger: str) -> None:
    path_a, path_b = models(tmp_path)
    model_a, model_b = load_model(path_a), load_model(path_b)
    configured = tmp_path / "model.onnx"
    shutil.copy(path_a, configured)
    cfg = make_config(
        tmp_path,
        configured,
        inference={
            "watch_model_file": trigger == "file replaced",
            "model_check_interval_s": 0.05,
            "decode_workers": 2,
            "batch_tiles": 64,
        },
        watch={"quiet_period_s": 0.05},
    )
    with running_daemon(cfg) as d:
        first = burst(cfg.folder, 0, 40)
        d.daemon.counts.wait_for(lambda s: s.done >= 3, 30)
        tmp = tmp_path / ".model.onnx.new"
        shutil.copy(path_b, tmp)
        os.replace(tmp, configured)  # atomic replacement
        if trigger == "request":
            d.daemon.request_model_reload("SIGHUP")
        second = burst(cfg.folder, 40, 40)  # images keep coming during the switch
        wait_for(lambda: d.daemon.model.model_hash == model_b.model_hash, 30)
        third = burst(cfg.folder, 80, 10)  # and after it: all by B
        d.settle(60)
        summary = d.daemon.summary
    names = first + second + third
    assert (summary.done, summary.failed, summary.duplicates) == (len(names), 0, 0)
    stored = predictions(cfg.database)
    per_image = Counter(Path(p).name for p, _, _ in stored)
    assert sorted(per_image) == sorted(names)  # nothing lost...
    assert set(per_image.values()) == {1}  # ...and nothing scored twice
    by_model = Counter(h for _, h, _ in stored)
    assert set(by_model) == {model_a.model_hash, model_b.model_hash}
    assert by_model[model_a.model_hash] >= 3 and by_model[model_b.model_hash] >= 10
    tiles = {model_a.model_hash: 4, model_b.model_hash: 16}
    assert all(n == tiles[h] for _, h, n in stored)  # each image tiled for its own model
    assert summary.tiles == sum(n for _, _, n in stored)  # every tile inferred exactly once
    third_models = {h for p, h, _ in stored if Path(p).name in third}
    assert third_models == {model_b.model_hash}
    with store.open_db(cfg.database, readonly=True) as db:
        switches = store.model_switches(db)
        assert [(s.model_hash, s.reason) for s in switches[:2]] == [
            (model_b.model_hash, "SIGHUP" if trigger == "request" else "model file replaced"),
            (model_a.model_hash, "start"),
        ]
        assert switches[0].previous_hash == model_a.model_hash
        current = store.current_model(db)
        assert current is not None and current.model_hash == model_b.model_hash
        # series per model: B's covers what B scored
        assert store.well_series(db, "P1", "A01", model_hash=model_b.model_hash)


def test_an_invalid_replacement_is_refused_and_the_old_model_kept(
    tmp_path: Path, tiny_model_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    configured = tmp_path / "model.onnx"
    shutil.copy(tiny_model_path, configured)
    cfg = make_config(tmp_path, configured, inference={"model_check_interval_s": 0.05})
    with running_daemon(cfg) as d:
        (tmp_path / "broken").write_bytes(b"not an onnx model")
        os.replace(tmp_path / "broken", configured)
        wait_for(lambda: "cannot take this model" in caplog.text, 20)
        burst(cfg.folder, 0, 3)
        d.settle()
        assert d.daemon.summary.done == 3
        assert d.daemon.model.path == configured
    hashes = {h for _, h, _ in predictions(cfg.database)}
    assert hashes == {load_model(tiny_model_path).model_hash}


def test_stemwatch_watch_takes_a_new_model_on_sighup(tmp_path: Path) -> None:
    path_a, path_b = models(tmp_path)
    configured = tmp_path / "model.onnx"
    shutil.copy(path_a, configured)
    folder = tmp_path / "incoming"
    folder.mkdir()
    db = tmp_path / "s.db"
    config = tmp_path / "monitor.yaml"
    config.write_text(
        "inference: {watch_model_file: false}\nwatch: {quiet_period_s: 0.1}\n", encoding="utf-8"
    )
    argv = ["watch", str(folder), "--db", str(db), "--model", str(configured)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "stemwatch", *argv, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def switches() -> list[store.ModelSwitch]:
            if not db.exists():
                return []
            try:
                with store.open_db(db, readonly=True) as conn:
                    return store.model_switches(conn)
            except store.StoreError:
                return []

        wait_for(switches, 60)
        shutil.copy(path_b, configured)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(switches()) == 2, 30)
        assert switches()[0].reason == "SIGHUP"
        burst(folder, 0, 2)
        hash_b = load_model(path_b).model_hash
        wait_for(lambda: len(predictions(db)) == 2, 30)
        assert {h for _, h, _ in predictions(db)} == {hash_b}
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "2 processed" in out
    assert "model switch (SIGHUP)" in err

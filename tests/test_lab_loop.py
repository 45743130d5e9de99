"""A lab's own model, the whole loop at a tiny scale, each step through its real command
against one real database (issue 10):

synthetic plate -> `stemwatch watch` with the bundled model -> `stemwatch platemap import` ->
a false alarm marked (the store function the dashboard's button calls) -> end-point staining
imported -> `stemwatch dataset from-db` -> `stemwatch train` -> `stemwatch export` ->
`stemwatch reanalyse` (interrupted, then resumed) -> `stemwatch compare`.
"""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path

import pytest

pytest.importorskip("torch")

from stemwatch import store
from stemwatch.cli import main
from stemwatch.core.modelfile import bundled_model_path, file_sha256
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec

TRAIN_YAML = """
data:
  manifest: {manifest}
  tiling: {{downsample: 4, tile_size: 32, max_tiles: 8}}
split: {{group_by: well, test_fraction: 0.25, val_fraction: 0.25}}
model: {{architecture: fastnet}}
optim: {{epochs: 2, batch_size: 32, patience: 2}}
runtime: {{out_dir: {out}, threads: 2, progress: false}}
"""


def test_a_labs_own_model_from_plate_to_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "incoming"
    truth = generate_plate(
        folder,
        PlateSpec(
            wells=[f"A{c:02d}" for c in range(1, 9)],
            n_fields=2,
            n_timepoints=6,
            size=256,
            seed=11,
            plate_name="LAB1",
        ),
    )
    ground_truth = tmp_path / "layout.csv"
    (folder / "ground_truth.csv").rename(ground_truth)
    db = tmp_path / "stemwatch.db"

    # 1. the daemon with the bundled model
    assert main(["watch", str(folder), "--db", str(db), "--once"]) == 0
    n_images = 8 * 2 * 6
    with store.open_db(db, readonly=True) as conn:
        assert store.counts(conn).done == n_images
        daemon_hash = store.daemon_model_hash(conn)
        assert daemon_hash == file_sha256(bundled_model_path())
        alerts = [a for a in store.list_alerts(conn) if a.kind == "onset"]
    assert alerts, "the bundled model flagged no well; the loop needs an alert to mark"

    # 2. the plate map (the synthetic microscope's layout: plate, well, condition, induction)
    assert main(["platemap", "import", str(ground_truth), "--db", str(db), "--by", "ana"]) == 0
    with store.open_db(db, readonly=True) as conn:
        layout = store.plate_map(conn, "LAB1")
    assert layout is not None
    roles = {w.well: w.role for w in layout.wells}
    assert roles == {w.well: w.condition for w in truth.wells}

    # 3. false alarms: one through the store function the dashboard's button calls, one by
    #    clicking that button in the dashboard's Labels view
    assert len(alerts) >= 2
    with store.open_db(db) as conn:
        fa = store.mark_false_alarm(conn, alerts[-1].id, by="ben", note="looked fine")
    assert (fa.label, fa.alert_id, fa.created_by) == ("undifferentiated", alerts[-1].id, "ben")
    from streamlit.testing.v1 import AppTest

    from stemwatch.commands.dashboard import app_path

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEMWATCH_DB", str(db))
        app = AppTest.from_file(str(app_path()), default_timeout=60)
        app.run()
        app.radio(key="view").set_value("labels").run()
        app.text_input(key="ack_by").input("dora").run()
        app.button(key=f"fa_{alerts[0].id}").click().run()
    assert not app.exception, app.exception
    with store.open_db(db, readonly=True) as conn:
        marks = store.false_alarms(conn)
    assert set(marks) == {alerts[0].id, alerts[-1].id}
    assert marks[alerts[0].id].created_by == "dora"

    # 4. end-point staining: OCT4 stays on in maintenance wells, goes off in induced ones
    endpoints = tmp_path / "oct4.csv"
    with endpoints.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["plate", "well", "marker", "result"])
        for t in truth.wells:
            w.writerow(["LAB1", t.well, "OCT4", "+" if t.condition == "maintenance" else "-"])
    argv = ["labels", "import-endpoints", str(endpoints), "--db", str(db), "--window-h", "12"]
    assert main([*argv, "--by", "cat"]) == 0

    # 5. the training set from the database
    data = tmp_path / "data"
    assert main(["dataset", "from-db", str(db), "-o", str(data)]) == 0
    out = capsys.readouterr().out
    assert "LAB1" in out and "undifferentiated" in out
    with (data / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["label"] for r in rows} == {"differentiated", "undifferentiated"}
    assert all(r["experiment"] == "LAB1" and Path(r["path"]).is_file() for r in rows)
    induced = [r for r in rows if roles[r["well"]] == "induced"]
    assert induced and all(r["hours_since_induction"] != "" for r in induced)
    report = json.loads((data / "dataset.json").read_text())
    assert report["left_out"] == [] and report["n_images"] == len(rows)

    # 6. train (tiny, fast settings) and export
    cfg = tmp_path / "train.yaml"
    cfg.write_text(TRAIN_YAML.format(manifest=data / "manifest.csv", out=tmp_path / "run"))
    assert main(["train", "--config", str(cfg)]) == 0
    new = tmp_path / "lab.onnx"
    assert main(["export", str(tmp_path / "run" / "best.pt"), "-o", str(new)]) == 0
    new_hash = file_sha256(new)

    # 7. re-analysis, interrupted after its first batch and resumed
    from monitor.inference import load_model
    from monitor.reanalyse import reanalyse

    model = load_model(new)
    ctrl_c = threading.Event()  # set after the first committed batch: the user's Ctrl-C
    with store.open_db(db) as conn:
        stop_after_first = reanalyse(
            conn, model, commit_images=16, progress=lambda n: ctrl_c.set(), stop=ctrl_c
        )
    assert stop_after_first.interrupted and 0 < stop_after_first.scored < n_images
    capsys.readouterr()
    assert main(["reanalyse", str(db), "--model", str(new)]) == 0
    assert f"{n_images - stop_after_first.scored} of" in capsys.readouterr().out
    with store.open_db(db, readonly=True) as conn:
        assert store.count_unscored(conn, new_hash) == 0
        assert store.daemon_model_hash(conn) == daemon_hash  # still the default view
        assert store.well_series(conn, "LAB1", "A01", model_hash=new_hash)
        shown = store.images_for_well(conn, "LAB1", "A01")
        assert {i.model_hash for i in shown} == {daemon_hash}

    # 8. side by side
    assert main(["compare", str(db), "daemon", str(new)]) == 0
    table = capsys.readouterr().out
    assert f"images: {n_images} scored by both" in table
    assert "images on the same side" in table and "wells with the same onset call" in table
    assert "onsets by the plate map" in table
    assert "accuracy on labelled wells neither model trained on" in table or (
        "every labelled well was seen in training" in table
    )
    assert "seen by lab" in table or "seen by" in table  # the new model's training wells

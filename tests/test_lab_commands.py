"""The lab's commands as a user runs them: platemap, labels, dataset from-db, reanalyse and
compare, on a real database; every user error is one line naming the file, row or value."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch import store
from stemwatch.cli import main
from stemwatch.core.imaging import content_hash
from stemwatch.core.platemeta import ImageLocation

H = 3600.0


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database with plate P1: wells A01, A02 x 4 time points (elapsed hours 0..3), real
    files on disk with their content hashes, scored by model m1."""
    path = tmp_path / "stemwatch.db"
    rng = np.random.default_rng(0)
    with store.open_db(path) as conn:
        store.register_model(
            conn, model_hash="m1", name="daemon", metadata_json="{}", provider="CPU"
        )
        store.record_model_switch(conn, model_hash="m1", previous_hash=None, reason="start")
        for well in ("A01", "A02"):
            for tp in range(4):
                f = tmp_path / "img" / f"P1_{well}_{tp}.tif"
                f.parent.mkdir(exist_ok=True)
                tifffile.imwrite(f, rng.integers(0, 4000, (64, 64), dtype=np.uint16))
                store.record_result(
                    conn,
                    store.FileVersion(
                        str(f), f.stat().st_size, f.stat().st_mtime_ns, content_hash(f)
                    ),
                    ImageLocation("P1", well, 0, tp, tp * H, "test", time_basis="elapsed"),
                    store.Prediction("m1", 0.2 + 0.2 * tp, n_tiles=4),
                )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_platemap_import_show_and_malformed(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "map.csv"
    good.write_text("well,condition,induction_h\nA1,maintenance,\nA2,EpiLC,1\nB1,EpiLC,1\n")
    code, out, _ = run(capsys, "platemap", "import", good, "--db", db, "--plate", "P1")
    assert code == 0, out
    assert "3 wells mapped (2 induced, 1 maintenance)" in out
    assert "1 mapped well(s) have no images yet" in out
    code, out, _ = run(capsys, "platemap", "show", "P1", "--db", db)
    assert code == 0 and "EpiLC" in out and "1.0 h" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("well,condition,induction_h\nA1,maintenance,\nA2,EpiLC,one hour\n")
    code, _, err = run(capsys, "platemap", "import", bad, "--db", db, "--plate", "P1")
    assert code == 2
    assert f"{bad}: row 3, column 'induction_h': 'one hour' is not a number" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "platemap", "show", "P9", "--db", db)
    assert code == 2 and "no plate map" in err


def test_labels_endpoints_add_undo_and_dataset(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layout = tmp_path / "map.csv"
    layout.write_text("plate,well,condition,induction_h\nP1,A01,maintenance,\nP1,A02,EpiLC,1\n")
    assert run(capsys, "platemap", "import", layout, "--db", db)[0] == 0
    code, out, _ = run(capsys, "labels", "add", "P1", "A2", "undifferentiated", "--db", db)
    assert code == 0
    ends = tmp_path / "ends.csv"
    ends.write_text("plate,well,marker,stained_fraction\nP1,A01,OCT4,90%\nP1,A02,OCT4,5%\n")
    code, out, _ = run(
        capsys, "labels", "import-endpoints", ends, "--db", db, "--window-h", "1", "--by", "ana"
    )
    assert code == 0 and "1 differentiated, 1 undifferentiated" in out
    code, out, _ = run(
        capsys, "labels", "add", "P1", "A01", "excluded", "--from", "3", "--db", db, "--by", "ben"
    )
    assert code == 0 and "#4" in out
    code, out, _ = run(capsys, "labels", "list", "--db", db, "--plate", "P1")
    assert code == 0 and "4 label(s)" in out and "by ana" in out and "by ben" in out

    data = tmp_path / "data"
    code, out, _ = run(capsys, "dataset", "from-db", db, "-o", data)
    assert code == 0, out
    rows = list(csv.DictReader((data / "manifest.csv").open()))
    got = {(r["well"], r["time_s"], r["label"]) for r in rows}
    assert got == {
        ("A01", "7200.0", "undifferentiated"),  # the end-point window (2..3 h), 3 h excluded
        ("A02", "0.0", "undifferentiated"),
        ("A02", "3600.0", "undifferentiated"),
        ("A02", "7200.0", "differentiated"),  # the later end point wins over the whole well
        ("A02", "10800.0", "differentiated"),
    }
    hours = {r["time_s"]: r["hours_since_induction"] for r in rows if r["well"] == "A02"}
    assert hours == {"0.0": "-1.0", "3600.0": "0.0", "7200.0": "1.0", "10800.0": "2.0"}
    assert "1 image(s) labelled excluded" in out

    # undo the excluded label: A01 at 3 h is back; a changed and a missing file are left out
    assert run(capsys, "labels", "undo", "4", "--db", db, "--by", "ben")[0] == 0
    files = sorted((tmp_path / "img").glob("P1_A02_*.tif"))
    files[2].write_bytes(files[2].read_bytes()[:-2] + b"xx")  # same size, other content
    files[3].unlink()
    code, out, _ = run(capsys, "dataset", "from-db", db, "-o", data)
    assert code == 0
    assert "2 image(s) missing or changed on disk" in out
    report = json.loads((data / "dataset.json").read_text())
    reasons = sorted(x["reason"] for x in report["left_out"])
    assert reasons == ["changed (content hash differs)", "missing"]
    code, _, err = run(capsys, "labels", "undo", "4", "--db", db)
    assert code == 2 and "already undone" in err


def test_dataset_without_labels_and_bad_endpoints(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "dataset", "from-db", db, "-o", tmp_path / "d")
    assert code == 2 and "no labelled images" in err and "import-endpoints" in err
    ends = tmp_path / "ends.csv"
    ends.write_text("plate,well,marker,result\nP1,H12,OCT4,+\n")
    code, _, err = run(capsys, "labels", "import-endpoints", ends, "--db", db)
    assert code == 2 and f"{ends}: row 2: no images of plate P1 well H12" in err
    ends.write_text("plate,well,marker,result\nP1,A01,SOX17,+\n")
    code, _, err = run(capsys, "labels", "import-endpoints", ends, "--db", db)
    assert code == 2 and "row 2, column 'marker'" in err and "--stained-means" in err


def test_compare_and_reanalyse_errors(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_path: Path
) -> None:
    code, _, err = run(capsys, "compare", db, "daemon", "nothing")
    assert code == 2 and "'nothing' names no model" in err and "daemon (m1)" in err
    code, _, err = run(capsys, "compare", db, "daemon", tiny_model_path)
    assert code == 2 and "has scored no image" in err and "stemwatch reanalyse" in err
    code, _, err = run(capsys, "compare", db, "daemon", "m1")
    assert code == 2 and "the same model" in err
    not_onnx = tmp_path / "x.onnx"
    not_onnx.write_text("hello")
    code, _, err = run(capsys, "reanalyse", db, "--model", not_onnx)
    assert code == 2 and str(not_onnx) in err

"""The lab's loop on synthetic plates, each step through its real command, with figures.

Run: ``nice -n 10 python tests/benchmarks/eval_lab_loop.py OUT_DIR [--wells 24] [--size 512]``

Two plates (seeds 1 and 2) are imaged by the daemon with the bundled model. The "lab" imports
their plate maps (the synthetic ground truth's layout) and labels wells the way a lab would,
here read from the generator's ground truth: maintenance wells without spontaneous
differentiation undifferentiated throughout (wells with spontaneous colonies excluded), induced
wells undifferentiated up to their induction and differentiated from 12 h after the true onset
(the hours between are left unlabelled: a lab would not know). A model is trained on plate 1's
labels only (`dataset from-db --plate`; the trainer's defaults: architecture, tiling from the
images' pixel size), re-analyses both plates, and `stemwatch compare` judges both models
on plate 2, whose wells neither model has seen. OUT_DIR keeps the database (the README's
screenshot is taken from it) and every command's output.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import logging
import time
from pathlib import Path

from stemwatch import store
from stemwatch.cli import main as cli
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec

TRAIN_YAML = """
data:
  manifest: {manifest}
split: {{group_by: well, test_fraction: 0.2, val_fraction: 0.2, seed: 0}}
optim: {{max_minutes: 6}}
runtime: {{out_dir: {out}, threads: 2, progress: false, seed: 0}}
"""


def run(out: Path, *argv: str) -> str:
    """One command through the real command line; its output is kept in OUT/commands.txt."""
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = cli(list(argv))
    text = buf.getvalue()
    with (out / "commands.txt").open("a") as fh:
        fh.write(f"$ stemwatch {' '.join(argv)}  # {time.perf_counter() - t0:.0f} s\n{text}\n")
    if code != 0:
        raise SystemExit(f"stemwatch {' '.join(argv)} failed ({code}):\n{text}")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--wells", type=int, default=24)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--timepoints", type=int, default=9)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "commands.txt").write_text("")
    db = str(out / "stemwatch.db")
    truths = {}
    for seed, name in ((1, "LAB-A"), (2, "LAB-B")):
        spec = PlateSpec(
            wells=args.wells,
            n_fields=2,
            n_timepoints=args.timepoints,
            interval_h=6.0,
            size=args.size,
            seed=seed,
            plate_name=name,
        )
        folder = out / "microscope" / name
        truths[name] = generate_plate(folder, spec, workers=2)
        (folder / "ground_truth.csv").rename(out / f"{name}-layout.csv")
        run(out, "watch", str(folder), "--db", db, "--once")
        run(out, "platemap", "import", str(out / f"{name}-layout.csv"), "--db", db, "--by", "lab")
        with store.open_db(db) as conn:
            for w in truths[name].wells:
                if w.condition == "maintenance":
                    lab = "excluded" if w.n_spontaneous else "undifferentiated"
                    store.label_well(conn, name, w.well, lab, by="lab", source="cli")
                    continue
                start = store.well_time_range(conn, name, w.well)[0] or 0.0
                induced = start + (w.induction_h or 0.0) * 3600
                store.label_well(
                    conn, name, w.well, "undifferentiated", by="lab", to_time_s=induced
                )
                if w.true_onset_h is not None:
                    store.label_well(
                        conn,
                        name,
                        w.well,
                        "differentiated",
                        by="lab",
                        from_time_s=start + (w.true_onset_h + 12) * 3600,
                    )
    data = out / "data"
    print(run(out, "dataset", "from-db", db, "-o", str(data), "--plate", "LAB-A"))
    cfg = out / "train.yaml"
    cfg.write_text(TRAIN_YAML.format(manifest=data / "manifest.csv", out=out / "run"))
    print(run(out, "train", "--config", str(cfg)))
    model = out / "lab-v1.onnx"
    run(out, "export", str(out / "run" / "best.pt"), "-o", str(model))
    print(run(out, "reanalyse", db, "--model", str(model)))
    print(run(out, "compare", db, "daemon", str(model), "--plate", "LAB-B"))
    with (out / "LAB-B-truth.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["well", "condition", "true_onset_h", "n_spontaneous"])
        for t in truths["LAB-B"].wells:
            w.writerow([t.well, t.condition, t.true_onset_h, t.n_spontaneous])


if __name__ == "__main__":
    main()

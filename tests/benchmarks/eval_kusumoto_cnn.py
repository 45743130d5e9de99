"""Benchmark: a CNN trained on Kusumoto-style block labels, scored as in the paper, with its
decision threshold chosen on validation blocks.

    python tests/benchmarks/eval_kusumoto_cnn.py RUN [--manifest LABELLED/manifest.csv]

RUN is a ``stemwatch train ... --cv`` run directory (one sub-folder per fold, each with
``best.pt``), or a single run's directory (its ``best.pt``: one fold). For every fold the
calibrated best model scores its own validation and test blocks (both recorded in
``best.pt``); the F1-maximising threshold on the stained class's
probability is chosen on the **validation** blocks only (:func:`trainer.decision.f1_threshold`)
and applied to the test blocks. Printed per fold and pooled over folds (95 % intervals over
wells) and as mean ± sd over folds, at argmax (0.5) and at the validation-chosen threshold,
against the labels the model was trained on and, with ``--manifest`` (its ``truth_label``
column, written by ``stemwatch label --truth``), against the generator's ground truth.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from stemwatch.core.aggregate import image_probabilities
from trainer.data import TileCache
from trainer.decision import THRESHOLD_FIGURES, f1_threshold, figures_at_threshold
from trainer.evaluate import CheckpointPredictor
from trainer.heldout import sample_from_record
from trainer.metric_intervals import interval_text


def block_probs(pred: CheckpointPredictor, images: list[dict[str, Any]]) -> tuple[Any, ...]:
    samples = [sample_from_record(im, pred.class_names) for im in images]
    cache = TileCache(pred.tiling, pred.normalisation)
    readable = cache.warm(samples)
    tiles = cache.tileset(readable)
    probs = image_probabilities(pred.predict(tiles.x), tiles.image, len(readable))
    return probs, np.array([s.label for s in readable]), readable


def truth_of(manifest: Path | None) -> dict[str, str]:
    if manifest is None:
        return {}
    with manifest.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return {str((manifest.parent / r["path"]).resolve()): r["truth_label"] for r in rows}


def row(r: dict[str, Any], folds: list[dict[str, Any]] | None = None) -> str:
    """Each figure with its interval (and mean ± sd over ``folds``)."""
    cells = []
    for k in THRESHOLD_FIGURES:
        cell = f"{k} {interval_text(r['intervals'][k])}"
        if folds:
            vals = np.array([f[k] for f in folds if f[k] is not None], dtype=float)
            sd = vals.std(ddof=1) if len(vals) > 1 else 0.0
            cell += f" ({vals.mean():.3f} ± {sd:.3f})"
        cells.append(cell)
    return ", ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--manifest", type=Path, help="labelled manifest with truth_label")
    args = ap.parse_args()
    truth = truth_of(args.manifest)
    targets = ("labels", "truth") if truth else ("labels",)
    pooled: dict[str, list[Any]] = {k: [] for k in ("probs", "labels", "truth", "groups", "t")}
    per_fold: dict[str, list[dict[str, Any]]] = {}
    single = (args.run / "best.pt").is_file()
    for fold in [args.run] if single else sorted(p.parent for p in args.run.glob("*/best.pt")):
        pred = CheckpointPredictor(fold / "best.pt")
        pos = pred.class_names.index(pred.positive_class)
        images = pred.checkpoint.split["images"]
        vp, vy, _ = block_probs(pred, [im for im in images if im.get("part") == "val"])
        tp, ty, ts = block_probs(pred, [im for im in images if im.get("part") == "test"])
        t = f1_threshold(vp[:, pos], vy == pos)
        groups = [s.group("well") for s in ts]
        ys = {"labels": ty}
        if truth:
            ys["truth"] = np.array(
                [pred.class_names.index(truth[str(s.path.resolve())]) for s in ts]
            )
        print(f"## {fold.name}: {len(ts)} test blocks; threshold chosen on {len(vy)} "
              f"validation blocks: {t:.3f}")  # fmt: skip
        for target in targets:
            for name, at in (("argmax", 0.5), ("val-threshold", t)):
                r = figures_at_threshold(tp, ys[target], groups, pos, at)
                per_fold.setdefault(f"{target} {name}", []).append(r)
                print(f"  vs {target}, {name}: {row(r)}")
        pooled["probs"].append(tp)
        pooled["groups"] += groups
        pooled["t"].append(np.full(len(ty), t))
        for target in targets:
            pooled[target].append(ys[target])
    probs, thr = np.concatenate(pooled["probs"]), np.concatenate(pooled["t"])
    n = len(per_fold[f"{targets[0]} argmax"])
    print(f"## pooled over {n} folds ({len(probs)} blocks; 95 % intervals over wells), "
          "(mean ± sd over folds)")  # fmt: skip
    for target in targets:
        y = np.concatenate(pooled[target])
        for name, t_all in (("argmax", np.full(len(y), 0.5)), ("val-threshold", thr)):
            r = figures_at_threshold(probs, y, pooled["groups"], 1, t_all)
            print(f"  vs {target}, {name}: {row(r, per_fold[f'{target} {name}'])}")


if __name__ == "__main__":
    main()

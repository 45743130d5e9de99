"""What a model says about the real, unlabelled images in ../shared/real/: a sanity check, not
an accuracy (the images carry no differentiation labels; all are maintenance or unrelated).

For each real set (one folder), every image goes through the monitor's path (quality check,
``prepare`` with the model's own tiling, ONNX inference, the domain score) and the script
prints, per set: images, images whose probability is above 0.5, tiles above 0.5, the image
probabilities' median and range, and the share of images the domain check flags (quality or
score above 1) with the domain scores' median and range. Intervals: Wilson over images; the
tiles of one image are not independent, so the tile share is given without one.

    python tests/benchmarks/eval_real.py [--model MODEL.onnx] [--real ../shared/real]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from monitor.inference import load_model
from stemwatch.evaluation.domain_eval import score_frame, wilson
from stemwatch.evaluation.domain_sets import from_folder

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models/stemwatch-default.onnx")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "real")
    args = parser.parse_args()
    if not args.real.is_dir():
        raise SystemExit(f"{args.real}: no such folder (the real images live in ../shared/real)")
    model = load_model(args.model)
    print(
        f"model {args.model.name} ({model.model_hash[:12]}), domain description: "
        f"{'yes' if model.domain is not None else 'none (no domain scores)'}"
    )
    print()
    print(
        "| set | images | images > 0.5 | tiles > 0.5 | image probability median [min, max] "
        "| flagged out of domain | domain score median [min, max] |"
    )
    print("|---|---|---|---|---|---|---|")
    for folder in sorted(p for p in args.real.iterdir() if p.is_dir()):
        frames = from_folder(folder)
        if not frames:
            continue
        results = [score_frame(model, frame) for frame in frames]
        probs = [r.probability for r in results if r.probability is not None]
        scores = [r.score for r in results if r.score is not None]
        tiles_above = sum(r.tiles_above for r in results)
        tiles_all = sum(r.n_tiles for r in results)
        flagged = sum(r.flagged for r in results)
        n = len(frames)
        above = sum(p > 0.5 for p in probs)
        lo, hi = wilson(above, n)
        flo, fhi = wilson(flagged, n)
        p = np.asarray(probs) if probs else np.asarray([math.nan])
        s = f"{np.median(scores):.2f} [{min(scores):.2f}, {max(scores):.2f}]" if scores else "n/a"
        print(
            f"| {folder.name} | {n} | {above}/{n} [{lo:.2f}, {hi:.2f}] "
            f"| {tiles_above}/{tiles_all} ({tiles_above / max(tiles_all, 1):.1%}) "
            f"| {np.median(p):.2f} [{p.min():.2f}, {p.max():.2f}] "
            f"| {flagged}/{n} [{flo:.2f}, {fhi:.2f}] | {s} |"
        )


if __name__ == "__main__":
    main()

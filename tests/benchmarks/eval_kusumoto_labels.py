"""Benchmark: how right are Kusumoto-style block labels? Three thresholding rules against the
synthetic microscope's ground truth.

    python tests/benchmarks/eval_kusumoto_labels.py DATA [DATA ...] [--block-size 256]

Each DATA is a set written by ``stemwatch synth dataset DATA --fluorescence`` (label-free
images, ``fluorescence/``, ``fluorescence/truth/``, ``fluorescence/control/``). For every set
it labels the blocks three ways, as ``stemwatch label`` would, and prints block accuracy,
precision / recall / F1 of stained blocks and the share of stained blocks from fields with no
stained cell, each with a 95 % interval over wells:

- ``otsu always``: Otsu on every image (the labeller's former default);
- ``rule, no control``: Otsu only on a bimodal histogram, else the image's median + k MAD;
- ``rule + control``: the same, with the plate's control image (``stemwatch label``'s default
  when ``fluorescence/control/`` exists).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from stemwatch.core.imaging import read_image
from stemwatch.core.stainmask import TRUTH_STAINED
from trainer.label import (
    Controls,
    block_fractions,
    locate,
    pair_images,
    truth_report,
)
from trainer.threshold import Threshold, ThresholdRule, binarise, choose_threshold, otsu_threshold

RULES = ("otsu always", "rule, no control", "rule + control")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, nargs="+")
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--stained-fraction", type=float, default=0.3)
    args = ap.parse_args()
    b, frac = args.block_size, args.stained_fraction
    print("| data | rule | blocks | block accuracy | precision | recall | F1 | stained blocks "
          "from fields with no stained cell |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for data in args.data:
        fdir = data / "fluorescence"
        pairs = pair_images(data, fdir, truth_dir=fdir / "truth")
        controls = Controls.load(fdir / "control")
        rows: dict[str, list[dict[str, object]]] = {r: [] for r in RULES}
        for pair in pairs:
            fluo = read_image(pair.fluorescence).pixels
            assert pair.truth is not None, f"{pair.phase}: no ground truth"
            stained = read_image(pair.truth).pixels == TRUTH_STAINED
            true = block_fractions(stained, b) >= frac
            loc = locate(pair.phase, read_image(pair.phase).ome_xml)
            thresholds: dict[str, Threshold] = {
                "otsu always": Threshold(otsu_threshold(fluo), "otsu"),
                "rule, no control": choose_threshold(fluo, ThresholdRule()),
                "rule + control": choose_threshold(
                    fluo, ThresholdRule(), controls.for_plate(loc.plate)
                ),
            }
            for rule, t in thresholds.items():
                pred = block_fractions(binarise(fluo, t), b) >= frac
                for p, tr in zip(pred.ravel(), true.ravel(), strict=True):
                    rows[rule].append(
                        {
                            "label": "s" if p else "u",
                            "truth_label": "s" if tr else "u",
                            "field_has_stained_cell": int(bool(stained.any())),
                            "plate": loc.plate,
                            "well": loc.well,
                        }
                    )
        for rule in RULES:
            iv, counts = truth_report(rows[rule], "s")
            assert iv is not None and counts is not None
            print(
                f"| {data.name} | {rule} | {counts['blocks']} | {iv['block_accuracy'].text()} | "
                f"{iv['precision'].text()} | {iv['recall'].text()} | {iv['f1'].text()} | "
                f"{counts['positives_from_unstained_fields']} of {counts['labelled_stained']} |"
            )


if __name__ == "__main__":
    main()

"""Measure the monitor's domain check: what it flags of in-domain and of foreign images.

Trains a small model the README's way (a synthetic labelled set, `stemwatch train` with fast
settings, `stemwatch export`, which fits the domain description), or takes an exported model
(--model, e.g. the bundled one), then scores, as the daemon does (quality check, inference,
domain score):

- held-out in-domain images: a synthetic set from another seed (new plates and wells), the
  generator's settings as in training; target <= 2 % flagged; and fields of a plate as an
  acquisition writes them (1024 px, 12-bit data in 16-bit files);
- bad frames: blank, black, saturated, all-NaN, empty but lit fields; target >= 95 %;
- defocused frames (Gaussian blur of the held-out images, sigma 1-16 um at 1 um/px);
  target >= 95 % once cells are no longer resolved (sigma >= 4 um);
- fluorescence-like frames (synthetic nuclear and cytoplasmic stains); target >= 95 %;
- the same specimens at 2x and 4x the trained pixel size; target >= 95 % at 4x;
- the real sets in ../shared/real/ (skipped where absent): the phase-contrast time-lapse
  (target >= 95 %) and the hiPSC brightfield colonies and whole wells (reported).

Prints each set's flagged share with 95 % intervals (Wilson over images; bootstrap over wells
where a set has several images per well) and what flagged the frames.

    nice -n 10 python tests/benchmarks/eval_domain.py [--work build/domain-eval] [--seed 11]
    python tests/benchmarks/eval_domain.py --model models/stemwatch-default.onnx
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

from monitor.inference import LoadedModel, load_model
from stemwatch.evaluation.domain_eval import SetResult, evaluate_set
from stemwatch.evaluation.domain_sets import (
    Frame,
    bad_frames,
    coarser_pixels,
    defocused,
    fluorescence,
    from_folder,
    from_manifest,
)
from stemwatch.synth.dataset import generate_dataset
from stemwatch.synth.plate import plan_plate
from stemwatch.synth.spec import PlateSpec

SHARED_REAL = Path(__file__).resolve().parents[2].parent / "shared" / "real"
SIZE = 512


def dataset(out: Path, seed: int) -> Path:
    """The labelled synthetic set of the bundled model's recipe, smaller: 3 experiments x 8
    wells x 2 fields x 5 time points = 240 images of 512 px, labelled by true state."""
    return generate_dataset(
        out,
        size=SIZE,
        n_experiments=3,
        wells_per_class=4,
        fields_per_well=2,
        timepoints_h=(0, 6, 12, 24, 48),
        label_by="state",
        seed=seed,
        workers=2,
    )


def train_and_export(work: Path, seed: int, epochs: int) -> Path:
    """The README's training path with small, fast settings; returns the exported model."""
    from stemwatch.core.config import validate_mapping
    from trainer.config import TrainerConfig
    from trainer.export import export_onnx
    from trainer.train import run_training

    model = work / "model.onnx"
    if model.is_file():
        return model
    manifest = work / "train" / "manifest.csv"
    if not manifest.is_file():
        dataset(manifest.parent, seed)
    cfg = validate_mapping(
        TrainerConfig,
        {
            "data": {
                "manifest": manifest,
                "tiling": {"downsample": 2, "tile_size": 128, "max_tiles": 64},
            },
            "split": {"group_by": "well", "test_fraction": 0.25, "val_fraction": 0.2, "seed": 0},
            "model": {"architecture": "fastnet"},
            "optim": {"epochs": epochs, "batch_size": 32, "patience": 5, "max_minutes": 10},
            "runtime": {
                "threads": 2,
                "device": "cpu",
                "seed": seed,
                "out_dir": work / "run",
                "progress": False,
            },
        },
        "eval_domain",
    )
    summary = run_training(cfg)
    test = summary.get("test", {}).get("image", {})
    print(
        f"trained fastnet: test balanced accuracy {test.get('balanced_accuracy', float('nan')):.3f}"
        f" on held-out wells; exporting with its domain description"
    )
    export_onnx(Path(summary["best_checkpoint"]), model, name=f"domain-eval-s{seed}")
    return model


def held_out(work: Path, seed: int) -> list[Frame]:
    """In-domain images the model and its description never saw: another seed's plates."""
    manifest = work / f"heldout-s{seed}" / "manifest.csv"
    if not manifest.is_file():
        dataset(manifest.parent, seed)
    return from_manifest(manifest)


def larger_16bit(seed: int) -> list[Frame]:
    """In-domain fields as a plate acquisition writes them: 1024 px, 12-bit data in 16-bit
    files (training images are 512 px, 8-bit); six wells, two fields, four time points."""
    wells = ["A01", "A02", "A03", "B01", "B02", "B03"]
    plan = plan_plate(
        PlateSpec(
            wells=wells,
            n_fields=2,
            times_h=(0, 12, 24, 48),
            size=2 * SIZE,
            bit_depth=16,
            seed=seed,
            induced=wells[3:],
            induction_h=0.0,
        )
    )
    return [
        Frame(f"{plan.plate}_{w}_f{f + 1}_t{t}", plan.render(w, f, t), f"{plan.plate}/{w}", 12)
        for w in wells
        for f in range(2)
        for t in range(4)
    ]


def coarser(factor: int, seed: int) -> list[Frame]:
    """Four wells, two fields, three time points at ``factor`` x the pixel size."""
    wells = ["A01", "A02", "B01", "B02"]
    plan = plan_plate(
        PlateSpec(
            wells=wells,
            n_fields=2,
            times_h=(0, 24, 48),
            size=SIZE * factor,
            bit_depth=8,
            seed=seed,
            induced=wells[2:],
            induction_h=0.0,
        )
    )
    cells = [(w, f, t) for w in wells for f in range(2) for t in range(3)]
    return coarser_pixels(plan, cells, factor)


def report(results: list[SetResult], model: LoadedModel, seconds: list[float]) -> None:
    d = model.domain
    assert d is not None
    cal = d.calibration
    print(
        f"\nmodel {model.metadata.name} ({model.model_hash[:12]}): threshold {d.threshold:.3f} "
        f"at the {100 * d.quantile:g}th percentile of {cal.get('n_calibration_images')} held-out "
        f"images (held out by {cal.get('held_out_by', 'wells')}); fitted on "
        f"{cal.get('n_fit_tiles')} tiles of {cal.get('n_fit_images')} images"
    )
    for r in results:
        print(r.line())
    if seconds:
        print(
            f"\ndomain scoring (statistics and distances, beside inference): median "
            f"{1000 * float(np.median(seconds)):.1f} ms per image, max "
            f"{1000 * max(seconds):.1f} ms (timing is noisy on a shared machine)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("build/domain-eval"), help="work folder")
    ap.add_argument("--seed", type=int, default=11, help="seed of the training data and run")
    ap.add_argument("--heldout-seed", type=int, default=29, help="seed of the in-domain test set")
    ap.add_argument("--epochs", type=int, default=15, help="training epochs (at most)")
    ap.add_argument("--model", type=Path, default=None, help="evaluate this exported model")
    ap.add_argument("--shared", type=Path, default=SHARED_REAL, help="the real image sets")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    work = args.work / f"s{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    path = args.model or train_and_export(work, args.seed, args.epochs)
    model = load_model(path, device="cpu", intra_op_threads=2)
    if model.domain is None:
        raise SystemExit(f"{path}: the model carries no domain description; re-export it")
    rng = np.random.default_rng(args.heldout_seed)
    sets: list[tuple[str, list[Frame]]] = []
    inside = held_out(args.work, args.heldout_seed)
    sets.append((f"in-domain held-out (s{args.heldout_seed})", inside))
    sets.append(("in-domain, 1024 px 16-bit", larger_16bit(args.heldout_seed + 1)))
    for f in bad_frames(512, rng):
        kind = f.name.rsplit("-", 1)[0]
        if not any(name == f"bad: {kind}" for name, _ in sets):
            sets.append((f"bad: {kind}", []))
        next(frames for name, frames in sets if name == f"bad: {kind}").append(f)
    some = inside[::4]
    for sigma in (1, 2, 4, 8, 16):
        sets.append((f"defocused sigma {sigma} um", defocused(some, sigma)))
    for stain in ("nuclear", "cytoplasm"):
        sets.append((f"fluorescence ({stain})", fluorescence(30, 512, rng, stain=stain)))
    for factor in (2, 4):
        sets.append((f"{factor}x the pixel size", coarser(factor, args.heldout_seed + factor)))
    real = {
        "psc-timelapse": "real phase contrast (psc)",
        "hipsc-colonies": "real hiPSC colonies (BF)",
        "hipsc-whole-wells": "real hiPSC whole wells",
    }
    for folder, name in real.items():
        if (args.shared / folder).is_dir():
            sets.append((name, from_folder(args.shared / folder)))
        else:
            print(f"skipped {name}: {args.shared / folder} is absent")
    results = [evaluate_set(model, name, frames) for name, frames in sets]
    seconds = [r.seconds for s in results for r in s.results if r.seconds > 0]
    report(results, model, seconds)
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()

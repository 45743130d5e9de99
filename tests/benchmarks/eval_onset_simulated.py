"""The onset detector against a naive threshold on simulated model outputs (no pixels).

Prints, per sampling interval: median detection delay after the true onset (synth ground
truth), fraction of induced wells detected, onset-estimate error, and false alarms per 100
maintenance wells. Plates come from stemwatch.synth's biology (no pixels); per-field model
probabilities from stemwatch.evaluation.onset_eval.NoiseModel (assumed defaults, or calibrated
on a real exported model's outputs with --calibrate MODEL.onnx).

    nice -n 10 python tests/benchmarks/eval_onset_simulated.py [--plates 10] \
        [--calibrate model.onnx]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from monitor.onset import OnsetConfig
from stemwatch.core.wells import plate_format
from stemwatch.evaluation.onset_eval import (
    CALIBRATION_PLATE,
    SCORED_PLATE,
    SIMULATED_PLATE,
    NoiseModel,
    calibrate_with_model,
    evaluate,
    naive_params,
    score_plates_with_model,
    simulate_plates,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plates", type=int, default=10, help="96-well plates per interval")
    ap.add_argument("--fields", type=int, default=3, help="fields per well")
    ap.add_argument(
        "--intervals", type=float, nargs="*", default=[3.0, 6.0], help="hours (none: skip)"
    )
    ap.add_argument("--duration", type=float, default=72.0, help="hours of imaging")
    ap.add_argument("--difficulty", default="default", help="synth difficulty preset")
    ap.add_argument("--seed", type=int, default=1, help="simulation seed (defaults tuned on 100)")
    ap.add_argument("--calibrate", metavar="MODEL", help="fit the noise model to this .onnx")
    ap.add_argument(
        "--calibrate-size", type=int, default=512, help="image side of the rendered synth plate"
    )
    ap.add_argument("--calibrate-wells", type=int, default=12, help="wells rendered (x2 fields x8)")
    ap.add_argument(
        "--direct",
        metavar="MODEL",
        help="also score rendered synth plates with this .onnx (real outputs, no noise model)",
    )
    ap.add_argument("--direct-plates", type=int, default=2, help="96-well plates for --direct")
    ap.add_argument("--glitch-rate", type=float, default=None, help="override: bad well visits")
    ap.add_argument("--outlier-rate", type=float, default=None, help="override: debris fields")
    args = ap.parse_args()

    noise = NoiseModel()
    if args.calibrate:
        t0 = time.perf_counter()
        plate = CALIBRATION_PLATE.replace(
            wells=plate_format(96).wells()[: args.calibrate_wells],
            size=args.calibrate_size,
            difficulty=args.difficulty,
        )
        noise, n = calibrate_with_model(args.calibrate, plate)
        print(
            f"noise model calibrated on {n} rendered synth images in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    if args.glitch_rate is not None:
        noise = dataclasses.replace(noise, glitch_rate=args.glitch_rate)
    if args.outlier_rate is not None:
        noise = dataclasses.replace(noise, outlier_rate=args.outlier_rate)
    print(f"noise model: {noise}")
    detector = OnsetConfig()
    print(
        f"detector: EWMA alpha={detector.alpha}, on={detector.on_threshold}, "
        f"off={detector.off_threshold}, k={detector.k}, aggregate={detector.aggregate}"
    )
    if args.direct:
        direct(args, detector)
    for interval in args.intervals:
        t0 = time.perf_counter()
        plate = SIMULATED_PLATE.replace(
            n_fields=args.fields,
            interval_h=interval,
            n_timepoints=int(args.duration / interval) + 1,
            difficulty=args.difficulty,
            seed=args.seed,
        )
        wells = simulate_plates(args.plates, plate, noise=noise)
        print(
            f"\n== every {interval:g} h for {args.duration:g} h, {args.fields} fields, "
            f"{args.plates} plates ({len(wells)} wells, simulated in "
            f"{time.perf_counter() - t0:.0f} s)"
        )
        print(evaluate(wells, detector, "detector (defaults)").line())
        for thr in (0.5, 0.7, 0.9):
            print(evaluate(wells, naive_params(thr), f"naive: first well mean >= {thr}").line())


def direct(args: argparse.Namespace, detector: OnsetConfig) -> None:
    """Detector vs naive rule on a real model's outputs on rendered synth plates."""
    t0 = time.perf_counter()
    plate = SCORED_PLATE.replace(
        size=args.calibrate_size, difficulty=args.difficulty, seed=args.seed
    )
    wells = score_plates_with_model(args.direct, args.direct_plates, plate)
    print(
        f"\n== real model outputs: {args.direct_plates} rendered 96-well plates, 2 fields, "
        f"every 6 h for 54 h, {args.calibrate_size} px ({len(wells)} wells, scored in "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    print(evaluate(wells, detector, "detector (defaults)").line())
    for thr in (0.5, 0.6, 0.7):
        print(evaluate(wells, naive_params(thr), f"naive: first well mean >= {thr}").line())


if __name__ == "__main__":
    main()

"""Other ways to turn a well's fields into an onset, tried on the hard tuning plates only.

Reads the tuning plates' scores cached by ``eval_onset.py`` (hard, seed 100, 2 fields) and,
for each statistic, prints the setting the defaults' tuning rule
(:func:`stemwatch.evaluation.onset_curve.choose_default`: <= 1 false alarm per 100
maintenance wells at a median delay <= 2 imaging intervals) picks and its Pareto front:

- the monitor's detector (EWMA + ``k`` in a row, k >= 2) on the fields' **mean** (the
  monitor's median of 2 fields), on their **minimum** (field consensus: every field must be
  high) and on the mean of their **logits** (odds combined geometrically);
- a one-sided **CUSUM on the logit** of each of these: ``S = max(0, S + logit(x) - ref)``,
  onset when ``S >= h``; logits clipped to +-4 and ``h > 4 - ref``, so that one bad visit
  cannot fire alone (as k >= 2 ensures for the detector).

A statistic would replace the detector's only if its pick were better here (fewer false
alarms, or as few and sooner); docs/onset-detection.md (3.4) has the outcome.

    python tests/benchmarks/eval_onset_alternatives.py [build/onset-eval/tuning-hard-6h-2f-*.npz]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from monitor.onset import OnsetParams, run_detector
from stemwatch.core.modelfile import bundled_model_path, file_sha256
from stemwatch.evaluation.onset_curve import (
    Rule,
    RuleFigures,
    ScoredPlates,
    choose_default,
    count_outcomes,
    pareto_front,
    rule_figures,
)

CLIP = 4.0
GRID_ON = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))
CUSUM_REF = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
CUSUM_H = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.clip(np.log(q / (1 - q)), -CLIP, CLIP))


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean of fields": lambda p: np.asarray(np.nanmean(p, axis=-1)),
    "min of fields (consensus)": lambda p: np.asarray(np.nanmin(p, axis=-1)),
    "mean of field logits": lambda p: 1 / (1 + np.exp(-np.nanmean(logit(p), axis=-1))),
}


def detector_hours(values: np.ndarray, times_h: np.ndarray, params: OnsetParams) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        _, det = run_detector(v.tolist(), times_h.tolist(), params)
        if det is not None:
            out[i] = det.detected_key
    return out


def cusum_hours(values: np.ndarray, times_h: np.ndarray, ref: float, h: float) -> np.ndarray:
    z = logit(values)
    s = np.zeros(len(values))
    out = np.full(len(values), np.nan)
    for j, t in enumerate(times_h):
        s = np.maximum(0.0, s + z[:, j] - ref)
        out[(s >= h) & np.isnan(out)] = t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", nargs="?", default=None, help="tuning plates' .npz (2 fields)")
    args = ap.parse_args()
    default = f"build/onset-eval/tuning-hard-6h-2f-{file_sha256(bundled_model_path())[:12]}.npz"
    wells = ScoredPlates.load(Path(args.cache or default))
    times, last, step = wells.times_h, float(wells.times_h[-1]), wells.interval_h
    print(
        f"{int((~wells.induced).sum())} maintenance and {int(wells.induced.sum())} induced "
        f"wells, {wells.probs.shape[2]} fields, imaging every {step:g} h\n"
    )

    def figures(name: str, detected: np.ndarray) -> RuleFigures:
        c = count_outcomes(detected, wells.induced, wells.true_onset_h, last)
        return rule_figures(Rule(name, name, OnsetParams()), c, step)

    for stat, combine in STATISTICS.items():
        values = combine(wells.probs)
        detector = [
            figures(
                f"detector on {on:.2f} k {k} EWMA {a:g}",
                detector_hours(
                    values,
                    times,
                    OnsetParams(on_threshold=on, off_threshold=min(0.35, on), k=k, alpha=a),
                ),
            )
            for k in (2, 3, 4)
            for a in (1.0, 0.7, 0.5)
            for on in GRID_ON
        ]
        cusum = [
            figures(f"CUSUM ref {r:g} h {h:g}", cusum_hours(values, times, r, h))
            for r in CUSUM_REF
            for h in CUSUM_H
            if h > CLIP - r
        ]
        for family, points in (("detector", detector), ("CUSUM on the logit", cusum)):
            picked = choose_default(points)
            assert picked is not None
            best, why = picked
            front = "; ".join(
                f"{p.false_alarms:.1f} at {p.median_delay_intervals:.2f}"
                for p in pareto_front(points)
                if p.false_alarms <= 5
            )
            print(
                f"{stat}, {family}: picks ({why}) {best.rule.name}: {best.false_alarms:.2f} "
                f"false alarms per 100 at {best.median_delay_intervals:.2f} intervals, "
                f"{100 * best.detected:.0f} % of induced wells flagged\n  front (false alarms "
                f"per 100 at intervals): {front}"
            )


if __name__ == "__main__":
    main()

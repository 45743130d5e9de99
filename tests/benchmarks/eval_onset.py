"""The onset detector's delay-versus-false-alarm curve against naive thresholds.

Renders synthetic plates (known true onsets), scores every image with real exported models
exactly as the monitor does, caches the probabilities (``--cache``), then replays the
detector over a grid of its parameters and the naive rules (one threshold on the raw or the
smoothed well probability) and prints, per condition, false alarms per 100 maintenance wells
and the median delay after the true onset with 95 % intervals over wells (markdown tables for
docs/onset-detection.md), and draws the curve (``--png``).

Conditions: in distribution (default difficulty, 6-hourly), ``--difficulty hard``, a model
trained on another seed (``--other-model``), imaging every 12 h (the in-distribution wells,
every other time point); and the hard wells seen through one field only (a smaller set-up).
Each well has ``--fields`` fields (default 2, combined by the monitor's median, as the monitor
is used; 1 when the rendering budget is short). Defaults are chosen on separate hard plates
(seed 100) and judged on the others (seed 1). The tuning plates are rendered with at least 2
fields: tuning uses as many as the judged plates have, and the tables of the tuning plates
seen through 1 and through 2 fields show what a second field changes on the same wells.

    nice -n 10 python tests/benchmarks/eval_onset.py --model models/stemwatch-default.onnx \
        --other-model build/other-seed/other-seed.onnx        # scripts/eval-onset.sh does all

A second run reuses the cache (seconds); ``--rescore`` scores again. The older noise-model
simulation (no pixels, many more wells) is ``eval_onset_simulated.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.onset import OnsetParams
from stemwatch.core.intervals import Interval
from stemwatch.core.modelfile import bundled_model_path, file_sha256
from stemwatch.evaluation.onset_curve import (
    Evaluation,
    Rule,
    RuleFigures,
    ScoredPlates,
    choose_default,
    detector_rule,
    fastest_within,
    format_delay,
    format_interval,
    naive_rule,
    pareto_front,
    score_plates,
)
from stemwatch.synth.spec import PlateSpec

NAIVE_MARKS = (0.5, 0.6, 0.7, 0.8, 0.9)
NAIVE_SMOOTHING = 0.5
GRID_ON = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 ... 0.95
GRID_K = (1, 2, 3, 4)
GRID_ALPHA = (1.0, 0.7, 0.5)
PREVIOUS = Rule(
    "detector (previous defaults, tuned for the previous model)",
    "previous",
    OnsetParams(on_threshold=0.55, off_threshold=0.35, k=3, alpha=1.0, aggregate="median"),
)
SWEEP = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))  # 0.30 ... 0.99


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    ap.add_argument("--other-model", default=None, help="a model trained on another seed")
    ap.add_argument("--cache", default="build/onset-eval", help="folder of the score caches")
    ap.add_argument("--rescore", action="store_true", help="ignore the caches, score again")
    ap.add_argument("--plates", type=int, default=9, help="96-well plates per condition")
    ap.add_argument("--tuning-plates", type=int, default=2, help="hard plates to tune on")
    ap.add_argument("--size", type=int, default=384, help="image side (px, 1 um/px)")
    ap.add_argument("--fields", type=int, default=1, help="fields per well")
    ap.add_argument("--hours", type=float, default=72.0, help="imaging time per plate")
    ap.add_argument("--workers", type=int, default=2, help="scoring processes")
    ap.add_argument("--max-false-alarms", type=float, default=1.0, help="tuning budget /100")
    ap.add_argument("--png", default="docs/onset-curve.png", help="curve figure ('' = none)")
    ap.add_argument("--json", default=None, help="also write every figure here")
    args = ap.parse_args()
    model = str(Path(args.model) if args.model else bundled_model_path())
    base = PlateSpec(wells=96, n_fields=args.fields, size=args.size, seed=1)
    n6 = int(args.hours / 6) + 1
    default_6h = base.replace(interval_h=6.0, n_timepoints=n6)
    hard_6h = base.replace(interval_h=6.0, n_timepoints=n6, difficulty="hard")
    tuning = hard_6h.replace(seed=100, n_fields=max(2, args.fields))
    cache = Path(args.cache)
    t0 = time.perf_counter()
    models = [model] + ([args.other_model] if args.other_model else [])
    opts = {"rescore": args.rescore, "workers": args.workers}
    # the hard preset first: the target is judged there, and a cut-short run keeps it
    tune_all = scored(cache / "tuning-hard-6h", tuning, args.tuning_plates, [model], **opts)[0]
    tune = tune_all.first_fields(args.fields)
    hard = scored(cache / "hard-6h", hard_6h, args.plates, [model], **opts)[0]
    d6 = scored(cache / "default-6h", default_6h, args.plates, models, **opts)
    print(f"scores ready in {time.perf_counter() - t0:.0f} s")

    def fields(w: ScoredPlates) -> str:
        n = int(w.probs.shape[2])
        return f"{n} field{'s' if n > 1 else ''}"

    conditions: dict[str, ScoredPlates] = {
        f"in distribution (6 h, {fields(d6[0])})": d6[0],
        f"hard (6 h, {fields(hard)})": hard,
    }
    if args.other_model:
        conditions[f"other-seed model (6 h, {fields(d6[1])})"] = d6[1]
    conditions[f"imaging every 12 h ({fields(d6[0])})"] = d6[0].every(2)
    if args.fields > 1:
        conditions["hard (6 h, 1 field)"] = hard.first_fields(1)

    grid = [detector_rule(on, k, a) for k in GRID_K for a in GRID_ALPHA for on in GRID_ON]
    current = Rule("detector (monitor defaults)", "current", OnsetParams())
    tuned = tune_defaults(Evaluation(tune), grid, args.max_false_alarms)
    report: dict[str, object] = {"model": model, "model_sha256": file_sha256(Path(model))}
    panels = []
    for name, wells in conditions.items():
        t1 = time.perf_counter()
        ev = Evaluation(wells)
        panel = evaluate_condition(name, ev, grid, current, tuned)
        panels.append(panel)
        report[name] = [figures_json(p) for p in (panel.tuned, panel.current, *panel.marked)]
        print(f"({name}: {time.perf_counter() - t1:.0f} s)")
    for n in sorted({1, 2, args.fields}):
        name = f"tuning plates (hard, seed 100), {n} field{'s' if n > 1 else ''}"
        panel = evaluate_condition(name, Evaluation(tune_all.first_fields(n)), grid, current, tuned)
        report[name] = [figures_json(p) for p in (panel.tuned, panel.current, *panel.marked)]
    if args.png:
        draw(panels, Path(args.png), tuned)
        print(f"curve: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


def scored(
    stem: Path,
    spec: PlateSpec,
    n_plates: int,
    models: Sequence[str],
    *,
    rescore: bool,
    workers: int,
) -> list[ScoredPlates]:
    """Scores of ``n_plates`` plates like ``spec`` by each model, from the cache when it was
    made from the same plates and the same model file, else scored now and cached."""
    want = {"plates": n_plates, "spec": repr(spec)}
    out: list[ScoredPlates | None] = []
    paths = []
    for m in models:
        sha = file_sha256(Path(m))
        path = stem.with_name(f"{stem.name}-{sha[:12]}.npz")
        paths.append(path)
        hit = None
        if path.exists() and not rescore:
            hit = ScoredPlates.load(path)
            if any(hit.meta.get(k) != v for k, v in want.items()):
                print(f"{path}: made from other plates, scoring again")
                hit = None
        out.append(hit)
    todo = [m for m, hit in zip(models, out, strict=True) if hit is None]
    if todo:
        t0 = time.perf_counter()
        print(
            f"scoring {stem.name}: {n_plates} plates x 96 wells x {spec.n_fields} field(s) x "
            f"{len(spec.timeline_h)} time points at {spec.size} px with {len(todo)} model(s)"
        )
        fresh = score_plates(
            spec,
            n_plates,
            todo,
            workers=workers,
            parts=4 if workers > 1 else 1,
            progress=lambda i, n: print(
                f"  part {i}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True
            ),
        )
        n_img = n_plates * 96 * spec.n_fields * len(spec.timeline_h)
        dt = time.perf_counter() - t0
        print(f"  {n_img} images in {dt:.0f} s ({1000 * dt / n_img:.1f} ms per image)")
        it = iter(fresh)
        for i, hit in enumerate(out):
            if hit is None:
                done = next(it)
                done = dataclasses.replace(done, meta={**done.meta, **want, "model": models[i]})
                done.save(paths[i])
                out[i] = done
    return [o for o in out if o is not None]


def tune_defaults(ev: Evaluation, grid: Sequence[Rule], max_fa: float) -> Rule:
    """The grid rule :func:`choose_default` picks on the tuning plates."""
    points = [ev.figures(r) for r in grid]
    chosen = choose_default(points, max_false_alarms=max_fa, max_delay_intervals=2.0)
    assert chosen is not None
    best, why = chosen
    w = ev.wells
    print(
        f"\ntuning plates (hard, seed 100, {int((~w.induced).sum())} maintenance / "
        f"{int(w.induced.sum())} induced wells), target <= {max_fa:g} false alarms per 100 "
        f"at <= 2 imaging intervals; chosen by '{why}': {best.rule.name}: "
        f"{best.false_alarms:.1f} false alarms per 100, median delay "
        f"{format_delay(best.median_delay_h, best.interval_h)}"
    )
    quiet = fastest_within(points, max_fa)
    if quiet is not None and quiet is not best:
        print(
            f"  the fastest rule within {max_fa:g} false alarms per 100 would be {quiet.rule.name}"
            f": median delay {format_delay(quiet.median_delay_h, quiet.interval_h)}, "
            f"{100 * quiet.detected:.0f} % of induced wells flagged"
        )
    return Rule("detector (tuned on hard seed-100 plates)", "tuned", best.rule.params)


@dataclasses.dataclass(frozen=True)
class Panel:
    """One condition's figures: what the tables print and the curve draws."""

    name: str
    sweeps: dict[float, list[RuleFigures]]
    marked: list[RuleFigures]
    tuned: RuleFigures
    current: RuleFigures
    family: list[RuleFigures]
    front: list[RuleFigures]


def evaluate_condition(
    name: str, ev: Evaluation, grid: Sequence[Rule], current: Rule, tuned: Rule
) -> Panel:
    w = ev.wells
    interval = w.interval_h
    grid_points = [ev.figures(r) for r in grid]
    sweeps = {
        a: [ev.figures(naive_rule(t, alpha=a)) for t in SWEEP] for a in (1.0, NAIVE_SMOOTHING)
    }
    marked = [
        ev.figures(naive_rule(t, alpha=a), intervals=True)
        for a in (1.0, NAIVE_SMOOTHING)
        for t in NAIVE_MARKS
    ]
    mine = [ev.figures(tuned, intervals=True), ev.figures(current, intervals=True)]
    previous = ev.figures(PREVIOUS, intervals=True)
    family = [
        ev.figures(detector_rule(on, tuned.params.k, tuned.params.alpha)) for on in SWEEP[::2]
    ]
    n_out = ev.counts(tuned).induced_outside
    print(
        f"\n### {name}: {int((~w.induced).sum())} maintenance, {int(w.induced.sum())} induced "
        f"wells ({n_out} without a true onset before the last image, left out), imaging every "
        f"{interval:g} h for {w.times_h[-1]:g} h\n"
    )
    print(
        "| rule | false alarms / 100 maintenance wells [95 % CI] | median delay [95 % CI] "
        "| induced wells flagged |"
    )
    print("|---|---|---|---|")
    same = mine[0].rule.params == mine[1].rule.params  # the monitor runs the tuned rule
    for p in [*(mine[:1] if same else mine), previous, *marked]:
        print(row(p))
    print()
    for p in mine[:1] if same else mine:
        for pts in sweeps.values():
            eq = fastest_within(pts, p.false_alarms)
            label = pts[0].rule.family
            if eq is None:
                print(
                    f"- {label}: no threshold up to 0.99 gets to {p.false_alarms:.1f} "
                    "false alarms per 100"
                )
            else:
                verdict = (
                    "slower"
                    if eq.median_delay_h > p.median_delay_h
                    else ("as fast" if eq.median_delay_h == p.median_delay_h else "FASTER")
                )
                print(
                    f"- at the same false-alarm rate (<= {p.false_alarms:.1f} per 100) the "
                    f"fastest {label} threshold is {eq.rule.params.on_threshold:.2f}: "
                    f"{eq.false_alarms:.1f} per 100, median delay "
                    f"{format_delay(eq.median_delay_h, interval)} ({verdict} than "
                    f"the {p.rule.name.removeprefix('detector ')})"
                )
    front = pareto_front(grid_points)
    print(
        "- detector over its whole grid (chosen on these very wells, so optimistic): "
        + "; ".join(
            f"{q.false_alarms:.1f}/100 at {format_delay(q.median_delay_h, interval)}"
            f" ({q.rule.name})"
            for q in front[:6]
        )
    )
    return Panel(name, sweeps, marked, mine[0], mine[1], family, front)


def row(p: RuleFigures) -> str:
    name = p.rule.name
    if p.rule.family in ("tuned", "current", "previous"):
        q = p.rule.params
        name = f"**{name}**: on {q.on_threshold:g}, k {q.k}, EWMA {q.alpha:g}"
    return (
        f"| {name} | {p.false_alarms:.1f} {format_interval(p.false_alarms_ci)} | "
        f"{format_delay(p.median_delay_h, p.interval_h)} "
        f"{format_interval(p.delay_ci, delay=True)} h | "
        f"{100 * p.detected:.0f} % {format_interval(scaled(p.detected_ci))} |"
    )


def scaled(ci: Interval | None) -> Interval | None:
    """A fraction's interval in per cent."""
    if ci is None:
        return None
    return dataclasses.replace(
        ci,
        low=None if ci.low is None else 100 * ci.low,
        high=None if ci.high is None else 100 * ci.high,
    )


def figures_json(p: RuleFigures) -> dict[str, object]:
    def ci(x: Interval | None) -> list[float | None] | None:
        return None if x is None else [x.low, x.high]

    return {
        "rule": p.rule.name,
        "params": p.rule.params.model_dump(),
        "false_alarms_per_100": p.false_alarms,
        "false_alarms_ci": ci(p.false_alarms_ci),
        "median_delay_h": p.median_delay_h,
        "delay_ci_h": ci(p.delay_ci),
        "detected": p.detected,
        "detected_ci": ci(p.detected_ci),
        "n_maintenance": p.n_maintenance,
        "n_induced": p.n_induced,
    }


def draw(panels: Sequence[Panel], png: Path, tuned: Rule) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, grid = plt.subplots(rows, cols, figsize=(4.4 * cols, 4.2 * rows), squeeze=False)
    axes = grid.ravel()
    spare = axes[n:]
    axes = axes[:n]
    ymin, ymax = 0.0, 1.0
    colours = {1.0: "tab:orange", NAIVE_SMOOTHING: "tab:green"}
    for ax, panel in zip(axes, panels, strict=True):

        def xy(pts: Sequence[RuleFigures]) -> tuple[list[float], list[float]]:
            keep = [p for p in pts if p.median_delay_h < 1e8]
            return [p.false_alarms for p in keep], [p.median_delay_intervals for p in keep]

        for a, pts in panel.sweeps.items():
            ax.plot(*xy(pts), color=colours[a], lw=1.2, label=pts[0].rule.family)
        ax.plot(
            *xy(panel.family),
            color="tab:blue",
            lw=1.2,
            label=f"detector k={tuned.params.k}, EWMA {tuned.params.alpha:g} (on_threshold swept)",
        )
        ax.plot(
            *xy(panel.front),
            color="tab:blue",
            lw=0.8,
            ls=":",
            label="detector, best of whole grid (optimistic)",
        )
        for p in panel.marked:
            errbar(ax, p, colours[p.rule.params.alpha], "o")
            if p.median_delay_h < 1e8:
                ax.annotate(
                    f"{p.rule.params.on_threshold:g}",
                    (p.false_alarms, p.median_delay_intervals),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        same = panel.tuned.rule.params == panel.current.rule.params
        tuned_label = "detector tuned on other hard plates" + (" = monitor's" if same else "")
        errbar(ax, panel.tuned, "tab:blue", "*", size=12, label=tuned_label)
        if not same:
            errbar(ax, panel.current, "black", "s", size=5, label="monitor defaults (OnsetParams)")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(-0.2, 100)
        ax.axvline(1.0, color="grey", lw=0.5, ls="--")
        ax.axhline(2.0, color="grey", lw=0.5, ls="--")
        ax.set_title(panel.name, fontsize=10)
        ax.set_xlabel("false alarms per 100 maintenance wells")
        ax.grid(alpha=0.3)
        ymin, ymax = min(ymin, ax.get_ylim()[0]), max(ymax, ax.get_ylim()[1])
    for ax in axes:  # one delay scale for all panels
        ax.set_ylim(ymin, ymax)
        ax.set_ylabel("median delay after true onset (intervals)")
    handles, labels = axes[0].get_legend_handles_labels()
    if len(spare):
        for ax in spare:
            ax.axis("off")
        spare[0].legend(handles, labels, fontsize=8, loc="center")
    else:
        axes[0].legend(fontsize=7, loc="upper right")
    fig.suptitle("Onset detection: delay vs false alarms, 95 % intervals over wells", fontsize=11)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def errbar(
    ax: Any,
    p: RuleFigures,
    colour: str,
    marker: str,
    *,
    size: float = 4,
    label: str | None = None,
) -> None:
    if p.median_delay_h >= 1e8:
        return
    x, y = p.false_alarms, p.median_delay_intervals
    xe = ye = None
    if p.false_alarms_ci and p.false_alarms_ci.low is not None:
        xe = [[x - p.false_alarms_ci.low], [(p.false_alarms_ci.high or x) - x]]
    if p.delay_ci and p.delay_ci.low is not None and (p.delay_ci.high or 0) < 1e8:
        ye = [[y - p.delay_ci.low / p.interval_h], [(p.delay_ci.high or 0) / p.interval_h - y]]
    ax.errorbar(
        x,
        y,
        xerr=xe,
        yerr=ye,
        fmt=marker,
        color=colour,
        ms=size,
        lw=0.8,
        capsize=2,
        label=label,
    )


if __name__ == "__main__":
    main()

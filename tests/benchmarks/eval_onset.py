"""The onset detector's delay-versus-false-alarm curve against naive thresholds.

Renders synthetic plates (known true onsets), scores every image with real exported models
exactly as the monitor does, caches the probabilities (``--cache``), then replays the
detector over a grid of its parameters and the naive rules (one threshold on the raw or the
smoothed well probability) and prints, per condition, false alarms per 100 maintenance wells
and the median delay after the true onset with 95 % intervals over wells (markdown tables for
docs/onset-detection.md), and draws the curve (``--png``).

Conditions (``--conditions``, each optionally with its field count, e.g. ``hard:2``): in
distribution (default difficulty, 6-hourly), ``hard`` (``--difficulty hard``), ``other-seed``
(a model trained on another seed, ``--other-model``), ``every-12h`` (the in-distribution
wells, every other time point); a hard condition with 2 or more fields also gets a table of
the same wells through their first field. A well's fields are combined by the monitor's own
code (:func:`stemwatch.core.aggregate.aggregate_fields`, median: the mean of 2). Defaults are
chosen on separate hard plates (seed 100, ``--tuning-plates``, rendered with at least 2
fields, tuned with as many as the first hard condition has) and judged on the others (seed 1);
the tables of the tuning plates seen through 1 and through 2 fields show what a second field
changes on the same wells. Caches are named by condition, field count and model, so 1-field and
2-field scores never mix; a cached series of plates is extended, not scored again.

    python tests/benchmarks/eval_onset.py --model models/stemwatch-default.onnx \
        --other-model build/other-seed/other-seed.onnx \
        --conditions hard:2,hard:1,in-distribution,other-seed,every-12h   # scripts/eval-onset.sh

A second run reuses the cache (seconds); ``--rescore`` scores again. The older noise-model
simulation (no pixels, many more wells) is ``eval_onset_simulated.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
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
    plate_specs,
    score_plates,
)
from stemwatch.synth.spec import PlateSpec

NAIVE_MARKS = (0.5, 0.6, 0.7, 0.8, 0.9)
NAIVE_SMOOTHING = 0.5
GRID_ON = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))  # 0.30 ... 0.95
GRID_K = (1, 2, 3, 4)
TUNING_MIN_K = 2
"""Defaults are chosen among settings with k >= 2 only: one bad visit (autofocus failure,
condensation, debris over every field) must never fire alone. The rendered plates have no
such visits, so the grid's k = 1 settings look better there than they would in a lab."""
GRID_ALPHA = (1.0, 0.7, 0.5)
PREVIOUS = Rule(
    "detector (previous defaults, tuned for the previous bundled model)",
    "previous",
    OnsetParams(on_threshold=0.70, off_threshold=0.35, k=2, alpha=1.0, aggregate="median"),
)
OTHER_MARKS = {
    "previous": ("black", "s", "previous defaults"),
    "tuned-1": ("tab:purple", "D", "tuned on 1 field"),
}
"""How the curve marks the table's other detector rows: colour, marker, legend."""
SWEEP = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))  # 0.30 ... 0.99


CONDITIONS = ("in-distribution", "hard", "other-seed", "every-12h")
"""What ``--conditions`` may name; ``hard:2`` asks for that condition with 2 fields per well."""


def parse_conditions(text: str, fields: int) -> list[tuple[str, int]]:
    """``hard:2,in-distribution`` -> [("hard", 2), ("in-distribution", fields)] (pure)."""
    out: list[tuple[str, int]] = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        name, _, n = item.partition(":")
        if name not in CONDITIONS:
            raise SystemExit(
                f"--conditions: unknown condition {name!r}; use {', '.join(CONDITIONS)}"
            )
        if n and not (n.isdigit() and int(n) >= 1):
            raise SystemExit(f"--conditions: {item!r}: the field count after ':' must be 1 or more")
        if (name, int(n or fields)) not in out:
            out.append((name, int(n or fields)))
    if not out:
        raise SystemExit("--conditions: name at least one condition")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="ONNX model (default: the bundled one)")
    ap.add_argument("--other-model", default=None, help="a model trained on another seed")
    ap.add_argument("--cache", default="build/onset-eval", help="folder of the score caches")
    ap.add_argument("--rescore", action="store_true", help="ignore the caches, score again")
    ap.add_argument("--plates", type=int, default=9, help="96-well plates per condition")
    ap.add_argument("--tuning-plates", type=int, default=6, help="hard plates to tune on")
    ap.add_argument("--size", type=int, default=384, help="image side (px, 1 um/px)")
    ap.add_argument(
        "--fields", type=int, default=1, help="fields per well (default of a condition)"
    )
    ap.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help="which conditions, comma-separated, each optionally with its field count "
        f"(e.g. hard:2,in-distribution); of {', '.join(CONDITIONS)}",
    )
    ap.add_argument(
        "--tuning-fields",
        type=int,
        default=None,
        help="fields to tune on (default: the hard condition's, else --fields)",
    )
    ap.add_argument("--hours", type=float, default=72.0, help="imaging time per plate")
    ap.add_argument("--workers", type=int, default=2, help="scoring processes")
    ap.add_argument("--score-only", action="store_true", help="score and cache, evaluate nothing")
    ap.add_argument("--max-false-alarms", type=float, default=1.0, help="tuning budget /100")
    ap.add_argument("--png", default="docs/onset-curve.png", help="curve figure ('' = none)")
    ap.add_argument("--json", default=None, help="also write every figure here")
    args = ap.parse_args()
    wanted = parse_conditions(args.conditions, args.fields)
    if any(c == "other-seed" for c, _ in wanted) and not args.other_model:
        raise SystemExit("--conditions other-seed needs --other-model")
    model = str(Path(args.model) if args.model else bundled_model_path())
    base = PlateSpec(wells=96, size=args.size, seed=1)
    n6 = int(args.hours / 6) + 1
    default_6h = base.replace(interval_h=6.0, n_timepoints=n6)
    hard_6h = base.replace(interval_h=6.0, n_timepoints=n6, difficulty="hard")
    hard_fields = [n for c, n in wanted if c == "hard"]
    tune_fields = args.tuning_fields or (hard_fields[0] if hard_fields else args.fields)
    tuning = hard_6h.replace(seed=100, n_fields=max(2, tune_fields))
    cache = Path(args.cache)
    t0 = time.perf_counter()
    opts = {"rescore": args.rescore, "workers": args.workers}

    def stem(name: str, spec: PlateSpec) -> Path:
        # the field count is in the name: 1-field and 2-field scores never share a file
        return cache / f"{name}-{spec.n_fields}f"

    # the hard preset first: the target is judged there, and a cut-short run keeps it
    tune_spec = tuning
    tune_all = scored(
        stem("tuning-hard-6h", tune_spec), tune_spec, args.tuning_plates, [model], **opts
    )[0]
    hard: dict[int, ScoredPlates] = {}
    for n in hard_fields:
        spec = hard_6h.replace(n_fields=n)
        hard[n] = scored(stem("hard-6h", spec), spec, args.plates, [model], **opts)[0]
    d6: dict[int, list[ScoredPlates]] = {}
    for c, n in wanted:
        if c in ("in-distribution", "other-seed", "every-12h") and n not in d6:
            spec = default_6h.replace(n_fields=n)
            models = [model] + ([args.other_model] if args.other_model else [])
            d6[n] = scored(stem("default-6h", spec), spec, args.plates, models, **opts)
    print(f"scores ready in {time.perf_counter() - t0:.0f} s")
    if args.score_only:
        return
    tune = tune_all.first_fields(tune_fields)

    def fields(n: int) -> str:
        return f"{n} field{'s' if n > 1 else ''}"

    conditions: dict[str, ScoredPlates] = {}  # the judged conditions, each a panel of the curve
    for c, n in wanted:
        if c == "in-distribution":
            conditions[f"in distribution (6 h, {fields(n)})"] = d6[n][0]
        elif c == "hard":
            conditions[f"hard (6 h, {fields(n)})"] = hard[n]
        elif c == "other-seed":
            conditions[f"other-seed model (6 h, {fields(n)})"] = d6[n][1]
        else:
            conditions[f"imaging every 12 h ({fields(n)})"] = d6[n][0].every(2)
    tables = dict(conditions)  # and views that only get a table
    for n in hard_fields:
        if n > 1:  # the same wells through one field: what the second field changes
            tables[f"hard (6 h, first field of the {fields(n)} plates)"] = hard[n].first_fields(1)

    grid = [detector_rule(on, k, a) for k in GRID_K for a in GRID_ALPHA for on in GRID_ON]
    current = Rule("detector (monitor defaults)", "current", OnsetParams())
    tuned = tune_defaults(Evaluation(tune), grid, args.max_false_alarms)
    extra = [PREVIOUS]
    if tune_fields > 1:  # what a one-field set-up would take: the same rule on one field
        one = tune_defaults(Evaluation(tune_all.first_fields(1)), grid, args.max_false_alarms)
        extra.append(Rule("detector (tuned on 1 field)", "tuned-1", one.params))
    report: dict[str, object] = {"model": model, "model_sha256": file_sha256(Path(model))}
    panels = []
    for name, wells in tables.items():
        t1 = time.perf_counter()
        panel = evaluate_condition(name, Evaluation(wells), grid, current, tuned, extra=extra)
        if name in conditions:
            panels.append(panel)
        report[name] = [figures_json(p) for p in panel.rows]
        print(f"({name}: {time.perf_counter() - t1:.0f} s)")
    for n in sorted({1, 2, tune_fields}):
        name = f"tuning plates (hard, seed 100), {n} field{'s' if n > 1 else ''}"
        ev = Evaluation(tune_all.first_fields(n))
        panel = evaluate_condition(name, ev, grid, current, tuned, extra=extra)
        report[name] = [figures_json(p) for p in panel.rows]
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
    made from the same plates and the same model file, else scored now and cached. A cache of
    fewer plates of the same series is extended: only the missing plates are scored."""
    out: list[ScoredPlates | None] = []
    paths = []
    for m in models:
        sha = file_sha256(Path(m))
        path = stem.with_name(f"{stem.name}-{sha[:12]}.npz")
        paths.append(path)
        hit = None
        if path.exists() and not rescore:
            hit = ScoredPlates.load(path)
            if hit.meta.get("spec") != repr(spec):
                print(f"{path}: made from other plates, scoring again")
                hit = None
            elif int(hit.meta["plates"]) > n_plates:
                names = [p.plate_name for p in plate_specs(spec, n_plates)]
                hit = hit.plates(names, meta={"plates": n_plates})
        out.append(hit)
    have = [0 if hit is None else int(hit.meta["plates"]) for hit in out]
    while min(have) < n_plates:
        first = min(have)
        t0 = time.perf_counter()
        todo = [m for m, h in zip(models, have, strict=True) if h == first]
        print(
            f"scoring {stem.name}: plates {first + 1}-{n_plates} x 96 wells x {spec.n_fields} "
            f"field(s) x {len(spec.timeline_h)} time points at {spec.size} px with "
            f"{len(todo)} model(s)"
        )
        fresh = score_plates(
            spec,
            n_plates,
            todo,
            workers=workers,
            parts=4 if workers > 1 else 1,
            first=first,
            progress=functools.partial(say_progress, t0),
        )
        n_img = (n_plates - first) * 96 * spec.n_fields * len(spec.timeline_h)
        dt = time.perf_counter() - t0
        print(f"  {n_img} images in {dt:.0f} s ({1000 * dt / n_img:.1f} ms per image)")
        it = iter(fresh)
        for i, h in enumerate(have):
            if h != first:
                continue
            done = next(it)
            prev = out[i]
            if prev is not None:
                done = prev.concat(done)
            meta = {**done.meta, "plates": n_plates, "spec": repr(spec), "model": models[i]}
            done = dataclasses.replace(done, meta=meta)
            done.save(paths[i])
            out[i] = done
            have[i] = n_plates
    return [o for o in out if o is not None]


def say_progress(t0: float, i: int, n: int) -> None:
    print(f"  part {i}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)


def tune_defaults(ev: Evaluation, grid: Sequence[Rule], max_fa: float) -> Rule:
    """The grid rule (k >= :data:`TUNING_MIN_K`) :func:`choose_default` picks on the tuning
    plates."""
    points = [ev.figures(r) for r in grid if r.params.k >= TUNING_MIN_K]
    chosen = choose_default(points, max_false_alarms=max_fa, max_delay_intervals=2.0)
    assert chosen is not None
    best, why = chosen
    w = ev.wells
    print(
        f"\ntuning plates (hard, seed 100, {int((~w.induced).sum())} maintenance / "
        f"{int(w.induced.sum())} induced wells, {w.probs.shape[2]} field(s)), "
        f"target <= {max_fa:g} false alarms per 100 "
        f"at <= 2 imaging intervals, k >= {TUNING_MIN_K}; chosen by '{why}': {best.rule.name}: "
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
    rows: list[RuleFigures]
    """Every rule of the table, in its order."""


def evaluate_condition(
    name: str,
    ev: Evaluation,
    grid: Sequence[Rule],
    current: Rule,
    tuned: Rule,
    *,
    extra: Sequence[Rule] = (),
) -> Panel:
    """One condition's table (printed) and curve; ``extra``: more rules for the table."""
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
    same = mine[0].rule.params == mine[1].rule.params  # the monitor runs the tuned rule
    shown = [r.rule.params for r in mine]
    others = []
    for r in extra:
        if r.params not in shown:
            shown.append(r.params)
            others.append(ev.figures(r, intervals=True))
    rows = [*(mine[:1] if same else mine), *others, *marked]
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
    for p in rows:
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
                    "slower than"
                    if eq.median_delay_h > p.median_delay_h
                    else ("AS FAST as" if eq.median_delay_h == p.median_delay_h else "FASTER than")
                )
                print(
                    f"- at the same false-alarm rate (<= {p.false_alarms:.1f} per 100) the "
                    f"fastest {label} threshold is {eq.rule.params.on_threshold:.2f}: "
                    f"{eq.false_alarms:.1f} per 100, median delay "
                    f"{format_delay(eq.median_delay_h, interval)} ({verdict} "
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
    return Panel(name, sweeps, marked, mine[0], mine[1], family, front, rows)


def row(p: RuleFigures) -> str:
    name = p.rule.name
    if p.rule.family in ("tuned", "current", "previous", "tuned-1"):
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
        for p in panel.rows:
            if p.rule.family in OTHER_MARKS:
                colour, marker, label = OTHER_MARKS[p.rule.family]
                q = p.rule.params
                label = f"{label}: on {q.on_threshold:g}, k {q.k}, EWMA {q.alpha:g}"
                errbar(ax, p, colour, marker, size=6, label=label)
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

"""`stemwatch compare`: Two models side by side on the database's images, as a table.

``stemwatch compare DB MODEL_A MODEL_B [--plate P]``: each model is an .onnx file, a model
hash (or a unique prefix), a model name, or ``daemon`` (the daemon's current model). Prints
agreement, the wells where the onset differs and by how much, and with labels present both
models' accuracy on labelled wells neither model trained on, with 95 % intervals over wells;
with plate maps, onset figures by role. See :mod:`stemwatch.core.compare`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stemwatch import store
    from stemwatch.core.compare import ModelComparison


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compare",
        help="Compare two models on the database's images (agreement, onsets, accuracy)",
        description=(
            "Compare two models on the images both scored: agreement, wells where the onset "
            "differs and by how much, accuracy on labelled wells with 95%% intervals, onset "
            "figures by the plate map. MODEL is an .onnx file, a hash or its prefix, a model "
            "name, or 'daemon' (the daemon's current model)."
        ),
    )
    p.add_argument(
        "db", metavar="DB", help="the daemon's database: a SQLite file or a postgresql:// URL"
    )
    p.add_argument(
        "--instrument", default=None, metavar="NAME", help="only this instrument's plates"
    )
    p.add_argument("model_a", help="model A")
    p.add_argument("model_b", help="model B")
    p.add_argument("--plate", action="append", default=None, help="only this plate (repeatable)")
    p.add_argument(
        "--threshold", type=float, default=0.5, help="decision threshold on p (default 0.5)"
    )
    p.set_defaults(func=run)


def resolve_model(db: store.Database, text: str) -> str:
    """The model hash ``text`` names (file, hash, prefix, name or ``daemon``)."""
    from stemwatch import store
    from stemwatch.core.errors import StemwatchError
    from stemwatch.core.modelfile import file_sha256

    if text == "daemon":
        h = store.daemon_model_hash(db)
        if h is None:
            raise StemwatchError(f"{db.source}: no daemon model recorded yet")
        return h
    path = Path(text)
    if path.suffix.lower() == ".onnx" or path.is_file():
        if not path.is_file():
            raise StemwatchError(f"{path}: model file not found")
        h = file_sha256(path)
        if not store.find_models(db, h):
            raise StemwatchError(
                f"{path}: this model has scored no image of {db.source}; run "
                f"`stemwatch reanalyse {db.source} --model {path}` first"
            )
        return h
    found = store.find_models(db, text)
    if not found:
        names = ", ".join(f"{m.name} ({m.model_hash[:12]})" for m in store.list_models(db))
        raise StemwatchError(
            f"{text!r} names no model of {db.source}; known models: {names or 'none'}"
        )
    if len(found) > 1:
        raise StemwatchError(
            f"{text!r} names {len(found)} models ({', '.join(h[:12] for h in found)}); give "
            "more of the hash"
        )
    return found[0]


def _ago_h(t: float | None, tb: bool) -> str:
    from stemwatch.core.times import describe_time

    return describe_time(t, "epoch" if tb else "elapsed")


def format_comparison(c: ModelComparison, clock: dict[str, bool]) -> str:
    """The comparison as the table ``stemwatch compare`` prints."""
    from stemwatch.core.compare import describe_shift

    out: list[str] = []
    out.append(f"model A: {c.a.name}")
    out.append(f"model B: {c.b.name}")
    out.append(f"images: {c.n_both} scored by both, {c.n_only_a} only by A, {c.n_only_b} only by B")
    out.append("")
    out.append(f"agreement (threshold {c.threshold:.2f}; [95 % interval over wells])")
    rows = [
        ("images on the same side", c.image_agreement.text(), c.image_agreement.n_groups),
        (
            "wells with the same onset call",
            c.well_agreement.text(),
            c.well_agreement.n_groups,
        ),
    ]
    for name, value, n in rows:
        out.append(f"  {name:<34} {value:<26} ({n} wells)")
    mad = "n/a" if c.mean_abs_difference is None else f"{c.mean_abs_difference:.3f}"
    corr = "n/a" if c.correlation is None else f"{c.correlation:.3f}"
    out.append(f"  {'mean |pA - pB|':<34} {mad}")
    out.append(f"  {'correlation of probabilities':<34} {corr}")
    out.append("")
    if c.onset_differences:
        out.append(f"wells where the onset differs ({len(c.onset_differences)}; B minus A):")
        out.append(
            f"  {'plate':<12} {'well':<5} {'A onset':<18} {'B onset':<18} "
            f"{'onset shift':>11} {'detection shift':>15}"
        )
        for d in c.onset_differences:
            tb = clock.get(d.plate, False)
            a = "-" if d.a is None else _ago_h(d.a.onset_time_s, tb)
            b = "-" if d.b is None else _ago_h(d.b.onset_time_s, tb)
            shift = d.kind if d.kind != "both" else describe_shift(d.onset_shift_h)
            det = "" if d.kind != "both" else describe_shift(d.detection_shift_h)
            out.append(f"  {d.plate:<12} {d.well:<5} {a:<18} {b:<18} {shift:>11} {det:>15}")
    else:
        out.append("wells where the onset differs: none")
    if c.accuracy_a is not None and c.accuracy_b is not None:
        acc_a, acc_b = c.accuracy_a, c.accuracy_b
        out.append("")
        out.append(
            f"accuracy on labelled wells neither model trained on ({acc_a.n_images} images, "
            f"{acc_a.n_wells} wells; [95 % interval over wells]):"
        )
        out.append(f"  {'':<20} {'A':<26} {'B':<26} {'B - A':<26}")
        diff = c.accuracy_difference.text("+.3f") if c.accuracy_difference else "n/a"
        out.append(
            f"  {'accuracy':<20} {acc_a.accuracy.text():<26} {acc_b.accuracy.text():<26} {diff}"
        )
        out.append(
            f"  {'balanced accuracy':<20} {acc_a.balanced_accuracy.text():<26} "
            f"{acc_b.balanced_accuracy.text():<26}"
        )
    if c.labelled_wells_left_out:
        for why, n in c.labelled_wells_left_out.items():
            out.append(f"  left out: {n} labelled well(s) {why}")
    for side, figures in (("A", c.onsets_a), ("B", c.onsets_b)):
        if figures is None:
            continue
        if side == "A":
            out.append("")
            out.append("onsets by the plate map ([95 % interval over wells]):")
        out.append(
            f"  {side}: induced wells detected {figures.induced_detected.text('.2f')} "
            f"(of {figures.n_induced}); median delay after induction "
            f"{figures.median_delay_h.text('.1f', unit=' h')}; false alarms per 100 "
            f"maintenance wells {figures.false_alarms_per_100.text('.0f')} "
            f"(of {figures.n_maintenance})"
        )
    if c.notes:
        out.append("")
        out.extend(f"note: {n}" for n in c.notes)
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from stemwatch import store
    from stemwatch.core.compare import compare_models
    from stemwatch.core.errors import StemwatchError

    if not 0.0 < args.threshold < 1.0:
        raise StemwatchError(f"--threshold {args.threshold}: give a probability in (0, 1)")
    with store.open_db(args.db, readonly=True) as db:
        a = resolve_model(db, args.model_a)
        b = resolve_model(db, args.model_b)
        if a == b:
            raise StemwatchError(f"{args.model_a} and {args.model_b} are the same model")
        inp = store.comparison_input(db, a, b, plates=args.plate, instrument=args.instrument)
    if not inp.pairs:
        where = f" of plate(s) {', '.join(args.plate)}" if args.plate else ""
        raise StemwatchError(f"neither model scored any placed image{where}")
    comparison = compare_models(inp, threshold=args.threshold)
    print(format_comparison(comparison, dict(inp.clock)))
    return 0

"""`stemwatch labels`: Labels from the lab: end-point staining, listing, adding, undo.

The dashboard marks wells and false alarms; this command imports end-point results
(immunostaining per well, or a stained fraction) from a CSV, lists labels, adds one from the
command line and undoes one. Every label records who and when; nothing is deleted.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from stemwatch.commands.platemap import (
    add_by_argument,
    add_db_argument,
    add_instrument_argument,
    who,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "labels",
        help="Labels from the lab: import end-point staining, list, add, undo",
        description="Labels from the lab (append-only: who and when, undo, nothing deleted).",
    )
    ss = p.add_subparsers(dest="labels_command", metavar="WHAT", required=True)

    imp = ss.add_parser(
        "import-endpoints",
        help="label wells from end-point immunostaining (per well, or a stained fraction)",
        description=(
            "Label wells from end-point staining. The CSV has one row per well: plate "
            "(or --plate), well, marker, and result (positive/negative) or stained_fraction "
            "(0.35 or 35%%); optionally time_h or time_at (when the well was fixed; default: "
            "its last image) and notes. The images of the last --window-h hours before that "
            "time get the label."
        ),
    )
    imp.add_argument("csv", help="the end-point results")
    add_db_argument(imp)
    imp.add_argument("--plate", help="the plate, when the CSV has no plate column")
    imp.add_argument(
        "--stained-means",
        choices=["differentiated", "undifferentiated"],
        help="what staining means for markers stemwatch does not know (pluripotency "
        "markers such as OCT4, NANOG, SOX2, SSEA4 are known: stained = undifferentiated)",
    )
    imp.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="a stained fraction at or above this counts as stained (default: 0.5)",
    )
    imp.add_argument(
        "--window-h",
        type=float,
        default=1.0,
        help="hours before the end point whose images get the label (default: 1)",
    )
    add_instrument_argument(imp)
    add_by_argument(imp)
    imp.set_defaults(func=run_import)

    ls = ss.add_parser("list", help="print labels, newest first")
    add_db_argument(ls)
    ls.add_argument("--plate")
    ls.add_argument("--well")
    add_instrument_argument(ls)
    ls.set_defaults(func=run_list)

    add = ss.add_parser("add", help="label a well (optionally over a time window)")
    add.add_argument("plate")
    add.add_argument("well")
    add.add_argument("label", choices=["differentiated", "undifferentiated", "excluded"])
    add_db_argument(add)
    add.add_argument(
        "--from",
        dest="from_",
        metavar="TIME",
        help="from this time on: hours since the plate's time zero (its first image for "
        "wall-clock times), or a date and time",
    )
    add.add_argument("--to", metavar="TIME", help="up to this time (hours, or a date and time)")
    add.add_argument("--note")
    add_instrument_argument(add)
    add_by_argument(add)
    add.set_defaults(func=run_add)

    fa = ss.add_parser(
        "false-alarm",
        help="mark an onset alert as a false alarm (its window's images: undifferentiated)",
    )
    fa.add_argument("alert_id", type=int)
    add_db_argument(fa)
    fa.add_argument("--note")
    add_by_argument(fa)
    fa.set_defaults(func=run_false_alarm)

    undo = ss.add_parser("undo", help="take a label back (it stays, marked undone)")
    undo.add_argument("label_id", type=int)
    add_db_argument(undo)
    add_by_argument(undo)
    undo.set_defaults(func=run_undo)


def _when(text: str | None, basis: Any, plate_start: float | None, what: str) -> float | None:
    """Hours since the plate's time zero, or a date and time, on the well's clock."""
    from stemwatch.core.errors import StemwatchError
    from stemwatch.core.platemap import time_from_hours
    from stemwatch.core.times import is_clock_time

    if text is None:
        return None
    try:
        hours = float(text)
    except ValueError:
        hours = None
    if hours is not None:
        t = time_from_hours(hours, is_clock_time(basis), plate_start)
        if t is None:
            raise StemwatchError(f"{what} {text!r}: the plate has no images to count hours from")
        return t
    try:
        when = datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise StemwatchError(
            f"{what} {text!r} is neither hours nor a date and time (2026-01-06 09:00)"
        ) from None
    if not is_clock_time(basis):
        raise StemwatchError(
            f"{what} {text!r}: this well's images carry elapsed times; give hours since the "
            "plate's time zero"
        )
    return when


def run_import(args: argparse.Namespace) -> int:
    from stemwatch import store
    from stemwatch.core.errors import StemwatchError
    from stemwatch.core.labels import read_endpoints
    from stemwatch.core.platemap import time_from_hours
    from stemwatch.core.times import is_clock_time

    results = read_endpoints(
        args.csv, plate=args.plate, stained_means=args.stained_means, threshold=args.threshold
    )
    if args.window_h < 0:
        raise StemwatchError(f"--window-h {args.window_h}: give zero or more hours")
    with store.open_db(args.db) as db:
        starts = {
            p.plate: p.first_time_s for p in store.list_plates(db, instrument=args.instrument)
        }
        new: list[store.NewLabel] = []
        for r in results:
            _, last, basis = store.well_time_range(db, r.plate, r.well, instrument=args.instrument)
            if last is None:
                raise StemwatchError(
                    f"{args.csv}: row {r.row}: no images of plate {r.plate} well {r.well} in "
                    f"{args.db}; check the plate and well, or import after the run"
                )
            end = last
            if r.time_s is not None:
                clock = is_clock_time(basis)
                if r.time_basis == "epoch" and not clock:
                    raise StemwatchError(
                        f"{args.csv}: row {r.row}: the end-point time is a date but "
                        f"{r.plate} {r.well}'s images carry elapsed times; use time_h"
                    )
                end = (
                    r.time_s
                    if r.time_basis == "epoch"
                    else time_from_hours(r.time_s / 3600.0, clock, starts.get(r.plate))
                ) or last
            fraction = "" if r.fraction is None else f", stained fraction {r.fraction:.2f}"
            new.append(
                store.NewLabel(
                    plate=r.plate,
                    well=r.well,
                    label=r.label,
                    source="endpoint",
                    from_time_s=end - args.window_h * 3600.0,
                    to_time_s=end,
                    time_basis=basis,
                    note=(r.notes or f"{r.marker} {'+' if r.stained else '-'}{fraction}"),
                    marker=r.marker,
                    stained_fraction=r.fraction,
                    instrument=args.instrument,
                )
            )
        stored = store.add_labels(db, new, by=who(args))
    counts: dict[str, int] = {}
    for lab in stored:
        counts[lab.label] = counts.get(lab.label, 0) + 1
    print(
        f"{len(stored)} end-point label(s) from {args.csv}: "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    )
    return 0


def _describe(lab: Any) -> str:
    from stemwatch.core.times import describe_time

    start = "start" if lab.from_time_s is None else describe_time(lab.from_time_s, lab.time_basis)
    end = "on" if lab.to_time_s is None else describe_time(lab.to_time_s, lab.time_basis)
    window = f"{start} .. {end}"
    state = (
        f"UNDONE by {lab.undone_by}"
        if not lab.active
        else (f"superseded by #{lab.superseded_by}" if lab.superseded_by else "active")
    )
    return (
        f"#{lab.id:<4} {lab.plate} {lab.well} {lab.label:<16} {window:<24} "
        f"{lab.source:<11} by {lab.created_by} at "
        f"{datetime.fromtimestamp(lab.created_at):%Y-%m-%d %H:%M}  [{state}]"
        + (f"  {lab.note}" if lab.note else "")
    )


def run_list(args: argparse.Namespace) -> int:
    from stemwatch import store

    with store.open_db(args.db, readonly=True) as db:
        labels = store.list_labels(db, args.plate, args.well, instrument=args.instrument)
    print(f"{len(labels)} label(s)")
    for lab in labels:
        print("  " + _describe(lab))
    return 0


def run_add(args: argparse.Namespace) -> int:
    from stemwatch import store
    from stemwatch.core.errors import StemwatchError
    from stemwatch.core.wells import normalise_well

    try:
        well = normalise_well(args.well)
    except ValueError as exc:
        raise StemwatchError(f"well: {exc}") from None
    with store.open_db(args.db) as db:
        _, _, basis = store.well_time_range(db, args.plate, well, instrument=args.instrument)
        start = {
            p.plate: p.first_time_s for p in store.list_plates(db, instrument=args.instrument)
        }.get(args.plate)
        lab = store.label_well(
            db,
            args.plate,
            well,
            args.label,
            by=who(args),
            from_time_s=_when(args.from_, basis, start, "--from"),
            to_time_s=_when(args.to, basis, start, "--to"),
            note=args.note,
            source="cli",
            instrument=args.instrument,
        )
    print("added " + _describe(lab))
    return 0


def run_false_alarm(args: argparse.Namespace) -> int:
    from stemwatch import store

    with store.open_db(args.db) as db:
        lab = store.mark_false_alarm(db, args.alert_id, by=who(args), note=args.note)
    print(f"alert #{args.alert_id} marked as a false alarm: " + _describe(lab))
    return 0


def run_undo(args: argparse.Namespace) -> int:
    from stemwatch import store

    with store.open_db(args.db) as db:
        lab = store.undo_label(db, args.label_id, by=who(args))
    print("undone " + _describe(lab))
    return 0

"""`stemwatch platemap`: Import and show plate maps (what each well holds).

``stemwatch platemap import MAP.csv --db DB [--plate P]`` reads a table, a plate-designer grid
or an Incucyte .PlateMap (:mod:`stemwatch.core.platemap`) and stores it as the plate's current
map; earlier imports are kept. ``stemwatch platemap show PLATE --db DB`` prints it.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path


def add_db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        default=os.environ.get("STEMWATCH_DB", "stemwatch.db"),
        metavar="PATH|URL",
        help="the daemon's database, a SQLite file or a postgresql:// URL (default: "
        "$STEMWATCH_DB, else stemwatch.db)",
    )


def add_instrument_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--instrument",
        default=None,
        metavar="NAME",
        help="the instrument whose plate is meant, where plates of that name were imaged on "
        "several (a facility database); default: the one that imaged it",
    )


def add_by_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="who does this, recorded with it (default: your login name)",
    )


def who(args: argparse.Namespace) -> str:
    return str(args.by or getpass.getuser())


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "platemap",
        help="Import and show plate maps (condition, treatment, induction time per well)",
        description="Import and show plate maps: what each well of a plate holds.",
    )
    ss = p.add_subparsers(dest="platemap_command", metavar="WHAT", required=True)
    imp = ss.add_parser(
        "import",
        help="store a plate map from a CSV table, a plate-designer grid or an Incucyte .PlateMap",
        description=(
            "Store a plate map. A table has one row per well: well and any of plate, "
            "condition, treatment, induction_h (hours since the plate's time zero) or "
            "induction_at (date and time), role (induced, maintenance, control, empty), "
            "notes; other columns are kept as attributes. A grid has one block per attribute: "
            "its name then the column numbers 1..12 on the first line, then one line per row "
            "letter. An Incucyte .PlateMap gives condition, treatment and cell type. Importing "
            "again replaces the plate's map (earlier imports are kept)."
        ),
    )
    imp.add_argument("map", type=Path, help="the plate map file")
    add_db_argument(imp)
    imp.add_argument("--plate", help="the plate it describes, when the file does not say")
    imp.add_argument(
        "--format",
        default="auto",
        choices=["auto", "table", "grid", "incucyte"],
        help="file layout (default: recognised from the content)",
    )
    imp.add_argument(
        "--induced",
        action="append",
        default=[],
        metavar="NAME",
        help="wells of this condition or treatment are induced (repeatable)",
    )
    imp.add_argument(
        "--maintenance",
        action="append",
        default=[],
        metavar="NAME",
        help="wells of this condition or treatment are maintenance (repeatable)",
    )
    imp.add_argument(
        "--induction-h",
        type=float,
        default=None,
        metavar="H",
        help="induction time (hours since the plate's time zero) of induced wells without one",
    )
    add_instrument_argument(imp)
    add_by_argument(imp)
    imp.set_defaults(func=run_import)

    show = ss.add_parser("show", help="print a plate's current map")
    show.add_argument("plate", help="plate name")
    add_db_argument(show)
    add_instrument_argument(show)
    show.set_defaults(func=run_show)


def run_import(args: argparse.Namespace) -> int:
    from stemwatch import store
    from stemwatch.core.platemap import read_plate_maps

    maps = read_plate_maps(
        args.map,
        plate=args.plate,
        fmt=args.format,
        induced=args.induced,
        maintenance=args.maintenance,
        induction_h=args.induction_h,
    )
    with store.open_db(args.db) as db:
        known = {p.plate for p in store.list_plates(db, instrument=args.instrument)}
        for m in maps:
            saved = store.save_plate_map(
                db, m, by=who(args), source=str(args.map), instrument=args.instrument
            )
            roles: dict[str, int] = {}
            for w in m.wells:
                roles[w.role or "no role"] = roles.get(w.role or "no role", 0) + 1
            role_text = ", ".join(f"{n} {r}" for r, n in sorted(roles.items()))
            print(
                f"plate {m.plate}: {saved.n_wells} wells mapped ({role_text}); "
                f"import #{saved.id} by {saved.imported_by}"
            )
            if m.plate not in known:
                print(
                    f"  note: no images of plate {m.plate} in {args.db} yet; the map applies "
                    "once they arrive (check the name matches the images' plate)"
                )
                continue
            imaged = {w.well for w in store.well_summary(db, m.plate, instrument=saved.instrument)}
            mapped = {w.well for w in m.wells}
            if imaged - mapped:
                print(
                    f"  note: {len(imaged - mapped)} imaged well(s) have no entry: "
                    + ", ".join(sorted(imaged - mapped)[:12])
                )
            if mapped - imaged:
                print(f"  note: {len(mapped - imaged)} mapped well(s) have no images yet")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from stemwatch import store
    from stemwatch.core.errors import StemwatchError
    from stemwatch.core.times import describe_time

    with store.open_db(args.db, readonly=True) as db:
        m = store.plate_map(db, args.plate, instrument=args.instrument)
        history = store.plate_map_history(db, args.plate, instrument=args.instrument)
    if m is None:
        raise StemwatchError(
            f"plate {args.plate}: no plate map in {args.db}; import one with "
            "`stemwatch platemap import MAP.csv --plate NAME`"
        )
    cur = history[0]
    print(
        f"plate {m.plate} ({cur.instrument}): map import #{cur.id} from {cur.source} by "
        f"{cur.imported_by} ({len(history)} import(s))"
    )
    attrs = m.attribute_names()
    header = ["well", "role", "condition", "treatment", "induction", "notes", *attrs]
    rows = [
        [
            w.well,
            w.role or "",
            w.condition or "",
            w.treatment or "",
            "" if w.induction_s is None else describe_time(w.induction_s, w.induction_basis),
            w.notes or "",
            *(w.attributes.get(a, "") for a in attrs),
        ]
        for w in m.wells
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(wd) for c, wd in zip(r, widths, strict=True)).rstrip())
    return 0

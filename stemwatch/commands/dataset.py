"""`stemwatch dataset from-db`: A training set from the monitor's database and the lab's labels.

``stemwatch dataset from-db DB -o DIR`` writes ``DIR/manifest.csv`` (path, label, plate, well,
field, experiment = the plate unless given, hours since induction from the plate map, time)
of every labelled image whose file still exists unchanged (content hash), ``DIR/dataset.json``
(the report), and prints the class balance per plate. Train on it with
``stemwatch train DIR/manifest.csv -o RUN``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dataset",
        help="Build a training set from the database's labelled images",
        description="Build a training set from the database's labelled images.",
    )
    ss = p.add_subparsers(dest="dataset_command", metavar="WHAT", required=True)
    d = ss.add_parser(
        "from-db",
        help="manifest of labelled images, each checked on disk, with class balance per plate",
        description=(
            "Write DIR/manifest.csv with every labelled image of the database (labels from the "
            "dashboard, false alarms, end-point staining), leaving out excluded images and "
            "files that are missing or changed since the daemon analysed them."
        ),
    )
    d.add_argument(
        "db", metavar="DB", help="the daemon's database: a SQLite file or a postgresql:// URL"
    )
    d.add_argument(
        "--instrument", default=None, metavar="NAME", help="only this instrument's plates"
    )
    d.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    d.add_argument("--plate", action="append", default=None, help="only this plate (repeatable)")
    d.add_argument(
        "--experiment", help="experiment name of every image (default: each image's plate)"
    )
    d.add_argument("--workers", type=int, default=4, help="threads checking files (default 4)")
    d.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stemwatch import store
    from trainer.from_db import build_dataset

    with (
        store.open_db(args.db, readonly=True) as db,
        tqdm(desc="checking files", unit="img", disable=None) as bar,
    ):
        report = build_dataset(
            db,
            args.out,
            plates=args.plate,
            instrument=args.instrument,
            experiment=args.experiment,
            workers=args.workers,
            progress=bar.update,
        )
    print(f"manifest: {report.manifest} ({report.n_images} images)")
    for line in report.balance_lines():
        print("  " + line)
    if report.excluded:
        print(f"  {report.excluded} image(s) labelled excluded: left out")
    if report.unverified:
        print(f"  {report.unverified} image(s) without a stored content hash: size checked only")
    if report.left_out:
        print(f"  {len(report.left_out)} image(s) missing or changed on disk: left out")
        for c in report.left_out[:10]:
            print(f"    {c.path}: {c.reason}")
        if len(report.left_out) > 10:
            print(f"    ... see {args.out / 'dataset.json'}")
    classes = {k for c in report.per_plate.values() for k, n in c.items() if n}
    if len(classes) < 2:
        print(
            f"  warning: only {', '.join(sorted(classes))} images; a model needs labelled "
            "wells of both classes"
        )
    return 0

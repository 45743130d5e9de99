"""`stemwatch synth`: Generate synthetic label-free images, plates and live acquisitions."""

from __future__ import annotations

import argparse
from pathlib import Path

from stemwatch.core.errors import StemwatchError
from stemwatch.synth.spec import PlateSpec


def _common(p: argparse.ArgumentParser, *, size: int, bit_depth: int, workers: bool = True) -> None:
    p.add_argument("out", type=Path, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes")
    p.add_argument("--size", type=int, default=size, help=f"image side in pixels ({size})")
    p.add_argument(
        "--difficulty",
        default="default",
        choices=["easy", "default", "hard"],
        help="how early/strongly morphology changes, noise, density (default)",
    )
    p.add_argument(
        "--bit-depth", type=int, default=bit_depth, choices=[8, 16], help=f"({bit_depth})"
    )
    p.add_argument(
        "--compression",
        default=None,
        choices=["zlib", "lzw", "zstd"],
        help="TIFF compression (none)",
    )
    if workers:
        p.add_argument("--workers", type=int, default=1, help="rendering processes (1)")


def _plate_args(p: argparse.ArgumentParser, *, wells: str = "96") -> None:
    p.add_argument(
        "--wells",
        default=wells,
        help=f"plate format 6/24/96/384 or a comma-separated list like A01,A02 ({wells})",
    )
    p.add_argument("--fields", type=int, default=2, help="fields per well (2)")
    p.add_argument("--timepoints", type=int, default=8, help="time points (8)")
    p.add_argument("--interval", type=float, default=6.0, help="hours between passes (6)")
    p.add_argument("--plate-name", default="SYN001", help="plate name in files and OME (SYN001)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "synth",
        help="Generate synthetic label-free images, plates and live acquisitions",
        description="Generate synthetic label-free images, plates and live acquisitions.",
    )
    ss = p.add_subparsers(dest="synth_command", metavar="WHAT", required=True)

    d = ss.add_parser("dataset", help="labelled images (class folders + manifest.csv)")
    _common(d, size=512, bit_depth=8)
    d.add_argument("--experiments", type=int, default=2, help="experiments/plates (2)")
    d.add_argument("--wells-per-class", type=int, default=4, help="wells per class (4)")
    d.add_argument("--fields", type=int, default=2, help="fields per well (2)")
    d.add_argument("--hours", default="0,6,12,24,48", help="hours since induction (0,6,12,24,48)")
    d.add_argument(
        "--label-by",
        default="condition",
        choices=["condition", "state"],
        help="label by well condition (as Waisman et al.) or by true state (condition)",
    )
    d.add_argument(
        "--fluorescence",
        action="store_true",
        help="also write a paired fluorescence image of a differentiation marker for every "
        "image (fluorescence/, same names; ground truth in fluorescence/truth/) for "
        "`stemwatch label`",
    )
    d.add_argument(
        "--autofluorescence",
        type=float,
        default=0.25,
        metavar="RATE",
        help="with --fluorescence: fraction of dense colonies that autofluoresce (0.25; 0 clean)",
    )
    d.add_argument(
        "--faint-staining",
        type=float,
        default=0.1,
        metavar="RATE",
        help="with --fluorescence: fraction of fields stained faintly (0.1; 0 clean)",
    )

    pl = ss.add_parser("plate", help="a plate time-lapse as OME-TIFF + ground_truth.csv")
    _common(pl, size=512, bit_depth=16)
    _plate_args(pl)

    a = ss.add_parser("acquire", help="write a plate time-lapse live, like an instrument")
    _common(a, size=512, bit_depth=16, workers=False)
    _plate_args(a, wells="24")
    a.add_argument("--speedup", type=float, default=3600.0, help="time compression factor (3600)")
    a.add_argument(
        "--pass-interval",
        type=float,
        default=None,
        help="real seconds between passes (overrides --speedup)",
    )
    a.add_argument("--log", type=Path, default=None, help="JSON-lines log of what was written")

    sh = ss.add_parser("sheet", help="a PNG contact sheet of both conditions over time")
    sh.add_argument("out", type=Path, help="PNG file to write")
    sh.add_argument("--seed", type=int, default=0, help="random seed (0)")
    sh.add_argument("--size", type=int, default=768, help="field side in pixels (768)")
    sh.add_argument(
        "--difficulty", default="default", choices=["easy", "default", "hard"], help="(default)"
    )
    sh.add_argument("--real", type=Path, default=None, help="a real image to show beside them")
    p.set_defaults(func=run)


def _wells(text: str) -> int | list[str]:
    if text.isdigit():
        return int(text)
    return [w.strip() for w in text.split(",") if w.strip()]


def run(args: argparse.Namespace) -> int:
    if args.synth_command == "dataset":
        from stemwatch.synth.dataset import generate_dataset

        try:
            hours = tuple(float(h) for h in args.hours.split(","))
        except ValueError:
            raise StemwatchError(
                f"--hours {args.hours!r}: give comma-separated numbers like 0,6,12,24,48"
            ) from None
        fluorescence = None
        if args.fluorescence:
            from stemwatch.synth.fluorescence import FluorescenceSpec

            fluorescence = FluorescenceSpec(
                autofluorescence_rate=args.autofluorescence, faint_rate=args.faint_staining
            )
        manifest = generate_dataset(
            args.out,
            n_experiments=args.experiments,
            wells_per_class=args.wells_per_class,
            fields_per_well=args.fields,
            timepoints_h=hours,
            size=args.size,
            bit_depth=args.bit_depth,
            difficulty=args.difficulty,
            seed=args.seed,
            label_by=args.label_by,
            compression=args.compression,
            workers=args.workers,
            fluorescence=fluorescence,
        )
        n = sum(1 for _ in manifest.open()) - 1
        print(f"wrote {n} images; manifest: {manifest}")
        if fluorescence is not None:
            print(
                f"paired fluorescence in {manifest.parent / 'fluorescence'} (autofluorescence "
                f"{fluorescence.autofluorescence_rate:g}, faint staining "
                f"{fluorescence.faint_rate:g}); label with: stemwatch label {manifest.parent} "
                f"{manifest.parent / 'fluorescence'} -o LABELLED"
            )
        return 0
    if args.synth_command == "sheet":
        from stemwatch.synth.contact import make_contact_sheet

        out = make_contact_sheet(
            args.out,
            size=args.size,
            seed=args.seed,
            difficulty=args.difficulty,
            real_image=args.real,
        )
        print(f"wrote {out}")
        return 0
    if args.synth_command == "plate":
        from stemwatch.synth.plate import generate_plate

        truth = generate_plate(args.out, plate_spec(args), workers=args.workers)
        print(f"wrote {len(truth.files)} images; ground truth: {truth.ground_truth_csv}")
        return 0
    from stemwatch.synth.acquire import AcquisitionSpec, acquire

    acquisition = AcquisitionSpec(speedup=args.speedup, interval_s=args.pass_interval)
    result = acquire(args.out, plate_spec(args), acquisition, log_path=args.log)
    print(f"acquired {len(result.records)} files into {args.out}")
    return 0


def plate_spec(args: argparse.Namespace) -> PlateSpec:
    """The plate of ``synth plate`` and ``synth acquire`` from their flags."""
    return PlateSpec(
        wells=_wells(args.wells),
        n_fields=args.fields,
        n_timepoints=args.timepoints,
        interval_h=args.interval,
        size=args.size,
        bit_depth=args.bit_depth,
        seed=args.seed,
        plate_name=args.plate_name,
        difficulty=args.difficulty,
        compression=args.compression,
    )

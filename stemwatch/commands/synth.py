"""`stemwatch synth`: Generate synthetic label-free images, plates and live acquisitions."""

from __future__ import annotations

import argparse
from pathlib import Path

from stemwatch.core.cores import usable_cores
from stemwatch.core.errors import StemwatchError
from stemwatch.synth import dataset as ds
from stemwatch.synth.cellline import CELL_LINES
from stemwatch.synth.spec import PlateSpec


def _optics(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cell-line",
        default="hipsc",
        choices=list(CELL_LINES),
        help="what grows: hipsc (human iPSC) or mesc (mouse ESC in 2i+LIF, induced to "
        "EpiLC as in Waisman et al. 2019) (hipsc)",
    )
    p.add_argument(
        "--modality",
        default="brightfield",
        choices=["brightfield", "phase"],
        help="brightfield or phase contrast (brightfield)",
    )
    p.add_argument(
        "--pixel-size-um",
        type=float,
        default=1.0,
        help="pixel size in µm, 0.5-2 (1.0; cells are 5-8 µm, colonies 50-500 µm)",
    )


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
        cores = usable_cores()
        p.add_argument(
            "--workers",
            type=int,
            default=cores,
            help=f"rendering processes (one per usable core: {cores}); same seed, same bytes",
        )


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
    _common(d, size=ds.DEFAULT_SIZE, bit_depth=8)
    _optics(d)
    n_exp, n_wells, n_fields = ds.DEFAULT_EXPERIMENTS, ds.DEFAULT_WELLS_PER_CLASS, ds.DEFAULT_FIELDS
    hours = ",".join(f"{h:g}" for h in ds.DEFAULT_HOURS)
    d.add_argument("--experiments", type=int, default=n_exp, help=f"experiments/plates ({n_exp})")
    d.add_argument(
        "--wells-per-class", type=int, default=n_wells, help=f"wells per class ({n_wells})"
    )
    d.add_argument("--fields", type=int, default=n_fields, help=f"fields per well ({n_fields})")
    d.add_argument("--hours", default=hours, help=f"hours since induction ({hours})")
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
    _optics(pl)
    _plate_args(pl)

    a = ss.add_parser("acquire", help="write a plate time-lapse live, like an instrument")
    _common(a, size=512, bit_depth=16, workers=False)
    _optics(a)
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
    sh.add_argument("--hours", default="0,12,24,48", help="hours since induction (0,12,24,48)")
    _optics(sh)

    r = ss.add_parser(
        "realism",
        help="how well a texture classifier tells real images from synthetic ones",
        description="Cut crops at native resolution from the real images in REAL_DIR and from "
        "synthetic fields at the same pixel size, compute intensity-normalised texture "
        "statistics and report how well a random forest separates them (balanced accuracy and "
        "ROC-AUC, cross-validated with folds grouped by source image, 95 % intervals from a "
        "bootstrap over images), the features that separate most, and plots. 0.5 means "
        "indistinguishable. Needs the 'train' extra (scikit-learn, matplotlib).",
    )
    r.add_argument("real_dir", type=Path, help="folder of real images (searched recursively)")
    r.add_argument(
        "--pixel-size-um",
        type=float,
        default=None,
        help="pixel size of the real images in µm (default: their OME PhysicalSizeX; "
        "required when they do not state it)",
    )
    r.add_argument(
        "--modality",
        default="brightfield",
        choices=["brightfield", "phase"],
        help="how the synthetic fields are imaged (brightfield)",
    )
    r.add_argument("--crop", type=int, default=256, help="crop side in pixels (256)")
    r.add_argument(
        "--features",
        default="full",
        choices=["basic", "full"],
        help="basic: 18 (local sd, gradients, power spectrum); full: 68 (+ LBP, GLCM, blobs, "
        "distribution shape...) (full)",
    )
    r.add_argument(
        "--condition",
        default="maintenance",
        choices=["maintenance", "induced"],
        help="synthetic wells to compare: undifferentiated (maintenance) or induced",
    )
    r.add_argument("--hours", default="0,24,48", help="synthetic time points, hours (0,24,48)")
    r.add_argument(
        "--difficulty", default="default", choices=["easy", "default", "hard"], help="(default)"
    )
    r.add_argument(
        "--synthetic-images",
        type=int,
        default=None,
        help="synthetic fields to render (default: enough for as many crops as the real set)",
    )
    r.add_argument(
        "--synthetic-size", type=int, default=1024, help="synthetic field side, px (1024)"
    )
    r.add_argument(
        "--max-crops-per-image", type=int, default=64, help="crops per image at most (64)"
    )
    r.add_argument("--folds", type=int, default=4, help="cross-validation folds (4)")
    r.add_argument("--repeats", type=int, default=5, help="repetitions of the folds (5)")
    r.add_argument("--seed", type=int, default=0, help="random seed (0)")
    r.add_argument(
        "-o", "--out", type=Path, default=None, help="folder for report.json, CSV and plots"
    )
    p.set_defaults(func=run)


def _wells(text: str) -> int | list[str]:
    if text.isdigit():
        return int(text)
    return [w.strip() for w in text.split(",") if w.strip()]


def _hours(text: str, option: str) -> tuple[float, ...]:
    try:
        hours = tuple(float(h) for h in text.split(","))
    except ValueError:
        raise StemwatchError(
            f"{option} {text!r}: give comma-separated numbers like 0,6,12,24,48"
        ) from None
    if any(h < 0 for h in hours):
        raise StemwatchError(f"{option} {text!r}: hours must be >= 0")
    return hours


def _realism(args: argparse.Namespace) -> int:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise StemwatchError(
            "the realism gauge needs scikit-learn: pip install 'stemwatch[train]'"
        ) from None
    from stemwatch.evaluation.realism import run_gauge

    if args.crop < 32:
        raise StemwatchError(f"--crop {args.crop}: use at least 32 pixels")
    if args.synthetic_size < args.crop:
        raise StemwatchError(
            f"--synthetic-size {args.synthetic_size} is smaller than --crop {args.crop}"
        )
    report = run_gauge(
        args.real_dir,
        pixel_size_um=args.pixel_size_um,
        modality=args.modality,
        crop=args.crop,
        feature_set=args.features,
        condition=args.condition,
        hours=_hours(args.hours, "--hours"),
        difficulty=args.difficulty,
        synthetic_size=args.synthetic_size,
        max_crops_per_image=args.max_crops_per_image,
        n_synthetic=args.synthetic_images,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        out_dir=args.out,
    )
    print(report.text())
    return 0


def run(args: argparse.Namespace) -> int:
    if args.synth_command == "realism":
        return _realism(args)
    if args.synth_command == "dataset":
        from stemwatch.synth.dataset import generate_dataset

        hours = _hours(args.hours, "--hours")
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
            pixel_size_um=args.pixel_size_um,
            modality=args.modality,
            cell_line=args.cell_line,
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
            pixel_size_um=args.pixel_size_um,
            modality=args.modality,
            cell_line=args.cell_line,
            hours=_hours(args.hours, "--hours"),
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
        pixel_size_um=args.pixel_size_um,
        modality=args.modality,
        cell_line=args.cell_line,
    )

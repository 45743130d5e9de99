"""`stemwatch label`: Label phase-contrast blocks from paired immunofluorescence (Kusumoto)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "label",
        help="Label phase-contrast blocks from paired immunofluorescence (Kusumoto)",
        description=(
            "Label phase-contrast blocks from paired immunofluorescence (Kusumoto): threshold "
            "each fluorescence image (Otsu only when its histogram is bimodal, else relative "
            "to a control image or the image's background), cut both into blocks, call a "
            "block stained when its stained fraction reaches --stained-fraction; writes block "
            "TIFFs, manifest.csv (plate, well, field, hours since induction, the rule used) "
            "and label_report.json. With ground-truth masks (FLUORESCENCE/truth/, as "
            "`stemwatch synth dataset --fluorescence` writes), reports the labels' accuracy."
        ),
    )
    p.add_argument(
        "phase", type=Path, help="folder of label-free images (sub-folders searched too)"
    )
    p.add_argument("fluorescence", type=Path, help="folder of fluorescence images (same names)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--block-size", type=int, default=256, help="block side in pixels (256)")
    p.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="fixed fluorescence threshold in raw units (default: the rule above)",
    )
    p.add_argument(
        "--control",
        type=Path,
        default=None,
        help="control image (no primary antibody), or a folder of them named <plate>.tif; "
        "default FLUORESCENCE/control/ when it exists",
    )
    p.add_argument(
        "--truth",
        type=Path,
        default=None,
        help="folder of ground-truth masks (same names; 2 = stained cell); default "
        "FLUORESCENCE/truth/ when it exists",
    )
    p.add_argument(
        "--background-k",
        type=float,
        default=5.0,
        help="robust sds above the background median that make a pixel stained (5)",
    )
    p.add_argument(
        "--stained-fraction",
        type=float,
        default=0.3,
        help="stained-pixel fraction that makes a block stained (0.3)",
    )
    p.add_argument(
        "--induction-h",
        type=float,
        default=0.0,
        help="hours after the time origin (experiment start, or each plate's first image) "
        "at which differentiation was induced (0)",
    )
    p.add_argument("--stained-class", default="differentiated", help="label of stained blocks")
    p.add_argument("--unstained-class", default="undifferentiated", help="label of the others")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stemwatch.core.errors import ConfigError
    from trainer.label import (
        Controls,
        LabelSettings,
        find_default,
        label_pairs,
        pair_images,
        source_manifest,
        summary_lines,
    )
    from trainer.threshold import ThresholdRule

    if args.block_size < 8:
        raise ConfigError(f"--block-size {args.block_size} is too small; use at least 8")
    if not 0 < args.stained_fraction <= 1:
        raise ConfigError(f"--stained-fraction {args.stained_fraction} must be in (0, 1]")
    if not args.background_k > 0:
        raise ConfigError(f"--background-k {args.background_k} must be positive, e.g. 5")
    settings = LabelSettings(
        block_size=args.block_size,
        rule=ThresholdRule(background_k=args.background_k, fixed=args.threshold),
        stained_fraction=args.stained_fraction,
        stained_class=args.stained_class,
        unstained_class=args.unstained_class,
        induction_h=args.induction_h,
    )
    truth = args.truth or find_default(args.fluorescence, "truth")
    control = args.control or find_default(args.fluorescence, "control")
    pairs = pair_images(args.phase, args.fluorescence, truth_dir=truth, skip=[args.out])
    result = label_pairs(
        pairs,
        args.out,
        settings,
        controls=Controls.load(control),
        source_rows=source_manifest(args.phase),
    )
    if control is not None:
        print(f"control: {control}")
    for line in summary_lines(result):
        print(line)
    return 0

"""`stemwatch label`: Label phase-contrast blocks from paired immunofluorescence (Kusumoto)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "label",
        help="Label phase-contrast blocks from paired immunofluorescence (Kusumoto)",
        description=(
            "Label phase-contrast blocks from paired immunofluorescence (Kusumoto): binarise "
            "each fluorescence image, cut both into blocks, call a block stained when its "
            "white fraction reaches --stained-fraction; writes block TIFFs and manifest.csv."
        ),
    )
    p.add_argument("phase", type=Path, help="folder of phase-contrast images")
    p.add_argument("fluorescence", type=Path, help="folder of fluorescence images (same names)")
    p.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    p.add_argument("--block-size", type=int, default=256, help="block side in pixels (256)")
    p.add_argument(
        "--threshold", type=float, default=None, help="fixed fluorescence threshold (default Otsu)"
    )
    p.add_argument(
        "--stained-fraction",
        type=float,
        default=0.3,
        help="white-pixel fraction that makes a block stained (0.3)",
    )
    p.add_argument("--stained-class", default="differentiated", help="label of stained blocks")
    p.add_argument("--unstained-class", default="undifferentiated", help="label of the others")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stemwatch.core.errors import ConfigError
    from trainer.label import LabelSettings, label_pairs, pair_images

    if args.block_size < 8:
        raise ConfigError(f"--block-size {args.block_size} is too small; use at least 8")
    if not 0 < args.stained_fraction <= 1:
        raise ConfigError(f"--stained-fraction {args.stained_fraction} must be in (0, 1]")
    settings = LabelSettings(
        block_size=args.block_size,
        threshold=args.threshold,
        stained_fraction=args.stained_fraction,
        stained_class=args.stained_class,
        unstained_class=args.unstained_class,
    )
    manifest = label_pairs(pair_images(args.phase, args.fluorescence), args.out, settings)
    print(manifest)
    return 0

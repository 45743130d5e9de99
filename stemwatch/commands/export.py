"""`stemwatch export`: Export a trained checkpoint to ONNX with its metadata.

``stemwatch export RUN/best.pt -o model.onnx --parity-images some/tiffs/ [--bioimageio]``
writes one ONNX file (fixed tile size, dynamic batch, calibrated probabilities, CAM where the
architecture has one, penultimate features) after checking that onnxruntime agrees with torch
on real tiles. The model carries a description of its training domain, fitted on the training
run's own images (the checkpoint names them) so that the monitor can tell images unlike them;
see docs/domain-check.md. ``--bioimageio`` adds a bioimage.io package (its sample image: the
first parity image, else a held-out image of the run) and tests it with bioimageio.core: exit
1 when it fails. ``--int8`` also writes a static int8 (QDQ) model calibrated on training tiles
(``OUT.int8.onnx`` unless named), and reports its accuracy against fp32 on the run's held-out
split (95 % intervals over wells, paired difference) and its speed (``trainer/quantize.py``,
``stemwatch/evaluation/int8.py``; when it pays: docs/architectures-inference.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="Export a trained checkpoint to ONNX with its metadata",
        description=(
            "Export a trained checkpoint to ONNX with its metadata (classes, tiling, "
            "normalisation, temperature, training summary), checked against torch."
        ),
    )
    p.add_argument("checkpoint", type=Path, help="checkpoint .pt written by `stemwatch train`")
    p.add_argument("-o", "--out", type=Path, required=True, help="ONNX file to write")
    p.add_argument(
        "--parity-images",
        type=Path,
        nargs="+",
        metavar="DIR_OR_FILE",
        help="real images (or folders of them) whose tiles torch and onnxruntime must agree "
        "on; without them synthetic tiles are used",
    )
    domain = p.add_mutually_exclusive_group()
    domain.add_argument(
        "--domain-data",
        type=Path,
        metavar="MANIFEST_OR_DIR",
        help="training-domain images to describe the model's domain with (a manifest CSV or a "
        "class-folder tree; default: the training data and split the checkpoint records)",
    )
    domain.add_argument(
        "--no-domain",
        action="store_true",
        help="export without a domain description (the monitor then cannot tell images "
        "unlike the training data)",
    )
    p.add_argument("--name", help="model name in the metadata (default: the file stem)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-4,
        help="largest allowed torch/onnxruntime difference, relative to max(1, |output|)",
    )
    p.add_argument(
        "--bioimageio",
        nargs="?",
        const=True,
        default=None,
        metavar="DIR",
        help="also write a bioimage.io model package (default DIR: OUT without .onnx + "
        "'.bioimageio') and test it with bioimageio.core when installed (`pip install -e "
        "'.[bioimageio]'`): exit 1 if it fails, the package kept with VALIDATION_FAILED.txt",
    )
    q = p.add_argument_group(
        "int8",
        "a static QDQ int8 model beside the fp32 one; on a CPU with VNNI it pays for "
        "conv-heavy networks (ResNets about 3x, DenseNet-121 about 2x), not for the small "
        "default fastnet (0.8-1x): docs/architectures-inference.md",
    )
    q.add_argument(
        "--int8",
        nargs="?",
        const=True,
        default=None,
        type=Path,
        metavar="PATH",
        help="also write an int8 model (default PATH: OUT with .int8.onnx) and its report "
        "(PATH with .report.json): accuracy against fp32 on the run's held-out split, speed",
    )
    q.add_argument(
        "--calibration-images",
        type=Path,
        nargs="+",
        metavar="DIR_OR_FILE",
        help="training images (or folders of them) to calibrate on (default: the run's "
        "training split, recorded in the checkpoint); never held-out test images",
    )
    q.add_argument(
        "--calibration-max-images",
        type=int,
        default=32,
        metavar="N",
        help="calibrate on at most N images, spread over wells and classes (32)",
    )
    q.add_argument(
        "--calibration-max-tiles", type=int, default=256, metavar="N", help="... and N tiles (256)"
    )
    q.add_argument(
        "--per-tensor",
        action="store_true",
        help="one weight scale per tensor instead of per output channel",
    )
    q.add_argument(
        "--int8-tolerance",
        type=float,
        default=0.05,
        help="largest allowed mean |int8 - fp32| of the probabilities on the calibration "
        "tiles (0.05)",
    )
    q.add_argument(
        "--speed-repeats",
        type=int,
        default=5,
        metavar="N",
        help="alternating timed runs per model and setting in the speed comparison (5; 0 skips)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trainer.export import export_onnx

    calibration = None
    if args.int8:  # read (and fail on) the calibration images before the export
        from stemwatch.core.errors import ConfigError
        from trainer.quantize import calibration_for, int8_path_for

        args.int8 = int8_path_for(args.out) if args.int8 is True else Path(args.int8)
        if args.int8.resolve() == args.out.resolve():
            raise ConfigError(
                f"--int8 {args.int8}: the int8 model needs its own file beside the fp32 model "
                f"{args.out}; leave PATH out (it becomes {int8_path_for(args.out).name})"
            )
        calibration = calibration_for(
            args.checkpoint,
            args.calibration_images,
            max_images=args.calibration_max_images,
            max_tiles=args.calibration_max_tiles,
        )
    report = export_onnx(
        args.checkpoint,
        args.out,
        parity_images=args.parity_images,
        opset=args.opset,
        tolerance=args.tolerance,
        name=args.name,
        domain=not args.no_domain,
        domain_data=args.domain_data,
    )
    print(report.summary())
    if calibration is not None:
        from stemwatch.evaluation.int8 import int8_summary, make_int8

        int8 = make_int8(
            args.checkpoint,
            args.out,
            args.int8,
            calibration,
            per_channel=not args.per_tensor,
            tolerance=args.int8_tolerance,
            speed_repeats=args.speed_repeats,
        )
        print("\n".join(int8_summary(int8)))
    if args.bioimageio:
        out_dir = (
            args.out.with_suffix(".bioimageio")
            if args.bioimageio is True
            else Path(args.bioimageio)
        )
        return write_and_validate_package(args, out_dir)
    return 0


def write_and_validate_package(args: argparse.Namespace, out_dir: Path) -> int:
    """The bioimage.io package beside the model, tested with bioimageio.core when installed:
    exit 1 (the package kept for inspection, marked) when it does not pass."""
    from trainer.bioimageio_package import (
        default_test_tile,
        first_image,
        validate_package,
        write_bioimageio_package,
    )
    from trainer.checkpoint import load_checkpoint

    sample = first_image(args.parity_images or [])
    if sample is None:  # a held-out image of the run
        split = load_checkpoint(args.checkpoint).split or {}
        held_out = [Path(im["path"]) for im in split.get("images", []) if im["part"] == "test"]
        sample = first_image([p for p in held_out if p.is_file()][:1])
    if sample is not None:
        rdf = write_bioimageio_package(args.out, out_dir, sample_image=sample)
    else:
        rdf = write_bioimageio_package(
            args.out, out_dir, test_tile=default_test_tile(args.out, None)
        )
    passed, text = validate_package(rdf)
    failed_marker = out_dir / "VALIDATION_FAILED.txt"
    failed_marker.unlink(missing_ok=True)
    if passed is None:
        print(f"bioimage.io package: {rdf} (NOT validated: {text})")
        return 0
    if passed:
        print(f"bioimage.io package: {rdf} ({text})")
        return 0
    failed_marker.write_text(text + "\n", encoding="utf-8")
    print(
        f"stemwatch export: error: the bioimage.io package {out_dir} does not pass "
        f"bioimageio.core's test_model; it is kept for inspection (see {failed_marker.name}), "
        f"do not publish it. The ONNX model {args.out} itself passed its parity check.\n{text}",
        file=sys.stderr,
    )
    return 1

"""`stemwatch export`: Export a trained checkpoint to ONNX with its metadata.

``stemwatch export RUN/best.pt -o model.onnx --parity-images some/tiffs/ [--bioimageio]``
writes one ONNX file (fixed tile size, dynamic batch, calibrated probabilities, CAM where the
architecture has one, penultimate features) after checking that onnxruntime agrees with torch
on real tiles. The model carries a description of its training domain, fitted on the training
run's own images (the checkpoint names them) so that the monitor can tell images unlike them;
see docs/domain-check.md. ``--bioimageio`` adds a bioimage.io package (its sample image: the
first parity image, else a held-out image of the run) and tests it with bioimageio.core: exit
1 when it fails.
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trainer.export import export_onnx

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

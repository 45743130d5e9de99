"""`stemwatch export`: Export a trained checkpoint to ONNX with its metadata.

``stemwatch export RUN/best.pt -o model.onnx --parity-images some/tiffs/ [--bioimageio]``
writes one ONNX file (fixed tile size, dynamic batch, calibrated probabilities, CAM where the
architecture has one, penultimate features) after checking that onnxruntime agrees with torch
on real tiles. The model carries a description of its training domain, fitted on the training
run's own images (the checkpoint names them) so that the monitor can tell images unlike them;
see docs/domain-check.md.
"""

from __future__ import annotations

import argparse
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
        "'.bioimageio'); needs `pip install -e '.[bioimageio]'`",
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
        from trainer.bioimageio_package import default_test_tile, write_bioimageio_package

        out_dir = (
            args.out.with_suffix(".bioimageio")
            if args.bioimageio is True
            else Path(args.bioimageio)
        )
        rdf = write_bioimageio_package(
            args.out, out_dir, test_tile=default_test_tile(args.out, args.parity_images)
        )
        print(f"bioimage.io package: {rdf}")
    return 0

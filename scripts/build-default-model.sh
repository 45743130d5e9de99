#!/usr/bin/env bash
# Rebuilds the bundled model, models/stemwatch-default.onnx, from scratch on CPU:
# a synthetic labelled set (labels by true differentiation state), fastnet trained with the
# recipe in models/stemwatch-default.train.yaml, evaluation on held-out wells, ONNX export
# with a parity check on real test images, and a bioimage.io package beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/default-model
rm -rf "$out"
stemwatch synth dataset "$out/data" --size 512 --experiments 3 --wells-per-class 6 \
  --fields 2 --hours 0,6,12,24,48 --label-by state --seed 11 --workers 2
stemwatch train --config models/stemwatch-default.train.yaml
stemwatch export "$out/run/best.pt" -o models/stemwatch-default.onnx \
  --name stemwatch-default --parity-images "$out"/data/*/*_f1_048.0h.tif \
  --bioimageio models/stemwatch-default.bioimageio
cp "$out/run/summary.json" models/stemwatch-default.summary.json

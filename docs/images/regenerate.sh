#!/usr/bin/env bash
# Redraws the pictures of the guides with the cnn tool, on the quickstart's generated colour images (no download):
#   training-curves.png   cnn train --plot        (loss, accuracy and learning rate per epoch)
#   confusion-matrix.png  cnn eval --plot         (counts and per-class recall on held-out images)
#   grad-cam.png          cnn explain             (where the trained model looks for the predicted class)
#   feature-maps.png      cnn feature-maps        (the channels of the first stage for one image)
# Usage: docs/images/regenerate.sh   (needs Release builds of src/Cnn.Cli and examples/Quickstart; a few minutes on two CPU cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/docs/images"
cnn() { dotnet "$root/src/Cnn.Cli/bin/Release/net10.0/cnn.dll" "$@"; }
quickstart() { dotnet "$root/examples/Quickstart/bin/Release/net10.0/Quickstart.dll" "$@"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

quickstart --generate-only "$work/train" --per-class 60 --seed 1 >/dev/null
quickstart --generate-only "$work/test" --per-class 20 --seed 2 >/dev/null
cnn train -q --model resnet18 --data "$work/train" --image-size 64 --epochs 8 --lr 0.003 --val-split 0.2 --precision float32 \
    --plot --output "$work/model.zip"
cnn eval --model-file "$work/model.zip" --data "$work/test" --plot "$out/confusion-matrix.png" >/dev/null
cnn explain --model-file "$work/model.zip" "$work/test/triangle/0.png" -o "$out/grad-cam.png" >/dev/null
cnn feature-maps --model-file "$work/model.zip" "$work/test/triangle/0.png" --stage 1 --channels 32 -o "$out/feature-maps.png" >/dev/null
cp "$work/model.curves.png" "$out/training-curves.png"
ls -l "$out"/*.png

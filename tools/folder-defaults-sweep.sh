#!/usr/bin/env bash
# The folder-defaults sweep (README "Defaults for small folders"): Fashion-MNIST written out as PNG class folders (as a new user
# has them), `cnn train --data <folder>` with each candidate crop scale and learning rate, `cnn eval` on held-out PNGs.
# Usage: tools/folder-defaults-sweep.sh [out-dir]      (needs the Debian package dataset-fashion-mnist and python3-pil)
# ROUND=3 runs only the third round (the candidate defaults).
# Prints one line per run: model, training images, epochs, --min-scale, --lr, --sched, held-out accuracy, wall seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/cnn-folder-sweep}
cnn=${CNN:-"dotnet src/Cnn.Cli/bin/Release/net10.0/cnn.dll"}  # CNN="dotnet /copy/cnn.dll" keeps a sweep safe from rebuilds
mkdir -p "$out"
/usr/bin/python3 - "$out" <<'PY'
import gzip, os, sys, numpy as np
from PIL import Image
out = sys.argv[1]
src = "/usr/share/datasets/fashion-mnist"
names = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
def load(prefix):
    with gzip.open(f"{src}/{prefix}-images-idx3-ubyte.gz") as f: x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(f"{src}/{prefix}-labels-idx1-ubyte.gz") as f: y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y
for split, prefix, counts in [("train", "train", (100, 400)), ("test", "t10k", (200,))]:
    x, y = load(prefix)
    for per_class in counts:
        folder = f"{out}/{split}-{per_class}"
        if os.path.isdir(folder): continue
        for c, name in enumerate(names):
            os.makedirs(f"{folder}/{name}", exist_ok=True)
            for k, i in enumerate(np.flatnonzero(y == c)[:per_class]):
                Image.fromarray(x[i]).save(f"{folder}/{name}/{k:04d}.png")
PY
run() { # model per-class epochs min-scale lr sched [extra...]
  local model=$1 per=$2 epochs=$3 scale=$4 lr=$5 sched=$6; shift 6
  local file="$out/m-$model-$per-$epochs-$scale-$lr-$sched.zip" start=$SECONDS
  $cnn train --model "$model" --data "$out/train-$per" --epochs "$epochs" --min-scale "$scale" --lr "$lr" --sched "$sched" \
      --seed 1 -q --force --output "$file" "$@" >/dev/null
  local acc
  acc=$($cnn eval --model-file "$file" --data "$out/test-200" | sed -n 's/.*accuracy \([0-9.]*%\).*/\1/p' | head -1)
  printf '%-9s %5d imgs  %d epochs  min-scale %-4s  lr %-6s  %-8s %-28s held-out %s  (%ds)\n' "$model" $((per * 10)) "$epochs" "$scale" "$lr" "$sched" "$*" "$acc" $((SECONDS - start))
}
if [ "${ROUND:-all}" = all ]; then
for per in 400 100; do
  for scale in 0.08 0.35 0.6 1.0; do
    for lr in 0.001 0.003; do run lenet5 $per 4 $scale $lr cosine; done
  done
  run lenet5 $per 4 0.6 0.003 onecycle
done
for per in 400 100; do
  for scale in 0.08 0.35 0.6 1.0; do run resnet18 $per 4 $scale 0.001 cosine --image-size 32; done
done
# Second round, around the best of the first: less cropping, higher rates, smaller batches, the one-cycle schedule.
for per in 400 100; do
  for scale in 0.75 1.0; do
    for lr in 0.003 0.006 0.01; do run lenet5 $per 4 $scale $lr cosine; done
    run lenet5 $per 4 $scale 0.006 cosine --batch-size 16
    run lenet5 $per 4 $scale 0.006 onecycle
  done
  for scale in 0.6 0.75 1.0; do run resnet18 $per 4 $scale 0.003 cosine --image-size 32; done
done
fi
# Third round: the candidate defaults at batch 16, and resnet18 at 1,000 images around its best.
[ "${ROUND:-all}" = all ] || for scale in 0.6 0.75 1.0; do run resnet18 100 4 $scale 0.003 cosine --image-size 32; done  # in round 2 already
for per in 400 100; do
  run lenet5 $per 4 1.0 0.003 cosine --batch-size 16
  run resnet18 $per 4 0.75 0.003 cosine --batch-size 16 --image-size 32
done

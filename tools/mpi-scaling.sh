#!/usr/bin/env bash
# Data-parallel scaling on one machine: 1 process x 1 and x 2 threads against mpirun -np 2 x 1 thread, same global batch, same data.
# Prints, per model, the second epoch's images/s (the first warms up) and the time each step spends inside MPI_Allreduce.
# usage: tools/mpi-scaling.sh [models...]   (default: resnet18 resnet50; 112 px, 2 epochs of a global batch of 16)
set -euo pipefail
cd "$(dirname "$0")/.."
models=("${@:-resnet18}")
[ $# -eq 0 ] && models=(resnet18 resnet50)
cnn=src/Cnn.Cli/bin/Release/net10.0/cnn.dll
[ -f "$cnn" ] || dotnet build src/Cnn.Cli -c Release >/dev/null
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# 96 noisy colour images, 3 classes (the test suite's generator, in Python to stay self-contained).
/usr/bin/python3 - "$work/data" <<'PY'
import os, random, struct, sys, zlib
random.seed(5)
def png(path, w, h, pix):
    raw = b''.join(b'\x00' + bytes(pix[y * w * 3:(y + 1) * w * 3]) for y in range(h))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    open(path, 'wb').write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))
for c, name in enumerate(['red', 'green', 'blue']):
    os.makedirs(f'{sys.argv[1]}/{name}')
    for i in range(32):
        w, h, level = random.randint(120, 160), random.randint(120, 160), random.randint(150, 255)
        png(f'{sys.argv[1]}/{name}/{i:02d}.png', w, h, [max(0, min(255, (level if k == c else 40) + random.randint(-40, 40))) for p in range(w * h) for k in range(3)])
PY
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--data "$work/data" --epochs 2 --image-size 112 --opt sgd --sched constant --lr 0.01 --augment off --val-split 0 --quiet)
printf '%-9s %-22s %10s %22s\n' model setup 'img/s' 'allreduce ms/step'
for model in "${models[@]}"; do
  for threads in 1 2; do
    one=$(dotnet "$cnn" train --model "$model" "${common[@]}" --batch-size 16 --threads $threads --output "$work/one.zip"); [ -n "${MPI_SCALING_VERBOSE:-}" ] && echo "$one" >&2
    ips=$(grep 'epoch 2/2' <<<"$one" | grep -o '[0-9]* img/s' | grep -o '[0-9]*')
    printf '%-9s %-22s %10s %22s\n' "$model" "1 process x $threads thread(s)" "$ips" '-'
  done
  two=$(mpirun --oversubscribe --mca btl_vader_single_copy_mechanism none -np 2 dotnet "$cnn" train --model "$model" "${common[@]}" --batch-size 8 --threads 1 --output "$work/two.zip"); [ -n "${MPI_SCALING_VERBOSE:-}" ] && echo "$two" >&2
  ips=$(grep 'epoch 2/2' <<<"$two" | grep -o '[0-9]* img/s' | grep -o '[0-9]*')
  ms=$(grep -o '[0-9.]* ms per step in allreduce' <<<"$two" | grep -o '^[0-9.]*')
  mb=$(grep -o '[0-9.]* MB of gradients per step' <<<"$two" | grep -o '^[0-9.]*')
  # rank 0 reports its own shard's rate: the job trains twice as many images in that time.
  printf '%-9s %-22s %10s %22s\n' "$model" '2 processes x 1 thread' "$((2 * ips))" "$ms ($mb MB)"
done

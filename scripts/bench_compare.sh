#!/usr/bin/env bash
# Compare two rram binaries on the same machine in one go (ratios within one run are what this
# VM's speed drift allows): LeNet-5 and ResNet-20, 2 threads, twice each, alternating.
#   scripts/bench_compare.sh OLD_BINARY NEW_BINARY
set -euo pipefail
OLD=${1:?old binary}
NEW=${2:?new binary}
for i in 1 2; do
  for v in OLD NEW; do
    bin=${!v}
    echo "== lenet5 $v run $i (2 threads)"
    "$bin" bench --bits 4,4,4,4 --threads 2 --steps 50 --repeats 5 2>&1 | grep -E "images/s|ratio"
  done
done
for i in 1 2; do
  for v in OLD NEW; do
    bin=${!v}
    echo "== resnet20 $v run $i (2 threads)"
    "$bin" bench --model resnet20 --dataset cifar10 --bits 4,4,4,4 --batch 128 --threads 2 \
      --steps 3 --repeats 3 2>&1 | grep -E "images/s|ratio"
  done
done

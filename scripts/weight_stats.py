#!/usr/bin/env python3
"""Per-tensor statistics of a run's checkpoint: rms, mean and share of positive values of every
f32 tensor (latent weights, biases, the arrays' conductances), and α of each layer.

Usage: scripts/weight_stats.py RUN_DIR [RUN_DIR ...]  (reads RUN_DIR/checkpoint.safetensors;
standard library only: safetensors is an 8-byte header length, a JSON header, then raw data).
"""
import json
import math
import struct
import sys

for run in sys.argv[1:]:
    data = open(run + "/checkpoint.safetensors", "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header, base = json.loads(data[8:8 + n]), 8 + n
    print(run)
    for name, t in sorted(header.items()):
        if name == "__metadata__" or t["dtype"] != "F32" or name.startswith("velocity."):
            continue
        s, e = t["data_offsets"]
        xs = struct.unpack("<%df" % ((e - s) // 4), data[base + s:base + e])
        if name.endswith("log_scale"):
            print("  %-28s alpha=%.4g" % (name, math.exp(xs[0])))
        elif len(xs) > 2:
            rms = math.sqrt(sum(x * x for x in xs) / len(xs))
            pos = sum(1 for x in xs if x > 0) / len(xs)
            print("  %-28s n=%-6d rms=%.4g mean=%.4g positive=%.3f"
                  % (name, len(xs), rms, sum(xs) / len(xs), pos))

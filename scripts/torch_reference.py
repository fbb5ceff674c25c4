#!/usr/bin/env python3
"""ResNet-20 on CIFAR-10 in PyTorch, with rram's fp32 recipe, as an independent reference.

Not part of the build or the tests: it answers "does rram's fp32 ResNet-20 learn as a standard
framework's does at the same recipe?" (docs/results.md, "The same recipe in PyTorch").

Same as `rram train --model resnet20 --dataset cifar10 --bits 32,32,32,32 --hardware ideal`:
option-A shortcuts, He-uniform weights (bound sqrt(6/fan_in)), zero biases, BN (momentum 0.1,
eps 1e-5), SGD momentum 0.9 with weight decay on weights only, per-step cosine learning rate,
4-pixel zero padding (black, before normalisation) + random crop + flip, the usual channel
means/stds, the first N training images in rram's order (file name, then label). Differences:
PyTorch's own random streams (shuffling, crops, initial weights), and no digital output scale α
on the first conv and the FC (rram calibrates and trains one; the BN after conv1 makes it moot
there).

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch numpy pillow
    /tmp/tv/bin/python scripts/torch_reference.py --n 10000 --epochs 8 --batch 64 --lr 0.05
    (--label-smoothing EPS, --cutout N, --test-flip: as rram's flags of the same names;
    --ema DECAY, --eval-every K, --test-shifts S: probes of recipes rram does not have yet)

Prints one JSON object per epoch, like rram's metrics.jsonl.
"""
import argparse
import copy
import io
import json
import math
import os
import tarfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()
MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
STD = np.array([0.2470, 0.2435, 0.2616], np.float32)


def load(tar_path, cache):
    """Decode the JPEG class-folder tree once into an .npz cache, in rram's sample order."""
    if not os.path.exists(cache):
        items = {"train": [], "test": []}
        with tarfile.open(tar_path) as t:
            for m in t:
                parts = m.name.split("/")
                if not m.isfile() or not parts[-1].endswith((".jpg", ".png")):
                    continue
                split, cls, name = parts[-3], parts[-2], parts[-1]
                img = Image.open(io.BytesIO(t.extractfile(m).read())).convert("RGB")
                items[split].append((name, CLASSES.index(cls), np.asarray(img)))
        out = {}
        for split, it in items.items():
            it.sort(key=lambda x: (x[0], x[1]))  # file name, then label: classes interleave
            out[split + "_x"] = np.stack([x[2] for x in it])
            out[split + "_y"] = np.array([x[1] for x in it])
        tmp = cache + ".tmp.npz"
        np.savez(tmp, **out)
        os.replace(tmp, cache)
    return np.load(cache)


def prep(x):
    return torch.tensor(((x.astype(np.float32) / 255 - MEAN) / STD).transpose(0, 3, 1, 2))


def augment(x, cutout=0):
    """4-pixel zero padding (black in pixel space), random 32x32 crop, flip with p = 1/2, and
    (rram's --cutout) a cutout x cutout square set to 0 (the mean colour) around a uniform
    centre, clipped to the image."""
    n = x.shape[0]
    pad = torch.tensor(-MEAN / STD).view(1, 3, 1, 1).repeat(n, 1, 40, 40)
    pad[:, :, 4:36, 4:36] = x
    dy, dx, flip = np.random.randint(0, 9, n), np.random.randint(0, 9, n), np.random.rand(n) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        c = pad[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = c.flip(2) if flip[i] else c
    if cutout:
        cy, cx = np.random.randint(0, 32, n), np.random.randint(0, 32, n)
        for i in range(n):
            y0, x0 = max(cy[i] - cutout // 2, 0), max(cx[i] - cutout // 2, 0)
            y1, x1 = min(cy[i] + cutout - cutout // 2, 32), min(cx[i] + cutout - cutout // 2, 32)
            out[i, :, y0:y1, x0:x1] = 0
    return out


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.c1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(c_out)
        self.c2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(c_out)
        self.stride, self.pad = stride, (c_out - c_in) // 2

    def forward(self, x):
        o = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        if self.stride == 1 and self.pad == 0:
            s = x
        else:  # option A: every other pixel, new channels zero-padded half on each side
            s = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(o + s)


class ResNet(nn.Module):
    def __init__(self, depth=20):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks, c_in = [], 16
        for stage, c in enumerate([16, 32, 64]):
            for b in range(n):
                blocks.append(Block(c_in, c, 2 if stage > 0 and b == 0 else 1))
                c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=0, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def shift(x, dy, dx):
    """x moved by (dy, dx) pixels, the uncovered border black (as the training padding)."""
    pad = torch.tensor(-MEAN / STD).view(1, 3, 1, 1).repeat(x.shape[0], 1, 32, 32)
    h, w = 32 - abs(dy), 32 - abs(dx)
    pad[:, :, max(dy, 0):max(dy, 0) + h, max(dx, 0):max(dx, 0) + w] = x[:, :, max(-dy, 0):max(-dy, 0) + h, max(-dx, 0):max(-dx, 0) + w]
    return pad


def views(flip, s):
    """The test-time views: the image, its mirror (flip), and shifts by s pixels (s > 0)."""
    moves = [(0, 0)] + ([(s, 0), (-s, 0), (0, s), (0, -s)] if s else [])
    out = []
    for dy, dx in moves:
        out.append(lambda x, dy=dy, dx=dx: shift(x, dy, dx) if (dy or dx) else x)
        if flip:
            out.append(lambda x, dy=dy, dx=dx: (shift(x, dy, dx) if (dy or dx) else x).flip(3))
    return out


def evaluate(model, xte, yte, vs):
    """Test accuracy with the class probabilities averaged over the views."""
    model.eval()
    with torch.no_grad():
        right = 0
        for j in range(0, len(xte), 500):
            x = xte[j : j + 500]
            p = sum(F.softmax(model(v(x)), 1) for v in vs)
            right += (p.argmax(1) == yte[j : j + 500]).sum().item()
    model.train()
    return right / len(xte)


def main():
    p = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument("--tar", default=os.path.join(here, "../../shared/data/cifar10/cifar10-jpeg.tar.gz"))
    p.add_argument("--cache", default="/tmp/rram_torch_cifar10.npz")
    p.add_argument("--n", type=int, default=50000, help="first N training images")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--cutout", type=int, default=0)
    p.add_argument("--test-flip", action="store_true", help="average the probabilities of each test image and its mirror")
    p.add_argument("--ema", type=float, default=0.0, help="also evaluate an exponential moving average of the weights and BN statistics, updated every step with this decay")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate every K epochs (and after the last)")
    p.add_argument("--test-shifts", type=int, default=0, help="after the last epoch, also average over the test image shifted by S pixels up, down, left and right (zero padding), each with its mirror")
    a = p.parse_args()
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    torch.set_num_threads(a.threads)
    d = load(a.tar, a.cache)
    xtr, ytr = prep(d["train_x"][: a.n]), torch.tensor(d["train_y"][: a.n]).long()
    xte, yte = prep(d["test_x"]), torch.tensor(d["test_y"]).long()
    net = ResNet()
    decay = [q for q in net.parameters() if q.ndim > 1]
    plain = [q for q in net.parameters() if q.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": a.wd}, {"params": plain, "weight_decay": 0.0}],
        lr=a.lr,
        momentum=0.9,
    )
    total = math.ceil(a.n / a.batch) * a.epochs
    ema = copy.deepcopy(net) if a.ema > 0 else None
    step, t0 = 0, time.time()
    for epoch in range(a.epochs):
        perm = torch.randperm(a.n)
        loss_sum, correct, t_epoch = 0.0, 0, time.time()
        for i in range(0, a.n, a.batch):
            idx = perm[i : i + a.batch]
            x, y = augment(xtr[idx], a.cutout), ytr[idx]
            for g in opt.param_groups:
                g["lr"] = a.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            out = net(x)
            loss = F.cross_entropy(out, y, label_smoothing=a.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for e, q in zip(ema.state_dict().values(), net.state_dict().values()):
                        if e.dtype.is_floating_point:
                            e.mul_(a.ema).add_(q, alpha=1 - a.ema)
                        else:
                            e.copy_(q)
            step += 1
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == y).sum().item()
        seconds = time.time() - t_epoch
        last = epoch + 1 == a.epochs
        if (epoch + 1) % a.eval_every and not last:
            continue
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / a.n,
            "train_accuracy": correct / a.n,
            "seconds": seconds,
        }
        for name, model in [("", net), ("ema_", ema)]:
            if model is None:
                continue
            row[name + "test_accuracy"] = evaluate(model, xte, yte, views(a.test_flip, 0))
            if last and a.test_shifts:
                row[name + "test_accuracy_shifts"] = evaluate(model, xte, yte, views(True, a.test_shifts))
        row["wall"] = time.time() - t0
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

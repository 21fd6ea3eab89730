#!/usr/bin/env python3
"""PyTorch peer of `network train`'s recipe: the seed network trained on the full CIFAR-10 with
the same defaults, where PyTorch has the feature, for the accuracy report (reports/ACCURACY.md).

Same as `network train`: a tenth of the training images held out for validation (the last of
a fixed shuffle; not the same images as ours), per-channel normalisation measured on the training
images, random mirror and shifts of up to --shift pixels with zeros moving in, He
initialisation, SGD with momentum 0.9 and weight decay 1e-3 on the weights (not the biases),
label smoothing 0.1 (--label-smoothing), the rate --lr × batch / 32 with a linear warm-up over --warmup epochs and a half cosine to 0,
--epochs passes, validation accuracy after every epoch, and the test set once at the end
averaged over --tta views (the image, its mirror, then shifted crops nearest first). Differs:
PyTorch's SGD multiplies its velocity by the current rate (ours folds the rate in when the
velocity is updated), and its own random numbers.

    python3 scripts/torch_train.py DATA_DIR --json reports/accuracy/torch.json
Needs `pip install torch`. Prints one line per epoch on stderr.
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0].astype(np.int64)


def seed_network():
    net = nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 20, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 20, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(320, 10),
    )
    for m in net:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0.01, nonlinearity="leaky_relu")
            nn.init.zeros_(m.bias)
    return net


def moved(x, rows, cols):
    """x [b, c, h, w] moved down `rows` and right `cols` pixels, zeros moving in."""
    if rows == 0 and cols == 0:
        return x
    h, w = x.shape[2:]
    out = torch.zeros_like(x)
    out[:, :, max(rows, 0):h + min(rows, 0), max(cols, 0):w + min(cols, 0)] = \
        x[:, :, max(-rows, 0):h + min(-rows, 0), max(-cols, 0):w + min(-cols, 0)]
    return out


def augment(x, shift, gen):
    """Each image mirrored with probability 1/2 and moved by up to `shift` pixels each way."""
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if shift == 0:
        return x
    moves = torch.randint(-shift, shift + 1, (x.shape[0], 2), generator=gen)
    out = torch.empty_like(x)
    for (r, c) in set(map(tuple, moves.tolist())):
        pick = (moves[:, 0] == r) & (moves[:, 1] == c)
        out[pick] = moved(x[pick], r, c)
    return out


def tta_views(count):
    """As network's batch::tta_views: the image, its mirror, then both of each crop moved by up
    to 2 pixels, nearest moves first."""
    moves = sorted(((r, c) for r in range(-2, 3) for c in range(-2, 3)),
                   key=lambda m: (max(abs(m[0]), abs(m[1])), abs(m[0]) + abs(m[1])))
    return [(m, flip) for m in moves for flip in (False, True)][:count]


def accuracy(net, x, y, views):
    net.eval()
    right = 0
    with torch.inference_mode():
        for k in range(0, len(x), 1000):
            xb = x[k:k + 1000]
            p = sum(F.softmax(net(moved(xb.flip(3) if flip else xb, *m)), 1)
                    for m, flip in views)
            right += (p.argmax(1) == y[k:k + 1000]).sum().item()
    net.train()
    return right / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=1e-3)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--shift", type=int, default=1)
    ap.add_argument("--tta", type=int, default=10)
    ap.add_argument("--validation", type=int, help="images held out (default: a tenth)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, help="use only this many training images (a smoke test)")
    ap.add_argument("--json")
    a = ap.parse_args()
    started = time.perf_counter()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    parts = [load(f"{a.data}/data_batch_{i}.bin") for i in range(1, 6)]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    order = np.random.default_rng(a.seed).permutation(len(images))
    images, labels = images[order][:a.limit], labels[order][:a.limit]
    held = len(images) // 10 if a.validation is None else a.validation
    n = len(images) - held
    if n <= 0 or held <= 0:
        sys.exit(f"error: --validation {held}: both training and held-out images are needed "
                 f"(of {len(images)})")
    train_x = torch.from_numpy(images[:n]).float()
    mean = train_x.mean((0, 2, 3), keepdim=True)
    std = train_x.std((0, 2, 3), keepdim=True)
    norm = lambda x: torch.from_numpy(x).float().sub_(mean).div_(std)
    train_x, train_y = train_x.sub_(mean).div_(std), torch.from_numpy(labels[:n])
    val_x, val_y = norm(images[n:]), torch.from_numpy(labels[n:])
    test_raw, test_labels = load(f"{a.data}/test_batch.bin")
    test_x, test_y = norm(test_raw), torch.from_numpy(test_labels)

    net = seed_network()
    decay = [p for name, p in net.named_parameters() if name.endswith("weight")]
    rest = [p for name, p in net.named_parameters() if not name.endswith("weight")]
    rate = a.lr * a.batch_size / 32
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.weight_decay},
                           {"params": rest, "weight_decay": 0.0}], lr=rate, momentum=0.9)
    per_epoch = math.ceil(n / a.batch_size)
    total = per_epoch * a.epochs
    warm = a.warmup * per_epoch
    gen = torch.Generator().manual_seed(a.seed)
    epochs = []
    step = 0
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for k in range(0, n, a.batch_size):
            idx = perm[k:k + a.batch_size]
            factor = min(1.0, (step + 1) / warm) if warm > 0 else 1.0
            factor *= 0.5 * (1 + math.cos(math.pi * step / total))
            for group in opt.param_groups:
                group["lr"] = rate * factor
            loss = F.cross_entropy(net(augment(train_x[idx], a.shift, gen)), train_y[idx],
                                   label_smoothing=a.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        seconds = time.perf_counter() - t0
        # As ours: the image and its mirror after each epoch, --tta views after the last.
        val = accuracy(net, val_x, val_y, tta_views(a.tta if epoch == a.epochs else 2))
        epochs.append({"epoch": epoch, "validation_accuracy": val, "seconds": seconds})
        print(f"epoch {epoch}: validation {100 * val:.2f}%, {seconds:.1f} s", file=sys.stderr)
    test = accuracy(net, test_x, test_y, tta_views(a.tta))
    doc = {
        "test_accuracy": test,
        "validation_accuracy": epochs[-1]["validation_accuracy"],
        "best_validation_accuracy": max(e["validation_accuracy"] for e in epochs),
        "wall_seconds": time.perf_counter() - started,
        "torch": torch.__version__, "threads": a.threads,
        "settings": vars(a), "epochs": epochs,
    }
    print(f"test {100 * test:.2f}% ({a.tta} views)", file=sys.stderr)
    if a.json:
        json.dump(doc, open(a.json, "w"), indent=1)
    else:
        print(json.dumps(doc))


if __name__ == "__main__":
    main()

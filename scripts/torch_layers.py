#!/usr/bin/env python3
"""PyTorch peer of the timing study: the same layer x pass x shape as `cargo bench -p study`
(benches/cases.rs, SEED_NETWORK at batch 1 and 5), on the CPU, torch.nn.functional, backward by
autograd, a fixed thread count (2 by default), medians of repeated samples.

Writes JSON that `cargo run -p study --release --bin report` adds as a column:
    python3 scripts/torch_layers.py --out reports/torch_layers.json
Needs `pip install torch`.
"""
import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

# name -> (kind, per-example shape and parameters), as SEED_NETWORK in benches/cases.rs.
LAYERS = {
    "conv1": ("conv", dict(c=3, h=32, d=16)),
    "pool1": ("pool", dict(c=16, h=32)),
    "conv2": ("conv", dict(c=16, h=16, d=20)),
    "pool2": ("pool", dict(c=20, h=16)),
    "conv3": ("conv", dict(c=20, h=8, d=20)),
    "pool3": ("pool", dict(c=20, h=8)),
    "fc": ("fc", dict(i=320, o=10)),
    "leaky_relu": ("leaky_relu", dict(shape=(16, 32, 32))),
    "sigmoid": ("sigmoid", dict(shape=(16, 32, 32))),
    "softmax": ("softmax", dict(k=10)),
}
BATCHES = (1, 5)


def median_ns(fn, min_sample_s=0.002, samples=30):
    """Median time of one call, over `samples` samples of enough calls to last min_sample_s."""
    for _ in range(3):
        fn()
    calls = 1
    while True:
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        if time.perf_counter_ns() - start >= min_sample_s * 1e9:
            break
        calls *= 2
    times = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter_ns() - start) / calls)
    return statistics.median(times)


def passes(kind, p, b):
    """(forward, backward) closures for one layer at batch b."""
    g = torch.Generator().manual_seed(0x5EED)

    def rand(*shape, grad=False):
        return (torch.rand(*shape, generator=g) * 2 - 1).requires_grad_(grad)

    if kind == "conv":
        x, w, bias = rand(b, p["c"], p["h"], p["h"]), rand(p["d"], p["c"], 5, 5), rand(p["d"])
        op = lambda x, w, bias: F.conv2d(x, w, bias, stride=1, padding=2)
        params = (x, w, bias)
    elif kind == "pool":
        params = (rand(b, p["c"], p["h"], p["h"]),)
        op = lambda x: F.max_pool2d(x, 2, 2)
    elif kind == "fc":
        params = (rand(b, p["i"]), rand(p["o"], p["i"]), rand(p["o"]))
        op = F.linear
    elif kind == "leaky_relu":
        params = (rand(b, *p["shape"]),)
        op = lambda x: F.leaky_relu(x, 0.01)
    elif kind == "sigmoid":
        params = (rand(b, *p["shape"]),)
        op = torch.sigmoid
    elif kind == "softmax":
        labels = torch.arange(b) * 7 % p["k"]
        params = (rand(b, p["k"]) * 3,)
        # Probabilities and the mean loss, as the Rust forward computes both.
        op = lambda z: (F.softmax(z, 1), F.cross_entropy(z, labels))
    else:
        raise ValueError(kind)

    def forward():
        with torch.no_grad():
            op(*params)

    grads = [t.detach().clone().requires_grad_(True) for t in params]
    out = op(*grads)
    if kind == "softmax":
        out, grad_out = out[1], None
    else:
        grad_out = torch.rand(out.shape, generator=g) * 2 - 1

    def backward():
        torch.autograd.grad(out, grads, grad_out, retain_graph=True)

    return forward, backward


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="reports/torch_layers.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name, (kind, p) in LAYERS.items():
        for b in BATCHES:
            forward, backward = passes(kind, p, b)
            for pass_name, fn in (("forward", forward), ("backward", backward)):
                ns = median_ns(fn)
                results.setdefault(f"{name}/{pass_name}", {})[str(b)] = ns
                print(f"{name}/{pass_name} b={b}: {ns / 1e3:.1f} µs", flush=True)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    doc = {
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu": cpu,
        "median_ns": results,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

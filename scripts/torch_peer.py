#!/usr/bin/env python3
"""PyTorch peer of `network bench`: the seed network as torch.nn.Sequential on the CPU, SGD with
the same settings (lr 0.001, momentum 0.9, weight decay 1e-4), cross-entropy, at the same batch
sizes and thread counts; training examples/s (forward, backward, optimiser step) and inference
examples/s (forward and softmax under inference_mode), each the median of several timed runs
of at least --seconds, after a warm-up. Inputs are random normal tensors made once, labels
random; the sgemm peak is torch.mm of 1024 x 1024 matrices.

Writes JSON in the layout of `network bench --json`:
    python3 scripts/torch_peer.py --json reports/training_torch.json
`scripts/training.sh` runs it beside `network bench` and renders reports/TRAINING.md.
Needs `pip install torch`.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn


def seed_network():
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 20, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 20, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(320, 10),
    )


def time_runs(batch, runs, seconds, step):
    """Each run's examples/s, as network bench's time_runs: a warm-up, then `runs` runs of at
    least `seconds` each."""
    start = time.perf_counter()
    while time.perf_counter() - start < min(seconds, 0.5):
        step()
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        steps = 0
        while steps == 0 or time.perf_counter() - start < seconds:
            step()
            steps += 1
        rates.append(steps * batch / (time.perf_counter() - start))
    return rates


def sgemm_peak(runs):
    n = 1024
    a = torch.rand(n, n)
    b = torch.rand(n, n)
    torch.mm(a, b)
    rates = []
    for _ in range(max(runs, 3)):
        start = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * n ** 3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,5,32,128")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    threads_list = [int(t) for t in args.threads.split(",")]

    mflop = None
    report = {
        "implementation": "pytorch",
        # The vector level PyTorch ran at (ATEN_CPU_CAPABILITY and DNNL_MAX_CPU_ISA limit it).
        "version": f"{torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}",
        "sgemm_peak": [],
        "mflop_per_example": None,
        "measurements": [],
    }
    for threads in threads_list:
        torch.set_num_threads(threads)
        peak = sgemm_peak(args.runs)
        print(f"sgemm peak on {threads} thread(s): {peak:.1f} GFLOP/s")
        report["sgemm_peak"].append([threads, peak])
        for batch in batches:
            torch.manual_seed(1)
            model = seed_network()
            optimiser = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9,
                                        weight_decay=1e-4)
            loss_fn = nn.CrossEntropyLoss()
            x = torch.randn(batch, 3, 32, 32)
            y = torch.randint(0, 10, (batch,))
            if mflop is None:
                mflop = flops(model)
                report["mflop_per_example"] = list(mflop)

            def train():
                optimiser.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                optimiser.step()

            def infer():
                with torch.inference_mode():
                    torch.softmax(model(x), dim=1)

            for mode, step, flop in (("train", train, mflop[0] + mflop[1]),
                                     ("inference", infer, mflop[0])):
                rates = time_runs(batch, args.runs, args.seconds, step)
                rate = statistics.median(rates)
                gflops = rate * flop / 1e3
                report["measurements"].append({
                    "mode": mode, "batch": batch, "threads": threads,
                    "examples_per_second": rate, "runs": rates,
                    "gflops": gflops, "peak_fraction": gflops / peak,
                })
                print(f"{mode:<9} batch {batch:>3}, {threads} thread(s): {rate:>7.0f} examples/s, "
                      f"{gflops:>5.1f} GFLOP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")


def flops(model):
    """(forward, backward) MFLOP per example, counted as network bench counts them: 2 per
    multiply-add, backward = weight gradients everywhere + input gradients but the first
    layer's."""
    forward = backward = 0.0
    side = 32
    first = True
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            macs = layer.weight.numel() * side * side
        elif isinstance(layer, nn.Linear):
            macs = layer.weight.numel()
        else:
            if isinstance(layer, nn.MaxPool2d):
                side //= 2
            continue
        forward += 2 * macs
        backward += 2 * macs * (1 if first else 2)
        first = False
    return forward / 1e6, backward / 1e6


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Loads a run's model.safetensors into the equivalent torch.nn.Sequential and measures its test
accuracy in PyTorch (with the same mirror-image averaging as `network eval`), to show that the
checkpoint means the same thing in both.

    python3 scripts/torch_eval.py runs/1 ../shared/data/cifar-10-batches-bin
Needs `pip install torch safetensors`; the run must use the seed architecture.
"""
import json
import sys

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file


def main():
    run, data = sys.argv[1], sys.argv[2]
    model = nn.Sequential(
        nn.Conv2d(3, 16, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 20, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 20, 5, padding=2), nn.LeakyReLU(0.01), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(320, 10),
    )
    path = f"{run}/model.safetensors"
    model.load_state_dict(load_file(path))
    # The input normalisation travels in the file's own metadata.
    with safe_open(path, "pt") as f:
        norm = json.loads(f.metadata()["network"])["normalizer"]
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1)
    raw = open(f"{data}/test_batch.bin", "rb").read()
    records = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, 3073)
    labels = records[:, 0].long()
    x = (records[:, 1:].float().view(-1, 3, 32, 32) / 255 - mean) / std
    with torch.no_grad():
        p = model(x).softmax(1) + model(x.flip(3)).softmax(1)
    print(f"PyTorch test accuracy: {100 * (p.argmax(1) == labels).float().mean().item():.2f}% ({len(labels)} images)")


if __name__ == "__main__":
    main()

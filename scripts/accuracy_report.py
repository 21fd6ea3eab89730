#!/usr/bin/env python3
"""Renders reports/ACCURACY.md from what scripts/accuracy.sh recorded in reports/accuracy/:
ablation-NAME.json and NAME-epochs.jsonl per full run, tta-VIEWS-ON.json, sweep.json and
sweep.md, torch.json, machine.txt, and the charts beside them. A part not measured yet is
said to be missing, not left out.

    python3 scripts/accuracy_report.py reports/accuracy reports/ACCURACY.md
"""
import glob
import json
import os
import sys

# The ablation's runs in the order of the table, with what each changes from the defaults.
CHANGES = {
    "default": "nothing: the defaults (batch 32)",
    "batch-128": "`--batch-size 128` (the rate scaled: 0.02 × 128 / 32 = 0.08), the default until 2026-11-29",
    "seed-2": "another seed (`--seed 2`): the noise between two runs",
    "batch-5": "`--batch-size 5` (the rate scaled: 0.02 × 5 / 32)",
    "batch-1": "`--batch-size 1` (the rate scaled: 0.02 × 1 / 32)",
    "no-warmup": "no warm-up (`--warmup 0`)",
    "batch-5-unscaled": "`--batch-size 5 --lr-scaling none` (the rate 0.02 unscaled)",
    "smoothing": "label smoothing 0.1",
    "shift-2": "shifts of up to 2 pixels (`--shift 2`)",
    "shift-0": "mirror only, no shifts (`--shift 0`)",
    "decay-2e-4": "weight decay 2e-4",
    "decay-1e-3": "weight decay 1e-3",
    "no-augment": "no augmentation (`--no-augment`)",
}


def pct(x):
    return "–" if x is None else f"{100 * x:.2f}%"


def minutes(s):
    return "–" if s is None else f"{int(s // 60)} min {round(s % 60):02d} s"


def load(path):
    with open(path) as f:
        return json.load(f)


def epochs_of(results, name):
    path = os.path.join(results, f"{name}-epochs.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def best_validation(epochs):
    held = [(e["validation_accuracy"], e["epoch"]) for e in epochs if e.get("validation_accuracy") is not None]
    return max(held) if held else (None, None)


def ablation(results, out, missing):
    runs = {os.path.basename(p)[len("ablation-"):-len(".json")]: load(p)
            for p in glob.glob(os.path.join(results, "ablation-*.json"))}
    if "default" not in runs:
        missing.append("the default run (stage `ablation`)")
        return None
    base = runs["default"]
    d = base
    best, at = best_validation(epochs_of(results, "default"))
    out += [
        "## The default recipe",
        "",
        "`network train --data DATA` with nothing else: the seed network (16-20-20 filters 5×5, "
        "leaky ReLU, max-pooling, one fully connected layer), 5,000 training images held out, "
        "batch 32, rate 0.02 with one epoch of warm-up and a half cosine, momentum "
        "0.9, weight decay 5e-4, random mirror and 1-pixel shifts, 32 epochs, the test set "
        "evaluated once at the end over 10 views of each image.",
        "",
        "| test accuracy | best validation (epoch) | validation at the end | wall time of the command | examples/s | peak memory |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {pct(d['test_accuracy'])} | {pct(best)} ({at}) | {pct(d['validation_accuracy'])} | "
        f"{minutes(d['wall_seconds'])} | {d['examples_per_second']:,.0f} | {d['peak_rss_mb']:.0f} MB |",
        "",
    ]
    if os.path.exists(os.path.join(results, "default-curves.png")):
        out += ["![curves of the default run](accuracy/default-curves.png)", ""]
    out += [
        "## One change at a time",
        "",
        "Each row is one full run from the defaults with one change, judged on validation "
        "accuracy (Δ: points against the default run's best); the test accuracy is reported, "
        "never used to choose. Wall time is the whole command's, of one run on a shared host; "
        "a run's `note` in its JSON says when other work ran beside it. Validation is measured after every epoch over two views of each "
        "image (it and its mirror), after the last over the run's test-time views (10 by "
        "default), so the last epoch's figure is usually the best.",
        "",
        "| run | change | best validation (epoch) | Δ validation | validation at the end | test | wall time | examples/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in [n for n in CHANGES if n in runs] + sorted(set(runs) - set(CHANGES)):
        r = runs[name]
        v, e = best_validation(epochs_of(results, name))
        delta = "–" if v is None or best is None else f"{100 * (v - best):+.2f}"
        change = CHANGES.get(name, r.get("flags", "")) + (f" ({r['note']})" if r.get("note") else "")
        out.append(
            f"| {name} | {change} | {pct(v)} ({e}) | {delta} | "
            f"{pct(r.get('validation_accuracy'))} | {pct(r.get('test_accuracy'))} | "
            f"{minutes(r.get('wall_seconds'))} | {r.get('examples_per_second', 0):,.0f} |")
    out.append("")
    out += verdicts(results, runs, best)
    if os.path.exists(os.path.join(results, "ablation.png")):
        out += ["![validation curves of the ablation's runs](accuracy/ablation.png)", ""]
    absent = [n for n in CHANGES if n not in runs]
    if absent:
        missing.append("the ablation's runs " + ", ".join(f"`{n}`" for n in absent))
    return base


def verdicts(results, runs, best):
    """What the rows say against the noise between two seeds of the defaults."""
    if "seed-2" not in runs or best is None:
        return ["The noise between two runs of one recipe is not measured yet (run `seed-2`): "
                "no row is a verdict.", ""]
    other, _ = best_validation(epochs_of(results, "seed-2"))
    d = runs["default"]
    noise = abs(other - best)
    lines = [f"Two seeds of the defaults differ by {100 * noise:.2f} points of validation and "
             f"{100 * abs(runs['seed-2']['test_accuracy'] - d['test_accuracy']):.2f} of test: a "
             "change is counted as a gain or a loss only beyond that (the noise itself is one pair of "
             "runs, so a margin near it is weak evidence)."]
    for name, r in runs.items():
        if name in ("default", "seed-2"):
            continue
        v, _ = best_validation(epochs_of(results, name))
        if v is None:
            continue
        if v - best > noise:
            lines.append(f"- `{name}`: a gain of {100 * (v - best):.2f} points.")
        elif best - v > noise:
            lines.append(f"- `{name}`: a loss of {100 * (best - v):.2f} points.")
        else:
            lines.append(f"- `{name}`: within the noise ({100 * (v - best):+.2f}).")
    return lines + [""]


def tta(results, out, missing):
    rows = []
    for views in (1, 2, 10, 18, 50):
        got = {}
        for on in ("validation", "test"):
            path = os.path.join(results, f"tta-{views}-{on}.json")
            got[on] = load(path)["accuracy"] if os.path.exists(path) else None
        rows.append((views, got))
    if all(g["test"] is None for _, g in rows):
        missing.append("the test-time views (stage `tta`)")
        return
    out += [
        "## Views of each image at evaluation",
        "",
        "The default run's final model evaluated with `network eval --tta N` (no training), "
        "the probabilities of N views of each image averaged: 1 the image, 2 and its mirror, "
        "10 also both of the image moved a pixel up, down, left and right (the default), 18 "
        "every move of at most a pixel, 50 every move of at most two.",
        "",
        "| views | validation | test |",
        "| ---: | ---: | ---: |",
    ]
    out += [f"| {v} | {pct(g['validation'])} | {pct(g['test'])} |" for v, g in rows]
    out.append("")


def sweep(results, out, missing):
    path = os.path.join(results, "sweep.md")
    if not os.path.exists(path):
        missing.append("the sweep (stage `sweep`)")
        return
    with open(path) as f:
        table = [line.rstrip("\n") for line in f if not line.startswith("# ")]
    out += ["## The sweep", "", "`network sweep` over `scripts/accuracy_space.json`:", ""]
    out += table + [""]
    if os.path.exists(os.path.join(results, "sweep.png")):
        out += ["![validation accuracy per trial](accuracy/sweep.png)", ""]


def torch_peer(results, out, missing, base):
    path = os.path.join(results, "torch.json")
    if not os.path.exists(path):
        missing.append("PyTorch's figure for the same recipe (`scripts/torch_train.py`)")
        return
    t = load(path)
    out += [
        "## PyTorch, the same recipe",
        "",
        "`scripts/torch_train.py DATA` (its docstring lists what differs), "
        f"PyTorch {t['torch']}, {t['threads']} threads:",
        "",
        "| | test | best validation | validation at the end | wall time |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| PyTorch | {pct(t['test_accuracy'])} | {pct(t['best_validation_accuracy'])} | "
        f"{pct(t['validation_accuracy'])} | {minutes(t['wall_seconds'])} |",
    ]
    if base is not None:
        out.append(f"| ours (default run) | {pct(base['test_accuracy'])} | – | "
                   f"{pct(base['validation_accuracy'])} | {minutes(base['wall_seconds'])} |")
    out.append("")


def main():
    results, target = sys.argv[1], sys.argv[2]
    machine = os.path.join(results, "machine.txt")
    out = [
        "# Accuracy of the seed network on CIFAR-10",
        "",
        "Generated by `scripts/accuracy.sh DATA_DIR` from the records in `reports/accuracy/` "
        "(one run each, full CIFAR-10).",
    ]
    if os.path.exists(machine):
        with open(machine) as f:
            out.append("Machine: " + f.read().strip())
    out.append("")
    missing = []
    base = ablation(results, out, missing)
    tta(results, out, missing)
    sweep(results, out, missing)
    torch_peer(results, out, missing, base)
    if missing:
        out += ["## Not measured yet", ""] + [f"- {m}" for m in missing] + [""]
    with open(target, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Renders reports/ACCURACY.md from what scripts/accuracy.sh recorded in reports/accuracy/:
ablation-NAME.json and NAME-epochs.jsonl per full run, tta-VIEWS-ON.json, sweep.json and
sweep-space.json, torch.json, machine.txt, and the charts beside them. A part not measured yet is
said to be missing, not left out.

    python3 scripts/accuracy_report.py reports/accuracy reports/ACCURACY.md
"""
import glob
import json
import os
import sys

# The ablation's runs in the order of the table, with what each changes from the defaults.
CHANGES = {
    "default": "nothing: the base (the defaults but label smoothing, `--label-smoothing 0`)",
    "batch-128": "`--batch-size 128` (the rate scaled: 0.02 × 128 / 32 = 0.08), the default until 2026-11-29",
    "batch-128-unscaled": "`--batch-size 128 --lr-scaling none` (the rate 0.02 unscaled), on one core beside other runs; compare with `batch-128`",
    "seed-2": "another seed (`--seed 2`): the noise between two runs of the base",
    "batch-5": "`--batch-size 5` (the rate scaled: 0.02 × 5 / 32)",
    "batch-1": "`--batch-size 1` (the rate scaled: 0.02 × 1 / 32)",
    "no-warmup": "no warm-up (`--warmup 0`), on one core beside other runs",
    "smoothing": "label smoothing 0.1 (`--label-smoothing 0.1`): the defaults of 2026-11-29, before 40 epochs and weight decay 1e-3",
    "shift-0": "mirror only, no shifts (`--shift 0`), on one core beside other runs",
    "decay-2e-4": "weight decay 2e-4",
    "decay-1e-3": "weight decay 1e-3",
    "no-augment": "no augmentation (`--no-augment`), on one core beside other runs",
    "ema-1": "the average of the weights evaluated (`--ema 1`: a time constant of one epoch)",
    "smoothing-ema-1": "from `smoothing` (not the base): label smoothing 0.1 and `--ema 1`; compare with `smoothing`",
}


# The runs of the plain command (stage `longer`, alone on the machine).
DEFAULTS_RUNS = ["defaults", "defaults-seed-2", "defaults-again"]

# Pairs of longer runs of one recipe on two seeds: their gaps are the noise at 40 epochs.
SEED_PAIRS = [("long", "long-seed-2"), ("long-decay-1e-3", "long-decay-1e-3-seed-2")]

# The longer runs (stage `longer`), in the order of their table.
LONGER = ["long", "long-seed-2", "long-ema-1", "long-shift-2", "long-smoothing-0.2",
          "long-decay-1e-3", "long-decay-1e-3-seed-2", "long-batch-16"]


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
    """The best validation accuracy of the epochs measured with two views (all but the last,
    which uses the run's test-time views), and its epoch."""
    held = [(e["validation_accuracy"], e["epoch"]) for e in epochs[:-1]
            if e.get("validation_accuracy") is not None]
    return max(held) if held else (None, None)


def final(run, key="validation_accuracy"):
    value = run.get(key)
    return None if value is None else float(value)


def rate(run):
    value = run.get("examples_per_second")
    return "–" if value is None else f"{value:,.0f}"


def number(value, unit):
    return "–" if value is None else f"{value:.0f}{unit}"


def ablation(results, every, out, missing):
    runs = {n: r for n, r in every.items() if not n.startswith(("long", "defaults"))}
    if "default" not in runs:
        missing.append("the base run `default` (stage `ablation`)")
        return
    recipe(results, every, out, missing)
    out += [
        "## One change at a time",
        "",
        "The base is the defaults before label smoothing became one of them (2026-11-29): "
        "`--label-smoothing 0 --epochs 32 --weight-decay 5e-4`. Each row is one full run from the base with one change, judged "
        "on its validation accuracy at the end (Δ: points against the base run's, against "
        "`smoothing` for a change on top of it, against `batch-128` for its rate unscaled); the test "
        "accuracy is reported, never used to choose. Validation is measured after every epoch "
        "over two views of each image (it and its mirror; the best of those is shown too) and "
        "after the last over the run's test-time views (10 by default). Wall time is the whole "
        "command's, of one run on a shared host; a run's `note` in its JSON says when other "
        "work ran beside it, and a run resumed part way is marked: its time is the last "
        "process's only.",
        "",
    ]
    names = [n for n in CHANGES if n in runs] + sorted(set(runs) - set(CHANGES))
    out += table(results, runs, names, reference)
    noise = seed_noise(runs)
    out += verdicts(runs, names, reference, noise)
    if os.path.exists(os.path.join(results, "ablation.png")):
        out += ["![validation curves of the ablation's runs](accuracy/ablation.png)", ""]
    absent = [n for n in CHANGES if n not in runs]
    if absent:
        missing.append("the ablation's runs " + ", ".join(f"`{n}`" for n in absent))
    longer(results, {n: r for n, r in every.items() if n.startswith("long")}, out, missing, noise)


def recipe(results, runs, out, missing):
    """The defaults' run (`defaults`, stage `longer`: the command a user types, alone)."""
    if "defaults" not in runs:
        missing.append("the run of today's defaults (`defaults`, stage `longer`)")
        return
    out += [
        "## The default recipe",
        "",
        "`network train --data DATA` with nothing else: the seed network (16-20-20 filters 5×5, "
        "leaky ReLU, max-pooling, one fully connected layer), 5,000 training images held out, "
        "batch 32, rate 0.02 with one epoch of warm-up and a half cosine, momentum "
        "0.9, weight decay 1e-3, label smoothing 0.1, random mirror and 1-pixel shifts, 40 "
        "epochs, the test set evaluated once at the end over 10 views of each image. Its run is "
        "`defaults` (stage `longer`), alone on the machine with every core: its wall time is "
        "the recipe's; `defaults-seed-2` is the same command with `--seed 2`, and "
        "`defaults-again` the plain command once more, alone too (its own timing of the "
        "techniques may choose another plan, and so round differently). Below them, a candidate "
        "change run the same way, alone, its flags shown.",
        "",
        "| run | test accuracy | validation at the end | best validation with 2 views (epoch) | wall time of the command | examples/s | peak memory |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    absent = [n for n in DEFAULTS_RUNS if n not in runs]
    if absent:
        missing.append("the plain command's runs " + ", ".join(f"`{n}`" for n in absent))
    candidates = sorted(n for n in runs if n.startswith("defaults-") and n not in DEFAULTS_RUNS)
    for name in [n for n in DEFAULTS_RUNS if n in runs] + candidates:
        r = runs[name]
        two, at = best_validation(epochs_of(results, name))
        shown = f"{name} (`{r['flags']}`)" if name in candidates else name
        out.append(
            f"| {shown} | {pct(final(r, 'test_accuracy'))} | {pct(final(r))} | {pct(two)} ({at}) | "
            f"{minutes(r.get('wall_seconds'))} | {rate(r)} | {number(r.get('peak_rss_mb'), ' MB')} |")
    out.append("")
    out += [f"`{n}` {runs[n]['note']}." for n in DEFAULTS_RUNS
            if runs.get(n, {}).get("note")] + [""]
    if os.path.exists(os.path.join(results, "recipe-curves.png")):
        out += ["![curves of the default recipe's run](accuracy/recipe-curves.png)", ""]
    out += why(results, runs)


def lead(a, b):
    """`a`'s largest lead over `b` in 2-view validation at one epoch, as text ("" if none)."""
    best = max(((x["validation_accuracy"] - y["validation_accuracy"], x["epoch"])
                for x, y in zip(a[:-1], b[:-1])
                if x.get("validation_accuracy") is not None
                and y.get("validation_accuracy") is not None), default=None)
    if best is None or best[0] <= 0:
        return ""
    return f", though it led by {100 * best[0]:.2f} points at epoch {best[1]} (2 views)"


def why(results, runs):
    """Why the defaults are what they are, from the runs that chose them (validation only)."""
    v = {n: final(r) for n, r in runs.items()}

    def pair(a, b):
        return (f"{pct(v.get(a))} against {pct(v.get(b))}"
                if v.get(a) is not None and v.get(b) is not None else "not measured")

    lines = ["Why these, on validation (the tables below hold every figure):", ""]
    lines.append(f"- label smoothing 0.1: {pair('smoothing', 'default')} without (32 epochs), "
                 "beyond twice the noise between two seeds;")
    seeds = [("long-decay-1e-3", "long"), ("long-decay-1e-3-seed-2", "long-seed-2")]
    if all(v.get(a) is not None and v.get(b) is not None for a, b in seeds):
        gains = [100 * (v[a] - v[b]) for a, b in seeds]
        lines.append(
            f"- weight decay 1e-3: {pair(*seeds[0])} with 5e-4 on one seed and "
            f"{pair(*seeds[1])} on another (40 epochs; {gains[0]:+.2f} and {gains[1]:+.2f}, "
            f"a mean of {sum(gains) / 2:+.2f} points): the best-supported change, though on "
            "two seeds a hint rather than a proof; from the base at 32 epochs it measured "
            f"{pair('decay-1e-3', 'default')}, and 2e-4 lost 1.90 points;")
    lines.append(
        f"- 40 epochs: what a 15-minute budget affords on a quiet phase of this host; validation "
        f"does not tell it from 32 (`smoothing` at 32 epochs {pct(v.get('smoothing'))}, `long` "
        f"and `long-seed-2` at 40: {pct(v.get('long'))} and {pct(v.get('long-seed-2'))});")
    lines.append(
        f"- batch 32 kept: batch 16 at 40 epochs {pair('long-batch-16', 'long')} on one seed, "
        "under twice the noise; the smaller batches' gains at 32 epochs were hints too. Batch "
        "128 at the rate of batch 32 (`--lr-scaling none`), which beat the scaled rate at 32 "
        f"epochs ({pair('batch-128-unscaled', 'batch-128')}), ended on today's defaults at "
        f"{pair('defaults-batch-128-unscaled', 'defaults')} for the plain command, within the noise"
        f"{lead(epochs_of(results, 'defaults-batch-128-unscaled'), epochs_of(results, 'defaults'))};")
    lines.append(
        "- rate 0.02 kept: the sweep did not tell 0.01 from it and found 0.04 worse (below).")
    return lines + [""]


def longer(results, runs, out, missing, noise):
    """Changes on top of `smoothing`'s recipe at 40 epochs, each against `long` (stage `longer`),
    judged against the gap between two seeds at this length once `long-seed-2` ran, else
    against `noise`, the base's."""
    absent = [n for n in LONGER if n not in runs]
    if absent:
        missing.append("the longer runs " + ", ".join(f"`{n}`" for n in absent))
    if "long" not in runs:
        return
    out += [
        "## Longer runs: changes on top of the defaults of 2026-11-29",
        "",
        "The defaults of 2026-11-29 (`smoothing`'s recipe) at 40 epochs (`long`, about what "
        "`--time-budget 15m` affords on a quiet phase of this host), and one change each on top "
        "of them, judged on validation "
        "against `long` (or, on the second seed, against `long-seed-2`). Weight decay was "
        "5e-4 then: the flags are shown as they were typed. These ran two at a time on one "
        "core each (`--threads 1`), so their wall times are not the recipe's.",
        "",
    ]
    names = [n for n in LONGER if n in runs] + sorted(set(runs) - set(LONGER))
    out += table(results, runs, names, long_reference)
    here, shown = long_noise(runs)
    if here is None:
        out += ["(No recipe has run on two seeds at this length yet: the verdicts use the "
                "noise of the base at 32 epochs.)", ""]
        out += verdicts(runs, names, long_reference, noise)
    else:
        out += [f"Recipes run on two seeds at this length end apart by {shown} points of "
                "validation: the noise below is their mean.", ""]
        out += verdicts(runs, names, long_reference, here, "one recipe (the mean of those pairs)")
    if os.path.exists(os.path.join(results, "longer.png")):
        out += ["![validation curves of the longer runs](accuracy/longer.png)", ""]


def long_noise(runs):
    """The gaps of validation and test between two seeds at 40 epochs, averaged over the
    `SEED_PAIRS` measured, and those pairs' gaps as text; (None, None) before any."""
    measured = [(p, g) for p in SEED_PAIRS if (g := seed_noise(runs, p)) is not None]
    if not measured:
        return None, None
    pairs, gaps = zip(*measured)
    mean = tuple(sum(g[k] for g in gaps) / len(gaps) for k in (0, 1))
    return mean, "; ".join(f"`{a}` and `{b}` {100 * g[0]:.2f}" for (a, b), g in zip(pairs, gaps))


def long_reference(name):
    """The run a longer run is compared with: `long`, or `long-seed-2` for a second seed."""
    return "long-seed-2" if name.endswith("-seed-2") and name != "long-seed-2" else "long"


def table(results, runs, names, against_of):
    """One row per run of `names`: its accuracies, Δ of validation against the run
    `against_of(name)`, its wall time and speed."""
    rows = [
        "| run | change | validation at the end | Δ validation | best with 2 views (epoch) | test | wall time | examples/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        r = runs[name]
        v, e = best_validation(epochs_of(results, name))
        end, against = final(r), final(runs.get(against_of(name), {}))
        delta = "–" if end is None or against is None else f"{100 * (end - against):+.2f}"
        change = CHANGES.get(name, "`" + r.get("flags", "") + "`") + (
            f" ({r['note']})" if r.get("note") else "")
        wall = minutes(r.get("wall_seconds")) + (" (resumed)" if r.get("resumed") else "")
        rows.append(
            f"| {name} | {change} | {pct(end)} | {delta} | {pct(v)} ({e}) | "
            f"{pct(final(r, 'test_accuracy'))} | {wall} | {rate(r)} |")
    return rows + [""]


def reference(name):
    """The run a row is compared with: `smoothing` for changes made on top of it
    (`smoothing-…`), `batch-128` for its rate unscaled, else the base."""
    if name == "batch-128-unscaled":
        return "batch-128"
    return "smoothing" if name.startswith("smoothing-") else "default"


def seed_noise(runs, pair=("default", "seed-2")):
    """The gaps of validation and test between the two runs of `pair` (one recipe, two
    seeds), or None before both ran."""
    got = [runs.get(n, {}) for n in pair]
    if any(final(r) is None or final(r, "test_accuracy") is None for r in got):
        return None
    return (abs(final(got[0]) - final(got[1])),
            abs(final(got[0], "test_accuracy") - final(got[1], "test_accuracy")))


def verdicts(runs, names, against_of, noises, seeds="the base"):
    """What the rows say against the gaps between two seeds (`seed_noise`) of `seeds`."""
    if noises is None:
        return ["The noise between two runs of one recipe is not measured yet (run `seed-2`): "
                "no row is a verdict.", ""]
    noise, test_noise = noises
    lines = [f"Two seeds of {seeds} end {100 * noise:.2f} points of validation apart "
             f"({100 * test_noise:.2f} of test). That noise is measured on few runs: a change "
             "is called a gain or a loss beyond twice it, a hint between once and twice, noise "
             "below.", ""]
    for name in names:
        end, against = final(runs[name]), final(runs.get(against_of(name), {}))
        if name in ("default", "seed-2", "long-seed-2", against_of(name)) or end is None or against is None:
            continue
        d = end - against
        kind = ("a gain" if d > 0 else "a loss") if abs(d) > 2 * noise else (
            ("a hint of a gain" if d > 0 else "a hint of a loss") if abs(d) > noise else "noise")
        lines.append(f"- `{name}`: {kind} ({100 * d:+.2f} points).")
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
        "The base run's final model (`default`, no label smoothing) evaluated with `network "
        "eval --tta N` (no training), "
        "the probabilities of N views of each image averaged: 1 the image, 2 and its mirror, "
        "10 also both of the image moved a pixel up, down, left and right (the default), 18 "
        "every move of at most a pixel, 50 every move of at most two.",
        "",
        "| views | validation | test |",
        "| ---: | ---: | ---: |",
    ]
    out += [f"| {v} | {pct(g['validation'])} | {pct(g['test'])} |" for v, g in rows]
    out.append("")


# The run of the defaults' settings under the sweep's conditions (40 epochs, one core beside
# another run, seed 1): the centre the sweep's trials are judged against.
SWEEP_CENTRE = "long-decay-1e-3"


def sweep(results, runs, out, missing):
    path, space = (os.path.join(results, f) for f in ("sweep.json", "sweep-space.json"))
    if not os.path.exists(path):
        missing.append("the sweep (stage `sweep`)")
        return
    trials = load(path)
    if os.path.exists(space):
        with open(space) as f:
            space = ["```json", f.read().strip(), "```"]
    else:
        space = ["(The space of this sweep was not recorded beside its results.)"]
    out += ["## The sweep", "",
            "`network sweep` over `scripts/accuracy_space.json` (as it was, in "
            "`accuracy/sweep-space.json`, below): every combination of the grid, every other "
            "setting the defaults'. Each trial is a full run on one core (`threads: 1`) while "
            "other runs shared the machine's two cores, so its time of training steps is not the "
            f"recipe's. Each is judged against `{SWEEP_CENTRE}`, the defaults' settings on one core "
            "beside another run, seed 1 as the trials.", ""] + space + ["",
            "| trial | settings | validation at the end | Δ validation | best of any epoch | test | time of the training steps |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"]
    centre = final(runs.get(SWEEP_CENTRE, {}))
    for t in trials:
        v = t.get("validation")
        delta = "–" if v is None or centre is None else f"{100 * (v - centre):+.2f}"
        out.append(f"| {t['trial']} | `{t['label']}` | {pct(v)} | {delta} | "
                   f"{pct(t.get('best_validation'))} | {pct(t.get('test'))} | "
                   f"{minutes(t.get('seconds'))} |")
    if centre is not None:
        c = runs[SWEEP_CENTRE]
        out.append(f"| centre | the defaults' (`{SWEEP_CENTRE}`, above) | "
                   f"{pct(centre)} | | | {pct(final(c, 'test_accuracy'))} | |")
    else:
        missing.append(f"the sweep's centre `{SWEEP_CENTRE}` (stage `longer`): no trial is judged")
    out.append("")
    noise, shown = long_noise(runs)
    if centre is not None and noise is not None:
        named = {n: {"validation_accuracy": t.get("validation")}
                 for n, t in ((f"trial {t['trial']} ({t['label']})", t) for t in trials)}
        named[SWEEP_CENTRE] = runs[SWEEP_CENTRE]
        out += verdicts(named, [n for n in named if n != SWEEP_CENTRE],
                        lambda _: SWEEP_CENTRE, noise, "one recipe at 40 epochs (" + shown + ")")
    if os.path.exists(os.path.join(results, "sweep.png")):
        out += ["![validation accuracy per trial](accuracy/sweep.png)", ""]


def torch_peer(results, runs, out, missing):
    """PyTorch's run of the recipe beside ours: the defaults' runs, and the same recipe on one
    core beside another run (`SWEEP_CENTRE`), as PyTorch's ran beside the sweep."""
    path = os.path.join(results, "torch.json")
    if not os.path.exists(path):
        missing.append("PyTorch's figure for the same recipe (`scripts/torch_train.py`)")
        return
    t = load(path)
    out += [
        "## PyTorch, the same recipe",
        "",
        "`scripts/torch_train.py DATA --threads 1` (its docstring lists what differs), "
        f"PyTorch {t['torch']}, {t['threads']} thread(s), run beside the sweep. Its "
        "held-out images and random numbers are not ours, so its accuracy differs from ours by "
        "a seed's noise at least; its time compares with ours on one core beside another run "
        f"(`{SWEEP_CENTRE}`), not with the defaults' runs, which had every core to themselves.",
        "",
        "| run | threads | test | best validation with 2 views | validation at the end | wall time |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| PyTorch | {t['threads']} | {pct(t.get('test_accuracy'))} | "
        f"{pct(best_validation(t.get('epochs', []))[0])} | {pct(t.get('validation_accuracy'))} | "
        f"{minutes(t.get('wall_seconds'))} |",
    ]
    for name in (SWEEP_CENTRE, *DEFAULTS_RUNS):
        if name in runs:
            r, (two, _) = runs[name], best_validation(epochs_of(results, name))
            out.append(f"| ours: `{name}` | {threads_of(r)} | {pct(final(r, 'test_accuracy'))} | "
                       f"{pct(two)} | {pct(final(r))} | {minutes(r.get('wall_seconds'))} |")
    out.append("")


def threads_of(run):
    """A run's `--threads`, or "all" when it had the default (every core)."""
    flags = run.get("flags", "").split()
    return flags[flags.index("--threads") + 1] if "--threads" in flags[:-1] else "all"


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
            out += ["", "Machine: " + f.read().strip()]
    out.append("")
    missing = []
    every = {os.path.basename(p)[len("ablation-"):-len(".json")]: load(p)
             for p in glob.glob(os.path.join(results, "ablation-*.json"))}
    ablation(results, every, out, missing)
    tta(results, out, missing)
    sweep(results, every, out, missing)
    torch_peer(results, every, out, missing)
    if missing:
        out += ["## Not measured yet", ""] + [f"- {m}" for m in missing] + [""]
    with open(target, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()

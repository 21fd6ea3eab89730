#!/usr/bin/env python3
"""What the live page costs the training, measured finely enough to see 3%.

One training run on the full data with `--serve` (`--technique direct`, no validation images, so
an epoch's end is a checkpoint's save only) and the page open in headless Chromium, started on
its own (no driver attached beside it). After the first epoch (start-up, the browser's launch),
time is cut into windows of about 10 s (drawn between 0.8 and 1.2 times `--window`, so that no
cycle of windows keeps step with the epochs' saves), in blocks of four: a "page" window (the
whole browser running: it receives the run's events and draws), a "none" window (every process
of the browser stopped with SIGSTOP: no page at all, the server's events wait in the socket), a
"burn" window (the browser stopped, a process spinning `--burn` of each 20 ms on one core
instead: the check that the method sees a load of known size), a "none" window; page and burn
swap places in a block at random (seeded). On waking, the browser catches up on what it missed,
which counts against the page.

The training's speed in a window comes from its step journal (`steps.jsonl`, written in bursts
every 1/32 epoch, about 0.6 s here): its size is watched every 20 ms and the steps are
interpolated linearly between the bursts' arrival times. Each page or burn window is compared
with the mean of the two "none" windows on either side, seconds apart, which cancels the shared
host's slow phases (minutes long) that made comparisons of whole epochs move by ±25%. The cost
is the mean of the log ratios (time per step with ÷ without), with a 95% interval and a
one-sided 95% upper bound from resampling the windows (seeded). Epoch ends are counted per kind
of window. Every window (times, steps, CPU of each party) is written to `--out` as JSON.

    scripts/page_cost.py DATA_DIR [--minutes 28] [--window 10] [--burn 0.03] [--out FILE]

Needs chromium (or CHROMIUM=path).
"""
import argparse
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")
BURNER = """
import time, sys
duty, period = float(sys.argv[1]), 0.02
while True:
    start = time.perf_counter()
    while time.perf_counter() - start < duty * period:
        pass
    time.sleep((1 - duty) * period)
"""


def tree(pid):
    """The pids of a process and its descendants."""
    parents = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[int(p)] = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
        except OSError:
            pass
    found, grew = {pid}, True
    while grew:
        more = {p for p, q in parents.items() if q in found} - found
        grew, found = bool(more), found | more
    return found


def cpu_of(pids):
    """CPU seconds of these processes (with their reaped children)."""
    used = 0.0
    for p in pids:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            used += sum(int(x) for x in f[11:15]) / TICK
        except OSError:
            pass
    return used


def thread_cpu(pid):
    """CPU seconds of the trainer's training threads (the main thread and the workers, named
    `worker-N`) and of its other threads (the page server's)."""
    use = {True: 0.0, False: 0.0}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
            comm = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        except OSError:
            continue
        use[int(t) == pid or comm.startswith("worker-")] += (int(f[11]) + int(f[12])) / TICK
    return use[True], use[False]


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass  # ended meanwhile


class Journal:
    """Arrival times of the lines of a growing file: (seconds, lines so far) at each change."""

    def __init__(self, path):
        self.path, self.offset, self.lines, self.samples = path, 0, 0, []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                more = f.read()
        except FileNotFoundError:
            return
        whole = more.rfind(b"\n") + 1  # a line being written waits for its end
        if whole:
            self.offset += whole
            self.lines += more[:whole].count(b"\n")
            self.samples.append((time.monotonic(), self.lines))

    def at(self, t):
        """Lines at time t, interpolated between the samples around it."""
        s = self.samples
        if not s or t < s[0][0] or t > s[-1][0]:
            raise ValueError("a window outside the journal")
        lo, hi = 0, len(s) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if s[mid][0] <= t else (lo, mid)
        (t0, n0), (t1, n1) = s[lo], s[hi]
        return n0 if t1 == t0 else n0 + (n1 - n0) * (t - t0) / (t1 - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--minutes", type=float, default=28, help="length of the alternation")
    ap.add_argument("--window", type=float, default=10, help="mean seconds per window")
    ap.add_argument("--burn", type=float, default=0.03, help="share of one core the burn spins")
    ap.add_argument("--out", help="where the windows go, as JSON (default: not kept)")
    a = ap.parse_args()
    if not 0 < a.burn < 1:
        sys.exit("error: --burn must be in (0, 1)")
    if not a.window >= 2 or not a.minutes * 60 >= 12 * a.window:
        sys.exit("error: --window must be at least 2 s and --minutes hold 12 windows")
    if not os.path.isdir(a.data):
        sys.exit(f"error: DATA_DIR {a.data} is not a directory")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        sys.exit(f"error: no chromium at {chromium} (set CHROMIUM)")
    if a.out:  # checked before the half hour of measuring, not after
        try:
            os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
            open(a.out + ".tmp", "w").close()
        except OSError as e:
            sys.exit(f"error: --out {a.out}: {e}")
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "network"], cwd=ROOT, check=True)
    # SIGTERM and SIGHUP end the script through its clean-up, like Ctrl-C.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit("error: interrupted"))
    work = tempfile.mkdtemp()
    procs = {}
    try:
        measure(a, chromium, work, procs)
    finally:
        for key in ("burner", "browser"):
            if key in procs:
                pids = tree(procs[key].pid)
                signal_all(pids, signal.SIGCONT)
                signal_all(pids, signal.SIGKILL)
        if procs.get("trainer") and procs["trainer"].poll() is None:
            procs["trainer"].send_signal(signal.SIGINT)
            procs["trainer"].wait()
        shutil.rmtree(work, ignore_errors=True)


def measure(a, chromium, work, procs):
    run, err = os.path.join(work, "run"), open(os.path.join(work, "err"), "w+")
    trainer = procs["trainer"] = subprocess.Popen(
        [os.path.join(ROOT, "target/release/network"), "train", "--data", a.data, "--epochs",
         "1000", "--validation", "0", "--technique", "direct", "--out", run, "--serve"],
        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)

    def alive():
        if trainer.poll() is not None:
            err.seek(0)
            sys.exit("error: the training ended early:\n" + err.read())

    url = None
    while not url:
        alive()
        time.sleep(0.2)
        err.seek(0)
        url = re.search(r"http://\S+", err.read())
    browser = procs["browser"] = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-dev-shm-usage",
         f"--user-data-dir={work}/profile", "--window-size=1400,1000", url.group(0)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    burner = procs["burner"] = subprocess.Popen(
        [sys.executable, "-c", BURNER, str(a.burn)], start_new_session=True)
    os.kill(burner.pid, signal.SIGSTOP)
    steps = Journal(os.path.join(run, "steps.jsonl"))
    epochs = Journal(os.path.join(run, "epochs.jsonl"))
    while not epochs.samples:  # the first epoch: start-up, the browser's launch
        alive()
        steps.poll()
        epochs.poll()
        time.sleep(0.02)
    if not any("--type=renderer" in cmdline(p) for p in tree(browser.pid)):
        sys.exit("error: the browser has no page open after the first epoch")
    windows = alternate(a, trainer, browser.pid, burner.pid, steps, epochs, alive)
    training, server = thread_cpu(trainer.pid)
    results = report(a, windows, steps, epochs, training, server)
    if a.out:
        doc = dict(command=sys.argv, window=a.window, burn=a.burn, windows=windows,
                   epoch_ends=[t for t, _ in epochs.samples], steps=steps.samples,
                   training_cpu=training, server_cpu=server, results=results)
        with open(a.out + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(a.out + ".tmp", a.out)


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""  # ended meanwhile


def alternate(a, trainer, browser, burner, steps, epochs, alive):
    """The windows, each {kind, start, end, cpu: {party: seconds}}: blocks of page / burn
    between "none" windows, page and burn in a random order, lengths drawn around --window."""
    rng = random.Random(1)
    count = int(a.minutes * 60 / a.window) // 4 * 4 + 1
    kinds = []
    while len(kinds) < count:
        first, second = rng.sample(["page", "burn"], 2)
        kinds += [first, "none", second, "none"]
    windows = []
    for kind in kinds[:count]:
        signal_all(tree(browser), signal.SIGCONT if kind == "page" else signal.SIGSTOP)
        signal_all([burner], signal.SIGCONT if kind == "burn" else signal.SIGSTOP)
        length = a.window * rng.uniform(0.8, 1.2)
        start = time.monotonic()
        before = dict(browser=cpu_of(tree(browser)), burner=cpu_of([burner]),
                      trainer=sum(thread_cpu(trainer.pid)))
        while time.monotonic() < start + length:
            alive()
            steps.poll()
            epochs.poll()
            time.sleep(0.02)
        after = dict(browser=cpu_of(tree(browser)), burner=cpu_of([burner]),
                     trainer=sum(thread_cpu(trainer.pid)))
        windows.append(dict(kind=kind, start=start, end=time.monotonic(),
                            cpu={k: after[k] - before[k] for k in after}))
    signal_all(tree(browser), signal.SIGCONT)
    while steps.samples[-1][0] < windows[-1]["end"]:  # the last window's end inside the journal
        alive()
        steps.poll()
        time.sleep(0.02)
    return windows


def resampled_mean(values, draws=10000):
    """Means of the values resampled with replacement (seeded), sorted."""
    rng = random.Random(0)
    return sorted(sum(rng.choices(values, k=len(values))) / len(values) for _ in range(draws))


def report(a, windows, steps, epochs, training, server):
    for w in windows:
        w["steps"] = steps.at(w["end"]) - steps.at(w["start"])
        if w["steps"] <= 0:
            sys.exit(f"error: the training took no step in the window at {w['start']:.0f} s")
        w["rate"] = w["steps"] / (w["end"] - w["start"])
        w["epoch_ends"] = sum(w["start"] <= t < w["end"] for t, _ in epochs.samples)
    results = {}
    for kind in ("page", "burn"):
        logs = []
        for k in range(1, len(windows) - 1):
            w, around = windows[k], (windows[k - 1]["rate"] + windows[k + 1]["rate"]) / 2
            if w["kind"] == kind:
                logs.append(math.log(around / w["rate"]))
                print(f"window {k:3d} {kind}: {w['rate']:6.1f} steps/s, none around it "
                      f"{windows[k - 1]['rate']:6.1f} and {windows[k + 1]['rate']:6.1f}: "
                      f"{math.exp(logs[-1]):.3f}")
        means = resampled_mean(logs)
        cost = lambda x: 100 * (math.exp(x) - 1)
        mine = [w for w in windows if w["kind"] == kind]
        seconds = sum(w["end"] - w["start"] for w in mine)
        party = "browser" if kind == "page" else "burner"
        results[kind] = dict(
            windows=len(logs), cost_percent=cost(sum(logs) / len(logs)),
            interval_percent=[cost(means[len(means) // 40]), cost(means[-len(means) // 40])],
            upper_bound_percent=cost(means[-len(means) // 20]),
            cpu_percent_of_a_core=100 * sum(w["cpu"][party] for w in mine) / seconds,
            epoch_ends=sum(w["epoch_ends"] for w in mine))
        r = results[kind]
        print(f"{kind}: {r['windows']} windows: time per step {r['cost_percent']:+.2f}% against "
              f"none (95% interval {r['interval_percent'][0]:+.2f}% to "
              f"{r['interval_percent'][1]:+.2f}%, one-sided 95% bound "
              f"{r['upper_bound_percent']:+.2f}%); {party} {r['cpu_percent_of_a_core']:.2f}% of "
              f"one core in its windows; {r['epoch_ends']} epoch ends in its windows")
    none = [w for w in windows if w["kind"] == "none"]
    seconds = sum(w["end"] - w["start"] for w in none)
    results["none"] = dict(
        browser_cpu_percent=100 * sum(w["cpu"]["browser"] for w in none) / seconds,
        epoch_ends=sum(w["epoch_ends"] for w in none))
    print(f"none: browser {results['none']['browser_cpu_percent']:.2f}% of one core (stopped); "
          f"{results['none']['epoch_ends']} epoch ends; the trainer's training threads "
          f"{training:.1f} s of CPU, its other threads (the page server) {server:.2f} s")
    return results


if __name__ == "__main__":
    main()

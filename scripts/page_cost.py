#!/usr/bin/env python3
"""What the live page costs the training, to a resolution finer than the 3% it may cost.

One training run on the full data with `--serve`, the page open in headless Chromium (started
on its own: no driver attached beside it). After the first epoch (start-up and the browser's
launch), time is cut into short windows (10 s by default); in "page" windows the page's renderer
processes run, in the others they are stopped (SIGSTOP): a running page receives the run's
events and draws, a stopped one takes no CPU (on waking it catches up, which falls in its own
window). The training's speed in each window comes from its step journal (`steps.jsonl`), whose
lines are watched every 20 ms and interpolated between their arrival times, so a window's step
count is exact to a fraction of a step. Each page window is compared with the mean of the
frozen windows on either side, seconds apart: that cancels the shared host's slow phases
(minutes long) that made whole-epoch comparisons move by ±25%.

`--burn DUTY` checks, in the same run, that the method sees effects of this size: every other
page window becomes a "burn" window, with the page frozen and a process spinning DUTY of each
20 ms on one core instead (windows: page, frozen, burn, frozen, …). A burn of a known share of a
core should show a slowdown of about that share (half of it to all of it, depending on whether
the other training thread takes over the stolen work or waits for it).

The run holds out no validation images, so an epoch's end is a checkpoint's save only.

    scripts/page_cost.py DATA_DIR [--minutes 12] [--window 10] [--burn DUTY]   (needs chromium)
"""
import argparse
import os
import random
import re
import shutil
import signal
import statistics
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


def tree_cpu(pid):
    """CPU seconds of a process and its descendants (reaped children included)."""
    parents = {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            parents[p] = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
        except OSError:
            pass
    tree, grew = {str(pid)}, True
    while grew:
        more = {p for p, q in parents.items() if q in tree} - tree
        grew, tree = bool(more), tree | more
    used = 0.0
    for p in tree:
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            used += sum(int(x) for x in f[11:15]) / TICK
        except OSError:
            pass
    return used


def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline").read()
    except OSError:
        return ""  # ended meanwhile


def thread_cpu(pid):
    """CPU seconds of the trainer's training threads (the process's name) and of the others."""
    name = open(f"/proc/{pid}/comm").read().strip()
    use = {True: 0.0, False: 0.0}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
            own = open(f"/proc/{pid}/task/{t}/comm").read().strip() == name
        except OSError:
            continue
        use[own] += (int(f[11]) + int(f[12])) / TICK
    return use[True], use[False]


class Journal:
    """The arrival times of the step journal's lines: (seconds, steps done) at each change."""

    def __init__(self, path):
        self.path, self.offset, self.steps, self.samples = path, 0, 0, []

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
            self.steps += more[:whole].count(b"\n")
            self.samples.append((time.monotonic(), self.steps))

    def at(self, t):
        """Steps done at time t, interpolated between the samples around it."""
        s = self.samples
        lo, hi = 0, len(s) - 1
        if not s or t < s[0][0] or t > s[-1][0]:
            raise ValueError("a window outside the journal")
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if s[mid][0] <= t else (lo, mid)
        (t0, n0), (t1, n1) = s[lo], s[hi]
        return n0 if t1 == t0 else n0 + (n1 - n0) * (t - t0) / (t1 - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--minutes", type=float, default=12, help="length of the alternation")
    ap.add_argument("--window", type=float, default=10, help="seconds per window")
    ap.add_argument("--burn", type=float,
                    help="also windows spinning this share of one core, as a check")
    a = ap.parse_args()
    if a.burn is not None and not 0 < a.burn < 1:
        sys.exit("error: --burn must be in (0, 1)")
    if a.window < 1 or a.minutes * 60 < 10 * a.window:
        sys.exit("error: --window must be at least 1 s and --minutes hold ten windows")
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(chromium, os.X_OK):
        sys.exit(f"error: no chromium at {chromium} (set CHROMIUM)")
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "network"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp()
    procs = {}
    try:
        measure(a, chromium, work, procs)
    finally:
        for p in procs.get("targets", lambda: [])():
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for key in ("burner", "browser"):
            if key in procs:
                os.killpg(procs[key].pid, signal.SIGKILL)
        if procs.get("trainer") and procs["trainer"].poll() is None:
            procs["trainer"].send_signal(signal.SIGINT)
            procs["trainer"].wait()
        shutil.rmtree(work, ignore_errors=True)


def measure(a, chromium, work, procs):
    net = os.path.join(ROOT, "target/release/network")
    err = open(os.path.join(work, "err"), "w+")
    run = os.path.join(work, "run")
    trainer = procs["trainer"] = subprocess.Popen(
        [net, "train", "--data", a.data, "--epochs", "1000", "--validation", "0",
         "--technique", "direct", "--out", run, "--serve"],
        stdout=subprocess.DEVNULL, stderr=err)

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
    procs["browser"] = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-dev-shm-usage",
         f"--user-data-dir={work}/profile", "--window-size=1400,1000", url.group(0)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = f"--user-data-dir={work}/profile"

    def renderers():
        found = subprocess.run(["pgrep", "-f", "--", "--type=renderer"], capture_output=True,
                               text=True).stdout.split()
        return [int(p) for p in found if marker in cmdline(p)]
    kinds = {"page": (renderers, procs["browser"].pid)}
    if a.burn is not None:
        burner = procs["burner"] = subprocess.Popen(
            [sys.executable, "-c", BURNER, str(a.burn)], start_new_session=True)
        os.kill(burner.pid, signal.SIGSTOP)
        kinds["burn"] = (lambda: [burner.pid], burner.pid)
    procs["targets"] = lambda: [p for stop, _ in kinds.values() for p in stop()]
    journal = Journal(os.path.join(run, "steps.jsonl"))
    epochs = os.path.join(run, "epochs.jsonl")
    while not os.path.exists(epochs):  # the first epoch: start-up, the browser's launch
        alive()
        journal.poll()
        time.sleep(0.02)
    windows = alternate(a, kinds, journal, alive)
    training, server = thread_cpu(trainer.pid)
    report(a, windows, journal, training, server)


def signal_all(pids, sig):
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass  # a spare renderer ended meanwhile


def alternate(a, kinds, journal, alive):
    """Windows in turn, a kind's window (page, or burn) between two frozen ones:
    [(kind or None, start, end, {kind: CPU seconds of its process tree})]."""
    order = list(kinds)
    windows, count = [], int(a.minutes * 60 / a.window) // 2 * 2 + 1
    for k in range(count):
        active = order[k // 2 % len(order)] if k % 2 == 0 else None
        for kind, (targets, _) in kinds.items():
            signal_all(targets(), signal.SIGCONT if kind == active else signal.SIGSTOP)
        start = time.monotonic()
        cpu = {kind: tree_cpu(pid) for kind, (_, pid) in kinds.items()}
        while time.monotonic() < start + a.window:
            alive()
            journal.poll()
            time.sleep(0.02)
        used = {kind: tree_cpu(pid) - cpu[kind] for kind, (_, pid) in kinds.items()}
        windows.append((active, start, time.monotonic(), used))
    # one more sample after the last window so that its end lies inside the journal
    while journal.samples[-1][0] < windows[-1][2]:
        alive()
        journal.poll()
        time.sleep(0.02)
    return windows


def bootstrap_median(ratios, draws=4000):
    """A 95% interval of the median, from resampling the ratios (seeded: reproducible)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios)))
                     for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def report(a, windows, journal, training, server):
    rate = [(journal.at(e) - journal.at(s)) / (e - s) for _, s, e, _ in windows]
    frozen = [w for w in windows if w[0] is None]
    for kind in dict.fromkeys(w[0] for w in windows if w[0]):
        what = "page" if kind == "page" else f"burn of {a.burn:.0%} of a core"
        ratios = []  # frozen speed around the window ÷ its speed: its time per step, relatively
        for k in range(1, len(windows) - 1):
            if windows[k][0] == kind:
                ratios.append((rate[k - 1] + rate[k + 1]) / 2 / rate[k])
                print(f"window {k:3d}: {rate[k]:7.1f} steps/s with the {what}, "
                      f"{rate[k - 1]:7.1f} and {rate[k + 1]:7.1f} without: {ratios[-1]:.3f}")
        n, mean, sd = len(ratios), statistics.mean(ratios), statistics.stdev(ratios)
        lo, hi = bootstrap_median(ratios)
        print(f"{kind}: {n} windows of {a.window:g} s, each against its neighbours: time per "
              f"step with the {what} ÷ without: median {statistics.median(ratios):.4f} (95% "
              f"interval {lo:.4f}–{hi:.4f}), mean {mean:.4f} ± {2 * sd / n ** 0.5:.4f} (twice "
              f"the standard error), spread {min(ratios):.3f}–{max(ratios):.3f}")
        mine = [w for w in windows if w[0] == kind]
        share = lambda ws, k: 100 * sum(w[3][k] for w in ws) / sum(w[2] - w[1] for w in ws)
        print(f"  CPU of the {'browser' if kind == 'page' else 'burner'}: {share(mine, kind):.2f}% "
              f"of one core in its windows, {share(frozen, kind):.2f}% in frozen ones")
    print(f"the trainer's training threads {training:.1f} s of CPU, its other threads (the page "
          f"server) {server:.2f} s")


if __name__ == "__main__":
    main()

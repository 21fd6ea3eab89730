#!/usr/bin/env bash
# What the live page costs the training: a run of two epochs on the full data with no page, then
# one with `--serve` and the page open in headless Chromium, alternated ROUNDS times with the
# same build. The browser starts with the run, so its own start-up (seconds of CPU) falls in the
# first epoch; the second epoch is the one compared: the page open and connected throughout,
# its analyst loading the first epoch's checkpoint for the gallery at its start.
# Prints the second epoch's training time and examples/s (from the run's epochs.jsonl) and, for
# the runs with a page, the CPU seconds the page took from the end of the first epoch to the end
# of the run beside the training's whole: the server's threads (all but the trainer's, which
# keep the process's name) and the browser's processes.
#
#   scripts/page_cost.sh DATA_DIR [ROUNDS]        (needs scripts/browser's npm ci and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/page_cost.sh DATA_DIR [ROUNDS]}
rounds=${2:-2}
cargo build --release -p network >/dev/null
bin=$PWD/target/release/network
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
epoch() { # run dir → its last epoch's time and speed
  python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).readlines()[-1]); print("%.2f s, %.0f examples/s" % (e["seconds"], e["examples_per_second"]))' "$1/epochs.jsonl"
}
cpu() { # trainer pid, browser pid[, browser seconds before] → CPU seconds of the trainer's
  # threads, of the page's (the rest of the process), of the browser's processes since then
  python3 - "$@" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
def times(path, children=False):
    f = open(path).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if children else 0)) / tick
trainer, browser = sys.argv[1], sys.argv[2]
before = float(sys.argv[3]) if len(sys.argv) > 3 else None
whole = times(f"/proc/{trainer}/stat")
name = open(f"/proc/{trainer}/comm").read().strip()
training = sum(times(f"/proc/{trainer}/task/{t}/stat") for t in os.listdir(f"/proc/{trainer}/task")
               if open(f"/proc/{trainer}/task/{t}/comm").read().strip() == name)
parents = {}
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        parents[p] = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
    except OSError:
        pass
tree, grew = {browser}, True
while grew:
    more = {p for p, q in parents.items() if q in tree} - tree
    grew, tree = bool(more), tree | more
used = 0.0
for p in tree:
    try:
        used += times(f"/proc/{p}/stat", children=True)
    except OSError:
        pass
if before is None:
    print(used)
else:
    print(f"CPU: training {training:.1f} s, page server {whole - training:.1f} s, "
          f"browser {used:.1f} s in all, {used - before:.1f} s from the second epoch on")
PY
}
common=(train --data "$data" --epochs 2 --technique direct)
for round in $(seq "$rounds"); do
  "$bin" "${common[@]}" --out "$work/plain-$round" >/dev/null 2>&1
  echo "round $round, no page,   epoch 2: $(epoch "$work/plain-$round")"
  "$bin" "${common[@]}" --out "$work/page-$round" --serve >/dev/null 2>"$work/err-$round" &
  trainer=$!
  until url=$(grep -o 'http://[^ ]*' "$work/err-$round" 2>/dev/null); do sleep 0.2; done
  node scripts/browser/watch.mjs "$url" 600 >"$work/browser-$round" 2>&1 &
  browser=$!
  until grep -q open "$work/browser-$round"; do sleep 0.2; done
  until [ -s "$work/page-$round/epochs.jsonl" ]; do sleep 0.2; done
  launch=$(cpu "$trainer" "$browser")
  until grep -q 'training is over' "$work/err-$round"; do sleep 0.5; done
  echo "round $round, page open, epoch 2: $(epoch "$work/page-$round"); $(cpu "$trainer" "$browser" "$launch")"
  kill "$browser" 2>/dev/null || true
  kill -INT "$trainer"
  wait "$trainer" || true
done

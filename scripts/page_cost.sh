#!/usr/bin/env bash
# What the live page costs the training. One run on the full data with `--serve`, and the page
# open in headless Chromium from the start (started on its own: no driver is attached to take
# CPU beside the browser). From the second epoch on, the page's renderer process is alternately
# running and stopped (SIGSTOP) for whole epochs: epochs 2, 4, … have the page live, epochs 3, 5,
# … have it frozen, its script and drawing taking no CPU (the browser's other processes run on;
# on waking, the page catches up on the events it missed, which falls in the page's epoch). Each
# page epoch is compared with the next epoch of the same run, seconds apart, which cancels some
# of a shared host's slow phases; the first epoch (start-up, the browser's launch) is left out.
# Prints each pair, the median and mean of the ratios and the ratio of the sums, and the CPU
# seconds of the training's threads, of the page server's threads (all but the trainer's, which
# keep the process's name) and of the browser's processes in the epochs with and without the page.
#
#   scripts/page_cost.sh DATA_DIR [PAIRS]        (needs chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/page_cost.sh DATA_DIR [PAIRS]}
pairs=${2:-6}
cargo build --release -p network >/dev/null
work=$(mktemp -d)
trainer=
trap 'set +e; [ -n "$trainer" ] && kill -INT "$trainer" 2>/dev/null
  pkill -CONT -f -- "--user-data-dir=$work/profile"; pkill -f -- "--user-data-dir=$work/profile"
  sleep 1; rm -rf "$work"' EXIT
alive() { kill -0 "$trainer" 2>/dev/null || { echo "error: the training ended early:" >&2; cat "$work/err" >&2; exit 1; }; }
cpu() { # pid → CPU seconds of its process tree (with reaped children)
  python3 - "$1" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
parents = {}
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        parents[p] = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]
    except OSError:
        pass
tree, grew = {sys.argv[1]}, True
while grew:
    more = {p for p, q in parents.items() if q in tree} - tree
    grew, tree = bool(more), tree | more
used = 0.0
for p in tree:
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        used += sum(int(x) for x in f[11:15]) / tick
    except OSError:
        pass
print(used)
PY
}
threads() { # trainer pid → CPU seconds of its training threads and of the page server's
  python3 - "$1" <<'PY'
import os, sys
tick, pid = os.sysconf("SC_CLK_TCK"), sys.argv[1]
name = open(f"/proc/{pid}/comm").read().strip()
use = {True: 0.0, False: 0.0}
for t in os.listdir(f"/proc/{pid}/task"):
    f = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
    use[open(f"/proc/{pid}/task/{t}/comm").read().strip() == name] += (int(f[11]) + int(f[12])) / tick
print(f"{use[True]:.1f} {use[False]:.1f}")
PY
}
epochs=$((2 * pairs + 1))
target/release/network train --data "$data" --epochs "$epochs" --technique direct \
  --out "$work/run" --serve >/dev/null 2>"$work/err" &
trainer=$!
until url=$(grep -o 'http://[^ ]*' "$work/err" 2>/dev/null); do alive; sleep 0.2; done
setsid "${CHROMIUM:-/usr/bin/chromium}" --headless --no-sandbox --disable-dev-shm-usage \
  --user-data-dir="$work/profile" --window-size=1400,1000 "$url" >/dev/null 2>&1 &
browser=$!
renderers() { # signal → sent to the browser's renderer processes
  pgrep -f -- "--type=renderer.*--user-data-dir=$work/profile|--user-data-dir=$work/profile.*--type=renderer" |
    xargs -r kill "-$1" 2>/dev/null || true # a spare renderer may have ended meanwhile
}
log=$work/run/epochs.jsonl
lines() { if [ -f "$log" ]; then wc -l <"$log"; else echo 0; fi; }
with=0 without=0
for n in $(seq 1 $((epochs - 1))); do
  until [ "$(lines)" -ge "$n" ]; do alive; sleep 0.1; done
  now=$(cpu "$browser")
  if [ $((n % 2)) -eq 1 ]; then # epoch n + 1 has the page
    renderers CONT
    [ "$n" -gt 1 ] && without=$(python3 -c "print($without + $now - $since)")
  else
    renderers STOP
    with=$(python3 -c "print($with + $now - $since)")
  fi
  since=$now
done
until [ "$(lines)" -ge "$epochs" ]; do alive; sleep 0.1; done
without=$(python3 -c "print($without + $(cpu "$browser") - $since)")
until grep -q 'training is over' "$work/err"; do alive; sleep 0.5; done
read -r training server < <(threads "$trainer")
python3 - "$log" "$with" "$without" "$training" "$server" <<'PY'
import json, statistics, sys
log, with_page, without, training, server = sys.argv[1], *map(float, sys.argv[2:])
t = [json.loads(l)["seconds"] for l in open(log)]
pairs = [(t[k], t[k + 1]) for k in range(1, len(t) - 1, 2)]
ratios = [p / q for p, q in pairs]
for k, ((p, q), r) in enumerate(zip(pairs, ratios)):
    print(f"epoch {2 * k + 2} page open {p:6.2f} s, epoch {2 * k + 3} page frozen {q:6.2f} s: {r:.3f}")
page, blank = sum(p for p, _ in pairs), sum(q for _, q in pairs)
print(f"{len(pairs)} pairs: median ratio {statistics.median(ratios):.3f}, mean {statistics.mean(ratios):.3f}, "
      f"sums {page / blank:.3f} ({page:.1f} s with the page, {blank:.1f} s without)")
print(f"CPU: training {training:.1f} s and page server {server:.1f} s in the whole run; browser "
      f"{with_page:.2f} s in the page's epochs ({100 * with_page / page:.2f}% of one core), "
      f"{without:.2f} s in the others with the page frozen ({100 * without / blank:.2f}%)")
PY
kill -INT "$trainer"; wait "$trainer" || true

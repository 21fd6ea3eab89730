#!/usr/bin/env bash
# Training speed against PyTorch in alternating rounds, for a host whose speed drifts:
#   scripts/rounds.sh [ROUNDS] [LEVEL]      (defaults: 3 rounds, the best level this CPU has)
# Each round runs PyTorch (scripts/torch_peer.py, limited to the level's vector width) and then
# ours (`network bench --isa LEVEL`), 2 threads, batch 5, 32 and 128, 3 timed runs of 0.5 s
# each; prints every round's examples/s and ratios, then the median of each column (the
# median ratio, not the ratio of the medians). One
# `scripts/training.sh` run measures each side once: this shows how much a ratio moves between
# rounds. Needs `pip install torch`; takes about half a minute per round here.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
level=${2:-}
case $rounds in '' | *[!0-9]* | 0*) echo "error: ROUNDS must be a positive whole number, not '$rounds'" >&2; exit 2 ;; esac
cargo build -q -p network --release
network=target/release/network
. scripts/levels.sh
if [ -z "$level" ]; then
  level=$(supported_levels)
  level=${level%%$'\n'*} # the best
fi
torch_env=$(torch_env "$level")
[ -n "$torch_env" ] || { echo "error: LEVEL must be avx512, avx2 or portable, not '$level'" >&2; exit 2; }
supported "$level" || { echo "error: LEVEL $level is not supported by this CPU" >&2; exit 2; }
batches=5,32,128
# The training rows of one side as "b=examples/s" words.
train_rows() { awk '/^train/ { sub(",", "", $3); printf "%s=%s ", $3, $6 }'; }
echo "level $level, 2 threads, training examples/s; ratio = ours / PyTorch"
echo "round | PyTorch b5 b32 b128 | ours b5 b32 b128 | ratio b5 b32 b128"
table=()
for r in $(seq "$rounds"); do
  torch=$(env $torch_env python3 scripts/torch_peer.py --runs 3 --seconds 0.5 --threads 2 \
    --batches "$batches" | train_rows)
  ours=$("$network" bench --isa "$level" --runs 3 --seconds 0.5 --threads 2 --batches "$batches" \
    | train_rows)
  line=$(awk -v t="$torch" -v o="$ours" 'BEGIN {
    n = split(t, tw, " "); split(o, ow, " ")
    for (i = 1; i <= n; i++) { split(tw[i], a, "="); split(ow[i], b, "="); tv[i] = a[2]; ov[i] = b[2] }
    printf "%s %s %s | %s %s %s | %.2f %.2f %.2f", tv[1], tv[2], tv[3], ov[1], ov[2], ov[3],
      ov[1] / tv[1], ov[2] / tv[2], ov[3] / tv[3] }')
  echo "$r | $line"
  table+=("$line")
done
# The median of every column over the rounds.
printf '%s\n' "${table[@]}" | python3 -c '
import statistics, sys
rows = [line.replace("|", " ").split() for line in sys.stdin if line.strip()]
cols = [statistics.median(float(r[i]) for r in rows) for i in range(9)]
fmt = lambda v, i: f"{v:.2f}" if i >= 6 else f"{v:.0f}"
cells = [fmt(v, i) for i, v in enumerate(cols)]
print("median |", " ".join(cells[:3]), "|", " ".join(cells[3:6]), "|", " ".join(cells[6:]))
'

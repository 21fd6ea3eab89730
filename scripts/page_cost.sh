#!/usr/bin/env bash
# What the live page costs the training: one epoch on the full data, with no page and with
# `--serve` and a page open in headless Chromium, alternated ROUNDS times with the same build.
# Prints each epoch's training seconds and examples/s (from the run's epochs.jsonl).
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
epoch() { # run dir → "seconds examples/s"
  python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); print("%.2f s, %.0f examples/s" % (e["seconds"], e["examples_per_second"]))' "$1/epochs.jsonl"
}
common=(train --data "$data" --epochs 1 --technique direct)
for round in $(seq "$rounds"); do
  "$bin" "${common[@]}" --out "$work/plain-$round" >/dev/null 2>&1
  echo "round $round, no page:   $(epoch "$work/plain-$round")"
  "$bin" "${common[@]}" --out "$work/page-$round" --serve >/dev/null 2>"$work/err-$round" &
  trainer=$!
  until url=$(grep -o 'http://[^ ]*' "$work/err-$round"); do sleep 0.2; done
  node scripts/browser/watch.mjs "$url" 600 >/dev/null 2>&1 &
  browser=$!
  until grep -q 'training is over' "$work/err-$round"; do sleep 0.5; done
  kill "$browser" 2>/dev/null || true
  kill -INT "$trainer"; wait "$trainer" || true
  echo "round $round, page open: $(epoch "$work/page-$round")"
done

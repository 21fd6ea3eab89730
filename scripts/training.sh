#!/usr/bin/env bash
# Training speed of this trainer beside PyTorch's, measured in one run, into reports/TRAINING.md:
#   scripts/training.sh [RUN_DIR]
# RUN_DIR: a finished full-data run (e.g. runs/1 from `cargo run -p network --release -- --data
# ../shared/data/cifar-10-batches-bin`) whose epoch time and peak memory the report states.
# Needs `pip install torch`. Takes about 5 minutes; run it on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-}
python3 scripts/torch_peer.py --json reports/training_torch.json
cargo run -q -p network --release -- bench \
    --json reports/training_rust.json \
    --peer reports/training_torch.json \
    --report reports/TRAINING.md \
    ${run:+--run "$run"}

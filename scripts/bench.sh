#!/usr/bin/env bash
# Regenerates reports/: runs the criterion benchmarks of the timing study, the PyTorch peer
# (where torch is installed: pip install torch), then renders reports/TIMINGS.md and charts.
# Extra arguments go to criterion, e.g. `scripts/bench.sh conv2` to rerun one layer's benchmarks.
# Run it on an otherwise idle machine: the medians are only as quiet as the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p study --bench layers --bench trainer -- "$@"
if python3 -c "import torch" 2>/dev/null; then
  python3 scripts/torch_layers.py --out reports/torch_layers.json
else
  echo "torch is not installed: reports/torch_layers.json is kept as it is (pip install torch to refresh it)"
fi
cargo run -p study --release --bin report -- --readme README.md

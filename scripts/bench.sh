#!/usr/bin/env bash
# Regenerates reports/: runs the criterion benchmarks of the timing study, the numpy peer (the
# seed's techniques on this machine, where numpy is installed) and the PyTorch peer (where torch
# is installed), then renders reports/TIMINGS.md, its charts and the README's headline table.
#
#   scripts/bench.sh            the full study (about 40 min here; run it on an otherwise idle machine)
#   scripts/bench.sh --quick    the whole report in under 10 minutes: fewer and shorter samples,
#                               50 whole-trainer examples (20 for the slow techniques), fewer sweep points, numpy's slow cells timed once; the
#                               report says it is a quick run. Kept apart from the full run's
#                               results (target/criterion-quick).
#   scripts/bench.sh conv2      extra arguments go to criterion (here: rerun conv2's benchmarks)
#
# numpy and torch are optional (pip install numpy torch): without them this script says what it
# skipped and keeps their last results in reports/.
set -euo pipefail
cd "$(dirname "$0")/.."

report_args=(--readme README.md)
numpy_args=()
if [[ ${1:-} == --quick ]]; then
  shift
  export STUDY_QUICK=1
  export CRITERION_HOME="$PWD/target/criterion-quick"
  report_args+=(--quick --criterion "$CRITERION_HOME")
  numpy_args+=(--quick)
fi

cargo bench -p study --bench layers --bench trainer -- "$@"
if python3 -c "import numpy" 2>/dev/null; then
  exchange=$(mktemp -d)
  trap 'rm -rf "$exchange"' EXIT
  cargo run -q -p study --release --bin exchange -- --out "$exchange"
  python3 scripts/numpy_layers.py --exchange "$exchange" --out reports/numpy_layers.json "${numpy_args[@]}"
else
  echo "numpy is not installed: reports/numpy_layers.json is kept as it is (pip install numpy to refresh it)"
fi
if python3 -c "import torch" 2>/dev/null; then
  python3 scripts/torch_layers.py --out reports/torch_layers.json
else
  echo "torch is not installed: reports/torch_layers.json is kept as it is (pip install torch to refresh it)"
fi
cargo run -p study --release --bin report -- "${report_args[@]}"

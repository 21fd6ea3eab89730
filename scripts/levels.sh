# Sourced by scripts/training.sh and scripts/rounds.sh (after `network` names the built
# binary): which instruction-set levels this CPU runs, and PyTorch's limits for each.

# Whether this CPU runs level $1: an unsupported one fails before the argument check. The
# output is kept before it is searched: in a pipe into `grep -q`, pipefail took the bench's
# failing status for the pipe's, and every level looked supported.
supported() {
  local said
  said=$("$network" bench --isa "$1" --runs 0 2>&1 || true)
  ! grep -q "not supported" <<< "$said"
}

# Every level this CPU runs, best first.
supported_levels() {
  for l in avx512 avx2 portable; do
    if supported "$l"; then echo "$l"; fi
  done
}

# PyTorch's own limits for level $1: the same vector width (empty for an unknown level).
torch_env() {
  case $1 in
    avx512) echo "ATEN_CPU_CAPABILITY=avx512 DNNL_MAX_CPU_ISA=AVX512_CORE" ;;
    avx2) echo "ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2" ;;
    portable) echo "ATEN_CPU_CAPABILITY=default DNNL_MAX_CPU_ISA=SSE41" ;;
  esac
}

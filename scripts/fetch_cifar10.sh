#!/usr/bin/env bash
# Downloads the official CIFAR-10 binary release, checks its MD5 and unpacks it into data/,
# so that `cargo run -p network --release` finds data/cifar-10-batches-bin.
#
# usage: scripts/fetch_cifar10.sh [TARBALL_OR_URL] [DEST]
#   TARBALL_OR_URL  a local cifar-10-binary.tar.gz, or a URL (default: the official one)
#   DEST            where to unpack (default: data/ at the workspace root)
# CIFAR10_MD5 overrides the expected checksum (for a re-packed tarball).
set -euo pipefail

OFFICIAL_URL="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
EXPECTED_MD5="${CIFAR10_MD5:-c32a1d4ab5d03f1284b67883e8d87530}"
root="$(cd "$(dirname "$0")/.." && pwd)"
source="${1:-$OFFICIAL_URL}"
dest="${2:-$root/data}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tarball="$work/cifar-10-binary.tar.gz"

if [[ -f "$source" ]]; then
  cp "$source" "$tarball"
elif [[ "$source" =~ ^(https?|ftp):// ]]; then
  echo "downloading $source"
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$tarball" "$source"
  elif command -v wget >/dev/null; then
    wget -O "$tarball" "$source"
  else
    echo "error: neither curl nor wget is installed to download $source" >&2
    exit 1
  fi
else
  echo "error: $source is neither a file nor a URL" >&2
  exit 1
fi

actual="$(md5sum "$tarball" | cut -d' ' -f1)"
if [[ "$actual" != "$EXPECTED_MD5" ]]; then
  echo "error: $source has MD5 $actual, expected $EXPECTED_MD5: not the CIFAR-10 binary release (nothing unpacked)" >&2
  exit 1
fi

tar -xzf "$tarball" -C "$work"
if [[ ! -f "$work/cifar-10-batches-bin/test_batch.bin" ]]; then
  echo "error: $source does not hold cifar-10-batches-bin/test_batch.bin (nothing unpacked)" >&2
  exit 1
fi
mkdir -p "$dest"
rm -rf "$dest/cifar-10-batches-bin.partial"
mv "$work/cifar-10-batches-bin" "$dest/cifar-10-batches-bin.partial"
rm -rf "$dest/cifar-10-batches-bin"
mv "$dest/cifar-10-batches-bin.partial" "$dest/cifar-10-batches-bin"
echo "CIFAR-10 is in $dest/cifar-10-batches-bin (MD5 $actual checked)"

#!/usr/bin/env bash
# The portable build (-DRAPID_PORTABLE=ON: no function clones, intrinsics,
# compiler builtins or fast-path floating-point flags) must make the same
# reference image as the normal build, byte for byte.  Builds the portable
# `rapid` in PORTABLE_BUILD, then compares the products of both binaries
# on a small simulated survey (tests/same_products.sh).
#   scripts/check-portable.sh [BUILD] [PORTABLE_BUILD]   (build, build-portable)
# BUILD must hold a normal build of `rapid` (make build).  Takes about a
# minute on two cores, most of it compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
portable=${2:-build-portable}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
if [ ! -x "$build/cli/rapid" ]; then
  echo "check-portable: no $build/cli/rapid: build it first (make build)" >&2
  exit 2
fi
cmake -S . -B "$portable" -DRAPID_WERROR=ON -DRAPID_PORTABLE=ON >/dev/null
cmake --build "$portable" -j"$jobs" --target rapid >/dev/null
echo "check-portable: $build/cli/rapid against $portable/cli/rapid"
tests/same_products.sh "$build/cli/rapid" "$portable/cli/rapid"

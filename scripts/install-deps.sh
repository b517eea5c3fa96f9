#!/usr/bin/env bash
# Install the Debian packages rapid needs to build, test and benchmark.
# Idempotent: does nothing (and prints nothing) when everything is present.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --bench    also the peer tools used by bench/
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config git
  libcfitsio-dev wcslib-dev libfftw3-dev libsep-dev libchealpix-dev
  libgsl-dev liblapacke-dev libopenblas-dev libsqlite3-dev sqlite3 libpq-dev
  libinih-dev libjansson-dev libplplot-dev plplot-driver-cairo
  libpng-dev zlib1g-dev libcmocka-dev
  postgresql postgresql-15-q3c
  slurm-wlm munge
  fitsverify
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(hyperfine source-extractor swarp python3-numpy python3-astropy
         valgrind time)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

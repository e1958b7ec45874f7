#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian 12 packages attn builds with, only those missing, non-interactively.
# Usage: scripts/install-deps.sh
# python3-torch is for the tests that compare with PyTorch (they skip with code 77 without it), for
# regenerating fixtures (scripts/gen_*.py) and for the side-by-side benchmarks; attn never links it.
set -euo pipefail

packages=(
  build-essential cmake pkg-config python3
  libopenblas-dev libhwy-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev libstb-dev
  libplplot-dev plplot-driver-cairo zlib1g-dev
  dataset-fashion-mnist
  libsndfile1-dev libsoxr-dev libfftw3-dev libkissfft-dev pocketsphinx-testdata
  libespeak-ng-dev espeak-ng-data wamerican
  libopenmpi-dev openmpi-bin
  python3-dev pybind11-dev python3-numpy python3-pytest python3-venv python3-pip
  python3-torch python3-torchaudio
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    sudo="sudo"
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

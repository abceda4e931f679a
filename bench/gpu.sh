#!/usr/bin/env bash
# Every GPU figure of bench/README.md in one go, on a machine with a CUDA GPU and only torch,
# torchvision, numpy, safetensors and tqdm installed (no venv needed; run from the repository root):
#
#   VAE_EXPLORER_DATA=/path/with/mnist bash bench/gpu.sh [OUTDIR]
#
# $VAE_EXPLORER_DATA must hold mnist/ as `vae-explorer data fetch mnist` leaves it (the GPU machine
# has no internet: copy the folder there). Each table is printed and, with OUTDIR, also saved there.
# About 5 minutes on one H100.
set -euo pipefail
PYTHON=${PYTHON:-python3}
out=${1:-}
cd "$(dirname "$0")/.."

if [ -z "${VAE_EXPLORER_DATA:-}" ] || [ ! -f "$VAE_EXPLORER_DATA/mnist/train-images-idx3-ubyte" ]; then
  echo "bench/gpu.sh: set VAE_EXPLORER_DATA to a folder holding mnist/ (run 'vae-explorer data fetch mnist'" >&2
  echo "on a machine with internet and copy the cache folder over)" >&2
  exit 2
fi
if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "bench/gpu.sh: $PYTHON sees no CUDA GPU; on a CPU use 'make bench'" >&2
  exit 2
fi

step() {  # step NAME COMMAND...: print the command and its output, keep a copy under OUTDIR
  local name=$1
  shift
  echo
  echo "### $name: $*"
  if [ -n "$out" ]; then
    mkdir -p "$out"
    "$@" 2>&1 | tee "$out/$name.txt"
  else
    "$@"
  fi
}

step machine nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
step train_speed_b100 "$PYTHON" bench/train_speed.py --device cuda --batch-size 100 --epochs 10
step train_speed_b128 "$PYTHON" bench/train_speed.py --device cuda --batch-size 128 --epochs 10
step scaling "$PYTHON" bench/scaling.py --device cuda --seconds 1.0
step interaction "$PYTHON" bench/interaction.py --device cuda --eval-images 2000
step evaluate_mnist_z2 "$PYTHON" -m explorer.cli evaluate mnist-z2 --k 5000 --device cuda --json
step evaluate_mnist_z20 "$PYTHON" -m explorer.cli evaluate mnist-z20 --k 5000 --device cuda --json

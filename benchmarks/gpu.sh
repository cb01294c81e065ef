#!/usr/bin/env bash
# One run on a machine with an NVIDIA GPU: the `gpu` tests, then the LSTM layer against cuDNN
# and translation training at fp32 and bf16, each against the matmul roofline measured in the same
# run (benchmarks/gpu_bench.py). Installs nothing: it uses the project's environment (.venv, or
# PYTHON=...). About 5 minutes on one GPU; each part is cut off so the whole stays under 8.
#
# Usage: benchmarks/gpu.sh [--dry-run]
#   --dry-run  no GPU needed: the gpu tests are collected (and skip), the benchmark runs at tiny
#              sizes on the CPU; seconds, a check of the script only.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DRY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "gpu.sh: unknown argument '$arg' (valid: --dry-run)" >&2; exit 2 ;;
    esac
done

start=$SECONDS
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'devices', torch.cuda.device_count())"
if [ "$DRY" = 1 ]; then
    export OMP_NUM_THREADS=1
    "$PYTHON" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
    "$PYTHON" benchmarks/gpu_bench.py --dry-run
else
    if ! "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu.sh: no CUDA device (use --dry-run to check the script on a CPU)" >&2
        exit 1
    fi
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    echo "== gpu tests"
    timeout 180 "$PYTHON" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider
    echo "== benchmarks"
    timeout 270 "$PYTHON" benchmarks/gpu_bench.py
fi
echo "gpu.sh: done in $((SECONDS - start)) s"

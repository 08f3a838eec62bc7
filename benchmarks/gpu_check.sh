#!/usr/bin/env bash
# The array backend on a CUDA device, in one short run (a few minutes on one GPU):
#   1. conformance with the NumPy reference of every shipped protocol on array:torch:cuda
#      (float64 to 1e-10 relative, float32 to 1e-3; tests/test_backend_conformance.py) and
#      the `gpu`-marked tests of tests/test_array_backend.py;
#   2. an ensemble of ENSEMBLE (1024) networks of 64 × 16 in float32 as one stack: samples/s
#      and the fraction of the card's FP32 peak, one sample at a time and in batches of 100
#      (benchmarks/linsker_speed.py, row array_ensemble).
#
# Usage (from anywhere; the GPU machine needs the project's environment with the gpu extra,
# `pip install -e '.[test,gpu]'`, installed beforehand or carried):
#     bash benchmarks/gpu_check.sh
# Settings (environment):
#     PYTHON=.venv/bin/python   the interpreter
#     DEVICE=cuda               cpu: the same checks on array:torch:cpu (array:numpy without
#                               PyTorch), with ENSEMBLE=64 unless given: what a machine without
#                               a GPU can run (tests/test_gpu_check.py runs it)
#     ENSEMBLE=1024             networks in the ensemble
#     FP32_PEAK_TFLOPS=0        the card's FP32 peak (0: from its name, if known)
#     PROTOCOLS=                pytest -k words narrowing the conformance cases (e.g. linsker)
#     SAMPLES=0                 samples per network per measurement (0: the benchmark's 1000)
#     OUT_DIR=results           where gpu_check_ensemble_batch{1,100}.json go
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DEVICE=${DEVICE:-cuda}
OUT_DIR=${OUT_DIR:-results}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"

if [ "$DEVICE" = cuda ]; then
    BACKEND=array:torch:cuda
    ENSEMBLE=${ENSEMBLE:-1024}
    MARKS="gpu or not slow"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PYTHON" -c 'import torch
assert torch.cuda.is_available(), "PyTorch sees no CUDA device"
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
elif [ "$DEVICE" = cpu ]; then
    if "$PYTHON" -c 'import torch' 2>/dev/null; then BACKEND=array:torch:cpu; else BACKEND=array:numpy; fi
    ENSEMBLE=${ENSEMBLE:-64}
    MARKS="not slow and not gpu"
    # The CPU path checks the script, it does not time the CPU: on a small shared machine
    # PyTorch's intra-op threads spin against each other (10x slower on tiny matrices).
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
    echo "gpu_check.sh: DEVICE must be cuda or cpu, got '$DEVICE'" >&2
    exit 2
fi
FILTER="$BACKEND or gpu"
if [ -n "${PROTOCOLS:-}" ]; then FILTER="($FILTER) and ($PROTOCOLS)"; fi

echo "== 1. conformance on $BACKEND"
timeout 420 "$PYTHON" -m pytest -q -rs -p no:cacheprovider -m "$MARKS" -k "$FILTER" \
    tests/test_backend_conformance.py tests/test_array_backend.py

echo "== 2. $ENSEMBLE networks of 64x16, float32, on $BACKEND"
for batch in 1 100; do
    timeout 300 "$PYTHON" benchmarks/linsker_speed.py --no-brian2 --no-memory --no-sparse --no-gemm \
        --sizes 64x16 --dtype float32 --only array_ensemble --array "$BACKEND" \
        --array-ensemble "$ENSEMBLE" --array-ensemble-batch "$batch" --repeats 2 \
        --samples "${SAMPLES:-0}" \
        --fp32-peak "${FP32_PEAK_TFLOPS:-0}" --json "$OUT_DIR/gpu_check_ensemble_batch$batch.json"
done

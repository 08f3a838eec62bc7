#!/usr/bin/env bash
# GPU check, under 5 minutes on one GPU: the array backend's conformance with the NumPy
# reference on the device (float64 and float32, every shipped protocol and feature), the
# `gpu`-marked tests, then the speed benchmark with the array backend on the device and an
# ensemble of 1024 networks of 64 × 16 in float32 (the issue's GPU target).
#
# Usage (from anywhere; needs the project's virtual environment with the gpu extra, which
# the GPU machine cannot download: carry .venv or install `.[test,gpu]` beforehand):
#     bash benchmarks/gpu_check.sh            # writes results/linsker_speed_gpu*.json
# PYTHON=/path/to/python overrides the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PYTHON" - <<'PY'
import torch
assert torch.cuda.is_available(), "PyTorch sees no CUDA device"
print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))
PY

# 1. Conformance on the device (array:torch:cuda; array:cupy too where CuPy is installed).
timeout 150 "$PYTHON" -m pytest -q -m "gpu or not slow" -rs \
    tests/test_backend_conformance.py tests/test_array_backend.py -k "cuda or cupy or gpu"

# 2. Speed: one network with mini-batches, and 1024 networks at once, in float64 ...
timeout 70 "$PYTHON" benchmarks/linsker_speed.py --quick --no-brian2 --no-memory \
    --array array:torch:cuda --gpu-ensemble 1024 --repeats 2 \
    --json results/linsker_speed_gpu.json
# ... and the ensemble in float32 against the card's FP32 peak (--fp32-peak in TFLOP/s).
timeout 60 "$PYTHON" benchmarks/linsker_speed.py --quick --no-brian2 --no-memory \
    --sizes 64x16 --dtype float32 --array array:torch:cuda --gpu-ensemble 1024 --repeats 2 \
    --only array --fp32-peak "${FP32_PEAK_TFLOPS:-0}" --json results/linsker_speed_gpu_fp32.json

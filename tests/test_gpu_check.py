"""benchmarks/gpu_check.sh on its CPU path (DEVICE=cpu): the script the GPU machine runs, so
that a broken step is found here and not in the few minutes a GPU is lent for."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPOSITORY


def test_cpu_path_runs_conformance_and_the_ensemble_benchmark(tmp_path):
    environment = dict(os.environ, DEVICE="cpu", PYTHON=sys.executable, ENSEMBLE="4",
                       SAMPLES="100", PROTOCOLS="linsker1992_1d and float64",
                       OUT_DIR=str(tmp_path))
    result = subprocess.run(["bash", str(REPOSITORY / "benchmarks" / "gpu_check.sh")],
                            env=environment, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    backend = "array:torch:cpu" if "array:torch:cpu" in result.stdout else "array:numpy"
    assert f"conformance on {backend}" in result.stdout
    assert " passed" in result.stdout and " failed" not in result.stdout
    for batch in (1, 100):
        report = json.loads((tmp_path / f"gpu_check_ensemble_batch{batch}.json").read_text())
        (row,) = report["rows"]
        assert (row["row"], row["members"], row["batch"], row["backend"]) == (
            "array_ensemble", 4, batch, backend)
        assert row["engine"]["samples_per_second"] > 0
        assert row["engine"]["fraction_of_fp32_peak"] is None  # no CUDA card: no peak


def test_an_unknown_device_is_refused_in_one_line(tmp_path):
    result = subprocess.run(["bash", str(REPOSITORY / "benchmarks" / "gpu_check.sh")],
                            env=dict(os.environ, DEVICE="tpu", OUT_DIR=str(tmp_path)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "gpu_check.sh: DEVICE must be cuda or cpu, got 'tpu'"

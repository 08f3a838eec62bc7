"""Array backend: namespace resolution, batched ensembles, errors — on NumPy (and PyTorch CPU).

The protocol and feature comparison with NumPy is in test_backend_conformance.py. Tests
marked ``gpu`` need a CUDA device (``pytest -m gpu``; benchmarks/gpu_check.sh runs them).
"""

from __future__ import annotations

import importlib.util

import pytest
from conftest import PROTOCOLS, relative_difference, run_simulation

from plasticsim.backends import build
from plasticsim.backends.array_backend import ArrayEnsemble, ArraySimulation, resolve_namespace
from plasticsim.backends.numpy_backend import LinskerSimulation
from plasticsim.ensemble import expand_ensemble
from plasticsim.errors import BackendUnavailable, SimulationDiverged
from plasticsim.loading import load_protocol

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["schedule.samples=2000", "schedule.warmup_samples=500", "record.every=1000"]
HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_plain_array_falls_back_to_numpy_without_a_gpu():
    namespace = resolve_namespace("array")
    if namespace.device == "cuda":
        pytest.skip("a GPU is usable here")
    assert namespace.name == "array:numpy"


@pytest.mark.parametrize("name, words", [
    ("array:cupy", "CuPy"), ("array:fortran", "unknown array backend"),
    ("array:numpy:cuda", "unknown array backend")])
def test_unusable_namespaces_say_why(name, words):
    if name == "array:cupy" and importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed")
    with pytest.raises(BackendUnavailable, match=words):
        resolve_namespace(name)


def test_torch_cuda_without_a_device_says_so():
    if not HAS_TORCH:
        with pytest.raises(BackendUnavailable, match="plasticsim\\[gpu\\]"):
            resolve_namespace("array:torch:cuda")
        return
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is usable here")
    with pytest.raises(BackendUnavailable, match="CUDA device"):
        resolve_namespace("array:torch:cuda")


def test_ensemble_of_mixed_phases_and_rates_matches_numpy():
    """Members whose phase sequences differ use the gather/scatter path for Q̂_p."""
    spec = load_protocol(REFERENCE, SHORT + [
        ("ensemble={seeds: [2], grid: {phases.noise_unlearning.enabled: [true, false],"
         " learning_rates.lateral.initial: [0.002, 0.004]}}")])
    members = expand_ensemble(spec)
    ensemble = ArrayEnsemble([member.spec for member in members], "array:numpy")
    assert len(ensemble.groups) == 1  # all structurally equal: one stack of 4
    run_simulation(ensemble)
    for member, simulation in zip(members, ensemble.members):
        reference = run_simulation(LinskerSimulation(member.spec))
        assert relative_difference(reference.C, simulation.C) < 1e-10
        assert relative_difference(reference.Q, simulation.Q) < 1e-10


def test_ensemble_divergence_names_the_member():
    spec = load_protocol(REFERENCE, SHORT + [
        "schedule.samples=3000",
        "ensemble={grid: {model.projections.lateral.settling.alpha: [0.1, 0.3]}}"])
    members = expand_ensemble(spec)
    from plasticsim.ensemble import build_ensemble
    ensemble = build_ensemble(spec, members, "array:numpy")
    with pytest.raises(SimulationDiverged, match="ensemble member 1 .*alpha=0.3") as error:
        run_simulation(ensemble, samples=3000)
    alone = ArraySimulation(members[1].spec, "array:numpy")
    with pytest.raises(SimulationDiverged) as single:
        run_simulation(alone, samples=3000)
    assert error.value.step == single.value.step


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
def test_torch_and_numpy_namespaces_agree():
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = load_protocol(REFERENCE, SHORT + ["model.constraints.0.kind=total_output_power"])
        with_numpy = run_simulation(build(spec, "array:numpy"))
        with_torch = run_simulation(build(spec, "array:torch:cpu"))
    finally:
        torch.set_num_threads(threads)
    assert with_torch.backend_name == "array:torch:cpu"
    assert relative_difference(with_numpy.C, with_torch.C) < 1e-10


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-3)])
def test_gpu_matches_numpy(dtype, tolerance):
    try:
        namespace = resolve_namespace("array")
    except BackendUnavailable as error:
        pytest.skip(str(error))
    if namespace.device != "cuda":
        pytest.skip("no usable CUDA device")
    spec = load_protocol(REFERENCE, SHORT + [f"dtype={dtype}"])
    reference = run_simulation(LinskerSimulation(spec))
    on_gpu = run_simulation(ArraySimulation(spec, namespace.name))
    assert relative_difference(reference.C, on_gpu.C) < tolerance

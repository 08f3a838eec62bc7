"""Every backend against the NumPy reference, number for number, on every shipped protocol.

Each shipped protocol (shortened; external images replaced by the built-in ones) runs on every
backend installed here, in float64 and float32, and every learned or estimated state array
(weights, running estimates, thresholds, gains) is compared with the NumPy backend's. Feature
variants (settling methods, α rules, constraints, phases, batch sizes) cover what the shipped
protocols do not. A backend that is not installed, or a device that is not there, is skipped
with its reason, and so is a plan that a backend refuses by design (Brian2: the refusal names
the operation); nothing else may skip.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BUILTIN_IMAGES, PROTOCOLS, relative_difference, simulate, \
    uses_external_images

from plasticsim.backends import build
from plasticsim.engine.builder import build_plan
from plasticsim.errors import BackendUnavailable
from plasticsim.spec.loading import load_protocol

# Brian2 on its runtime NumPy target (no compilation; the C++ standalone target is checked in
# tests/test_brian2_backend.py). It refuses, by design, what it has no code for (exact
# settling, power budgets, gates, sparse coding, float32): those skip with the
# refusal as the reason.
BACKENDS = ["numba", "array:numpy", "array:torch:cpu", "array:torch:cuda", "array:cupy",
            "brian2:numpy"]
FEATURE_BACKENDS = ["numba", "array:numpy"]  # brian2: tests/test_brian2_backend.py
#: Backends that refuse some plans by design (a refusal is a skip, not a failure).
REFUSING_BACKENDS = ("brian2",)
PROTOCOL_FILES = sorted(path.name for path in PROTOCOLS.glob("*.yaml"))
# Relative agreement (max |difference| / max |reference|) required after a short run. float32
# rounding differences grow while learning; 1e-3 is far below what a wrong step would give
# (a step in the wrong order or with the wrong sign differs at order 1e-2 or more).
TOLERANCE = {"float64": 1e-10, "float32": 1e-3}
REFERENCE_PROTOCOL = "linsker1992_1d.yaml"
COMPARED_ROLES = ("weights", "estimate")
FEATURES = {
    "euler": ["model.projections.lateral.settling.method=euler"],
    "exact": ["model.projections.lateral.settling.method=exact"],
    "alpha_trace": ["model.projections.lateral.settling.alpha=trace"],
    "alpha_fixed": ["model.projections.lateral.settling.alpha=0.1"],
    "total_weight_norm": ["model.projections.feedforward.constraints.0.kind=total_weight_norm"],
    "unit_power_running": [
        "model.projections.feedforward.constraints.0.kind=unit_output_power"],
    "total_power_exact": [
        "model.projections.feedforward.constraints.0={kind: total_output_power, "
        "input_covariance: exact}"],
    "natural_gradient": [
        "model.projections.feedforward.constraints.0.kind=unit_output_power",
        "model.projections.feedforward.rule.metric=input_covariance"],
    "no_constraint": ["model.projections.feedforward.constraints=[]",
                      "learning_rates.feedforward.initial=0.0002"],
    "noise_phase_off": ["phases.noise_unlearning.enabled=false"],
    "noise_phase_hebbian": ["phases.noise_unlearning.sign=1"],
    "one_sample_at_a_time": ["schedule.batch_size=1", "schedule.block_length=1"],
    "small_batches": ["schedule.batch_size=4", "schedule.block_length=8"],
    "large_batches": ["schedule.batch_size=50", "schedule.block_length=50"],
    "no_warmup": ["schedule.warmup_samples=0"],
}


def short(path, *overrides: str) -> list[str]:
    """The protocol with 20 steps of training after a warm-up of 5 steps (images: 4 steps)."""
    extra = list(BUILTIN_IMAGES) if uses_external_images(path) else []
    spec = load_protocol(path, extra + list(overrides))
    batch = spec.schedule.batch_size
    steps, warmup = (4, 0) if batch >= 100 else (20, 5)
    probes = [f"probes.{name}.samples=400" for name, probe in spec.probes.items()
              if "samples" in type(probe).model_fields]
    return extra + [f"schedule.samples={steps * batch}",
                    f"schedule.warmup_samples={warmup * batch}",
                    f"record.every={steps * batch // 2}", *probes, *overrides]


def assert_same_state(reference, other, tolerance):
    assert other.samples_done == reference.samples_done
    compared = 0
    for name, state in reference.plan.states.items():
        if state.role not in COMPARED_ROLES:
            continue
        difference = relative_difference(reference.read(name), other.read(name))
        assert difference <= tolerance, f"{name}: relative difference {difference:.3g}"
        compared += 1
    assert compared > 0


def assert_same_spikes(reference, other):
    """Spiking populations: identical spike counts in the last step (float64)."""
    for name, state in reference.plan.states.items():
        if state.role == "activity" and state.description.startswith("spike counts"):
            np.testing.assert_array_equal(reference.read(name), other.read(name),
                                          err_msg=f"{name}: a threshold crossing flipped")


_REFERENCES: dict = {}


def reference_run(spec):
    key = spec.model_dump_json()
    if key not in _REFERENCES:
        _REFERENCES[key] = simulate(spec, "numpy")
    return _REFERENCES[key]


def build_or_skip(spec, backend):
    """The backend's simulation; skip only where the library or device is missing."""
    try:
        return build(build_plan(spec), backend)
    except BackendUnavailable as error:
        message = str(error)
        if any(word in message for word in ("unavailable", "not installed", "No module",
                                            "no CUDA", "device")):
            pytest.skip(f"{backend}: {message}")
        if backend.split(":")[0] in REFUSING_BACKENDS and backend in message:
            pytest.skip(f"refused: {message}")
        raise


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", PROTOCOL_FILES)
def test_shipped_protocol_matches_numpy(protocol, backend, dtype):
    path = PROTOCOLS / protocol
    spec = load_protocol(path, short(path, f"dtype={dtype}"))
    simulation = build_or_skip(spec, backend)
    reference = reference_run(spec)
    simulate(spec, backend, simulation)
    assert_same_state(reference, simulation, TOLERANCE[dtype])
    if dtype == "float64":
        assert_same_spikes(reference, simulation)


@pytest.mark.parametrize("backend", FEATURE_BACKENDS)
@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_feature_matches_numpy(feature, backend):
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path, *FEATURES[feature]))
    simulation = build_or_skip(spec, backend)
    assert_same_state(reference_run(spec), simulate(spec, backend, simulation),
                      TOLERANCE["float64"])


@pytest.mark.parametrize("backend", ["numpy"] + FEATURE_BACKENDS)
def test_same_seed_same_backend_is_bit_identical(backend):
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path))
    first = simulate(spec, backend, build_or_skip(spec, backend))
    second = simulate(spec, backend)
    for name in ("feedforward.weights", "lateral.Q"):
        np.testing.assert_array_equal(first.read(name), second.read(name))


def test_a_wrong_step_would_be_caught():
    """The float64 tolerance is meaningful: flipping the noise phase's sign is far outside it."""
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path))
    flipped = load_protocol(path, short(path, "phases.noise_unlearning.sign=1"))
    assert relative_difference(reference_run(spec).read("feedforward.weights"),
                               reference_run(flipped).read("feedforward.weights")) > 1e-3


@pytest.mark.parametrize("backend", FEATURE_BACKENDS + ["array:torch:cpu", "brian2:numpy"])
def test_spiking_network_spikes_and_matches_numpy(backend):
    """SAILnet with thresholds low enough that units fire in the short run.

    At the shipped initial threshold (2.0) the short run's drives stay below threshold, so the
    shipped-protocol case compares zero spikes with zero spikes; here a threshold of 0.5 makes
    hundreds of crossings, and every backend must place each one exactly where NumPy does
    (float64), then learn the same lateral weights and thresholds from them.
    """
    path = PROTOCOLS / "sailnet_image_patches.yaml"
    spec = load_protocol(path, short(path, "model.populations.spiking.initial_threshold=0.5"))
    simulation = build_or_skip(spec, backend)
    reference = reference_run(spec)
    simulate(spec, backend, simulation)
    counts = reference.read("spiking.spikes") if "spiking.spikes" in reference.plan.states \
        else next(reference.read(name) for name, state in reference.plan.states.items()
                  if state.role == "activity" and state.description.startswith("spike counts"))
    assert counts.sum() > 100
    assert_same_spikes(reference, simulation)
    assert_same_state(reference, simulation, TOLERANCE["float64"])


@pytest.mark.parametrize("backend", FEATURE_BACKENDS + ["array:torch:cpu"])
def test_trace_rule_learns_and_matches_numpy(backend):
    """The complex-cell protocol with every layer learning from the first step and layer-1
    thresholds low enough to spike: the trace (per stimulus sequence) and the trace-rule
    weights must agree with NumPy (the shipped case's layer 2 does not learn in 4 steps)."""
    path = PROTOCOLS / "complex_cells.yaml"
    spec = load_protocol(path, short(path, "model.populations.simple.initial_threshold=0.5",
                                     *[f"learning_rates.{name}.window=null" for name in
                                       ("feedforward", "lateral", "pooling",
                                        "complex_lateral")]))
    simulation = build_or_skip(spec, backend)
    reference = reference_run(spec)
    simulate(spec, backend, simulation)
    trace = reference.read("pooling.trace")
    assert trace.sum() > 0
    initial = reference.plan.states["pooling.weights"].initial
    assert relative_difference(initial, reference.read("pooling.weights")) > 1e-3
    assert relative_difference(trace, simulation.read("pooling.trace")) <= TOLERANCE["float64"]
    assert_same_spikes(reference, simulation)
    assert_same_state(reference, simulation, TOLERANCE["float64"])

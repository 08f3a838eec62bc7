"""Every backend against the NumPy reference, number for number (STYLE.md habit 9).

Each shipped protocol (shortened) runs on every backend that is installed here, in float64
and float32, and its final state (C, both Q̂, running input covariances) is compared with
the NumPy backend's. Feature variants (settling methods, α rules, constraints, phases,
batch sizes) cover what the shipped protocols do not. A backend that cannot run a protocol
or a feature is skipped with its reason.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PROTOCOLS

from plasticsim.backends import build
from plasticsim.errors import BackendUnavailable
from plasticsim.loading import load_protocol

# GPU namespaces skip here with their reason and run on a GPU machine (gpu_check.sh).
BACKENDS = ["numba", "array:numpy", "array:torch:cpu", "array:torch:cuda", "array:cupy"]
FEATURE_BACKENDS = ["numba", "array:numpy", "array:torch:cuda"]  # torch on the CPU: slow
PROTOCOL_FILES = sorted(path.name for path in PROTOCOLS.glob("*.yaml"))
# Relative agreement (max |difference| / max |reference|) required after a short run. float32
# rounding differences grow while learning; 1e-3 is far below what a wrong step would give
# (a step in the wrong order or with the wrong sign differs at order 1e-2 or more).
TOLERANCE = {"float64": 1e-10, "float32": 1e-3}
REFERENCE_PROTOCOL = "linsker1992_1d.yaml"
FEATURES = {
    "euler": ["model.projections.lateral.settling.method=euler"],
    "exact": ["model.projections.lateral.settling.method=exact"],
    "alpha_trace": ["model.projections.lateral.settling.alpha=trace"],
    "alpha_fixed": ["model.projections.lateral.settling.alpha=0.1"],
    "total_weight_norm": ["model.constraints.0.kind=total_weight_norm"],
    "unit_power_running": ["model.constraints.0.kind=unit_output_power"],
    "total_power_exact": ["model.constraints.0.kind=total_output_power",
                          "model.constraints.0.input_covariance=exact"],
    "natural_gradient": ["model.constraints.0.kind=unit_output_power",
                         "model.projections.feedforward.metric=input_covariance"],
    "no_constraint": ["model.constraints=[]", "learning_rates.feedforward.initial=0.0002"],
    "noise_phase_off": ["phases.noise_unlearning.enabled=false"],
    "noise_phase_hebbian": ["phases.noise_unlearning.sign=1"],
    "one_sample_at_a_time": ["schedule.batch_size=1", "schedule.block_length=1"],
    "small_batches": ["schedule.batch_size=4", "schedule.block_length=8"],
    "large_batches": ["schedule.batch_size=50", "schedule.block_length=50"],
    "no_warmup": ["schedule.warmup_samples=0"],
}


def short(path, *overrides: str):
    """The protocol with 200 steps of training after a warm-up of 50 steps."""
    batch = load_protocol(path, list(overrides)).schedule.batch_size
    return [f"schedule.samples={200 * batch}", f"schedule.warmup_samples={50 * batch}",
            f"record.every={100 * batch}", *overrides]


def run_short(spec, backend: str, simulation=None):
    """Build (unless given), warm up and advance in record-sized chunks (as plasticsim.run)."""
    simulation = simulation or build(spec, backend)
    simulation.warmup()
    while simulation.samples_done < spec.schedule.samples:
        simulation.advance(min(spec.record.every,
                               spec.schedule.samples - simulation.samples_done))
    return simulation


def relative_difference(reference, other) -> float:
    reference, other = np.asarray(reference, float), np.asarray(other, float)
    return float(np.max(np.abs(reference - other)) / np.max(np.abs(reference)))


def assert_same_state(reference, other, tolerance):
    assert other.samples_done == reference.samples_done
    assert relative_difference(reference.C, other.C) <= tolerance
    assert relative_difference(reference.Q, other.Q) <= tolerance
    for mine, theirs in zip(reference.constraints, other.constraints):
        if getattr(mine, "running", False):
            assert relative_difference(mine.input_covariance,
                                       theirs.input_covariance) <= tolerance
    if tolerance < 1e-6:  # float32 residuals sit at float32 rounding and do not compare
        assert other.last_residual == pytest.approx(reference.last_residual, rel=1e-4)


@pytest.fixture(scope="module", autouse=True)
def _torch_single_thread():
    """Tiny matrices: PyTorch's intra-op threads only add contention on a small machine."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_REFERENCES: dict = {}


def reference_run(spec):
    key = spec.model_dump_json()
    if key not in _REFERENCES:
        _REFERENCES[key] = run_short(spec, "numpy")
    return _REFERENCES[key]


def build_or_skip(spec, backend):
    try:
        return build(spec, backend)
    except BackendUnavailable as error:
        pytest.skip(f"{backend}: {error}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", PROTOCOL_FILES)
def test_shipped_protocol_matches_numpy(protocol, backend, dtype):
    if backend == "array:torch:cpu" and dtype == "float32" and protocol != REFERENCE_PROTOCOL:
        pytest.skip("PyTorch on the CPU: float32 on the reference protocol only (slow; the "
                    "same code runs float32 on NumPy for every protocol)")
    spec = load_protocol(PROTOCOLS / protocol, short(PROTOCOLS / protocol, f"dtype={dtype}"))
    simulation = build_or_skip(spec, backend)
    reference = reference_run(spec)
    assert_same_state(reference, run_short(spec, backend, simulation), TOLERANCE[dtype])


@pytest.mark.parametrize("backend", FEATURE_BACKENDS)
@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_feature_matches_numpy(feature, backend):
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path, *FEATURES[feature]))
    simulation = build_or_skip(spec, backend)
    assert_same_state(reference_run(spec), run_short(spec, backend, simulation),
                      TOLERANCE["float64"])


@pytest.mark.parametrize("backend", FEATURE_BACKENDS)
def test_float32_one_sample_at_a_time_matches_numpy(backend):
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path, *FEATURES["one_sample_at_a_time"], "dtype=float32"))
    simulation = build_or_skip(spec, backend)
    assert_same_state(reference_run(spec), run_short(spec, backend, simulation),
                      TOLERANCE["float32"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_backend_is_bit_identical(backend):
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path))
    first = run_short(spec, backend, build_or_skip(spec, backend))
    second = run_short(spec, backend)
    np.testing.assert_array_equal(first.C, second.C)
    np.testing.assert_array_equal(first.Q, second.Q)


def test_a_wrong_step_would_be_caught():
    """The float64 tolerance is meaningful: flipping the noise phase's sign is far outside it."""
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path))
    flipped = load_protocol(path, short(path, "phases.noise_unlearning.sign=1"))
    assert relative_difference(reference_run(spec).C, reference_run(flipped).C) > 1e-3


# ------------------------------------------------------------------ selection
def test_auto_picks_numba_and_the_results_say_so(tmp_path):
    pytest.importorskip("numba")
    import plasticsim
    path = PROTOCOLS / REFERENCE_PROTOCOL
    results = plasticsim.run(path, tmp_path, overrides=short(path), backend="auto",
                             progress=False, figures=False)
    assert results.attributes["backend"] == "numba"


def test_auto_falls_back_and_says_why_for_what_numba_cannot_run():
    pytest.importorskip("numba")
    path = PROTOCOLS / "gating_e2_linsker.yaml"
    spec = load_protocol(path, short(path))
    with pytest.warns(UserWarning, match="auto chose 'numpy'.*gated"):
        simulation = build(spec, "auto")
    assert simulation.backend_name == "numpy"


def test_missing_backend_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    from plasticsim import backends
    from plasticsim.cli import main
    backends._import_all()
    monkeypatch.delitem(backends.BACKENDS, "numba", raising=False)
    monkeypatch.setitem(backends.UNAVAILABLE, "numba",
                        "No module named 'numba'; install it with: pip install numba")
    path = PROTOCOLS / REFERENCE_PROTOCOL
    spec = load_protocol(path, short(path))
    with pytest.raises(BackendUnavailable, match="pip install numba"):
        build(spec, "numba")
    with pytest.warns(UserWarning, match="No module named 'numba'"):
        assert build(spec, "auto").backend_name == "numpy"
    arguments = ["run", str(path), "--backend", "numba", "--out", str(tmp_path / "run")]
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "pip install numba" in error[0]
    assert not (tmp_path / "run").exists()

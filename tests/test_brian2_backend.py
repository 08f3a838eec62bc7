"""The Brian2 backend (plasticsim.backends.brian2_backend): the plan compiled into Brian2.

Short runs on the runtime NumPy target (no compilation) check the compiled network against
the NumPy reference number for number; refusals and missing tools are checked without
compiling anything. The C++ standalone target compiles for about 40 s on two quiet cores
(minutes on a loaded machine or a cold cache), and the exported script runs Brian2 in a fresh
process (about 80 s), so those tests (a short standalone run, 20,000 samples, the full
protocol, the export round trip) are slow-marked: `pytest -m slow tests/test_brian2_backend.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from conftest import PROTOCOLS, REPOSITORY, SHARED, relative_difference, simulate

from plasticsim.backends import build, check_supported
from plasticsim.engine.builder import build_plan
from plasticsim.errors import BackendUnavailable
from plasticsim.spec.loading import load_protocol

pytest.importorskip("brian2")

LINSKER = PROTOCOLS / "linsker1992_1d.yaml"
RUNTIME = "brian2:numpy"   # no Cython compilation in the default suite
SAILNET = PROTOCOLS / "sailnet_image_patches.yaml"
#: SAILnet made small (24 LIF units on 6 × 6 patches, batches of 10): seconds on NumPy code.
SAILNET_SMALL = ["schedule.batch_size=10", "schedule.block_length=10",
                 "model.populations.spiking.size=24", "model.populations.input.size=36",
                 "stimuli.input.patch_size=6", "stimuli.input.covariance_samples=500"]


def short_spec(path, samples=200, warmup=50, *overrides):
    return load_protocol(path, [f"schedule.samples={samples}",
                                f"schedule.warmup_samples={warmup}",
                                f"record.every={samples // 2}", *overrides])


def assert_matches_numpy(spec, backend, tolerance):
    reference = simulate(spec, "numpy")
    other = simulate(spec, backend)
    compared = []
    for name, state in reference.plan.states.items():
        if state.role in ("weights", "estimate", "activity"):
            difference = relative_difference(reference.read(name), other.read(name))
            assert difference <= tolerance, f"{name}: relative difference {difference:.3g}"
            compared.append(name)
    assert "feedforward.weights" in compared or "feedforward1.weights" in compared
    return reference, other


def test_runtime_target_matches_numpy_on_the_two_layer_model():
    """Every state (activities too) of both layers; the conformance suite covers the rest."""
    reference, other = assert_matches_numpy(short_spec(PROTOCOLS / "linsker_two_layer.yaml"),
                                            RUNTIME, 1e-10)
    # The weights moved: agreement is not the trivial agreement of two untouched arrays.
    for name in ("feedforward1.weights", "feedforward2.weights"):
        assert relative_difference(reference.plan.states[name].initial[0],
                                   reference.read(name)[0]) > 1e-3


@pytest.mark.parametrize("overrides", [
    ["model.projections.lateral.settling.method=euler"],
    ["model.projections.lateral.settling.alpha=trace"],
    ["model.projections.lateral.settling.alpha=0.1"],
    ["model.projections.feedforward.constraints.0.kind=total_weight_norm"],
    ["model.projections.feedforward.constraints=[]", "learning_rates.feedforward.initial=0.0002"],
    ["phases.noise_unlearning.enabled=false"],
    ["schedule.batch_size=1", "schedule.block_length=1"]],
    ids=["euler", "alpha_trace", "alpha_fixed", "total_weight_norm", "no_constraint",
         "noise_phase_off", "one_sample_at_a_time"])
def test_feature_matches_numpy(overrides):
    assert_matches_numpy(short_spec(LINSKER, 100, 20, *overrides), RUNTIME, 1e-10)


def test_settling_residual_monitor_matches_numpy():
    reference = simulate(short_spec(LINSKER), "numpy")
    other = simulate(short_spec(LINSKER), RUNTIME)
    assert reference.metrics(0)["settling_residual"] == pytest.approx(
        other.metrics(0)["settling_residual"], rel=1e-6)


def test_a_diverging_lateral_network_fails_like_numpy():
    """A fixed α that Q̂ outgrows: the same step fails with the same residual as on NumPy."""
    from plasticsim.errors import SimulationDiverged
    spec = short_spec(LINSKER, 100, 20, "model.projections.lateral.settling.alpha=0.95")
    messages = []
    for backend in ("numpy", RUNTIME):
        with pytest.raises(SimulationDiverged, match="settling residual") as error:
            simulate(spec, backend)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


@pytest.mark.parametrize("override, operation", [
    ("model.projections.lateral.settling.method=exact", "settle"),
    ("model.projections.feedforward.constraints.0.kind=unit_output_power", "constrain")])
@pytest.mark.parametrize("target", ["brian2", "brian2:cpp_standalone"])
def test_refused_before_compilation(override, operation, target, monkeypatch):
    import brian2
    created = []
    monkeypatch.setattr(brian2.NeuronGroup, "__init__",
                        lambda *a, **k: created.append(a) or pytest.fail("compiled"))
    plan = build_plan(short_spec(LINSKER, 100, 0, override))
    with pytest.raises(BackendUnavailable) as error:
        check_supported(plan, target)
    assert f"the {target} backend cannot run the {operation!r} operation" in str(error.value)
    with pytest.raises(BackendUnavailable):
        build(plan, target)
    assert not created


def test_refusal_on_the_command_line_is_one_line_and_exit_2(capsys):
    from plasticsim.cli import main
    code = main(["validate", "--backend", "brian2:cpp_standalone",
                 str(PROTOCOLS / "olshausen_field_image_patches.yaml")])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert error.count("\n") == 0
    assert "'lca' operation" in error and "brian2:cpp_standalone" in error


def test_missing_brian2_is_one_line_with_install_hint():
    program = ("import sys; sys.modules['brian2'] = None\n"
               "from plasticsim.cli import main\n"
               f"sys.exit(main(['validate', '--backend', 'brian2', {str(LINSKER)!r}]))")
    completed = subprocess.run([sys.executable, "-c", program], capture_output=True,
                               text=True, cwd=REPOSITORY)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install" in lines[0] and "brian2" in lines[0]


def test_missing_compiler_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-plasticsim")
    before = set(os.listdir(tempfile.gettempdir()))
    out = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, "-m", "plasticsim.cli", "run", str(LINSKER), "--out", str(out),
         "--backend", "brian2:cpp_standalone", "--no-progress"],
        capture_output=True, text=True, cwd=REPOSITORY)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "C++ compiler" in lines[0] and "no-such-compiler" in lines[0]
    assert not out.exists()
    created = set(os.listdir(tempfile.gettempdir())) - before
    assert not [name for name in created if name.startswith("plasticsim-brian2-")]


@pytest.mark.slow
def test_cpp_standalone_short_run_matches_numpy():
    """One compilation (≈ 40 s on two quiet cores): the standalone binary, run chunk by chunk (and
    a chunk shorter than the binary's capacity, padded with inactive steps)."""
    assert_matches_numpy(short_spec(LINSKER, 400, 100, "record.every=300"),
                         "brian2:cpp_standalone", 1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["brian2", "brian2:cpp_standalone"])
def test_twenty_thousand_samples_match_numpy_to_1e8(target):
    """The issue's figure: final C within 1e-8 relative of NumPy after 20,000 samples (and the
    protocol's 20,000 warm-up samples), float64, same draws."""
    spec = load_protocol(LINSKER, ["schedule.samples=20000"])
    reference = simulate(spec, "numpy")
    other = simulate(spec, target)
    difference = relative_difference(reference.read("feedforward.weights"),
                                     other.read("feedforward.weights"))
    print(f"{target}: final C relative difference {difference:.3g}")
    assert difference <= 1e-8


@pytest.mark.slow
def test_full_protocol_on_cpp_standalone_reaches_the_optimum(tmp_path):
    import plasticsim
    results = plasticsim.run(LINSKER, tmp_path / "run", backend="brian2:cpp_standalone",
                             overwrite=True, progress=False, figures=False)
    fraction = results.summary["fraction_of_optimum"]
    print(f"brian2:cpp_standalone full protocol: {fraction:.4%} of the closed-form optimum")
    assert fraction >= 0.995
    assert results.attributes.get("backend") == "brian2:cpp_standalone"


@pytest.mark.slow
def test_exported_script_reproduces_the_backend_in_a_fresh_process(tmp_path):
    """``plasticsim export --to brian2``: plain ``python OUT.py`` (numpy + brian2 only) gives
    the backend's final state, number for number."""
    from plasticsim.cli import main
    overrides = ["schedule.samples=200", "schedule.warmup_samples=50", "record.every=100"]
    script = tmp_path / "linsker.py"
    arguments = ["export", str(LINSKER), "--to", "brian2", "-o", str(script)]
    assert main(arguments + [a for o in overrides for a in ("--set", o)]) == 0
    text = script.read_text()
    assert "plasticsim" not in "".join(line for line in text.splitlines()
                                       if line.startswith(("import", "from")))
    out = tmp_path / "final.npz"
    completed = subprocess.run([sys.executable, str(script), str(out), "--target", "numpy"],
                               capture_output=True, text=True, cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": ""})
    assert completed.returncode == 0, completed.stderr[-2000:]
    exported = np.load(out)
    backend = simulate(load_protocol(LINSKER, overrides), RUNTIME)
    for name in ("feedforward.weights", "lateral.Q"):
        assert relative_difference(backend.read(name)[0], exported[name]) <= 1e-8, name
    # …and the weights learned something (the comparison is not of two initial states).
    initial = backend.plan.states["feedforward.weights"].initial[0]
    assert relative_difference(initial, exported["feedforward.weights"]) > 1e-3


def test_export_refuses_what_brian2_cannot_run(tmp_path, capsys):
    from plasticsim.cli import main
    script = tmp_path / "exact.py"
    code = main(["export", str(LINSKER), "--to", "brian2", "-o", str(script),
                 "--set", "model.projections.lateral.settling.method=exact"])
    assert code == 2 and not script.exists()
    assert "'settle' operation" in capsys.readouterr().err


def assert_spiking_matches_numpy(spec, backend):
    """Identical spike counts in the last step, weights and thresholds within 1e-10 relative:
    given the same drive the LIF window is deterministic, and every threshold crossing of
    NumPy's window happens on the same tick in Brian2's."""
    reference = simulate(spec, "numpy")
    other = simulate(spec, backend)
    counts = reference.read("spiking.activity")
    np.testing.assert_array_equal(counts, other.read("spiking.activity"))
    for name in ("feedforward.weights", "lateral.weights", "spiking.thresholds"):
        difference = relative_difference(reference.read(name), other.read(name))
        assert difference <= 1e-10, f"{name}: relative difference {difference:.3g}"
    # Not the agreement of two silent networks: units fired (near their target rate) and the
    # lateral weights, zero at the start, grew from the spikes.
    assert 0.02 < counts.mean() < 0.5
    assert np.abs(other.read("lateral.weights")).max() > 1e-3
    return reference, other


def test_sailnet_lif_neurons_match_numpy():
    """SAILnet as spiking LIF neurons (threshold, reset, event-driven lateral inhibition,
    homeostatic thresholds, Oja and Földiák rules, clip with zero diagonal): 2,000 samples."""
    assert_spiking_matches_numpy(load_protocol(SAILNET, [
        "schedule.samples=2000", "schedule.warmup_samples=0", "record.every=1000",
        *SAILNET_SMALL]), RUNTIME)


def test_sailnet_lateral_inhibition_is_event_driven():
    """The lateral term is Synapses with on_pre (a spike adds W_ij to unit i's next input),
    not a product of every pair on every fast tick; the window runs on the fast clock."""
    from plasticsim.backends.brian2_backend import PlanCompiler
    net = PlanCompiler(build_plan(load_protocol(SAILNET, SAILNET_SMALL))).compile()
    assert net.ticks_per_step == 50
    event_driven = [s for s in net.synapses.values() if s.on_pre]
    assert len(event_driven) == 1 and event_driven[0].clock == "fast"
    assert len(event_driven[0].i) == 10 * 24 * 24   # within each batch entry only
    assert not [s for s in net.synapses.values() if s.clock == "fast" and not s.on_pre]
    fast = [g for g in net.groups.values() if g.clock == "fast"]
    assert [g.threshold != "" for g in fast] == [True]


def test_sailnet_hebbian_terms_are_written_and_other_decays_refused():
    from plasticsim.backends.brian2_backend import refusal
    plan = build_plan(load_protocol(SAILNET, SAILNET_SMALL))
    assert refusal(plan) is None
    decaying = next(op for op in plan.operations if op.primitive == "hebbian"
                    and op.parameters["decay"] == "diagonal")
    decaying.parameters["decay"] = "sanger"
    assert "decay 'sanger' is not written" in refusal(plan)


@pytest.mark.slow
def test_sailnet_on_cpp_standalone_matches_numpy():
    """One compilation; the binary runs 100-step chunks (record.every = 1,000 samples)."""
    assert_spiking_matches_numpy(load_protocol(SAILNET, [
        "schedule.samples=2000", "schedule.warmup_samples=0", "record.every=1000",
        *SAILNET_SMALL]), "brian2:cpp_standalone")


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "data" / "olshausen").is_dir(),
                    reason="Olshausen's images (../shared/data/olshausen) are absent")
def test_sailnet_on_olshausen_images_learns_the_same_fields_on_cpp_standalone(tmp_path):
    """The full protocol (100,000 samples) on both backends: the same learned weights
    (rounding only), so the same receptive fields, Gabor fits and spike rates."""
    import h5py

    import plasticsim
    images = SHARED / "data" / "olshausen" / "sparsenet_tcl_trainset" / "image*"
    runs = {backend: plasticsim.run(PROTOCOLS / "sailnet_olshausen_images.yaml",
                                    tmp_path / backend.replace(":", "_"), backend=backend,
                                    overrides=[f"stimuli.input.source.path={images}"],
                                    overwrite=True, progress=False, figures=False)
            for backend in ("numpy", "brian2:cpp_standalone")}
    stored = {backend: h5py.File(run.path, "r") for backend, run in runs.items()}
    reference, other = stored["numpy"], stored["brian2:cpp_standalone"]
    for name in ("weights/feedforward", "weights/lateral", "weights/spiking_thresholds"):
        difference = relative_difference(reference[name][()], other[name][()])
        print(f"{name}: relative difference {difference:.3g}")
        assert difference <= 1e-8, name
    np.testing.assert_array_equal(reference["metrics/mean_rate"][-1],
                                  other["metrics/mean_rate"][-1])
    summaries = [run.summary for run in runs.values()]
    assert summaries[0]["fraction_r2_above_0.9"] == summaries[1]["fraction_r2_above_0.9"]
    assert summaries[0]["fraction_r2_above_0.9"] > 0.4   # the network learned Gabor fields

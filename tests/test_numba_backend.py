"""Numba backend: what is particular to the compiled step loop.

The protocol-by-protocol and feature-by-feature comparison with NumPy is in
test_backend_conformance.py; this module checks the generated code (which paths a batch size
takes, the cached file written once and reused), the same failures as the reference, members
stepped in threads, identical spike counts over many steps, prefetched draws, and refusals.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import PROTOCOLS, relative_difference, simulate

from plasticsim.backends import build, check_supported, numba_backend
from plasticsim.backends.numba_backend import NumbaSimulation, compile_plan, generate_source
from plasticsim.engine.builder import build_plan, build_plans
from plasticsim.errors import BackendUnavailable, SimulationDiverged
from plasticsim.spec.ensemble import expand_ensemble
from plasticsim.spec.loading import load_protocol

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["schedule.samples=400", "schedule.warmup_samples=50", "record.every=200"]


def reference_spec(*overrides):
    return load_protocol(REFERENCE, SHORT + list(overrides))


# ------------------------------------------------------------------ generated code
@pytest.mark.parametrize("batch, settle, matmul, blas", [
    (1, "settle_vector", "matmul_loops", "False"),
    (4, "settle_batch", "matmul_loops", "False"),
    (20, "settle_batch", "matmul_blas", "True"),
])
def test_batch_size_chooses_the_loop_or_blas_path(batch, settle, matmul, blas):
    """One sample at a time and small batches stay in explicit loops; from
    BLAS_MIN_BATCH = 8 on, the matrix products go to BLAS (as the pre-engine backend)."""
    spec = reference_spec(f"schedule.batch_size={batch}", f"schedule.block_length={batch}",
                          f"schedule.samples={batch * 20}", f"record.every={batch * 10}",
                          f"schedule.warmup_samples={batch * 2}")
    text, states, rates, streams = generate_source(build_plan(spec))
    assert f"kernels.{settle}(" in text and f"kernels.{matmul}(" in text
    settle_line = next(line for line in text.splitlines() if f"kernels.{settle}(" in line)
    if settle == "settle_batch":
        assert settle_line.rstrip().endswith(f"{blas})")
    # Constants are written into the code: 200 iterations, the tolerance, the phase signs.
    assert "200, 1e-08" in settle_line
    assert "(1.0 if phase == 0 else -1.0)" in text
    assert states[0] == "input.activity" and "lateral.learning_rate" in rates
    assert streams == ["stimulus.input", "output_noise.output"]


def test_generated_loop_is_written_once_and_its_compiled_code_reused(monkeypatch):
    """The step loop's file is named after its text, never rewritten, and a fresh import
    finds Numba's compiled code on disk (a later run compiles nothing)."""
    spec = reference_spec()
    plan = build_plan(spec)
    simulate(spec, "numba", build(plan, "numba"))  # compiles, or loads from the disk cache
    path = compile_plan(plan).path
    stamp = path.stat().st_mtime_ns
    text = path.read_text()
    assert path.name == f"plan_{numba_backend.hashlib.sha256(text.encode()).hexdigest()[:20]}.py"
    # A later run: a new module object from the same file.
    digest = path.stem.removeprefix("plan_")
    numba_backend._LOADED.pop(digest)
    sys.modules.pop(f"plasticsim_numba_plan_{digest}")
    again = build(plan, "numba")
    assert again.step_loop.function is not None and again.step_loop.path == path
    simulate(spec, "numba", again)
    stats = again.step_loop.function.stats
    assert sum(stats.cache_hits.values()) == 1 and not stats.cache_misses
    assert path.stat().st_mtime_ns == stamp and path.read_text() == text
    # Another structure (Euler settling: another constant) is another file.
    other = build_plan(reference_spec("model.projections.lateral.settling.method=euler"))
    assert compile_plan(other).path != path


def test_cache_file_is_created_atomically_and_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv(numba_backend.CACHE_ENVIRONMENT, str(tmp_path))
    monkeypatch.setattr(numba_backend, "_LOADED", {})
    plan = build_plan(reference_spec("model.projections.lateral.settling.iterations=37"))
    path = compile_plan(plan).path
    assert path.parent == tmp_path
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(numba_backend, "_LOADED", {})
    assert compile_plan(plan).path == path
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".py"] == [path.name]


# --------------------------------------------------------------------------- errors
def _failures(spec, backend, edit=None, steps=10):
    """run_steps of one chunk of training steps on a backend, after ``edit(simulation,
    chunk)``; the failures it reports."""
    simulation = build(build_plan(spec), backend)
    chunk = simulation.prepare_chunk(steps * spec.schedule.batch_size)
    if edit is not None:
        edit(simulation, chunk)
    return simulation.run_steps(chunk), simulation


def _zero(name):
    def edit(simulation, chunk):
        simulation.write(name, np.zeros_like(simulation.read(name)))
    return edit


def _noise_phase_with_zero_covariance(simulation, chunk):
    # In noise-unlearning steps q̂_L is not updated, so zeros stay zeros: exactly singular.
    chunk.phases[:] = 1
    _zero("feedforward.input_covariance_0")(simulation, chunk)


def _zero_basal_moment_frozen(simulation, chunk):
    chunk.rates["output.third_factor_average"][:] = 0.0
    _zero("output.basal_moment")(simulation, chunk)


@pytest.mark.parametrize("protocol, overrides, edit, quantity", [
    ("linsker1992_1d.yaml", ["model.projections.lateral.settling.method=exact"],
     _zero("lateral.Q"), "settling residual"),
    ("linsker1992_1d_power_series.yaml", [], _noise_phase_with_zero_covariance,
     "input covariance"),
    ("gating_e1_control.yaml", [], _zero_basal_moment_frozen, "basal moment"),
])
def test_singular_matrices_fail_as_in_numpy(protocol, overrides, edit, quantity):
    spec = load_protocol(PROTOCOLS / protocol, SHORT + overrides)
    expected, _ = _failures(spec, "numpy", edit)
    found, _ = _failures(spec, "numba", edit)
    assert [f.quantity for f in expected] == [quantity]
    assert found == expected or (
        [(f.member, f.step, f.quantity, f.detail) for f in found]
        == [(f.member, f.step, f.quantity, f.detail) for f in expected]
        and all(np.isnan(f.value) for f in found + expected))


def test_a_diverging_member_stops_where_numpy_stops_it():
    """Fixed α with one member's outputs ~20× larger: its lateral network stops converging at
    the same step, with the same residual and message, while the other member runs on."""
    spec = reference_spec("model.projections.lateral.settling.alpha=0.3",
                          "ensemble={size: 1, grid: {stimuli.input.signal_variance: [1.0, "
                          "20.0]}}")
    plans = build_plans([member.spec for member in expand_ensemble(spec)])
    assert len(plans) == 1 and plans[0].n_members == 2
    outcomes = []
    for backend in ("numpy", "numba"):
        simulation = build(plans[0], backend, labels=["calm", "loud"])
        simulation.warmup()
        failures = simulation.run_steps(simulation.prepare_chunk(400))
        again = build(plans[0], backend, labels=["calm", "loud"])
        again.warmup()
        with pytest.raises(SimulationDiverged) as error:
            again.advance(400)
        outcomes.append((failures, str(error.value)))
    (numpy_failures, numpy_message), (numba_failures, numba_message) = outcomes
    assert [f.member for f in numpy_failures] == [1]
    assert [(f.member, f.step, f.quantity, f.detail) for f in numba_failures] == \
        [(f.member, f.step, f.quantity, f.detail) for f in numpy_failures]
    assert numba_failures[0].value == pytest.approx(numpy_failures[0].value, rel=1e-9)
    assert numba_failures[0].value > 1.0
    assert "ensemble member loud: simulation diverged at step" in numba_message
    assert numba_message.split(" = ")[0] == numpy_message.split(" = ")[0]


# ---------------------------------------------------------------------- parallelism
def test_members_in_threads_equal_each_member_alone():
    """Four members stepped by two threads; each equals its protocol run alone, bit for bit,
    and the NumPy reference to rounding."""
    spec = reference_spec("ensemble={seeds: [1, 7, 8, 11]}")
    members = expand_ensemble(spec)
    plans = build_plans([member.spec for member in members])
    assert len(plans) == 1
    together = NumbaSimulation(plans[0], threads=2)
    assert together.threads == 2
    simulate(members[0].spec, "numba", together)
    for index, member in enumerate(members):
        alone = simulate(member.spec, "numba")
        reference = simulate(member.spec, "numpy")
        for name in ("feedforward.weights", "lateral.Q"):
            np.testing.assert_array_equal(together.read(name)[index], alone.read(name)[0])
            assert relative_difference(reference.read(name)[0],
                                       together.read(name)[index]) < 1e-10


def test_spike_counts_are_identical_step_after_step():
    """SAILnet in float64: the same units cross threshold in every one of 30 steps
    (3000 inputs, 50 integration steps each), not only in the last one.

    The built-in images keep the protocol's unit pixel variance here (the conformance suite
    leaves them unscaled, and there no unit reaches threshold in its four steps)."""
    spec = load_protocol(PROTOCOLS / "sailnet_olshausen_images.yaml", [
        "stimuli.input.source={kind: skimage}", "stimuli.input.whiten=true",
        "schedule.samples=3000", "schedule.warmup_samples=0", "record.every=3000"])
    simulations = [build(build_plan(spec), backend) for backend in ("numpy", "numba")]
    total_spikes = 0
    for step in range(30):
        for simulation in simulations:
            simulation.advance(100)
        counts = [simulation.read("spiking.activity") for simulation in simulations]
        np.testing.assert_array_equal(counts[0], counts[1], err_msg=f"step {step}")
        total_spikes += counts[0].sum()
    assert total_spikes > 10_000  # the units do fire (≈ 0.2 spikes per unit and input)
    for name in ("spiking.thresholds", "lateral.weights", "feedforward.weights"):
        assert relative_difference(simulations[0].read(name), simulations[1].read(name)) < 1e-12


def test_prefetched_draws_change_nothing():
    """Drawing the next chunk ahead (on copies of the streams) gives the same numbers, also
    when the next call asks for another chunk than predicted."""
    spec = reference_spec("schedule.samples=600")
    plain, ahead = (build(build_plan(spec), "numba") for _ in range(2))
    plain.prefetch = False
    for simulation in (plain, ahead):
        simulation.warmup()
        simulation.advance(200)  # as predicted after the warm-up (record.every)
        simulation.advance(100)  # not as predicted: the 200 drawn ahead are dropped
        simulation.advance(200)
        simulation.advance(100)
    for name in ("feedforward.weights", "lateral.Q"):
        np.testing.assert_array_equal(plain.read(name), ahead.read(name))
    for plain_rngs, ahead_rngs in zip(plain.stream_rngs, ahead.stream_rngs):
        assert [rng.random() for rng in plain_rngs] == [rng.random() for rng in ahead_rngs]
    assert ahead._pending is None  # the last chunk ends the run: nothing left to draw


# ------------------------------------------------------------------------ refusals
def test_unknown_operation_is_refused_with_its_origin():
    plan = build_plan(reference_spec())
    plan.operations[3] = dataclasses.replace(plan.operations[3], primitive="settle_newton")
    with pytest.raises(BackendUnavailable, match=r"the numba backend does not implement the "
                       r"'settle_newton' operation \(model\.projections\.lateral\.settling\); "
                       r"use backend numpy"):
        check_supported(plan, "numba")


def test_unknown_parameter_value_is_refused_before_anything_runs():
    plan = build_plan(reference_spec())
    settle = plan.operations[3]
    plan.operations[3] = dataclasses.replace(settle, parameters={**settle.parameters,
                                                                 "method": "newton"})
    with pytest.raises(BackendUnavailable, match=r"does not implement settle with method "
                       r"'newton' \(model\.projections\.lateral\.settling\); use backend numpy"):
        build(plan, "numba")

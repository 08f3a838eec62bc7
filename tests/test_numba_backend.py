"""Numba backend: same numbers as the NumPy reference, same errors, refusals with reasons.

The protocol-by-protocol and feature-by-feature comparison with NumPy is in
test_backend_conformance.py; this module checks what is particular to the compiled backend.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from conftest import PROTOCOLS, relative_difference, run_simulation

from plasticsim.backends import build
from plasticsim.backends.numba_backend import (
    BLAS_MIN_BATCH,
    USE_BLAS,
    NumbaEnsemble,
    NumbaSimulation,
)
from plasticsim.backends.numpy_backend import LinskerSimulation
from plasticsim.ensemble import draw_steps, expand_ensemble
from plasticsim.errors import BackendUnavailable, SimulationDiverged
from plasticsim.loading import load_protocol

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["schedule.samples=2000", "schedule.warmup_samples=500", "record.every=1000"]


def test_flat_draw_uses_the_same_streams_and_numbers():
    """draw_steps asks the stimulus for one flat run: same random numbers as ``_draw``."""
    spec = load_protocol(REFERENCE, SHORT)
    reference, fast = LinskerSimulation(spec), LinskerSimulation(spec)
    phases = np.arange(50) % 2
    inputs, noise = reference._draw(phases)
    fast_inputs, fast_noise = draw_steps(fast, phases)
    assert fast_inputs.shape == inputs.shape and fast_noise.shape == noise.shape
    np.testing.assert_allclose(fast_inputs, inputs, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(fast_noise, noise)
    # Both streams advanced by exactly as many numbers.
    assert reference.stimulus_rng.random() == fast.stimulus_rng.random()
    assert reference.noise_rng.random() == fast.noise_rng.random()


def test_compiled_run_matches_numpy_step_for_step_errors():
    """A diverging lateral network stops at the same sample, with the same message."""
    spec = load_protocol(REFERENCE, SHORT + ["model.projections.lateral.settling.alpha=0.3",
                                             "schedule.samples=3000"])
    messages = []
    for backend in ("numpy", "numba"):
        with pytest.raises(SimulationDiverged) as error:
            run_simulation(build(spec, backend), samples=3000)
        messages.append(str(error.value))
        assert error.value.quantity == "settling residual"
    assert messages[0] == messages[1]


@pytest.mark.parametrize("batch", [1, 4, 20])
def test_loop_and_blas_paths_agree_with_numpy(batch):
    spec = load_protocol(REFERENCE, SHORT + [f"schedule.batch_size={batch}",
                                             f"schedule.block_length={batch * 5}"])
    reference = run_simulation(LinskerSimulation(spec))
    compiled = run_simulation(NumbaSimulation(spec))
    assert relative_difference(reference.C, compiled.C) < 1e-10
    assert relative_difference(reference.Q, compiled.Q) < 1e-10
    assert compiled.kernel_arguments["int_parameters"][USE_BLAS] == (batch >= BLAS_MIN_BATCH)
    # Q̂ stays exactly symmetric, as the reference's (its F = I − αQ̂ must be symmetric).
    np.testing.assert_array_equal(compiled.Q, np.swapaxes(compiled.Q, 1, 2))


def test_gated_model_is_refused_with_the_reason():
    spec = load_protocol(PROTOCOLS / "gating_e2_linsker.yaml", SHORT)
    with pytest.raises(BackendUnavailable, match="gated"):
        build(spec, "numba")


def test_ensemble_members_equal_single_runs_bit_for_bit():
    """Members step in parallel threads but each equals its protocol run alone."""
    spec = load_protocol(REFERENCE, SHORT + [
        "ensemble={seeds: [1, 7], grid: {phases.noise_unlearning.enabled: [true, false]}}"])
    members = expand_ensemble(spec)
    ensemble = NumbaEnsemble([member.spec for member in members])
    run_simulation(ensemble)
    assert [simulation.samples_done for simulation in ensemble.members] == [2000] * 4
    for member, simulation in zip(members, ensemble.members):
        alone = run_simulation(NumbaSimulation(member.spec))
        np.testing.assert_array_equal(simulation.C, alone.C)
        np.testing.assert_array_equal(simulation.Q, alone.Q)
        reference = run_simulation(LinskerSimulation(member.spec))
        assert relative_difference(reference.C, simulation.C) < 1e-10


def test_ensemble_with_several_shapes_and_power_constraints():
    """Members of different sizes run in separate stacks; running covariances stay per member."""
    spec = load_protocol(REFERENCE, SHORT + [
        "model.constraints.0.kind=unit_output_power",
        "ensemble={size: 2, grid: {model.populations.output.size: [4, 8]}}"])
    members = expand_ensemble(spec)
    ensemble = NumbaEnsemble([member.spec for member in members])
    assert len(ensemble.groups) == 2
    run_simulation(ensemble)
    for member, simulation in zip(members, ensemble.members):
        reference = run_simulation(LinskerSimulation(member.spec))
        assert simulation.C.shape == reference.C.shape
        assert relative_difference(reference.C, simulation.C) < 1e-10
        assert relative_difference(reference.constraints[0].input_covariance,
                        simulation.constraints[0].input_covariance) < 1e-12


def test_prefetched_draws_change_nothing():
    """Drawing the next chunk ahead (on copies of the streams) gives the same numbers, also
    when the next call asks for a different chunk than predicted."""
    spec = load_protocol(REFERENCE, SHORT + ["schedule.samples=3000"])
    plain = NumbaSimulation(spec)
    plain.prefetch = False
    ahead = NumbaSimulation(spec)
    for simulation in (plain, ahead):
        simulation.warmup()
        simulation.advance(1000)  # as predicted after warm-up (record.every)
        simulation.advance(500)   # not as predicted: the prefetched 1000 are dropped
        simulation.advance(1000)
    np.testing.assert_array_equal(plain.C, ahead.C)
    np.testing.assert_array_equal(plain.Q, ahead.Q)
    assert plain.stimulus_rng.random() == ahead.stimulus_rng.random()

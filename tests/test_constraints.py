"""Weight constraints keep C on its budget, and updates move along the budget's surface."""

import numpy as np
import pytest

from conftest import PROTOCOLS, simulate

from plasticsim.model.constraints.norms import constrain
from plasticsim.spec.loading import load_protocol


@pytest.fixture
def input_covariance():
    A = np.random.default_rng(0).standard_normal((10, 10))
    return A @ A.T / 10 + 0.1 * np.eye(10)


@pytest.mark.parametrize("kind", ["unit_weight_norm", "total_weight_norm",
                                  "unit_output_power", "total_output_power"])
def test_budget_holds_after_update(kind, input_covariance):
    budget = "weight" if kind.endswith("weight_norm") else "power"
    per_unit = kind.startswith("unit_")
    rng = np.random.default_rng(1)
    C = rng.standard_normal((4, 10))
    constrain(C, None, budget, per_unit, 2.0, input_covariance)
    constrain(C, 0.1 * rng.standard_normal((4, 10)), budget, per_unit, 2.0, input_covariance)
    if budget == "weight":
        cost = np.sum(C**2, axis=1)
    else:
        cost = np.einsum("ij,jk,ik->i", C, input_covariance, C)
    if per_unit:
        np.testing.assert_allclose(cost, 2.0, rtol=1e-12)
    else:
        assert np.sum(cost) == pytest.approx(8.0, rel=1e-12)


def test_power_update_is_projected_on_the_tangent_plane(input_covariance):
    """A step along the budget's normal (C q_L) changes nothing after the constraint."""
    C = np.random.default_rng(2).standard_normal((3, 10))
    constrain(C, None, "power", True, 1.0, input_covariance)
    before = C.copy()
    constrain(C, 0.05 * (C @ input_covariance), "power", True, 1.0, input_covariance)
    np.testing.assert_allclose(C, before, atol=1e-12)


def test_running_input_covariance_converges_to_the_stimulus_covariance():
    """The power budget's running q̂_L (rate 0.001 per sample) reaches the exact q_L."""
    protocol = PROTOCOLS / "linsker1992_1d.yaml"
    spec = load_protocol(protocol, [
        "model.projections.feedforward.constraints.0={kind: unit_output_power, "
        "averaging_rate: 0.001}", "schedule.batch_size=100", "schedule.block_length=100",
        "schedule.samples=200", "schedule.warmup_samples=20000", "record.every=100",
        "phases.noise_unlearning.enabled=false", "stimuli.input.input_noise.variance=0.5"])
    simulation = simulate(spec)
    covariance = simulation.read("feedforward.input_covariance_0")[0]
    exact = (simulation.plan.info["member_info"][0]["linear_gaussian_layers"][0]
             ["signal_covariance"] + 0.5 * np.eye(32))
    error = np.linalg.norm(covariance - exact) / np.linalg.norm(exact)
    assert error < 0.15
    assert np.linalg.norm(np.eye(32) - exact) / np.linalg.norm(exact) > 0.5  # it moved


def test_initial_weights_start_on_the_budget():
    spec = load_protocol(PROTOCOLS / "linsker1992_1d.yaml",
                         ["model.projections.feedforward.constraints.0.value=2.0"])
    from plasticsim.engine.builder import build_plan
    C = build_plan(spec).states["feedforward.weights"].initial[0]
    np.testing.assert_allclose(np.sum(C**2, axis=1), 2.0, rtol=1e-12)

"""Weight constraints keep C on its budget, and updates move along the budget's surface."""

import numpy as np
import pytest

from plasticsim.constraints import build_constraint
from plasticsim.spec import ConstraintSpec


@pytest.fixture
def input_covariance():
    A = np.random.default_rng(0).standard_normal((10, 10))
    return A @ A.T / 10 + 0.1 * np.eye(10)


@pytest.mark.parametrize("kind", ["unit_weight_norm", "total_weight_norm",
                                  "unit_output_power", "total_output_power"])
def test_budget_holds_after_update(kind, input_covariance):
    spec = ConstraintSpec(kind=kind, value=2.0, input_covariance="exact")
    constraint = build_constraint(spec, 10, input_covariance)
    rng = np.random.default_rng(1)
    C = rng.standard_normal((4, 10))
    constraint.apply(C, None)
    constraint.apply(C, 0.1 * rng.standard_normal((4, 10)))
    if kind.endswith("weight_norm"):
        cost = np.sum(C**2, axis=1)
    else:
        cost = np.einsum("ij,jk,ik->i", C, input_covariance, C)
    if kind.startswith("unit_"):
        np.testing.assert_allclose(cost, 2.0, rtol=1e-12)
    else:
        assert np.sum(cost) == pytest.approx(8.0, rel=1e-12)


def test_power_update_is_projected_on_the_tangent_plane(input_covariance):
    """A step along the budget's normal (C q_L) changes nothing after the constraint."""
    spec = ConstraintSpec(kind="unit_output_power", input_covariance="exact")
    constraint = build_constraint(spec, 10, input_covariance)
    C = np.random.default_rng(2).standard_normal((3, 10))
    constraint.apply(C, None)
    before = C.copy()
    constraint.apply(C, 0.05 * (C @ input_covariance))
    np.testing.assert_allclose(C, before, atol=1e-12)


def test_running_input_covariance_converges():
    spec = ConstraintSpec(kind="unit_output_power", averaging_rate=0.01)
    constraint = build_constraint(spec, 3)
    rng = np.random.default_rng(3)
    mixing = np.array([[1.0, 0, 0], [0.5, 1.0, 0], [0, 0, 0.3]])
    for _ in range(2000):
        constraint.observe(rng.standard_normal((10, 3)) @ mixing.T, phase=0)
    np.testing.assert_allclose(constraint.input_covariance, mixing @ mixing.T, atol=0.1)

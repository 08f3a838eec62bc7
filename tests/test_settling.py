"""Lateral settling: Jacobi, Euler and exact solves reach the same fixed point α y = Q̂⁻¹ Y."""

import numpy as np
import pytest

from plasticsim.model.settling import SettlingSpec, settle, settling_alpha, spectral_radius


def run(Y, Q, spec):
    return settle(Y, Q, spec.method, spec.iterations, spec.tolerance, spec.alpha, spec.step)


@pytest.fixture
def covariance():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((8, 8))
    return A @ A.T / 8 + np.eye(8)


@pytest.mark.parametrize("alpha", ["gershgorin", "trace"])
def test_safe_alpha_keeps_spectral_radius_below_one(covariance, alpha):
    assert spectral_radius(covariance, settling_alpha(covariance, alpha)) < 1.0


def test_methods_agree_at_convergence(covariance):
    Y = np.random.default_rng(4).standard_normal((5, 8))
    exact, exact_residual = run(Y, covariance, SettlingSpec(method="exact"))
    np.testing.assert_allclose(exact, np.linalg.solve(covariance, Y.T).T, rtol=1e-10)
    assert exact_residual < 1e-12
    for method in ("jacobi", "euler"):
        spec = SettlingSpec(method=method, iterations=5000, tolerance=1e-10, dt=0.5, tau=1.0)
        result, residual = run(Y, covariance, spec)
        assert residual <= 1e-3
        np.testing.assert_allclose(result, exact, rtol=1e-6, atol=1e-8)


def test_fixed_alpha_that_cannot_converge_grows(covariance):
    too_large = 2.5 / np.linalg.eigvalsh(covariance).max()
    assert spectral_radius(covariance, too_large) > 1.0
    Y = np.ones((1, 8))
    _, residual = run(Y, covariance, SettlingSpec(alpha=too_large, iterations=50))
    assert residual > 1.0


def test_euler_step_must_be_stable():
    with pytest.raises(ValueError, match="dt/tau"):
        SettlingSpec(method="euler", dt=2.0, tau=1.0)

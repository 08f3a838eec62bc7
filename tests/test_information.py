"""Closed-form mutual information and the analytic infomax optimum (docs/science.md §2)."""

import numpy as np
import pytest

from plasticsim.analysis.information import (equal_diagonal_rotation, infomax_optimum,
                                             mutual_information, mutual_information_gradient,
                                             projected_gradient_ascent)
from plasticsim.model.stimuli.gaussian_ring import ring_gaussian_filter


def ring_problem(noise_variance, noise_filter_sd=0.0, sites=32):
    signal = ring_gaussian_filter(sites, 2.0)
    noise = np.sqrt(noise_variance) * ring_gaussian_filter(sites, noise_filter_sd)
    return signal @ signal.T, noise @ noise.T


@pytest.mark.parametrize("outputs, noise_variance, expected", [
    (32, 0.01, 10.4659), (32, 0.1, 9.4287), (32, 1.0, 5.3751),
    (8, 0.01, 5.9554), (8, 0.1, 5.6851), (8, 1.0, 4.0423),
])
def test_optimum_matches_reference_table(outputs, noise_variance, expected):
    q_signal, q_noise = ring_problem(noise_variance)
    optimum = infomax_optimum(q_signal, q_noise, 1.0, outputs, outputs * 1.0, "weight")
    assert optimum.mutual_information == pytest.approx(expected, abs=1e-4)
    # The optimal C it returns attains that MI and has unit-norm rows (per-unit budget).
    assert mutual_information(optimum.weights, q_signal, q_noise, 1.0) == pytest.approx(
        optimum.mutual_information, rel=1e-10)
    np.testing.assert_allclose(np.sum(optimum.weights**2, axis=1), 1.0, rtol=1e-9)


@pytest.mark.parametrize("budget_kind", ["weight", "power"])
def test_projected_gradient_reaches_water_filling(budget_kind):
    q_signal, q_noise = ring_problem(0.1)
    closed_form = infomax_optimum(q_signal, q_noise, 1.0, 8, 8.0, budget_kind)
    ascent = infomax_optimum(q_signal, q_noise, 1.0, 8, 8.0, budget_kind,
                             method="projected_gradient")
    assert ascent.mutual_information == pytest.approx(closed_form.mutual_information, rel=1e-5)
    assert ascent.mutual_information <= closed_form.mutual_information + 1e-9


def test_power_optimum_rows_carry_equal_power():
    q_signal, q_noise = ring_problem(0.01)
    optimum = infomax_optimum(q_signal, q_noise, 1.0, 8, 8.0, "power")
    power = np.einsum("ij,jk,ik->i", optimum.weights, q_signal + q_noise, optimum.weights)
    np.testing.assert_allclose(power, 1.0, rtol=1e-9)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    q_signal, q_noise = ring_problem(0.3, noise_filter_sd=3.0, sites=12)
    C = rng.standard_normal((4, 12))
    gradient = mutual_information_gradient(C, q_signal, q_noise, 0.5)
    step = 1e-6
    numeric = np.zeros_like(C)
    for index in np.ndindex(C.shape):
        shifted = C.copy()
        shifted[index] += step
        up = mutual_information(shifted, q_signal, q_noise, 0.5)
        shifted[index] -= 2 * step
        down = mutual_information(shifted, q_signal, q_noise, 0.5)
        numeric[index] = (up - down) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)


def test_equal_diagonal_rotation_spreads_budget():
    diagonal = np.array([5.0, 1.0, 0.5, 0.25, 0.0])
    U = equal_diagonal_rotation(diagonal)
    np.testing.assert_allclose(U @ U.T, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(np.diag(U @ np.diag(diagonal) @ U.T), diagonal.mean(), rtol=1e-10)


def test_non_commuting_covariances_use_gradient_ascent():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 6))
    q_signal = A @ A.T / 6
    q_noise = 0.2 * np.eye(6) + 0.1 * np.diag(np.arange(6))
    optimum = infomax_optimum(q_signal, q_noise, 1.0, 3, 3.0, "weight")
    assert optimum.method == "projected_gradient"
    # No random feasible C beats it.
    for _ in range(200):
        C = rng.standard_normal((3, 6))
        C /= np.linalg.norm(C, axis=1, keepdims=True)
        assert mutual_information(C, q_signal, q_noise, 1.0) <= optimum.mutual_information + 1e-9
    again = projected_gradient_ascent(q_signal, q_noise, 1.0, 3, 3.0, rng=np.random.default_rng(7))
    assert mutual_information(again, q_signal, q_noise, 1.0) == pytest.approx(
        optimum.mutual_information, rel=1e-4)

"""The science: two-phase local learning reaches the closed-form infomax optimum.

Numbers are computed in closed form from the learned C and the exact stimulus covariances
(docs/science.md §2), never estimated. Where a test uses ``exact`` settling it is only to save
time: settling methods agree at convergence (tested below and in test_settling.py).
"""

import numpy as np
import pytest

EXACT = "model.projections.lateral.settling.method=exact"
POWER = "model.projections.feedforward.constraints.0.kind=unit_output_power"
WEIGHT = "model.projections.feedforward.constraints.0.kind=unit_weight_norm"
CONSTANT = ("learning_rates.feedforward.kind=constant",
            "learning_rates.feedforward.initial=0.0005")


def noise(variance):
    return f"stimuli.input.input_noise.variance={variance}"


def test_reference_protocol_as_shipped(run_protocol):
    """The main job: Jacobi settling, annealed rate, σ_n² = 0.1, unit-norm rows."""
    results = run_protocol("linsker1992_1d.yaml")
    summary = results.summary
    assert summary["optimum_nats"] == pytest.approx(5.6851, abs=1e-4)
    assert summary["fraction_of_optimum"] >= 0.99
    assert summary["fraction_of_optimum"] <= 1.0 + 1e-9  # MI can never beat the optimum
    assert summary["mode_spectrum_relative_l1"] <= 0.25
    # The lateral network stays stable throughout and settles.
    assert np.max(results.metrics["spectral_radius_F_sensing"]) < 1.0
    assert np.max(results.metrics["spectral_radius_F_noise_unlearning"]) < 1.0
    assert np.max(results.metrics["settling_residual"]) <= 1e-3


@pytest.mark.parametrize("variance", [0.01, 1.0])
@pytest.mark.parametrize("constraint", [WEIGHT, POWER])
def test_annealed_rates_reach_99_percent(run_protocol, variance, constraint):
    # Under the power bound at σ_n² = 1 the 200k-sample protocol ends at 98.8–99.1% of the
    # optimum (seeds 1–3): the optimum spreads gain over weaker modes, which the local rule
    # learns more slowly. Twice the training gets 99.5%.
    longer = ("schedule.samples=400000",) if (constraint, variance) == (POWER, 1.0) else ()
    summary = run_protocol("linsker1992_1d.yaml", noise(variance), constraint, EXACT,
                           *longer).summary
    assert summary["fraction_of_optimum"] >= 0.99
    assert summary["mode_spectrum_relative_l1"] <= 0.25


def test_annealed_power_constraint_at_reference_noise(run_protocol):
    summary = run_protocol("linsker1992_1d.yaml", POWER, EXACT).summary
    assert summary["fraction_of_optimum"] >= 0.99
    assert summary["mode_spectrum_relative_l1"] <= 0.25


@pytest.mark.parametrize("constraint", [WEIGHT, POWER])
def test_constant_rate_reaches_95_percent(run_protocol, constraint):
    summary = run_protocol("linsker1992_1d.yaml", constraint, EXACT, *CONSTANT).summary
    assert summary["fraction_of_optimum"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("variance", [0.01, 1.0])
@pytest.mark.parametrize("constraint", [WEIGHT, POWER])
def test_constant_rate_grid(run_protocol, variance, constraint):
    summary = run_protocol("linsker1992_1d.yaml", noise(variance), constraint, EXACT,
                           *CONSTANT).summary
    assert summary["fraction_of_optimum"] >= 0.95


def test_settling_methods_agree_in_a_run(run_protocol):
    """Same seed, same random streams: only the settling method differs."""
    short = ("schedule.samples=20000", "schedule.warmup_samples=2000")
    finals = {}
    for method in ("jacobi", "euler", "exact"):
        results = run_protocol("linsker1992_1d.yaml", *short,
                               f"model.projections.lateral.settling.method={method}",
                               "model.projections.lateral.settling.iterations=2000")
        finals[method] = results
        if method != "exact":
            assert np.max(results.metrics["settling_residual"]) <= 1e-3
    exact = finals["exact"].weights["feedforward"]
    for method in ("jacobi", "euler"):
        np.testing.assert_allclose(finals[method].weights["feedforward"], exact, atol=1e-3)
        assert finals[method].summary["mutual_information_nats"] == pytest.approx(
            finals["exact"].summary["mutual_information_nats"], rel=1e-4)


class TestColouredNoise:
    """With low-pass input noise the noise-unlearning phase matters (docs/science.md §2)."""

    def fraction(self, run_protocol, *overrides):
        return run_protocol("linsker1992_1d_colored.yaml", EXACT, *overrides
                            ).summary["fraction_of_optimum"]

    def test_two_phase_rule(self, run_protocol):
        assert self.fraction(run_protocol) >= 0.85

    def test_noise_phase_disabled(self, run_protocol):
        assert self.fraction(run_protocol, "phases.noise_unlearning.enabled=false") <= 0.70

    def test_noise_phase_sign_flipped(self, run_protocol):
        assert self.fraction(run_protocol, "phases.noise_unlearning.sign=1") <= 0.40


def power_series(run_protocol, variance):
    return run_protocol("linsker1992_1d_power_series.yaml", noise(variance), EXACT).summary


@pytest.mark.parametrize("variance", [0.001, 10.0])
def test_power_series_extremes(run_protocol, variance):
    """Band-pass (whitening) at low noise, low-pass at high noise; peaks as in the optimum."""
    summary = power_series(run_protocol, variance)
    assert abs(summary["learned_peak_frequency"] - summary["optimal_peak_frequency"]) <= 1
    if variance == 10.0:
        assert summary["optimal_peak_frequency"] == 0
        assert summary["learned_peak_frequency"] <= 1
    else:
        assert summary["learned_band_pass_index"] > 0.9


@pytest.mark.slow
def test_power_series_peak_falls_with_noise(run_protocol):
    variances = [0.001, 0.01, 0.1, 1.0, 10.0]
    learned, optimal = [], []
    for variance in variances:
        summary = power_series(run_protocol, variance)
        learned.append(summary["learned_peak_frequency"])
        optimal.append(summary["optimal_peak_frequency"])
        assert abs(learned[-1] - optimal[-1]) <= 1
    assert all(a >= b for a, b in zip(learned, learned[1:]))
    assert learned[0] > learned[-1]

"""Stacked Linsker layers (models/linsker_two_layer.yaml) and their closed-form analysis
(plasticsim.analysis.linsker.layer_input_covariances / layer_problem).

Layer 2 reads Z₁ = C₁X + ν₁: its input is Gaussian with signal covariance C₁q_SC₁ᵀ and noise
covariance C₁q_NC₁ᵀ + σ₁²I, so I(Z₂; S) has a closed form and can never exceed I(Z₁; S).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PROTOCOLS

import plasticsim
from plasticsim.analysis.information import mutual_information
from plasticsim.analysis.linsker import layer_input_covariances
from plasticsim.model.stimuli.gaussian_ring import ring_gaussian_filter

PROTOCOL = PROTOCOLS / "linsker_two_layer.yaml"
SHORT = ["schedule.samples=10000", "schedule.warmup_samples=5000", "record.every=2500"]


def test_layer_covariances_match_samples_and_obey_data_processing():
    rng = np.random.default_rng(0)
    A = ring_gaussian_filter(12, 2.0)
    q_signal, q_noise = A @ A.T, 0.3 * np.eye(12)
    C1, C2 = rng.standard_normal((6, 12)), rng.standard_normal((3, 6))
    signal, noise = layer_input_covariances([C1], [0.5], q_signal, q_noise)
    samples = 200000
    S = rng.standard_normal((samples, 12)) @ A.T
    N = np.sqrt(0.3) * rng.standard_normal((samples, 12))
    Z1 = (S + N) @ C1.T + np.sqrt(0.5) * rng.standard_normal((samples, 6))
    np.testing.assert_allclose(np.cov(Z1.T), signal + noise, rtol=0.03, atol=0.05)
    np.testing.assert_allclose(signal, C1 @ q_signal @ C1.T)
    first = mutual_information(C1, q_signal, q_noise, 0.5)
    second = mutual_information(C2, signal, noise, 1.0)
    assert 0 < second < first


def test_each_layer_is_recorded_and_data_processing_holds_at_every_record(run_protocol):
    results = run_protocol("linsker_two_layer.yaml", *SHORT)
    layer1 = results.metrics["layer1_mutual_information_nats"]
    layer2 = results.metrics["layer2_mutual_information_nats"]
    assert len(layer1) == len(results.steps) == 5
    assert np.all(layer2 <= layer1 + 1e-12)
    assert layer1[-1] > 2 * layer1[0] and layer2[-1] > 2 * layer2[0]   # both layers learn
    # The summary recomputes layer 2's information from the file: same value as the record.
    assert results.summary["layer2_mutual_information_nats"] == pytest.approx(layer2[-1])
    assert results.summary["layer2_data_processing_holds"]
    # Each lateral network records its own settling under its own name.
    for name in ("lateral1", "lateral2"):
        assert f"{name}_spectral_radius_F_sensing" in results.metrics
        assert set(results.weights[name]) >= {"Q_sensing", "F_noise_unlearning"}


@pytest.mark.slow
def test_full_protocol_reaches_each_layers_optimum(tmp_path):
    """Measured (seed 1, numpy): layer 1 99.95% of its closed-form optimum, layer 2 99.2% of
    its optimum given the learned C₁ (projected gradient ascent)."""
    results = plasticsim.run(PROTOCOL, tmp_path, progress=False, figures=False)
    summary = results.summary
    assert summary["layer1_fraction_of_optimum"] >= 0.99
    assert summary["layer2_fraction_of_optimum"] >= 0.98
    assert np.all(results.metrics["layer2_mutual_information_nats"]
                  <= results.metrics["layer1_mutual_information_nats"] + 1e-12)

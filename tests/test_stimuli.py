"""Gaussian ring stimuli: exact covariances match samples; phases draw the right parts."""

import numpy as np

from plasticsim.model.stimuli.gaussian_ring import (GaussianRingStimulus,
                                                    GaussianRingStimulusSpec, InputNoiseSpec,
                                                    ring_gaussian_filter)


def test_filter_gives_unit_variance_circulant_covariance():
    A = ring_gaussian_filter(16, 2.0)
    covariance = A @ A.T
    np.testing.assert_allclose(np.diag(covariance), 1.0)
    np.testing.assert_allclose(covariance, np.roll(np.roll(covariance, 3, 0), 3, 1))
    np.testing.assert_array_equal(ring_gaussian_filter(5, 0.0), np.eye(5))


def test_sample_covariances_match_exact():
    spec = GaussianRingStimulusSpec(input_noise=InputNoiseSpec(variance=0.5, filter_sd=3.0))
    stimulus = GaussianRingStimulus(spec, 16)
    rng = np.random.default_rng(0)
    sensing = stimulus.sample(rng, np.ones(40000, dtype=bool))
    noise_only = stimulus.sample(rng, np.zeros(40000, dtype=bool))
    np.testing.assert_allclose(np.cov(sensing.T), stimulus.signal_covariance
                               + stimulus.noise_covariance, atol=0.05)
    np.testing.assert_allclose(np.cov(noise_only.T), stimulus.noise_covariance, atol=0.03)
    np.testing.assert_allclose(np.diag(stimulus.noise_covariance), 0.5)

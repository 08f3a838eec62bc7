"""Gaussian ring stimuli: exact covariances match samples; phases draw the right parts."""

import numpy as np

from plasticsim.model.stimuli.gaussian_ring import (DENSE_FILTER_MAX_SITES,
                                                    GaussianRingStimulus,
                                                    GaussianRingStimulusSpec, InputNoiseSpec,
                                                    RingFilter, ring_gaussian_filter)


def test_filter_gives_unit_variance_circulant_covariance():
    A = ring_gaussian_filter(16, 2.0)
    covariance = A @ A.T
    np.testing.assert_allclose(np.diag(covariance), 1.0)
    np.testing.assert_allclose(covariance, np.roll(np.roll(covariance, 3, 0), 3, 1))
    np.testing.assert_array_equal(ring_gaussian_filter(5, 0.0), np.eye(5))
    # A narrow kernel underflows far from its centre: no subnormal entries (slow products).
    narrow = np.abs(ring_gaussian_filter(64, 0.5))
    assert not np.any((narrow > 0) & (narrow < np.finfo(float).tiny))


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


def test_ring_filter_paths_match_the_circulant_product():
    # Dense product (small ring), FFT (large ring) and white scaling all compute √v A x.
    rng = np.random.default_rng(1)
    for sites, filter_sd in [(16, 2.0), (DENSE_FILTER_MAX_SITES + 72, 0.5),
                             (DENSE_FILTER_MAX_SITES + 72, 7.0), (50, 0.0)]:
        ring = RingFilter(sites, filter_sd, 0.3)
        white = rng.standard_normal((5, sites))
        expected = white @ (np.sqrt(0.3) * ring_gaussian_filter(sites, filter_sd)).T
        assert (ring.spectrum is not None) == (sites > DENSE_FILTER_MAX_SITES and filter_sd > 0)
        np.testing.assert_allclose(ring.apply(white.copy()), expected, rtol=0, atol=1e-13)


def test_noise_unlearning_samples_draw_no_signal():
    spec = GaussianRingStimulusSpec(input_noise=InputNoiseSpec(variance=0.5))
    stimulus = GaussianRingStimulus(spec, 8)
    sensing = np.array([True, False, False, True])
    rng = np.random.default_rng(3)
    inputs = stimulus.sample(rng, sensing)
    white = np.random.default_rng(3).standard_normal((6, 8))  # 4 noise rows, 2 signal rows
    expected = np.sqrt(0.5) * white[:4]
    expected[sensing] += white[4:] @ stimulus.signal.matrix.T
    np.testing.assert_allclose(inputs, expected, rtol=0, atol=1e-14)
    # The generator advanced by exactly those 6 × 8 normals.
    np.testing.assert_array_equal(rng.standard_normal(3),
                                  np.random.default_rng(3).standard_normal(51)[48:])

"""White-noise mapping (plasticsim.model.probes.white_noise_mapping): the estimator and the
probe amplitude calibration; the probe through a trained network is in test_sailnet.py."""

import numpy as np
import pytest

from plasticsim.analysis.gabor import gabor_patch
from plasticsim.errors import DataError
from plasticsim.model.probes.white_noise_mapping import (calibrate_probe_variance,
                                                         map_receptive_fields)


def test_mapping_recovers_a_linear_kernel_exactly():
    kernel = np.random.default_rng(1).normal(size=(5, 36))
    fields = map_receptive_fields(lambda probes: probes @ kernel.T + 3.0, 36, 500,
                                  np.random.default_rng(0), probe_variance=0.5)
    np.testing.assert_allclose(fields, kernel, atol=1e-10)


def test_mapping_through_a_rectifier_recovers_the_kernel_direction():
    # A rectified linear unit's least-squares field is ∝ its kernel (Bussgang's theorem).
    gabor = gabor_patch((10, 10), 4.5, 4.5, 0.7, 1.8, 2.5, 0.2, 0.0).ravel()
    fields = map_receptive_fields(lambda probes: np.maximum(probes @ gabor[:, None], 0.0),
                                  100, 20000, np.random.default_rng(2))
    cosine = fields[0] @ gabor / (np.linalg.norm(fields[0]) * np.linalg.norm(gabor))
    assert cosine > 0.97


def test_mapping_needs_more_probes_than_pixels():
    with pytest.raises(DataError, match="more probes"):
        map_receptive_fields(lambda probes: probes, 16, 10, np.random.default_rng(0))


def test_calibration_finds_the_amplitude_of_the_target_rate():
    # A unit that fires when its first pixel exceeds 1: P(σ ξ > 1) = 0.05 at σ = 1/1.645.
    unit = lambda probes: (probes[:, :1] > 1.0).astype(float)  # noqa: E731
    variance = calibrate_probe_variance(unit, 4, 0.05, np.random.default_rng(0),
                                        n_probes=20000)
    assert variance == pytest.approx(1 / 1.645**2, rel=0.1)

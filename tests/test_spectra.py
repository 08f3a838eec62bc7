"""Rotation-invariant spectra of learned weights."""

import numpy as np

from plasticsim.analysis.spectra import (band_pass_index, mode_groups, mode_spectrum,
                                         peak_frequency, population_power_spectrum)


def test_population_spectrum_is_rotation_invariant_and_parseval():
    rng = np.random.default_rng(0)
    C = rng.standard_normal((6, 16))
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    spectrum = population_power_spectrum(C)
    np.testing.assert_allclose(population_power_spectrum(rotation @ C), spectrum, rtol=1e-10)
    # Per-mode power: interior frequencies count twice over the full ring.
    full_ring_total = spectrum[0] + spectrum[-1] + 2 * spectrum[1:-1].sum()
    assert np.isclose(full_ring_total, np.sum(C**2))


def test_peak_and_band_pass_index_of_a_cosine():
    sites = np.arange(32)
    C = np.cos(2 * np.pi * 5 * sites / 32)[None, :]
    spectrum = population_power_spectrum(C)
    assert peak_frequency(spectrum) == 5
    assert band_pass_index(spectrum) > 0.99
    assert band_pass_index(population_power_spectrum(np.ones((1, 32)))) == 0.0


def test_mode_groups_merge_degenerate_pairs():
    eigenvalues = np.array([3.0, 1.0, 1.0, 0.5])
    groups = mode_groups(eigenvalues)
    assert [sorted(g.tolist()) for g in groups] == [[0], [1, 2], [3]]
    V = np.eye(4)
    C = np.array([[1.0, 0.0, 2.0, 0.0]])
    np.testing.assert_allclose(mode_spectrum(C, V, groups), [1.0, 4.0, 0.0])

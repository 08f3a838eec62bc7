"""Tests for plasticsim.analysis.orientation_map on synthetic maps with known answers."""

import numpy as np
import pytest

from plasticsim.analysis.gabor import fit_gabor, gabor_patch
from plasticsim.analysis.orientation_map import (analyze_orientation_map,
                                                 complex_orientation_field,
                                                 dominant_wavelength, find_pinwheels,
                                                 orientation_map, orientation_smoothness_deg,
                                                 preferred_orientation, winding_numbers)
from plasticsim.errors import DataError


def pinwheel_map(shape, pinwheels):
    """θ = ½ Σ_j q_j·atan2(y − y_j, x − x_j): pinwheels of charge q_j at (row y_j, column x_j)."""
    y, x = np.indices(shape, dtype=np.float64)
    phase = sum(charge * np.arctan2(y - row, x - column) for row, column, charge in pinwheels)
    return (0.5 * phase) % np.pi


def plane_wave_map(shape, wavelength, n_waves, seed):
    """θ = ½ arg Σ_j exp(i(k_j·r + φ_j)), |k_j| = 2π/Λ, random directions and phases.

    A Gaussian random orientation map with all its power on one ring: its mean pinwheel
    density is π per Λ² (Wolf & Geisel 1998).
    """
    rng = np.random.default_rng(seed)
    y, x = np.indices(shape, dtype=np.float64)
    wavenumber = 2 * np.pi / wavelength
    z = np.zeros(shape, dtype=np.complex128)
    for direction, phase in zip(rng.uniform(0, 2 * np.pi, n_waves),
                                rng.uniform(0, 2 * np.pi, n_waves)):
        z += np.exp(1j * (wavenumber * (np.cos(direction) * x + np.sin(direction) * y)
                          + phase))
    return (0.5 * np.angle(z)) % np.pi


def test_preferred_orientation_is_the_gabor_carrier_direction():
    angles = np.radians([0, 20, 45, 70, 95, 130, 165])
    fields = np.stack([gabor_patch((16, 16), 7.3, 8.1, angle, 2.0, 3.5, 0.18, 0.7)
                       for angle in angles])
    theta, selectivity = preferred_orientation(fields)
    difference = np.degrees(np.abs(np.angle(np.exp(2j * (theta - angles))) / 2))
    assert np.all(difference < 1.0)
    assert np.all(selectivity > 0.8)
    # The same convention as the Gabor fitter's θ (wave vector, counter-clockwise in x, y).
    fitted = fit_gabor(fields[1]).theta
    assert np.degrees(abs(np.angle(np.exp(2j * (theta[1] - fitted))) / 2)) < 1.0


def test_isotropic_and_constant_fields_have_no_orientation():
    y, x = np.indices((15, 15), dtype=np.float64) - 7
    radius2 = x**2 + y**2
    centre_surround = np.exp(-radius2 / 4) - 0.5 * np.exp(-radius2 / 16)
    theta, selectivity = preferred_orientation(np.stack([centre_surround, np.ones((15, 15))]))
    assert selectivity[0] < 0.01
    assert np.isnan(theta[1]) and np.isnan(selectivity[1])


def test_orientation_map_reshapes_units_row_major():
    angles = np.radians(np.arange(6) * 30.0)
    fields = np.stack([gabor_patch((12, 12), 5.5, 5.5, a, 2.0, 2.0, 0.2, 0.0) for a in angles])
    theta, _ = orientation_map(fields, (2, 3))
    assert theta.shape == (2, 3)
    np.testing.assert_allclose(np.degrees(theta[1, 0]), 90.0, atol=1.0)
    with pytest.raises(DataError, match="expected 8"):
        orientation_map(fields, (2, 4))


def test_a_single_pinwheel_has_charge_plus_one_counter_clockwise():
    theta = pinwheel_map((9, 9), [(4.3, 3.6, +1)])
    pinwheels = find_pinwheels(theta)
    assert pinwheels.count == 1
    assert (pinwheels.rows[0], pinwheels.columns[0], pinwheels.charges[0]) == (4.5, 3.5, 1)
    assert find_pinwheels(np.pi - theta).charges.tolist() == [-1]   # mirrored map


def test_a_map_with_known_pinwheels_is_found_exactly():
    known = [(5.4, 6.7, +1), (5.6, 18.2, -1), (17.3, 9.6, -1), (20.5, 24.3, +1),
             (12.7, 13.4, +1), (24.2, 4.8, -1)]
    theta = pinwheel_map((30, 30), known)
    pinwheels = find_pinwheels(theta)
    found = sorted(zip(pinwheels.rows - 0.5, pinwheels.columns - 0.5, pinwheels.charges))
    expected = sorted((np.floor(row), np.floor(column), charge)
                      for row, column, charge in known)
    assert found == expected
    summary = analyze_orientation_map(theta)
    assert summary["n_pinwheels"] == 6
    assert summary["n_pinwheels_positive"] == summary["n_pinwheels_negative"] == 3
    # Windings sum to the net charge and nothing else is counted.
    assert winding_numbers(theta).sum() == 0 and np.count_nonzero(winding_numbers(theta)) == 6


def test_uniform_map_has_no_pinwheels_no_columns_and_is_perfectly_smooth():
    theta = np.full((20, 25), 0.7)
    summary = analyze_orientation_map(theta)
    assert summary["n_pinwheels"] == 0
    assert summary["orientation_smoothness_deg"] == 0.0
    assert np.isnan(summary["column_spacing_units"]) and np.isnan(summary["pinwheel_density"])


def test_plane_waves_give_the_known_wavelength_and_a_density_of_pi():
    densities = []
    for seed in range(16):
        theta = plane_wave_map((128, 128), 12.8, n_waves=30, seed=seed)
        summary = analyze_orientation_map(theta)
        assert summary["column_spacing_units"] == pytest.approx(12.8, rel=0.015)
        assert summary["n_pinwheels_positive"] + summary["n_pinwheels_negative"] \
            == summary["n_pinwheels"]
        densities.append(summary["pinwheel_density"])
    # The ensemble mean of such maps is π per hypercolumn (spread of one 128×128 map ≈ 0.15).
    assert np.mean(densities) == pytest.approx(np.pi, rel=0.06)


def test_wavelength_of_one_plane_wave_on_a_non_square_sheet():
    y, x = np.indices((40, 70), dtype=np.float64)
    direction = np.radians(25)
    theta = (0.5 * 2 * np.pi / 9.0 * (np.cos(direction) * x + np.sin(direction) * y)) % np.pi
    # A single wave is one spot of width ~1/40 in the spectrum; the ring *mean* divides its
    # arc integral by the ring's length, which pulls the peak inward by ~w²/k (here ~1%).
    assert dominant_wavelength(theta) == pytest.approx(9.0, rel=0.02)
    # A linear sweep has no pinwheels; on a torus with a whole number of periods neither.
    assert find_pinwheels(theta).count == 0
    periodic = (np.pi * np.arange(36)[None, :] / 9.0 + 0 * np.arange(18)[:, None]) % np.pi
    assert dominant_wavelength(periodic, periodic=True) == pytest.approx(9.0, rel=1e-6)
    assert find_pinwheels(periodic, periodic=True).count == 0


def test_smoothness_of_a_gradient_and_of_a_random_map():
    rows, columns, step = 10, 12, np.radians(6.0)
    gradient = (step * np.arange(columns)[None, :] + np.zeros((rows, 1))) % np.pi
    # Column neighbours differ by 6°, row neighbours by 0°.
    horizontal, vertical = rows * (columns - 1), (rows - 1) * columns
    assert orientation_smoothness_deg(gradient) == pytest.approx(
        6.0 * horizontal / (horizontal + vertical))
    random_map = np.random.default_rng(0).uniform(0, np.pi, size=(100, 100))
    assert orientation_smoothness_deg(random_map) == pytest.approx(45.0, abs=0.5)


def test_complex_field_doubles_the_angle():
    theta = np.array([[0.0, np.pi / 2], [np.pi / 4, np.pi]])
    np.testing.assert_allclose(complex_orientation_field(theta),
                               [[1, -1], [1j, 1]], atol=1e-12)
    np.testing.assert_allclose(complex_orientation_field(theta, np.full((2, 2), 0.5)),
                               [[0.5, -0.5], [0.5j, 0.5]], atol=1e-12)


@pytest.mark.parametrize("theta, message", [
    (np.zeros(5), "expected (rows, columns)"),
    (np.array([[0.0, np.nan], [0.1, 0.2]]), "1 NaN or infinite"),
])
def test_bad_maps_are_one_readable_error(theta, message):
    with pytest.raises(DataError) as error:
        analyze_orientation_map(theta)
    assert message in str(error.value)

"""Tests for Gabor fitting, RF population summaries and the V1 reference data."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from plasticsim.analysis.gabor import (
    HALF_HEIGHT_CONSTANT,
    TABLE_COLUMNS,
    GaborFit,
    fit_gabor,
    fit_gabors,
    gabor_patch,
    nxny_histogram,
    summarize_fits,
    total_variation_distance,
)
from plasticsim.analysis.v1_reference import V1_LITERATURE_MEDIANS, load_ringach2002
from plasticsim.errors import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared"
A144 = SHARED / "data" / "olshausen" / "A144.mat"


def _random_gabor_parameters(rng):
    return {"x0": rng.uniform(6.0, 9.0), "y0": rng.uniform(6.0, 9.0),
            "theta": rng.uniform(0.0, np.pi), "sigma_x": rng.uniform(1.5, 3.0),
            "sigma_y": rng.uniform(1.5, 4.0), "frequency": rng.uniform(0.1, 0.25),
            "phase": rng.uniform(-np.pi, np.pi)}


def test_recovers_nx_and_ny_of_noisy_gabors():
    rng = np.random.default_rng(42)
    relative_errors = []
    for _ in range(24):
        true = _random_gabor_parameters(rng)
        field = gabor_patch((16, 16), **true) + rng.normal(0.0, 0.05, (16, 16))
        fit = fit_gabor(field, rng=rng)
        nx, ny = true["sigma_x"] * true["frequency"], true["sigma_y"] * true["frequency"]
        relative_errors.append((abs(fit.nx / nx - 1), abs(fit.ny / ny - 1)))
    median_nx_error, median_ny_error = np.median(relative_errors, axis=0)
    assert median_nx_error <= 0.05
    assert median_ny_error <= 0.05


def test_fit_is_canonical():
    # θ + π with −φ, and −A with φ + π, describe the same function as the canonical form.
    canonical = {"x0": 6.2, "y0": 5.1, "theta": 0.4, "sigma_x": 2.0, "sigma_y": 3.0,
                 "frequency": 0.15, "phase": 0.7, "amplitude": 1.5, "offset": 0.1}
    equivalent = {**canonical, "theta": 0.4 + np.pi, "phase": -0.7 + np.pi, "amplitude": -1.5}
    field = gabor_patch((14, 14), **equivalent)
    np.testing.assert_allclose(field, gabor_patch((14, 14), **canonical), atol=1e-12)
    fit = fit_gabor(field)
    assert fit.r_squared > 0.9999
    for name, value in canonical.items():
        assert getattr(fit, name) == pytest.approx(value, abs=1e-4), name


def test_pure_noise_fits_poorly():
    fit = fit_gabor(np.random.default_rng(5).normal(size=(12, 12)))
    assert fit.success
    assert fit.r_squared < 0.4


def test_derived_metrics_follow_ringach_formulas():
    fit = GaborFit(x0=5.0, y0=5.0, theta=0.3, sigma_x=2.0, sigma_y=4.0, frequency=0.2,
                   phase=np.pi / 3, amplitude=1.0, offset=0.0, r_squared=0.95, success=True,
                   patch_shape=(12, 12))
    assert fit.nx == pytest.approx(0.4)
    assert fit.ny == pytest.approx(0.8)
    assert fit.aspect_ratio == pytest.approx(2.0)
    assert HALF_HEIGHT_CONSTANT == pytest.approx(0.187, abs=5e-4)  # Ringach's 0.187
    d = HALF_HEIGHT_CONSTANT / 0.4
    assert fit.sf_bandwidth_octaves == pytest.approx(np.log2((1 + d) / (1 - d)))
    assert fit.orientation_halfwidth_deg == pytest.approx(
        np.degrees(np.arctan(HALF_HEIGHT_CONSTANT / 0.8)))
    assert fit.phase_symmetry == pytest.approx(0.5)
    assert fit.orientation_deg == pytest.approx(np.degrees(0.3))
    assert fit.center_inside and not fit.low_pass

    low_pass = GaborFit(5.0, 5.0, 0.0, 0.5, 1.0, 0.2, 0.0, 1.0, 0.0, 0.9, True, (12, 12))
    assert low_pass.low_pass and low_pass.sf_bandwidth_octaves == np.inf


def test_failed_fits_are_counted_not_dropped():
    rng = np.random.default_rng(0)
    fields = np.stack([gabor_patch((12, 12), 5.5, 5.5, 1.0, 2.0, 3.0, 0.2, 0.0),
                       np.zeros((12, 12)),  # constant: no fit possible
                       rng.normal(size=(12, 12))])
    table = fit_gabors(fields, rng=rng)
    assert table.dtype.names == TABLE_COLUMNS
    assert len(table) == 3
    assert list(table["success"]) == [True, False, True]
    summary = summarize_fits(table)
    assert summary["n_units"] == 3 and summary["n_failed"] == 1
    assert summary["fraction_r2_above_0.9"] == pytest.approx(1 / 3)
    assert summary["n_good"] == 1 and summary["n_excluded"] == 2
    assert summary["median_nx"] == pytest.approx(0.4, rel=1e-3)


def test_bad_field_shapes_raise_data_error():
    with pytest.raises(DataError, match="expected \\(height, width\\)"):
        fit_gabor(np.zeros(12))
    with pytest.raises(DataError, match="expected \\(n_units, height, width\\)"):
        fit_gabors(np.zeros((12, 12)))


def test_histogram_and_total_variation_distance():
    edges, ringach = load_ringach2002()
    assert ringach.shape == (5, 5) and ringach.sum() == 79
    np.testing.assert_array_equal(ringach.sum(axis=1), [3, 22, 42, 12, 0])  # SOURCE.txt
    np.testing.assert_array_equal(ringach.sum(axis=0), [11, 11, 25, 25, 7])
    np.testing.assert_allclose(edges, np.logspace(-1, 0.2, 6), rtol=1e-4)
    assert ringach[:2, :2].sum() / ringach.sum() == pytest.approx(
        V1_LITERATURE_MEDIANS["blob_like_fraction"]["value"], abs=0.005)

    counts = nxny_histogram([0.2, 0.4, 5.0, np.nan], [0.2, 0.6, 5.0, 0.3], edges)
    assert counts.sum() == 2 and counts[1, 1] == 1 and counts[2, 3] == 1
    assert nxny_histogram([5.0], [5.0], edges, clip=True)[4, 4] == 1

    assert total_variation_distance(ringach, 3 * ringach) == pytest.approx(0.0)
    one_corner, other_corner = np.zeros((5, 5)), np.zeros((5, 5))
    one_corner[0, 0], other_corner[4, 4] = 1, 7
    assert total_variation_distance(one_corner, other_corner) == pytest.approx(1.0)
    with pytest.raises(DataError, match="no counts"):
        total_variation_distance(np.zeros((5, 5)), ringach)


@pytest.mark.skipif(not A144.is_file(), reason=f"{A144} not present (shared data folder)")
def test_olshausen_a144_basis_is_gabor_like():
    basis = scipy.io.loadmat(A144)["A"]  # 144 pixels × 144 functions
    fields = np.stack([basis[:, unit].reshape(12, 12, order="F") for unit in range(144)])
    summary = summarize_fits(fit_gabors(fields))
    print("\nA144 Gabor summary:", {key: round(value, 3) for key, value in summary.items()})
    assert summary["n_failed"] == 0
    assert summary["fraction_r2_above_0.9"] >= 0.75

"""Tests for the MacKay–Miller analysis of Linsker's rule, against closed forms."""

import numpy as np
import pytest

from plasticsim.analysis.mackay_miller import (
    CorrelationFunction,
    angular_energy,
    centre_surround_sums,
    classify_field,
    correlation_matrix,
    cosine_similarity,
    gaussian_arbor,
    leading_eigenvectors,
    mackay_miller_operator,
    next_layer_correlation,
)
from plasticsim.errors import DataError, SpecError


def _gaussian_problem(arbor_radius=4.0, correlation_length=2.0, cutoff=3.5):
    """Linsker's B → C problem: Gaussian arbor, Gaussian correlation exp(−d²/(2q²))."""
    arbor = gaussian_arbor(arbor_radius, cutoff=cutoff)
    correlation = CorrelationFunction.from_function(
        lambda d: np.exp(-d ** 2 / (2 * correlation_length ** 2)), 2 * arbor.extent)
    return arbor, correlation_matrix(correlation, arbor)


def _mehler_ratio(arbor_radius, correlation_length):
    """Eigenvalue ratio between successive levels of the continuum Gaussian problem.

    With A = exp(−x²/(2a²)) (a² = r²/2) and Q = exp(−(x − y)²/(2q²)) per axis, the symmetric
    kernel A^{1/2}(x) Q(x − y) A^{1/2}(y) = exp(−α(x² + y²) + βxy) has Hermite-function
    eigenvectors with eigenvalues ∝ ρⁿ, where 4ρ/(1 + ρ²) = β/α (Mehler's formula).
    """
    a2 = arbor_radius ** 2 / 2
    alpha = 1 / (4 * a2) + 1 / (2 * correlation_length ** 2)
    beta = 1 / correlation_length ** 2
    x = beta / alpha
    return (2 - np.sqrt(4 - x ** 2)) / x


def _disc_grid(half):
    rows, columns = np.mgrid[-half:half + 1, -half:half + 1]
    return rows, columns, rows ** 2 + columns ** 2


# --- the arbor ------------------------------------------------------------------------------

def test_gaussian_arbor_has_linskers_density_and_sums_to_one():
    arbor = gaussian_arbor(3.0, cutoff=2.0)
    assert arbor.density.sum() == pytest.approx(1.0)
    assert arbor.distances.max() <= 6.0 + 1e-9 and arbor.extent == 6
    centre = arbor.density[np.argmin(arbor.distances)]
    at_radius = arbor.density[(arbor.offsets[:, 0] == 3) & (arbor.offsets[:, 1] == 0)][0]
    assert at_radius / centre == pytest.approx(np.exp(-1.0))     # 1/e at r
    image = arbor.to_image(arbor.density)
    np.testing.assert_array_equal(arbor.from_image(image), arbor.density)
    assert image.shape == (13, 13) and image[0, 0] == 0        # corners lie outside the disc


# --- eigenvectors with closed forms ----------------------------------------------------------

def test_without_correlation_the_only_growing_mode_is_the_arbor():
    arbor = gaussian_arbor(2.5)
    modes = leading_eigenvectors(np.zeros((arbor.size, arbor.size)), arbor.density, k2=0.7)
    assert modes.eigenvalues[0] == pytest.approx(0.7)            # k₂·Σ A
    np.testing.assert_allclose(modes.eigenvalues[1:], 0.0, atol=1e-12)
    assert cosine_similarity(modes.density_vectors[0], arbor.density) == pytest.approx(1.0)
    np.testing.assert_allclose(modes.strength_vectors[0], 1 / np.sqrt(arbor.size))  # c = const


@pytest.mark.parametrize("arbor_radius, correlation_length", [(4.0, 2.0), (3.0, 3.0)])
def test_gaussian_eigenvalues_follow_mehlers_geometric_ladder(arbor_radius,
                                                              correlation_length):
    arbor, Q = _gaussian_problem(arbor_radius, correlation_length)
    modes = leading_eigenvectors(Q, arbor.density, k2=0.0, count=6)
    rho = _mehler_ratio(arbor_radius, correlation_length)
    ratios = modes.eigenvalues / modes.eigenvalues[0]
    # levels: 1s; the 2p pair; 2s with the 3d pair (three modes, degenerate in the continuum)
    np.testing.assert_allclose(ratios[1:3], rho, rtol=1e-3)
    np.testing.assert_allclose(ratios[3:6], rho ** 2, rtol=1e-3)
    # the 2p pair is exactly degenerate on the square grid (its symmetry maps x to y)
    assert ratios[1] - ratios[2] == pytest.approx(0.0, abs=1e-10)
    kinds = [classify_field(arbor.to_image(v)) for v in modes.density_vectors[:3]]
    assert kinds[0].kind == "all-same-sign" and kinds[0].on_centre
    assert [k.angular_order for k in kinds[1:]] == [1, 1]
    assert all(k.kind == "angular" for k in kinds[1:])


def test_k2_moves_only_the_radially_symmetric_family():
    arbor, Q = _gaussian_problem(4.0, 2.0)
    reference = leading_eigenvectors(Q, arbor.density, k2=0.0, count=12)
    p_values = reference.eigenvalues[1:3]
    for k2 in (-0.2, -10.0):
        modes = leading_eigenvectors(Q, arbor.density, k2=k2, count=12)
        orders = [classify_field(arbor.to_image(v)).angular_order
                  for v in modes.density_vectors]
        p_modes = modes.eigenvalues[np.array(orders) == 1][:2]
        # every m ≥ 1 eigenvector sums to zero, so k₂J leaves it and its eigenvalue alone
        np.testing.assert_allclose(p_modes, p_values, rtol=1e-9)


def test_negative_k2_opens_the_centre_surround_window_then_hands_over_to_bilobed_fields():
    # MacKay & Miller: k₂ < 0 suppresses the all-same-sign (1s) mode; for moderate k₂ the
    # leading mode is centre-surround, and for very negative k₂ the bi-lobed 2p pair leads
    # (its eigenvalue does not depend on k₂, the centre-surround one keeps falling).
    arbor, Q = _gaussian_problem(4.0, 2.0)
    leading = {}
    for k2 in (0.0, -0.2, -10.0):
        modes = leading_eigenvectors(Q, arbor.density, k2=k2, count=3)
        leading[k2] = classify_field(arbor.to_image(modes.density_vectors[0]))
    assert leading[0.0].kind == "all-same-sign"
    assert leading[-0.2].kind == "centre-surround"
    assert leading[-10.0].kind == "angular" and leading[-10.0].angular_order == 1


def test_operator_is_the_one_linskers_rule_follows():
    # integrate the rule as Linsker writes it, dc/dt = k₁ + Σ_j (Q_ij + k₂) A_j c_j, with
    # plain Euler steps from small random weights, and compare w = A·c with the modes
    arbor, Q = _gaussian_problem(3.0, 2.0, cutoff=2.5)
    k1, k2 = 0.0, -0.2
    modes = leading_eigenvectors(Q, arbor.density, k2=k2, count=2)
    strengths = np.random.default_rng(5).normal(0.0, 1e-3, arbor.size)
    step, steps = 0.05, 4000
    norms = []
    for _ in range(steps):
        strengths = strengths + step * (k1 + (Q + k2) @ (arbor.density * strengths))
        norms.append(np.linalg.norm(arbor.density * strengths))
    densities = arbor.density * strengths
    assert cosine_similarity(densities, modes.density_vectors[0]) > 0.999
    assert cosine_similarity(strengths, modes.strength_vectors[0]) > 0.999
    growth = np.log(norms[-1] / norms[-101]) / (100 * step)
    assert growth == pytest.approx(np.log1p(step * modes.eigenvalues[0]) / step, rel=1e-3)
    operator = mackay_miller_operator(Q, arbor.density, k2)
    np.testing.assert_allclose(operator @ modes.density_vectors[0],
                               modes.eigenvalues[0] * modes.density_vectors[0], atol=1e-12)


# --- classifying fields ---------------------------------------------------------------------

def test_classifier_names_the_standard_shapes():
    rows, columns, d2 = _disc_grid(8)
    gaussian = np.exp(-d2 / 9.0)
    centre_surround = np.exp(-d2 / 4.0) - 0.4 * np.exp(-d2 / 16.0)
    assert classify_field(gaussian).kind == "all-same-sign"
    on = classify_field(centre_surround)
    off = classify_field(-centre_surround)
    assert on.kind == off.kind == "centre-surround"
    assert on.on_centre and not off.on_centre
    assert on.centre_sum > 0 > on.surround_sum
    for order, field in ((1, columns * gaussian), (2, (columns ** 2 - rows ** 2) * gaussian),
                         (3, np.real((columns + 1j * rows) ** 3) * gaussian)):
        result = classify_field(field)
        assert result.kind == "angular" and result.angular_order == order
        assert result.angular_energy[order] > 0.95
    # an elongated (oriented) centre is mostly m = 0 and m = 2: not radially symmetric
    elongated = np.exp(-(columns ** 2 / 2.0 + rows ** 2 / 18.0))
    energy = angular_energy(elongated)
    assert energy[0] + energy[2] > 0.9 and energy[2] > 0.1
    assert classify_field(elongated).kind == "angular"


def test_saturated_fields_are_classified_by_their_shape_not_their_pixel_edges():
    # every synapse at a bound: c = ±1 inside a disc (or a band), seen through the arbor
    arbor = gaussian_arbor(4.0)
    rows, columns = arbor.offsets[:, 0], arbor.offsets[:, 1]
    disc = np.where(rows ** 2 + columns ** 2 < 3.5 ** 2, 1.0, -1.0)
    saturated = classify_field(arbor.to_image(arbor.density * disc))
    assert saturated.kind == "centre-surround" and saturated.radial_fraction > 0.9
    # a 9-pixel square-ish saturated centre (as Linsker's layer C grows on this grid) is
    # still centre-surround: its four-fold grid symmetry is not angular structure
    wide = gaussian_arbor(6.0)
    square = np.where((np.abs(wide.offsets) <= 4).all(axis=1)
                      & (np.abs(wide.offsets).sum(axis=1) <= 7), 1.0, -1.0)
    small = classify_field(wide.to_image(wide.density * square))
    assert small.kind == "centre-surround" and small.angular_energy[4] > 0.02
    band = np.where(np.abs(columns) < 2, 1.0, -1.0)
    oriented = classify_field(arbor.to_image(arbor.density * band))
    assert oriented.kind == "angular" and oriented.angular_order in (0, 2)
    assert oriented.angular_energy[2] > 0.2


def test_centre_radius_is_the_profiles_zero_crossing():
    # f(r) = e^{−r²/a²} − b·e^{−r²/c²} vanishes at r₀² = ln(1/b) / (1/a² − 1/c²)
    a2, b, c2 = 4.0, 0.4, 16.0
    _, _, d2 = _disc_grid(10)
    field = np.exp(-d2 / a2) - b * np.exp(-d2 / c2)
    centre, surround, radius = centre_surround_sums(field)
    assert radius == pytest.approx(np.sqrt(np.log(1 / b) / (1 / a2 - 1 / c2)), abs=0.15)
    inside = d2 < radius ** 2
    assert centre == pytest.approx(field[inside].sum())
    assert surround == pytest.approx(field[~inside].sum())
    assert centre + surround == pytest.approx(field.sum())
    everywhere = centre_surround_sums(np.exp(-d2 / a2))
    assert everywhere[2] == np.inf and everywhere[1] == 0.0


# --- layer to layer -------------------------------------------------------------------------

def test_next_layer_correlation_matches_a_direct_double_sum():
    rng = np.random.default_rng(3)
    fields = rng.normal(size=(2, 5, 5))
    input_correlation = CorrelationFunction.from_function(
        lambda d: np.exp(-d ** 2 / 6.0) * np.cos(0.8 * d), 6)
    layer = next_layer_correlation(fields, input_correlation)
    offsets = np.stack(np.mgrid[-2:3, -2:3], axis=-1).reshape(-1, 2)
    for displacement in [(0, 0), (1, 0), (2, -3), (5, 4)]:
        expected = 0.0
        for w in fields.reshape(2, -1):
            # cov(F_p, F_{p+d}) = Σ_{x,y} w(x) w(y) Q(p + x − p − d − y)
            difference = offsets[:, None, :] - offsets[None, :, :] - np.array(displacement)
            expected += w @ input_correlation(difference[..., 0], difference[..., 1]) @ w
        expected /= 2
        # the function is symmetric: Q(d) = Q(−d)
        assert layer(*displacement) == pytest.approx(expected, abs=1e-10)
        assert layer(-displacement[0], -displacement[1]) == pytest.approx(expected, abs=1e-10)


def test_all_excitatory_layer_on_white_noise_is_gaussian_of_radius_root_two_r():
    arbor = gaussian_arbor(2.5, cutoff=4.0)      # truncation at 4r: below 1e-6 relative
    layer = next_layer_correlation(arbor.to_image(arbor.density),
                                   CorrelationFunction.uncorrelated()).normalized()
    distances, profile = layer.radial_profile()
    assert layer(0, 0) == pytest.approx(1.0)
    for d in (1, 3, 5):
        assert layer(d, 0) == pytest.approx(np.exp(-d ** 2 / (2 * 2.5 ** 2)), rel=1e-6)
    assert np.all(np.diff(profile[:8]) < 0)


# --- bad input ------------------------------------------------------------------------------

def test_bad_arguments_are_refused_in_one_line():
    with pytest.raises(SpecError, match="^radius: expected a positive number"):
        gaussian_arbor(0.0)
    with pytest.raises(SpecError, match="^cutoff: "):
        gaussian_arbor(2.0, cutoff=-1)
    with pytest.raises(DataError, match="odd side"):
        CorrelationFunction(np.ones((4, 4)))
    arbor = gaussian_arbor(2.0)
    with pytest.raises(DataError, match="Q has shape"):
        leading_eigenvectors(np.eye(3), arbor.density, 0.0)
    with pytest.raises(DataError, match="all zero"):
        classify_field(np.zeros((5, 5)))
    with pytest.raises(DataError, match="square of odd side"):
        classify_field(np.ones((4, 6)))
    with pytest.raises(DataError, match="expected images of shape"):
        arbor.from_image(np.zeros((3, 3)))

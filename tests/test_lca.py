"""LCA inference (plasticsim.model.neurons.lca): the fixed points of the dynamics."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Lasso

from plasticsim.model.neurons.lca import cauchy_slope, lca_inference

ROOT = Path(__file__).resolve().parents[1]
OLSHAUSEN_IMAGES = ROOT.parent / "shared" / "data" / "olshausen" / "sparsenet_tcl_trainset"
needs_olshausen_images = pytest.mark.skipif(
    not (OLSHAUSEN_IMAGES / "image0").is_file(),
    reason=f"Olshausen's images are not at {OLSHAUSEN_IMAGES} (CI keeps them in ../shared)")


def test_l1_lca_reaches_the_lasso_solution():
    rng = np.random.default_rng(0)
    dictionary = rng.normal(size=(36, 48))
    dictionary /= np.linalg.norm(dictionary, axis=0)
    patches = rng.normal(size=(3, 36)) * 0.3
    coefficients = lca_inference(patches, dictionary.T, prior="l1", sparsity=0.05,
                                 prior_scale=1.0, steps=3000, dt=0.2)
    # sklearn's Lasso minimises ‖x − Φa‖²/(2·pixels) + α‖a‖₁, i.e. α = λ/pixels.
    for patch, code in zip(patches, coefficients):
        lasso = Lasso(alpha=0.05 / 36, fit_intercept=False, tol=1e-12, max_iter=100000)
        np.testing.assert_allclose(code, lasso.fit(dictionary, patch).coef_, atol=1e-5)
    assert np.mean(coefficients == 0) > 0.3   # the threshold silences units exactly


def test_cauchy_dynamics_stop_where_the_energy_gradient_vanishes():
    rng = np.random.default_rng(1)
    dictionary = rng.normal(size=(16, 16)) * 0.4   # basis functions of unequal norms
    patches = rng.normal(size=(4, 16)) * 0.3
    a = lca_inference(patches, dictionary.T, prior="cauchy", sparsity=0.022,
                      prior_scale=0.316, steps=5000, dt=0.2)
    gradient = -(patches - a @ dictionary.T) @ dictionary + 0.022 * cauchy_slope(a, 0.316)
    assert np.max(np.abs(gradient)) < 1e-8


def test_l1_coefficient_variance_falls_as_the_gain_grows():
    # The fixed point the gain rule needs: scaling one basis function by g leaves that
    # unit's contribution g·a unchanged, so a ∝ 1/g and its variance falls strictly with g.
    # (With the threshold λ on the raw coefficient, a small-gain unit was silenced: its
    # variance rose with g there, and sparsenet.m's rule drove it to zero.)
    rng = np.random.default_rng(3)
    dictionary = rng.normal(size=(36, 36))
    dictionary /= np.linalg.norm(dictionary, axis=0)
    patches = rng.normal(size=(200, 36)) * 0.3
    variances = []
    for gain in (0.05, 0.2, 1.0, 5.0):
        scaled = dictionary.copy()
        scaled[:, 0] *= gain
        a = lca_inference(patches, scaled.T, prior="l1", sparsity=0.1, prior_scale=1.0,
                          steps=400, dt=0.2)
        variances.append(np.mean(a[:, 0] ** 2) * gain**2)
    np.testing.assert_allclose(variances, variances[2], rtol=1e-6)
    assert variances[2] > 0



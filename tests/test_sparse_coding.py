"""Tests for plasticsim.networks.sparse_coding: LCA inference and the O&F network."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Lasso

import plasticsim
from plasticsim.loading import load_protocol
from plasticsim.networks import build_network
from plasticsim.networks.sparse_coding import cauchy_slope, lca_inference

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
    coefficients = lca_inference(patches, dictionary, prior="l1", sparsity=0.05,
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
    a = lca_inference(patches, dictionary, prior="cauchy", sparsity=0.022,
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
        a = lca_inference(patches, scaled, prior="l1", sparsity=0.1, prior_scale=1.0,
                          steps=400, dt=0.2)
        variances.append(np.mean(a[:, 0] ** 2) * gain**2)
    np.testing.assert_allclose(variances, variances[2], rtol=1e-6)
    assert variances[2] > 0


def test_gain_normalisation_brings_every_unit_to_the_variance_goal():
    spec = load_protocol(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                         small_protocol_overrides(15000))
    simulation = build_network(spec)
    goal = simulation.network.variance_goal
    assert simulation.network.gain_exponent == 0.02   # sparsenet.m's rule is the default
    probes = simulation.stimulus.sample(np.random.default_rng(7), np.ones(4000, dtype=bool))
    before = np.mean(simulation.respond(probes) ** 2, axis=0)
    simulation.advance(15000)
    coefficients = simulation.respond(probes)
    ratio = np.mean(coefficients**2, axis=0) / goal
    # Unit-norm functions give ⟨a²⟩ ≈ 0.04 here; after 150 batches the gains have moved
    # each unit to the goal 0.1 (within a factor 1.5 for at least 90% of them).
    assert np.median(before) < goal / 1.5
    assert np.mean((ratio > 1 / 1.5) & (ratio < 1.5)) >= 0.9
    # No unit is silenced: each codes at least 5% of the patches, and no gain collapsed.
    assert np.mean(coefficients != 0, axis=0).min() > 0.05
    assert simulation.gain.min() > 0.2 and simulation.gain.max() < 5.0
    assert np.std(simulation.gain) > 0.02   # the gains did differentiate


def small_protocol_overrides(samples: int) -> list[str]:
    """8×8 patches, 64 units: the shipped protocol scaled down to run in seconds."""
    return ["model.populations.input.size=64", "model.populations.coefficients.size=64",
            "stimuli.input.patch_size=8", f"schedule.samples={samples}",
            "record.every=10000", "learning_rates.dictionary.initial=5.0",
            "learning_rates.dictionary.tau=100000"]


@needs_olshausen_images
def test_small_network_on_olshausen_images_learns_gabors(tmp_path):
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_olshausen_images.yaml",
                             tmp_path, progress=False, figures=False, overrides=[
                                 f"stimuli.input.source.path={OLSHAUSEN_IMAGES}/image*",
                                 *small_protocol_overrides(50000)])
    summary = results.summary
    assert summary["fraction_r2_above_0.9"] >= 0.70
    # 8×8 fields are broader in frequency than 12×12 ones (2.35 octaves here against 2.03
    # for the full protocol, whose 1.2–2.2 target the slow test checks).
    assert 1.2 <= summary["median_sf_bandwidth_octaves"] <= 2.5
    assert results.receptive_fields["coefficients"].shape == (64, 8, 8)
    assert results.weights["dictionary"].shape == (64, 64)


def test_small_network_on_builtin_images_learns_gabors(tmp_path):
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                             tmp_path, progress=False, overrides=small_protocol_overrides(30000))
    assert results.summary["fraction_r2_above_0.9"] >= 0.60
    assert results.summary["median_orientation_selectivity_index"] > 0.3
    assert (tmp_path / "figures" / "receptive_fields.png").is_file()
    assert np.all(np.diff(results.metrics["relative_residual"][1:]) < 0.2)


def test_same_seed_gives_identical_dictionaries(tmp_path):
    overrides = ["model.populations.input.size=16", "model.populations.coefficients.size=16",
                 "stimuli.input.patch_size=4", "schedule.samples=1000", "record.every=500"]
    first, second = (plasticsim.run(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                                    tmp_path / name, progress=False, figures=False,
                                    overrides=overrides) for name in ("a", "b"))
    np.testing.assert_array_equal(first.weights["dictionary"], second.weights["dictionary"])


@pytest.mark.slow
@needs_olshausen_images
def test_full_protocol_on_olshausen_images_meets_the_targets(tmp_path):
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_olshausen_images.yaml",
                             tmp_path, progress=False, figures=False, overrides=[
                                 f"stimuli.input.source.path={OLSHAUSEN_IMAGES}/image*"])
    assert results.summary["fraction_r2_above_0.9"] >= 0.70
    assert 1.2 <= results.summary["median_sf_bandwidth_octaves"] <= 2.2
    assert results.summary["wall_seconds"] < 600

"""Tests for plasticsim.analysis.baselines (PCA and FastICA fields on a run's patches)."""

from pathlib import Path

import numpy as np
import pytest

import plasticsim
from plasticsim.analysis.baselines import (energy_spread, fit_baseline, fit_ica, fit_pca,
                                           run_patches)
from plasticsim.analysis.gabor import gabor_patch
from plasticsim.errors import DataError
from plasticsim.io.results import load
from plasticsim.model.stimuli.image_patches import COVARIANCE_SEED

ROOT = Path(__file__).resolve().parents[1]
OLSHAUSEN_IMAGES = ROOT.parent / "shared" / "data" / "olshausen" / "sparsenet_tcl_trainset"
SMALL_RUN = ["model.populations.input.size=64", "model.populations.coefficients.size=64",
             "stimuli.input.patch_size=8", "schedule.samples=1000", "record.every=1000"]


def mixed_laplace_sources(n_samples=20000, n_pixels=16, seed=0):
    """Patches x = A s with independent unit-variance Laplace sources and a known A."""
    rng = np.random.default_rng(seed)
    sources = rng.laplace(scale=1 / np.sqrt(2), size=(n_samples, n_pixels))
    # Distinct column norms, so the ordering by carried variance is defined.
    mixing = rng.normal(size=(n_pixels, n_pixels)) * np.linspace(3.0, 0.5, n_pixels)
    return sources @ mixing.T, mixing


def test_pca_fields_are_the_eigenvectors_of_the_patch_covariance():
    rng = np.random.default_rng(1)
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    patches = rng.normal(size=(4000, 16)) * np.linspace(4.0, 0.2, 16) @ rotation.T
    baseline = fit_pca(patches, 5, (4, 4))
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    leading = eigenvectors[:, ::-1][:, :5].T
    fields = baseline.fields.reshape(5, 16)
    np.testing.assert_allclose(np.abs(np.sum(fields * leading, axis=1)), 1.0, atol=1e-8)
    np.testing.assert_allclose(fields @ fields.T, np.eye(5), atol=1e-10)
    # Sign convention: each field's largest-magnitude pixel is positive.
    assert np.all(fields[np.arange(5), np.argmax(np.abs(fields), axis=1)] > 0)
    assert baseline.explained_variance_fraction == pytest.approx(
        eigenvalues[::-1][:5].sum() / eigenvalues.sum())


def test_ica_recovers_the_mixing_columns_of_sparse_sources():
    patches, mixing = mixed_laplace_sources()
    baseline = fit_ica(patches, 16, (4, 4), seed=3)
    assert baseline.converged and baseline.method == "ica"
    basis = baseline.fields.reshape(16, 16)
    # |cosine| between every recovered basis function and every true mixing column: each
    # recovered one matches exactly one true column.
    cosine = np.abs((basis / np.linalg.norm(basis, axis=1, keepdims=True))
                    @ (mixing / np.linalg.norm(mixing, axis=0)))
    assert np.all(cosine.max(axis=1) > 0.99)
    assert sorted(np.argmax(cosine, axis=1)) == list(range(16))
    # Ordered by carried variance (norm of the mixing column), largest first.
    assert np.all(np.diff(np.linalg.norm(basis, axis=1)) <= 1e-12)
    np.testing.assert_allclose(np.linalg.norm(basis, axis=1),
                               np.linalg.norm(mixing, axis=0)[np.argmax(cosine, axis=1)],
                               rtol=0.05)


def test_ica_filters_unmix_the_basis_functions():
    patches, _ = mixed_laplace_sources(seed=1)
    basis = fit_ica(patches, 16, (4, 4), seed=0).fields.reshape(16, 16)
    filters = fit_ica(patches, 16, (4, 4), seed=0, field_kind="filters").fields.reshape(16, 16)
    # W A = I: the same components in the same order with matching signs.
    np.testing.assert_allclose(filters @ basis.T, np.eye(16), atol=1e-8)


def test_ica_is_deterministic_for_a_seed():
    patches, _ = mixed_laplace_sources(n_samples=5000)
    first = fit_baseline("ica", patches, 8, (4, 4), seed=5)
    second = fit_baseline("ica", patches, 8, (4, 4), seed=5)
    np.testing.assert_array_equal(first.fields, second.fields)
    assert first.fields.shape == (8, 4, 4)
    assert "8 components on 5000 patches, seed 5" in first.description()


def test_ica_that_stops_at_the_iteration_limit_says_so():
    patches, _ = mixed_laplace_sources(n_samples=5000)
    baseline = fit_ica(patches, 16, (4, 4), max_iterations=2, tolerance=1e-12)
    assert not baseline.converged and baseline.n_iterations == 2
    assert "NOT converged" in baseline.description()


@pytest.mark.parametrize("call, message", [
    (lambda p: fit_pca(p, 17, (4, 4)), "between 1 and 16"),
    (lambda p: fit_pca(p[:10], 12, (4, 4)), "more patches than components"),
    (lambda p: fit_pca(p, 4, (5, 5)), "expected (n_patches, 25)"),
    (lambda p: fit_pca(np.where(p > 3, np.nan, p), 4, (4, 4)), "NaN"),
    (lambda p: fit_ica(p, 4, (4, 4), field_kind="weights"), "basis_functions"),
    (lambda p: fit_baseline("nmf", p, 4, (4, 4)), "unknown baseline 'nmf'"),
])
def test_bad_arguments_are_one_readable_data_error(call, message):
    patches, _ = mixed_laplace_sources(n_samples=1000)
    with pytest.raises(DataError, match=None) as error:
        call(patches)
    assert message in str(error.value)


def test_run_patches_are_the_patches_of_the_runs_stimulus(run_protocol):
    results = load(run_protocol("olshausen_field_image_patches.yaml", *SMALL_RUN).path)
    stimulus = results.spec.stimuli["input"]
    patches, shape = run_patches(results, stimulus.covariance_samples, seed=COVARIANCE_SEED)
    assert shape == (8, 8) and patches.shape == (stimulus.covariance_samples, 64)
    # Drawn from the covariance stream, they are exactly the patches whose covariance the
    # run stored: same images, whitening, patch size and border.
    np.testing.assert_allclose(np.cov(patches, rowvar=False),
                               results.stimulus["input"]["signal_covariance"], rtol=1e-12)
    other, _ = run_patches(results, 1000, seed=1)
    again, _ = run_patches(results, 1000, seed=1)
    np.testing.assert_array_equal(other, again)
    assert np.mean(other.var(axis=1)) == pytest.approx(0.1, rel=0.3)  # whitened to 0.1


def test_run_patches_names_the_missing_image_file(tmp_path):
    images = tmp_path / "images.npy"
    np.save(images, np.random.default_rng(0).normal(size=(2, 64, 64)))
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                             tmp_path / "run", progress=False, figures=False,
                             overrides=SMALL_RUN + ["stimuli.input.source.kind=npy",
                                                    f"stimuli.input.source.path={images}"])
    images.unlink()
    with pytest.raises(DataError) as error:
        run_patches(load(results.path), 100)
    message = str(error.value)
    assert "images.npy" in message and "cannot rebuild" in message
    assert len(message.splitlines()) == 1
    with pytest.raises(DataError, match="positive"):
        run_patches(load(results.path), 0)


def test_energy_spread_of_known_fields():
    gabor = gabor_patch((24, 24), 11.5, 11.5, 0.3, 2.0, 2.0, 0.2, 0.0)
    constant = np.ones((12, 12))
    spread = energy_spread(np.stack([gabor, np.zeros((24, 24)),
                                     np.pad(constant, 6)]))
    # Envelope σ = 2 px: the energy's s.d. is σ/√2 per axis, √2·σ/√2 = σ in all (the
    # carrier's cos² adds a little).
    assert spread[0] == pytest.approx(2.0, rel=0.1)
    assert np.isnan(spread[1])
    # Evenly spread over 12×12: sqrt((12² + 12² − 2)/12).
    assert spread[2] == pytest.approx(np.sqrt(286 / 12), rel=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(not OLSHAUSEN_IMAGES.is_dir(),
                    reason=f"Olshausen's images are not at {OLSHAUSEN_IMAGES}")
def test_ica_on_olshausen_images_gives_gabors_and_pca_does_not(tmp_path):
    from plasticsim.analysis.gabor import fit_gabors, summarize_fits
    run = plasticsim.run(ROOT / "protocols" / "olshausen_field_olshausen_images.yaml",
                         tmp_path / "run", progress=False, figures=False, overrides=[
                             f"stimuli.input.source.path={OLSHAUSEN_IMAGES}/image*",
                             "schedule.samples=1000", "record.every=1000"])
    patches, shape = run_patches(load(run.path), 50_000, seed=0)
    ica = fit_ica(patches, 144, shape, seed=0)
    pca = fit_pca(patches, 144, shape)
    ica_summary = summarize_fits(fit_gabors(ica.fields, n_starts=2))
    pca_summary = summarize_fits(fit_gabors(pca.fields, n_starts=2))
    assert ica.converged
    assert ica_summary["fraction_r2_above_0.9"] >= 0.8
    # PCA's fields fill the patch (energy spread near the 4.9 px of an even spread) and few
    # fit a Gabor; ICA's are localised.
    assert pca_summary["fraction_r2_above_0.9"] < 0.3
    assert np.median(energy_spread(pca.fields)) > 4.0
    assert np.median(energy_spread(ica.fields)) < 3.0

"""Classic linear baselines for learned receptive fields: PCA and FastICA on the run's patches.

A lab judging emergent receptive fields asks "compared with what?". Two classic answers,
fitted here to the same whitened image patches a run learned from and with as many
components as the run has units:

PCA
    The eigenvectors of the patch covariance. On (nearly) stationary images they are global
    Fourier-like patterns that fill the whole patch: not localised, so few fit a Gabor.
FastICA
    Independent component analysis (Hyvärinen 1999, scikit-learn's ``FastICA``, log-cosh
    contrast). On natural images it gives localised, oriented, band-pass Gabor-like fields
    (Bell & Sejnowski 1997, *Vision Research* 37:3327; van Hateren & van der Schaaf 1998,
    *Proc R Soc B* 265:359).

Field convention
----------------
Every baseline returns fields of shape (components, height, width), each a patch in the
row-major pixel order of ``/receptive_fields`` (pixel index = row·width + column), ordered
by the patch variance the component carries (largest first), with the sign that makes each
field's largest-magnitude pixel positive (for ICA filters: their basis function's).

ICA has two sets of fields: the *basis functions* (columns of the mixing matrix A, x ≈ A s)
and the *filters* (rows of the unmixing matrix W, s = W x, which is what a white-noise map of
a linear unit s_i = w_i·x measures). The default is the basis functions, because they are
what the Olshausen–Field network stores (its dictionary Φ, ``receptive_fields.method:
weights``) and what Olshausen's ``A144.mat`` holds. Choose ``field_kind="filters"`` to
compare with white-noise-mapped fields (SAILnet). On Olshausen's pre-whitened images the
filters are much less Gabor-like than the basis functions: FastICA whitens the patches
again, which amplifies the frequencies above ~0.13 cycles/pixel that O&F's low-pass cut
removed, and the filters pick those up. For PCA the two coincide (orthonormal components).

Which patches
-------------
:func:`run_patches` rebuilds the run's stimulus from the protocol stored in its results file
and draws fresh patches from it (same images, whitening, scaling, patch size and border;
input noise left out, as the baselines model the signal). They are drawn from their own
seeded stream, so they are the same *distribution* as the run's training patches, not the
same samples; with ``seed=plasticsim.model.stimuli.image_patches.COVARIANCE_SEED`` and the stimulus's
``covariance_samples`` they are exactly the patches of the stored ``signal_covariance``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from plasticsim.errors import DataError

#: Baselines understood by :func:`fit_baseline` (and ``plasticsim compare --baseline``).
BASELINE_METHODS = ("pca", "ica")
ICA_FIELD_KINDS = ("basis_functions", "filters")
#: Patches drawn by default: ~350 per dimension of a 12×12 patch, enough for FastICA's
#: fourth-order statistics to settle (measured: 50 000 patches, 144 components, ~140
#: iterations).
DEFAULT_PATCHES = 50_000
DEFAULT_SEED = 0


@dataclass(frozen=True)
class BaselineFields:
    """Fields of one baseline fitted to a set of patches.

    Attributes
    ----------
    method : str
        ``"pca"`` or ``"ica"``.
    fields : numpy.ndarray
        (components, height, width), in the convention of the module docstring.
    field_kind : str
        ``"basis_functions"`` or ``"filters"`` (PCA: ``"basis_functions"``, the same thing).
    n_patches : int
        Patches the baseline was fitted to.
    seed : int or None
        Seed of FastICA's initial unmixing matrix (None for PCA, which is not random).
    explained_variance_fraction : float
        Fraction of the patches' total variance in the span of the components (1 when there
        are as many components as pixels).
    n_iterations : int or None
        FastICA iterations (None for PCA).
    converged : bool
        False when FastICA stopped at its iteration limit before reaching its tolerance.
    """

    method: str
    fields: np.ndarray
    field_kind: str
    n_patches: int
    seed: int | None
    explained_variance_fraction: float
    n_iterations: int | None = None
    converged: bool = True

    def description(self) -> str:
        """One line saying how the fields were made (for reports)."""
        text = (f"{self.method.upper()} {self.field_kind.replace('_', ' ')}, "
                f"{len(self.fields)} components on {self.n_patches} patches")
        if self.method == "ica":
            text += f", seed {self.seed}, {self.n_iterations} iterations"
            if not self.converged:
                text += " (NOT converged: stopped at the iteration limit)"
        return text


def _check_patches(patches: np.ndarray, n_components: int, patch_shape) -> np.ndarray:
    patches = np.asarray(patches, dtype=np.float64)
    height, width = (int(side) for side in patch_shape)
    if patches.ndim != 2 or patches.shape[1] != height * width:
        raise DataError(f"patches have shape {patches.shape}; expected (n_patches, "
                        f"{height * width}) for {height}×{width} patches")
    if not np.all(np.isfinite(patches)):
        raise DataError("patches contain NaN or infinite values")
    if not 1 <= n_components <= height * width:
        raise DataError(f"{n_components} components requested; PCA and ICA give between 1 "
                        f"and {height * width} (the number of pixels)")
    if patches.shape[0] <= n_components:
        raise DataError(f"{patches.shape[0]} patches for {n_components} components; expected "
                        "more patches than components")
    return patches


def _canonical_signs(fields: np.ndarray) -> np.ndarray:
    """+1 or −1 per field so that its largest-magnitude pixel becomes positive."""
    flat = fields.reshape(len(fields), -1)
    return np.sign(flat[np.arange(len(flat)), np.argmax(np.abs(flat), axis=1)])


def fit_pca(patches: np.ndarray, n_components: int, patch_shape: tuple[int, int]
            ) -> BaselineFields:
    """Principal components of the patches as fields.

    Parameters
    ----------
    patches : numpy.ndarray
        (n_patches, height·width), row-major patches.
    n_components : int
        Number of components (the run's number of units, at most the number of pixels).
    patch_shape : (int, int)
        (height, width).

    Returns
    -------
    BaselineFields
        Unit-norm eigenvectors of the patch covariance, largest eigenvalue first.

    Raises
    ------
    DataError
        If the patches are not finite, do not match ``patch_shape``, or are too few.

    Examples
    --------
    >>> patches = np.random.default_rng(0).normal(size=(500, 16)) * 2.0 ** np.arange(16)
    >>> fit_pca(patches, 2, (4, 4)).fields.reshape(2, -1).argmax(axis=1)
    array([15, 14])
    """
    from sklearn.decomposition import PCA

    patches = _check_patches(patches, n_components, patch_shape)
    # The full SVD is exact and deterministic; randomised solvers are neither.
    pca = PCA(n_components=n_components, svd_solver="full").fit(patches)
    fields = pca.components_.reshape((n_components,) + tuple(patch_shape))
    fields = fields * _canonical_signs(fields)[:, None, None]
    return BaselineFields("pca", fields, "basis_functions", len(patches), None,
                          float(np.sum(pca.explained_variance_ratio_)))


def fit_ica(patches: np.ndarray, n_components: int, patch_shape: tuple[int, int],
            seed: int = DEFAULT_SEED, field_kind: str = "basis_functions",
            max_iterations: int = 1000, tolerance: float = 1e-4) -> BaselineFields:
    """FastICA (log-cosh contrast, parallel updates) of the patches as fields.

    FastICA first PCA-whitens the patches down to ``n_components`` dimensions, then rotates
    the whitened space to make the projections maximally non-Gaussian.

    Parameters
    ----------
    patches : numpy.ndarray
        (n_patches, height·width), row-major patches.
    n_components : int
        Number of independent components (at most the number of pixels).
    patch_shape : (int, int)
        (height, width).
    seed : int, default 0
        Seeds FastICA's random initial unmixing matrix; the same seed and patches give the
        same fields on the same machine.
    field_kind : {"basis_functions", "filters"}
        Columns of the mixing matrix, or rows of the unmixing matrix (module docstring).
    max_iterations : int, default 1000
        Iteration limit; reaching it is reported (``converged=False``), not hidden.
    tolerance : float, default 1e-4
        scikit-learn's convergence tolerance on the change of the unmixing matrix.

    Returns
    -------
    BaselineFields
        Components ordered by the patch variance they carry (squared norm of the mixing
        column, the sources having unit variance), largest first.

    Raises
    ------
    DataError
        If the patches are not finite, do not match ``patch_shape`` or are too few, or
        ``field_kind`` is unknown.
    """
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning

    if field_kind not in ICA_FIELD_KINDS:
        raise DataError(f"ICA fields {field_kind!r}; expected one of {ICA_FIELD_KINDS}")
    patches = _check_patches(patches, n_components, patch_shape)
    ica = FastICA(n_components=n_components, whiten="unit-variance", fun="logcosh",
                  max_iter=max_iterations, tol=tolerance, random_state=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        ica.fit(patches)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    mixing, unmixing = ica.mixing_.T, ica.components_   # both (components, pixels)
    order = np.argsort(-np.sum(mixing**2, axis=1), kind="stable")
    mixing, unmixing = mixing[order], unmixing[order]
    chosen = mixing if field_kind == "basis_functions" else unmixing
    # The basis function sets the sign and its filter follows, so that W A = I holds between
    # the two kinds of fields of one fit (s = W x, x ≈ A s).
    signs = _canonical_signs(mixing)
    fields = (chosen * signs[:, None]).reshape((n_components,) + tuple(patch_shape))
    centred = patches - patches.mean(axis=0)
    # The fraction of variance in the span of the components is PCA's: FastICA keeps the
    # leading principal subspace and only rotates within it.
    eigenvalues = np.linalg.eigvalsh(np.cov(centred, rowvar=False))[::-1]
    explained = float(eigenvalues[:n_components].sum() / eigenvalues.sum())
    return BaselineFields("ica", fields, field_kind, len(patches), seed, explained,
                          int(ica.n_iter_), converged)


#: Fitters by method name; each takes (patches, n_components, patch_shape, seed, field_kind).
BASELINE_FITTERS: dict[str, Callable[..., BaselineFields]] = {
    "pca": lambda patches, n, shape, seed, field_kind: fit_pca(patches, n, shape),
    "ica": lambda patches, n, shape, seed, field_kind: fit_ica(patches, n, shape, seed,
                                                                field_kind),
}


def fit_baseline(method: str, patches: np.ndarray, n_components: int,
                 patch_shape: tuple[int, int], seed: int = DEFAULT_SEED,
                 field_kind: str = "basis_functions") -> BaselineFields:
    """Fit the baseline ``method`` (``"pca"`` or ``"ica"``); see :func:`fit_pca`, :func:`fit_ica`.

    Raises
    ------
    DataError
        If ``method`` is unknown, or as the fitter raises.
    """
    if method not in BASELINE_FITTERS:
        raise DataError(f"unknown baseline {method!r}; available: {', '.join(BASELINE_METHODS)}")
    return BASELINE_FITTERS[method](patches, n_components, patch_shape, seed, field_kind)


def run_patches(results, n_patches: int = DEFAULT_PATCHES, seed: int = DEFAULT_SEED
                ) -> tuple[np.ndarray, tuple[int, int]]:
    """Draw patches from the image stimulus of a run, rebuilt from its stored protocol.

    This is the one place that knows where a run's stimulus lives (today the protocol's
    ``stimuli`` and :class:`plasticsim.model.stimuli.image_patches.ImagePatchStimulus`).

    Parameters
    ----------
    results : plasticsim.io.results.Results
        A loaded results file of a run with exactly one ``image_patches`` stimulus.
    n_patches : int, default 50 000
        Number of patches.
    seed : int, default 0
        Seeds the patch positions (a stream of its own, not the run's).

    Returns
    -------
    patches : numpy.ndarray
        (n_patches, height·width), row-major, without input noise.
    patch_shape : (int, int)

    Raises
    ------
    DataError
        If the run has no single image stimulus or its images cannot be loaded again (the
        message names the file; relative image paths are relative to the working directory).
    """
    from plasticsim.model.stimuli.image_patches import ImagePatchStimulus

    if int(n_patches) < 1:
        raise DataError(f"{n_patches} baseline patches requested; expected a positive number")
    image_stimuli = [stimulus for stimulus in results.spec.stimuli.values()
                     if stimulus.kind == "image_patches"]
    if len(image_stimuli) != 1:
        raise DataError(f"{results.path}: its protocol has {len(image_stimuli)} image_patches "
                        "stimuli; the PCA/ICA baselines need exactly one")
    stimulus_spec = image_stimuli[0]
    size = results.spec.model.populations[stimulus_spec.population].size
    try:
        stimulus = ImagePatchStimulus(stimulus_spec, size)
    except DataError as error:
        raise DataError(f"{results.path}: cannot rebuild the run's image patches for the "
                        f"baselines: {error} (relative image paths are relative to the "
                        "working directory the run was started from)") from None
    patches = stimulus.sampler.sample(int(n_patches), np.random.default_rng(seed))
    return patches, stimulus.patch_shape


def energy_spread(fields: np.ndarray) -> np.ndarray:
    """Root-mean-square distance (pixels) of each field's energy from its energy centroid.

    A measure of localisation that needs no model fit: with e(r) = f(r)² / Σ f², the spread
    is sqrt(Σ e(r) |r − r̄|²), r̄ = Σ e(r) r. A localised Gabor of envelope s.d. σ has about
    σ (the energy's s.d. per axis is σ/√2); a field whose energy is spread evenly over an
    h×w patch has sqrt((h² + w² − 2)/12), 4.9 px for 12×12.

    Parameters
    ----------
    fields : numpy.ndarray
        (units, height, width).

    Returns
    -------
    numpy.ndarray
        One spread per unit; NaN for an all-zero field.
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim != 3:
        raise DataError(f"fields have shape {fields.shape}; expected (units, height, width)")
    energy = fields.reshape(len(fields), -1) ** 2
    total = energy.sum(axis=1)
    rows, columns = np.indices(fields.shape[1:], dtype=np.float64)
    rows, columns = rows.ravel(), columns.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = energy / total[:, None]
        row_centre, column_centre = weights @ rows, weights @ columns
        squared = (weights @ rows**2 - row_centre**2) + (weights @ columns**2 - column_centre**2)
    return np.where(total > 0, np.sqrt(np.clip(squared, 0.0, None)), np.nan)

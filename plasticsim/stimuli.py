"""Stimulus sources: objects built from a stimulus spec that draw samples from a random stream.

Each source knows, where it can, the exact covariances the analysis needs (``signal_covariance``
and ``noise_covariance``). Sources are registered under their YAML ``kind``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import DataError
from .spec import GaussianRingStimulusSpec

STIMULUS_BUILDERS: dict[str, Callable] = {}


def register_stimulus(kind: str):
    """Register a builder ``f(spec, size) -> source`` under a YAML ``kind``."""
    def decorator(builder):
        STIMULUS_BUILDERS[kind] = builder
        return builder
    return decorator


def build_stimulus(spec, size: int):
    """Build the source for a stimulus spec feeding a population of ``size`` units."""
    return STIMULUS_BUILDERS[spec.kind](spec, size)


def ring_gaussian_filter(sites: int, filter_sd: float) -> np.ndarray:
    """Circulant matrix A with rows ∝ a Gaussian of s.d. ``filter_sd`` sites, each row of unit norm.

    A white-noise vector ξ filtered as A ξ has unit variance per site and circulant covariance
    A Aᵀ. ``filter_sd = 0`` gives the identity (white).
    """
    if filter_sd == 0:
        return np.eye(sites)
    offsets = np.arange(sites)
    ring_distance = np.minimum(offsets, sites - offsets)
    kernel = np.exp(-ring_distance**2 / (2.0 * filter_sd**2))
    kernel /= np.linalg.norm(kernel)
    # Row i is the kernel centred on site i.
    return np.stack([np.roll(kernel, i) for i in range(sites)])


class GaussianRingStimulus:
    """Signal S = √v_S A_S ξ and input noise N = √σ_n² A_N ξ′ on a ring.

    Parameters
    ----------
    spec : GaussianRingStimulusSpec
    sites : int
        Ring size N (the input population's size).
    """

    def __init__(self, spec: GaussianRingStimulusSpec, sites: int):
        self.spec = spec
        self.sites = sites
        self.signal_filter = np.sqrt(spec.signal_variance) * ring_gaussian_filter(
            sites, spec.signal_filter_sd)
        self.noise_filter = np.sqrt(spec.input_noise.variance) * ring_gaussian_filter(
            sites, spec.input_noise.filter_sd)
        self.signal_covariance = self.signal_filter @ self.signal_filter.T
        self.noise_covariance = self.noise_filter @ self.noise_filter.T

    def sample(self, rng: np.random.Generator, sensing: np.ndarray, dtype=np.float64
               ) -> np.ndarray:
        """Draw one input per entry of the boolean array ``sensing`` (any shape).

        Sensing samples are S + N, noise-unlearning samples are N alone. Both parts are always
        drawn, so the random stream does not depend on which phases are enabled (ablations
        see the same noise).

        Returns
        -------
        ndarray, shape ``sensing.shape + (sites,)``
        """
        sensing = np.asarray(sensing, dtype=bool)
        white = rng.standard_normal((2,) + sensing.shape + (self.sites,))
        inputs = white[1] @ self.noise_filter.T
        inputs += (white[0] @ self.signal_filter.T) * sensing[..., None]
        return inputs.astype(dtype, copy=False)


register_stimulus("gaussian_ring")(GaussianRingStimulus)


# Sources whose files the loader reads with an explicit format; a folder is left to the
# suffixes of its files.
_IMAGE_FILE_FORMATS = {"folder": None, "mat": "mat", "npy": "npy", "npz": "npz",
                       "raw": "raw", "image": "image"}
#: Seed of the stream that estimates an image stimulus's covariance: fixed, so that the
#: optimum a run is compared with does not depend on the run's seed.
COVARIANCE_SEED = 20240601


class ImagePatchStimulus:
    """Random natural-image patches (flattened row-major), optionally with white input noise.

    Sensing samples are patch + N, noise-unlearning samples are N alone, N ~ 𝒩(0, σ_n² I)
    (zero when the spec has no ``input_noise``). ``signal_covariance`` is the empirical
    covariance of ``covariance_samples`` patches drawn from a fixed stream
    (:data:`COVARIANCE_SEED`), so a Linsker network on patches is compared with the optimum
    of that covariance; ``noise_covariance`` is σ_n² I. ``patch_shape`` tells the runner to
    store receptive fields as units × h × w.

    Parameters
    ----------
    spec : ImagePatchesStimulusSpec
    size : int
        The input population's size (patch_size², checked by the protocol spec).

    Raises
    ------
    DataError
        If the images cannot be loaded (the message names the file) or the patches do not fit.
    """

    def __init__(self, spec, size: int):
        from .images import PatchSampler, load_images, whiten_olshausen_field

        self.spec = spec
        self.sites = size
        self.patch_shape = (spec.patch_size, spec.patch_size)
        source = spec.source
        if source.kind == "skimage":
            images = load_images("skimage", names=source.names)
        else:
            images = load_images(source.path, file_format=_IMAGE_FILE_FORMATS[source.kind],
                                 key=source.key, dtype=source.dtype, shape=source.shape)
        where = "skimage" if source.kind == "skimage" else source.path
        needed = spec.patch_size + 2 * spec.border
        if min(images.shape[1:]) < needed:
            raise DataError(f"{where}: images are {images.shape[1]}×{images.shape[2]} pixels; "
                            f"{spec.patch_size}×{spec.patch_size} patches with a "
                            f"{spec.border}-pixel border need at least {needed}×{needed}")
        if spec.whiten:
            images = whiten_olshausen_field(images, f0=spec.whitening_f0,
                                            target_variance=spec.target_variance)
        if spec.scale_to_variance is not None:
            images = images - images.mean(axis=(1, 2), keepdims=True)
            images *= np.sqrt(spec.scale_to_variance / images.var(axis=(1, 2)).mean())
        self.sampler = PatchSampler(images, spec.patch_size, border=spec.border,
                                    remove_mean=spec.remove_mean, normalize=spec.normalize)
        self.noise_variance = spec.input_noise.variance if spec.input_noise else 0.0
        covariance_rng = np.random.default_rng(COVARIANCE_SEED)
        self.signal_covariance = np.cov(self.sampler.sample(spec.covariance_samples,
                                                            covariance_rng), rowvar=False)
        self.noise_covariance = self.noise_variance * np.eye(size)

    def sample(self, rng: np.random.Generator, sensing: np.ndarray, dtype=np.float64
               ) -> np.ndarray:
        """Draw one input per entry of the boolean array ``sensing`` (any shape).

        Patches and noise are drawn for every entry, so the stream does not depend on the
        phases (as for :class:`GaussianRingStimulus`).

        Returns
        -------
        ndarray, shape ``sensing.shape + (patch_size²,)``
        """
        sensing = np.asarray(sensing, dtype=bool)
        count = int(sensing.size)
        patches = self.sampler.sample(count, rng).reshape(sensing.shape + (self.sites,))
        inputs = patches * sensing[..., None]
        if self.noise_variance > 0:
            inputs += np.sqrt(self.noise_variance) * rng.standard_normal(inputs.shape)
        return inputs.astype(dtype, copy=False)


register_stimulus("image_patches")(ImagePatchStimulus)


# Two streams sharing a latent source (gating experiment E1); the source lives in its own module.
from .shared_latent import SharedLatentStimulus  # noqa: E402

register_stimulus("shared_latent")(SharedLatentStimulus)

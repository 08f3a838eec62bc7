"""Stimulus sources: objects built from a stimulus spec that draw samples from a random stream.

Each source knows, where it can, the exact covariances the analysis needs (``signal_covariance``
and ``noise_covariance``). Sources are registered under their YAML ``kind``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

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

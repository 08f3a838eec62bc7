"""1-D Gaussian-filtered white noise on a ring (Linsker 1992's input), with input noise.

Signal S = √v_S A_S ξ and input noise N = √σ_n² A_N ξ′, with A a circulant matrix whose
rows are a Gaussian of the given s.d. (sites), each of unit norm (so each site has unit
variance before scaling). Sensing samples are S + N, noise-unlearning samples N alone. The
covariances are known exactly, so the analysis compares learned weights with the closed-form
infomax optimum.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...schema import NonNegativeFinite, PositiveFinite, Spec
from ..registry import register_stimulus


class InputNoiseSpec(Spec):
    """Input noise N: variance σ_n² per site, white (``filter_sd: 0``) or Gaussian-filtered."""

    variance: PositiveFinite = 0.1
    filter_sd: NonNegativeFinite = 0.0


class GaussianRingStimulusSpec(Spec):
    """1-D Gaussian-filtered white noise on a ring of ``sites`` (= the population size).

    The signal S is white noise circularly convolved with a Gaussian of s.d.
    ``signal_filter_sd`` sites, scaled to ``signal_variance`` per site.
    """

    kind: Literal["gaussian_ring"] = "gaussian_ring"
    population: str = "input"
    signal_filter_sd: PositiveFinite = 2.0
    signal_variance: PositiveFinite = 1.0
    input_noise: InputNoiseSpec = InputNoiseSpec()

    def populations(self) -> list[str]:
        return [self.population]


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
    # exp() underflows through the subnormal numbers far from the centre; those entries
    # (< 2.3e-308) become 0, as products with subnormals run 10-100 times slower.
    kernel[kernel < np.finfo(kernel.dtype).tiny] = 0.0
    # Row i is the kernel centred on site i.
    return np.stack([np.roll(kernel, i) for i in range(sites)])


#: Rings of at most this many sites filter with the dense circulant matrix (one matrix product
#: per chunk, cheap when the matrix is small); larger rings with the FFT.
DENSE_FILTER_MAX_SITES = 128


class RingFilter:
    """x ↦ √v A x for a ring's circulant Gaussian filter A, applied as what it is.

    White (``filter_sd = 0``): a scaling, no product. Small rings
    (≤ :data:`DENSE_FILTER_MAX_SITES` sites): one product with the N × N matrix over the whole
    block of samples. Larger rings: a circular convolution by FFT, O(N log N) per sample
    instead of N² (A is circulant with a symmetric kernel, so its spectrum is real). All three
    compute √v A x to rounding.

    Parameters
    ----------
    sites : int
    filter_sd : float
        S.d. of the Gaussian in sites (0: white).
    variance : float
        v, the variance per site of the filtered output.
    """

    def __init__(self, sites: int, filter_sd: float, variance: float):
        self.sites = sites
        self.white = filter_sd == 0
        self.scale = np.sqrt(variance)
        self.matrix = self.scale * ring_gaussian_filter(sites, filter_sd)
        self.spectrum = None
        if not self.white and sites > DENSE_FILTER_MAX_SITES:
            # Row 0 of A is the kernel centred on site 0; (A x)_i = Σ_j kernel[j − i] x_j.
            self.spectrum = np.fft.rfft(self.matrix[0]).real

    def apply(self, white: np.ndarray) -> np.ndarray:
        """√v A x for each row x of ``white`` (samples × sites); may overwrite ``white``."""
        if self.white:
            return np.multiply(white, self.scale, out=white)
        if self.spectrum is None:
            return white @ self.matrix.T
        return np.fft.irfft(np.fft.rfft(white, axis=-1) * self.spectrum, n=self.sites, axis=-1)


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
        self.signal = RingFilter(sites, spec.signal_filter_sd, spec.signal_variance)
        self.noise = RingFilter(sites, spec.input_noise.filter_sd, spec.input_noise.variance)
        self.signal_covariance = self.signal.matrix @ self.signal.matrix.T
        self.noise_covariance = self.noise.matrix @ self.noise.matrix.T

    def sample(self, rng: np.random.Generator, sensing: np.ndarray, dtype=np.float64
               ) -> np.ndarray:
        """Draw one input per entry of the boolean array ``sensing`` (any shape).

        Sensing samples are S + N, noise-unlearning samples are N alone. One draw of white
        noise per call: first ξ′ of every sample, then ξ of the sensing samples only (a
        noise-unlearning sample draws no signal), so the stream depends on the phases.

        Returns
        -------
        ndarray, shape ``sensing.shape + (sites,)``
        """
        sensing = np.asarray(sensing, dtype=bool)
        flat = sensing.reshape(-1)
        n_samples = flat.size
        white = rng.standard_normal((n_samples + int(np.count_nonzero(flat)), self.sites))
        inputs = self.noise.apply(white[:n_samples])
        inputs[flat] += self.signal.apply(white[n_samples:])
        return inputs.reshape(sensing.shape + (self.sites,)).astype(dtype, copy=False)


def declare_source(name, spec, source, population, ctx, extra_results=None) -> None:
    """Declare a one-population stimulus source: its stream, covariances and results.

    ``source`` has ``sample(rng, sensing, dtype)`` and, where known, ``signal_covariance`` and
    ``noise_covariance``.
    """
    stream = ctx.stimulus_stream_name(population)
    ctx.stream_group(f"stimulus.{name}", {stream: (population.size,)}, "stimulus",
                     lambda rng, sensing, dtype: {stream: source.sample(rng, sensing, dtype)})
    population.attach_stimulus(name, spec, source)
    arrays = {key: getattr(source, key) for key in ("signal_covariance", "noise_covariance")
              if getattr(source, key, None) is not None}
    arrays.update(extra_results or {})
    attributes = {"kind": spec.kind, "stimulus": name}
    if getattr(source, "patch_shape", None) is not None:
        attributes["patch_shape"] = list(source.patch_shape)
        population.patch_shape = tuple(source.patch_shape)
    ctx.result(f"stimulus/{population.name}", lambda state: arrays, attributes)


def patch_population(name, spec, ctx):
    """The input population of a square-patch stimulus, checked to have patch_size² units."""
    key = f"stimuli.{name}"
    population = ctx.population_named(spec.population, f"{key}.population")
    if population.size != spec.patch_size**2:
        ctx.error(f"{key}.patch_size", f"{spec.patch_size}×{spec.patch_size} patches need an "
                  f"input population of {spec.patch_size**2} units; {population.name!r} has "
                  f"{population.size}")
    return population


@register_stimulus(GaussianRingStimulusSpec)
def build_gaussian_ring(name, spec, ctx) -> None:
    population = ctx.population_named(spec.population, f"stimuli.{name}.population")
    declare_source(name, spec, GaussianRingStimulus(spec, population.size), population, ctx)

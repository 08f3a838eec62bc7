"""Oriented bars in square patches: elongated Gaussian bars of random orientation and
position, the stimulus of orientation-map models (e.g. Obermayer, Ritter & Schulten 1990, who
used its low-dimensional feature-space version).

Each sample is I(r) = contrast · exp(−u²/2w² − v²/2ℓ²), u across the bar and v along it,
centred at a uniformly random position within ``jitter`` pixels of the patch centre and at a
uniformly random orientation θ ∈ [0, π); flattened row-major like image patches, so the
receptive-field and orientation-map analyses read the weights as fields. No input noise.
"""

from __future__ import annotations

from typing import Literal

import numpy as np


from ...schema import NonNegativeFinite, PositiveFinite, SampleCount, Seed, Size, Spec
from ..registry import register_stimulus
from .gaussian_ring import declare_source, patch_population

#: Seed of the stream that estimates the covariance (as for image patches: run-independent).
COVARIANCE_SEED = 20240602


class OrientedBarsStimulusSpec(Spec):
    """Gaussian bars: ``width`` w and ``length`` ℓ (s.d., pixels), ``jitter`` of the centre
    (pixels, uniform in a square), ``contrast``."""

    kind: Literal["oriented_bars"] = "oriented_bars"
    population: str = "input"
    patch_size: Size = 10
    width: PositiveFinite = 1.0
    length: PositiveFinite = 4.0
    jitter: NonNegativeFinite = 2.0
    contrast: PositiveFinite = 1.0
    covariance_samples: SampleCount = 20000

    def populations(self) -> list[str]:
        return [self.population]


class OrientedBarsStimulus:
    """Draws bars; ``signal_covariance`` is estimated from a fixed stream, no input noise."""

    def __init__(self, spec: OrientedBarsStimulusSpec, size: int):
        self.spec = spec
        self.size = size
        self.patch_shape = (spec.patch_size, spec.patch_size)
        centre = (spec.patch_size - 1) / 2.0
        y, x = np.indices(self.patch_shape, dtype=np.float64)
        self._y, self._x = (y - centre).ravel(), (x - centre).ravel()
        samples = self.sample(np.random.default_rng(COVARIANCE_SEED),
                              np.ones(spec.covariance_samples, dtype=bool))
        self.signal_covariance = np.cov(samples, rowvar=False)
        self.noise_covariance = np.zeros((size, size))

    def sample(self, rng, sensing, dtype=np.float64):
        spec = self.spec
        sensing = np.asarray(sensing, dtype=bool)
        count = int(sensing.size)
        theta = rng.uniform(0.0, np.pi, count)
        offset = rng.uniform(-spec.jitter, spec.jitter, (count, 2))
        dx = self._x[None, :] - offset[:, :1]
        dy = self._y[None, :] - offset[:, 1:]
        across = -np.sin(theta)[:, None] * dx + np.cos(theta)[:, None] * dy
        along = np.cos(theta)[:, None] * dx + np.sin(theta)[:, None] * dy
        bars = spec.contrast * np.exp(-across**2 / (2 * spec.width**2)
                                      - along**2 / (2 * spec.length**2))
        bars = bars.reshape(sensing.shape + (self.size,)) * sensing[..., None]
        return bars.astype(dtype, copy=False)


@register_stimulus(OrientedBarsStimulusSpec)
def build_oriented_bars(name, spec, ctx) -> None:
    population = patch_population(name, spec, ctx)
    declare_source(name, spec, OrientedBarsStimulus(spec, population.size), population, ctx)

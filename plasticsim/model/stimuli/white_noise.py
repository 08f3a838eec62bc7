"""Uncorrelated random activity on a 2-D sheet: Linsker's (1986) layer A.

Every unit draws x ~ 𝒩(0, ``variance``) independently at each sample, so the input covariance
is ``variance`` · I. The sheet is ``shape`` = (rows, columns) (default: a square of the
population's size), which probes and analyses use as the input's 2-D layout.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...schema import PositiveFinite, Size, Spec
from ..arbors import sheet_side
from ..registry import register_stimulus
from .gaussian_ring import declare_source


class WhiteNoiseStimulusSpec(Spec):
    """Independent Gaussian activity of variance ``variance`` on a ``shape`` sheet."""

    kind: Literal["white_noise"] = "white_noise"
    population: str = "input"
    variance: PositiveFinite = 1.0
    shape: tuple[Size, Size] | None = None

    def populations(self) -> list[str]:
        return [self.population]


class WhiteNoiseStimulus:
    """Samples of uncorrelated activity; covariance ``variance`` · I, no input noise."""

    def __init__(self, spec: WhiteNoiseStimulusSpec, size: int, shape: tuple[int, int]):
        self.spec = spec
        self.size = size
        self.patch_shape = tuple(shape)
        self.signal_covariance = spec.variance * np.eye(size)
        self.noise_covariance = np.zeros((size, size))

    def sample(self, rng, sensing, dtype=np.float64):
        sensing = np.asarray(sensing, dtype=bool)
        values = np.sqrt(self.spec.variance) * rng.standard_normal(sensing.shape + (self.size,))
        return (values * sensing[..., None]).astype(dtype, copy=False)


@register_stimulus(WhiteNoiseStimulusSpec)
def build_white_noise(name, spec, ctx) -> None:
    key = f"stimuli.{name}"
    population = ctx.population_named(spec.population, f"{key}.population")
    shape = spec.shape
    if shape is None:
        side = sheet_side(population.size)
        if side is None:
            ctx.error(f"{key}.shape", f"{population.name!r} has {population.size} units, not a "
                      "square; give the sheet's shape: [rows, columns]")
        shape = (side, side)
    if shape[0] * shape[1] != population.size:
        ctx.error(f"{key}.shape", f"a {shape[0]}×{shape[1]} sheet has {shape[0] * shape[1]} "
                  f"units; {population.name!r} has {population.size}")
    declare_source(name, spec, WhiteNoiseStimulus(spec, population.size, shape), population,
                   ctx)

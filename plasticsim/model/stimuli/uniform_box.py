"""Inputs drawn uniformly from a box [low, high]^n: the classic test of a self-organising map,
whose units should order into a grid over the square (Kohonen 1982)."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import model_validator

from ...schema import Finite, Spec
from ..registry import register_stimulus
from .gaussian_ring import declare_source


class UniformBoxStimulusSpec(Spec):
    """x ~ U[``low``, ``high``] independently per unit; no input noise (one phase only)."""

    kind: Literal["uniform_box"] = "uniform_box"
    population: str = "input"
    low: Finite = 0.0
    high: Finite = 1.0

    @model_validator(mode="after")
    def _non_empty(self):
        if not self.high > self.low:
            raise ValueError(f"high ({self.high}) must exceed low ({self.low})")
        return self

    def populations(self) -> list[str]:
        return [self.population]


class UniformBoxStimulus:
    """The box's samples; its covariance is (high − low)²/12 · I, and it has no input noise."""

    def __init__(self, spec: UniformBoxStimulusSpec, size: int):
        self.spec = spec
        self.size = size
        self.signal_covariance = (spec.high - spec.low) ** 2 / 12.0 * np.eye(size)
        self.noise_covariance = np.zeros((size, size))

    def sample(self, rng, sensing, dtype=np.float64):
        sensing = np.asarray(sensing, dtype=bool)
        values = rng.uniform(self.spec.low, self.spec.high, sensing.shape + (self.size,))
        return (values * sensing[..., None]).astype(dtype, copy=False)


@register_stimulus(UniformBoxStimulusSpec)
def build_uniform_box(name, spec, ctx) -> None:
    population = ctx.population_named(spec.population, f"stimuli.{name}.population")
    declare_source(name, spec, UniformBoxStimulus(spec, population.size), population, ctx)

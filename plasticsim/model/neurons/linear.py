"""Linear rate units with white output noise (Linsker 1992), optionally two-compartment.

Each unit's output is Z = Σ_projections C x + ν with ν ~ 𝒩(0, σ_ν²) (``output_noise_variance``).
A population with a ``gate`` is a two-compartment unit: the basal compartment carries Z, the
apical compartment (fed by another population) multiplies it by the gate
(:mod:`plasticsim.model.gating`). A lateral anti-Hebbian projection onto the population
settles its activity to α y = Q̂⁻¹ Z, which is what Hebbian rules on its inputs see
(:mod:`plasticsim.model.rules.anti_hebbian_lateral`); the population's output, what the next
layer reads, is Z itself.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...schema import Size, Spec, Variance0
from ..gating import GateSpec, build_gate
from ..registry import register_neuron


class LinearPopulationSpec(Spec):
    """Linear rate units; ``output_noise_variance`` σ_ν² of the white output noise."""

    kind: Literal["linear"] = "linear"
    size: Size
    output_noise_variance: Variance0 = 0.0
    # Two-compartment units: an apical gate fed by another population (None: ungated).
    gate: GateSpec | None = None


def _draw_output_noise(stream: str, size: int, standard_deviation: float):
    def draw(rng, sensing, dtype):
        noise = standard_deviation * rng.standard_normal(sensing.shape + (size,))
        return {stream: noise.astype(dtype, copy=False)}
    return draw


@register_neuron(LinearPopulationSpec)
def build_linear(population, ctx) -> None:
    """drive ← Σ x Cᵀ (+ ν), then the gate (if any)."""
    spec = population.spec
    name = population.name
    if not population.incoming:
        ctx.error(population.key, "a linear population needs at least one projection from "
                  "another population (nothing drives it)")
    drive = ctx.state(f"{name}.drive", (ctx.batch_size, population.size), role="activity",
                      description="output Z = Σ C x + ν of the units (batch × units)")
    population.output = population.learning_activity = population.drive = drive
    for index, projection in enumerate(population.incoming):
        ctx.op("matmul", "drive", population=population,
               reads={"source": projection.pre.output, "weights": projection.weights},
               writes={"target": drive}, parameters={"accumulate": index > 0},
               origin=projection.key)
    if spec.output_noise_variance > 0:
        stream = f"output_noise.{name}"
        ctx.stream_group(stream, {stream: (population.size,)}, "output_noise",
                         _draw_output_noise(stream, population.size,
                                            float(np.sqrt(spec.output_noise_variance))))
        ctx.op("add_stream", "drive", population=population, writes={"target": drive},
               streams={"stream": stream}, origin=f"{population.key}.output_noise_variance")
    if spec.gate is not None:
        build_gate(population, ctx)

"""Linsker's (1986) Hebb-type rule with hard bounds, on a projection with a Gaussian arbor.

Linsker (1986, PNAS 83:7508) develops each layer of a feedforward network of linear cells
with Δc ∝ k_a + k_b (F_post − F⁰)(F_pre − F⁰′) per synapse, whose ensemble average is

    dc_j/dt = k₁ + Σ_k (Q̃_jk + k₂) A_k c_k,     c₋ ≤ c_j ≤ c₊,

c the synaptic strengths, A the arbor density (:mod:`plasticsim.model.arbors`, summing to 1:
Linsker's 1/N), Q̃ the covariance of the presynaptic activities normalised to Q̃(0) = 1, and
k₁, k₂ constants set by k_a, k_b and the offsets F⁰, F⁰′. Here the projection's weights are
the synaptic-strength density w = A ⊙ c (what the drive y = Σ w x sums; zero outside the
arbor), and each sample b contributes

    Δw_j = η A_j [ y_b x_bj / q₀ + k₁ + k₂ Σ_k w_k ],     A_j c₋ ≤ w_j ≤ A_j c₊,

with q₀ = ``input_variance`` the variance of each presynaptic activity (Q(0)), so that k₁ and
k₂ are Linsker's (quoted for Q̃(0) = 1). Its mean over samples is exactly Linsker's averaged
rule: E[y x_j] = Σ_k Q_jk w_k. The Hebbian term is the stochastic one (the engine presents
samples); the k₁ and k₂ terms are deterministic (the means Linsker's offsets produce). In w
the linear dynamics is MacKay & Miller's dw/dt = A(Q̃ + k₂J)w + k₁A
(:func:`plasticsim.analysis.mackay_miller.mackay_miller_operator`).

A mini-batch sums its samples' updates (rates are per sample), and the bounds are applied
once per step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import model_validator

from ...schema import Finite, PositiveFinite, Spec
from ..arbors import arbor_matrix
from ..registry import register_rule


class Linsker1986RuleSpec(Spec):
    """Linsker's bounded Hebb rule: constants ``k1``, ``k2`` (for Q̃(0) = 1), synaptic-strength
    ``bounds`` [c₋, c₊] and the presynaptic variance ``input_variance`` q₀ = Q(0)."""

    kind: Literal["linsker1986"] = "linsker1986"
    k1: Finite
    k2: Finite
    bounds: tuple[Finite, Finite] = (-1.0, 1.0)
    input_variance: PositiveFinite = 1.0

    @model_validator(mode="after")
    def _ordered_bounds(self):
        if not self.bounds[0] < self.bounds[1]:
            raise ValueError(f"bounds: the lower bound ({self.bounds[0]}) must be below the "
                             f"upper ({self.bounds[1]})")
        return self


@register_rule(Linsker1986RuleSpec, accepts=("feedforward",), post_kinds=("linear",),
               arbor=True)
def build_linsker1986(projection, ctx) -> None:
    """weights ← clip(weights + η A ⊙ (Σ_b y_b x_bᵀ/q₀ + B(k₁ + k₂ Σ_k w_k)), A c₋, A c₊)."""
    rule, spec = projection.spec.rule, projection.spec
    key = projection.key
    if spec.arbor is None:
        ctx.error(f"{key}.arbor", "rule linsker1986 needs an arbor (arbor: {radius: r}): "
                  "each cell learns only inside its Gaussian arbor")
    if spec.constraints:
        ctx.error(f"{key}.constraints", "rule linsker1986 bounds each synapse itself "
                  "(rule.bounds); remove the constraints")
    if projection.post.spec.output_noise_variance:
        ctx.error(f"{projection.post.key}.output_noise_variance", "Linsker's 1986 cells are "
                  "noiseless linear units; set output_noise_variance to 0")
    try:
        arbor = arbor_matrix(spec.arbor, projection.pre.size, projection.post.size)
    except ValueError as error:
        ctx.error(f"{key}.arbor", str(error))
    lower, upper = (float(b) for b in rule.bounds)
    strengths = np.clip(np.asarray(ctx.initial_value(projection.weights), dtype=np.float64),
                        lower, upper)
    ctx.set_initial(projection.weights, arbor * strengths)
    arbor_state = ctx.state(f"{projection.name}.arbor", arbor.shape, arbor, dtype="float64",
                            role="constant", description="arbor density A of each post unit "
                            "over the pre sheet (rows sum to 1)")
    ctx.op("bounded_hebbian", "constraint",
           reads={"post": projection.post.learning_activity, "pre": projection.pre.output,
                  "arbor": arbor_state},
           writes={"weights": projection.weights},
           parameters={"k1": float(rule.k1), "k2": float(rule.k2), "lower": lower,
                       "upper": upper, "inverse_variance": 1.0 / float(rule.input_variance)},
           training_only=True, rate=ctx.learning_rate(projection), origin=f"{key}.rule")
    ctx.result(f"structure/arbors/{projection.name}", lambda state: arbor,
               {"radius": float(spec.arbor.radius), "cutoff": float(spec.arbor.cutoff),
                "periodic": bool(spec.arbor.periodic), "pre": projection.pre.name,
                "post": projection.post.name, "lower": lower, "upper": upper,
                "k1": float(rule.k1), "k2": float(rule.k2),
                "input_variance": float(rule.input_variance)})

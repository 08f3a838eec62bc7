"""Kohonen's self-organising map rule (Kohonen 1982) on the projection into a ``som`` population.

Δw_i = η Σ_b h_bi (x_b − w_i): every unit moves toward the input in proportion to its
neighbourhood h_i of the winner (the post population's activity), summed over a mini-batch
(η per sample). It is a Hebbian product of the unit's activity and the input with a decay
proportional to the activity, local to each synapse.
"""

from __future__ import annotations

from typing import Literal

from ...schema import Spec
from ..registry import register_rule


class KohonenRuleSpec(Spec):
    """The self-organising map's neighbourhood-weighted Hebbian rule."""

    kind: Literal["kohonen"] = "kohonen"


@register_rule(KohonenRuleSpec, accepts=("feedforward",), post_kinds=("som",))
def build_kohonen(projection, ctx) -> None:
    """delta ← η Σ_b (h_bᵀ x_b − h_b w); weights += delta."""
    ctx.op("hebbian", "plasticity",
           reads={"post": projection.post.learning_activity, "pre": projection.pre.output,
                  "weights": projection.weights},
           writes={"delta": ctx.delta(projection)},
           parameters={"reduce": "sum", "signs": (1.0, 1.0), "decay": "linear"},
           training_only=True, rate=ctx.learning_rate(projection),
           origin=f"{projection.key}.rule")
    ctx.learns(projection)

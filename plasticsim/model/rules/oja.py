"""Oja's single-unit rule on spike counts (SAILnet's feedforward rule).

ΔQ_ik = β ⟨n_i (x_k − n_i Q_ik)⟩ (batch mean; β per batch): Hebbian growth with a decay that
bounds each unit's ‖Q_i‖, local to synapse (i, k). Zylberberg, Murphy & DeWeese (2011).
"""

from __future__ import annotations

from typing import Literal

from ...schema import Spec
from ..registry import register_rule


class OjaRuleSpec(Spec):
    """Oja's rule per unit: ΔQ = β ⟨n xᵀ − n² Q⟩."""

    kind: Literal["oja"] = "oja"


@register_rule(OjaRuleSpec, accepts=("feedforward",))
def build_oja(projection, ctx) -> None:
    """delta ← β ⟨n xᵀ − diag(n²) Q⟩; Q += delta."""
    ctx.op("hebbian", "plasticity",
           reads={"post": projection.post.learning_activity, "pre": projection.pre.output,
                  "weights": projection.weights},
           writes={"delta": ctx.delta(projection)},
           parameters={"reduce": "mean", "signs": (1.0, 1.0), "decay": "diagonal"},
           training_only=True, rate=ctx.learning_rate(projection),
           origin=f"{projection.key}.rule")
    ctx.learns(projection, summed=False)

"""Földiák's (1990) anti-Hebbian lateral inhibition (SAILnet's lateral rule).

ΔW_ij = α (⟨n_i n_j⟩ − p²) (batch mean; α per batch), then W ≥ 0 and W_ii = 0: inhibition
grows between units that fire together more often than chance (p²) would have them, and
inhibitory synapses stay inhibitory. ``target_rate`` p defaults to the post population's
homeostatic target rate.
"""

from __future__ import annotations

from typing import Literal


from ...schema import OpenFraction, Spec
from ..registry import register_rule


class FoldiakLateralRuleSpec(Spec):
    """Anti-Hebbian lateral weights W ≥ 0 with zero diagonal; p the target firing rate."""

    kind: Literal["foldiak_lateral"] = "foldiak_lateral"
    target_rate: OpenFraction | None = None


@register_rule(FoldiakLateralRuleSpec, accepts=("recurrent",), post_kinds=("lif",))
def build_foldiak_lateral(projection, ctx) -> None:
    """delta ← α (⟨n nᵀ⟩ − p²); W += delta; W ← max(W, 0) with zero diagonal."""
    rule = projection.spec.rule
    homeostasis = getattr(projection.post.spec, "homeostasis", None)
    rate = rule.target_rate
    if rate is None:
        if homeostasis is None:
            ctx.error(f"{projection.key}.rule.target_rate", "give target_rate p (or give "
                      "the post population homeostasis with a target_rate)")
        rate = homeostasis.target_rate
    counts = projection.post.output
    ctx.op("hebbian", "plasticity", reads={"post": counts, "pre": counts},
           writes={"delta": ctx.delta(projection)},
           parameters={"reduce": "mean", "signs": (1.0, 1.0), "decay": "none",
                       "offset": float(rate) ** 2},
           training_only=True, rate=ctx.learning_rate(projection),
           origin=f"{projection.key}.rule")
    ctx.learns(projection, summed=False)
    ctx.op("clip", "constraint", writes={"weights": projection.weights},
           parameters={"minimum": 0.0, "zero_diagonal": True},
           origin=f"{projection.key}.rule", after_learning=True)
    weights = projection.weights
    size = projection.post.size

    def lateral_metrics(state):
        return {"mean_lateral_weight": float(state[weights].sum() / max(size * (size - 1), 1))}
    ctx.metric(("mean_lateral_weight",), lateral_metrics, owner=projection.name)

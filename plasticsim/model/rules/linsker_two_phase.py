"""Linsker's (1992) two-phase feedforward rule: Hebbian in sensing, anti-Hebbian in noise.

ΔC = s_p η Σ_b (α y_b) x_bᵀ, where α y = Q̂_p⁻¹ Y is the post population's settled activity
(its lateral anti-Hebbian network, :mod:`.anti_hebbian_lateral`) and s_p the sign of phase p
(``phases.<phase>.sign``: +1 sensing, −1 noise-unlearning). Since E[α y xᵀ] = Q_p⁻¹ C q_p, the
two phases together follow ∂I/∂C = Q_L⁻¹ C q_L − Q_N⁻¹ C q_N exactly. Updates of a mini-batch
are summed (rates are per sample). A constraint on the projection keeps C on its budget.

``metric: input_covariance`` takes the step ΔC q̂_L⁻¹ instead (the gradient in the metric of
the input covariance, a natural gradient). It has the same fixed points but learns weak input
modes as fast as strong ones; it is *not* local (each synapse needs q̂_L⁻¹), and it needs one
output-power constraint on the projection (which supplies q̂_L). The plain local rule needs a
time ∝ 1/λ_k for a mode of input variance λ_k, prohibitive where the optimum whitens strongly.
"""

from __future__ import annotations

from typing import Literal

from ...schema import Spec
from ..registry import register_rule


class LinskerTwoPhaseRuleSpec(Spec):
    """The two-phase infomax rule; ``metric``: ``euclidean`` (local) or ``input_covariance``."""

    kind: Literal["linsker_two_phase"] = "linsker_two_phase"
    metric: Literal["euclidean", "input_covariance"] = "euclidean"


@register_rule(LinskerTwoPhaseRuleSpec, accepts=("feedforward",), post_kinds=("linear",))
def build_linsker_two_phase(projection, ctx) -> None:
    """delta ← s_p η (α y)ᵀ x (training steps); then the constraint (or weights += delta)."""
    rule = projection.spec.rule
    delta = ctx.delta(projection)
    ctx.op("hebbian", "plasticity",
           reads={"post": projection.post.learning_activity, "pre": projection.pre.output},
           writes={"delta": delta},
           parameters={"reduce": "sum", "signs": ctx.phase_signs(), "decay": "none"},
           training_only=True, rate=ctx.learning_rate(projection),
           origin=f"{projection.key}.rule")
    if rule.metric == "input_covariance":
        covariance = projection.extra.get("power_covariance")
        if covariance is None:
            ctx.error(f"{projection.key}.rule.metric", "metric: input_covariance needs "
                      "exactly one output-power constraint on the projection (it supplies "
                      "q̂_L)")
        ctx.op("solve_right", "plasticity", reads={"matrix": covariance},
               writes={"target": delta}, training_only=True, origin=f"{projection.key}.rule")
        projection.extra["natural_metric"] = True
    ctx.learns(projection, summed=True)

"""Oja's subspace rule (Oja 1989) and Sanger's generalised Hebbian algorithm (Sanger 1989).

For linear units y = W x (a ``linear`` post population without output noise):

    subspace:  ΔW = η (y xᵀ − y yᵀ W)
    Sanger:    ΔW = η (y xᵀ − LT[y yᵀ] W)      (LT: lower triangle, diagonal included)

summed over a mini-batch (η per sample). The subspace rule's stable fixed points are
orthonormal bases (W Wᵀ = I) of the span of the top-M eigenvectors of the input covariance;
Sanger's rule converges to the eigenvectors themselves, in order. Both are local: the decay
term of synapse (i, k) needs unit i's output and the outputs of the units it is wired to.

This module is the example the README uses for adding a rule: a spec class selected by
``kind``, and a builder that emits two primitives (``hebbian`` with a decay term, then
``apply_delta``).
"""

from __future__ import annotations

from typing import Literal

from ...schema import Spec
from ..registry import register_rule


class OjaSubspaceRuleSpec(Spec):
    """Oja's subspace rule; ``ordering: sanger`` gives Sanger's GHA."""

    kind: Literal["oja_subspace"] = "oja_subspace"
    ordering: Literal["none", "sanger"] = "none"


@register_rule(OjaSubspaceRuleSpec, accepts=("feedforward",), post_kinds=("linear",))
def build_oja_subspace(projection, ctx) -> None:
    """delta ← η Σ_b (y_b x_bᵀ − decay); weights += delta."""
    rule = projection.spec.rule
    if projection.post.spec.output_noise_variance != 0 or projection.post.spec.gate is not None:
        ctx.error(f"{projection.key}.rule", "Oja's rule assumes y = W x: give the post "
                  "population no output noise and no gate")
    ctx.op("hebbian", "plasticity",
           reads={"post": projection.post.learning_activity, "pre": projection.pre.output,
                  "weights": projection.weights},
           writes={"delta": ctx.delta(projection)},
           parameters={"reduce": "sum", "signs": (1.0, 1.0),
                       "decay": "sanger" if rule.ordering == "sanger" else "subspace"},
           training_only=True, rate=ctx.learning_rate(projection),
           origin=f"{projection.key}.rule")
    ctx.learns(projection, summed=True)

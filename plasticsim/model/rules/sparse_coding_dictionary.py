"""Olshausen & Field's dictionary learning with sparsenet.m's gain normalisation.

After inference (the post ``lca`` population's code a), each basis function moves along the
reconstruction error r = x − Φa it sees, a Hebbian product of the unit's activity and the
residual: ΔΦᵀ = η ⟨a rᵀ⟩ (the batch mean; η per batch).

**Gain normalisation** (sparsenet.m) keeps every coefficient's variance near
``variance_goal``: a running average v_i of ⟨a_i²⟩ (rate ``variance_rate`` per batch) sets
g_i ← g_i (v_i / goal)^γ (``gain_exponent``), and each basis function is rescaled to norm g_i.
The rule is a stable homeostat only where a unit's equilibrium variance *falls* as its gain
grows. Two things broke that with inference by neural dynamics, and both are fixed in the
``lca`` neuron model (:mod:`plasticsim.model.neurons.lca`):

1. *The penalty.* With λ|a_i| on the coefficient and a fixed threshold, a unit's drive
   g_i u_iᵀx shrinks with its gain while the threshold does not, so a unit of small gain
   is silenced: v_i(g) rises from 0, peaks and only then falls like 1/g². On the rising
   branch the rule is positive feedback. The L1 penalty there is on the contribution,
   λ Σ g_i|a_i| = λ Σ |c_i|: the code c no longer depends on g_i, v_i = ⟨c_i²⟩ / g_i² falls
   strictly with g_i, and the rule converges to g_i = (⟨c_i²⟩ / goal)^½ from any start.
2. *Unfinished dynamics.* With raw drives and a unit leak, a unit of gain g settles in
   ~1/g² time constants; a fixed number of steps leaves small-gain units short of their
   fixed point, so their variance grew with their gain. The dynamics run on the normalised
   directions, and every unit settles alike.

What remains of the gain at equilibrium: it scales every coefficient to the goal variance
and, because the Hebbian step is η r a_i = η r c_i / g_i on a function of norm g_i, it turns
each unit's direction at a rate ∝ goal / ⟨c_i²⟩: rarely used units learn faster. With the
variance average at rate r and the gain exponent γ, the loop (log g against log v) is a
damped oscillator with damping ratio (r / 8γ)^½; r = 0.05, γ = 0.02 gives 0.56
(sparsenet.m's r = 0.001 gives 0.08, which rings for thousands of batches).
"""

from __future__ import annotations

from typing import Literal

import numpy as np


from ...schema import AveragingRate, NonNegativeFinite, PositiveFinite, Spec
from ..registry import register_rule


class SparseCodingDictionaryRuleSpec(Spec):
    """Hebbian dictionary learning on the residual with gain normalisation (sparsenet.m)."""

    kind: Literal["sparse_coding_dictionary"] = "sparse_coding_dictionary"
    variance_goal: PositiveFinite = 0.1
    variance_rate: AveragingRate = 0.01
    gain_exponent: NonNegativeFinite = 0.02


@register_rule(SparseCodingDictionaryRuleSpec, accepts=("feedforward",), post_kinds=("lca",))
def build_sparse_coding_dictionary(projection, ctx) -> None:
    """residual r = x − a Φᵀ; delta ← η ⟨a rᵀ⟩; Φ += delta; v, g and ‖φ_i‖ = g_i."""
    rule = projection.spec.rule
    name, units = projection.name, projection.post.size
    code, inputs = projection.post.output, projection.pre.output
    residual = ctx.state(f"{name}.residual", (ctx.batch_size, projection.pre.size),
                         role="activity", description="reconstruction error r = x − Φa")
    gain = ctx.state(f"{name}.gain", (units,), np.ones(units), dtype="float64",
                     role="estimate", description="gains g_i = ‖φ_i‖ of the basis functions")
    variance = ctx.state(f"{name}.coefficient_variance", (units,),
                         np.full(units, rule.variance_goal), dtype="float64",
                         role="estimate", description="running average of each "
                         "coefficient's second moment ⟨a_i²⟩")
    delta = ctx.delta(projection)
    ctx.op("residual", "plasticity",
           reads={"input": inputs, "code": code, "weights": projection.weights},
           writes={"target": residual}, origin=f"{projection.key}.rule")
    ctx.op("hebbian", "plasticity", reads={"post": code, "pre": residual},
           writes={"delta": delta},
           parameters={"reduce": "mean", "signs": (1.0, 1.0), "decay": "none"},
           training_only=True, rate=ctx.learning_rate(projection),
           origin=f"{projection.key}.rule")
    ctx.learns(projection, summed=False)
    rate = ctx.constant_rate(f"{name}.variance_rate", rule.variance_rate, "per_batch")
    ctx.op("running_average", "plasticity", reads={"source": code},
           writes={"target": variance}, parameters={"form": "square"}, rate=rate,
           origin=f"{projection.key}.rule.variance_rate", after_learning=True)
    ctx.op("gain_normalisation", "plasticity", reads={"variance": variance},
           writes={"weights": projection.weights, "gain": gain},
           parameters={"goal": float(rule.variance_goal),
                       "exponent": float(rule.gain_exponent)},
           origin=f"{projection.key}.rule.gain_exponent", after_learning=True)

    def dictionary_metrics(state):
        r, x, a = state[residual], state[inputs], state[code]
        return {"relative_residual": float(np.sum(r**2) / max(np.sum(x**2), 1e-300)),
                # An "active" unit carries a coefficient above a tenth of its target s.d.,
                # so dictionaries with different gains are judged alike.
                "active_fraction": float(np.mean(np.abs(a)
                                                 > 0.1 * np.sqrt(rule.variance_goal))),
                "mean_gain": float(np.mean(state[gain]))}
    ctx.metric(("relative_residual", "active_fraction", "mean_gain"), dictionary_metrics,
               needs_step=True, owner=name)
    ctx.result(f"weights/{name}_gain", lambda state: state[gain])
    ctx.result(f"weights/{name}_coefficient_variance", lambda state: state[variance])

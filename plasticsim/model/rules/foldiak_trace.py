"""Földiák's (1991) trace rule: Hebbian learning gated by a slow trace of the post activity.

Földiák (1991, *Neural Computation* 3:194) made units invariant to the position of a moving
bar: a unit's activity y leaves a trace

    ȳ_t = (1 − δ) ȳ_{t−1} + δ y_t,

and its synapses follow the competitive-learning rule with the trace in place of y,

    Δw_ij = η ȳ_i (x_j − w_ij),

so a unit that fired a moment ago keeps learning from what the input shows now. When
successive inputs are views of the same thing as it moves (the ``sequence`` option of the
image-patch stimulus), the unit gathers every view: fed with simple cells of one orientation
and every phase, it pools across phase — a complex cell. Competition between the units
(Földiák's lateral rule on a spiking population, :mod:`.foldiak_lateral`) keeps them from all
learning the same thing. The weights stay in the convex hull of the inputs (non-negative for
spike counts) as long as η ȳ ≤ 1.

The trace runs along each sequence of the stimulus (consecutive rows of a batch) and starts
from ȳ = 0 at each sequence's first frame, so no trace leaks from one image to the next. The
update is the mean over the batch (η per batch mean). ``trace_rate`` δ: the trace's time
constant is about 1/δ frames; Földiák used δ = 0.2.
"""

from __future__ import annotations

from typing import Literal

from ...schema import OpenFraction, Spec
from ..registry import register_rule


class FoldiakTraceRuleSpec(Spec):
    """Trace rule Δw = η ȳ (x − w), ȳ ← (1 − δ) ȳ + δ y along each stimulus sequence."""

    kind: Literal["foldiak_trace"] = "foldiak_trace"
    trace_rate: OpenFraction = 0.2          # δ: the trace's time constant is ≈ 1/δ frames


@register_rule(FoldiakTraceRuleSpec, accepts=("feedforward",), post_kinds=("lif",))
def build_foldiak_trace(projection, ctx) -> None:
    """trace ← ȳ of the post counts per sequence; delta ← η ⟨ȳ xᵀ − diag(ȳ) w⟩; w += delta."""
    post = projection.post
    key = f"{projection.key}.rule"
    source = ctx.upstream_input(post, None, key).source
    length = getattr(source, "sequence_length", 1)
    if length < 2:
        ctx.error(key, "the trace rule learns from temporally coherent input: give the "
                  "image-patch stimulus a sequence (e.g. sequence: {frames: 10, speed: 1.0}), "
                  "or the trace spans a single sample and the rule is plain competitive "
                  "learning")
    trace = ctx.state(f"{projection.name}.trace", (ctx.batch_size, post.size),
                      role="activity", description=f"trace ȳ of {post.name}'s activity along "
                      "each stimulus sequence (batch × units)", units="spikes")
    ctx.op("trace", "plasticity", reads={"source": post.learning_activity},
           writes={"target": trace},
           parameters={"sequence_length": int(length),
                       "rate": float(projection.spec.rule.trace_rate)},
           training_only=True, origin=key)
    ctx.op("hebbian", "plasticity",
           reads={"post": trace, "pre": projection.pre.output, "weights": projection.weights},
           writes={"delta": ctx.delta(projection)},
           parameters={"reduce": "mean", "signs": (1.0, 1.0), "decay": "linear"},
           training_only=True, rate=ctx.learning_rate(projection), origin=key)
    ctx.learns(projection, summed=False)

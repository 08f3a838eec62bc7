"""Linsker's (1992) lateral network: anti-Hebbian lateral weights F = I − αQ̂, one Q̂ per phase.

The post population's drive Y settles through its lateral network to α y = Q̂_p⁻¹ Y
(:mod:`plasticsim.model.settling`; slot ``settle``, training steps only: nothing uses it in
warm-up). Q̂_p is a running average of the output covariance, updated only in phase p:
Q̂_p ← Q̂_p + ε_B (YᵀY/B − Q̂_p) — an anti-Hebbian term on F plus decay. ε is the projection's
learning rate (per sample; ε_B = 1 − (1 − ε)^B per mini-batch of B samples). Q̂ starts at
(σ_ν² + 1) I, the output noise plus a unit of signal; a warm-up refines it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...schema import Spec
from ..registry import PHASE_NAMES, register_rule
from ..settling import SettlingSpec, settling_alpha, spectral_radius


class AntiHebbianLateralRuleSpec(Spec):
    """Anti-Hebbian lateral weights with one output-covariance estimate per phase."""

    kind: Literal["anti_hebbian_lateral"] = "anti_hebbian_lateral"


@register_rule(AntiHebbianLateralRuleSpec, accepts=("recurrent",), post_kinds=("linear",),
               weights=False, settling=True)
def build_anti_hebbian_lateral(projection, ctx) -> None:
    """Settle the post population (slot ``settle``) and learn Q̂ of the current phase."""
    post = projection.post
    name, size = projection.name, post.size
    settling = projection.spec.settling or SettlingSpec()
    key = f"{projection.key}.settling"
    start = (post.spec.output_noise_variance + 1.0) * np.eye(size)
    if not isinstance(settling.alpha, str) and settling.method != "exact":
        limit = 2.0 / float(np.linalg.eigvalsh(start).max())
        if settling.alpha >= limit:
            ctx.error(f"{key}.alpha", f"alpha = {settling.alpha} cannot converge: Jacobi/Euler "
                      f"settling needs 0 < α < 2/λ_max(Q̂) = {limit:.4g} for the initial Q̂ "
                      "(use 'gershgorin' or 'trace' to stay safe as Q̂ grows)")
    estimate = ctx.state(f"{name}.Q", (2, size, size), np.stack([start, start]),
                         role="estimate", description="running output-covariance estimates "
                         "Q̂ of the sensing and noise-unlearning phases")
    residual = ctx.state(f"{name}.residual", (), np.zeros(()), dtype="float64",
                         role="monitor", description="largest relative settling residual "
                         "since the last record")
    settled = ctx.state(f"{post.name}.settled", (ctx.batch_size, size), role="activity",
                        description="settled lateral activity α y = Q̂⁻¹ Y (batch × units)")
    post.learning_activity = settled
    ctx.op("settle", "settle", population=post,
           reads={"drive": post.drive, "estimate": estimate},
           writes={"target": settled, "residual": residual},
           parameters={"method": settling.method, "iterations": int(settling.iterations),
                       "tolerance": float(settling.tolerance),
                       "alpha": settling.alpha if isinstance(settling.alpha, str)
                       else float(settling.alpha), "step": float(settling.step)},
           training_only=True, origin=key)
    ctx.op("running_average", "plasticity", reads={"source": post.drive},
           writes={"target": estimate}, parameters={"form": "outer", "phase_indexed": True},
           rate=ctx.learning_rate(projection, kind="running_average"),
           origin=f"{projection.key}.rule")

    def alphas(state):
        return np.array([settling_alpha(q, settling.alpha) for q in state[estimate]])

    def lateral_metrics(state):
        radii = [spectral_radius(q, a) for q, a in zip(state[estimate], alphas(state))]
        return {"spectral_radius_F_sensing": radii[0],
                "spectral_radius_F_noise_unlearning": radii[1],
                "settling_residual": float(state[residual])}
    ctx.metric(("spectral_radius_F_sensing", "spectral_radius_F_noise_unlearning",
                "settling_residual"), lateral_metrics,
               divergence=("spectral_radius_F_sensing", "spectral_radius_F_noise_unlearning"),
               resets=(residual,), owner=name)

    def lateral_results(state):
        a = alphas(state)
        identity = np.eye(size)
        return {f"Q_{PHASE_NAMES[p]}": state[estimate][p] for p in (0, 1)} | {
            f"F_{PHASE_NAMES[p]}": identity - a[p] * state[estimate][p] for p in (0, 1)} | {
            "alpha": a}
    ctx.result(f"weights/{name}", lateral_results, {"phases": list(PHASE_NAMES)})
    ctx.info.setdefault("settling", {})[post.name] = {
        "projection": name, "tolerance": float(settling.tolerance),
        "method": settling.method}

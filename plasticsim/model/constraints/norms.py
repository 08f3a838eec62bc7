"""Weight-norm and output-power budgets on a feedforward projection (MI grows without bound
with ‖C‖ otherwise).

``unit_weight_norm``: each row ‖c_i‖² = value; ``total_weight_norm``: ‖C‖²_F = M·value;
``unit_output_power``: each c_i q_L c_iᵀ = value; ``total_output_power``: tr(C q_L Cᵀ) =
M·value. Each step, the weight update ΔC is first projected onto the budget's tangent plane,
then C + ΔC is rescaled onto the budget. The projection matters for power budgets: rescaling
alone would converge to points where ∂I/∂C ∥ C (the weight-norm condition) instead of
∂I/∂C ∥ C q_L. Power budgets need the sensing-phase input covariance q_L:
``input_covariance: running`` keeps a running average with rate ``averaging_rate`` per sample
(what a neuron could know; give the schedule a warm-up of a few 1/rate samples); ``exact``
uses the stimulus's analytic covariance (input populations only).
"""

from __future__ import annotations

from typing import Literal

import numpy as np


from ...schema import AveragingRate, PositiveFinite, Spec
from ..registry import SENSING, register_constraint


class WeightNormConstraintSpec(Spec):
    """‖c_i‖² = value per unit (``unit_weight_norm``), or ‖C‖²_F = M·value in total."""

    kind: Literal["unit_weight_norm"] = "unit_weight_norm"
    value: PositiveFinite = 1.0


class TotalWeightNormConstraintSpec(WeightNormConstraintSpec):
    kind: Literal["total_weight_norm"] = "total_weight_norm"


class OutputPowerConstraintSpec(Spec):
    """c_i q_L c_iᵀ = value per unit (``unit_output_power``), or tr(C q_L Cᵀ) = M·value."""

    kind: Literal["unit_output_power"] = "unit_output_power"
    value: PositiveFinite = 1.0
    input_covariance: Literal["running", "exact"] = "running"
    averaging_rate: AveragingRate = 0.0002


class TotalOutputPowerConstraintSpec(OutputPowerConstraintSpec):
    kind: Literal["total_output_power"] = "total_output_power"


def budget_kind(kind: str) -> str:
    """``weight`` or ``power``."""
    return "weight" if kind.endswith("weight_norm") else "power"


def constrain(C: np.ndarray, delta: np.ndarray | None, budget: str, per_unit: bool,
              value: float, covariance: np.ndarray | None = None, natural: bool = False
              ) -> np.ndarray:
    """C + ΔC projected on the budget's tangent plane and rescaled onto the budget (in place).

    Parameters
    ----------
    C : ndarray (M, N)
        Weights, changed in place.
    delta : ndarray (M, N) or None
        The update (changed in place: its component along the budget's normal is removed);
        None only rescales.
    budget : {"weight", "power"}
    per_unit : bool
        One budget per row, or one in total (M·value).
    value : float
    covariance : ndarray (N, N), optional
        q_L for power budgets.
    natural : bool
        ΔC is a natural-gradient step (in the metric of q_L), where the budget's normal is C.

    Returns
    -------
    ndarray
        C.
    """
    def cost_gradient(weights):  # the gradient of each unit's cost, up to a factor 2
        return weights if budget == "weight" else weights @ covariance

    if delta is not None:
        gradient = cost_gradient(C)
        direction = C if natural else gradient
        if per_unit:
            coefficient = np.sum(delta * gradient, axis=1) / np.sum(direction * gradient, axis=1)
            delta -= coefficient[:, None] * direction
        else:
            delta -= (np.sum(delta * gradient) / np.sum(direction * gradient)) * direction
        C += delta
    cost = np.sum(C * cost_gradient(C), axis=1)
    if per_unit:
        C *= np.sqrt(value / cost)[:, None]
    else:
        C *= np.sqrt(C.shape[0] * value / np.sum(cost))
    return C


@register_constraint(WeightNormConstraintSpec, TotalWeightNormConstraintSpec,
                     OutputPowerConstraintSpec, TotalOutputPowerConstraintSpec)
def build_norm_constraint(constraint, index: int, projection, ctx) -> dict:
    """Declare q̂_L (power budgets) and its running average; return how to apply the budget.

    Returns
    -------
    dict
        ``budget``, ``per_unit``, ``value`` and ``covariance`` (state name or None), used for
        the ``constrain`` operation and for rescaling the initial weights.
    """
    key = f"{projection.key}.constraints.{index}"
    budget = budget_kind(constraint.kind)
    covariance = None
    if budget == "power":
        size = projection.pre.size
        if constraint.input_covariance == "exact":
            exact = projection.pre.exact_sensing_covariance
            if exact is None:
                ctx.error(f"{key}.input_covariance", "input_covariance: exact needs a "
                          "stimulus with a known covariance on the projection's pre "
                          f"population ({projection.pre.name!r} has none)")
            initial = np.array(exact, dtype=np.float64)
        else:
            initial = np.eye(size)
        covariance = ctx.state(f"{projection.name}.input_covariance_{index}", (size, size),
                               initial, dtype="float64", role="estimate",
                               description="sensing-phase input covariance q̂_L of the "
                               "power budget")
        if constraint.input_covariance == "running":
            rate = ctx.constant_rate(f"{projection.name}.input_covariance_{index}",
                                     constraint.averaging_rate, "running_average")
            ctx.op("running_average", "plasticity", reads={"source": projection.pre.output},
                   writes={"target": covariance}, parameters={"form": "outer"},
                   phases=(SENSING,), rate=rate, origin=f"{key}.averaging_rate",
                   first=True)
        projection.extra.setdefault("power_covariance", covariance)
    return {"budget": budget, "per_unit": constraint.kind.startswith("unit_"),
            "value": float(constraint.value), "covariance": covariance}

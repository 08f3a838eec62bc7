"""Weight constraints on a feedforward projection, registered under their YAML ``kind``.

Each constraint keeps C on a surface (a norm or a power budget, per unit or in total). An
update ΔC is first projected onto the surface's tangent plane, then the result is rescaled
onto the surface. The projection matters for power budgets: rescaling alone would converge to
points where ∂I/∂C ∥ C (the weight-norm condition) instead of ∂I/∂C ∥ C q_L.
"""

from __future__ import annotations

import numpy as np

from .schedules import batch_rate
from .spec import ConstraintSpec

CONSTRAINTS: dict[str, type] = {}


def register_constraint(*kinds):
    def decorator(cls):
        for kind in kinds:
            CONSTRAINTS[kind] = cls
        return cls
    return decorator


def build_constraint(spec: ConstraintSpec, n_inputs: int, exact_input_covariance=None):
    """Build the constraint object for a spec."""
    return CONSTRAINTS[spec.kind](spec, n_inputs, exact_input_covariance)


class _Constraint:
    def __init__(self, spec: ConstraintSpec, n_inputs: int, exact_input_covariance=None):
        self.spec = spec
        self.per_unit = spec.per_unit

    def observe(self, inputs: np.ndarray, phase: int) -> None:
        """Update running statistics from a batch of inputs (phase 0 = sensing)."""

    def normal(self, C):  # the gradient of each unit's (or the total) cost, up to a factor 2
        raise NotImplementedError

    def cost(self, C):
        raise NotImplementedError

    def apply(self, C: np.ndarray, delta: np.ndarray | None, metric: str = "euclidean"
              ) -> np.ndarray:
        """Return C + ΔC projected on the tangent plane, rescaled onto the budget (in place).

        With ``metric="input_covariance"`` (power constraints) ΔC is a natural-gradient step
        and is projected in that metric, where the budget's normal is C itself.
        """
        if delta is not None:
            # Remove the component that changes the cost to first order: along ``direction``
            # (the cost's gradient in the chosen metric), measured with ``gradient``.
            gradient = self.normal(C)
            direction = gradient if metric == "euclidean" else C
            if self.per_unit:
                coefficient = (np.sum(delta * gradient, axis=1)
                               / np.sum(direction * gradient, axis=1))
                delta -= coefficient[:, None] * direction
            else:
                delta -= (np.sum(delta * gradient) / np.sum(direction * gradient)) * direction
            C += delta
        cost = self.cost(C)
        if self.per_unit:
            C *= np.sqrt(self.spec.value / cost)[:, None]
        else:
            C *= np.sqrt(C.shape[0] * self.spec.value / np.sum(cost))
        return C


@register_constraint("unit_weight_norm", "total_weight_norm")
class WeightNormConstraint(_Constraint):
    """‖c_i‖² = value per unit, or ‖C‖²_F = M·value in total."""

    def normal(self, C):
        return C

    def cost(self, C):
        return np.sum(C * C, axis=1)


@register_constraint("unit_output_power", "total_output_power")
class OutputPowerConstraint(_Constraint):
    """c_i q_L c_iᵀ = value per unit, or tr(C q_L Cᵀ) = M·value in total.

    q_L is the sensing-phase input covariance: a running average (rate ``averaging_rate``)
    or, with ``input_covariance: exact``, the stimulus's analytic covariance.
    """

    def __init__(self, spec, n_inputs, exact_input_covariance=None):
        super().__init__(spec, n_inputs, exact_input_covariance)
        if spec.input_covariance == "exact":
            if exact_input_covariance is None:
                raise ValueError("input_covariance: exact needs a stimulus with a known "
                                 "covariance")
            self.input_covariance = np.array(exact_input_covariance, dtype=float)
            self.running = False
        else:
            self.input_covariance = np.eye(n_inputs)
            self.running = True

    def observe(self, inputs, phase):
        if self.running and phase == 0:
            rate = batch_rate(self.spec.averaging_rate, inputs.shape[0])
            self.input_covariance += rate * (inputs.T @ inputs / inputs.shape[0]
                                             - self.input_covariance)

    def normal(self, C):
        return C @ self.input_covariance

    def precondition(self, delta):
        """ΔC q̂_L⁻¹: the step in the metric of the input covariance (natural gradient)."""
        return np.linalg.solve(self.input_covariance, delta.T).T

    def cost(self, C):
        return np.einsum("ij,jk,ik->i", C, self.input_covariance, C)

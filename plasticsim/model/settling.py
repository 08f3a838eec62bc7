"""Lateral settling: y(∞) of the lateral network, with α y(∞) = Q̂⁻¹ Y.

Jacobi iteration y ← Y + F y with F = I − αQ̂ converges iff 0 < α < 2/λ_max(Q̂)
(Linsker 1992). Euler integration of τ dy/dt = Y − αQ̂ y reaches the same fixed point.
The functions below work on mini-batches: Y has shape (batch, M) and Q̂ is symmetric. They
are the reference the backends' ``settle`` primitive is checked against.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field, model_validator

from ..schema import NonNegativeFinite, PositiveFinite, Spec

RESIDUAL_CHECK_EVERY = 10  # iterations between convergence checks (a norm costs an iteration)
#: Upper bound on settling iterations: more than this per sample is never useful and would
#: look like a hang.
MAX_ITERATIONS = 1_000_000


class SettlingSpec(Spec):
    """How the lateral network settles to α y = Q̂⁻¹ Y.

    ``jacobi``: y ← Y + F y with F = I − αQ̂; ``euler``: τ dy/dt = Y − αQ̂ y integrated with
    step ``dt``; ``exact``: a linear solve (reference). Iteration stops after ``iterations``
    or once the relative residual ‖Y − αQ̂y‖/‖Y‖ ≤ ``tolerance``.

    ``alpha``: ``gershgorin`` (1 / max absolute row sum of Q̂ ≥ 1/λ_max, always convergent and
    faster than ``trace``), ``trace`` (1/tr Q̂, Linsker's safe choice) or a fixed number (which
    diverges if α ≥ 2/λ_max(Q̂): the run then stops with an error).
    """

    method: Literal["jacobi", "euler", "exact"] = "jacobi"
    iterations: Annotated[int, Field(gt=0, le=MAX_ITERATIONS)] = 200
    tolerance: NonNegativeFinite = 1e-8
    alpha: Union[Literal["gershgorin", "trace"], PositiveFinite] = "gershgorin"
    dt: PositiveFinite = 0.5
    tau: PositiveFinite = 1.0

    @model_validator(mode="after")
    def _euler_step_is_stable(self):
        if self.method == "euler" and self.dt / self.tau > 1.0:
            raise ValueError(f"euler settling needs dt/tau ≤ 1 to converge with a safe α, "
                             f"got dt={self.dt}, tau={self.tau}")
        return self

    @property
    def step(self) -> float:
        """h of y ← y + h (Y − αQ̂ y): 1 for Jacobi, dt/τ for Euler."""
        return 1.0 if self.method == "jacobi" else self.dt / self.tau


def settling_alpha(Q: np.ndarray, alpha) -> float:
    """α for the lateral weights F = I − αQ̂.

    ``gershgorin``: 1/max_i Σ_j |Q̂_ij| (≥ 1/λ_max, so αλ_max ≤ 1 < 2); ``trace``: 1/tr Q̂;
    a number: used as given.
    """
    if alpha == "gershgorin":
        return 1.0 / float(np.max(np.sum(np.abs(Q), axis=1)))
    if alpha == "trace":
        return 1.0 / float(np.trace(Q))
    return float(alpha)


def spectral_radius(Q: np.ndarray, alpha: float) -> float:
    """ρ(F) for F = I − αQ̂ (Q̂ symmetric)."""
    eigenvalues = np.linalg.eigvalsh(Q)
    return float(np.max(np.abs(1.0 - alpha * eigenvalues)))


def settle(Y: np.ndarray, Q: np.ndarray, method: str, iterations: int, tolerance: float,
           alpha, step: float):
    """Settle the lateral network for a batch of drives.

    Parameters
    ----------
    Y : ndarray, shape (batch, M)
        Feedforward drive (with output noise).
    Q : ndarray, shape (M, M)
        Running estimate Q̂ for the current phase.
    method : {"jacobi", "euler", "exact"}
    iterations, tolerance, alpha, step
        As :class:`SettlingSpec` (``step``: :attr:`SettlingSpec.step`).

    Returns
    -------
    scaled_activity : ndarray, shape (batch, M)
        α y(∞) ≈ Q̂⁻¹ Y, the quantity the feedforward rule uses.
    residual : float
        ‖Y − αQ̂ y‖ / ‖Y‖ at the end (0 for ``exact`` up to rounding).
    """
    if method == "exact":
        scaled = np.linalg.solve(Q, Y.T).T
        return scaled, _relative_residual(Y, scaled @ Q)
    alpha = settling_alpha(Q, alpha)
    alpha_Q = alpha * Q
    y = Y.copy()
    residual = np.inf
    for iteration in range(1, iterations + 1):
        # y ← y + h (Y − αQ̂ y); h = 1 is Jacobi's y ← Y + F y.
        y += step * (Y - y @ alpha_Q)
        if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == iterations:
            residual = _relative_residual(Y, y @ alpha_Q)
            if not np.isfinite(residual) or residual <= tolerance:
                break
    return alpha * y, residual


def _relative_residual(Y, reconstructed):
    return float(np.linalg.norm(Y - reconstructed) / max(np.linalg.norm(Y), 1e-300))

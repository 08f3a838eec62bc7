"""Lateral settling: y(∞) of the lateral network, with α y(∞) = Q̂⁻¹ Y.

Jacobi iteration y ← Y + F y with F = I − αQ̂ converges iff 0 < α < 2/λ_max(Q̂)
(Linsker 1992). Euler integration of τ dy/dt = Y − αQ̂ y reaches the same fixed point.
All functions work on mini-batches: Y has shape (batch, M) and Q̂ is symmetric.
"""

from __future__ import annotations

import numpy as np

from .spec import SettlingSpec

RESIDUAL_CHECK_EVERY = 10  # iterations between convergence checks (a norm costs an iteration)


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


def settle(Y: np.ndarray, Q: np.ndarray, settling: SettlingSpec):
    """Settle the lateral network for a batch of drives.

    Parameters
    ----------
    Y : ndarray, shape (batch, M)
        Feedforward drive (with output noise).
    Q : ndarray, shape (M, M)
        Running estimate Q̂ for the current phase.
    settling : SettlingSpec

    Returns
    -------
    scaled_activity : ndarray, shape (batch, M)
        α y(∞) ≈ Q̂⁻¹ Y, the quantity the feedforward rule uses.
    residual : float
        ‖Y − αQ̂ y‖ / ‖Y‖ at the end (0 for ``exact`` up to rounding).
    alpha : float
    """
    alpha = settling_alpha(Q, settling.alpha)
    if settling.method == "exact":
        scaled = np.linalg.solve(Q, Y.T).T
        return scaled, _relative_residual(Y, scaled @ Q), alpha
    step = 1.0 if settling.method == "jacobi" else settling.dt / settling.tau
    alpha_Q = alpha * Q
    y = Y.copy()
    residual = np.inf
    for iteration in range(1, settling.iterations + 1):
        # y ← y + h (Y − αQ̂ y); h = 1 is Jacobi's y ← Y + F y.
        y += step * (Y - y @ alpha_Q)
        if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == settling.iterations:
            residual = _relative_residual(Y, y @ alpha_Q)
            if not np.isfinite(residual) or residual <= settling.tolerance:
                break
    return alpha * y, residual, alpha


def _relative_residual(Y, reconstructed):
    return float(np.linalg.norm(Y - reconstructed) / max(np.linalg.norm(Y), 1e-300))

"""Mutual information of a linear Gaussian network and its analytic infomax optimum.

Notation follows Linsker (1992): input X = S + N with signal covariance ``q_S`` and input
noise covariance ``q_N``; output Z = C X + ν with output noise covariance ``r·I``.
``q_L = q_S + q_N`` is the covariance seen in the sensing phase.

    I(Z; S) = ½ ln det(C q_L Cᵀ + r) − ½ ln det(C q_N Cᵀ + r)      (nats)

Two budgets bound C (MI grows without bound with ‖C‖):

``weight``  Σ_ij C_ij² = W (total), or each row ‖c_i‖² = W/M (per unit);
``power``   tr(C q_L Cᵀ) = P (total), or each c_i q_L c_iᵀ = P/M (per unit).

Per-unit budgets reach the same optimum as total ones (a rotation of the outputs spreads the
budget evenly), so one optimum serves both.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConvergenceError

NATS_PER_BIT = np.log(2.0)
BUDGET_KINDS = ("weight", "power")
#: Steps of 5 in ln μ that look for the lower end of the multiplier's bracket (e^-1000).
MAX_BRACKET_STEPS = 200
#: Iterations of the multiplier's root search.
MAX_ROOT_ITERATIONS = 500


def mutual_information(C: np.ndarray, q_signal: np.ndarray, q_noise: np.ndarray,
                       output_noise_variance: float) -> float:
    """Closed-form I(Z; S) in nats for Z = C(S + N) + ν.

    Parameters
    ----------
    C : ndarray, shape (M, N)
        Feedforward weights (post × pre).
    q_signal, q_noise : ndarray, shape (N, N)
        Covariances of the signal S and the input noise N.
    output_noise_variance : float
        Variance r of the white output noise ν.

    Examples
    --------
    >>> mutual_information(np.eye(1), np.eye(1), 0 * np.eye(1), 1.0)  # ½ ln 2
    0.34657359027997264
    """
    r_identity = output_noise_variance * np.eye(C.shape[0])
    q_sensing = C @ (q_signal + q_noise) @ C.T + r_identity
    q_noise_out = C @ q_noise @ C.T + r_identity
    _, logdet_sensing = np.linalg.slogdet(q_sensing)
    _, logdet_noise = np.linalg.slogdet(q_noise_out)
    return 0.5 * (logdet_sensing - logdet_noise)


def mutual_information_gradient(C, q_signal, q_noise, output_noise_variance):
    """∂I/∂C = Q_L⁻¹ C q_L − Q_N⁻¹ C q_N (the quantity the two-phase local rule follows)."""
    q_sensing_in = q_signal + q_noise
    r_identity = output_noise_variance * np.eye(C.shape[0])
    Q_L = C @ q_sensing_in @ C.T + r_identity
    Q_N = C @ q_noise @ C.T + r_identity
    return np.linalg.solve(Q_L, C @ q_sensing_in) - np.linalg.solve(Q_N, C @ q_noise)


@dataclass(frozen=True)
class InfomaxOptimum:
    """The analytic optimum for a budget.

    Attributes
    ----------
    mutual_information : float
        I* in nats.
    gains : ndarray, shape (N,)
        Optimal mode gains g_k (C = U diag(√g) Vᵀ), in the order of ``eigenvectors``'s columns.
    eigenvectors : ndarray, shape (N, N)
        Shared eigenbasis V (columns) of q_S and q_N; ``None`` for the gradient-ascent optimum.
    weights : ndarray, shape (M, N)
        One optimal C, with every row carrying an equal share of the budget.
    budget_kind : str
        ``"weight"`` or ``"power"``.
    method : str
        ``"water_filling"`` (commuting covariances) or ``"projected_gradient"``.
    """

    mutual_information: float
    gains: np.ndarray | None
    eigenvectors: np.ndarray | None
    weights: np.ndarray
    budget_kind: str
    method: str

    @property
    def mutual_information_bits(self) -> float:
        return self.mutual_information / NATS_PER_BIT


def covariances_commute(q_signal, q_noise, tolerance=1e-9) -> bool:
    """True when q_S q_N = q_N q_S (to ``tolerance`` relative), so they share eigenvectors."""
    commutator = q_signal @ q_noise - q_noise @ q_signal
    scale = np.linalg.norm(q_signal) * np.linalg.norm(q_noise) + 1e-300
    return np.linalg.norm(commutator) <= tolerance * scale


def _shared_eigenbasis(q_signal, q_noise):
    """Eigenvectors shared by commuting q_S, q_N, and both spectra in that basis."""
    # A generic combination has non-degenerate eigenvalues wherever q_S and q_N can be told
    # apart, so its eigenvectors diagonalise both.
    _, V = np.linalg.eigh(q_signal + np.pi * q_noise)
    signal_eigenvalues = np.einsum("ik,ij,jk->k", V, q_signal, V)
    noise_eigenvalues = np.einsum("ik,ij,jk->k", V, q_noise, V)
    return V, np.clip(signal_eigenvalues, 0.0, None), np.clip(noise_eigenvalues, 1e-300, None)


def _gains_for_multiplier(mu, a, b, c, budget_kind):
    """Stationary gains g_k(μ) of the Lagrangian of the budgeted MI, clipped at zero."""
    numerator_scale = a if budget_kind == "weight" else 1.0
    discriminant = c**2 * (a - b) ** 2 + 2.0 * numerator_scale * b * c * (a - b) / mu
    g = (-c * (a + b) + np.sqrt(np.clip(discriminant, 0.0, None))) / (2.0 * a * b)
    return np.clip(g, 0.0, None)


def water_filling_gains(signal_eigenvalues, noise_eigenvalues, output_noise_variance,
                        budget, budget_kind, n_outputs):
    """Optimal mode gains under a total budget with at most ``n_outputs`` active modes.

    Parameters
    ----------
    signal_eigenvalues, noise_eigenvalues : ndarray, shape (N,)
        λ_k^S and λ_k^N in a shared eigenbasis.
    output_noise_variance : float
        c = σ_ν².
    budget : float
        W (Σ g_k) for ``"weight"``, P (Σ g_k a_k) for ``"power"``.
    budget_kind : {"weight", "power"}
    n_outputs : int
        M: C has rank ≤ M, so at most M gains are non-zero.

    Returns
    -------
    ndarray, shape (N,)
    """
    if budget_kind not in BUDGET_KINDS:
        raise ValueError(f"budget_kind must be one of {BUDGET_KINDS}, got {budget_kind!r}")
    a = signal_eigenvalues + noise_eigenvalues
    b = noise_eigenvalues
    c = float(output_noise_variance)
    cost = np.ones_like(a) if budget_kind == "weight" else a
    # Marginal value of the first unit of budget in mode k: dI/dg at g=0 divided by its cost.
    marginal = (a - b) / cost
    candidates = np.flatnonzero(marginal > 0)
    candidates = candidates[np.argsort(-marginal[candidates], kind="stable")][:n_outputs]
    gains = np.zeros_like(a)
    if candidates.size == 0:
        return gains
    ak, bk, costk = a[candidates], b[candidates], cost[candidates]
    if c <= 0.0:
        # Without output noise I = ½ Σ ln(a_k / b_k) over the active modes whatever their
        # (positive) gains: the limit c → 0 of the water-filling solution; spend the budget
        # evenly (the multiplier μ of the Lagrangian is then infinite and cannot be bracketed).
        gains[candidates] = budget / (candidates.size * costk)
        return gains

    def spent(log_mu):
        return np.sum(costk * _gains_for_multiplier(np.exp(log_mu), ak, bk, c, budget_kind))

    # μ is the marginal MI per unit budget: ½(a−b)/c/cost bounds it from above.
    log_hi = np.log(np.max(0.5 * (ak - bk) / (c * costk))) + 1.0
    log_lo = log_hi - 1.0
    for _ in range(MAX_BRACKET_STEPS):
        if not np.isfinite(log_lo) or spent(log_lo) >= budget:
            break
        log_lo -= 5.0
    if not (np.isfinite(log_lo) and np.isfinite(log_hi)) or not spent(log_lo) >= budget:
        raise ConvergenceError(f"water-filling optimum: no Lagrange multiplier spends the "
                               f"budget {budget:g} after {MAX_BRACKET_STEPS} bracketing steps "
                               f"(output noise variance {c:g}); the optimum is not computed")
    try:
        from scipy import optimize  # on use: slow to import
        log_mu = optimize.brentq(lambda x: spent(x) - budget, log_lo, log_hi, xtol=1e-14,
                                 rtol=1e-14, maxiter=MAX_ROOT_ITERATIONS)
    except (ValueError, RuntimeError) as error:
        raise ConvergenceError(f"water-filling optimum: the root search for the Lagrange "
                               f"multiplier stopped ({error})") from None
    gains[candidates] = _gains_for_multiplier(np.exp(log_mu), ak, bk, c, budget_kind)
    return gains


def equal_diagonal_rotation(diagonal):
    """Orthogonal U such that U diag(d) Uᵀ has a constant diagonal (each row gets mean(d)).

    Schur–Horn guarantees one exists; this builds it from M−1 plane (Givens) rotations, each
    moving one entry of the diagonal to the mean (Bendel & Mickey 1978).

    Parameters
    ----------
    diagonal : ndarray, shape (M,)

    Returns
    -------
    ndarray, shape (M, M)
    """
    d = np.asarray(diagonal, dtype=float)
    m = d.size
    target = d.mean()
    U = np.eye(m)
    A = np.diag(d)
    for _ in range(m - 1):
        diag = np.diag(A)
        above = np.flatnonzero(diag > target + 1e-12 * (abs(target) + 1))
        below = np.flatnonzero(diag < target - 1e-12 * (abs(target) + 1))
        if above.size == 0 or below.size == 0:
            break
        i, j = above[0], below[0]

        def diagonal_i(theta):
            c, s = np.cos(theta), np.sin(theta)
            return c * c * A[i, i] + 2 * c * s * A[i, j] + s * s * A[j, j] - target

        # diagonal_i goes from A_ii ≥ t (θ=0) to A_jj ≤ t (θ=π/2): a root lies between.
        from scipy import optimize  # on use: slow to import
        theta = optimize.brentq(diagonal_i, 0.0, np.pi / 2, xtol=1e-15)
        G = np.eye(m)
        c, s = np.cos(theta), np.sin(theta)
        G[i, i], G[i, j], G[j, i], G[j, j] = c, s, -s, c
        A = G @ A @ G.T
        U = G @ U
    return U


def optimal_weights_from_gains(gains, eigenvectors, n_outputs, cost=None):
    """C = U diag(√g) Vᵀ with U chosen so that every output carries an equal share of the budget.

    ``cost`` is the per-mode cost of one unit of gain (1 for a weight budget, a_k for a power
    budget); the rows of the result then have equal norm or equal output power respectively.
    """
    cost = np.ones_like(gains) if cost is None else cost
    active = np.argsort(-gains, kind="stable")[:n_outputs]
    C_modes = np.sqrt(gains[active])[:, None] * eigenvectors[:, active].T  # (M, N)
    return equal_diagonal_rotation(gains[active] * cost[active]) @ C_modes


def infomax_optimum(q_signal, q_noise, output_noise_variance, n_outputs, budget,
                    budget_kind="weight", method="auto", rng=None) -> InfomaxOptimum:
    """Maximum of I(Z; S) over C with M rows under a total weight or power budget.

    Parameters
    ----------
    q_signal, q_noise : ndarray, shape (N, N)
    output_noise_variance : float
    n_outputs : int
        M.
    budget : float
        Total budget (W or P). For per-unit constraints pass M × the per-unit value.
    budget_kind : {"weight", "power"}
    method : {"auto", "water_filling", "projected_gradient"}
        ``auto`` uses water-filling when the covariances commute.
    rng : numpy.random.Generator, optional
        Start point of projected gradient ascent.

    Returns
    -------
    InfomaxOptimum
    """
    if method == "auto":
        method = "water_filling" if covariances_commute(q_signal, q_noise) else "projected_gradient"
    if method == "water_filling":
        V, lam_s, lam_n = _shared_eigenbasis(q_signal, q_noise)
        gains = water_filling_gains(lam_s, lam_n, output_noise_variance, budget, budget_kind,
                                    n_outputs)
        cost = np.ones_like(gains) if budget_kind == "weight" else lam_s + lam_n
        C = optimal_weights_from_gains(gains, V, n_outputs, cost)
        active = gains > 0  # inactive modes add ln(c/c) = 0 (and 0/0 where c = 0)
        mi = 0.5 * np.sum(np.log((gains[active] * (lam_s + lam_n)[active] + output_noise_variance)
                                 / (gains[active] * lam_n[active] + output_noise_variance)))
        return InfomaxOptimum(float(mi), gains, V, C, budget_kind, "water_filling")
    if method == "projected_gradient":
        C = projected_gradient_ascent(q_signal, q_noise, output_noise_variance, n_outputs,
                                      budget, budget_kind, rng=rng)
        mi = mutual_information(C, q_signal, q_noise, output_noise_variance)
        return InfomaxOptimum(float(mi), None, None, C, budget_kind, "projected_gradient")
    raise ValueError(f"unknown method {method!r}")


def project_to_budget(C, budget, budget_kind, q_sensing=None):
    """Scale each row to an equal share of the total budget (the per-unit constraint set)."""
    share = budget / C.shape[0]
    if budget_kind == "weight":
        row_cost = np.sum(C**2, axis=1)
    else:
        row_cost = np.einsum("ij,jk,ik->i", C, q_sensing, C)
    return C * np.sqrt(share / np.maximum(row_cost, 1e-300))[:, None]


def projected_gradient_ascent(q_signal, q_noise, output_noise_variance, n_outputs, budget,
                              budget_kind="weight", rng=None, max_iterations=20000,
                              tolerance=1e-9):
    """Maximise the exact MI by gradient ascent, projecting onto per-unit budgets each step.

    Used where q_S and q_N do not commute; with commuting covariances it reproduces the
    water-filling optimum (tested).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    q_sensing = q_signal + q_noise
    C = project_to_budget(rng.standard_normal((n_outputs, q_signal.shape[0])), budget,
                          budget_kind, q_sensing)
    step = 0.1
    mi = mutual_information(C, q_signal, q_noise, output_noise_variance)
    for iteration in range(max_iterations + 1):
        if iteration == max_iterations:
            warnings.warn(f"projected gradient ascent to the infomax optimum stopped after "
                          f"{max_iterations} iterations before its tolerance {tolerance:g}; "
                          f"the optimum may be slightly underestimated", stacklevel=2)
            break
        gradient = mutual_information_gradient(C, q_signal, q_noise, output_noise_variance)
        # Move along the constraint surface: remove each row's component along the normal of
        # its own budget (c_i for weight, q_L c_i for power).
        normal = C if budget_kind == "weight" else C @ q_sensing
        tangent = gradient - (np.sum(gradient * normal, axis=1)
                              / np.sum(normal * normal, axis=1))[:, None] * normal
        if np.linalg.norm(tangent) <= tolerance * max(np.linalg.norm(gradient), 1e-300):
            break
        candidate = project_to_budget(C + step * tangent, budget, budget_kind, q_sensing)
        candidate_mi = mutual_information(candidate, q_signal, q_noise, output_noise_variance)
        if candidate_mi >= mi:
            C, mi = candidate, candidate_mi
            step *= 1.5
        else:
            step *= 0.5
            if step < 1e-15:
                break
    return C

"""Numba backend: the NumPy reference's step contract compiled to machine code.

The stimulus and the output noise come from the same random streams as the NumPy backend's
(:func:`plasticsim.ensemble.draw_steps`); steps 2–6 of the contract (drive → settle →
plasticity → constraint, see :mod:`plasticsim.backends.numpy_backend`) then run for a whole
run of steps inside one compiled call (:func:`run_network`): no Python per sample or per
settling iteration. Compiled functions are cached on disk (``cache=True``), so only the
first run on a machine compiles (≈ 10 s of CPU per dtype).

Two code paths compute the same arithmetic:

- *loop* path (mini-batches smaller than :data:`BLAS_MIN_BATCH`, in particular one sample at
  a time): explicit loops that stay in cache, vectorised by LLVM.
- *BLAS* path (larger mini-batches): the matrix products go to BLAS (``np.dot``).

BLAS runs on one thread during compiled steps and draws (:data:`single_threaded_blas`);
parallelism comes from ensemble members, run in threads (the compiled code releases the GIL),
and from drawing the next chunk of samples in a background thread while the current one
runs (:attr:`NumbaSimulation.prefetch`).

Floating-point sums run in a different order than NumPy's, so float64 results agree with the
NumPy backend to rounding (≈1e-13 relative on short runs), not bit for bit; results are
bit-reproducible for the same seed, backend, dtype and machine, with or without threads.

Symbols: C feedforward weights (M × N), Q̂ per-phase output-covariance estimates (2 × M × M),
α the settling scale, F = I − αQ̂, η the feedforward rate, ε_B the per-step lateral rate.
"""

from __future__ import annotations

import copy
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..constraints import OutputPowerConstraint
from ..ensemble import (
    draw_steps,
    lateral_batch_rates,
    register_ensemble_builder,
    unsupported_features,
)
from ..errors import SimulationDiverged
from ..schedules import batch_rate, step_phases
from . import register_backend
from .numpy_backend import LinskerSimulation

# Reassociation lets LLVM vectorise dot products; no-NaN/no-Inf flags are left off so that
# divergence checks (isfinite) keep working.
FASTMATH = {"reassoc", "contract", "nsz"}

#: Mini-batches of at least this many samples use BLAS for the matrix products.
BLAS_MIN_BATCH = 8

RESIDUAL_CHECK_EVERY = 10  # as plasticsim.settling: the same convergence decisions

# Layout of the integer parameter vector of one network.
HAS_LATERAL, METHOD, ITERATIONS, ALPHA_RULE, USE_BLAS, NATURAL = range(6)
N_INT_PARAMETERS = 6
# Layout of the float parameter vector of one network.
STEP, TOLERANCE, ALPHA_VALUE, SIGN_SENSING, SIGN_NOISE = range(5)
N_FLOAT_PARAMETERS = 5
# Per constraint: integer (kind, per unit, running covariance) and float (value, ε_B) columns.
KIND, PER_UNIT, RUNNING = range(3)
VALUE, BATCH_RATE = range(2)

METHODS = {"jacobi": 0, "euler": 1, "exact": 2}
METHOD_EXACT = 2
ALPHA_RULES = {"gershgorin": 0, "trace": 1}
ALPHA_GERSHGORIN, ALPHA_TRACE, ALPHA_FIXED = 0, 1, 2
KIND_WEIGHT, KIND_POWER = 0, 1

# Status codes returned by the kernel (status[0]); status[1] is the step index.
STATUS_OK, STATUS_SETTLING_DIVERGED, STATUS_WEIGHTS_NONFINITE, STATUS_SINGULAR = range(4)


# ----------------------------------------------------------------------- kernels
@numba.njit(cache=True, fastmath=FASTMATH)
def _copy(source, target):
    """target[...] = source for 2-D arrays (a slice assignment takes seconds to compile)."""
    for i in range(source.shape[0]):
        for j in range(source.shape[1]):
            target[i, j] = source[i, j]


@numba.njit(cache=True, fastmath=FASTMATH)
def _matvec(A, v, out):
    """out[i] = Σ_j A[i, j] v[j], four rows at a time (each v[j] is loaded once per block)."""
    n_rows, n_columns = A.shape
    i = 0
    while i + 4 <= n_rows:
        total0 = 0.0
        total1 = 0.0
        total2 = 0.0
        total3 = 0.0
        for j in range(n_columns):
            value = v[j]
            total0 += A[i, j] * value
            total1 += A[i + 1, j] * value
            total2 += A[i + 2, j] * value
            total3 += A[i + 3, j] * value
        out[i] = total0
        out[i + 1] = total1
        out[i + 2] = total2
        out[i + 3] = total3
        i += 4
    while i < n_rows:
        total = 0.0
        for j in range(n_columns):
            total += A[i, j] * v[j]
        out[i] = total
        i += 1


@numba.njit(cache=True, fastmath=FASTMATH)
def _residual(A, v, target, out):
    """out[i] = target[i] − Σ_j A[i, j] v[j] (the same sums as :func:`_matvec`)."""
    _matvec(A, v, out)
    for i in range(out.shape[0]):
        out[i] = target[i] - out[i]


@numba.njit(cache=True, fastmath=FASTMATH)
def _drive(C, X, noise, Y, use_blas):
    """Y = X Cᵀ + ν (step 2)."""
    batch = X.shape[0]
    n_out = C.shape[0]
    if use_blas:
        np.dot(X, C.T, Y)
    else:
        for b in range(batch):
            _matvec(C, X[b], Y[b])
    for b in range(batch):
        for i in range(n_out):
            Y[b, i] += noise[b, i]


@numba.njit(cache=True, fastmath=FASTMATH)
def _settling_alpha(Qp, rule, fixed):
    """α of F = I − αQ̂ (as :func:`plasticsim.settling.settling_alpha`)."""
    n_out = Qp.shape[0]
    if rule == ALPHA_GERSHGORIN:
        largest = 0.0
        for i in range(n_out):
            row = 0.0
            for j in range(n_out):
                row += abs(Qp[i, j])
            largest = max(largest, row)
        return 1.0 / largest
    if rule == ALPHA_TRACE:
        trace = 0.0
        for i in range(n_out):
            trace += Qp[i, i]
        return 1.0 / trace
    return fixed


@numba.njit(cache=True, fastmath=FASTMATH)
def _settling_gradient(Y, y, alpha_Q, gradient, product, use_blas):
    """gradient = Y − y αQ̂ (αQ̂ symmetric): the Jacobi/Euler increment and the residual."""
    batch, n_out = Y.shape
    if use_blas:
        np.dot(y, alpha_Q, product)
        for b in range(batch):
            for i in range(n_out):
                gradient[b, i] = Y[b, i] - product[b, i]
    else:
        for b in range(batch):
            _residual(alpha_Q, y[b], Y[b], gradient[b])


@numba.njit(cache=True, fastmath=FASTMATH)
def _frobenius(A):
    total = 0.0
    for b in range(A.shape[0]):
        for i in range(A.shape[1]):
            total += A[b, i] * A[b, i]
    return np.sqrt(total)


@numba.njit(cache=True, fastmath=FASTMATH)
def _settle_iterative(Y, Qp, alpha, step, iterations, tolerance, scaled, y, gradient, product,
                      alpha_Q, use_blas):
    """Jacobi (step 1) or Euler (step dt/τ) settling; writes α y into ``scaled``.

    Iterates y ← y + h (Y − αQ̂ y). The increment of the next iteration is the residual of the
    current one, so checking convergence costs only a norm.
    """
    batch, n_out = Y.shape
    for i in range(n_out):
        for j in range(n_out):
            alpha_Q[i, j] = alpha * Qp[i, j]
    _copy(Y, y)
    drive_norm = max(_frobenius(Y), 1e-300)
    if batch == 1 and not use_blas:  # one sample: the same loop on vectors
        return _settle_vector(Y[0], alpha, step, iterations, tolerance, scaled[0], y[0],
                              gradient[0], alpha_Q, drive_norm)
    _settling_gradient(Y, y, alpha_Q, gradient, product, use_blas)
    residual = np.inf
    for iteration in range(1, iterations + 1):
        for b in range(batch):
            for i in range(n_out):
                y[b, i] += step * gradient[b, i]
        _settling_gradient(Y, y, alpha_Q, gradient, product, use_blas)
        if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == iterations:
            residual = _frobenius(gradient) / drive_norm
            if not np.isfinite(residual) or residual <= tolerance:
                break
    for b in range(batch):
        for i in range(n_out):
            scaled[b, i] = alpha * y[b, i]
    return residual


@numba.njit(cache=True, fastmath=FASTMATH)
def _settle_vector(Y, alpha, step, iterations, tolerance, scaled, y, gradient, alpha_Q,
                   drive_norm):
    """:func:`_settle_iterative` for one sample (vectors; y starts at Y)."""
    n_out = Y.shape[0]
    _residual(alpha_Q, y, Y, gradient)
    residual = np.inf
    for iteration in range(1, iterations + 1):
        for i in range(n_out):
            y[i] += step * gradient[i]
        _residual(alpha_Q, y, Y, gradient)
        if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == iterations:
            squared = 0.0
            for i in range(n_out):
                squared += gradient[i] * gradient[i]
            residual = np.sqrt(squared) / drive_norm
            if not np.isfinite(residual) or residual <= tolerance:
                break
    for i in range(n_out):
        scaled[i] = alpha * y[i]
    return residual


@numba.njit(cache=True, fastmath=FASTMATH)
def _solve_rows(A, rows, out, lu, work):
    """out[b] = A⁻¹ rows[b] for a symmetric A, by LU with partial pivoting (LAPACK's gesv).

    ``lu`` (n × n) and ``work`` (n × R) are scratch space. Returns False if A is singular.
    """
    n_rows, n = rows.shape
    _copy(A, lu)
    for b in range(n_rows):
        for i in range(n):
            work[i, b] = rows[b, i]
    for column in range(n):
        pivot = column
        for row in range(column + 1, n):
            if abs(lu[row, column]) > abs(lu[pivot, column]):
                pivot = row
        if lu[pivot, column] == 0.0:
            return False
        if pivot != column:
            for j in range(n):
                lu[column, j], lu[pivot, j] = lu[pivot, j], lu[column, j]
            for b in range(n_rows):
                work[column, b], work[pivot, b] = work[pivot, b], work[column, b]
        for row in range(column + 1, n):
            factor = lu[row, column] / lu[column, column]
            for j in range(column + 1, n):
                lu[row, j] -= factor * lu[column, j]
            for b in range(n_rows):
                work[row, b] -= factor * work[column, b]
    for row in range(n - 1, -1, -1):
        for b in range(n_rows):
            total = work[row, b]
            for j in range(row + 1, n):
                total -= lu[row, j] * work[j, b]
            work[row, b] = total / lu[row, row]
    for b in range(n_rows):
        for i in range(n):
            out[b, i] = work[i, b]
    return True


@numba.njit(cache=True, fastmath=FASTMATH)
def _settle_exact(Y, Qp, scaled, lu, work):
    """Solve Q̂ (α y) = Y per sample (``exact`` settling).

    Returns the relative residual ‖Y − αy Q̂‖/‖Y‖, or −1 if Q̂ is singular.
    """
    batch, n_out = Y.shape
    if not _solve_rows(Qp, Y, scaled, lu, work):
        return -1.0
    squared = 0.0
    for b in range(batch):
        for i in range(n_out):
            total = 0.0
            for j in range(n_out):
                total += scaled[b, j] * Qp[j, i]
            difference = Y[b, i] - total
            squared += difference * difference
    return np.sqrt(squared) / max(_frobenius(Y), 1e-300)


@numba.njit(cache=True, fastmath=FASTMATH)
def _update_lateral(Qp, Y, rate, product, use_blas):
    """Q̂_p ← Q̂_p + ε_B (YᵀY/B − Q̂_p) (step 5, lateral).

    Entry (i, j) and (j, i) sum the same products in the same order, so Q̂ stays exactly
    symmetric.
    """
    batch, n_out = Y.shape
    if batch == 1 and not use_blas:  # one sample: the outer product needs no buffer
        for i in range(n_out):
            weight = Y[0, i]
            for j in range(n_out):
                Qp[i, j] += rate * (weight * Y[0, j] - Qp[i, j])
        return
    if use_blas:
        np.dot(Y.T, Y, product)
    else:
        _outer_sum(Y, product)
    for i in range(n_out):
        for j in range(n_out):
            Qp[i, j] += rate * (product[i, j] / batch - Qp[i, j])


@numba.njit(cache=True, fastmath=FASTMATH)
def _outer_sum(A, out):
    """out = AᵀA (Σ_b of outer products), row by row so the inner loop is contiguous."""
    batch, n = A.shape
    for i in range(n):
        for j in range(n):
            out[i, j] = 0.0
        for b in range(batch):
            weight = A[b, i]
            for j in range(n):
                out[i, j] += weight * A[b, j]


@numba.njit(cache=True, fastmath=FASTMATH)
def _observe_inputs(covariance, X, rate, product):
    """Running sensing-phase input covariance: q̂ ← q̂ + ε_B (XᵀX/B − q̂)."""
    batch, n_in = X.shape
    _outer_sum(X, product)
    for i in range(n_in):
        for j in range(n_in):
            covariance[i, j] += rate * (product[i, j] / batch - covariance[i, j])


@numba.njit(cache=True, fastmath=FASTMATH)
def _feedforward_delta(scaled, X, coefficient, delta, product, use_blas):
    """ΔC = s_p η (αy)ᵀ X, summed over the batch (step 5, feedforward; ``product`` is scratch)."""
    batch, n_in = X.shape
    n_out = scaled.shape[1]
    if use_blas:
        np.dot(scaled.T, X, product)
        for i in range(n_out):
            for j in range(n_in):
                delta[i, j] = coefficient * product[i, j]
        return
    for i in range(n_out):
        for j in range(n_in):
            delta[i, j] = 0.0
        for b in range(batch):
            weight = scaled[b, i]
            for j in range(n_in):
                delta[i, j] += weight * X[b, j]
        for j in range(n_in):
            delta[i, j] *= coefficient


@numba.njit(cache=True, fastmath=FASTMATH)
def _times_covariance(C, covariance, out):
    """out = C q (rows of C times the input covariance), written as cache-friendly loops."""
    n_out, n_in = C.shape
    for i in range(n_out):
        for j in range(n_in):
            out[i, j] = 0.0
        for k in range(n_in):
            weight = C[i, k]
            for j in range(n_in):
                out[i, j] += weight * covariance[k, j]


@numba.njit(cache=True, fastmath=FASTMATH)
def _apply_constraint(C, delta, has_delta, kind, per_unit, value, covariance, natural, gradient,
                      cost):
    """Project ΔC on the budget's tangent plane, add it, rescale C onto the budget (step 6).

    The component removed lies along the cost's gradient (C for a weight norm, C q for a
    power budget), or along C itself for a natural-gradient step (``natural``), and is
    measured with the gradient, as :meth:`plasticsim.constraints._Constraint.apply`.
    """
    n_out, n_in = C.shape
    if has_delta:
        if kind == KIND_POWER:
            _times_covariance(C, covariance, gradient)
        else:
            _copy(C, gradient)
        if per_unit:
            for i in range(n_out):
                along = 0.0
                squared = 0.0
                for j in range(n_in):
                    direction = C[i, j] if natural else gradient[i, j]
                    along += delta[i, j] * gradient[i, j]
                    squared += direction * gradient[i, j]
                coefficient = along / squared
                for j in range(n_in):
                    direction = C[i, j] if natural else gradient[i, j]
                    delta[i, j] -= coefficient * direction
        else:
            along = 0.0
            squared = 0.0
            for i in range(n_out):
                for j in range(n_in):
                    direction = C[i, j] if natural else gradient[i, j]
                    along += delta[i, j] * gradient[i, j]
                    squared += direction * gradient[i, j]
            coefficient = along / squared
            for i in range(n_out):
                for j in range(n_in):
                    direction = C[i, j] if natural else gradient[i, j]
                    delta[i, j] -= coefficient * direction
        for i in range(n_out):
            for j in range(n_in):
                C[i, j] += delta[i, j]
    if kind == KIND_POWER:
        _times_covariance(C, covariance, gradient)
    for i in range(n_out):
        total = 0.0
        for j in range(n_in):
            total += C[i, j] * (gradient[i, j] if kind == KIND_POWER else C[i, j])
        cost[i] = total
    if per_unit:
        for i in range(n_out):
            factor = np.sqrt(value / cost[i])
            for j in range(n_in):
                C[i, j] *= factor
    else:
        total = 0.0
        for i in range(n_out):
            total += cost[i]
        factor = np.sqrt(n_out * value / total)
        for i in range(n_out):
            for j in range(n_in):
                C[i, j] *= factor


@numba.njit(cache=True, fastmath=FASTMATH, nogil=True)
def run_network(C, Q, covariances, inputs, noise, phases, feedforward_rate, lateral_batch_rate,
                int_parameters, float_parameters, constraint_ints, constraint_floats, status,
                values):
    """Steps 2–6 of the contract for a run of pre-drawn steps of one network, in place.

    Parameters
    ----------
    C : ndarray (M, N)
        Feedforward weights, updated in place.
    Q : ndarray (2, M, M)
        Per-phase estimates Q̂, updated in place.
    covariances : ndarray (K, n, n), float64
        Input covariance of each constraint (running estimates updated in place; n = 1 when
        no constraint needs one).
    inputs, noise : ndarray (steps, B, N), (steps, B, M)
        The stimulus X and output noise ν of each step (from ``_draw``).
    phases : int64 ndarray (steps,)
        0 sensing, 1 noise-unlearning.
    feedforward_rate, lateral_batch_rate : float64 ndarray (steps,)
        η per sample and ε_B per step.
    int_parameters, float_parameters : ndarray
        Settling and sign parameters (layout: module constants).
    constraint_ints, constraint_floats : ndarray (K, 3), (K, 2)
    status : int64 ndarray (2,)
        Out: status code and the index of the step that failed.
    values : float64 ndarray (2,)
        Out: largest settling residual, and the offending value on failure.
    """
    n_steps, batch, n_in = inputs.shape
    n_out = C.shape[0]
    has_lateral = int_parameters[HAS_LATERAL] != 0
    method = int_parameters[METHOD]
    iterations = int_parameters[ITERATIONS]
    alpha_rule = int_parameters[ALPHA_RULE]
    use_blas = int_parameters[USE_BLAS] != 0
    step_size = float_parameters[STEP]
    tolerance = float_parameters[TOLERANCE]
    n_constraints = constraint_ints.shape[0]

    Y = np.empty((batch, n_out), C.dtype)
    scaled = np.empty((batch, n_out), C.dtype)
    y = np.empty((batch, n_out), C.dtype)
    gradient = np.empty((batch, n_out), C.dtype)
    product = np.empty((batch, n_out), C.dtype)
    alpha_Q = np.empty((n_out, n_out), C.dtype)
    lateral_product = np.empty((n_out, n_out), C.dtype)
    solve_work = np.empty((n_out, batch), C.dtype)
    # ΔC in float64, as the reference's after preconditioning (which solves in float64)
    delta = np.empty((n_out, n_in), np.float64)
    delta_product = np.empty((n_out, n_in) if use_blas else (0, 0), C.dtype)
    constraint_gradient = np.empty((n_out, n_in), np.float64)
    cost = np.empty(n_out)
    natural = int_parameters[NATURAL] != 0
    running = False
    for c in range(n_constraints):
        running = running or constraint_ints[c, RUNNING] != 0
    input_product = np.empty((n_in, n_in) if running else (0, 0), inputs.dtype)
    if natural:
        input_lu = np.empty((n_in, n_in))
        input_work = np.empty((n_in, n_out))
    else:
        input_lu = np.empty((0, 0))
        input_work = np.empty((0, 0))

    worst_residual = 0.0
    status[0] = STATUS_OK
    for k in range(n_steps):
        phase = phases[k]
        X = inputs[k]
        for c in range(n_constraints):
            if constraint_ints[c, RUNNING] != 0 and phase == 0:
                _observe_inputs(covariances[c], X, constraint_floats[c, BATCH_RATE],
                                input_product)
        _drive(C, X, noise[k], Y, use_blas)
        learning = feedforward_rate[k] != 0.0
        if has_lateral and learning:
            if method == METHOD_EXACT:
                residual = _settle_exact(Y, Q[phase], scaled, alpha_Q, solve_work)
                if residual < 0.0:
                    status[0] = STATUS_SINGULAR
                    status[1] = k
                    values[1] = np.nan
                    return
            else:
                alpha = _settling_alpha(Q[phase], alpha_rule, float_parameters[ALPHA_VALUE])
                residual = _settle_iterative(Y, Q[phase], alpha, step_size, iterations,
                                             tolerance, scaled, y, gradient, product, alpha_Q,
                                             use_blas)
            if not residual <= 1.0:  # also catches NaN
                status[0] = STATUS_SETTLING_DIVERGED
                status[1] = k
                values[1] = residual
                return
            worst_residual = max(worst_residual, residual)
            activity = scaled
        else:
            activity = Y  # no lateral network, or warm-up: nothing uses the settled activity
        if has_lateral:
            _update_lateral(Q[phase], Y, lateral_batch_rate[k], lateral_product, use_blas)
        coefficient = 0.0
        if learning:
            coefficient = float_parameters[SIGN_SENSING + phase] * feedforward_rate[k]
            if n_constraints == 0 and not use_blas:
                # ΔC need not be stored: add (s η αy_b) x_b row by row.
                for b in range(batch):
                    for i in range(n_out):
                        weight = coefficient * activity[b, i]
                        for j in range(n_in):
                            C[i, j] += weight * X[b, j]
            else:
                _feedforward_delta(activity, X, coefficient, delta, delta_product, use_blas)
                # natural: ΔC q̂_L⁻¹, the step in the metric of the input covariance
                if natural and not _solve_rows(covariances[0], delta, delta, input_lu,
                                               input_work):
                        status[0] = STATUS_SINGULAR
                        status[1] = k
                        values[1] = np.nan
                        return
                if n_constraints == 0:
                    for i in range(n_out):
                        for j in range(n_in):
                            C[i, j] += delta[i, j]
        for c in range(n_constraints):
            _apply_constraint(C, delta, learning and c == 0, constraint_ints[c, KIND],
                              constraint_ints[c, PER_UNIT] != 0, constraint_floats[c, VALUE],
                              covariances[c], natural, constraint_gradient, cost)
    values[0] = worst_residual
    for i in range(n_out):
        for j in range(n_in):
            if not np.isfinite(C[i, j]):
                status[0] = STATUS_WEIGHTS_NONFINITE
                status[1] = n_steps
                values[1] = np.nan
                return


@numba.njit(cache=True, nogil=True)
def run_members(first, stop, C, Q, covariances, inputs, noise, phases, feedforward_rate,
                lateral_batch_rate, int_parameters, float_parameters, constraint_ints,
                constraint_floats, status, values):
    """:func:`run_network` for members ``first … stop − 1`` of an ensemble, without the GIL.

    Every array gains a leading ensemble axis (E, …); members share shapes and dtype. Threads
    run disjoint member ranges in parallel (:func:`run_ensemble`). A ``prange`` loop would do
    the same but compiles :func:`run_network` a second time inside the parallel region
    (≈ 12 s of CPU per dtype on the development machine).
    """
    for member in range(first, stop):
        run_network(C[member], Q[member], covariances[member], inputs[member], noise[member],
                    phases[member], feedforward_rate[member], lateral_batch_rate[member],
                    int_parameters[member], float_parameters[member], constraint_ints[member],
                    constraint_floats[member], status[member], values[member])


# ---------------------------------------------------------------- Python side
class _SingleThreadedBLAS:
    """Context: every loaded OpenBLAS on one thread inside (re-entrant across threads).

    NumPy and SciPy (whose BLAS the compiled code calls) each bundle an OpenBLAS with its own
    thread pool, and OpenBLAS threads spin for a while after each call. On a small or busy
    machine a stimulus draw on one pool next to compiled steps on the other, or next to the
    prefetching thread or ensemble threads, oversubscribes the cores: the same run was
    measured 3 to 40 times slower than with one BLAS thread. The compiled code takes its
    parallelism from ensemble members instead. The first thread in sets one thread, the last
    one out restores the previous setting. Without threadpoolctl this does nothing.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._controller = None
        self._restore = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    try:
                        from threadpoolctl import ThreadpoolController
                        self._controller = ThreadpoolController()
                    except Exception:  # noqa: BLE001  (not installed: leave threads alone)
                        self._controller = False
                if self._controller:
                    self._restore = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1
        return self

    def __exit__(self, *exception):
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._restore is not None:
                self._restore.restore_original_limits()
                self._restore = None
        return False


single_threaded_blas = _SingleThreadedBLAS()


def _draw_single_threaded(simulation, phases, stimulus_rng=None, noise_rng=None):
    with single_threaded_blas:
        return draw_steps(simulation, phases, stimulus_rng, noise_rng)


def kernel_parameters(simulation) -> dict:
    """The static kernel arguments of a :class:`LinskerSimulation` (settling, signs, constraints).

    Also moves the constraints' input covariances into one float64 stack (K, n, n) and points
    each constraint at its slice, so the compiled code updates them in place. Call
    :func:`unsupported_features` first.
    """
    settling = simulation.settling
    int_parameters = np.zeros(N_INT_PARAMETERS, dtype=np.int64)
    float_parameters = np.zeros(N_FLOAT_PARAMETERS, dtype=np.float64)
    batch = simulation.spec.schedule.batch_size
    int_parameters[USE_BLAS] = batch >= BLAS_MIN_BATCH
    float_parameters[SIGN_SENSING:SIGN_NOISE + 1] = simulation.signs
    int_parameters[NATURAL] = getattr(simulation, "metric", "euclidean") != "euclidean"
    if settling is not None:
        int_parameters[HAS_LATERAL] = 1
        int_parameters[METHOD] = METHODS[settling.method]
        int_parameters[ITERATIONS] = settling.iterations
        if isinstance(settling.alpha, str):
            int_parameters[ALPHA_RULE] = ALPHA_RULES[settling.alpha]
        else:
            int_parameters[ALPHA_RULE] = ALPHA_FIXED
            float_parameters[ALPHA_VALUE] = float(settling.alpha)
        float_parameters[STEP] = 1.0 if settling.method == "jacobi" else \
            settling.dt / settling.tau
        float_parameters[TOLERANCE] = settling.tolerance

    constraints = simulation.constraints
    constraint_ints = np.zeros((len(constraints), 3), dtype=np.int64)
    constraint_floats = np.zeros((len(constraints), 2), dtype=np.float64)
    any_power = any(isinstance(c, OutputPowerConstraint) for c in constraints)
    size = simulation.n_inputs if any_power else 1
    covariances = np.zeros((len(constraints), size, size), dtype=np.float64)
    for index, constraint in enumerate(constraints):
        constraint_ints[index, PER_UNIT] = constraint.per_unit
        constraint_floats[index, VALUE] = constraint.spec.value
        if isinstance(constraint, OutputPowerConstraint):
            constraint_ints[index, KIND] = KIND_POWER
            constraint_ints[index, RUNNING] = constraint.running
            constraint_floats[index, BATCH_RATE] = batch_rate(constraint.spec.averaging_rate,
                                                              batch)
            covariances[index] = constraint.input_covariance
    for index, constraint in enumerate(constraints):
        if isinstance(constraint, OutputPowerConstraint):
            constraint.input_covariance = covariances[index]
    return {"covariances": covariances, "int_parameters": int_parameters,
            "float_parameters": float_parameters, "constraint_ints": constraint_ints,
            "constraint_floats": constraint_floats}


def raise_for_status(status, values, step_offset: int, batch: int) -> None:
    """Turn a kernel status into the NumPy backend's :class:`SimulationDiverged`."""
    code, step = int(status[0]), int(status[1])
    if code == STATUS_SETTLING_DIVERGED:
        raise SimulationDiverged(step_offset + step * batch, "settling residual",
                                 float(values[1]), "lateral network does not converge: "
                                 "α ≥ 2/λ_max(Q̂)?")
    if code == STATUS_SINGULAR:
        raise SimulationDiverged(step_offset + step * batch, "settling residual",
                                 float("nan"), "Q̂ is singular: exact settling has no solution")
    if code == STATUS_WEIGHTS_NONFINITE:
        raise SimulationDiverged(step_offset + step * batch, "feedforward weights",
                                 float("nan"), "non-finite value")


class NumbaSimulation(LinskerSimulation):
    """A Linsker network whose steps run in compiled code; otherwise a :class:`LinskerSimulation`.

    Parameters
    ----------
    spec : ProtocolSpec
    """

    backend_name = "numba"

    def __init__(self, spec):
        # Refuse what the compiled step lacks (gates, other constraints) rather than drop it.
        unsupported_features(spec, "numba")
        super().__init__(spec)
        unsupported_features(self, "numba")
        self.kernel_arguments = kernel_parameters(self)

    #: Draw the next chunk's samples in a background thread while the compiled steps run.
    prefetch = True

    def _advance(self, phases, feedforward_rate, lateral_rate, step_offset):
        inputs, noise = self._draw(phases)
        if self.prefetch:
            self._prefetch_next(step_offset, len(phases))
        return self._run_steps(inputs, noise, phases, feedforward_rate, lateral_rate,
                               step_offset)

    def _prefetch_next(self, step_offset: int, n_steps: int) -> None:
        """Start drawing the chunk ``plasticsim.run`` asks for next, on copies of the streams.

        The next chunk follows the warm-up at sample 0, or this chunk, and holds
        ``record.every`` samples (fewer at the end). If the next call asks for something
        else, the prefetched samples are dropped and the streams were never touched.
        """
        spec = self.spec
        batch = spec.schedule.batch_size
        first = 0 if step_offset < 0 else step_offset + n_steps * batch
        total = spec.schedule.samples
        if first >= total:
            return
        count = min(spec.record.every, total - first) // batch
        phases = step_phases(spec.schedule, spec.phases, first, count)
        stimulus_rng, noise_rng = copy.deepcopy(self.stimulus_rng), copy.deepcopy(self.noise_rng)
        future = _executor().submit(_draw_single_threaded, self, phases, stimulus_rng,
                                    noise_rng)
        self._prefetched = (phases, future, stimulus_rng, noise_rng)

    def _draw(self, phases):
        prefetched, self._prefetched = getattr(self, "_prefetched", None), None
        if prefetched is not None:
            expected, future, stimulus_rng, noise_rng = prefetched
            drawn = future.result()
            if np.array_equal(expected, phases):
                # The copies have advanced past these samples: they become the streams.
                self.stimulus_rng, self.noise_rng = stimulus_rng, noise_rng
                return drawn
        return _draw_single_threaded(self, phases)

    def _run_steps(self, inputs, noise, phases, feedforward_rate, lateral_rate, step_offset):
        batch = inputs.shape[1]
        status = np.zeros(2, dtype=np.int64)
        values = np.zeros(2, dtype=np.float64)
        arguments = self.kernel_arguments
        with single_threaded_blas:
            run_network(self.C, self.Q, arguments["covariances"], np.ascontiguousarray(inputs),
                        np.ascontiguousarray(noise),
                        np.ascontiguousarray(phases, dtype=np.int64),
                        np.ascontiguousarray(feedforward_rate, dtype=np.float64),
                        lateral_batch_rates(lateral_rate, batch), arguments["int_parameters"],
                        arguments["float_parameters"], arguments["constraint_ints"],
                        arguments["constraint_floats"], status, values)
        raise_for_status(status, values, step_offset, batch)
        self.last_residual = float(values[0])
        return self.last_residual


@register_backend("numba")
def build_numba(spec) -> NumbaSimulation:
    return NumbaSimulation(spec)


# -------------------------------------------------------------------- ensembles
#: Upper bound on the stimulus and noise arrays stacked for one kernel call of an ensemble;
#: larger ensembles are stepped in slices of members (each slice in parallel).
MAX_STACKED_BYTES = 64 * 2**20
_EXECUTOR = None


def _executor() -> ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        _EXECUTOR = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                       thread_name_prefix="plasticsim-numba")
    return _EXECUTOR


class NumbaEnsemble:
    """Ensemble members stepped by the compiled kernel, in parallel over members.

    Members with the same shapes (sizes, batch, dtype, number of constraints) share stacked
    state arrays (E, …); each member's ``C``, ``Q`` and constraint covariances are views into
    them, so a member still looks like a single :class:`NumbaSimulation`. Each member draws
    its own samples from its own streams, exactly as a single run would, so a member's
    results equal those of its protocol run alone on the numba backend.

    Parameters
    ----------
    specs : list of ProtocolSpec
        Member protocols (same schedule and recording).
    """

    backend_name = "numba"

    def __init__(self, specs):
        self.members = [NumbaSimulation(spec) for spec in specs]
        by_shape: dict[tuple, list[int]] = {}
        for index, simulation in enumerate(self.members):
            arguments = simulation.kernel_arguments
            key = (simulation.C.shape, simulation.C.dtype.str,
                   simulation.spec.schedule.batch_size, arguments["covariances"].shape)
            by_shape.setdefault(key, []).append(index)
        self.groups = [self._stack(indices) for indices in by_shape.values()]

    def _stack(self, indices: list[int]) -> dict:
        simulations = [self.members[index] for index in indices]
        group = {"indices": indices,
                 "C": np.stack([simulation.C for simulation in simulations]),
                 "Q": np.stack([simulation.Q for simulation in simulations])}
        for name in simulations[0].kernel_arguments:
            group[name] = np.stack([simulation.kernel_arguments[name]
                                    for simulation in simulations])
        for member, simulation in enumerate(simulations):
            simulation.C = group["C"][member]
            simulation.Q = group["Q"][member]
            for name in simulation.kernel_arguments:
                simulation.kernel_arguments[name] = group[name][member]
            for index, constraint in enumerate(simulation.constraints):
                if isinstance(constraint, OutputPowerConstraint):
                    constraint.input_covariance = group["covariances"][member, index]
        return group

    @property
    def samples_done(self) -> int:
        """Training samples presented so far (the same for every member)."""
        return self.members[0].samples_done

    def warmup(self) -> None:
        """Every member's warm-up (feedforward rate 0), stepped together."""
        samples = self.members[0].spec.schedule.warmup_samples
        for group in self.groups:
            self._run_group(group, samples, warmup=True)
        for simulation in self.members:
            batch = simulation.spec.schedule.batch_size
            simulation.warmup_samples_done = samples // batch * batch

    def advance(self, n_samples: int) -> np.ndarray:
        """Advance every member by ``n_samples``; returns each member's worst residual."""
        for group in self.groups:
            self._run_group(group, n_samples, warmup=False)
        for simulation in self.members:
            batch = simulation.spec.schedule.batch_size
            simulation.samples_done += n_samples // batch * batch
        return np.array([simulation.last_residual for simulation in self.members])

    def _run_group(self, group: dict, n_samples: int, warmup: bool) -> None:
        from ..ensemble import member_error, step_plan

        indices = group["indices"]
        simulations = [self.members[index] for index in indices]
        plans = [step_plan(simulation, n_samples, warmup) for simulation in simulations]
        n_steps = len(plans[0][0])
        if n_steps == 0:
            return
        first = simulations[0]
        batch = first.spec.schedule.batch_size
        member_bytes = n_steps * batch * (first.n_inputs + first.n_outputs) \
            * first.dtype.itemsize
        workers = os.cpu_count() or 1
        per_call = max(workers, MAX_STACKED_BYTES // max(member_bytes, 1))
        for start in range(0, len(indices), per_call):
            stop = min(start + per_call, len(indices))
            with single_threaded_blas:
                draws = [simulations[m]._draw(plans[m][0]) for m in range(start, stop)]
            inputs = np.stack([draw[0] for draw in draws])
            noise = np.stack([draw[1] for draw in draws])
            del draws
            phases = np.stack([plans[m][0] for m in range(start, stop)]).astype(np.int64)
            feedforward = np.stack([plans[m][1] for m in range(start, stop)])
            lateral = np.stack([lateral_batch_rates(plans[m][2], batch)
                                for m in range(start, stop)])
            status = np.zeros((stop - start, 2), dtype=np.int64)
            values = np.zeros((stop - start, 2), dtype=np.float64)
            part = slice(start, stop)
            arguments = (group["C"][part], group["Q"][part], group["covariances"][part],
                         inputs, noise, phases, np.ascontiguousarray(feedforward), lateral,
                         group["int_parameters"][part], group["float_parameters"][part],
                         group["constraint_ints"][part], group["constraint_floats"][part],
                         status, values)
            bounds = np.linspace(0, stop - start, min(workers, stop - start) + 1).astype(int)
            with single_threaded_blas:
                futures = [_executor().submit(run_members, low, high, *arguments)
                           for low, high in itertools.pairwise(bounds) if high > low]
                for future in futures:
                    future.result()
            for offset in range(stop - start):
                member = start + offset
                try:
                    raise_for_status(status[offset], values[offset], plans[member][3], batch)
                except SimulationDiverged as error:
                    raise member_error(error, simulations[member], indices[member])
                simulations[member].last_residual = float(values[offset, 0])


@register_ensemble_builder("numba")
def build_numba_ensemble(specs, name: str = "numba") -> NumbaEnsemble:
    return NumbaEnsemble(specs)

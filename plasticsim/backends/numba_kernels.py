"""The plan's primitives as compiled Numba kernels, one member's arrays at a time.

Each kernel computes what the primitive of the same name in
:mod:`plasticsim.backends.numpy_primitives` computes (the reference; sums may run in another
order, so float64 results agree to rounding, not bit for bit). A primitive with several code
paths is split into small kernels, one per path, and the generated step loop
(:mod:`plasticsim.backends.numba_backend`) calls the one its plan needs: a step loop only links
(and LLVM only re-optimises) the code it runs, which keeps compile times down.

Two paths compute the same arithmetic for the matrix products of a mini-batch:

- *loops* (batches smaller than :data:`BLAS_MIN_BATCH`, in particular one sample at a time):
  explicit loops over contiguous rows that stay in cache and that LLVM vectorises;
- *BLAS* (larger batches): ``np.dot``, which calls the BLAS SciPy ships.

Kernels never allocate: every scratch array is passed in (allocated once per run of steps by
the step loop), because an allocation per sample costs as much as a small network's step.
Kernels that can fail return a status code (:data:`STATUS_OK` or one of the others below) and
the offending value; the step loop stops the member there, as the reference does.

Symbols as in the reference: B batch, C / W weights (post × pre), Q̂ the settling estimate,
α the settling scale, η a rate.
"""

from __future__ import annotations

import numba
import numpy as np

# Reassociation lets LLVM vectorise sums; the no-NaN/no-Inf flags stay off so that the
# divergence checks (residual ≤ 1, isfinite) keep their meaning.
FASTMATH = {"reassoc", "contract", "nsz"}

#: Mini-batches of at least this many samples use BLAS for the matrix products.
BLAS_MIN_BATCH = 8

#: Iterations between settling convergence checks (as :mod:`plasticsim.model.settling`, so
#: both backends stop at the same iteration).
RESIDUAL_CHECK_EVERY = 10

# Status codes of kernels that can fail (0: the step went through).
STATUS_OK = 0
STATUS_SETTLING_DIVERGED = 1
STATUS_SETTLING_SINGULAR = 2
STATUS_SOLVE_SINGULAR = 3
STATUS_MOMENT_SINGULAR = 4

# Codes of static parameters (the generated step loop passes them as integer constants).
ALPHA_GERSHGORIN, ALPHA_TRACE, ALPHA_FIXED = 0, 1, 2
DECAY_NONE, DECAY_DIAGONAL, DECAY_SUBSPACE, DECAY_SANGER, DECAY_LINEAR = 0, 1, 2, 3, 4
FORM_OUTER, FORM_SQUARE, FORM_MEAN = 0, 1, 2
NONLINEARITY_LINEAR, NONLINEARITY_RELU, NONLINEARITY_SIGMOID = 0, 1, 2

#: LayerNorm's ε (:data:`plasticsim.model.gating.LAYER_NORM_EPSILON`).
LAYER_NORM_EPSILON = 1e-5


def kernel(function):
    """Compile ``function`` as a kernel: cached on disk, fast maths, callable without the GIL."""
    return numba.njit(cache=True, fastmath=FASTMATH, nogil=True)(function)


def exact_kernel(function):
    """A kernel whose floating-point operations round exactly as written (no fused
    multiply-adds, no reassociation): for threshold crossings, which must match the
    reference's to the last bit."""
    return numba.njit(cache=True, nogil=True)(function)


# --------------------------------------------------------------------------- helpers
@kernel
def copy_into(source, target):
    """target[...] = source for 2-D arrays (a slice assignment compiles much more code)."""
    for i in range(source.shape[0]):
        for j in range(source.shape[1]):
            target[i, j] = source[i, j]


@kernel
def matvec(A, v, out):
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


@kernel
def vecmat(v, A, out):
    """out[j] = Σ_k v[k] A[k, j]: rows of A added with weights v (contiguous inner loop)."""
    n_rows, n_columns = A.shape
    for j in range(n_columns):
        out[j] = 0.0
    for k in range(n_rows):
        weight = v[k]
        for j in range(n_columns):
            out[j] += weight * A[k, j]


@kernel
def transpose_product(left, right, out):
    """out = leftᵀ right (Σ_b of outer products left_b ⊗ right_b), row by row of ``out``."""
    batch, n_left = left.shape
    n_right = right.shape[1]
    for i in range(n_left):
        for j in range(n_right):
            out[i, j] = 0.0
        for b in range(batch):
            weight = left[b, i]
            for j in range(n_right):
                out[i, j] += weight * right[b, j]


@kernel
def frobenius(A):
    """‖A‖_F of a 2-D array."""
    total = 0.0
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            total += A[i, j] * A[i, j]
    return np.sqrt(total)


@kernel
def lu_factor(A, lu, pivots):
    """LU factors of A with partial pivoting (LAPACK getrf's choice of pivots), in ``lu``.

    Returns False if a pivot is exactly zero: A is singular, where LAPACK (and so NumPy's
    ``solve`` and ``inv``) reports it singular.
    """
    n = A.shape[0]
    for i in range(n):
        for j in range(n):
            lu[i, j] = A[i, j]
    for column in range(n):
        pivot = column
        largest = abs(lu[column, column])
        for row in range(column + 1, n):
            if abs(lu[row, column]) > largest:
                largest = abs(lu[row, column])
                pivot = row
        pivots[column] = pivot
        if lu[pivot, column] == 0.0:
            return False
        if pivot != column:
            for j in range(n):
                swap = lu[column, j]
                lu[column, j] = lu[pivot, j]
                lu[pivot, j] = swap
        inverse_pivot = 1.0 / lu[column, column]
        for row in range(column + 1, n):
            factor = lu[row, column] * inverse_pivot
            lu[row, column] = factor
            if factor != 0.0:
                for j in range(column + 1, n):
                    lu[row, j] -= factor * lu[column, j]
    return True


@kernel
def lu_solve(lu, pivots, rhs):
    """Solve A z = rhs in place from :func:`lu_factor`'s factors of A."""
    n = lu.shape[0]
    for i in range(n):
        pivot = pivots[i]
        if pivot != i:
            swap = rhs[i]
            rhs[i] = rhs[pivot]
            rhs[pivot] = swap
    for i in range(n):
        total = rhs[i]
        for j in range(i):
            total -= lu[i, j] * rhs[j]
        rhs[i] = total
    for i in range(n - 1, -1, -1):
        total = rhs[i]
        for j in range(i + 1, n):
            total -= lu[i, j] * rhs[j]
        rhs[i] = total / lu[i, i]


@kernel
def solve_rows(A, rows, out, lu, pivots, column):
    """out[b] = A⁻¹ rows[b] for every row b (NumPy's ``solve(A, rows.T).T``).

    ``lu`` (n × n), ``pivots`` (n, int64) and ``column`` (n, float64) are scratch; ``out`` may
    be ``rows``. Returns False if A is singular (``out`` is then untouched).
    """
    if not lu_factor(A, lu, pivots):
        return False
    n_rows, n = rows.shape
    for b in range(n_rows):
        for i in range(n):
            column[i] = rows[b, i]
        lu_solve(lu, pivots, column)
        for i in range(n):
            out[b, i] = column[i]
    return True


# ------------------------------------------------------------------ stimulus, drive
@kernel
def load_stream(target, stream):
    """load_stream: target ← stream[k]."""
    copy_into(stream, target)


@kernel
def add_stream(target, stream):
    """add_stream: target += stream[k]."""
    for b in range(target.shape[0]):
        for i in range(target.shape[1]):
            target[b, i] += stream[b, i]


@kernel
def matmul_loops(source, weights, target, accumulate, row):
    """matmul, loop path: target (+)= source · weightsᵀ (``row``: scratch of one output row)."""
    for b in range(source.shape[0]):
        if accumulate:
            matvec(weights, source[b], row)
            for i in range(target.shape[1]):
                target[b, i] += row[i]
        else:
            matvec(weights, source[b], target[b])


@kernel
def matmul_blas(source, weights, target, accumulate, product):
    """matmul, BLAS path (``product``: scratch like ``target`` when accumulating)."""
    if accumulate:
        np.dot(source, weights.T, product)
        for b in range(target.shape[0]):
            for i in range(target.shape[1]):
                target[b, i] += product[b, i]
    else:
        np.dot(source, weights.T, target)


# ----------------------------------------------------------------------------- gate
@kernel
def gate(source, weights, target, basal, normalised, prediction, gate_value, layer_norm,
         nonlinearity, bias, gain, offset, use_blas):
    """gate: basal ← target; target ← basal ⊙ ψ(b + κ(norm(source) · weightsᵀ − m))."""
    batch, n_source = source.shape
    n_units = target.shape[1]
    for b in range(batch):
        if layer_norm:
            mean = 0.0
            for j in range(n_source):
                mean += source[b, j]
            mean /= n_source
            variance = 0.0
            for j in range(n_source):
                centred = source[b, j] - mean
                normalised[b, j] = centred
                variance += centred * centred
            scale = 1.0 / np.sqrt(variance / n_source + LAYER_NORM_EPSILON)
            for j in range(n_source):
                normalised[b, j] *= scale
        else:
            for j in range(n_source):
                normalised[b, j] = source[b, j]
    if use_blas:
        np.dot(normalised, weights.T, prediction)
    else:
        for b in range(batch):
            matvec(weights, normalised[b], prediction[b])
    for b in range(batch):
        for i in range(n_units):
            argument = bias + gain * (prediction[b, i] - offset)
            if nonlinearity == NONLINEARITY_SIGMOID:
                value = 2.0 / (1.0 + np.exp(-argument))
            elif nonlinearity == NONLINEARITY_RELU:
                value = max(argument, 0.0)
            else:
                value = argument
            gate_value[b, i] = value
            basal[b, i] = target[b, i]
            target[b, i] = basal[b, i] * gate_value[b, i]


# ------------------------------------------------------------------------- settling
@kernel
def settling_alpha(estimate, rule, fixed):
    """α of F = I − αQ̂ (:func:`plasticsim.model.settling.settling_alpha`)."""
    n = estimate.shape[0]
    if rule == ALPHA_GERSHGORIN:
        largest = 0.0
        for i in range(n):
            row = 0.0
            for j in range(n):
                row += abs(estimate[i, j])
            largest = max(largest, row)
        return 1.0 / largest
    if rule == ALPHA_TRACE:
        trace = 0.0
        for i in range(n):
            trace += estimate[i, i]
        return 1.0 / trace
    return fixed


@kernel
def _scaled_estimate(estimate, alpha, alpha_estimate):
    for i in range(estimate.shape[0]):
        for j in range(estimate.shape[1]):
            alpha_estimate[i, j] = alpha * estimate[i, j]


@kernel
def _converged(residual, tolerance):
    return not np.isfinite(residual) or residual <= tolerance


@kernel
def settle_vector(drive, estimate, target, iterations, tolerance, alpha_rule, alpha_value,
                  step, y, gradient, alpha_estimate):
    """settle (Jacobi or Euler) for one sample: y ← y + h (Y − y αQ̂), from y = Y.

    αQ̂ is symmetric, so y αQ̂ is computed as αQ̂ y (rows of αQ̂, contiguous). The increment
    of the next iteration is the residual of this one, so a convergence check costs a norm.

    Returns
    -------
    status : int
        :data:`STATUS_OK`, or :data:`STATUS_SETTLING_DIVERGED` (residual > 1 or NaN; the
        target is then untouched).
    residual : float
        ‖Y − αQ̂ y‖ / ‖Y‖ at the end.
    """
    Y = drive[0]
    n = Y.shape[0]
    alpha = settling_alpha(estimate, alpha_rule, alpha_value)
    _scaled_estimate(estimate, alpha, alpha_estimate)
    squared = 0.0
    for i in range(n):
        y[i] = Y[i]
        squared += Y[i] * Y[i]
    drive_norm = max(np.sqrt(squared), 1e-300)
    matvec(alpha_estimate, y, gradient)
    for i in range(n):
        gradient[i] = Y[i] - gradient[i]
    residual = np.inf
    for iteration in range(1, iterations + 1):
        for i in range(n):
            y[i] += step * gradient[i]
        matvec(alpha_estimate, y, gradient)
        for i in range(n):
            gradient[i] = Y[i] - gradient[i]
        if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == iterations:
            squared = 0.0
            for i in range(n):
                squared += gradient[i] * gradient[i]
            residual = np.sqrt(squared) / drive_norm
            if _converged(residual, tolerance):
                break
    if not residual <= 1.0:  # also catches NaN
        return STATUS_SETTLING_DIVERGED, residual
    for i in range(n):
        target[0, i] = alpha * y[i]
    return STATUS_OK, residual


@kernel
def _settling_gradient(Y, y, alpha_estimate, gradient, use_blas):
    """gradient = Y − y αQ̂ for a batch."""
    batch, n = Y.shape
    if use_blas:
        np.dot(y, alpha_estimate, gradient)
        for b in range(batch):
            for i in range(n):
                gradient[b, i] = Y[b, i] - gradient[b, i]
    else:
        for b in range(batch):
            matvec(alpha_estimate, y[b], gradient[b])
            for i in range(n):
                gradient[b, i] = Y[b, i] - gradient[b, i]


@kernel
def settle_batch(drive, estimate, target, iterations, tolerance, alpha_rule, alpha_value,
                 step, y, gradient, alpha_estimate, use_blas):
    """settle (Jacobi or Euler) for a mini-batch; one residual for the batch, as the reference.

    ``use_blas``: the products y αQ̂ through BLAS. Returns (status, residual) as
    :func:`settle_vector`.
    """
    batch, n = drive.shape
    alpha = settling_alpha(estimate, alpha_rule, alpha_value)
    _scaled_estimate(estimate, alpha, alpha_estimate)
    copy_into(drive, y)
    drive_norm = max(frobenius(drive), 1e-300)
    _settling_gradient(drive, y, alpha_estimate, gradient, use_blas)
    residual = np.inf
    for iteration in range(1, iterations + 1):
        for b in range(batch):
            for i in range(n):
                y[b, i] += step * gradient[b, i]
        _settling_gradient(drive, y, alpha_estimate, gradient, use_blas)
        if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == iterations:
            residual = frobenius(gradient) / drive_norm
            if _converged(residual, tolerance):
                break
    if not residual <= 1.0:  # also catches NaN
        return STATUS_SETTLING_DIVERGED, residual
    for b in range(batch):
        for i in range(n):
            target[b, i] = alpha * y[b, i]
    return STATUS_OK, residual


@kernel
def settle_exact(drive, estimate, target, solution, lu, pivots, column):
    """settle, ``exact``: α y = Q̂⁻¹ Y per sample, by LU with partial pivoting.

    Returns (status, residual): :data:`STATUS_SETTLING_SINGULAR` with NaN for a singular Q̂,
    :data:`STATUS_SETTLING_DIVERGED` for a residual > 1 (the target is untouched in both).
    """
    batch, n = drive.shape
    if not solve_rows(estimate, drive, solution, lu, pivots, column):
        return STATUS_SETTLING_SINGULAR, np.nan
    squared = 0.0
    for b in range(batch):
        for i in range(n):
            total = 0.0
            for j in range(n):
                total += solution[b, j] * estimate[j, i]
            difference = drive[b, i] - total
            squared += difference * difference
    residual = np.sqrt(squared) / max(frobenius(drive), 1e-300)
    if not residual <= 1.0:
        return STATUS_SETTLING_DIVERGED, residual
    copy_into(solution, target)
    return STATUS_OK, residual


# --------------------------------------------------------------------- plasticity
@kernel
def running_average_outer(source, target, rate, rectify, rectified, product, use_blas):
    """running_average, ``outer``: target += ε (sourceᵀ source / B − target).

    ``rectify``: of max(source, 0) (``rectified`` is its scratch, else unused). Entries (i, j)
    and (j, i) see the same sum, so a symmetric target stays exactly symmetric.
    """
    batch, n = source.shape
    values = source
    if rectify:
        for b in range(batch):
            for i in range(n):
                rectified[b, i] = max(source[b, i], 0.0)
        values = rectified
    if batch == 1 and not use_blas:  # one sample: the outer product needs no buffer
        for i in range(n):
            weight = values[0, i]
            for j in range(n):
                target[i, j] += rate * (weight * values[0, j] - target[i, j])
        return
    if use_blas:
        np.dot(values.T, values, product)
    else:
        transpose_product(values, values, product)
    for i in range(n):
        for j in range(i, n):
            statistic = product[i, j] / batch
            target[i, j] += rate * (statistic - target[i, j])
            if j != i:
                target[j, i] += rate * (statistic - target[j, i])


@kernel
def running_average_vector(source, target, rate, square, rectify):
    """running_average, ``mean`` or ``square`` (``square``): target += ε (⟨s⟩_batch − target)."""
    batch, n = source.shape
    for i in range(n):
        total = 0.0
        for b in range(batch):
            value = source[b, i]
            if rectify:
                value = max(value, 0.0)
            if square:
                value = value * value
            total += value
        target[i] += rate * (total / batch - target[i])


@kernel
def _hebbian_finish(delta, batch, mean, offset, coefficient):
    """delta ← coefficient · (delta [/ B] − offset)."""
    for i in range(delta.shape[0]):
        for j in range(delta.shape[1]):
            value = delta[i, j]
            if mean:
                value = value / batch
            delta[i, j] = coefficient * (value - offset)


@kernel
def _hebbian_finish_row(post, weights, delta, i, decay, mean, offset, coefficient, apply):
    """Row i of delta (holding Σ_b post_bi pre_b) finished: − decay, / B, − offset, × s η;
    ``apply``: weights += delta as well (the ``apply_delta`` that follows, fused)."""
    batch = post.shape[0]
    squared = 0.0
    if decay == DECAY_DIAGONAL:
        for b in range(batch):
            squared += post[b, i] * post[b, i]
    elif decay == DECAY_LINEAR:   # Σ_b post_bi (the Kohonen rule's decay)
        for b in range(batch):
            squared += post[b, i]
    for j in range(delta.shape[1]):
        value = delta[i, j]
        if decay == DECAY_DIAGONAL or decay == DECAY_LINEAR:
            value -= squared * weights[i, j]
        if mean:
            value = value / batch
        value = coefficient * (value - offset)
        delta[i, j] = value
        if apply:
            weights[i, j] += value


@kernel
def _hebbian_apply_one_sample(post, pre, weights, i, decay, offset, coefficient):
    """Row i of a one-sample update added straight to the weights, ΔW never stored: for a
    large network the weights and ΔW do not both stay in cache, and a second array of their
    size would double the memory traffic of the step."""
    weight = post[0, i]
    squared = weight * weight if decay == DECAY_DIAGONAL else weight
    for j in range(pre.shape[1]):
        value = weight * pre[0, j]
        if decay == DECAY_DIAGONAL or decay == DECAY_LINEAR:
            value -= squared * weights[i, j]
        weights[i, j] += coefficient * (value - offset)


@kernel
def hebbian_loops(post, pre, weights, delta, decay, mean, offset, coefficient, apply, store):
    """hebbian, loop path, decay ``none`` or ``diagonal``:
    delta ← s η (Σ_b post_bᵀ pre_b − [Σ_b post_b²] ⊙ W) (/ B) (− offset), row by row while the
    row is in cache; ``apply``: and weights += delta (``apply_delta`` fused); ``store`` False
    (with ``apply``, nothing else reading delta): one sample's update goes straight into the
    weights and delta, a scratch buffer, is left as it was."""
    batch, n_post = post.shape
    n_pre = pre.shape[1]
    for i in range(n_post):
        if batch == 1 and apply and not store:
            _hebbian_apply_one_sample(post, pre, weights, i, decay, offset, coefficient)
            continue
        if batch == 1:  # one sample: the outer product, one rounding per entry as NumPy's
            weight = post[0, i]
            for j in range(n_pre):
                delta[i, j] = weight * pre[0, j]
        else:
            for j in range(n_pre):
                delta[i, j] = 0.0
            for b in range(batch):
                weight = post[b, i]
                for j in range(n_pre):
                    delta[i, j] += weight * pre[b, j]
        _hebbian_finish_row(post, weights, delta, i, decay, mean, offset, coefficient, apply)


@kernel
def hebbian_blas(post, pre, weights, delta, decay, mean, offset, coefficient, apply, store):
    """hebbian, BLAS path, decay ``none`` or ``diagonal`` (``apply`` as :func:`hebbian_loops`)."""
    np.dot(post.T, pre, delta)
    for i in range(post.shape[1]):
        _hebbian_finish_row(post, weights, delta, i, decay, mean, offset, coefficient, apply)


@kernel
def hebbian_subspace(post, pre, weights, delta, lower, mean, offset, coefficient, moment,
                     use_blas):
    """hebbian, decay ``subspace`` (``lower`` False) or ``sanger`` (True):
    delta ← s η (postᵀ pre − [LT](postᵀ post) W) (/ B) (− offset); ``moment`` is M × M scratch.
    """
    batch, n_post = post.shape
    n_pre = pre.shape[1]
    if use_blas:
        np.dot(post.T, pre, delta)
        np.dot(post.T, post, moment)
    else:
        transpose_product(post, pre, delta)
        transpose_product(post, post, moment)
    for i in range(n_post):
        last = i + 1 if lower else n_post
        for k in range(last):
            weight = moment[i, k]
            for j in range(n_pre):
                delta[i, j] -= weight * weights[k, j]
    _hebbian_finish(delta, batch, mean, offset, coefficient)


@kernel
def solve_right(matrix, target, lu, pivots, column):
    """solve_right: target ← target · matrix⁻¹ (rows solved against ``matrix``).

    Returns :data:`STATUS_SOLVE_SINGULAR` for a singular matrix (target untouched).
    """
    if not solve_rows(matrix, target, target, lu, pivots, column):
        return STATUS_SOLVE_SINGULAR
    return STATUS_OK


@kernel
def third_factor(basal, gate_value, average_burst, moment, pre, delta, coefficient, lu,
                 pivots, column, precision, factor):
    """third_factor: delta += ρη Σ_b [e_b]₊ ([g_b]₊ − p̄) pre_bᵀ, e = d Q̂_b⁻¹ / diag(Q̂_b⁻¹).

    Returns :data:`STATUS_MOMENT_SINGULAR` for a singular Q̂_b (delta untouched).
    """
    batch, n = basal.shape
    if not lu_factor(moment, lu, pivots):
        return STATUS_MOMENT_SINGULAR
    for c in range(n):  # column c of Q̂_b⁻¹
        for i in range(n):
            column[i] = 1.0 if i == c else 0.0
        lu_solve(lu, pivots, column)
        for i in range(n):
            precision[i, c] = column[i]
    for b in range(batch):
        for i in range(n):
            total = 0.0
            for k in range(n):
                total += basal[b, k] * precision[k, i]
            decorrelated = max(total / precision[i, i], 0.0)
            burst = max(gate_value[b, i], 0.0)
            factor[b, i] = decorrelated * (burst - average_burst[i])
    n_pre = pre.shape[1]
    for i in range(n):
        for j in range(n_pre):
            total = 0.0
            for b in range(batch):
                total += factor[b, i] * pre[b, j]
            delta[i, j] += coefficient * total
    return STATUS_OK


@kernel
def _prediction_error(basal, prediction, error):
    for b in range(basal.shape[0]):
        for i in range(basal.shape[1]):
            error[b, i] = max(basal[b, i], 0.0) - prediction[b, i]


@kernel
def predictive_gate_dense(basal, prediction, normalised, weights, learning_rate, error):
    """predictive_gate, dense: W_g += η_g Σ_b ([d_b]₊ − ĝ_b)ᵀ ã_b."""
    _prediction_error(basal, prediction, error)
    batch, n_units = error.shape
    for i in range(n_units):
        for j in range(normalised.shape[1]):
            total = 0.0
            for b in range(batch):
                total += error[b, i] * normalised[b, j]
            weights[i, j] += learning_rate * total


@kernel
def predictive_gate_kernel(basal, prediction, normalised, weights, learning_rate, kernel_taps,
                           taps, error, sums):
    """predictive_gate, shared kernel: each tap learns the sum of its units' updates, then
    W_g is rebuilt from the kernel (zero outside each unit's arbor)."""
    _prediction_error(basal, prediction, error)
    batch, n_units = error.shape
    n_source = normalised.shape[1]
    for t in range(sums.shape[0]):
        sums[t] = 0.0
    for i in range(n_units):  # in the order of NumPy's bincount over the flattened arrays
        for j in range(n_source):
            tap = taps[i, j]
            if tap >= 0:
                total = 0.0
                for b in range(batch):
                    total += error[b, i] * normalised[b, j]
                sums[tap] += learning_rate * total
    for t in range(sums.shape[0]):
        kernel_taps[t] += sums[t]
    for i in range(n_units):
        for j in range(n_source):
            tap = taps[i, j]
            weights[i, j] = kernel_taps[tap] if tap >= 0 else 0.0


@kernel
def _cost_gradient(weights, covariance, power, gradient):
    """Each unit's budget gradient up to a factor 2: C (weight norm) or C q (power)."""
    n_out, n_in = weights.shape
    if power:
        for i in range(n_out):
            for j in range(n_in):
                gradient[i, j] = 0.0
            for k in range(n_in):
                weight = weights[i, k]
                for j in range(n_in):
                    gradient[i, j] += weight * covariance[k, j]
    else:
        copy_into(weights, gradient)


@kernel
def constrain(weights, delta, use_delta, power, per_unit, value, covariance, natural,
              gradient, cost):
    """constrain: project ΔC on the budget's tangent plane, add it, rescale C onto the budget.

    The component removed lies along the cost's gradient (C for a weight norm, C q for a power
    budget), or along C itself for a natural-gradient step, and is measured with the gradient
    (:func:`plasticsim.model.constraints.norms.constrain`). ``gradient`` (M × N) and ``cost``
    (M,) are float64 scratch.
    """
    n_out, n_in = weights.shape
    if use_delta:
        _cost_gradient(weights, covariance, power, gradient)
        if per_unit:
            for i in range(n_out):
                along = 0.0
                squared = 0.0
                for j in range(n_in):
                    direction = weights[i, j] if natural else gradient[i, j]
                    along += delta[i, j] * gradient[i, j]
                    squared += direction * gradient[i, j]
                coefficient = along / squared
                for j in range(n_in):
                    direction = weights[i, j] if natural else gradient[i, j]
                    delta[i, j] -= coefficient * direction
        else:
            along = 0.0
            squared = 0.0
            for i in range(n_out):
                for j in range(n_in):
                    direction = weights[i, j] if natural else gradient[i, j]
                    along += delta[i, j] * gradient[i, j]
                    squared += direction * gradient[i, j]
            coefficient = along / squared
            for i in range(n_out):
                for j in range(n_in):
                    direction = weights[i, j] if natural else gradient[i, j]
                    delta[i, j] -= coefficient * direction
        for i in range(n_out):
            for j in range(n_in):
                weights[i, j] += delta[i, j]
    _cost_gradient(weights, covariance, power, gradient)
    for i in range(n_out):
        total = 0.0
        for j in range(n_in):
            total += weights[i, j] * gradient[i, j]
        cost[i] = total
    if per_unit:
        for i in range(n_out):
            factor = np.sqrt(value / cost[i])
            for j in range(n_in):
                weights[i, j] *= factor
    else:
        total = 0.0
        for i in range(n_out):
            total += cost[i]
        factor = np.sqrt(n_out * value / total)
        for i in range(n_out):
            for j in range(n_in):
                weights[i, j] *= factor


@kernel
def apply_delta(weights, delta):
    """apply_delta: weights += delta."""
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            weights[i, j] += delta[i, j]


@kernel
def clip(weights, minimum, zero_diagonal):
    """clip: weights ← max(weights, minimum), optionally with a zero diagonal."""
    for i in range(weights.shape[0]):
        for j in range(weights.shape[1]):
            weights[i, j] = max(weights[i, j], minimum)
    if zero_diagonal:
        for i in range(min(weights.shape[0], weights.shape[1])):
            weights[i, i] = 0.0


@kernel
def bounded_hebbian(post, pre, weights, arbor, k1, k2, inverse_variance, lower, upper, rate):
    """bounded_hebbian (Linsker 1986): w += η A ⊙ (Σ_b post_bᵀ pre_b/q₀ + B(k₁ + k₂ Σ_k w_k)),
    then A c₋ ≤ w ≤ A c₊; synapses outside the arbor (A = 0) are skipped."""
    batch, n_post = post.shape
    n_pre = pre.shape[1]
    for i in range(n_post):
        total = 0.0
        for j in range(n_pre):
            total += weights[i, j]
        drift = batch * (k1 + k2 * total)
        for j in range(n_pre):
            density = arbor[i, j]
            if density == 0.0:
                continue
            hebbian = 0.0
            for b in range(batch):
                hebbian += post[b, i] * pre[b, j]
            value = weights[i, j] + rate * density * (hebbian * inverse_variance + drift)
            weights[i, j] = min(max(value, lower * density), upper * density)


# ---------------------------------------------------------------- sparse coding
@kernel
def _lca_geometry(weights, tiny, gains, directions, overlaps):
    """Gains g_i = ‖φ_i‖ (at least ``tiny``), unit directions u_i, overlaps UUᵀ."""
    n_units, n_pixels = weights.shape
    for i in range(n_units):
        squared = 0.0
        for j in range(n_pixels):
            squared += weights[i, j] * weights[i, j]
        gains[i] = max(np.sqrt(squared), tiny)
        for j in range(n_pixels):
            directions[i, j] = weights[i, j] / gains[i]
    np.dot(directions, directions.T, overlaps)


@kernel
def _largest_eigenvalue(overlaps):
    """λ_max of the symmetric overlaps; NaN when they are not finite (NumPy's dt stays then)."""
    for i in range(overlaps.shape[0]):
        for j in range(overlaps.shape[1]):
            if not np.isfinite(overlaps[i, j]):
                return np.nan
    return np.linalg.eigvalsh(overlaps)[-1]


@kernel
def _times_overlaps(values, overlaps, out, use_blas):
    """out = values · overlaps for a batch."""
    if use_blas:
        np.dot(values, overlaps, out)
    else:
        for b in range(values.shape[0]):
            vecmat(values[b], overlaps, out[b])


@kernel
def lca(patches, weights, target, cauchy, sparsity, prior_scale, steps, dt, tiny, gains,
        directions, overlaps, drive, state, active, product, use_blas):
    """lca: sparse coefficients of the patches (:func:`plasticsim.model.neurons.lca.lca_inference`).

    ``cauchy``: the Cauchy prior (contributions start at the least-squares fit and descend
    E), else L1 (soft-threshold LCA from zero potentials). The Euler step shrinks where it
    would be unstable (:func:`plasticsim.model.neurons.lca.stable_lca_step`). Scratch: gains
    (M,), directions (M × N), overlaps (M × M), drive, state, active, product (B × M).
    """
    batch, n_units = target.shape
    _lca_geometry(weights, tiny, gains, directions, overlaps)
    if use_blas:
        np.dot(patches, directions.T, drive)
    else:
        for b in range(batch):
            matvec(directions, patches[b], drive[b])
    smallest_gain = gains[0]
    for i in range(n_units):
        smallest_gain = min(smallest_gain, gains[i])
    curvature = 0.0
    if cauchy:
        curvature = 2.0 * sparsity / (prior_scale * smallest_gain) ** 2
    largest = _largest_eigenvalue(overlaps)
    # As Python's min(dt, 1 / max(λ + c, 1)) in the reference, NaN included.
    bound = largest + curvature
    if not bound > 1.0:
        bound = 1.0 if not np.isnan(bound) else bound
    limit = 1.0 / bound
    step_size = limit if limit < dt else dt  # noqa: FURB136  (min() may differ on NaN)
    if cauchy:
        copy_into(drive, state)
        for _ in range(steps):
            _times_overlaps(state, overlaps, product, use_blas)
            for b in range(batch):
                for i in range(n_units):
                    coefficient = state[b, i] / gains[i]
                    slope = 2.0 * coefficient / (prior_scale * prior_scale
                                                 + coefficient * coefficient) / gains[i]
                    state[b, i] += step_size * (drive[b, i] - product[b, i]
                                                - sparsity * slope)
        for b in range(batch):
            for i in range(n_units):
                target[b, i] = state[b, i] / gains[i]
        return
    # L1: τu̇ = b − u − (UUᵀ − I) c, c the soft threshold of u (the lateral weights UUᵀ − I
    # overwrite the overlaps, whose eigenvalue is known by now).
    for i in range(n_units):
        overlaps[i, i] -= 1.0
    # The potentials start at 0, so the first step has no inhibition: u = dt·b. Each later
    # step makes one pass over the batch that updates the potentials and thresholds them
    # for the next product (the lateral product is the only other work).
    for b in range(batch):
        for i in range(n_units):
            state[b, i] = step_size * drive[b, i]
    if steps > 0:
        _soft_threshold(state, sparsity, active)
    for _ in range(steps - 1):
        _times_overlaps(active, overlaps, product, use_blas)
        for b in range(batch):
            for i in range(n_units):
                value = state[b, i] + step_size * (drive[b, i] - state[b, i] - product[b, i])
                state[b, i] = value
                magnitude = abs(value) - sparsity
                if magnitude > 0.0:
                    active[b, i] = magnitude if value > 0.0 else -magnitude
                else:
                    active[b, i] = 0.0
    for b in range(batch):
        for i in range(n_units):
            target[b, i] = active[b, i] / gains[i]


@kernel
def _soft_threshold(potentials, threshold, out):
    """sign(u) max(|u| − λ, 0)."""
    for b in range(potentials.shape[0]):
        for i in range(potentials.shape[1]):
            value = potentials[b, i]
            magnitude = abs(value) - threshold
            if magnitude > 0.0:
                out[b, i] = magnitude if value > 0.0 else -magnitude
            else:
                out[b, i] = 0.0


@kernel
def residual(inputs, code, weights, target, use_blas):
    """residual: target ← input − code · weights."""
    batch, n_pixels = target.shape
    if use_blas:
        np.dot(code, weights, target)
        for b in range(batch):
            for j in range(n_pixels):
                target[b, j] = inputs[b, j] - target[b, j]
    else:
        for b in range(batch):
            vecmat(code[b], weights, target[b])
            for j in range(n_pixels):
                target[b, j] = inputs[b, j] - target[b, j]


@kernel
def gain_normalisation(variance, gain, weights, goal, exponent):
    """gain_normalisation: g ← max(g (v/goal)^γ, 10⁻⁶); rows of W rescaled to norm g."""
    n_units, n_pixels = weights.shape
    for i in range(n_units):
        gain[i] *= (variance[i] / goal) ** exponent
        # A unit silent for very long has v → 0; keep its gain representable.
        gain[i] = max(gain[i], 1e-6)
        squared = 0.0
        for j in range(n_pixels):
            squared += weights[i, j] * weights[i, j]
        factor = gain[i] / np.sqrt(squared)
        for j in range(n_pixels):
            weights[i, j] *= factor


# ----------------------------------------------------------------------- spiking
@exact_kernel
def lif_window(drive, lateral, has_lateral, thresholds, target, steps, dt, potentials,
               lateral_transposed, inhibition, spiking):
    """lif_window: spike counts of LIF units over a window
    (:func:`plasticsim.model.neurons.lif.lif_spike_counts`).

    Spikes are 0 or 1, so the inhibition Σ_j s_j W_ij sums the rows of Wᵀ of the units that
    spiked, in increasing j: the order in which BLAS sums s Wᵀ for the reference (zero terms
    add nothing), so the same units cross threshold. Scratch: potentials (M,), Wᵀ (M × M),
    inhibition (M,), spiking (M,) int64.
    """
    batch, n = drive.shape
    if has_lateral:
        for i in range(n):
            for j in range(n):
                lateral_transposed[j, i] = lateral[i, j]
    for b in range(batch):
        n_spiking = 0
        for i in range(n):
            potentials[i] = 0.0
            target[b, i] = 0.0
        for _ in range(steps):
            for i in range(n):
                inhibition[i] = 0.0
            if has_lateral:
                for s in range(n_spiking):
                    row = spiking[s]
                    for i in range(n):
                        inhibition[i] += lateral_transposed[row, i]
            n_spiking = 0
            for i in range(n):
                potentials[i] += dt * (drive[b, i] - potentials[i] - inhibition[i])
                if potentials[i] > thresholds[i]:
                    potentials[i] = 0.0  # reset the units that fired
                    target[b, i] += 1.0
                    spiking[n_spiking] = i
                    n_spiking += 1


@kernel
def homeostasis(source, target, rate, target_rate):
    """homeostasis: target += γ (⟨source⟩_batch − p)."""
    batch, n = source.shape
    for i in range(n):
        total = 0.0
        for b in range(batch):
            total += source[b, i]
        target[i] += rate * (total / batch - target_rate)


@kernel
def som_competition(inputs, weights, distances, width, bubble, target):
    """som_competition: target_b ← h(d(i, i*_b); σ), i* the best-matching unit of input b
    (smallest ‖w_i‖² − 2 x_b·w_i; ties go to the lower index, as NumPy's argmin)."""
    batch, dimensions = inputs.shape
    units = weights.shape[0]
    for b in range(batch):
        best = 0
        best_value = np.inf
        for i in range(units):
            norm = 0.0
            product = 0.0
            for k in range(dimensions):
                norm += weights[i, k] * weights[i, k]
                product += inputs[b, k] * weights[i, k]
            value = norm - 2.0 * product
            if value < best_value:
                best_value = value
                best = i
        for i in range(units):
            d = distances[best, i]
            if bubble:
                target[b, i] = 1.0 if d <= width else 0.0
            else:
                target[b, i] = np.exp(-(d * d) / (2.0 * width * width))


@kernel
def trace(source, target, length, rate):
    """trace: target_t ← (1 − δ) target_{t−1} + δ source_t along each sequence of ``length``
    consecutive batch rows, from target_{−1} = 0."""
    batch, n = source.shape
    for start in range(0, batch, length):
        for i in range(n):
            previous = 0.0
            for t in range(length):
                previous = (1.0 - rate) * previous + rate * source[start + t, i]
                target[start + t, i] = previous

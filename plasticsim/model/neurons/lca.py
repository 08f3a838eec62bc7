"""Sparse-coding units: Olshausen & Field inference as locally competitive dynamics (LCA).

Olshausen & Field (1996, 1997) find a dictionary Φ under which natural image patches x have
sparse coefficients a, by minimising E(x, a; Φ) = ½‖x − Φa‖² + λ Σ_i S(a_i), with
S(a) = log(1 + a²/σ²) (``prior: cauchy``, their own) or, for ``prior: l1``, λ‖φ_i‖·|a_i| (the
L1 norm of each unit's contribution φ_i a_i; the plain |a_i| for unit-norm basis functions).

Inference runs as neural dynamics (Rozell et al. 2008, *Neural Comput* 20:2526, the locally
competitive algorithm): each basis function is a gain times a unit direction, φ_i = g_i u_i;
unit i is driven by u_iᵀx and inhibited by every active unit j through the overlap u_iᵀu_j.
The dynamics are integrated with ``inference_steps`` Euler steps of ``dt`` membrane time
constants (see :func:`lca_inference` for the equations and why they run on the normalised
directions). The population's one feedforward projection is its dictionary (weights
Φᵀ, units × pixels; rule ``sparse_coding_dictionary``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from ...schema import AveragingRate, PositiveFinite, Size, Spec
from ..registry import register_neuron


class LcaPopulationSpec(Spec):
    """Sparse-coding units (LCA inference). Defaults: sparsenet.m's λ = 0.022, σ = 0.316."""

    kind: Literal["lca"] = "lca"
    size: Size
    prior: Literal["cauchy", "l1"] = "cauchy"
    sparsity: PositiveFinite = 0.022          # λ
    prior_scale: PositiveFinite = 0.316        # σ (Cauchy prior only)
    inference_steps: Annotated[int, Field(gt=0, le=100_000)] = 60
    dt: AveragingRate = 0.2


def cauchy_slope(coefficients: np.ndarray, prior_scale: float) -> np.ndarray:
    """S′(a) for S(a) = log(1 + a²/σ²): 2a / (σ² + a²)."""
    return 2.0 * coefficients / (prior_scale**2 + coefficients**2)


def soft_threshold(potentials: np.ndarray, threshold: float) -> np.ndarray:
    """The L1 prior's LCA output: sign(u)·max(|u| − λ, 0)."""
    return np.sign(potentials) * np.maximum(np.abs(potentials) - threshold, 0.0)


def lca_inference(patches: np.ndarray, weights: np.ndarray, *, prior: str, sparsity: float,
                  prior_scale: float, steps: int, dt: float) -> np.ndarray:
    """Sparse coefficients of ``patches`` by locally competitive dynamics.

    The basis functions φ_i = g_i u_i (rows of ``weights``) may have any norms (gains) g_i. The
    dynamics run on the unit-norm directions u_i: each unit's potential integrates its
    normalised drive u_iᵀx and is inhibited through u_iᵀu_j, so every unit settles at the same
    speed whatever its gain (with a unit leak and raw drives, a unit of gain g settles in
    ~1/g² time constants, and a fixed number of steps leaves small-gain units unfinished and
    too quiet). The fixed points are those of the energies below; a_i is the unit's
    contribution c_i = g_i a_i divided by its gain.

    - ``l1``: ½‖x − Φa‖² + λ Σ_i g_i |a_i| = ½‖x − Σ c_i u_i‖² + λ Σ_i |c_i|, the L1 norm
      of the contributions (the threshold is λ on the normalised drive). With unit-norm
      basis functions this is the ordinary lasso; for other norms it is the scale-invariant
      form, under which the gain only sets the coefficient's scale.
    - ``cauchy``: ½‖x − Φa‖² + λ Σ_i log(1 + a_i²/σ²), sparsenet.m's energy. Like
      sparsenet.m's conjugate gradient, descent starts from each unit's own least-squares
      coefficient φ_iᵀx/‖φ_i‖² rather than from 0: the prior is not convex, and from 0 a
      unit whose drive is below the prior's steepest slope stays in the well around 0.

    Parameters
    ----------
    patches : numpy.ndarray
        X, shape (batch, pixels).
    weights : numpy.ndarray
        Φᵀ, shape (units, pixels): row i is basis function φ_i.
    prior : {"cauchy", "l1"}
    sparsity : float
        λ.
    prior_scale : float
        σ of the Cauchy prior.
    steps : int
        Euler steps.
    dt : float
        Step size in membrane time constants.

    Returns
    -------
    numpy.ndarray
        a, shape (batch, units).

    Examples
    --------
    >>> phi = np.eye(4)
    >>> a = lca_inference(np.array([[1.0, 0, 0, 0]]), phi, prior="l1", sparsity=0.1,
    ...                   prior_scale=1.0, steps=200, dt=0.1)
    >>> np.round(a, 3)   # the soft threshold of the one active input
    array([[0.9, 0. , 0. , 0. ]])
    >>> a = lca_inference(np.array([[1.0, 0, 0, 0]]), 2 * phi, prior="l1", sparsity=0.1,
    ...                   prior_scale=1.0, steps=200, dt=0.1)
    >>> np.round(a, 3)   # twice the gain: the same contribution, half the coefficient
    array([[0.45, 0.  , 0.  , 0.  ]])
    """
    gains = np.maximum(np.linalg.norm(weights, axis=1), np.finfo(weights.dtype).tiny)
    directions = weights / gains[:, None]
    drive = patches @ directions.T                    # u_iᵀx: normalised drive
    overlaps = directions @ directions.T              # u_iᵀu_j: lateral weights, unit diagonal
    dt = stable_lca_step(overlaps, gains, dt, prior, sparsity, prior_scale)
    if prior == "l1":
        # LCA: τu̇ = b − u − (UᵀU − I)c; its fixed point u − c = b − UᵀUc = λ·sign(c) is
        # the L1 optimum of the contributions c.
        lateral = overlaps - np.eye(len(overlaps), dtype=overlaps.dtype)
        potentials = np.zeros_like(drive)
        for _ in range(steps):
            potentials += dt * (drive - potentials - soft_threshold(potentials, sparsity) @ lateral)
        return soft_threshold(potentials, sparsity) / gains
    # Cauchy prior: the potential is the contribution c_i = g_i a_i, leaking at rate 1 and
    # inhibited by unit j through u_iᵀu_j; −∂E/∂a_i = g_i(b_i − Σ_j u_iᵀu_j c_j) − λS′(a_i),
    # so τċ = (−∂E/∂a)/g descends E with a per-unit (diagonal) preconditioner.
    contributions = drive.copy()                      # each unit's own least-squares fit
    for _ in range(steps):
        slope = cauchy_slope(contributions / gains, prior_scale) / gains
        contributions += dt * (drive - contributions @ overlaps - sparsity * slope)
    return contributions / gains


def stable_lca_step(overlaps, gains, dt, prior, sparsity, prior_scale) -> float:
    """The Euler step actually used: ``dt``, shrunk where it would be unstable.

    Euler steps are stable only for dt·λ_max(UᵀU + prior curvature) < 2; a dictionary with
    strongly overlapping functions would otherwise blow up, so the step shrinks (the dynamics'
    fixed point, the code, does not depend on it). In contribution units the Cauchy prior's
    curvature is at most 2λ/(g_i σ)².
    """
    curvature = (2.0 * sparsity / (prior_scale * gains.min())**2
                 if prior == "cauchy" else 0.0)
    return min(dt, 1.0 / max(float(np.linalg.eigvalsh(overlaps)[-1]) + curvature, 1.0))


@register_neuron(LcaPopulationSpec)
def build_lca(population, ctx) -> None:
    """activity ← LCA code of the input under the dictionary (slot ``settle``)."""
    spec = population.spec
    if len(population.incoming) != 1:
        ctx.error(population.key, "an lca population codes the output of exactly one "
                  f"population through its dictionary projection (found "
                  f"{len(population.incoming)} projections into it)")
    if population.recurrent:
        ctx.error(population.recurrent[0].key, "lca units compete through the overlaps of "
                  "their dictionary; a separate projection onto themselves is not used")
    dictionary = population.incoming[0]
    activity = ctx.state(f"{population.name}.activity", (ctx.batch_size, population.size),
                         role="activity", description="sparse coefficients a "
                         "(batch × units)")
    population.output = population.learning_activity = activity
    ctx.op("lca", "settle", population=population,
           reads={"input": dictionary.pre.output, "weights": dictionary.weights},
           writes={"target": activity},
           parameters={"prior": spec.prior, "sparsity": float(spec.sparsity),
                       "prior_scale": float(spec.prior_scale),
                       "steps": int(spec.inference_steps), "dt": float(spec.dt)},
           origin=population.key)

    def coefficient_metrics(state):
        coefficients = state[activity]
        return {"mean_abs_coefficient": float(np.mean(np.abs(coefficients)))}
    ctx.metric(("mean_abs_coefficient",), coefficient_metrics, needs_step=True,
               owner=population.name)

"""Olshausen–Field sparse coding as a network: LCA inference, Hebbian dictionary learning.

Olshausen & Field (1996, 1997) find a dictionary Φ (pixels × units) under which natural
image patches x have sparse coefficients a, by minimising

    E(x, a; Φ) = ½‖x − Φa‖² + λ Σ_i S(a_i),

with S(a) = log(1 + a²/σ²) (their Cauchy-like prior) or, for L1, λ‖φ_i‖·|a_i| (the L1 norm
of each unit's contribution φ_i a_i; the plain |a_i| when basis functions have unit norm).

**Inference as neural dynamics** (Rozell et al. 2008, *Neural Comput* 20:2526, the locally
competitive algorithm). Write each basis function as φ_i = g_i u_i, a gain g_i times a unit
direction u_i. Each unit i has a membrane potential driven by its normalised feedforward
input b_i = u_iᵀx and inhibited by every active unit j through a lateral weight
G_ij = u_iᵀu_j (i ≠ j), the overlap of their basis functions:

    τ u̇ = b − u − G c,    c_i = g_i a_i (the unit's contribution to the reconstruction).

For the L1 prior c = T(u) is the soft threshold at λ (units below threshold are silent and
inhibit nobody). For the Cauchy prior the contribution is the potential itself, with a
self-term from the prior's slope, started (as sparsenet.m's conjugate gradient) at each
unit's own least-squares fit. Both descend E (:func:`lca_inference`); they are integrated
with ``inference_steps`` Euler steps of size ``dt`` (in τ).

**Learning.** After inference each basis function moves along the residual r = x − Φa, a
Hebbian product of the unit's activity and the reconstruction error it sees:
ΔΦ = η ⟨r aᵀ⟩ (the batch mean).

**Gain normalisation** (sparsenet.m) keeps every coefficient's variance near
``variance_goal``: a running average v_i of ⟨a_i²⟩ (rate ``variance_rate`` per batch) sets
g_i ← g_i (v_i / goal)^γ, and each basis function is rescaled to norm g_i. The rule is a
stable homeostat only where a unit's equilibrium variance *falls* as its gain grows. Two
things broke that with inference by neural dynamics, and both are fixed here:

1. *The penalty.* With λ|a_i| on the coefficient and a fixed threshold, a unit's drive
   g_i u_iᵀx shrinks with its gain while the threshold does not, so a unit of small gain
   is silenced: v_i(g) rises from 0, peaks and only then falls like 1/g². On the rising
   branch the rule is positive feedback (less variance → smaller gain → less drive →
   silence for good). The L1 penalty here is on the contribution, λ Σ g_i|a_i| = λ Σ |c_i|:
   the code c no longer depends on g_i, v_i = ⟨c_i²⟩ / g_i² falls strictly with g_i, and the
   rule converges to g_i = (⟨c_i²⟩ / goal)^½ from any start. (sparsenet.m's Cauchy prior
   keeps a small-gain unit's large coefficient instead, because its slope vanishes for
   large a and its descent starts at the least-squares coefficient.)
2. *Unfinished dynamics.* With raw drives and a unit leak, a unit of gain g settles in
   ~1/g² time constants; a fixed number of steps leaves small-gain units short of their
   fixed point, so their variance grew with their gain — the same positive feedback. The
   dynamics now run on the normalised directions, and every unit settles alike.

What remains of the gain at equilibrium: it scales every coefficient to the goal variance
and, because the Hebbian step is η r a_i = η r c_i / g_i on a function of norm g_i, it turns
each unit's direction at a rate ∝ goal / ⟨c_i²⟩: rarely used units learn faster. With the
variance average at rate r and the gain exponent γ, the loop (log g against log v) is a
damped oscillator with damping ratio (r / 8γ)^½; the default r = 0.05, γ = 0.02 gives 0.56
(sparsenet.m's r = 0.001 gives 0.08, which rings for thousands of batches).
"""

from __future__ import annotations

import numpy as np

from . import register_network
from .base import ImageNetworkSimulation


def cauchy_slope(coefficients: np.ndarray, prior_scale: float) -> np.ndarray:
    """S′(a) for S(a) = log(1 + a²/σ²): 2a / (σ² + a²)."""
    return 2.0 * coefficients / (prior_scale**2 + coefficients**2)


def soft_threshold(potentials: np.ndarray, threshold: float) -> np.ndarray:
    """The L1 prior's LCA output: sign(u)·max(|u| − λ, 0)."""
    return np.sign(potentials) * np.maximum(np.abs(potentials) - threshold, 0.0)


def lca_inference(patches: np.ndarray, dictionary: np.ndarray, *, prior: str, sparsity: float,
                  prior_scale: float, steps: int, dt: float) -> np.ndarray:
    """Sparse coefficients of ``patches`` by locally competitive dynamics.

    The basis functions φ_i = g_i u_i may have any norms (gains) g_i. The dynamics run on the
    unit-norm directions u_i: each unit's potential integrates its normalised drive u_iᵀx
    and is inhibited through u_iᵀu_j, so every unit settles at the same speed whatever its
    gain (with a unit leak and raw drives, a unit of gain g settles in ~1/g² time
    constants, and a fixed number of steps leaves small-gain units unfinished and too
    quiet). The fixed points are those of the energies below; a_i is the unit's
    contribution c_i = g_i a_i divided by its gain.

    - ``l1``: ½‖x − Φa‖² + λ Σ_i g_i |a_i| = ½‖x − Σ c_i u_i‖² + λ Σ_i |c_i|, the L1 norm
      of the contributions (the threshold is λ on the normalised drive). With unit-norm
      basis functions this is the ordinary lasso; for other norms it is the scale-invariant
      form, under which the gain only sets the coefficient's scale (see the class).
    - ``cauchy``: ½‖x − Φa‖² + λ Σ_i log(1 + a_i²/σ²), sparsenet.m's energy. Like
      sparsenet.m's conjugate gradient, descent starts from each unit's own least-squares
      coefficient φ_iᵀx/‖φ_i‖² rather than from 0: the prior is not convex, and from 0 a
      unit whose drive is below the prior's steepest slope stays in the well around 0.

    Parameters
    ----------
    patches : numpy.ndarray
        X, shape (batch, pixels).
    dictionary : numpy.ndarray
        Φ, shape (pixels, units).
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
    gains = np.maximum(np.linalg.norm(dictionary, axis=0), np.finfo(dictionary.dtype).tiny)
    directions = dictionary / gains
    drive = patches @ directions                      # u_iᵀx: normalised drive
    overlaps = directions.T @ directions              # u_iᵀu_j: lateral weights, unit diagonal
    # Euler steps are stable only for dt·λ_max(UᵀU + prior curvature) < 2; a dictionary
    # with strongly overlapping functions would otherwise blow up, so the step shrinks
    # (the dynamics' fixed point, the code, does not depend on it).
    # In contribution units the Cauchy prior's curvature is at most 2λ/(g_i σ)².
    curvature = (2.0 * sparsity / (prior_scale * gains.min())**2
                 if prior == "cauchy" else 0.0)
    dt = min(dt, 1.0 / max(np.linalg.eigvalsh(overlaps)[-1] + curvature, 1.0))
    if prior == "l1":
        # LCA: τu̇ = b − u − (UᵀU − I)c; its fixed point u − c = b − UᵀUc = λ·sign(c) is
        # the L1 optimum of the contributions c.
        lateral = overlaps - np.eye(len(overlaps))
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


class SparseCodingSimulation(ImageNetworkSimulation):
    """Olshausen–Field network built from a protocol (model ``network.kind: sparse_coding``).

    Weights are stored as units × pixels (``feedforward`` = Φᵀ), like every feedforward
    projection in the results file; the receptive fields default to the basis functions, as
    O&F reported them.
    """

    def __init__(self, spec):
        super().__init__(spec, "sparse_coding_dictionary")
        dictionary = self.init_scale * self.init_rng.standard_normal(
            (self.n_inputs, self.n_units))
        self.dictionary = (dictionary / np.linalg.norm(dictionary, axis=0)).astype(self.dtype)
        self.gain = np.ones(self.n_units)
        self.coefficient_variance = np.full(self.n_units, self.network.variance_goal)

    @property
    def feedforward(self) -> np.ndarray:
        return self.dictionary.T

    def respond(self, patches: np.ndarray) -> np.ndarray:
        """Coefficients a of ``patches`` (batch × pixels) under the current dictionary."""
        network = self.network
        return lca_inference(patches, self.dictionary, prior=network.prior,
                             sparsity=network.sparsity, prior_scale=network.prior_scale,
                             steps=network.inference_steps, dt=network.dt)

    def _step(self, patches: np.ndarray) -> None:
        network = self.network
        coefficients = self.respond(patches)
        residual = patches - coefficients @ self.dictionary.T
        batch = len(patches)
        # Hebbian on the residual: each synapse Φ_ki sees its unit's a_i and pixel k's error.
        self.dictionary += self.rate(self.feedforward_name) * (residual.T @ coefficients) / batch
        self.coefficient_variance += network.variance_rate * (
            np.mean(coefficients**2, axis=0) - self.coefficient_variance)
        self.gain *= (self.coefficient_variance / network.variance_goal) ** network.gain_exponent
        # A unit silent for very long has v → 0; keep its gain representable.
        np.maximum(self.gain, 1e-6, out=self.gain)
        self.dictionary *= self.gain / np.linalg.norm(self.dictionary, axis=0)
        self.last_batch_metrics = {
            "relative_residual": float(np.sum(residual**2) / max(np.sum(patches**2), 1e-300)),
            "mean_abs_coefficient": float(np.mean(np.abs(coefficients))),
            # "active": above a tenth of the coefficients' typical size, so both priors
            # (exact zeros for L1, small values for Cauchy) are judged alike.
            "active_fraction": float(np.mean(np.abs(coefficients)
                                             > 0.1 * np.sqrt(network.variance_goal))),
            "mean_gain": float(np.mean(self.gain)),
        }

    def record_metrics(self) -> dict[str, float]:
        """Scalars of the last batch (NaN before the first), for ``/metrics``."""
        names = ("relative_residual", "mean_abs_coefficient", "active_fraction", "mean_gain")
        return {name: self.last_batch_metrics.get(name, np.nan) for name in names}

    def extra_weights(self) -> dict[str, np.ndarray]:
        return {"gain": self.gain.copy(),
                "coefficient_variance": self.coefficient_variance.copy()}


register_network("sparse_coding")(SparseCodingSimulation)

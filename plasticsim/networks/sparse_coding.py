"""Olshausen–Field sparse coding as a network: LCA inference, Hebbian dictionary learning.

Olshausen & Field (1996, 1997) find a dictionary Φ (pixels × units) under which natural
image patches x have sparse coefficients a, by minimising

    E(x, a; Φ) = ½‖x − Φa‖² + λ Σ_i S(a_i),

with S(a) = log(1 + a²/σ²) (their Cauchy-like prior) or S(a) = |a| (L1).

**Inference as neural dynamics** (Rozell et al. 2008, *Neural Comput* 20:2526, the locally
competitive algorithm). Each unit i has a membrane potential u_i driven by its feedforward
input b_i = φ_iᵀx and inhibited by every active unit j through a lateral weight
G_ij = φ_iᵀφ_j (i ≠ j), the overlap of their basis functions:

    τ u̇ = b − u − G a,    G = ΦᵀΦ − I.

For the L1 prior a = T(u) is the soft threshold at λ (units below threshold are silent and
inhibit nobody). For the Cauchy prior the coefficient is the potential itself, leaking at
the rate ‖φ_i‖² of its own basis function, with a self-term from the prior's slope:
τ ȧ = b − ΦᵀΦ a − λ S′(a), S′(a) = 2a/(σ² + a²). Both
descend E; they are integrated with ``inference_steps`` Euler steps of size ``dt`` (in τ).

**Learning.** After inference each basis function moves along the residual r = x − Φa, a
Hebbian product of the unit's activity and the reconstruction error it sees:
ΔΦ = η ⟨r aᵀ⟩ (the batch mean). **Gain normalisation** (sparsenet.m) then keeps the
coefficients' variances near ``variance_goal``: a running variance v_i of a_i sets the gain
g_i ← g_i (v_i / goal)^γ, and each basis function is rescaled to norm g_i. Without it the
L1/Cauchy penalty would shrink the coefficients by letting Φ grow.
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
    """
    drive = patches @ dictionary                      # b = Φᵀx, per sample
    overlaps = dictionary.T @ dictionary              # ΦᵀΦ: lateral weights plus self-leak
    # Euler steps are stable only for dt·λ_max(ΦᵀΦ + prior curvature) < 2; a dictionary
    # with strongly overlapping functions would otherwise blow up, so the step shrinks
    # (the dynamics' fixed point, the code, does not depend on it).
    curvature = 2.0 * sparsity / prior_scale**2 if prior == "cauchy" else 0.0
    dt = min(dt, 1.0 / max(np.linalg.eigvalsh(overlaps)[-1] + curvature, 1.0))
    if prior == "l1":
        # LCA: τu̇ = b − u − (ΦᵀΦ − I)a; its fixed point u − a = b − ΦᵀΦa = λ·sign(a) is
        # the L1 optimum for any norms of the basis functions.
        lateral = overlaps - np.eye(len(overlaps))
        potentials = np.zeros_like(drive)
        for _ in range(steps):
            potentials += dt * (drive - potentials - soft_threshold(potentials, sparsity) @ lateral)
        return soft_threshold(potentials, sparsity)
    # Cauchy prior: the coefficient is the potential; unit i leaks at rate ‖φ_i‖² and is
    # inhibited by unit j through φ_iᵀφ_j, so the dynamics descend E exactly.
    coefficients = np.zeros_like(drive)
    for _ in range(steps):
        coefficients += dt * (drive - coefficients @ overlaps
                              - sparsity * cauchy_slope(coefficients, prior_scale))
    return coefficients


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

"""SAILnet (Zylberberg, Murphy & DeWeese 2011): sparse coding by spiking units and local rules.

Each unit i is a leaky integrate-and-fire neuron. While a patch x is shown (``time_steps``
Euler steps of ``dt`` membrane time constants), its potential follows

    τ u̇_i = −u_i + Σ_k Q_ik x_k − Σ_j W_ij s_j(t),

where s_j(t) ∈ {0, 1} says whether unit j spiked on the previous step; a unit spikes when
u_i > θ_i and is reset to 0. The spike counts n_i over the window are all the rules see
(batch means over the mini-batch):

- feedforward, Oja's rule:           ΔQ_ik = β n_i (x_k − n_i Q_ik)
- lateral, Földiák's anti-Hebbian:    ΔW_ij = α (n_i n_j − p²), then W ≥ 0, W_ii = 0
- homeostatic thresholds:            Δθ_i = γ (n_i − p)

so every unit fires p spikes per patch on average and pairs of units fire together no more
than chance (p²) would have them. β and α are the protocol's learning rates of the
``oja`` and ``foldiak_lateral`` projections; γ and p are in the model's ``network`` block.
Because lateral inhibition shapes the responses, the receptive fields are measured by
white-noise mapping through the whole network by default
(:func:`plasticsim.analysis.receptive_fields.map_receptive_fields`).
"""

from __future__ import annotations

import numpy as np

from ..errors import SpecError
from . import register_network
from .base import ImageNetworkSimulation


def lif_spike_counts(drive: np.ndarray, lateral: np.ndarray, thresholds: np.ndarray, *,
                     time_steps: int, dt: float) -> np.ndarray:
    """Spike counts of leaky integrate-and-fire units with lateral inhibition.

    Parameters
    ----------
    drive : numpy.ndarray
        Feedforward input Q x per sample and unit, shape (batch, units); constant over the
        window.
    lateral : numpy.ndarray
        W (units × units), W_ij ≥ 0: inhibition of unit i by a spike of unit j.
    thresholds : numpy.ndarray
        θ per unit.
    time_steps : int
        Euler steps per presentation.
    dt : float
        Step in membrane time constants.

    Returns
    -------
    numpy.ndarray
        Spike counts n, shape (batch, units).

    Examples
    --------
    >>> counts = lif_spike_counts(np.array([[3.0, 0.5]]), np.zeros((2, 2)), np.ones(2),
    ...                           time_steps=50, dt=0.1)
    >>> counts.tolist()   # the weakly driven unit never reaches threshold
    [[12.0, 0.0]]
    """
    potentials = np.zeros_like(drive)
    spikes = np.zeros_like(drive)
    counts = np.zeros_like(drive)
    for _ in range(time_steps):
        potentials += dt * (drive - potentials - spikes @ lateral.T)
        spikes = (potentials > thresholds).astype(drive.dtype)
        potentials *= 1.0 - spikes   # reset the units that fired
        counts += spikes
    return counts


class SailnetSimulation(ImageNetworkSimulation):
    """SAILnet built from a protocol (model ``network.kind: sailnet``).

    Weights: ``feedforward`` Q (units × pixels, rows of unit norm at the start), lateral W
    (starts at 0) and thresholds θ (start at ``initial_threshold``).
    """

    def __init__(self, spec):
        super().__init__(spec, "oja")
        lateral = [n for n, p in spec.model.projections.items() if p.rule == "foldiak_lateral"]
        if len(lateral) != 1:
            raise SpecError("a sailnet network needs exactly one projection with rule "
                            f"foldiak_lateral (found {len(lateral)})",
                            key_path="model.projections")
        self.lateral_projection = lateral[0]
        weights = self.init_rng.standard_normal((self.n_units, self.n_inputs))
        self.Q = (weights / np.linalg.norm(weights, axis=1, keepdims=True)).astype(self.dtype)
        self.W = np.zeros((self.n_units, self.n_units), dtype=self.dtype)
        self.thresholds = np.full(self.n_units, self.network.initial_threshold, self.dtype)

    @property
    def feedforward(self) -> np.ndarray:
        return self.Q

    def respond(self, patches: np.ndarray) -> np.ndarray:
        """Spike counts (batch × units) for ``patches`` (batch × pixels); no learning."""
        return lif_spike_counts(patches @ self.Q.T, self.W, self.thresholds,
                                time_steps=self.network.time_steps, dt=self.network.dt)

    def _step(self, patches: np.ndarray) -> None:
        network = self.network
        p = network.target_rate
        counts = self.respond(patches)
        batch = len(patches)
        alpha = self.rate(self.lateral_projection)
        beta = self.rate(self.feedforward_name)
        # Földiák: inhibition grows between units that fire together more than chance.
        self.W += alpha * (counts.T @ counts / batch - p**2)
        np.maximum(self.W, 0.0, out=self.W)    # inhibitory synapses stay inhibitory
        np.fill_diagonal(self.W, 0.0)
        # Oja: Hebbian growth with a decay that bounds ‖Q_i‖ (local: n_i² Q_ik).
        self.Q += beta * (counts.T @ patches - (counts**2).sum(axis=0)[:, None] * self.Q) / batch
        self.thresholds += network.threshold_rate * (counts.mean(axis=0) - p)
        self.last_batch_metrics = {
            "mean_rate": float(counts.mean()),
            "active_fraction": float(np.mean(counts > 0)),
            "mean_threshold": float(self.thresholds.mean()),
            "mean_lateral_weight": float(self.W.sum() / max(self.n_units * (self.n_units - 1), 1)),
        }

    def record_metrics(self) -> dict[str, float]:
        names = ("mean_rate", "active_fraction", "mean_threshold", "mean_lateral_weight")
        return {name: self.last_batch_metrics.get(name, np.nan) for name in names}

    def extra_weights(self) -> dict[str, np.ndarray]:
        return {self.lateral_projection: self.W.copy(), "thresholds": self.thresholds.copy()}


register_network("sailnet")(SailnetSimulation)

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
Because lateral inhibition shapes the responses, the receptive fields can be measured by
white-noise mapping through the whole network
(:func:`plasticsim.analysis.receptive_fields.map_receptive_fields`). White noise with the
training patches' pixel variance drives a learned unit far less than the natural patches it
is tuned to (its power is spread over every orientation and frequency), so the units barely
cross their thresholds and the map is mostly noise. Unless the model sets
``receptive_fields.probe_variance``, the probe amplitude is therefore calibrated
(:func:`calibrate_probe_variance`) so that the units fire at their target rate p on average,
as they do on natural patches.
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


def calibrate_probe_variance(respond, n_pixels: int, target_rate: float,
                             rng: np.random.Generator, start_variance: float = 1.0,
                             n_probes: int = 2000, iterations: int = 12) -> float:
    """Pixel variance of white-noise probes at which the units fire ``target_rate`` on average.

    Bisection on the probe standard deviation (doubling from ``start_variance`` until the
    mean spike count per unit and probe reaches the target, then halving the bracket);
    the same ``n_probes`` probes, rescaled, are used throughout, so the rate is monotone in
    the amplitude.

    Parameters
    ----------
    respond : callable
        Probes (batch × pixels) → spike counts (batch × units); must not learn.
    n_pixels : int
    target_rate : float
        p, spikes per unit per probe.
    rng : numpy.random.Generator
    start_variance : float, default 1.0
        First guess, e.g. the training patches' pixel variance.
    n_probes, iterations : int
        Probes per evaluation and bisection steps.

    Returns
    -------
    float
        The probe variance (the largest tried, 2¹⁰·``start_variance``, if even that leaves
        the units below the target).

    Examples
    --------
    >>> threshold_unit = lambda x: (x[:, :1] > 1.645).astype(float)  # P(N(0,1) > 1.645) = 0.05
    >>> variance = calibrate_probe_variance(threshold_unit, 4, 0.05, np.random.default_rng(0))
    >>> bool(0.8 < variance < 1.25)
    True
    """
    noise = rng.standard_normal((n_probes, n_pixels))

    def rate(sd: float) -> float:
        return float(np.mean(respond(noise * sd)))

    low = high = np.sqrt(start_variance)
    if rate(high) >= target_rate:
        while rate(low) >= target_rate and low > 1e-3 * np.sqrt(start_variance):
            low /= 2.0
        high = 2.0 * low
    else:
        while rate(high) < target_rate and high < 2.0**5 * np.sqrt(start_variance):
            low, high = high, 2.0 * high
        if rate(high) < target_rate:
            return float(high**2)
    for _ in range(iterations):
        middle = np.sqrt(low * high)
        if rate(middle) < target_rate:
            low = middle
        else:
            high = middle
    return float(np.sqrt(low * high) ** 2)


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

    def probe_variance(self) -> float:
        """Pixel variance of the white-noise probes: the model's, or calibrated to rate p."""
        mapping = self.network.receptive_fields
        if "probe_variance" in mapping.model_fields_set:
            return mapping.probe_variance
        start = float(np.mean(np.diag(self.stimulus.signal_covariance)))
        return calibrate_probe_variance(self.respond, self.n_inputs, self.network.target_rate,
                                        self.probe_rng, start_variance=start)

    def receptive_fields(self) -> dict[str, np.ndarray]:
        """Units × h × w fields: Q, or white-noise maps through the whole network."""
        mapping = self.network.receptive_fields
        if mapping.method == "weights":
            return super().receptive_fields()
        from ..analysis.receptive_fields import map_receptive_fields
        variance = self.probe_variance()
        self.last_probe_variance = variance
        fields = map_receptive_fields(self.respond, self.n_inputs, mapping.probes,
                                      self.probe_rng, variance)
        return {self.output_population: fields.reshape((-1,) + self.patch_shape)}

    def record_metrics(self) -> dict[str, float]:
        names = ("mean_rate", "active_fraction", "mean_threshold", "mean_lateral_weight")
        return {name: self.last_batch_metrics.get(name, np.nan) for name in names}

    def extra_weights(self) -> dict[str, np.ndarray]:
        return {self.lateral_projection: self.W.copy(), "thresholds": self.thresholds.copy()}


register_network("sailnet")(SailnetSimulation)

"""Leaky integrate-and-fire units counting spikes over a presentation window (SAILnet).

While an input x is shown (``time_steps`` Euler steps of ``dt`` membrane time constants),
unit i's potential follows

    τ u̇_i = −u_i + Σ_k Q_ik x_k − Σ_j W_ij s_j(t),

where s_j(t) ∈ {0, 1} says whether unit j spiked on the previous step (W is the population's
projection onto itself, if any: lateral inhibition). A unit spikes when u_i > θ_i and is
reset to 0. The spike counts n_i over the window are the population's output, what the rules
see. With ``homeostasis``, thresholds move as Δθ_i = γ (n_i − p) per batch (the batch mean of
n_i), so every unit fires ``target_rate`` p spikes per input on average (Zylberberg, Murphy &
DeWeese 2011).
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from ...schema import AveragingRate, OpenFraction, PositiveFinite, Size, Spec
from ..registry import register_neuron


class HomeostasisSpec(Spec):
    """Homeostatic thresholds: Δθ = ``rate`` (n − ``target_rate``), batch means of n."""

    target_rate: OpenFraction = 0.05   # p
    rate: PositiveFinite = 0.1                                   # γ


class LifPopulationSpec(Spec):
    """Leaky integrate-and-fire units; the output is the spike count per input."""

    kind: Literal["lif"] = "lif"
    size: Size
    time_steps: Annotated[int, Field(gt=0, le=100_000)] = 50
    dt: AveragingRate = 0.1
    initial_threshold: PositiveFinite = 2.0
    homeostasis: HomeostasisSpec | None = None

    @model_validator(mode="after")
    def _window_holds_a_spike(self):
        if self.time_steps * self.dt < 1.0:
            raise ValueError(f"time_steps·dt = {self.time_steps * self.dt:g} membrane time "
                             "constants is too short for a unit to integrate its input; "
                             "use at least 1")
        return self


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


@register_neuron(LifPopulationSpec)
def build_lif(population, ctx) -> None:
    """drive ← Σ x Qᵀ; counts ← LIF window (slot ``settle``); thresholds adapt (plasticity)."""
    spec = population.spec
    name, size = population.name, population.size
    if not population.incoming:
        ctx.error(population.key, "a lif population needs at least one projection from "
                  "another population (nothing drives it)")
    if len(population.recurrent) > 1:
        ctx.error(population.recurrent[1].key, "a lif population takes at most one "
                  "projection onto itself (its lateral inhibition)")
    drive = ctx.state(f"{name}.drive", (ctx.batch_size, size), role="activity",
                      description="feedforward input Σ Q x (batch × units)")
    counts = ctx.state(f"{name}.activity", (ctx.batch_size, size), role="activity",
                       description="spike counts per input (batch × units)", units="spikes")
    thresholds = ctx.state(f"{name}.thresholds", (size,),
                           np.full(size, spec.initial_threshold), role="weights",
                           description="firing thresholds θ")
    population.drive = drive
    population.output = population.learning_activity = counts
    for index, projection in enumerate(population.incoming):
        ctx.op("matmul", "drive", population=population,
               reads={"source": projection.pre.output, "weights": projection.weights},
               writes={"target": drive}, parameters={"accumulate": index > 0},
               origin=projection.key)
    reads = {"drive": drive, "thresholds": thresholds}
    if population.recurrent:
        reads["lateral"] = population.recurrent[0].weights
    ctx.op("lif_window", "settle", population=population, reads=reads,
           writes={"target": counts},
           parameters={"steps": int(spec.time_steps), "dt": float(spec.dt)},
           origin=population.key)
    ctx.result(f"weights/{name}_thresholds", lambda state: state[thresholds])
    if spec.homeostasis is not None:
        ctx.op("homeostasis", "plasticity", reads={"source": counts},
               writes={"target": thresholds},
               parameters={"rate": float(spec.homeostasis.rate),
                           "target_rate": float(spec.homeostasis.target_rate)},
               origin=f"{population.key}.homeostasis")

    def spiking_metrics(state):
        n = state[counts]
        return {"mean_rate": float(n.mean()), "active_fraction": float(np.mean(n > 0)),
                "mean_threshold": float(state[thresholds].mean())}
    ctx.metric(("mean_rate", "active_fraction", "mean_threshold"), spiking_metrics,
               needs_step=True, owner=name)

"""Validated parameters of the time-stepped image networks (pure data, no behaviour).

A model chooses one of these under its ``network:`` key; :mod:`plasticsim.spec` includes the
union in :class:`~plasticsim.spec.ModelSpec`. Learning rates stay in the protocol's
``learning_rates`` (per projection), as for every other model; everything that describes the
neurons' dynamics lives here.

Symbols: Φ dictionary (pixels × units), a coefficients, λ sparsity weight, σ prior scale
(sparse coding); Q feedforward weights, W lateral inhibition, θ thresholds, p target firing
probability per input (SAILnet).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveFloat, \
    PositiveInt, model_validator


class _NetworkSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReceptiveFieldMappingSpec(_NetworkSpec):
    """How the receptive fields written to the results are measured at the end of a run.

    ``weights``: the feedforward weights (the dictionary Φ for sparse coding, Q for SAILnet)
    are the fields. ``white_noise``: least-squares mapping with ``probes`` white-noise patches
    of pixel variance ``probe_variance`` passed through the whole network, lateral
    interactions included (see :mod:`plasticsim.analysis.receptive_fields`).
    """

    method: Literal["weights", "white_noise"] = "weights"
    probes: PositiveInt = 20000
    probe_variance: PositiveFloat = 0.1


class SparseCodingNetworkSpec(_NetworkSpec):
    """Olshausen–Field sparse coding as a network with lateral inhibition (LCA-style).

    Energy ½‖x − Φa‖² + λ Σ_i S(a_i), with ``prior``:
    ``cauchy`` S(a) = log(1 + a²/σ²) (Olshausen & Field's own), or ``l1`` S(a) = |a|.
    Inference runs ``inference_steps`` Euler steps of size ``dt`` (in units of the membrane
    time constant) of the locally competitive dynamics; see
    :class:`plasticsim.networks.sparse_coding.SparseCodingSimulation`.

    Gain normalisation (sparsenet.m): each unit keeps a running variance of its coefficient
    (rate ``variance_rate`` per batch); its basis function's norm (gain) is multiplied by
    (variance / ``variance_goal``)^``gain_exponent`` after each batch.

    Defaults are sparsenet.m's: β = 2.2 and noise variance 0.01 give λ = β·σ_noise² = 0.022,
    σ = 0.316, variance goal 0.1.
    """

    kind: Literal["sparse_coding"] = "sparse_coding"
    prior: Literal["cauchy", "l1"] = "cauchy"
    sparsity: PositiveFloat = 0.022          # λ
    prior_scale: PositiveFloat = 0.316        # σ (Cauchy prior only)
    inference_steps: PositiveInt = 60
    dt: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2
    variance_goal: PositiveFloat = 0.1
    variance_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    gain_exponent: NonNegativeFloat = 0.02
    receptive_fields: ReceptiveFieldMappingSpec = ReceptiveFieldMappingSpec()


class SailnetNetworkSpec(_NetworkSpec):
    """SAILnet (Zylberberg, Murphy & DeWeese 2011): spiking leaky integrate-and-fire units.

    Each input is shown for ``time_steps`` Euler steps of size ``dt`` (in membrane time
    constants); a unit spikes when its potential crosses its threshold θ_i and is reset to 0.
    The spike count n_i of each unit over the window is what the rules see:
    feedforward (Oja) ΔQ_ik = β n_i (x_k − n_i Q_ik); lateral (Földiák) ΔW_ij =
    α (n_i n_j − p²), clipped at W ≥ 0 with zero diagonal; thresholds Δθ_i = γ (n_i − p).
    β and α are the protocol's learning rates of the feedforward and lateral projections;
    γ is ``threshold_rate``; p is ``target_rate`` (spikes per unit per input).
    """

    kind: Literal["sailnet"] = "sailnet"
    target_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.05   # p
    threshold_rate: PositiveFloat = 0.1                             # γ
    time_steps: PositiveInt = 50
    dt: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    initial_threshold: PositiveFloat = 2.0
    receptive_fields: ReceptiveFieldMappingSpec = ReceptiveFieldMappingSpec(
        method="white_noise")

    @model_validator(mode="after")
    def _window_holds_a_spike(self):
        if self.time_steps * self.dt < 1.0:
            raise ValueError(f"time_steps·dt = {self.time_steps * self.dt:g} membrane time "
                             "constants is too short for a unit to integrate its input; "
                             "use at least 1")
        return self


NetworkSpec = Annotated[Union[SparseCodingNetworkSpec, SailnetNetworkSpec],
                        Field(discriminator="kind")]

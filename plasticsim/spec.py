"""Validated, frozen descriptions of models and protocols (pure data: no arrays, no behaviour).

A *model* says what the network is: populations, projections (with their plasticity rule and
initialisation), lateral settling and weight constraints. A *protocol* says what is done with
it: stimuli, the two training phases, the schedule, learning-rate schedules, recording, seed
and backend. Loading YAML into these objects (with file/line error messages) lives in
:mod:`plasticsim.loading`.

Symbols used in docstrings follow Linsker (1992): C feedforward weights, Q̂ running estimate
of the output covariance, F = I − αQ̂ lateral weights, η feedforward rate, ε lateral rate.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, \
    PositiveFloat, PositiveInt, model_validator


class Spec(BaseModel):
    """Base for every spec object: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- model

class PopulationSpec(Spec):
    """A population of units.

    ``kind: input`` populations are driven by a stimulus; ``kind: linear`` units are linear
    rate units whose output carries white noise of variance ``output_noise_variance`` (σ_ν²).
    """

    size: PositiveInt
    kind: Literal["input", "linear"] = "linear"
    output_noise_variance: NonNegativeFloat = 0.0


class InitSpec(Spec):
    """Initial feedforward weights: i.i.d. normal with s.d. ``scale`` (then constrained)."""

    kind: Literal["normal"] = "normal"
    scale: PositiveFloat = 1.0


class SettlingSpec(Spec):
    """How the lateral network settles to α y = Q̂⁻¹ Y.

    ``jacobi``: y ← Y + F y with F = I − αQ̂; ``euler``: τ dy/dt = Y − αQ̂ y integrated with
    step ``dt``; ``exact``: a linear solve (reference). Iteration stops after ``iterations``
    or once the relative residual ‖Y − αQ̂y‖/‖Y‖ ≤ ``tolerance``.

    ``alpha``: ``gershgorin`` (1 / max absolute row sum of Q̂ ≥ 1/λ_max, always convergent and
    faster than ``trace``), ``trace`` (1/tr Q̂, Linsker's safe choice) or a fixed number (which
    diverges if α ≥ 2/λ_max(Q̂): the run then stops with an error).
    """

    method: Literal["jacobi", "euler", "exact"] = "jacobi"
    iterations: PositiveInt = 200
    tolerance: NonNegativeFloat = 1e-8
    alpha: Union[Literal["gershgorin", "trace"], PositiveFloat] = "gershgorin"
    dt: PositiveFloat = 0.5
    tau: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _euler_step_is_stable(self):
        if self.method == "euler" and self.dt / self.tau > 1.0:
            raise ValueError(f"euler settling needs dt/tau ≤ 1 to converge with a safe α, "
                             f"got dt={self.dt}, tau={self.tau}")
        return self


class ProjectionSpec(Spec):
    """A set of synapses from ``pre`` to ``post`` with a registered plasticity ``rule``.

    Rules: ``linsker_two_phase`` (feedforward: ΔC = ±η αy Xᵀ, sign from the phase),
    ``anti_hebbian_lateral`` (lateral: one Q̂ per phase, ΔQ̂ = ε(Y Yᵀ − Q̂), F = I − αQ̂),
    ``none`` (fixed weights).
    """

    pre: str
    post: str
    rule: Literal["linsker_two_phase", "anti_hebbian_lateral", "none"]
    init: InitSpec = InitSpec()
    settling: SettlingSpec | None = None


class ConstraintSpec(Spec):
    """A weight bound on a feedforward projection (MI grows without bound otherwise).

    ``unit_weight_norm``: each row ‖c_i‖² = value; ``total_weight_norm``: ‖C‖²_F = M·value;
    ``unit_output_power``: each c_i q_L c_iᵀ = value; ``total_output_power``: tr(C q_L Cᵀ) =
    M·value. The weight update is first projected onto the constraint's tangent plane, then
    rescaled onto it. Power constraints need the sensing-phase input covariance q_L:
    ``input_covariance: running`` keeps a running average with rate ``averaging_rate``
    (what a neuron could know; give the schedule a warm-up of a few 1/rate samples);
    ``exact`` uses the stimulus's analytic covariance.
    """

    kind: Literal["unit_weight_norm", "total_weight_norm", "unit_output_power",
                  "total_output_power"] = "unit_weight_norm"
    projection: str = "feedforward"
    value: PositiveFloat = 1.0
    input_covariance: Literal["running", "exact"] = "running"
    averaging_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.0002

    @property
    def budget_kind(self) -> str:
        return "weight" if self.kind.endswith("weight_norm") else "power"

    @property
    def per_unit(self) -> bool:
        return self.kind.startswith("unit_")


class ModelSpec(Spec):
    """A network: populations, projections and constraints."""

    name: str = "model"
    description: str = ""
    populations: dict[str, PopulationSpec]
    projections: dict[str, ProjectionSpec]
    constraints: list[ConstraintSpec] = []

    @model_validator(mode="after")
    def _references_exist(self):
        for name, projection in self.projections.items():
            for end in ("pre", "post"):
                target = getattr(projection, end)
                if target not in self.populations:
                    raise ValueError(f"projections.{name}.{end}: no population named "
                                     f"{target!r} (populations: {sorted(self.populations)})")
            if projection.rule == "anti_hebbian_lateral" and projection.pre != projection.post:
                raise ValueError(f"projections.{name}: a lateral projection connects a "
                                 f"population to itself (pre == post)")
        for constraint in self.constraints:
            if constraint.projection not in self.projections:
                raise ValueError(f"constraints: no projection named {constraint.projection!r}")
        return self


# ------------------------------------------------------------------------ protocol

class InputNoiseSpec(Spec):
    """Input noise N: variance σ_n² per site, white (``filter_sd: 0``) or Gaussian-filtered."""

    variance: PositiveFloat = 0.1
    filter_sd: NonNegativeFloat = 0.0


class GaussianRingStimulusSpec(Spec):
    """1-D Gaussian-filtered white noise on a ring of ``sites`` (= the population size).

    The signal S is white noise circularly convolved with a Gaussian of s.d.
    ``signal_filter_sd`` sites, scaled to ``signal_variance`` per site.
    """

    kind: Literal["gaussian_ring"] = "gaussian_ring"
    population: str = "input"
    signal_filter_sd: PositiveFloat = 2.0
    signal_variance: PositiveFloat = 1.0
    input_noise: InputNoiseSpec = InputNoiseSpec()


StimulusSpec = Annotated[Union[GaussianRingStimulusSpec], Field(discriminator="kind")]


class PhaseSpec(Spec):
    """One training phase. ``sign`` multiplies the feedforward update (+1 Hebbian)."""

    enabled: bool = True
    sign: Literal[-1, 1]


class PhasesSpec(Spec):
    """Sensing (signal + noise, Hebbian) and noise-unlearning (noise alone, anti-Hebbian)."""

    sensing: PhaseSpec = PhaseSpec(sign=1)
    noise_unlearning: PhaseSpec = PhaseSpec(sign=-1)

    @model_validator(mode="after")
    def _something_runs(self):
        if not (self.sensing.enabled or self.noise_unlearning.enabled):
            raise ValueError("at least one phase must be enabled")
        return self


class ScheduleSpec(Spec):
    """How samples are presented.

    ``samples`` presentations in all (both phases), in alternating blocks of
    ``block_length`` samples per phase (1 = sample by sample), ``batch_size`` samples per
    step (a mini-batch averages the updates). ``warmup_samples`` come first with feedforward
    learning off, so that the running estimates (Q̂, q̂_L) start near their targets.
    """

    samples: PositiveInt
    block_length: PositiveInt = 1
    batch_size: PositiveInt = 1
    warmup_samples: NonNegativeInt = 0

    @model_validator(mode="after")
    def _blocks_hold_whole_batches(self):
        if self.block_length % self.batch_size:
            raise ValueError(f"block_length ({self.block_length}) must be a multiple of "
                             f"batch_size ({self.batch_size})")
        return self


class RateScheduleSpec(Spec):
    """Learning rate: ``constant`` (η₀) or ``annealed`` (η₀ / (1 + t/τ), t in samples)."""

    kind: Literal["constant", "annealed"] = "constant"
    initial: PositiveFloat
    tau: PositiveFloat | None = None

    @model_validator(mode="after")
    def _annealed_needs_tau(self):
        if self.kind == "annealed" and self.tau is None:
            raise ValueError("an annealed schedule needs tau (samples)")
        return self


class RecordSpec(Spec):
    """What is stored: metrics and weight snapshots every ``every`` samples."""

    every: PositiveInt = 5000
    weights: bool = True


class ProtocolSpec(Spec):
    """A complete run: model + stimuli + phases + schedule + rates + recording."""

    name: str = "protocol"
    description: str = ""
    model: ModelSpec
    stimuli: dict[str, StimulusSpec]
    phases: PhasesSpec = PhasesSpec()
    schedule: ScheduleSpec
    learning_rates: dict[str, RateScheduleSpec]
    record: RecordSpec = RecordSpec()
    seed: NonNegativeInt = 0
    backend: str = "numpy"
    dtype: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def _consistent(self):
        populations = self.model.populations
        for name, stimulus in self.stimuli.items():
            if stimulus.population not in populations:
                raise ValueError(f"stimuli.{name}.population: no population named "
                                 f"{stimulus.population!r}")
            if populations[stimulus.population].kind != "input":
                raise ValueError(f"stimuli.{name}.population: {stimulus.population!r} is not "
                                 f"an input population")
        for name, projection in self.model.projections.items():
            if projection.rule != "none" and name not in self.learning_rates:
                raise ValueError(f"learning_rates: projection {name!r} learns "
                                 f"({projection.rule}) but has no learning rate")
        batch = self.schedule.batch_size
        for key, value in (("schedule.samples", self.schedule.samples),
                           ("schedule.warmup_samples", self.schedule.warmup_samples),
                           ("record.every", self.record.every)):
            if value % batch:
                raise ValueError(f"{key} ({value}) must be a multiple of schedule.batch_size "
                                 f"({batch})")
        for name in self.learning_rates:
            if name not in self.model.projections:
                raise ValueError(f"learning_rates.{name}: no projection named {name!r} "
                                 f"(projections: {sorted(self.model.projections)})")
        return self

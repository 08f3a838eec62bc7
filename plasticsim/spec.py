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

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, \
    PositiveFloat, PositiveInt, model_validator

from .networks.network_spec import NetworkSpec


class Spec(BaseModel):
    """Base for every spec object: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- model

class ThirdFactorSpec(Spec):
    """Burst-style third factor on the feedforward rule (Payeur et al. 2021).

    Sensing steps add Δc_i = ``ratio``·η [e_i]₊ (p_i − p̄_i) x to the feedforward update, where
    e_i is the basal drive d_i minus its linear prediction from the other units' basal drives
    (lateral decorrelation by Q̂_b = ⟨d dᵀ⟩), p_i = [g_i]₊ the (rectified) gate value read as a
    burst probability and p̄_i its running average; p̄ and Q̂_b move at ``average_rate`` per
    sample. ``ratio`` is the ratio of the third-factor rate to the feedforward rate η. See
    :mod:`plasticsim.gating`.
    """

    ratio: NonNegativeFloat = 1.0
    average_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 0.001


class GateSpec(Spec):
    """The apical (gate) compartment of a two-compartment unit (SCIENCE.md §4).

    y = φ(d) ⊙ ψ(b + κ(W_g·ã − m)): d is the basal (feedforward) drive, ã the activity of the
    ``source`` population after ``normalisation`` (``layer``: centre and scale across the
    source population per sample, gMLP's LayerNorm on Z2; ``none``). ``connectivity``:
    ``dense`` W_g, or ``kernel``: one translation-invariant kernel of ``kernel_size`` taps
    shared by all units inside a local arbor (gMLP's spatial W). ``nonlinearity`` ψ:
    ``linear`` (exactly gMLP; may go negative), ``relu``, ``sigmoid`` (2σ, so ψ(0) = 1).
    ``bias`` b defaults to the value that makes ψ(b) = 1; ``gain`` κ, ``offset`` m.
    W_g starts i.i.d. normal with s.d. ``init_scale`` (0: exactly the ungated network).
    ``learning_rate`` η_g of the predictive rule ΔW_g = η_g ([d]₊ − ĝ) ãᵀ with ĝ = W_g·ã
    (0: fixed). ``third_factor`` adds the burst-style term to the feedforward rule.
    """

    source: str
    connectivity: Literal["dense", "kernel"] = "dense"
    kernel_size: PositiveInt | None = None
    normalisation: Literal["layer", "none"] = "layer"
    nonlinearity: Literal["linear", "relu", "sigmoid"] = "sigmoid"
    bias: float | None = None
    gain: float = 1.0
    offset: float = 0.0
    init_scale: NonNegativeFloat = 0.0
    learning_rate: NonNegativeFloat = 0.0
    third_factor: ThirdFactorSpec | None = None

    @model_validator(mode="after")
    def _kernel_has_a_size(self):
        if self.connectivity == "kernel" and self.kernel_size is None:
            raise ValueError("connectivity: kernel needs kernel_size (taps of the shared "
                             "kernel)")
        return self


class PopulationSpec(Spec):
    """A population of units.

    ``kind: input`` populations are driven by a stimulus; ``kind: linear`` units are linear
    rate units whose output carries white noise of variance ``output_noise_variance`` (σ_ν²).
    """

    size: PositiveInt
    kind: Literal["input", "linear", "sparse_coding", "spiking"] = "linear"
    output_noise_variance: NonNegativeFloat = 0.0
    # Two-compartment units: an apical gate fed by another population (None: ungated).
    gate: GateSpec | None = None


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

    ``metric: input_covariance`` (feedforward, with an output-power constraint only) takes
    the gradient step in the metric of the input covariance, ΔC q̂_L⁻¹ (a natural gradient).
    It has the same fixed points as the plain rule but learns weak input modes as fast as
    strong ones; it is *not* local (each synapse needs q̂_L⁻¹). The plain local rule
    (``euclidean``) needs a time ∝ 1/λ_k for a mode of input variance λ_k, which is
    prohibitive where the optimum whitens strongly (output-power bound at low noise).
    """

    pre: str
    post: str
    # sparse_coding_dictionary, oja and foldiak_lateral belong to the image networks of
    # plasticsim.networks (their dynamics are described by the model's ``network`` block).
    rule: Literal["linsker_two_phase", "anti_hebbian_lateral", "none",
                  "sparse_coding_dictionary", "oja", "foldiak_lateral"]
    init: InitSpec = InitSpec()
    settling: SettlingSpec | None = None
    metric: Literal["euclidean", "input_covariance"] = "euclidean"


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
    # Time-stepped image networks (sparse coding, SAILnet): their neuron dynamics; None for
    # Linsker networks. See plasticsim.networks.network_spec.
    network: NetworkSpec | None = None

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

    @model_validator(mode="after")
    def _gates_are_consistent(self):
        for name, population in self.populations.items():
            gate = population.gate
            if gate is None:
                continue
            key = f"populations.{name}.gate"
            if gate.source not in self.populations:
                raise ValueError(f"{key}.source: no population named {gate.source!r} "
                                 f"(populations: {sorted(self.populations)})")
            source_size = self.populations[gate.source].size
            if gate.kernel_size is not None and gate.kernel_size > source_size:
                raise ValueError(f"{key}.kernel_size: {gate.kernel_size} taps is larger than "
                                 f"the source population {gate.source!r} ({source_size} "
                                 f"units)")
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


class ImageSourceSpec(Spec):
    """Where natural images come from (read by :func:`plasticsim.images.load_images`).

    ``skimage`` (default): photographs shipped in scikit-image's wheel (``names``, default
    grass and gravel). ``folder``: every PNG/JPEG/TIFF in ``path``. ``mat``: array ``key``
    (default ``IMAGES``, h×w×n) of a MATLAB v5 or v7.3 file. ``npy``/``npz``: an n×h×w array
    (``key`` names the array in an archive). ``raw``: headerless files (``path`` may be a glob
    such as ``.../image*``) of ``dtype`` (with byte order, e.g. ``'>f4'``) and ``shape``
    (height, width). ``image``: one picture file. Relative paths are relative to the working
    directory.
    """

    kind: Literal["skimage", "folder", "mat", "npy", "npz", "raw", "image"] = "skimage"
    path: str | None = None
    names: list[str] | None = None
    key: str | None = None
    dtype: str | None = None
    shape: tuple[PositiveInt, PositiveInt] | None = None

    @model_validator(mode="after")
    def _complete(self):
        if self.kind != "skimage" and not self.path:
            raise ValueError(f"an image source of kind {self.kind!r} needs a path")
        if self.kind == "raw" and (self.dtype is None or self.shape is None):
            raise ValueError("a raw image source needs dtype (e.g. '>f4') and shape "
                             "[height, width]")
        return self


class ImagePatchesStimulusSpec(Spec):
    """Random square patches of natural images, flattened row-major (population size p²).

    ``whiten``: Olshausen & Field's filter R(f) = f·exp(−(f/f0)⁴) (``whitening_f0`` cycles
    per picture, default 0.4 × image size, i.e. 200 for 512 px) and scaling to an average
    pixel variance ``target_variance``; turn it off for already whitened data.
    ``scale_to_variance`` rescales the (possibly whitened) images so that their average
    pixel variance is this value (useful for pre-whitened files at another scale).
    ``border`` pixels at each image edge are never sampled; ``remove_mean`` subtracts each
    patch's mean; ``normalize`` scales each patch to unit norm or unit variance.

    ``input_noise`` (Linsker networks): white noise of the given variance per pixel is added
    to every sensing sample and is the whole input in noise-unlearning samples; the signal
    is the patch itself, whose covariance is estimated from ``covariance_samples`` patches.
    """

    kind: Literal["image_patches"] = "image_patches"
    population: str = "input"
    source: ImageSourceSpec = ImageSourceSpec()
    patch_size: PositiveInt = 12
    border: NonNegativeInt = 4
    whiten: bool = True
    whitening_f0: PositiveFloat | None = None
    target_variance: PositiveFloat = 0.1
    scale_to_variance: PositiveFloat | None = None
    remove_mean: bool = False
    normalize: Literal["unit_norm", "unit_variance"] | None = None
    input_noise: InputNoiseSpec | None = None
    covariance_samples: PositiveInt = 50000

    @model_validator(mode="after")
    def _white_noise_only(self):
        if self.input_noise is not None and self.input_noise.filter_sd != 0:
            raise ValueError("image patches take white input noise only (filter_sd: 0)")
        return self


class SharedLatentStimulusSpec(Spec):
    """Two input streams (basal ``population``, ``apical_population``) sharing a latent source.

    Each stream is x = √v_s B s + √v_d D d + √σ_n² ξ: ``shared_dimensions`` latent sources s
    common to both streams, ``distractor_dimensions`` sources d private to each stream,
    white Gaussian input noise ξ. B and D are orthonormal embeddings drawn once from
    ``mixing_seed`` (part of the stimulus, not of the run). Sources are unit-variance
    ``gaussian`` or ``laplace``. Noise-unlearning samples are the noise alone in both streams.
    See :mod:`plasticsim.shared_latent`.
    """

    kind: Literal["shared_latent"] = "shared_latent"
    population: str = "basal"
    apical_population: str = "apical"
    distribution: Literal["gaussian", "laplace"] = "gaussian"
    shared_dimensions: PositiveInt = 2
    shared_variance: PositiveFloat = 1.0
    distractor_dimensions: PositiveInt = 2
    distractor_variance: PositiveFloat = 4.0
    input_noise_variance: PositiveFloat = 0.25
    mixing_seed: NonNegativeInt = 0


StimulusSpec = Annotated[Union[GaussianRingStimulusSpec, ImagePatchesStimulusSpec,
                               SharedLatentStimulusSpec],
                         Field(discriminator="kind")]


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


class EnsembleSpec(Spec):
    """E independent networks run as one batched simulation (see :mod:`plasticsim.ensemble`).

    Members are every combination of the ``grid`` values (``{dotted.key: [values]}``, keys
    as for ``--set``) with every seed: ``seeds`` lists the seeds, ``size: E`` stands for the
    seeds ``seed``, ``seed + 1``, …, ``seed + E − 1`` (default: the protocol's seed alone).
    Members share the schedule, recording, backend and dtype.
    """

    seeds: list[NonNegativeInt] | None = None
    size: PositiveInt | None = None
    grid: dict[str, list[Any]] = {}

    @model_validator(mode="after")
    def _well_formed(self):
        if self.seeds is not None and self.size is not None:
            raise ValueError("give either seeds or size, not both")
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds: give at least one seed")
        shared = ("schedule", "record", "backend", "dtype", "seed", "ensemble", "name")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: give at least one value")
            if key.split(".")[0] in shared:
                raise ValueError(f"grid.{key}: {key.split('.')[0]} is shared by all members "
                                 f"and cannot vary (use seeds or size for seeds)")
        return self


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
    ensemble: EnsembleSpec | None = None  # several networks at once (plasticsim.ensemble)

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
            patch_size = getattr(stimulus, "patch_size", None)
            if patch_size is not None and populations[stimulus.population].size != patch_size**2:
                raise ValueError(f"stimuli.{name}.patch_size: {patch_size}×{patch_size} "
                                 f"patches need an input population of {patch_size**2} units; "
                                 f"{stimulus.population!r} has "
                                 f"{populations[stimulus.population].size}")
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

"""The step plan: named state arrays and an ordered list of declared operations.

A :class:`Plan` is what the builder (:mod:`plasticsim.engine.builder`) makes of a validated
protocol and what every backend compiles. It is pure data: backends never read the spec.

- **State** (:class:`StateArray`): every array the simulation owns (weights, running
  estimates, activities, scratch buffers), each with a per-member shape. Backends store it
  with a leading *member* axis, so one run is an ensemble of one.
- **Operations** (:class:`Operation`): one primitive of the vocabulary below, the state it
  reads and writes, its static parameters, and when it runs (phases, training only).
  Operations are listed in the order of the step contract::

      stimulus → (per population, in graph order: drive → gate → settle/inference)
               → plasticity → constraint

  Recording happens between steps, at multiples of ``record.every`` samples.
- **Streams** (:class:`StreamGroup`): per-sample random inputs drawn on the host from the
  members' own random streams (stimuli, output noise), so every backend sees the same numbers.
- **Rates** (:class:`RateDefinition`): per-step scalars (learning rates, running-average
  rates) computed on the host from the schedules.
- **Metrics** (:class:`MetricDefinition`): scalars computed from a member's state at each record.

The primitive vocabulary (:data:`PRIMITIVES`) is small on purpose: a rule, neuron model,
constraint or stimulus is a builder that emits a few of these, and a backend implements each
primitive once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Slots of one step, in order (the schedule as data). Population slots repeat per population
#: in graph order; the builder lays the operations out accordingly.
SLOTS = ("stimulus", "drive", "gate", "settle", "plasticity", "constraint")

#: The primitive vocabulary: name → what it computes (for one member; ``B`` batch, ``k`` step).
#: Every backend implements each of these once; see :mod:`plasticsim.backends.numpy_backend`
#: for the reference semantics.
PRIMITIVES = {
    "load_stream": "target ← stream[k]",
    "matmul": "target (+)= source · weightsᵀ",
    "add_stream": "target += stream[k]",
    "gate": "basal ← target; target ← basal ⊙ ψ(b + κ(norm(source) · weightsᵀ − m))",
    "settle": "target ← α y with α y = estimate[phase]⁻¹ drive (Jacobi, Euler or exact)",
    "running_average": "target ← target + ε (⟨statistic of source⟩_batch − target)",
    "hebbian": "delta ← s_phase η Σ_b post_bᵀ pre_b (− decay term) (mean or sum)",
    "solve_right": "target ← target · matrix⁻¹",
    "third_factor": "delta += ρ η Σ_b [e_b]₊ (p_b − p̄) pre_bᵀ, e decorrelated by moment⁻¹",
    "predictive_gate": "weights += η_g Σ_b ([basal]₊ − prediction)ᵀ norm(source)",
    "constrain": "project delta on the budget's tangent plane, add it, rescale onto the budget",
    "apply_delta": "weights += delta",
    "clip": "weights ← max(weights, minimum), optional zero diagonal",
    "bounded_hebbian": "weights ← clip(weights + η arbor ⊙ (Σ_b post_bᵀ pre_b/q₀ + B(k₁ + "
                       "k₂ Σ weights_row)), lower·arbor, upper·arbor)",
    "lca": "target ← sparse code of input under dictionary weights (LCA dynamics)",
    "residual": "target ← input − code · weights",
    "gain_normalisation": "gain ← gain (variance/goal)^γ; rows of weights rescaled to gain",
    "lif_window": "target ← spike counts of LIF units over a window (drive, lateral, θ)",
    "homeostasis": "target += γ (⟨source⟩_batch − p)",
    "som_competition": "target ← h(d(i, i*); σ) around each input's best-matching unit i*",
    "trace": "target_t ← (1 − δ) target_{t−1} + δ source_t along each sequence of batch rows "
             "(target_{−1} = 0)",
}


@dataclass(frozen=True)
class StateArray:
    """One named array the simulation owns.

    Attributes
    ----------
    name : str
        ``<population or projection>.<quantity>``, e.g. ``"feedforward.weights"``.
    shape : tuple of int
        Per-member shape (the backend adds the leading member axis).
    initial : ndarray
        Initial values of every member, shape (members,) + ``shape``.
    dtype : str
        ``"run"`` (the protocol's dtype) or a NumPy dtype name (``"float64"`` for running
        estimates the reference keeps in double precision, ``"int64"`` for index tables).
    role : str
        ``weights`` (learned), ``estimate`` (running averages), ``activity`` (per-step values:
        the last step's are kept), ``monitor`` (reset after each record), ``constant``,
        ``buffer`` (scratch).
    description, units : str
        For the results file.
    """

    name: str
    shape: tuple
    initial: np.ndarray
    dtype: str = "run"
    role: str = "buffer"
    description: str = ""
    units: str = ""


@dataclass(frozen=True)
class Operation:
    """One primitive applied to named state.

    Attributes
    ----------
    primitive : str
        A key of :data:`PRIMITIVES`.
    slot : str
        A key of :data:`SLOTS`.
    reads, writes : dict
        Role of each state array this operation reads or writes → its name
        (e.g. ``{"source": "input.activity", "weights": "feedforward.weights"}``).
    parameters : dict
        Static parameters (numbers, strings, tuples); part of the plan's structure.
    phases : tuple of int or None
        Run only in these phases (0 sensing, 1 noise-unlearning); None: in every phase.
    training_only : bool
        Skip during warm-up (feedforward learning off, nothing uses the result).
    rate : str or None
        Name of the per-step rate (:class:`RateDefinition`) that scales this operation.
    streams : dict
        Role → name of a per-sample stream this operation reads.
    origin : str
        Key path of the spec object that produced it (for messages).
    """

    primitive: str
    slot: str
    reads: dict = field(default_factory=dict)
    writes: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    phases: tuple | None = None
    training_only: bool = False
    rate: str | None = None
    streams: dict = field(default_factory=dict)
    origin: str = ""

    def runs_in(self, phase: int, training: bool) -> bool:
        """Whether this operation runs in a step of ``phase`` (training or warm-up)."""
        if self.training_only and not training:
            return False
        return self.phases is None or phase in self.phases

    def signature(self) -> tuple:
        """Everything that makes two operations the same code (for grouping members)."""
        return (self.primitive, self.slot, tuple(sorted(self.reads.items())),
                tuple(sorted(self.writes.items())), _freeze(self.parameters), self.phases,
                self.training_only, self.rate, tuple(sorted(self.streams.items())))


@dataclass(frozen=True)
class StreamGroup:
    """Per-sample random inputs drawn together from one random stream of each member.

    Attributes
    ----------
    name : str
    outputs : dict
        Stream name → per-sample shape, e.g. ``{"stimulus.input": (32,)}``.
    seed_key : tuple of int
        Spawn key of the member's random stream under its root seed.
    draw : tuple of callable
        Per member: ``draw(rng, sensing, dtype) -> {stream name: ndarray}``; ``sensing`` is a
        boolean array with one entry per sample, in order (the backends pass the chunk's
        steps × batch flat); arrays have shape ``sensing.shape`` + per-sample shape.
    """

    name: str
    outputs: dict
    seed_key: tuple
    draw: tuple


@dataclass(frozen=True)
class RateDefinition:
    """A per-step scalar computed on the host for each member.

    Attributes
    ----------
    name : str
    value : tuple of callable
        Per member: ``value(first_samples) -> ndarray``, the rate per sample (or per batch) at
        the first sample of each step (an int array; zeros during warm-up).
    kind : str
        ``increment`` (used as is: η per sample), ``running_average`` (ε per sample, turned
        into ε_B = 1 − (1 − ε)^B per step of B samples) or ``per_batch`` (used as is, once per
        step whatever the batch size).
    zero_in_warmup : bool
        Learning rates are 0 during warm-up.
    """

    name: str
    value: tuple
    kind: str = "increment"
    zero_in_warmup: bool = False


@dataclass(frozen=True)
class MetricDefinition:
    """Scalars recorded at each record, computed on the host from one member's state.

    ``function[member](state) -> {name: value}`` receives a mapping of state names to NumPy
    arrays (the member's own, without the member axis). ``divergence`` names metrics that must
    stay below 1 (the run stops with :class:`~plasticsim.errors.SimulationDiverged`
    otherwise); ``resets`` names monitor states zeroed after each record; ``needs_step``
    metrics read the last step's activity and are NaN before the first step.
    """

    names: tuple
    function: tuple
    divergence: tuple = ()
    resets: tuple = ()
    needs_step: bool = False


@dataclass(frozen=True)
class ResultsEntry:
    """A final results-file entry: ``function[member](state)`` gives an array or a mapping of
    names to arrays (a group), written at ``path`` with ``attributes``."""

    path: str
    function: tuple
    attributes: dict = field(default_factory=dict)


@dataclass
class Plan:
    """A built network: state, operations, streams, rates, metrics, for E members.

    Attributes
    ----------
    members : list
        One entry per member (its protocol spec; the builder's business, not the backends').
    batch_size : int
    dtype : str
    states : dict of StateArray
    operations : list of Operation
    streams : list of StreamGroup
    rates : dict of RateDefinition
    metrics : list of MetricDefinition
    results : list of ResultsEntry
        Final arrays written to the results file.
    respond_inputs : dict
        Population name → state name of its activity (what a probe sets).
    outputs : dict
        Population name → state name of its output (what a probe reads).
    info : dict
        What the run loop and analysis need to know (stimuli, problems, …).
    """

    members: list
    batch_size: int
    dtype: str
    states: dict = field(default_factory=dict)
    operations: list = field(default_factory=list)
    streams: list = field(default_factory=list)
    rates: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    results: list = field(default_factory=list)
    respond_inputs: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def n_members(self) -> int:
        return len(self.members)

    def signature(self) -> tuple:
        """The structure of the plan: members with equal signatures run as one stack."""
        return (self.batch_size, self.dtype,
                tuple((s.name, s.shape, s.dtype, s.role) for s in self.states.values()),
                tuple(op.signature() for op in self.operations),
                tuple((g.name, tuple(sorted(g.outputs.items())), g.seed_key)
                      for g in self.streams),
                tuple(sorted((r.name, r.kind, r.zero_in_warmup) for r in self.rates.values())))

    def primitives(self) -> list[str]:
        """The primitives this plan uses, in first-use order."""
        seen = []
        for operation in self.operations:
            if operation.primitive not in seen:
                seen.append(operation.primitive)
        return seen

    def describe(self) -> str:
        """The step plan as text: one line per operation, in order."""
        lines = []
        for index, op in enumerate(self.operations):
            when = []
            if op.phases is not None:
                when.append("phases " + ",".join(("sensing", "noise")[p] for p in op.phases))
            if op.training_only:
                when.append("training only")
            arguments = ", ".join(f"{role}={name}" for role, name in
                                  {**op.reads, **op.writes, **op.streams}.items())
            lines.append(f"{index:2d} {op.slot:<10} {op.primitive:<18} {arguments}"
                         + (f"  [{'; '.join(when)}]" if when else ""))
        return "\n".join(lines)


def _freeze(value: Any):
    if isinstance(value, dict):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.tobytes())
    return value

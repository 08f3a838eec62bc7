"""The protocol schema: what is done with a model (stimuli, phases, schedule, rates, recording,
probes, seed, backend, dtype, ensembles). Pure data; loading YAML into it, with file/line
error messages, lives in :mod:`plasticsim.spec.loading`.

Symbols used in docstrings follow Linsker (1992): C feedforward weights, Q̂ running estimate
of the output covariance, F = I − αQ̂ lateral weights, η feedforward rate, ε lateral rate.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Tag, field_validator, model_validator

from ..model.registry import NEURONS, PROBES, STIMULI
from ..schema import MAX_SEED, PositiveFinite, SampleCount, SampleCount0, Seed, Size, Spec
from .model import ModelSpec, rule_learns


def _tagged(registry: dict):
    def kind_of(value: Any):
        return value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return Annotated[Union[tuple(Annotated[c.spec_class, Tag(kind)]
                                 for kind, c in registry.items())], Discriminator(kind_of)]


StimulusSpec = _tagged(STIMULI)
ProbeSpec = _tagged(PROBES)


class PhaseSpec(Spec):
    """One training phase. ``sign`` multiplies the feedforward update (+1 Hebbian)."""

    enabled: bool = True                    # false: the phase's samples are not presented
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

    samples: SampleCount
    block_length: SampleCount = 1
    batch_size: Size = 1
    warmup_samples: SampleCount0 = 0

    @model_validator(mode="after")
    def _blocks_hold_whole_batches(self):
        if self.block_length % self.batch_size:
            raise ValueError(f"block_length ({self.block_length}) must be a multiple of "
                             f"batch_size ({self.batch_size})")
        return self


class RateScheduleSpec(Spec):
    """Learning rate: ``constant`` (η₀) or ``annealed`` (η₀ / (1 + t/τ), t in samples).

    ``window: [start, stop]`` (training samples) makes the rate zero outside
    start ≤ t < stop, and t of the annealing counts from ``start``: layers trained in turn
    (Linsker 1986) each get their own window.
    """

    kind: Literal["constant", "annealed"] = "constant"
    initial: PositiveFinite                 # η₀
    tau: PositiveFinite | None = None       # τ in samples (annealed only)
    window: tuple[SampleCount0, SampleCount] | None = None   # [start, stop) in samples

    @model_validator(mode="after")
    def _annealed_needs_tau(self):
        if self.kind == "annealed" and self.tau is None:
            raise ValueError("an annealed schedule needs tau (samples)")
        if self.window is not None and not self.window[0] < self.window[1]:
            raise ValueError(f"window: start ({self.window[0]}) must be before stop "
                             f"({self.window[1]})")
        return self


class RecordSpec(Spec):
    """What is stored every ``every`` samples: metrics, snapshots of the learned weights
    (``weights``) and, with ``activities``, every population's activity in the last step
    (``activities/<population>``, records × batch samples × units). Records stream to the
    results file as the run goes: memory does not grow with the number of records."""

    every: SampleCount = 5000
    weights: bool = True
    activities: bool = False


class CheckpointSpec(Spec):
    """When a run saves its complete state for ``plasticsim resume`` (``OUT/checkpoint.npz``).

    Checkpoints are taken at record boundaries (every ``record.every`` samples): at the first
    boundary ``every`` samples or more after the last checkpoint, or ``seconds`` of wall time
    or more after it, whichever comes first (``null`` switches that trigger off). The default
    saves about once a minute, so a run shorter than that writes none. A checkpoint changes
    nothing in the run: a resumed run's results equal an uninterrupted run's.
    """

    enabled: bool = True                    # false: no checkpoints (no resume)
    every: SampleCount | None = None        # samples between checkpoints (null: no trigger)
    seconds: PositiveFinite | None = 60.0   # wall seconds between checkpoints (null: none)


class EnsembleSpec(Spec):
    """E independent networks run as one batched simulation (see :mod:`plasticsim.ensemble`).

    Members are every combination of the ``grid`` values (``{dotted.key: [values]}``, keys
    as for ``--set``) with every seed: ``seeds`` lists the seeds, ``size: E`` stands for the
    seeds ``seed``, ``seed + 1``, …, ``seed + E − 1`` (default: the protocol's seed alone).
    Members share the schedule, recording, backend and dtype.
    """

    seeds: list[Seed] | None = None         # the members' seeds
    size: Size | None = None                # E: seeds seed … seed + E − 1
    grid: dict[str, list[Any]] = {}         # dotted key → values; every combination runs

    @model_validator(mode="after")
    def _well_formed(self):
        if self.seeds is not None and self.size is not None:
            raise ValueError("give either seeds or size, not both")
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds: give at least one seed")
        shared = ("schedule", "record", "backend", "dtype", "seed", "ensemble", "name",
                  "checkpoint", "sweep")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: give at least one value")
            if key.split(".")[0] in shared:
                raise ValueError(f"grid.{key}: {key.split('.')[0]} is shared by all members "
                                 f"and cannot vary (use seeds or size for seeds)")
        return self


class SweepSpec(Spec):
    """A grid × seeds sweep for ``plasticsim sweep PROTOCOL`` (:mod:`plasticsim.sweep`).

    ``grid`` maps ``[NAME:]dotted.key`` (any key of the protocol, as for ``--grid``; the
    dimension is NAME, or the key's last part) to the values it takes; ``seeds: N`` stands
    for the seeds ``seed`` … ``seed + N − 1``, ``seed_list`` lists them (default: the
    protocol's seed alone); ``out`` is the default sweep directory (relative to the working
    directory, as ``--out``). ``--grid``, ``--seeds``/``--seed-list`` and ``--out`` on the
    command line replace the block's. ``plasticsim run`` runs the protocol once, without the
    block (with a warning that says so). Keys are checked against the protocol when it
    loads: an unknown one is refused with the nearest valid key named.
    """

    grid: dict[str, list[Any]] = {}         # "[NAME:]dotted.key": [values], as --grid
    seeds: Size | None = None               # N: the seeds seed … seed + N − 1
    seed_list: list[Seed] | None = None     # these seeds (instead of seeds)
    out: str | None = None                  # default sweep directory (as --out)

    @model_validator(mode="after")
    def _well_formed(self):
        if self.seeds is not None and self.seed_list is not None:
            raise ValueError("give either seeds or seed_list, not both")
        if self.seed_list is not None and not self.seed_list:
            raise ValueError("seed_list: give at least one seed")
        if self.seed_list is not None and len(set(self.seed_list)) != len(self.seed_list):
            raise ValueError(f"seed_list: seeds must differ ({self.seed_list})")
        if self.out is not None and not self.out.strip():
            raise ValueError("out: give a directory, or leave the key out")
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: give at least one value")
        return self

    def axes(self) -> list[tuple[str, str, tuple]]:
        """``(dimension name, dotted key, values)`` of each grid entry, in order."""
        entries = []
        for head, values in self.grid.items():
            name, _, key = head.rpartition(":")
            entries.append(((name.strip() or key.strip().split(".")[-1]), key.strip(),
                            tuple(values)))
        return entries


#: A protocol's name becomes its default output directory, ``results/<name>``: a plain file
#: name (no separators, no ``..``, not hidden), so that it cannot point outside ``results/``.
OUTPUT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


class ProtocolSpec(Spec):
    """A complete run: model + stimuli + phases + schedule + rates + recording."""

    name: str = "protocol"                  # names the default output directory results/<name>
    description: str = ""                   # free text, kept in the results file
    model: ModelSpec                        # a model file's path (relative to here) or inline
    stimuli: dict[str, StimulusSpec]        # what drives each input population
    phases: PhasesSpec = PhasesSpec()
    schedule: ScheduleSpec
    learning_rates: dict[str, RateScheduleSpec]  # one per projection whose rule learns
    record: RecordSpec = RecordSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    seed: Seed = 0                          # root seed of every random stream of the run
    # numpy, numba, array[:numpy|:torch[:cpu|:cuda]|:cupy],
    # brian2[:numpy|:cython|:cpp_standalone] or auto (the fastest that can run the protocol)
    backend: str = "numpy"
    dtype: Literal["float64", "float32"] = "float64"   # floating-point type of all state
    ensemble: EnsembleSpec | None = None  # several networks at once (plasticsim.spec.ensemble)
    sweep: SweepSpec | None = None          # grid × seeds that plasticsim sweep runs
    probes: dict[str, ProbeSpec] = {}       # measurements after training (no plasticity)

    @field_validator("name")
    @classmethod
    def _plain_file_name(cls, name: str) -> str:
        if not OUTPUT_NAME_PATTERN.match(name) or ".." in name:
            raise ValueError(f"name {name!r} names the output directory results/<name>: use a "
                             "plain file name of at most 200 letters, digits and . _ + - "
                             "(starting with a letter or digit, no '/' or '..')")
        return name

    @model_validator(mode="after")
    def _consistent(self):
        if self.sweep is not None and self.sweep.seeds is not None and (
                self.seed + self.sweep.seeds - 1 > MAX_SEED):
            raise ValueError(f"sweep.seeds: seeds seed … seed + seeds − 1 must stay ≤ "
                             f"{MAX_SEED} (seed {self.seed}, seeds {self.sweep.seeds})")
        if self.ensemble is not None and self.ensemble.size is not None and (
                self.seed + self.ensemble.size - 1 > MAX_SEED):
            raise ValueError(f"ensemble.size: seeds seed … seed + size − 1 must stay ≤ "
                             f"{MAX_SEED} (seed {self.seed}, size {self.ensemble.size})")
        populations = self.model.populations
        for name, stimulus in self.stimuli.items():
            for target in stimulus.populations():
                if target not in populations:
                    raise ValueError(f"stimuli.{name}: no population named {target!r} "
                                     f"(populations: {sorted(populations)})")
                if not NEURONS[populations[target].kind].extra.get("is_input"):
                    raise ValueError(f"stimuli.{name}: {target!r} is not an input population "
                                     f"(kind {populations[target].kind!r})")
        for name, projection in self.model.projections.items():
            if rule_learns(projection.rule) and name not in self.learning_rates:
                raise ValueError(f"learning_rates: projection {name!r} learns "
                                 f"({projection.rule.kind}) but has no learning rate")
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

"""Ensembles: E independent networks (seeds and/or a parameter grid) run as one simulation.

A protocol asks for an ensemble with an ``ensemble:`` block::

    ensemble:
      size: 8                       # seeds seed … seed + 7 (or: seeds: [1, 5, 9])
      grid:                         # optional: every combination of these values
        stimuli.input.input_noise.variance: [0.01, 0.1, 1.0]

which expands into member protocols (:func:`expand_ensemble`: the grid's combinations ×
the seeds, grid keys as for ``--set``). Each member is an ordinary network with its own
state and random streams, so a member's results equal a single run of its member protocol
(on the same backend). Members advance in lockstep, so batched backends step them together:
the numba backend runs members in parallel threads, the array backend as batched matrix
products; other backends run them one after another (:class:`SequentialEnsemble`).

Results: ``<out>/members/<k>/`` holds member k's ordinary run directory (``results.h5``
with root attributes ``ensemble_member``, ``ensemble_size``, ``ensemble_label``,
``summary.json``, ``figures/``), and ``<out>/ensemble.json`` lists the members (index,
label, seed, grid values, directory, summary).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .constraints import OutputPowerConstraint, WeightNormConstraint
from .errors import BackendUnavailable, PlasticsimError, SpecError
from .schedules import SENSING, rate_at, step_phases
from .spec import ProtocolSpec

#: Batched ensemble builders by backend name: ``builder(member_specs) -> ensemble``.
ENSEMBLE_BUILDERS: dict[str, Callable] = {}

INDEX_NAME = "ensemble.json"
MEMBERS_DIRECTORY = "members"


def register_ensemble_builder(name: str):
    """Register ``builder(list[ProtocolSpec]) -> ensemble`` for a backend name."""
    def decorator(builder):
        ENSEMBLE_BUILDERS[name] = builder
        return builder
    return decorator


# ------------------------------------------------------------------ expansion
@dataclass(frozen=True)
class EnsembleMember:
    """One member of an ensemble: its index, label, seed, grid values and protocol."""

    index: int
    label: str
    seed: int
    values: dict[str, Any]
    spec: ProtocolSpec


def expand_ensemble(spec: ProtocolSpec) -> list[EnsembleMember]:
    """The member protocols of ``spec.ensemble`` (grid combinations × seeds, in that order).

    A protocol without an ensemble block is an ensemble of one.

    Raises
    ------
    SpecError
        If a grid key or value makes an invalid protocol (the message names the key).

    Examples
    --------
    >>> from plasticsim.loading import load_protocol
    >>> spec = load_protocol("protocols/linsker1992_1d.yaml",
    ...                      ["ensemble={size: 2, grid: {model.constraints.0.value: [1, 2]}}"])
    >>> [m.label for m in expand_ensemble(spec)]  # doctest: +SKIP
    ['model.constraints.0.value=1,seed=1', 'model.constraints.0.value=1,seed=2', ...]
    """
    from .loading import protocol_from_document

    ensemble = spec.ensemble
    if ensemble is None:
        return [EnsembleMember(0, f"seed={spec.seed}", spec.seed, {}, spec)]
    if ensemble.seeds is not None:
        seeds = list(ensemble.seeds)
    else:
        seeds = [spec.seed + offset for offset in range(ensemble.size or 1)]
    keys = list(ensemble.grid)
    base = spec.model_dump(mode="json")
    base["ensemble"] = None
    members = []
    for combination in itertools.product(*(ensemble.grid[key] for key in keys)):
        values = dict(zip(keys, combination))
        for seed in seeds:
            document = json.loads(json.dumps(base))  # a deep copy
            for key, value in values.items():
                _set_dotted(document, key, value)
            document["seed"] = seed
            try:
                member_spec = protocol_from_document(document, source="ensemble.grid")
            except SpecError as error:
                raise SpecError(f"member with {values or 'the base values'}: {error.message}",
                                file=error.file, line=error.line,
                                key_path=error.key_path) from None
            label = ",".join([f"{key}={value}" for key, value in values.items()]
                             + [f"seed={seed}"])
            members.append(EnsembleMember(len(members), label, seed, values, member_spec))
    return members


def _set_dotted(document: dict, key: str, value) -> None:
    """Set ``document[a][b]…`` for the dotted ``key`` (list items by index), as ``--set`` does.

    The value keeps its YAML type (``--set`` would parse text; here it is already parsed).
    """
    parts = key.split(".")
    target = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            if last:
                target[int(part)] = value
            else:
                target = target[int(part)]
        elif isinstance(target, dict):
            if last:
                target[part] = value
            else:
                target = target.setdefault(part, {})
        else:
            raise SpecError(f"cannot set {key}: {'.'.join(parts[:depth])} is not a mapping",
                            key_path=f"ensemble.grid.{key}")


# ------------------------------------------------------------------- stepping
def step_plan(simulation, n_samples: int, warmup: bool = False):
    """Phases, rates and step offset of the next ``n_samples`` of a Linsker simulation.

    The same arrays :meth:`LinskerSimulation.advance` (or ``warmup``) computes before
    drawing, so a batched backend can draw each member's samples and step them together.

    Returns
    -------
    phases : int64 ndarray (steps,)
    feedforward_rate, lateral_rate : float64 ndarray (steps,)
        η and ε per sample at each step.
    step_offset : int
        Sample count of the first step (negative during warm-up).
    """
    spec = simulation.spec
    batch = spec.schedule.batch_size
    n_steps = n_samples // batch
    if warmup:
        phases = step_phases(spec.schedule, spec.phases, 0, n_steps)
        zeros = np.zeros(n_steps)
        return phases, zeros, simulation._lateral_rates(zeros), -spec.schedule.warmup_samples
    first = simulation.samples_done
    samples = first + batch * np.arange(n_steps)
    phases = step_phases(spec.schedule, spec.phases, first, n_steps)
    feedforward_rate = rate_at(spec.learning_rates[simulation.feedforward_name], samples)
    return phases, feedforward_rate, simulation._lateral_rates(samples), first


def draw_steps(simulation, phases, stimulus_rng=None, noise_rng=None):
    """The stimulus and output noise of a run of steps, as ``LinskerSimulation._draw`` draws them.

    Same random streams and the same numbers consumed in the same order; the only difference
    is that the stimulus is asked for one flat run of samples, so its filters are applied as
    one matrix-matrix product instead of one small product per step (NumPy's matmul of a
    stack). The inputs therefore agree with the reference's to rounding.

    Parameters
    ----------
    simulation : LinskerSimulation
    phases : int ndarray (steps,)
    stimulus_rng, noise_rng : numpy.random.Generator, optional
        Streams to draw from instead of the simulation's own (copies, for prefetching).

    Returns
    -------
    inputs : ndarray (steps, B, N)
    noise : ndarray (steps, B, M)
    """
    batch = simulation.spec.schedule.batch_size
    n_steps = len(phases)
    stimulus_rng = stimulus_rng or simulation.stimulus_rng
    noise_rng = noise_rng or simulation.noise_rng
    sensing = np.repeat(np.asarray(phases) == SENSING, batch)
    inputs = simulation.stimulus.sample(stimulus_rng, sensing, simulation.dtype)
    inputs = np.ascontiguousarray(inputs.reshape(n_steps, batch, simulation.n_inputs))
    noise = (np.sqrt(simulation.output_noise_variance)
             * noise_rng.standard_normal((n_steps, batch, simulation.n_outputs)))
    return inputs, noise.astype(simulation.dtype, copy=False)


def lateral_batch_rates(lateral_rate: np.ndarray, batch: int) -> np.ndarray:
    """ε_B = 1 − (1 − ε)^B for each step (see :func:`plasticsim.schedules.batch_rate`)."""
    return 1.0 - (1.0 - np.asarray(lateral_rate, dtype=np.float64)) ** batch


def unsupported_features(simulation, backend: str) -> None:
    """Refuse, with the reason, what the batched backends do not implement.

    ``simulation`` may be a :class:`~plasticsim.spec.ProtocolSpec` (checked before anything
    is built) or a built simulation (its constraint objects are checked too).

    Raises
    ------
    BackendUnavailable
        For gated (two-compartment) populations or constraint classes other than the
        registered weight-norm and output-power ones.
    """
    spec = getattr(simulation, "spec", simulation)
    for name, population in spec.model.populations.items():
        if getattr(population, "gate", None) is not None:
            raise BackendUnavailable(f"the {backend} backend does not implement gated "
                                     f"(two-compartment) populations "
                                     f"(model.populations.{name}.gate); use backend numpy")
    for index, constraint in enumerate(getattr(simulation, "constraints", ())):
        if type(constraint) not in (WeightNormConstraint, OutputPowerConstraint):
            raise BackendUnavailable(f"the {backend} backend does not implement constraint "
                                     f"{constraint.spec.kind!r} (model.constraints.{index}); "
                                     f"use backend numpy")


class SequentialEnsemble:
    """Members stepped one after another; works for every backend.

    Parameters
    ----------
    simulations : list
        One simulation per member.
    """

    def __init__(self, simulations: list):
        self.members = simulations
        self.backend_name = simulations[0].backend_name

    @property
    def samples_done(self) -> int:
        """Training samples presented so far (the same for every member)."""
        return self.members[0].samples_done

    def warmup(self) -> None:
        for index, simulation in enumerate(self.members):
            try:
                simulation.warmup()
            except PlasticsimError as error:
                raise member_error(error, simulation, index) from None

    def advance(self, n_samples: int) -> np.ndarray:
        """Advance every member by ``n_samples``; returns each member's worst residual."""
        residuals = []
        for index, simulation in enumerate(self.members):
            try:
                residuals.append(simulation.advance(n_samples))
            except PlasticsimError as error:
                raise member_error(error, simulation, index) from None
        return np.array(residuals)


def member_error(error: PlasticsimError, simulation, index: int) -> PlasticsimError:
    """The same error with the member named (errors stay one readable line).

    ``simulation`` carries ``ensemble_index`` and ``ensemble_label`` once
    :func:`build_ensemble` built it; ``index`` (its position) is the fallback.
    """
    index = getattr(simulation, "ensemble_index", index)
    label = getattr(simulation, "ensemble_label", f"seed={simulation.spec.seed}")
    error.args = (f"ensemble member {index} ({label}): {error}",) + error.args[1:]
    return error


def build_ensemble(spec: ProtocolSpec, members: list[EnsembleMember] | None = None,
                   backend: str | None = None):
    """Build the batched simulation of an ensemble protocol.

    Parameters
    ----------
    spec : ProtocolSpec
        With an ``ensemble`` block (or without: an ensemble of one).
    members : list of EnsembleMember, optional
        Already expanded members.
    backend : str, optional
        Overrides ``spec.backend``. ``auto`` takes the numba ensemble where it can run the
        members, else runs them one after another on the backend ``auto`` picks.

    Returns
    -------
    An object with ``members`` (one simulation each, state as in a single run),
    ``backend_name``, ``warmup()`` and ``advance(n_samples) -> residuals``.
    """
    from .backends import _import_all, build

    members = members if members is not None else expand_ensemble(spec)
    specs = [member.spec for member in members]
    name = backend or spec.backend
    _import_all()
    ensemble = None
    candidate = "numba" if name == "auto" else name
    builder = ENSEMBLE_BUILDERS.get(candidate) or ENSEMBLE_BUILDERS.get(candidate.split(":")[0])
    if builder is not None:
        try:
            ensemble = builder(specs, candidate)
        except BackendUnavailable:
            if name != "auto":
                raise
    if ensemble is None:
        ensemble = SequentialEnsemble([build(member_spec, name) for member_spec in specs])
    for member, simulation in zip(members, ensemble.members):
        simulation.ensemble_index, simulation.ensemble_label = member.index, member.label
    return ensemble


# ------------------------------------------------------------------- running
@dataclass
class EnsembleResults:
    """An ensemble run: the index file and each member's :class:`~plasticsim.results.Results`.

    Attributes
    ----------
    path : Path
        ``ensemble.json``.
    spec : ProtocolSpec
        The ensemble protocol.
    index : list of dict
        Per member: ``index``, ``label``, ``seed``, ``values``, ``directory``, ``summary``.
    members : list of Results
    """

    path: Path
    spec: ProtocolSpec
    index: list = field(default_factory=list)
    members: list = field(default_factory=list)


def run_ensemble(spec: ProtocolSpec, out: str | Path | None = None, *, overwrite: bool = False,
                 progress: bool = True, figures: bool = True) -> EnsembleResults:
    """Run an ensemble protocol; each member gets an ordinary run directory.

    Called by :func:`plasticsim.run` for protocols with an ``ensemble`` block.

    Returns
    -------
    EnsembleResults
    """
    from tqdm.auto import tqdm

    from .loading import spec_to_yaml
    from .recording import Recorder
    from .results import load
    from .run import (_jsonable, _record, _summary, gaussian_problem,
                      prepare_output_directory, write_final_state)

    out = Path(out) if out is not None else Path("results") / spec.name
    members = expand_ensemble(spec)
    ensemble = build_ensemble(spec, members)  # fails early, before touching out
    prepare_output_directory(out, overwrite)
    for stale in (out / INDEX_NAME, out / MEMBERS_DIRECTORY):
        if stale.exists() and not overwrite:
            from .errors import OutputExistsError
            raise OutputExistsError(f"{out} already holds an ensemble; choose another --out "
                                    f"or pass --overwrite")
    if (out / MEMBERS_DIRECTORY).exists():
        import shutil
        shutil.rmtree(out / MEMBERS_DIRECTORY)

    simulations = ensemble.members
    problems = [gaussian_problem(simulation) for simulation in simulations]
    optima = [problem.optimum() if problem is not None else None for problem in problems]
    recorders = []
    for member, simulation in zip(members, simulations):
        directory = out / MEMBERS_DIRECTORY / f"{member.index:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        recorders.append(Recorder(directory, spec_to_yaml(member.spec), {
            "seed": member.seed, "backend": simulation.backend_name, "dtype": spec.dtype,
            "protocol": spec.name, "ensemble_member": member.index,
            "ensemble_size": len(members), "ensemble_label": member.label}))
    started = time.perf_counter()
    current = None
    try:
        for member, simulation, recorder in zip(members, simulations, recorders):
            recorder.write_populations(member.spec.model.populations)
            for stimulus_spec in member.spec.stimuli.values():
                if stimulus_spec.population == simulation.input_population:
                    recorder.write_stimulus(stimulus_spec.population, simulation.stimulus,
                                            stimulus_spec.kind)
        ensemble.warmup()
        _record_all(_record, members, simulations, recorders, problems, optima,
                    np.zeros(len(members)))
        every, total = spec.record.every, spec.schedule.samples
        with tqdm(total=total, unit="sample", unit_scale=True, disable=not progress,
                  desc=f"{spec.name} ×{len(members)}", leave=False) as bar:
            while ensemble.samples_done < total:
                chunk = min(every, total - ensemble.samples_done)
                residuals = ensemble.advance(chunk)
                _record_all(_record, members, simulations, recorders, problems, optima,
                            residuals)
                bar.update(chunk)
        wall_seconds = time.perf_counter() - started
        summaries = []
        for current, (simulation, recorder) in enumerate(zip(simulations, recorders)):
            summary = _summary(simulation, problems[current], optima[current], wall_seconds)
            write_final_state(recorder, simulation, summary, optima[current])
            summaries.append(summary)
        paths = [recorder.finish() for recorder in recorders]
    except BaseException as error:
        message = str(error) if isinstance(error, PlasticsimError) else \
            f"{type(error).__name__}: {error}"
        for recorder in recorders:
            if recorder.partial_path.exists():
                recorder.fail(message)
        raise
    results = EnsembleResults(out / INDEX_NAME, spec)
    for member, path, summary in zip(members, paths, summaries):
        (path.parent / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2)
                                                  + "\n")
        member_results = load(path)
        if figures:
            from .figures import render_figures
            render_figures(member_results, path.parent / "figures")
        results.members.append(member_results)
        results.index.append({"index": member.index, "label": member.label,
                              "seed": member.seed, "values": member.values,
                              "directory": str(path.parent.relative_to(out)),
                              "summary": _jsonable(summary)})
    results.path.write_text(json.dumps({"protocol": spec.name,
                                        "backend": ensemble.backend_name,
                                        "members": results.index}, indent=2) + "\n")
    return results


def _record_all(record, members, simulations, recorders, problems, optima, residuals):
    for member, simulation, recorder, problem, optimum, residual in zip(
            members, simulations, recorders, problems, optima, residuals):
        try:
            record(recorder, simulation, problem, optimum, residual)
        except PlasticsimError as error:
            raise member_error(error, simulation, member.index) from None



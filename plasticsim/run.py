"""Running a protocol end to end: spec → plan → backend → results files, summaries, figures.

One loop serves single runs and ensembles: a protocol expands into members
(:func:`plasticsim.spec.expand_ensemble`, one member without an ``ensemble`` block), the
builder makes one plan per structure with a leading member axis, a backend compiles each plan,
and every member gets its own results file. Per member and record, the loop stores the plan's
metrics and the closed-form information of its linear Gaussian layers; after training it runs
the protocol's probes, writes the final state, and computes the summary from the results
file (:func:`plasticsim.analysis.summary.summarize`).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .analysis.linsker import (REACHABLE_TIME_CONSTANTS, integrated_rate, layer_problem,
                               slowest_mode_eigenvalue, snapshot_metrics)
from .analysis.summary import summarize
from .backends import build
from .engine.builder import build_plans
from .checkpoint import Checkpointer, protocol_hash, restore
from .checkpoint import find as find_checkpoint
from .engine.memory import check_plan_memory, check_spec_memory
from .errors import OutputExistsError, PlasticsimError, SimulationDiverged, SpecError
from .io import output, provenance
from .io.dimensions import label_dimensions, spec_dimensions
from .io.recording import Recorder
from .io.results import Results, load, must_be_finite
from .spec.ensemble import EnsembleMember, expand_ensemble
from .spec.loading import (apply_overrides, load_protocol_with_lines, locate,
                           protocol_from_document, spec_to_yaml)
from .spec.protocol import ProtocolSpec

INDEX_NAME = output.INDEX_NAME
#: Inputs above which the closed-form optimum's eigendecomposition is announced (it is N³).
LARGE_EIGENPROBLEM = 1500
MEMBERS_DIRECTORY = output.MEMBERS_DIRECTORY


@dataclass
class EnsembleResults:
    """An ensemble run: the index file and each member's :class:`~plasticsim.io.results.Results`.

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


def resolve_spec(protocol, overrides: list[str] | None = None) -> tuple[ProtocolSpec, dict, str]:
    """The validated spec of a protocol file (or spec), its key → (file, line) map and source."""
    overrides = list(overrides or [])
    if isinstance(protocol, ProtocolSpec):
        if not overrides:
            return protocol, {}, "<protocol>"
        document = apply_overrides(protocol.model_dump(mode="json"), overrides, {})
        return protocol_from_document(document), {}, "<protocol>"
    spec, lines = load_protocol_with_lines(protocol, overrides)
    return spec, lines, str(protocol)


def build_members(spec: ProtocolSpec, lines: dict | None = None, source: str | None = None,
                  backend: str | None = None):
    """Members, plans and compiled simulations of a protocol (nothing is written).

    Raises
    ------
    SpecError
        A graph the engine cannot run, with the file and line of the offending key.
    BackendUnavailable
        The backend cannot run an operation of the plan.
    """
    members, plans = _plans(spec, lines, source)
    simulations = []
    for plan in plans:
        labels = [members[index].label for index in plan.info["members"]]
        simulations.append(build(plan, backend or spec.backend, labels))
    return members, plans, simulations


def _plans(spec: ProtocolSpec, lines: dict | None, source: str | None):
    """Members and plans of a protocol, with its memory checked before and after building."""
    members = expand_ensemble(spec)
    return members, _checked_plans(members, lines, source)


def _checked_plans(members, lines: dict | None, source: str | None):
    """Plans of ``members``, their memory checked before and after building."""
    try:
        for member in members:
            check_spec_memory(member.spec, len(members))
        plans = build_plans([member.spec for member in members])
        check_plan_memory(plans)
    except SpecError as error:
        raise locate(error, lines, source) from None
    return plans


def validate(protocol, overrides: list[str] | None = None, backend: str | None = None):
    """Load a protocol and build its plans (no simulation): what ``plasticsim validate`` does.

    Returns
    -------
    spec : ProtocolSpec
    plans : list of Plan
    """
    spec, lines, source = resolve_spec(protocol, overrides)
    _, plans = _plans(spec, lines, source)
    from .backends import check_supported
    for plan in plans:
        check_supported(plan, backend or spec.backend)
    return spec, plans


def check_output_directory(out: Path) -> None:
    """Refuse an ``out`` that is, or lies below, something other than a directory."""
    for path in (out, *out.parents):
        try:
            if path.exists() or path.is_symlink():
                if not path.is_dir():
                    raise OutputExistsError(f"--out {out}: {path} exists and is not a "
                                            "directory; expected a directory (or a new path)")
                break
        except OSError as error:
            raise OutputExistsError(f"--out {out}: cannot use {path} ({error.strerror or error})"
                                    ) from None
        except ValueError as error:   # e.g. a NUL byte in the path
            raise OutputExistsError(f"--out {out!r}: not a usable path ({error})") from None


def prepare_output_directory(out: Path, overwrite: bool) -> Path:
    """Create ``out``; refuse to touch an existing run unless ``overwrite``.

    Returns the directory the run writes into: ``out``, or where ``out`` holds a run, a
    staging directory that :func:`plasticsim.io.output.commit` moves over it once the new run
    is complete (the earlier run stays whole until then).
    """
    check_output_directory(out)
    try:
        return output.prepare(out, overwrite)
    except OSError as error:
        raise OutputExistsError(f"--out {out}: cannot create the directory "
                                f"({error.strerror or error})") from None


def run(protocol: str | Path | ProtocolSpec, out: str | Path | None = None, *,
        seed: int | None = None, overrides: list[str] | None = None,
        backend: str | None = None, overwrite: bool = False, progress: bool = True,
        figures: bool = True) -> Results | EnsembleResults:
    """Run a protocol and return its results.

    Parameters
    ----------
    protocol : path or ProtocolSpec
        A protocol YAML file, or an already validated spec.
    out : path, optional
        Output directory (default ``results/<protocol name>``). Receives ``results.h5``,
        ``summary.json`` and ``figures/``; an ensemble gets ``ensemble.json`` and one such
        directory per member under ``members/``.
    seed : int, optional
        Overrides the protocol's root seed.
    overrides : list of str, optional
        ``"dotted.key=value"`` overrides, applied before validation.
    backend : str, optional
        Overrides the protocol's backend.
    overwrite : bool
        Replace an existing run in ``out``.
    progress : bool
        Show a progress bar.
    figures : bool
        Render the figures.

    Returns
    -------
    Results
        Or, for a protocol with an ``ensemble`` block, :class:`EnsembleResults`.

    Examples
    --------
    >>> import plasticsim
    >>> results = plasticsim.run("protocols/linsker1992_1d.yaml", "results/quick",
    ...                          overrides=["schedule.samples=20000"], overwrite=True,
    ...                          progress=False)  # doctest: +SKIP
    >>> results.summary["fraction_of_optimum"]  # doctest: +SKIP
    """
    call = provenance.python_call("run", protocol, out, seed=seed, overrides=overrides or None,
                                  backend=backend, overwrite=overwrite or None)
    overrides = list(overrides or [])
    if seed is not None:
        overrides.append(f"seed={int(seed)}")
    if backend is not None:
        overrides.append(f"backend={backend}")
    spec, lines, source = resolve_spec(protocol, overrides)
    if spec.sweep is not None:
        warnings.warn(f"{source}: the sweep: block is for plasticsim sweep; plasticsim run "
                      "runs the protocol once with its own values", stacklevel=2)
    out = Path(out) if out is not None else Path("results") / spec.name
    check_output_directory(out)
    # Everything that can fail on input fails here, before the output directory is touched.
    members, plans, simulations = build_members(spec, lines, source)
    target = prepare_output_directory(out, overwrite)
    runs = member_runs(spec, members, plans, simulations, target)
    requested = provenance.invocation(
        None if isinstance(protocol, ProtocolSpec) else protocol, call)
    for member_run in runs:
        member_run.run_attributes.update(requested)
    _train(spec, simulations, runs, progress, Checkpointer(target, spec, simulations, runs))
    return complete(spec, simulations, runs, target, out, figures)


def member_runs(spec: ProtocolSpec, members: list, plans: list, simulations: list,
                directory: Path) -> list:
    """One :class:`_MemberRun` per member, in member order, writing under ``directory``."""
    ensemble = spec.ensemble is not None
    runs = []
    for plan, simulation in zip(plans, simulations):
        for position, member_index in enumerate(plan.info["members"]):
            member = members[member_index]
            runs.append(_MemberRun(
                member, plan, simulation, position,
                directory / MEMBERS_DIRECTORY / str(member.index) if ensemble else directory,
                len(members) if ensemble else 0))
    runs.sort(key=lambda r: r.member.index)
    for member_run in runs:
        member_run.run_attributes["protocol_sha256"] = protocol_hash(spec)
    return runs


def resume(out_dir: str | Path, *, progress: bool = True, figures: bool = True):
    """Continue a killed or interrupted run from its last checkpoint.

    Parameters
    ----------
    out_dir : path
        The run's output directory (as given to ``plasticsim run --out``).
    progress : bool
        Show a progress bar.
    figures : bool
        Render the figures.

    Returns
    -------
    Results or EnsembleResults
        As :func:`plasticsim.run` returns for an uninterrupted run, with equal results.

    Raises
    ------
    DataError
        Nothing to resume, or a checkpoint that cannot be used (nothing is changed then).
    """
    out = Path(out_dir)
    output.recover(out)
    checkpoint = find_checkpoint(out)
    spec, samples = checkpoint.spec, checkpoint.meta["samples"]
    members, plans, simulations = build_members(spec, backend=checkpoint.meta["backend"])
    runs = member_runs(spec, members, plans, simulations, checkpoint.directory)
    checkpointer = restore(checkpoint, simulations, runs)
    _train(spec, simulations, runs, progress, checkpointer, resume_at=samples)
    return complete(spec, simulations, runs, checkpoint.directory, out, figures)


def complete(spec: ProtocolSpec, simulations: list, runs: list, target: Path, out: Path,
             figures: bool) -> Results | EnsembleResults:
    """Final writes of every member, the ensemble index, then the commit of a staged run over
    the earlier one in ``out`` (:mod:`plasticsim.io.output`) and removal of the checkpoint."""
    for member_run in runs:
        member_run.finish(figures)
    ensemble = spec.ensemble is not None
    if ensemble:
        index = [{"index": member_run.member.index, "label": member_run.member.label,
                  "seed": member_run.member.seed, "values": member_run.member.values,
                  "directory": str(member_run.directory.relative_to(target)),
                  "summary": _jsonable(member_run.summary)} for member_run in runs]
        (target / INDEX_NAME).write_text(json.dumps({"protocol": spec.name,
                                                     "backend": simulations[0].backend_name,
                                                     "members": index}, indent=2) + "\n")
    (target / output.CHECKPOINT_NAME).unlink(missing_ok=True)
    output.commit(target, out)
    for member_run in runs:  # the files now live in ``out``
        _follow(member_run.results, target, out)
    if not ensemble:
        return runs[0].results
    return EnsembleResults(out / INDEX_NAME, spec, index, [r.results for r in runs])


def _follow(results: Results, target: Path, out: Path) -> None:
    """Point ``results`` at its file after a commit moved it from ``target`` to ``out``."""
    results.path = out / results.path.relative_to(target)
    for group in (results.history, results.activities):
        if hasattr(group, "path"):  # read from the file on demand: follow it
            group.path = results.path


def run_batch(specs: list[ProtocolSpec], directories: list, *,
              figures: bool = False) -> list[Results]:
    """Run protocols that differ only in their seed as one stack along the plan's member axis,
    each into its own directory exactly as ``run(spec, directory, overwrite=True)`` would.

    What a sweep does with members that fit on one worker (:func:`plasticsim.sweep`): the
    stacked simulation advances every member at each step, which costs little more than one
    member for small networks. Each member's random streams come from its own seed, as in an
    ensemble, so its results file equals a run of that member alone bit for bit (timings
    aside: each member's ``wall_seconds`` is its share, the batch's training time divided by
    the number of members). A batch saves no checkpoints: an interrupted batch runs again.

    Parameters
    ----------
    specs : list of ProtocolSpec
        Protocols equal but for ``seed`` (and without an ``ensemble`` block).
    directories : list of path
        One output directory per protocol; an earlier run there is replaced once the new one
        is complete.
    figures : bool
        Render each member's figures.

    Raises
    ------
    SpecError
        The protocols differ in more than their seed, or have an ensemble block.
    """
    if len(specs) != len(directories) or not specs:
        raise SpecError("run_batch: give one directory per protocol (and at least one)")
    shapes = {spec_to_yaml(spec.model_copy(update={"seed": 0})) for spec in specs}
    if len(shapes) != 1 or specs[0].ensemble is not None:
        raise SpecError("run_batch: the protocols must differ only in their seed and have no "
                        "ensemble block")
    members = [EnsembleMember(index, f"seed={spec.seed}", spec.seed, {}, spec)
               for index, spec in enumerate(specs)]
    plans = _checked_plans(members, None, "<batch>")
    simulations = [build(plan, specs[0].backend, [members[i].label for i in plan.info["members"]])
                   for plan in plans]
    outs = [Path(directory) for directory in directories]
    for out in outs:
        check_output_directory(out)
    targets = [prepare_output_directory(out, True) for out in outs]
    requested = provenance.invocation(None, provenance.python_call(
        "run_batch", [f"<ProtocolSpec {spec.name} seed={spec.seed}>" for spec in specs],
        [str(out) for out in outs]))
    runs = []
    for plan, simulation in zip(plans, simulations):
        for position, index in enumerate(plan.info["members"]):
            member_run = _MemberRun(members[index], plan, simulation, position, targets[index],
                                    0)   # written as a single run, not an ensemble member
            member_run.run_attributes.update(requested)
            member_run.run_attributes["protocol_sha256"] = protocol_hash(specs[index])
            runs.append(member_run)
    runs.sort(key=lambda r: r.member.index)
    _train(specs[0], simulations, runs, progress=False)
    share = max(member_run.wall_seconds for member_run in runs) / len(runs)
    for member_run, target, out in zip(runs, targets, outs):
        member_run.wall_seconds = share
        member_run.finish(figures)
        output.commit(target, out)
        _follow(member_run.results, target, out)
    return [member_run.results for member_run in runs]


def _train(spec: ProtocolSpec, simulations: list, runs: list, progress: bool,
           checkpointer=None, resume_at: int | None = None) -> None:
    """Warm up, then advance every simulation in record-sized chunks, recording each member.

    ``resume_at``: the sample count of a restored checkpoint (members started, state and
    records as they were then); training goes on from there. ``checkpointer`` is offered
    every record boundary (:class:`plasticsim.checkpoint.Checkpointer`).
    """
    try:
        done = resume_at or 0
        if resume_at is None:
            for member_run in runs:
                member_run.start()
            for simulation in simulations:
                simulation.warmup()
            for member_run in runs:
                member_run.record()
        every, total = spec.record.every, spec.schedule.samples
        with tqdm(total=total, initial=done, unit="sample", unit_scale=True,
                  disable=not progress, desc=spec.name, leave=False) as bar:
            while done < total:
                chunk = min(every, total - done)
                for simulation in simulations:
                    simulation.advance(chunk)
                for member_run in runs:
                    member_run.record()
                for simulation in simulations:
                    simulation.reset_monitors()
                done += chunk
                bar.update(chunk)
                if checkpointer is not None:
                    checkpointer.offer(done)
        for member_run in runs:
            member_run.wall_seconds = time.perf_counter() - member_run.started
            member_run.probe()
    except PlasticsimError as error:
        for member_run in runs:
            member_run.fail(str(error))
        raise
    except BaseException as error:
        for member_run in runs:
            member_run.fail(f"{type(error).__name__}: {error}")
        raise


class _MemberRun:
    """One member's recorder, records and final writes."""

    def __init__(self, member: EnsembleMember, plan, simulation, position: int,
                 directory: Path, ensemble_size: int):
        self.member, self.plan, self.simulation = member, plan, simulation
        self.position, self.directory, self.ensemble_size = position, directory, ensemble_size
        self.spec = member.spec
        self.info = plan.info["member_info"][position]
        self.recorder = None
        self.summary: dict = {}
        self.results = None
        self.started = time.perf_counter()
        self.wall_seconds = 0.0
        self.layers = self.info["linear_gaussian_layers"]
        self.optima = {}
        self.last_metrics: dict = {}
        self.hints: dict = {}   # settling shortfalls and the reachability figure (summary)
        #: Root attributes of the results file that come from the whole run (its protocol).
        self.run_attributes: dict = {}

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        backend = self.simulation.backend_name
        attributes = {"seed": self.spec.seed, "backend": backend,
                      "backend_requested": self.spec.backend,
                      "dtype": self.spec.dtype, "protocol": self.spec.name,
                      **provenance.environment(), **self.run_attributes}
        if self.ensemble_size:
            attributes.update({"ensemble_member": self.member.index,
                               "ensemble_size": self.ensemble_size,
                               "ensemble_label": self.member.label})
        # The stored protocol names the backend that ran (``numba``, where ``auto`` was asked
        # for): running it again runs the same code; ``backend_requested`` keeps the request.
        ran = self.spec.model_copy(update={"backend": backend})
        self.recorder = Recorder(self.directory, spec_to_yaml(ran), attributes)
        self.recorder.write_populations(self.spec.model.populations)
        self.recorder.write_layers(self.layers)
        for path, value, attrs in self.simulation.final_arrays(self.position):
            if path.startswith("stimulus/"):
                self.recorder.write_entry(path, value, attrs)
        for layer in self.layers:  # the closed-form optimum of first layers, for each record
            if len(layer["chain"]) == 1 and layer["budget"] is not None:
                problem = self._problem(layer, self.simulation.member_state(
                    self.position, layer["chain"]))
                size = problem.signal_covariance.shape[0]
                if size > LARGE_EIGENPROBLEM:
                    warnings.warn(f"{layer['population']}: computing the closed-form infomax "
                                  f"optimum of {size} inputs (an eigendecomposition of "
                                  f"{size} × {size}); this can take minutes", stacklevel=2)
                optimum = problem.optimum()
                self.optima[layer["population"]] = optimum.mutual_information
                self._reachability_hint(layer, problem, optimum)
        self.started = time.perf_counter()

    def _reachability_hint(self, layer, problem, optimum) -> None:
        """Warn when a local rule's slowest needed mode cannot be learnt in the samples given.

        Stores ``<prefix>slowest_mode_time_constants`` (∫η dt · λ_min) for the summary.
        """
        projection = self.spec.model.projections.get(layer["projection"])
        rate = self.spec.learning_rates.get(layer["projection"])
        if projection is None or rate is None or getattr(projection.rule, "metric",
                                                          "euclidean") != "euclidean":
            return  # the natural-gradient metric moves every mode at the same rate
        eigenvalue = slowest_mode_eigenvalue(problem, optimum)
        learning = integrated_rate(rate.kind, rate.initial, rate.tau, self.spec.schedule.samples)
        constants = learning * eigenvalue
        prefix = "" if len(self.layers) == 1 else f"{layer['population']}_"
        self.hints[prefix + "slowest_mode_time_constants"] = constants
        if constants < REACHABLE_TIME_CONSTANTS:
            warnings.warn(
                f"{layer['projection']}: the slowest mode the infomax optimum uses has input "
                f"eigenvalue λ = {eigenvalue:.3g}, a learning time constant 1/(ηλ) of about "
                f"{1 / (rate.initial * eigenvalue):.3g} samples at η₀ = {rate.initial:g}; the "
                f"{self.spec.schedule.samples} training samples give {constants:.2g} time "
                f"constants (fewer than {REACHABLE_TIME_CONSTANTS:g}): the local rule may stop "
                "short of the optimum (train longer, raise η, or use rule.metric: "
                "input_covariance)", stacklevel=2)

    def _problem(self, layer, state):
        stored = {"noise_variances": layer["noise_variances"],
                  "signal_covariance": layer["signal_covariance"],
                  "noise_covariance": layer["noise_covariance"],
                  "budget_kind": (layer["budget"] or {}).get("kind"),
                  "budget_value": (layer["budget"] or {}).get("value")}
        return layer_problem(stored, [state[name] for name in layer["chain"]])

    def record(self) -> None:
        simulation, position = self.simulation, self.position
        metrics = simulation.metrics(position)
        for definition in self.plan.metrics:
            for name in definition.divergence:
                if metrics.get(name, 0.0) >= 1.0:
                    phase = "noise_unlearning" if "noise_unlearning" in name else "sensing"
                    owner = name.split("_spectral_radius")[0] if not name.startswith(
                        "spectral_radius") else "lateral network"
                    raise simulation._member_error(position, SimulationDiverged(
                        simulation.samples_done, "spectral_radius(F)", metrics[name],
                        f"{owner}, {phase} phase: the lateral network would not settle"))
        state = simulation.member_state(position, {name for layer in self.layers
                                                   for name in layer["chain"]})
        for layer in self.layers:
            prefix = "" if len(self.layers) == 1 else f"{layer['population']}_"
            problem = self._problem(layer, state)
            C = state[layer["chain"][-1]]
            optimum = self.optima.get(layer["population"])
            if optimum is not None:
                values = snapshot_metrics(problem, C, optimum)
            else:
                values = {"mutual_information_nats": problem.mutual_information(C)}
                values["mutual_information_bits"] = values["mutual_information_nats"] / np.log(2)
            metrics.update({prefix + key: value for key, value in values.items()})
        snapshot = None
        if self.spec.record.weights:
            learned = {p["weights"]: name for name, p in self.info["projections"].items()
                       if p["weights"] is not None and p["rule"] != "none"}
            snapshot = {learned[state_name]: value for state_name, value in
                        simulation.member_state(position, list(learned)).items()}
        self._check_settling(metrics)
        activities = None
        if self.spec.record.activities:
            names = {**self.plan.respond_inputs, **self.plan.outputs}
            activities = {population: simulation.member_state(position, [name])[name]
                          for population, name in names.items()}
        self.recorder.record(simulation.samples_done, metrics, snapshot, activities)
        self.last_metrics = metrics

    def _check_settling(self, metrics: dict) -> None:
        """Count records whose settling residual is above its tolerance; warn at the first."""
        settling = self.info.get("settling", {})
        for population, entry in settling.items():
            key = (f"{entry['projection']}_settling_residual"
                   if f"{entry['projection']}_settling_residual" in metrics
                   else "settling_residual")
            residual, tolerance = metrics.get(key), entry["tolerance"]
            if residual is None or tolerance <= 0 or not residual > tolerance:
                continue   # tolerance 0: a fixed number of iterations was asked for
            prefix = "" if len(settling) == 1 else f"{entry['projection']}_"
            count_key = prefix + "settling_records_above_tolerance"
            self.hints[count_key] = self.hints.get(count_key, 0) + 1
            self.hints[prefix + "settling_tolerance"] = tolerance
            if self.hints[count_key] == 1:
                warnings.warn(f"{entry['projection']}: the lateral settling of {population} "
                              f"did not reach its tolerance: residual {residual:.3g} > "
                              f"{tolerance:g} at sample {self.simulation.samples_done} "
                              "(raise settling.iterations; later records are counted in "
                              f"the summary's {count_key})", stacklevel=2)

    def probe(self) -> None:
        """Run the protocol's probes on the trained network; store what they measure."""
        simulation, position = self.simulation, self.position
        for index, (name, probe) in enumerate(self.spec.probes.items()):
            entry = self.info["probes"][name]
            key = (3,) if index == 0 else (3, index)
            rng = np.random.default_rng(np.random.SeedSequence(self.spec.seed, spawn_key=key))

            def respond(inputs, population):
                return simulation.respond(position, inputs, population)
            measured = entry["run"](probe, entry, respond, rng)
            self.recorder.write_entry(measured["path"], measured["array"],
                                      {"probe": name, **measured["attributes"]})

    def finish(self, figures: bool) -> None:
        """Final state, summary from the results file, completion, figures."""
        simulation, position = self.simulation, self.position
        try:
            for path, value, attrs in simulation.final_arrays(position):
                if path.startswith("weights/") and not _all_finite(value):
                    raise SimulationDiverged(simulation.samples_done, path, float("nan"),
                                             "the final weights are not finite")
                if not path.startswith("stimulus/"):
                    self.recorder.write_entry(path, value, attrs)
            partial = self.recorder.close()
            analysis, arrays = summarize(load(partial))
            self.recorder.reopen()
            for path, (value, attrs) in arrays.items():
                self.recorder.write_entry(path, value, attrs)
            summary = self._run_summary()
            summary.update(analysis)
            # Information figures must be finite; a NaN median of an empty set of good Gabor
            # fits is a (reported) finding, not a divergence.
            non_finite = [key for key, value in summary.items()
                          if isinstance(value, float) and not np.isfinite(value)
                          and must_be_finite(key)]
            non_finite += [key for key, value in self.last_metrics.items()
                           if not np.all(np.isfinite(value))]
            if non_finite:
                raise SimulationDiverged(simulation.samples_done, non_finite[0], float("nan"),
                                         "a final figure is not finite")

            self.recorder.write_arrays("summary", {k: v for k, v in summary.items()
                                                   if not isinstance(v, str)})
            label_dimensions(self.recorder.file, *spec_dimensions(self.spec))
            path = self.recorder.finish()
        except PlasticsimError as error:
            self.fail(str(error))
            raise
        except BaseException as error:
            self.fail(f"{type(error).__name__}: {error}")
            raise
        self.summary = summary
        self.results = load(path)
        written = {**_jsonable(summary),
                   "provenance": provenance.summary_block(self.results.attributes)}
        (self.directory / "summary.json").write_text(json.dumps(written, indent=2) + "\n")
        if figures:
            from .plot.render import render_figures
            figure_directory = self.directory / output.FIGURES_DIRECTORY
            output.write_figures_manifest(figure_directory,
                                          render_figures(self.results, figure_directory))

    def _run_summary(self) -> dict:
        simulation = self.simulation
        metrics = self.last_metrics
        summary = {"protocol": self.spec.name, "backend": simulation.backend_name,
                   "seed": self.spec.seed, "samples": simulation.samples_done,
                   "wall_seconds": self.wall_seconds,
                   "samples_per_second": simulation.samples_done / max(self.wall_seconds, 1e-9)}
        residuals = [metrics[k] for k in metrics if k.endswith("settling_residual")]
        radii = [metrics[k] for k in metrics if "spectral_radius_F" in k]
        if residuals:
            summary["final_settling_residual"] = float(max(residuals))
        if radii:
            summary["final_spectral_radius_F"] = float(max(radii))
        summary.update(self.hints)
        return summary

    def fail(self, message: str) -> None:
        if self.recorder is not None and self.recorder.partial_path.exists():
            try:
                if not self.recorder.file.id.valid:
                    self.recorder.reopen()
                self.recorder.fail(message)
            except OSError:  # the file itself is what failed: leave it as it is
                warnings.warn(f"{self.recorder.partial_path}: could not be marked failed",
                              stacklevel=2)


def _all_finite(value) -> bool:
    if isinstance(value, dict):
        return all(_all_finite(item) for item in value.values())
    array = np.asarray(value)
    return array.dtype.kind not in "fc" or bool(np.all(np.isfinite(array)))


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value

"""The builder: a validated protocol spec → a step :class:`~plasticsim.engine.plan.Plan`.

The builder walks the model's graph, asks each component (stimuli, neuron models, rules,
constraints, probes; :mod:`plasticsim.model`) to emit its state and operations through a
:class:`PlanBuilder` context, and lays the operations out in the step order::

    stimulus → for each population in graph order: drive → gate → settle/inference
             → plasticity → constraint (weight updates, then what follows them)

A graph the engine cannot run is refused here, with the key path of the offending entry (the
loader turns it into file and line): a cycle of projections, a gate fed from downstream, a
population that nothing drives, an input population without a stimulus, a rule on the wrong
kind of projection or population, settings that would be silently ignored. ``plasticsim
validate`` runs the builder, so whatever validates can be built.

Random streams: every member's root ``SeedSequence(seed)`` gives independent streams by spawn
key: initial weights of the projections ``(0,)`` (drawn in declaration order), stimuli
``(1,)``, ``(1, 1)``, …, output noise ``(2,)``, ``(2, 1)``, …, probes ``(3,)``, …, gate
initial weights ``(4, k)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import SpecError
from ..model.constraints.norms import constrain
from ..model.registry import CONSTRAINTS, NEURONS, PROBES, RULES, STIMULI
from ..spec.protocol import ProtocolSpec
from .plan import (SLOTS, MetricDefinition, Operation, Plan, RateDefinition, ResultsEntry,
                   StateArray, StreamGroup)
from .schedules import phase_signs, rate_at

#: Spawn keys of the kinds of random stream (see the module docstring).
STREAM_KINDS = {"initial_weights": 0, "stimulus": 1, "output_noise": 2, "probe": 3,
                "gate_weights": 4}
POPULATION_SLOTS = ("drive", "gate", "settle")


@dataclass(eq=False)
class PopulationHandle:
    """A population while its plan is built: spec, graph position and its state names."""

    name: str
    spec: object
    key: str
    index: int = -1
    incoming: list = field(default_factory=list)    # feedforward projections into it
    recurrent: list = field(default_factory=list)   # projections from it to itself
    output: str | None = None              # what downstream projections read
    learning_activity: str | None = None   # what Hebbian rules on its inputs read as post
    drive: str | None = None
    stimuli: list = field(default_factory=list)
    stream: str | None = None
    patch_shape: tuple | None = None

    @property
    def size(self) -> int:
        return self.spec.size

    @property
    def kind(self) -> str:
        return self.spec.kind

    def attach_stimulus(self, name: str, spec, source) -> None:
        """Record that stimulus ``name`` feeds this population (``source`` may be None for a
        companion stream whose covariances are not this population's)."""
        self.stimuli.append((name, spec, source))

    @property
    def source(self):
        return self.stimuli[0][2] if self.stimuli else None

    @property
    def exact_signal_covariance(self):
        return getattr(self.source, "signal_covariance", None)

    @property
    def exact_noise_covariance(self):
        return getattr(self.source, "noise_covariance", None)

    @property
    def exact_sensing_covariance(self):
        signal, noise = self.exact_signal_covariance, self.exact_noise_covariance
        return None if signal is None or noise is None else signal + noise


@dataclass(eq=False)
class ProjectionHandle:
    """A projection while its plan is built."""

    name: str
    spec: object
    key: str
    pre: PopulationHandle
    post: PopulationHandle
    weights: str | None = None
    delta: str | None = None
    rate: str | None = None
    learning: bool = False
    constraints: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def recurrent(self) -> bool:
        return self.pre is self.post


class PlanBuilder:
    """The context components build through (one member).

    Parameters
    ----------
    spec : ProtocolSpec
    """

    def __init__(self, spec: ProtocolSpec):
        self.spec = spec
        self.batch_size = spec.schedule.batch_size
        self.dtype = spec.dtype
        self.info: dict = {}
        self.warnings: list[str] = []
        self._states: dict[str, StateArray] = {}
        self._operations: list[tuple] = []
        self._streams: list[StreamGroup] = []
        self._stream_counts: dict[str, int] = {}
        self._rates: dict[str, RateDefinition] = {}
        self._metrics: list[MetricDefinition] = []
        self._metric_owners: list[str] = []
        self._results: list[ResultsEntry] = []
        self._after_rules: list[Callable] = []
        self._initial_rngs: dict[str, np.random.Generator] = {}
        self.populations: dict[str, PopulationHandle] = {}
        self.projections: dict[str, ProjectionHandle] = {}

    # ------------------------------------------------------------ for components
    def error(self, key_path: str, message: str):
        """Refuse the spec: raises :class:`SpecError` at ``key_path``."""
        raise SpecError(message, key_path=key_path)

    def warn(self, message: str) -> None:
        """A warning the user sees when the plan is built (validate and run)."""
        self.warnings.append(message)

    def state(self, name: str, shape: tuple, initial=None, dtype: str = "run",
              role: str = "buffer", description: str = "", units: str = "") -> str:
        """Declare a state array (``initial``: its value, default zeros); returns ``name``."""
        if name in self._states:
            raise SpecError(f"state {name!r} is declared twice (two components claim it)")
        shape = tuple(int(n) for n in shape)
        numpy_dtype = np.dtype(self.dtype if dtype == "run" else dtype)
        value = np.zeros(shape, numpy_dtype) if initial is None else np.asarray(initial)
        if value.shape != shape:
            raise ValueError(f"state {name}: initial value of shape {value.shape}, declared "
                             f"{shape}")
        self._states[name] = StateArray(name, shape, value.astype(numpy_dtype), dtype, role,
                                        description, units)
        return name

    def set_initial(self, name: str, value: np.ndarray) -> None:
        """Replace a declared state's initial value (e.g. weights put on their budget)."""
        state = self._states[name]
        self._states[name] = StateArray(state.name, state.shape,
                                        np.asarray(value).astype(state.initial.dtype),
                                        state.dtype, state.role, state.description,
                                        state.units)

    def initial_value(self, name: str) -> np.ndarray:
        return self._states[name].initial

    def op(self, primitive: str, slot: str, population: PopulationHandle | None = None, *,
           reads: dict | None = None, writes: dict | None = None,
           parameters: dict | None = None, phases: tuple | None = None,
           training_only: bool = False, rate: str | None = None,
           streams: dict | None = None, origin: str = "", first: bool = False,
           after_learning: bool = False) -> None:
        """Emit an operation (``first``: at the start of the plasticity slot;
        ``after_learning``: after the weight updates of the step)."""
        if slot not in SLOTS:
            raise ValueError(f"unknown slot {slot!r}")
        for name in list((reads or {}).values()) + list((writes or {}).values()):
            if name not in self._states:
                raise ValueError(f"{origin}: operation {primitive} uses undeclared state "
                                 f"{name!r}")
        if rate is not None and rate not in self._rates:
            raise ValueError(f"{origin}: undeclared rate {rate!r}")
        operation = Operation(primitive, "constraint" if after_learning else slot,
                              dict(reads or {}), dict(writes or {}), dict(parameters or {}),
                              phases, training_only, rate, dict(streams or {}), origin)
        self._operations.append((operation, population, first, after_learning,
                                 len(self._operations)))

    def stream_group(self, name: str, outputs: dict, kind: str, draw: Callable) -> None:
        """Declare per-sample random streams drawn together (``kind``: a key of
        :data:`STREAM_KINDS`); ``draw(rng, sensing, dtype) -> {stream: array}``."""
        count = self._stream_counts.get(kind, 0)
        self._stream_counts[kind] = count + 1
        base = STREAM_KINDS[kind]
        seed_key = (base,) if count == 0 else (base, count)
        self._streams.append(StreamGroup(name, {k: tuple(v) for k, v in outputs.items()},
                                         seed_key, (draw,)))

    def stimulus_stream_name(self, population: PopulationHandle) -> str:
        """The stream a stimulus writes for ``population`` (one stimulus per population)."""
        if population.stream is not None:
            self.error(f"model.populations.{population.name}", f"population "
                       f"{population.name!r} is fed by two stimuli; give it one")
        if not NEURONS[population.kind].extra.get("is_input"):
            self.error(f"model.populations.{population.name}.kind", f"a stimulus feeds "
                       f"{population.name!r}, which is not an input population")
        population.stream = f"stimulus.{population.name}"
        return population.stream

    def stimulus_stream(self, population: PopulationHandle) -> str:
        """The stream of an input population (refuses an input population nothing feeds)."""
        if population.stream is None:
            self.error(f"model.populations.{population.name}", f"input population "
                       f"{population.name!r} has no stimulus (nothing drives it); add one "
                       "under stimuli:")
        return population.stream

    def learning_rate(self, projection: ProjectionHandle, kind: str = "increment") -> str:
        """The per-step learning rate of a projection (its ``learning_rates`` schedule)."""
        schedule = self.spec.learning_rates.get(projection.name)
        if schedule is None:
            self.error("learning_rates", f"projection {projection.name!r} learns but has no "
                       "learning rate")
        name = f"{projection.name}.learning_rate"
        if name not in self._rates:
            self._rates[name] = RateDefinition(
                name, (lambda samples, schedule=schedule: rate_at(schedule, samples),), kind,
                zero_in_warmup=(kind == "increment"))
        projection.rate = name
        return name

    def constant_rate(self, name: str, value: float, kind: str) -> str:
        """A per-step rate that does not change over the run."""
        self._rates[name] = RateDefinition(
            name, (lambda samples, value=float(value): np.full(len(samples), value),), kind)
        return name

    def schedule_rate(self, name: str, function: Callable) -> str:
        """A per-step scalar ``function(first_samples)`` used as it is (e.g. a neighbourhood
        width that shrinks over training; during warm-up it is evaluated at sample 0)."""
        self._rates[name] = RateDefinition(name, (function,), "per_batch")
        return name

    def phase_signs(self) -> tuple:
        """Sign of the feedforward update in each phase (+1 Hebbian)."""
        return tuple(float(s) for s in phase_signs(self.spec.phases))

    def delta(self, projection: ProjectionHandle) -> str:
        """The update buffer ΔW of a projection (declared on first use)."""
        if projection.delta is None:
            shape = (projection.post.size, projection.pre.size)
            projection.delta = self.state(f"{projection.name}.delta", shape, role="buffer",
                                          description="this step's weight update")
        return projection.delta

    def learns(self, projection: ProjectionHandle, summed: bool = True) -> None:
        """The rule's update (in ``delta``) is applied in the constraint slot: through the
        projection's constraints, or added as it is."""
        projection.learning = True

    def metric(self, names: tuple, function: Callable, divergence: tuple = (),
               resets: tuple = (), needs_step: bool = False, owner: str = "") -> None:
        """A recorded metric ``function(state) -> {name: value}`` (``resets``: monitor states
        zeroed after each record; ``needs_step``: NaN before the first step; ``owner``: the
        population or projection it describes, which prefixes the names where two components
        record the same name)."""
        self._metrics.append(MetricDefinition(tuple(names), (function,), tuple(divergence),
                                              tuple(resets), needs_step))
        self._metric_owners.append(owner)

    def result(self, path: str, function: Callable, attributes: dict | None = None) -> None:
        """A final results-file entry ``function(state) -> array or {name: array}``."""
        self._results.append(ResultsEntry(path, (function,), dict(attributes or {})))

    def after_rules(self, callback: Callable) -> None:
        """Call ``callback()`` once every rule has been built (e.g. a gate's third factor)."""
        self._after_rules.append(callback)

    def initial_weights_rng(self, purpose: str) -> np.random.Generator:
        """The stream initial weights are drawn from: projections share one (declaration
        order); other purposes (gates) get their own, so adding them changes nothing else."""
        if purpose not in self._initial_rngs:
            if purpose == "projections":
                key = (STREAM_KINDS["initial_weights"],)
            else:
                key = (STREAM_KINDS["gate_weights"], len(self._initial_rngs))
            self._initial_rngs[purpose] = np.random.default_rng(
                np.random.SeedSequence(self.spec.seed, spawn_key=key))
        return self._initial_rngs[purpose]

    def population_named(self, name: str, key_path: str) -> PopulationHandle:
        if name not in self.populations:
            self.error(key_path, f"no population named {name!r} (populations: "
                       f"{', '.join(sorted(self.populations))})")
        return self.populations[name]

    def upstream_input(self, population: PopulationHandle, name: str | None,
                       key_path: str) -> PopulationHandle:
        """The input population upstream of ``population`` (the one named, or the only one)."""
        upstream, frontier = set(), [population]
        while frontier:
            current = frontier.pop()
            for projection in current.incoming:
                if projection.pre.name not in upstream:
                    upstream.add(projection.pre.name)
                    frontier.append(projection.pre)
        inputs = [self.populations[n] for n in sorted(upstream)
                  if NEURONS[self.populations[n].kind].extra.get("is_input")]
        if name is not None:
            chosen = self.population_named(name, key_path)
            if chosen not in inputs:
                self.error(key_path, f"{name!r} is not an input population upstream of "
                           f"{population.name!r}")
            return chosen
        if len(inputs) != 1:
            self.error(key_path, f"{population.name!r} has {len(inputs)} input populations "
                       "upstream; name the one to probe with input:")
        return inputs[0]

    # ------------------------------------------------------------------ building
    def build(self) -> Plan:
        """Build the plan of one member (see the module docstring for the order)."""
        spec, model = self.spec, self.spec.model
        for name, population in model.populations.items():
            self.populations[name] = PopulationHandle(name, population,
                                                      f"model.populations.{name}")
        for name, projection in model.projections.items():
            handle = ProjectionHandle(name, projection, f"model.projections.{name}",
                                      self.populations[projection.pre],
                                      self.populations[projection.post])
            self.projections[name] = handle
            (handle.post.recurrent if handle.recurrent else handle.post.incoming).append(handle)
        self._check_rules()
        self._order_populations()
        self._check_learning_rates()
        for name, stimulus in spec.stimuli.items():
            STIMULI[stimulus.kind].build(name, stimulus, self)
        self._check_noise_phase()
        self._initial_weights()
        for population in sorted(self.populations.values(), key=lambda p: p.index):
            NEURONS[population.kind].build(population, self)
        for projection in self.projections.values():
            for index, constraint in enumerate(projection.spec.constraints):
                applied = CONSTRAINTS[constraint.kind].build(constraint, index, projection,
                                                             self)
                projection.constraints.append(applied)
            self._put_initial_weights_on_budget(projection)
        ordered = ([p for p in self.projections.values() if p.recurrent]
                   + [p for p in self.projections.values() if not p.recurrent])
        for projection in ordered:
            RULES[projection.spec.rule.kind].build(projection, self)
        for callback in self._after_rules:
            callback()
        for projection in self.projections.values():
            self._weight_update(projection)
        for projection in self.projections.values():
            if projection.weights is not None:
                self.result(f"weights/{projection.name}",
                            lambda state, name=projection.weights: state[name])
        probes = {}
        for name, probe in spec.probes.items():
            probes[name] = PROBES[probe.kind].build(name, probe, self)
        self.info.update(self._graph_info(probes))
        self._prefix_shared_metric_names()
        for message in self.warnings:
            warnings.warn(message, stacklevel=4)
        return Plan(
            members=[spec], batch_size=self.batch_size, dtype=self.dtype,
            states=dict(self._states), operations=self._ordered_operations(),
            streams=list(self._streams), rates=dict(self._rates),
            metrics=list(self._metrics), results=list(self._results),
            respond_inputs={name: p.output for name, p in self.populations.items()
                            if NEURONS[p.kind].extra.get("is_input")},
            outputs={name: p.output for name, p in self.populations.items()},
            info=self.info)

    def _prefix_shared_metric_names(self) -> None:
        """Two components recording the same name (two lateral networks): ``<owner>_<name>``."""
        counts: dict[str, int] = {}
        for metric in self._metrics:
            for name in metric.names:
                counts[name] = counts.get(name, 0) + 1
        for index, (metric, owner) in enumerate(zip(self._metrics, self._metric_owners)):
            if not any(counts[name] > 1 for name in metric.names):
                continue
            if not owner:
                raise ValueError(f"metrics {metric.names} are recorded twice without an owner")

            def renamed(state, function=metric.function[0], prefix=f"{owner}_"):
                return {prefix + key: value for key, value in function(state).items()}
            self._metrics[index] = MetricDefinition(
                tuple(f"{owner}_{name}" for name in metric.names), (renamed,),
                tuple(f"{owner}_{name}" for name in metric.divergence), metric.resets,
                metric.needs_step)

    def _check_rules(self) -> None:
        for projection in self.projections.values():
            rule = projection.spec.rule
            component = RULES[rule.kind]
            wanted = "recurrent" if projection.recurrent else "feedforward"
            if wanted not in component.accepts:
                what = ("a projection from a population to itself" if projection.recurrent
                        else "a projection between two populations")
                allowed = [k for k, c in RULES.items() if wanted in c.accepts]
                self.error(f"{projection.key}.rule", f"rule {rule.kind!r} cannot run on "
                           f"{what}; rules for it: {', '.join(allowed)}")
            if NEURONS[projection.post.kind].extra.get("is_input"):
                self.error(f"{projection.key}.post", f"{projection.post.name!r} is an input "
                           "population: its activity is the stimulus, so nothing can project "
                           "onto it")
            if component.post_kinds and projection.post.kind not in component.post_kinds:
                self.error(f"{projection.key}.rule", f"rule {rule.kind!r} drives "
                           f"{' or '.join(component.post_kinds)} populations; "
                           f"{projection.post.name!r} is {projection.post.kind!r}")
            if projection.spec.arbor is not None and not component.extra.get("arbor"):
                supporting = [k for k, c in RULES.items() if c.extra.get("arbor")]
                self.error(f"{projection.key}.arbor", f"rule {rule.kind!r} does not learn "
                           f"within an arbor; rules that do: {', '.join(supporting)}")
            if projection.spec.settling is not None and not component.extra.get("settling"):
                self.error(f"{projection.key}.settling", f"settling has no effect here: rule "
                           f"{rule.kind!r} does not settle its post population "
                           "(anti_hebbian_lateral does)")
            if not component.extra.get("weights", True):
                if projection.spec.init != type(projection.spec.init)():
                    self.error(f"{projection.key}.init", f"rule {rule.kind!r} has no weight "
                               "matrix of its own to initialise")
                if projection.spec.constraints:
                    self.error(f"{projection.key}.constraints", f"rule {rule.kind!r} has no "
                               "weight matrix to constrain")
            elif projection.spec.constraints and not component.extra.get("learns", True):
                self.error(f"{projection.key}.constraints", "constraints act on weight "
                           "updates; this projection does not learn (rule none)")

    def _order_populations(self) -> None:
        """Topological order over feedforward projections and gate sources (Kahn)."""
        edges = {name: set() for name in self.populations}   # name → what it feeds
        for projection in self.projections.values():
            if not projection.recurrent:
                edges[projection.pre.name].add(projection.post.name)
        for name, population in self.populations.items():
            gate = getattr(population.spec, "gate", None)
            if gate is not None and gate.source in self.populations and gate.source != name:
                edges[gate.source].add(name)
        indegree = {name: 0 for name in self.populations}
        for targets in edges.values():
            for target in targets:
                indegree[target] += 1
        ready = [name for name in self.populations if indegree[name] == 0]
        order = []
        while ready:
            current = ready.pop(0)
            order.append(current)
            for target in sorted(edges[current], key=list(self.populations).index):
                indegree[target] -= 1
                if indegree[target] == 0:
                    ready.append(target)
        if len(order) < len(self.populations):
            stuck = [n for n in self.populations if n not in order]
            for name in stuck:
                gate = getattr(self.populations[name].spec, "gate", None)
                if gate is not None and gate.source in stuck:
                    self.error(f"model.populations.{name}.gate.source", f"the gate source "
                               f"{gate.source!r} is downstream of {name!r}: its output is not "
                               f"known when {name!r} is gated")
            culprit = next((p for p in self.projections.values() if not p.recurrent
                            and p.pre.name in stuck and p.post.name in stuck), None)
            key = culprit.key if culprit else f"model.populations.{stuck[0]}.gate.source"
            self.error(key, f"the projections form a cycle through {', '.join(stuck)}: the "
                       "engine settles recurrent activity only within a population (a "
                       "projection from a population to itself), not around a loop")
        for index, name in enumerate(order):
            self.populations[name].index = index

    def _check_learning_rates(self) -> None:
        for name in self.spec.learning_rates:
            projection = self.projections.get(name)
            if projection is not None and not RULES[projection.spec.rule.kind].extra.get(
                    "learns", True):
                self.error(f"learning_rates.{name}", f"projection {name!r} does not learn "
                           "(rule none); remove its learning rate")

    def _check_noise_phase(self) -> None:
        phases = self.spec.phases
        if not phases.noise_unlearning.enabled:
            return
        for population in self.populations.values():
            noise = population.exact_noise_covariance
            if noise is not None and not np.any(noise):
                name = population.stimuli[0][0]
                self.error("phases.noise_unlearning.enabled", f"stimulus {name!r} has no input "
                           "noise, so its noise-unlearning samples are all zero; disable the "
                           "phase (phases: {noise_unlearning: {enabled: false, sign: -1}}) "
                           "or give the stimulus input_noise")

    def _initial_weights(self) -> None:
        rng = self.initial_weights_rng("projections")
        for projection in self.projections.values():
            if not RULES[projection.spec.rule.kind].extra.get("weights", True):
                continue
            init = projection.spec.init
            shape = (projection.post.size, projection.pre.size)
            if init.kind == "zeros":
                value = np.zeros(shape)
            elif init.kind == "uniform":
                value = init.scale * rng.random(shape)
            else:
                value = init.scale * rng.standard_normal(shape)
                if init.unit_rows:
                    value = value / np.linalg.norm(value, axis=1, keepdims=True)
            projection.weights = self.state(f"{projection.name}.weights", shape, value,
                                            role="weights", description=f"weights of "
                                            f"{projection.name} (post × pre)")

    def _put_initial_weights_on_budget(self, projection: ProjectionHandle) -> None:
        if not projection.constraints:
            return
        weights = np.array(self.initial_value(projection.weights), dtype=np.float64)
        for applied in projection.constraints:
            covariance = (None if applied["covariance"] is None
                          else self.initial_value(applied["covariance"]))
            constrain(weights, None, applied["budget"], applied["per_unit"], applied["value"],
                      covariance)
        self.set_initial(projection.weights, weights)

    def _weight_update(self, projection: ProjectionHandle) -> None:
        """Constraint slot: C + ΔC through the constraints in order (ΔC for the first only),
        or weights += delta."""
        if not projection.learning:
            return
        natural = bool(projection.extra.get("natural_metric"))
        if natural and (len(projection.constraints) != 1
                        or projection.constraints[0]["budget"] != "power"):
            self.error(f"{projection.key}.rule.metric", "metric: input_covariance needs "
                       "exactly one output-power constraint on the projection")
        if not projection.constraints:
            self.op("apply_delta", "constraint", reads={"delta": projection.delta},
                    writes={"weights": projection.weights}, training_only=True,
                    origin=f"{projection.key}.rule")
            return
        for index, applied in enumerate(projection.constraints):
            reads = {"delta": projection.delta}
            if applied["covariance"] is not None:
                reads["covariance"] = applied["covariance"]
            self.op("constrain", "constraint", reads=reads,
                    writes={"weights": projection.weights, "delta": projection.delta},
                    parameters={"budget": applied["budget"], "per_unit": applied["per_unit"],
                                "value": applied["value"], "natural": natural,
                                "uses_delta": index == 0},
                    origin=f"{projection.key}.constraints.{index}")

    def _ordered_operations(self) -> list[Operation]:
        entries = self._operations
        stimulus = [e for e in entries if e[0].slot == "stimulus"]
        population_ops = []
        for population in sorted(self.populations.values(), key=lambda p: p.index):
            for slot in POPULATION_SLOTS:
                population_ops += [e for e in entries if e[0].slot == slot and e[1] is
                                   population]
        orphans = [e for e in entries if e[0].slot in POPULATION_SLOTS and e[1] is None]
        if orphans:
            raise ValueError(f"{orphans[0][0].origin}: population slot without a population")
        plasticity = ([e for e in entries if e[0].slot == "plasticity" and e[2]]
                      + [e for e in entries if e[0].slot == "plasticity" and not e[2]])
        constraint = ([e for e in entries if e[0].slot == "constraint" and not e[3]]
                      + [e for e in entries if e[0].slot == "constraint" and e[3]])
        return [e[0] for e in stimulus + population_ops + plasticity + constraint]

    def _graph_info(self, probes: dict) -> dict:
        """What the run loop and the analysis need to know about the graph."""
        info = {
            "populations": {name: {"kind": p.kind, "size": p.size, "index": p.index,
                                   "output": p.output, "learning_activity":
                                   p.learning_activity,
                                   "output_noise_variance": float(getattr(
                                       p.spec, "output_noise_variance", 0.0))}
                            for name, p in self.populations.items()},
            "projections": {name: {"pre": p.pre.name, "post": p.post.name,
                                   "rule": p.spec.rule.kind, "weights": p.weights}
                            for name, p in self.projections.items()},
            "probes": probes,
            "linear_gaussian_layers": self._linear_gaussian_layers(),
        }
        return info

    def _linear_gaussian_layers(self) -> list[dict]:
        """Chains input → linear → linear … of two-phase layers whose MI has a closed form.

        Each entry: ``population`` (the layer), ``chain`` (weight states from the input up to
        it), ``noise_variances`` (output noise of each population in the chain), ``input``,
        ``signal_covariance`` / ``noise_covariance`` of the input, and the layer's ``budget``
        (kind and value per unit) where it has exactly one constraint.
        """
        layers = []
        for projection in self.projections.values():
            if projection.spec.rule.kind != "linsker_two_phase":
                continue
            chain, noises, current = [projection], [], projection
            while True:
                pre = current.pre
                if NEURONS[pre.kind].extra.get("is_input"):
                    break
                feeding = pre.incoming
                if (pre.kind != "linear" or pre.spec.gate is not None or len(feeding) != 1):
                    chain = None
                    break
                current = feeding[0]
                if current in chain:  # a loop of linear layers has no input end
                    chain = None
                    break
                chain.insert(0, current)
            if chain is None:
                continue
            source = chain[0].pre
            signal, noise = source.exact_signal_covariance, source.exact_noise_covariance
            if signal is None or noise is None:
                continue
            noises = [p.post.spec.output_noise_variance for p in chain]
            constraints = projection.spec.constraints
            budget = None
            if len(constraints) == 1:
                kind = constraints[0].kind
                budget = {"kind": "weight" if kind.endswith("weight_norm") else "power",
                          "value": float(constraints[0].value)}
            layers.append({"population": projection.post.name, "projection": projection.name,
                           "chain": [p.weights for p in chain],
                           "noise_variances": [float(v) for v in noises],
                           "input": source.name, "signal_covariance": signal,
                           "noise_covariance": noise, "budget": budget,
                           "patch_shape": source.patch_shape})
        return layers


def build_plan(spec: ProtocolSpec) -> Plan:
    """The plan of one protocol (an ensemble of one member).

    Raises
    ------
    SpecError
        If the graph cannot run (with the key path of the offending entry).
    """
    return merge_plans([PlanBuilder(spec).build()])[0]


def merge_plans(plans: list[Plan]) -> list[Plan]:
    """Stack members whose plans have the same structure into one plan each.

    Returns
    -------
    list of Plan
        One per structure, members in their original order within each; ``info["members"]``
        of each lists the indices of its members in ``plans``.
    """
    groups: dict[tuple, list[int]] = {}
    for index, plan in enumerate(plans):
        groups.setdefault(plan.signature(), []).append(index)
    merged = []
    for indices in groups.values():
        first = plans[indices[0]]
        members = [plans[i] for i in indices]
        states = {name: StateArray(state.name, state.shape,
                                   np.stack([p.states[name].initial for p in members]),
                                   state.dtype, state.role, state.description, state.units)
                  for name, state in first.states.items()}
        streams = [StreamGroup(group.name, group.outputs, group.seed_key,
                               tuple(p.streams[k].draw[0] for p in members))
                   for k, group in enumerate(first.streams)]
        rates = {name: RateDefinition(name, tuple(p.rates[name].value[0] for p in members),
                                      rate.kind, rate.zero_in_warmup)
                 for name, rate in first.rates.items()}
        metrics = [MetricDefinition(metric.names,
                                    tuple(p.metrics[k].function[0] for p in members),
                                    metric.divergence, metric.resets, metric.needs_step)
                   for k, metric in enumerate(first.metrics)]
        results = [ResultsEntry(entry.path, tuple(p.results[k].function[0] for p in members),
                                entry.attributes)
                   for k, entry in enumerate(first.results)]
        merged.append(Plan(
            members=[m.members[0] for m in members], batch_size=first.batch_size,
            dtype=first.dtype, states=states, operations=list(first.operations),
            streams=streams, rates=rates, metrics=metrics, results=results,
            respond_inputs=dict(first.respond_inputs), outputs=dict(first.outputs),
            info={**first.info, "members": indices,
                  "member_info": [p.info for p in members]}))
    return merged


def build_plans(specs: list[ProtocolSpec]) -> list[Plan]:
    """Plans of several member protocols, stacked by structure (see :func:`merge_plans`)."""
    return merge_plans([PlanBuilder(spec).build() for spec in specs])

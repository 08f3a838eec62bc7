"""What every backend shares: the host side of a simulation of a compiled plan.

A :class:`Simulation` owns a plan's state for all its members (backends store it, on the host
or on a device) and everything that is drawn on the host so that every backend sees the same
numbers: the phase of each step, the per-step rates, and the per-sample random streams of
each member (stimuli, output noise), from the member's own ``SeedSequence``. A backend
subclass implements :meth:`Simulation._allocate`, :meth:`Simulation.run_steps`,
:meth:`Simulation.read` and :meth:`Simulation.write`.

Sample counting: :meth:`warmup` presents ``schedule.warmup_samples`` with learning rates at 0
(and the rates of running averages at their value at sample 0); :meth:`advance` presents
training samples. Both go in steps of ``batch_size`` samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.plan import Plan
from ..engine.schedules import SENSING, step_phases
from ..errors import SimulationDiverged
from .numpy_primitives import StepContext, run_operation

#: Operations a probe runs: the population slots, without the output noise.
RESPOND_SLOTS = ("drive", "gate", "settle")


@dataclass
class Chunk:
    """Everything drawn on the host for a run of steps of every member.

    Attributes
    ----------
    phases : int64 ndarray (steps,)
    training : bool
        False during warm-up.
    rates : dict
        Rate name → float64 array (members, steps), already per step (ε_B for averages).
    streams : dict
        Stream name → array (members, steps, batch) + per-sample shape.
    first_sample : int
        Sample count of the first step (negative during warm-up).
    """

    phases: np.ndarray
    training: bool
    rates: dict
    streams: dict
    first_sample: int

    @property
    def n_steps(self) -> int:
        return len(self.phases)


@dataclass(frozen=True)
class StepFailure:
    """A member whose step failed: index, step within the chunk, and the reason."""

    member: int
    step: int
    quantity: str
    value: float
    detail: str


class Simulation:
    """A plan's members, stepped together (see the module docstring).

    Parameters
    ----------
    plan : Plan
    labels : list of str, optional
        Member labels for error messages (ensembles).
    """

    backend_name = "base"

    def __init__(self, plan: Plan, labels: list[str] | None = None):
        self.plan = plan
        self.labels = labels
        first = plan.members[0]
        self.schedule = first.schedule
        self.phases_spec = first.phases
        self.batch_size = plan.batch_size
        self.dtype = np.dtype(plan.dtype)
        self.samples_done = 0
        self.warmup_samples_done = 0
        self.steps_done = 0
        self.stream_rngs = [[np.random.default_rng(np.random.SeedSequence(member.seed,
                                                                          spawn_key=group.seed_key))
                             for group in plan.streams] for member in plan.members]
        self._allocate({name: state.initial for name, state in plan.states.items()})

    @property
    def n_members(self) -> int:
        return self.plan.n_members

    # -------------------------------------------------------------- backend hooks
    def _allocate(self, initial: dict) -> None:
        """Store the initial state (name → array with the member axis)."""
        raise NotImplementedError

    def run_steps(self, chunk: Chunk) -> list[StepFailure]:
        """Run a chunk of steps on every member; return the members whose step failed (their
        state is left as it was when the step failed; the run stops)."""
        raise NotImplementedError

    def read(self, name: str) -> np.ndarray:
        """A host copy of a state array (members, …)."""
        raise NotImplementedError

    def write(self, name: str, value: np.ndarray) -> None:
        """Replace a state array (members, …) from the host."""
        raise NotImplementedError

    # ------------------------------------------------------------------ stepping
    def prepare_chunk(self, n_samples: int, warmup: bool = False, rngs=None) -> Chunk:
        """Phases, rates and streams of the next ``n_samples`` (drawn from ``rngs``, default
        the simulation's own streams, which advance)."""
        batch = self.batch_size
        n_steps = n_samples // batch
        if warmup:
            phases = step_phases(self.schedule, self.phases_spec, 0, n_steps)
            samples = np.zeros(n_steps, dtype=np.int64)
            first_sample = -self.schedule.warmup_samples
        else:
            first_sample = self.samples_done
            samples = first_sample + batch * np.arange(n_steps)
            phases = step_phases(self.schedule, self.phases_spec, first_sample, n_steps)
        rates = {}
        for name, rate in self.plan.rates.items():
            values = np.empty((self.n_members, n_steps))
            for member, function in enumerate(rate.value):
                if warmup and rate.zero_in_warmup:
                    values[member] = 0.0
                else:
                    values[member] = function(samples)
            if rate.kind == "running_average":
                values = 1.0 - (1.0 - values) ** batch
            rates[name] = values
        # Drawn as one flat run of samples (the same numbers in the same order as per step):
        # a stimulus's filter products are then one matrix product, not one per step.
        sensing = np.repeat(phases == SENSING, batch)
        rngs = self.stream_rngs if rngs is None else rngs
        streams = {}
        for index, group in enumerate(self.plan.streams):
            drawn = [group.draw[member](rngs[member][index], sensing, self.dtype)
                     for member in range(self.n_members)]
            for name, shape in group.outputs.items():
                streams[name] = np.stack([arrays[name] for arrays in drawn]).reshape(
                    (self.n_members, n_steps, batch) + tuple(shape))
        return Chunk(np.asarray(phases, dtype=np.int64), not warmup, rates, streams,
                     first_sample)

    def warmup(self) -> None:
        """Present ``schedule.warmup_samples`` with the learning rates at zero."""
        n_steps = self.schedule.warmup_samples // self.batch_size
        if n_steps:
            self._run(self.prepare_chunk(n_steps * self.batch_size, warmup=True))
            self.warmup_samples_done = n_steps * self.batch_size

    def advance(self, n_samples: int) -> None:
        """Present ``n_samples`` training samples (a multiple of the batch size)."""
        n_steps = n_samples // self.batch_size
        if n_steps:
            self._run(self.prepare_chunk(n_steps * self.batch_size))
            self.samples_done += n_steps * self.batch_size

    def _run(self, chunk: Chunk) -> None:
        failures = self.run_steps(chunk)
        if failures:
            failure = failures[0]
            raise self._member_error(failure.member, SimulationDiverged(
                chunk.first_sample + failure.step * self.batch_size, failure.quantity,
                failure.value, failure.detail))
        self.steps_done += chunk.n_steps
        for name, state in self.plan.states.items():
            if state.role == "weights":
                values = self.read(name)
                finite = np.isfinite(values).reshape(self.n_members, -1).all(axis=1)
                if not finite.all():
                    member = int(np.argmin(finite))
                    raise self._member_error(member, SimulationDiverged(
                        chunk.first_sample + chunk.n_steps * self.batch_size, name,
                        float("nan"), "non-finite value; lower the learning rate"))

    def _member_error(self, member: int, error: SimulationDiverged) -> SimulationDiverged:
        if self.labels and len(self.labels) > 1:
            error.args = (f"ensemble member {self.labels[member]}: {error}",) + error.args[1:]
        return error

    # --------------------------------------------------------------------- state
    def member_state(self, member: int, names=None) -> dict:
        """Copies of one member's state arrays (without the member axis)."""
        names = self.plan.states if names is None else names
        return {name: np.array(self.read(name)[member]) for name in names}

    def metrics(self, member: int) -> dict:
        """The plan's recorded metrics of one member (NaN for per-step ones before a step)."""
        state = self.member_state(member)
        values = {}
        for metric in self.plan.metrics:
            if metric.needs_step and self.steps_done == 0:
                values.update({name: float("nan") for name in metric.names})
            else:
                values.update(metric.function[member](state))
        return values

    def reset_monitors(self) -> None:
        """Zero the monitor states (e.g. the worst settling residual since the last record)."""
        for metric in self.plan.metrics:
            for name in metric.resets:
                self.write(name, np.zeros_like(self.read(name)))

    def final_arrays(self, member: int) -> list[tuple]:
        """(path, value, attributes) of every results entry of one member."""
        state = self.member_state(member)
        return [(entry.path, entry.function[member](state), entry.attributes)
                for entry in self.plan.results]

    def respond(self, member: int, inputs: dict, population: str) -> np.ndarray:
        """The output of ``population`` for given input activities, without plasticity.

        Runs the population slots (drive, gate, settle/inference) of member ``member`` on its
        current state, with no output noise, as in a sensing step, on the NumPy reference
        primitives (probes are a small part of a run; every backend shares this path).

        Parameters
        ----------
        inputs : dict
            Input population name → activities (samples × units).
        population : str
        """
        n_samples = len(next(iter(inputs.values())))
        state = {}
        for name, declared in self.plan.states.items():
            if declared.role == "activity":
                state[name] = np.zeros((n_samples,) + declared.shape[1:], declared.initial.dtype)
            else:
                state[name] = np.array(self.read(name)[member])
        for name, activity in inputs.items():
            state[self.plan.respond_inputs[name]][...] = activity
        context = StepContext(phase=SENSING, training=True)
        for op in self.plan.operations:
            if op.slot not in RESPOND_SLOTS or op.primitive == "add_stream":
                continue
            failure = run_operation(op, state, context)
            if failure is not None:
                raise SimulationDiverged(self.samples_done, failure.quantity, failure.value,
                                         f"probe: {failure.detail}")
        return state[self.plan.outputs[population]]

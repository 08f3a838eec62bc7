"""NumPy reference backend: the plan's operations, one member and one step at a time.

Readable rather than fast: for each member, for each step, every operation of the plan that
runs in the step's phase is applied in order with the reference primitives of
:mod:`plasticsim.backends.numpy_primitives`. Every other backend is checked against it,
number for number (``tests/test_backend_conformance.py``).
"""

from __future__ import annotations

import numpy as np

from . import register_backend
from .base import Simulation, StepFailure
from .numpy_primitives import PRIMITIVES, StepContext, run_operation


class NumpySimulation(Simulation):
    """State as NumPy arrays with a leading member axis; members stepped one after another."""

    backend_name = "numpy"
    supported_primitives = frozenset(PRIMITIVES)

    def _allocate(self, initial: dict) -> None:
        self.state = {name: np.array(value) for name, value in initial.items()}

    def read(self, name: str) -> np.ndarray:
        return self.state[name]

    def write(self, name: str, value: np.ndarray) -> None:
        self.state[name][...] = value

    def run_steps(self, chunk) -> list[StepFailure]:
        failures = []
        operations = self.plan.operations
        for member in range(self.n_members):
            state = {name: array[member, ...] for name, array in self.state.items()}
            streams = {name: array[member] for name, array in chunk.streams.items()}
            rates = {name: array[member] for name, array in chunk.rates.items()}
            for step in range(chunk.n_steps):
                phase = int(chunk.phases[step])
                for op in operations:
                    if not op.runs_in(phase, chunk.training):
                        continue
                    context = StepContext(
                        phase, chunk.training,
                        None if op.rate is None else float(rates[op.rate][step]),
                        {role: streams[name][step] for role, name in op.streams.items()})
                    failure = run_operation(op, state, context)
                    if failure is not None:
                        failures.append(StepFailure(member, step, failure.quantity,
                                                    failure.value, failure.detail))
                        break
                else:
                    continue
                break
        return failures


@register_backend("numpy")
def build_numpy(plan, labels=None, variant=None) -> NumpySimulation:
    return NumpySimulation(plan, labels)


build_numpy.supported_primitives = NumpySimulation.supported_primitives

"""Input populations: their activity is a stimulus, one sample per step of the batch."""

from __future__ import annotations

from typing import Literal


from ...schema import Size, Spec
from ..registry import register_neuron


class InputPopulationSpec(Spec):
    """A population whose activity is set by a stimulus (``stimuli:`` in the protocol)."""

    kind: Literal["input"] = "input"
    size: Size


@register_neuron(InputPopulationSpec, is_input=True)
def build_input(population, ctx) -> None:
    """activity ← the stimulus stream of this population (slot ``stimulus``)."""
    activity = ctx.state(f"{population.name}.activity", (ctx.batch_size, population.size),
                         role="activity", description="stimulus presented to the population "
                         "(batch × units)")
    population.output = population.learning_activity = activity
    stream = ctx.stimulus_stream(population)
    ctx.op("load_stream", "stimulus", population=population, writes={"target": activity},
           streams={"stream": stream}, origin=population.key)

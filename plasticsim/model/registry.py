"""Registries of the model's components, filled by the component modules as they are imported.

Each component is a spec class (pure data, selected in YAML by its ``kind``) plus a builder
that emits operations into a step plan through a builder context (see
:class:`plasticsim.engine.builder.PlanBuilder`). Adding a neuron model, a rule, a stimulus, a
constraint or a probe is one module that registers itself here; nothing else changes.

Components never import the engine: builders receive the context as an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

#: Phase indices of the two training phases (Linsker 1992).
SENSING, NOISE_UNLEARNING = 0, 1
PHASE_NAMES = ("sensing", "noise_unlearning")


@dataclass(frozen=True)
class Component:
    """A registered component: its YAML ``kind``, spec class, builder and declarations.

    Attributes
    ----------
    kind : str
    spec_class : type
    build : callable
        The builder (its signature depends on the registry; see the ``register_*`` functions).
    accepts : tuple of str
        Rules: which projections they accept (``feedforward`` pre ≠ post, ``recurrent``
        pre == post). Neurons: unused.
    post_kinds : tuple of str
        Rules: neuron kinds of the post population they can drive (empty: any).
    extra : dict
        Component-specific declarations (e.g. a neuron model's output state).
    """

    kind: str
    spec_class: type
    build: Callable
    accepts: tuple = ()
    post_kinds: tuple = ()
    extra: dict = field(default_factory=dict)


NEURONS: dict[str, Component] = {}
RULES: dict[str, Component] = {}
STIMULI: dict[str, Component] = {}
CONSTRAINTS: dict[str, Component] = {}
PROBES: dict[str, Component] = {}


def _register(registry: dict, spec_class: type, **declarations):
    kind = spec_class.model_fields["kind"].default
    if kind in registry:
        raise ValueError(f"a component of kind {kind!r} is registered twice")

    accepts = declarations.pop("accepts", ())
    post_kinds = declarations.pop("post_kinds", ())

    def decorator(build):
        registry[kind] = Component(kind, spec_class, build, tuple(accepts), tuple(post_kinds),
                                   dict(declarations))
        return build
    return decorator


def register_neuron(spec_class: type, **declarations):
    """Register a neuron model: ``build(population, ctx)`` emits its state and operations.

    The spec class must have a ``kind`` literal with a default and a ``size``.
    """
    return _register(NEURONS, spec_class, **declarations)


def register_rule(spec_class: type, accepts: tuple = ("feedforward",), post_kinds: tuple = (),
                  **declarations):
    """Register a plasticity rule: ``build(projection, ctx)``.

    ``accepts``: ``feedforward`` and/or ``recurrent``; ``post_kinds``: the neuron models it can
    drive (empty: any).
    """
    return _register(RULES, spec_class, accepts=accepts, post_kinds=post_kinds,
                     **declarations)


def register_stimulus(spec_class: type, **declarations):
    """Register a stimulus: ``build(name, spec, ctx)`` declares its streams and covariances."""
    return _register(STIMULI, spec_class, **declarations)


def register_constraint(*spec_classes: type, **declarations):
    """Register a weight constraint for one or more spec classes (one per ``kind``)."""
    def decorator(build):
        for spec_class in spec_classes:
            _register(CONSTRAINTS, spec_class, **dict(declarations))(build)
        return build
    return decorator


def register_probe(spec_class: type, **declarations):
    """Register a probe: ``run(spec, simulation, member, rng) -> results`` after training."""
    return _register(PROBES, spec_class, **declarations)

"""The model schema: a graph of populations and projections, assembled from the components.

A model names its populations (each selects a neuron model by ``kind`` and carries that
model's parameters) and its projections (``pre`` → ``post``, a ``rule`` selected by
``kind`` with the rule's own parameters, initial weights, optional lateral ``settling`` and
weight ``constraints``). The unions below are built from the component registries
(:mod:`plasticsim.model.registry`), so a new neuron model, rule or constraint appears here
without editing this module. Whether the graph can run is the builder's business
(:mod:`plasticsim.engine.builder`), which ``plasticsim validate`` runs too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Tag, field_validator, model_validator

from ..model import load_components
from ..model.arbors import ArborSpec
from ..model.registry import CONSTRAINTS, NEURONS, RULES
from ..model.settling import SettlingSpec
from ..schema import PositiveFinite, Spec

load_components()

#: Names of populations, projections, stimuli and probes: they become state names and
#: results-file paths, so they are identifiers.
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _tagged_union(registry: dict, default_kind: str | None):
    """A union of the registry's spec classes selected by ``kind`` (``default_kind`` if absent)."""
    def kind_of(value: Any):
        if isinstance(value, dict):
            return value.get("kind", default_kind)
        return getattr(value, "kind", default_kind)
    members = tuple(Annotated[component.spec_class, Tag(kind)]
                    for kind, component in registry.items())
    return Annotated[Union[members], Discriminator(kind_of)]


PopulationSpec = _tagged_union(NEURONS, "linear")
RuleSpec = _tagged_union(RULES, None)
ConstraintSpec = _tagged_union(CONSTRAINTS, "unit_weight_norm")


class InitSpec(Spec):
    """Initial weights: i.i.d. normal with s.d. ``scale``, i.i.d. ``uniform`` on [0, ``scale``)
    (non-negative, for rules on non-negative rates such as ``foldiak_trace``), or ``zeros``
    (``unit_rows``: each row then scaled to unit norm). A constraint on the projection then
    puts them on its budget."""

    kind: Literal["normal", "uniform", "zeros"] = "normal"
    scale: PositiveFinite = 1.0             # s.d. (normal) or upper end (uniform) of each weight
    unit_rows: bool = False                 # scale each row to unit norm afterwards

    @model_validator(mode="after")
    def _rows_can_be_scaled(self):
        # A zero row has no direction: scaling it to unit norm would divide 0 by 0.
        if self.kind == "zeros" and self.unit_rows:
            raise ValueError("unit_rows: zero weights cannot be scaled to unit norm "
                             "(use kind normal or uniform, or unit_rows: false)")
        return self


class ProjectionSpec(Spec):
    """Synapses from ``pre`` to ``post`` with a plasticity ``rule`` (a mapping with ``kind``, or
    just the kind's name), initial weights ``init``, optional lateral ``settling`` (rules that
    settle the post population) and weight ``constraints`` applied in order."""

    pre: str                                # presynaptic population
    post: str                               # postsynaptic population (= pre: recurrent)
    rule: RuleSpec
    init: InitSpec = InitSpec()
    settling: SettlingSpec | None = None    # lateral settling (rule anti_hebbian_lateral)
    constraints: list[ConstraintSpec] = []  # weight budgets, applied in order
    arbor: ArborSpec | None = None          # Gaussian arbor of each unit (rule linsker1986)

    @field_validator("rule", mode="before")
    @classmethod
    def _kind_alone(cls, value):
        return {"kind": value} if isinstance(value, str) else value


class ModelSpec(Spec):
    """A network: populations and the projections between them."""

    name: str = "model"
    description: str = ""                   # free text
    populations: dict[str, PopulationSpec]  # name → neuron model (kind) and its parameters
    projections: dict[str, ProjectionSpec] = {}   # name → synapses from pre to post

    @model_validator(mode="after")
    def _references_exist(self):
        for group in ("populations", "projections"):
            for name in getattr(self, group):
                if not NAME_PATTERN.match(name):
                    raise ValueError(f"{group}.{name}: names are identifiers (a letter, then "
                                     "letters, digits or _); they become result paths")
        for name, projection in self.projections.items():
            for end in ("pre", "post"):
                target = getattr(projection, end)
                if target not in self.populations:
                    raise ValueError(f"projections.{name}.{end}: no population named "
                                     f"{target!r} (populations: {sorted(self.populations)})")
        return self


def rule_learns(rule) -> bool:
    """Whether a rule changes anything (and so needs a learning rate)."""
    return RULES[rule.kind].extra.get("learns", True)


# Kept for the error messages of the loader: where keys of earlier versions went.
MOVED_KEYS = {
    ("model", "network"): "this block was dissolved: neuron parameters now sit on the "
    "population (kind: lca or lif, e.g. sparsity, inference_steps, time_steps), rule "
    "parameters under the projection's rule (e.g. rule: {kind: sparse_coding_dictionary, "
    "variance_goal: …}), and receptive-field mapping is a probe (probes: {name: {kind: "
    "white_noise_mapping, …}}) in the protocol",
    ("model", "constraints"): "constraints moved under their projection: "
    "model.projections.<name>.constraints (a list, without the 'projection' key)",
}
MOVED_PROJECTION_KEYS = {
    "metric": "moved into the rule: "
    "model.projections.{name}.rule.metric (rule: {{kind: linsker_two_phase, metric: …}})",
}
RENAMED_POPULATION_KINDS = {"sparse_coding": "lca", "spiking": "lif"}

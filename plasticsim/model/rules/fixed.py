"""Fixed weights (``rule: none``): the projection drives its post population and never learns."""

from __future__ import annotations

from typing import Literal

from ...schema import Spec
from ..registry import register_rule


class FixedRuleSpec(Spec):
    """No plasticity: the weights keep their initial values."""

    kind: Literal["none"] = "none"


@register_rule(FixedRuleSpec, accepts=("feedforward", "recurrent"),
               post_kinds=("linear", "lif"), learns=False)
def build_fixed(projection, ctx) -> None:
    """Nothing to emit: the post population's drive (or dynamics) reads the weights."""

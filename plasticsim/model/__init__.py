"""The model's components: neuron models, plasticity rules, stimuli, constraints and probes.

Every module in the subpackages below registers itself in :mod:`plasticsim.model.registry`
when imported; :func:`load_components` imports them all (the spec layer calls it before it
assembles the schema), so a new component is one new module and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import registry  # noqa: F401

_SUBPACKAGES = ("neurons", "rules", "stimuli", "constraints", "probes")
_loaded = False


def load_components() -> None:
    """Import every component module once (each registers itself)."""
    global _loaded
    if _loaded:
        return
    for name in _SUBPACKAGES:
        package = importlib.import_module(f"{__name__}.{name}")
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{package.__name__}.{module.name}")
    _loaded = True

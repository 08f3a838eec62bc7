"""Backends: each builds a :class:`Simulation` from a protocol spec and owns all its state.

Every backend follows the same step contract (see :mod:`plasticsim.backends.numpy_backend`),
so results can be compared number for number with the NumPy reference.
"""

from __future__ import annotations

from typing import Callable

from ..errors import BackendUnavailable

BACKENDS: dict[str, Callable] = {}


def register_backend(name: str):
    """Register ``builder(spec) -> Simulation`` under a backend name."""
    def decorator(builder):
        BACKENDS[name] = builder
        return builder
    return decorator


def available_backends() -> list[str]:
    _import_all()
    return sorted(BACKENDS)


def _import_all():
    from . import numpy_backend  # noqa: F401  (registers itself)


def build(spec, backend: str | None = None):
    """Build a simulation of ``spec`` on ``backend`` (default: ``spec.backend``)."""
    _import_all()
    name = backend or spec.backend
    if name == "auto":
        name = "numpy"
    if name not in BACKENDS:
        raise BackendUnavailable(f"backend {name!r} is not available; available: "
                                 f"{', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](spec)

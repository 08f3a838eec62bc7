"""Backends compile a step plan (:class:`~plasticsim.engine.plan.Plan`) and own its state.

Every backend implements the plan's primitives with the semantics of the NumPy reference
(:mod:`plasticsim.backends.numpy_primitives`) and never reads the spec. A backend declares
the primitives it supports (``supported_primitives``); one that cannot run a plan says which
operation and why before anything runs (:func:`check_supported`, also run by ``validate``).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Callable

from ..errors import BackendUnavailable

BACKENDS: dict[str, Callable] = {}


def register_backend(name: str):
    """Register ``builder(plan, labels) -> Simulation`` under a backend name."""
    def decorator(builder):
        BACKENDS[name] = builder
        return builder
    return decorator


#: Optional backends: module (registers itself on import) and the install hint shown when
#: its import fails.
OPTIONAL_BACKENDS = {
    "numba": ("numba_backend", "install it with: pip install numba"),
    "array": ("array_backend", "install array-api-compat (pip install array-api-compat); for "
              "GPUs the GPU extra: pip install 'plasticsim[gpu]'"),
    "brian2": ("brian2_backend", "install it with: pip install 'brian2>=2.9'"),
}
#: ``auto`` tries these in order (fastest first) and takes the first that can run the plan.
AUTO_ORDER = ("numba", "numpy")
#: Backend families that step all members of a plan together (batched array operations),
#: so that stacking networks along the member axis makes each one cheaper; the numpy, numba
#: and brian2 backends step members one after another, where stacking saves nothing.
STACKING_BACKENDS = ("array",)


def stacks_members(name: str) -> bool:
    """Whether backend ``name`` (e.g. ``array:torch``) runs stacked members together."""
    return name.split(":")[0] in STACKING_BACKENDS


#: Optional backends whose import failed: name → reason with install hint.
UNAVAILABLE: dict[str, str] = {}


def _import_all(family: str | None = None) -> None:
    """Import (so register) the numpy backend and the optional ones, or only ``family``
    where it is optional (each import costs a run 0.05–0.2 s)."""
    from . import numpy_backend  # noqa: F401  (registers itself)
    for name, (module, hint) in OPTIONAL_BACKENDS.items():
        if name in BACKENDS or name in UNAVAILABLE or family not in (None, name):
            continue
        try:
            importlib.import_module(f".{module}", __name__)
        except ImportError as error:
            UNAVAILABLE[name] = f"{error}; {hint}"


def available_backends() -> list[str]:
    _import_all()
    return sorted(BACKENDS)


def _builder(name: str) -> Callable:
    family = name.split(":")[0]
    _import_all(family if family in OPTIONAL_BACKENDS or family == "numpy" else None)
    if name in BACKENDS:
        return BACKENDS[name]
    if family in BACKENDS:
        return lambda plan, labels=None: BACKENDS[family](plan, labels, variant=name)
    if family in UNAVAILABLE:
        raise BackendUnavailable(f"backend {name!r} is unavailable: {UNAVAILABLE[family]}")
    raise BackendUnavailable(f"backend {name!r} is not available; available: "
                             f"{', '.join(sorted(BACKENDS) + ['auto'])}")


def check_supported(plan, name: str) -> None:
    """Refuse, before anything is built, a plan with an operation the backend lacks (or a
    flavour of a backend whose library or device is missing here).

    Raises
    ------
    BackendUnavailable
        Naming the operation, where it comes from in the spec, and the backend.
    """
    if name == "auto":
        return
    builder = _builder(name)
    # A backend of several flavours (``array:cupy``) says here whether this one can run.
    check_variant = getattr(BACKENDS.get(name.split(":")[0]), "check_variant", None)
    if check_variant is not None:
        check_variant(name)
    # A backend with targets (brian2, brian2:cpp_standalone) says itself why it refuses a plan.
    refusal = getattr(BACKENDS.get(name) or BACKENDS.get(name.split(":")[0]), "refusal", None)
    if refusal is not None:
        reason = refusal(plan, name)
        if reason is not None:
            raise BackendUnavailable(reason)
        return
    supported = getattr(builder, "supported_primitives", None)
    if supported is None:
        return
    for operation in plan.operations:
        if operation.primitive not in supported:
            raise BackendUnavailable(f"the {name} backend does not implement the "
                                     f"{operation.primitive!r} operation "
                                     f"({operation.origin}); use backend numpy")


def build(plan, backend: str | None = None, labels: list[str] | None = None):
    """Compile ``plan`` on ``backend`` (default: the plan's protocol's ``backend``).

    ``auto`` takes the first backend of :data:`AUTO_ORDER` that is installed and supports the
    plan, with a warning naming what was skipped and why; the simulation's ``backend_name``
    names the one used.
    """
    name = backend or plan.members[0].backend
    if name != "auto":
        check_supported(plan, name)
        return _builder(name)(plan, labels)
    reasons = []
    for candidate in AUTO_ORDER:
        try:
            check_supported(plan, candidate)
            simulation = _builder(candidate)(plan, labels)
        except BackendUnavailable as error:
            reasons.append(f"{candidate}: {error}")
            continue
        if reasons:
            warnings.warn(f"backend auto chose {candidate!r} ({'; '.join(reasons)})",
                          stacklevel=2)
        return simulation
    raise BackendUnavailable("backend auto found no backend for this protocol: "
                             + "; ".join(reasons))

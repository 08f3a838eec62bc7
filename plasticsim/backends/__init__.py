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


#: Optional backends: module (registers itself on import) and the install hint shown when
#: its import fails.
OPTIONAL_BACKENDS = {
    "numba": ("numba_backend", "install it with: pip install numba"),
    "array": ("array_backend", "install the GPU extra with: pip install 'plasticsim[gpu]'"),
}
#: ``auto`` tries these in order (fastest first) and takes the first that can run the spec.
AUTO_ORDER = ("numba", "numpy")
#: Optional backends whose import failed: name → reason with install hint.
UNAVAILABLE: dict[str, str] = {}


def _import_all():
    from . import numpy_backend  # noqa: F401  (registers itself)
    import importlib
    for name, (module, hint) in OPTIONAL_BACKENDS.items():
        if name in BACKENDS or name in UNAVAILABLE:
            continue
        try:
            importlib.import_module(f".{module}", __name__)
        except ImportError as error:
            UNAVAILABLE[name] = f"{error}; {hint}"


def _build_auto(spec):
    """Build on the first backend of :data:`AUTO_ORDER` that is installed and runs ``spec``.

    A skipped backend is reported with a warning, so the fallback is never silent; the
    chosen backend's name ends up in the results (``simulation.backend_name``).
    """
    import warnings
    reasons = []
    for name in AUTO_ORDER:
        if name not in BACKENDS:
            reasons.append(f"{name}: {UNAVAILABLE.get(name, 'not registered')}")
            continue
        try:
            simulation = BACKENDS[name](spec)
        except BackendUnavailable as error:
            reasons.append(f"{name}: {error}")
            continue
        if reasons:
            warnings.warn(f"backend auto chose {name!r} ({'; '.join(reasons)})", stacklevel=3)
        return simulation
    raise BackendUnavailable("backend auto found no backend for this protocol: "
                             + "; ".join(reasons))


def build(spec, backend: str | None = None):
    """Build a simulation of ``spec`` on ``backend`` (default: ``spec.backend``)."""
    if getattr(spec.model, "network", None) is not None:
        # Image networks (sparse coding, SAILnet) have their own NumPy implementation,
        # registered by network kind in plasticsim.networks.
        if (backend or spec.backend) not in ("numpy", "auto"):
            raise BackendUnavailable(f"{spec.model.network.kind} networks run on the numpy "
                                     f"backend only, not {backend or spec.backend!r}")
        from ..networks import build_network
        return build_network(spec)
    _import_all()
    name = backend or spec.backend
    if name == "auto":
        return _build_auto(spec)
    if name not in BACKENDS and name.split(":")[0] in UNAVAILABLE:
        raise BackendUnavailable(f"backend {name!r} is unavailable: "
                                 f"{UNAVAILABLE[name.split(':')[0]]}")
    if name not in BACKENDS:
        raise BackendUnavailable(f"backend {name!r} is not available; available: "
                                 f"{', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](spec)

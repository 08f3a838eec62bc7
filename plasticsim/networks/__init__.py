"""Time-stepped image networks (Olshausen–Field sparse coding, SAILnet).

A model with a ``network:`` block is built here instead of by a Linsker backend. Each network
kind registers a builder under its YAML ``kind`` (see :func:`register_network`); the built
simulation offers what :func:`plasticsim.run` needs: ``advance(n_samples)``, ``state()``,
``record_metrics()``, ``extra_weights()`` and ``receptive_fields()``.
"""

from __future__ import annotations

from typing import Callable

NETWORK_BUILDERS: dict[str, Callable] = {}


def register_network(kind: str):
    """Register ``builder(spec) -> simulation`` under a ``network.kind``."""
    def decorator(builder):
        NETWORK_BUILDERS[kind] = builder
        return builder
    return decorator


def build_network(spec):
    """Build the simulation of a protocol whose model has a ``network`` block."""
    from . import sailnet, sparse_coding  # noqa: F401  (they register themselves)

    return NETWORK_BUILDERS[spec.model.network.kind](spec)

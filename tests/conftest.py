"""Shared test helpers: paths and a cached runner for short protocol runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PROTOCOLS = REPOSITORY / "protocols"
MODELS = REPOSITORY / "models"
SHARED = REPOSITORY.parent / "shared"


@pytest.fixture(scope="session")
def run_protocol(tmp_path_factory):
    """Run a shipped protocol with overrides once per session; return its Results."""
    import plasticsim

    cache = {}

    def runner(name: str, *overrides: str, figures: bool = False):
        key = (name, overrides, figures)
        if key not in cache:
            out = tmp_path_factory.mktemp(name.replace(".yaml", ""))
            cache[key] = plasticsim.run(PROTOCOLS / name, out, overrides=list(overrides),
                                        overwrite=True, progress=False, figures=figures)
        return cache[key]

    return runner


def run_simulation(simulation, samples=2000, every=1000):
    """Warm up a built simulation and advance it ``samples`` samples in records of ``every``."""
    simulation.warmup()
    while simulation.samples_done < samples:
        simulation.advance(every)
    return simulation


def relative_difference(reference, other):
    """max |reference − other| / max |reference|."""
    return np.max(np.abs(reference - other)) / np.max(np.abs(reference))

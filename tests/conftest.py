"""Shared test helpers: paths, a cached runner for short protocol runs, and plan stepping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
PROTOCOLS = REPOSITORY / "protocols"
MODELS = REPOSITORY / "models"
SHARED = REPOSITORY.parent / "shared"
#: Overrides that replace a protocol's external images by the built-in ones (CI has none).
BUILTIN_IMAGES = ["stimuli.input.source={kind: skimage}", "stimuli.input.whiten=true",
                  "stimuli.input.scale_to_variance=null"]


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


def uses_external_images(path) -> bool:
    """Whether a shipped protocol reads images from outside the repository."""
    return "kind: raw" in Path(path).read_text()


def simulate(spec, backend: str = "numpy", simulation=None):
    """Build (unless given) and run a protocol's plan as plasticsim.run steps it: warm-up, then
    record-sized chunks. Returns the simulation."""
    from plasticsim.backends import build
    from plasticsim.engine.builder import build_plan

    simulation = simulation or build(build_plan(spec), backend)
    simulation.warmup()
    while simulation.samples_done < spec.schedule.samples:
        simulation.advance(min(spec.record.every,
                               spec.schedule.samples - simulation.samples_done))
    return simulation


def relative_difference(reference, other) -> float:
    """max |reference − other| / max |reference| (0 when both are all zero)."""
    reference, other = np.asarray(reference, float), np.asarray(other, float)
    scale = np.max(np.abs(reference))
    difference = np.max(np.abs(reference - other)) if reference.size else 0.0
    return float(difference / scale) if scale > 0 else float(difference)


@pytest.fixture(scope="session", autouse=True)
def _torch_single_thread():
    """Tiny matrices: PyTorch's intra-op threads only add contention on a small machine."""
    if importlib.util.find_spec("torch") is None:
        yield
        return
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

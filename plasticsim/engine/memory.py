"""Memory a run needs, estimated before anything is allocated, against what the machine has.

Two checks, both at ``plasticsim validate`` and before ``plasticsim run`` touches its output:

* :func:`check_spec_memory`, before the builder runs: the builder itself allocates the
  stimulus covariances, filters and initial weights, so a population of a million sites must
  be refused from its declared sizes, not after a ``MemoryError`` (or minutes of swapping).
* :func:`check_plan_memory`, after the builder and before a backend compiles: the plan's
  state arrays are the simulation's memory, and a backend holds them at least once more.

Available memory is ``MemAvailable`` of ``/proc/meminfo`` (Linux), else physical pages from
``os.sysconf``; where neither is known the checks pass.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import SpecError

#: Copies of the state a backend may hold at once (initial values, its own state, the
#: temporaries of one step, the snapshot being recorded).
STATE_COPIES = 4
#: Dense (size × size) arrays the builder may make per population (signal and noise
#: covariances, a filter, running estimates of two phases, a lateral matrix).
SQUARE_ARRAYS_PER_POPULATION = 6
#: Per-sample arrays per population and batch row (activity, noise, settling iterates, …).
BATCH_ARRAYS_PER_POPULATION = 8


def available_memory_bytes() -> int | None:
    """Memory this process could allocate now (bytes), or None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _format_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if count < 1024 or unit == "PiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:.1f} PiB"


def spec_memory_bytes(spec, members: int = 1) -> int:
    """Upper estimate of the builder's and the simulation's memory for a protocol (bytes).

    Counts, per member, :data:`SQUARE_ARRAYS_PER_POPULATION` dense size × size arrays and
    :data:`BATCH_ARRAYS_PER_POPULATION` batch × size arrays per population, and each
    projection's post × pre weights :data:`STATE_COPIES` times, all in float64 (the builder
    works in double precision whatever the run's dtype). Python integers: no overflow.
    """
    batch = int(spec.schedule.batch_size)
    total = 0
    for population in spec.model.populations.values():
        size = int(population.size)
        total += SQUARE_ARRAYS_PER_POPULATION * size * size + BATCH_ARRAYS_PER_POPULATION * batch * size
    sizes = {name: int(p.size) for name, p in spec.model.populations.items()}
    for projection in spec.model.projections.values():
        total += STATE_COPIES * sizes.get(projection.pre, 0) * sizes.get(projection.post, 0)
    return 8 * total * int(members)


def plan_memory_bytes(plan) -> int:
    """Bytes of a plan's state arrays (all members), times :data:`STATE_COPIES`."""
    total = 0
    for state in plan.states.values():
        dtype = np.dtype(plan.dtype if state.dtype == "run" else state.dtype)
        total += int(np.prod(state.shape, dtype=object)) * dtype.itemsize
    return STATE_COPIES * total * plan.n_members


def _check(needed: int, what: str, key_path: str | None) -> None:
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise SpecError(f"{what} needs about {_format_bytes(needed)} of memory; this machine "
                        f"has {_format_bytes(available)} available: reduce the population "
                        "sizes, batch_size or ensemble size", key_path=key_path)


def check_spec_memory(spec, members: int = 1) -> None:
    """Refuse a protocol whose declared sizes cannot fit in the available memory.

    Raises
    ------
    SpecError
        With the estimate, the available memory and the key of the largest population.
    """
    populations = spec.model.populations
    largest = max(populations, key=lambda name: populations[name].size) if populations else None
    _check(spec_memory_bytes(spec, members), f"a network of {members} member(s) with "
           f"populations of up to {populations[largest].size if largest else 0} units",
           f"model.populations.{largest}.size" if largest else None)


def check_plan_memory(plans: list) -> None:
    """Refuse plans whose state arrays cannot fit in the available memory."""
    _check(sum(plan_memory_bytes(plan) for plan in plans), "the simulation's state", None)

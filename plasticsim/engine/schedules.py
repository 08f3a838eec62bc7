"""Phase sequences and learning-rate schedules, as per-sample arrays the backends consume."""

from __future__ import annotations

import numpy as np

from ..model.registry import NOISE_UNLEARNING, PHASE_NAMES, SENSING  # noqa: F401
from ..spec.protocol import PhasesSpec, RateScheduleSpec, ScheduleSpec


def step_phases(schedule: ScheduleSpec, phases: PhasesSpec, first_sample: int,
                n_steps: int) -> np.ndarray:
    """Phase index (0 sensing, 1 noise-unlearning) of each of ``n_steps`` mini-batch steps.

    Phases alternate in blocks of ``block_length`` samples, starting with sensing; a disabled
    phase's blocks go to the other phase, so every step trains something.
    """
    enabled = [phases.sensing.enabled, phases.noise_unlearning.enabled]
    if not all(enabled):
        return np.full(n_steps, enabled.index(True), dtype=np.int64)
    samples = first_sample + schedule.batch_size * np.arange(n_steps)
    return (samples // schedule.block_length) % 2


def rate_at(rate: RateScheduleSpec, samples: np.ndarray) -> np.ndarray:
    """η(t) at sample counts t: η₀ (constant) or η₀ / (1 + t/τ) (annealed); with a
    ``window`` [start, stop), 0 outside it and t counted from start."""
    samples = np.asarray(samples, dtype=float)
    if rate.window is not None:
        start, stop = rate.window
        inside = (samples >= start) & (samples < stop)
        return np.where(inside, rate_at(rate.model_copy(update={"window": None}),
                                        np.maximum(samples - start, 0.0)), 0.0)
    if rate.kind == "constant":
        return np.full(samples.shape, rate.initial)
    return rate.initial / (1.0 + samples / rate.tau)


def phase_signs(phases: PhasesSpec) -> np.ndarray:
    """Sign of the feedforward update in each phase (+1 Hebbian, −1 anti-Hebbian)."""
    return np.array([phases.sensing.sign, phases.noise_unlearning.sign], dtype=float)


def batch_rate(rate_per_sample: float, batch_size: int) -> float:
    """Rate for a running average updated once per mini-batch of ``batch_size`` samples.

    ε_B = 1 − (1 − ε)^B keeps the averaging time constant, in samples, independent of B.
    """
    return 1.0 - (1.0 - rate_per_sample) ** batch_size

"""The base of every spec class: frozen pure data, unknown keys are errors.

Component modules (:mod:`plasticsim.model`) define their own spec classes on this base;
:mod:`plasticsim.spec` assembles them into the model and protocol schema.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Base for every spec object: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ value types
# Values the engine can use: finite numbers in a physically meaningful range, checked at
# ``plasticsim validate`` with the allowed range in the message. The magnitude bounds keep
# squares and products of variances, rates and weights inside double (and single) precision:
# 1e-320 is a denormal whose products underflow to 0 and end in NaN figures, and 1e308
# overflows as soon as it is squared.
import math  # noqa: E402
from typing import Annotated  # noqa: E402

from pydantic import AfterValidator  # noqa: E402

#: Smallest magnitude of a non-zero value.
TINY = 1e-30
#: Largest magnitude of a value.
HUGE = 1e30
#: Largest seed: NumPy takes any non-negative integer, but HDF5 attributes and the int64
#: seeds of the compiled backends stop at 2**63 - 1.
MAX_SEED = 2**63 - 1
#: Largest population (units or input sites); what fits in memory is checked separately.
MAX_SIZE = 10_000_000
#: Largest number of samples of a schedule, probe or estimate.
MAX_SAMPLES = 10**12


def _number_in(low: float, high: float, *, zero: bool = False, signed: bool = False,
               high_open: bool = False):
    """A float type that refuses non-finite values and magnitudes outside [low, high]."""
    interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"
    allowed = ("with magnitude in " if signed else "in ") + interval + (" or 0" if zero else "")
    if not signed:
        allowed = ("greater than or equal to 0: " if zero else "greater than 0, ") + allowed

    def check(value: float) -> float:
        magnitude = abs(value) if signed else value
        if value == 0 and zero:
            return value
        inside = math.isfinite(value) and low <= magnitude and (
            magnitude < high if high_open else magnitude <= high)
        if not inside:
            raise ValueError(f"expected a finite number {allowed}, got {value!r}")
        return value
    return Annotated[float, AfterValidator(check)]


def _integer_in(low: int, high: int):
    """An integer type whose error message states the whole allowed range."""
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"expected an integer in [{low}, {high}], got {value!r}")
        return value
    return Annotated[int, AfterValidator(check)]


#: A finite number > 0 (magnitude in [TINY, HUGE]).
PositiveFinite = _number_in(TINY, HUGE)
#: A finite number ≥ 0 (0 or in [TINY, HUGE]).
NonNegativeFinite = _number_in(TINY, HUGE, zero=True)
#: A finite number (0 or magnitude in [TINY, HUGE]).
Finite = _number_in(TINY, HUGE, zero=True, signed=True)
#: A variance that may be zero (e.g. no output noise).
Variance0 = NonNegativeFinite
#: A rate per sample or per batch, in (0, 1] (running averages, time steps).
AveragingRate = _number_in(TINY, 1.0)
#: A probability strictly between 0 and 1 (target firing rates).
OpenFraction = _number_in(TINY, 1.0, high_open=True)
#: A seed.
Seed = _integer_in(0, MAX_SEED)
#: Units of a population, sites of an input.
Size = _integer_in(1, MAX_SIZE)
#: A non-negative size (e.g. a border in pixels).
Size0 = _integer_in(0, MAX_SIZE)
#: A positive count of samples (schedules, probes, estimates).
SampleCount = _integer_in(1, MAX_SAMPLES)
#: A non-negative count of samples.
SampleCount0 = _integer_in(0, MAX_SAMPLES)

"""Drifting-grating probes: V1 physiology's standard stimulus shown to a trained network.

A drifting sinusoidal grating on an h×w input is

    s(x, y, t) = contrast · cos(2πf·x′ − φ_t),   x′ = (x − x_c)·cos θ + (y − y_c)·sin θ,

with (x_c, y_c) the centre of the grating window, f the spatial frequency in cycles per pixel
and φ_t = 2πk/P (k = 0 … P−1) the temporal phase over one drift cycle; x is the column index,
y the row index, θ the direction of the wave vector (the bars run at θ + 90°).

The probe shows every orientation × spatial frequency × phase to the ``input`` population
(no plasticity, no output noise) and stores the ``population``'s responses under
``/probes/<name>`` with the grating parameters; the tuning analysis
(:mod:`plasticsim.analysis.gratings`: circular variance, orientation bandwidth, preferred
spatial frequency and bandwidth, F1/F0) reads them from the results file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from ...errors import SpecError
from ...schema import PositiveFinite, Size, Spec
from ..registry import register_probe

#: Orientations per probe by default: every 7.5° over 180° (Ringach et al. sampled every
#: 15°; the finer default keeps the vector-sum preferred orientation of sharply tuned units
#: within a degree or so of the truth).
DEFAULT_ORIENTATION_COUNT = 24
#: Temporal phases per drift cycle by default. Sampling a half-wave rectified sinusoid at P
#: phases aliases its even harmonics P, 2P, … onto F0: at P = 16 F0 is off by −1.3% to +0.6%
#: depending on the response's phase, so F1/F0 of a rectified linear unit reads 1.56–1.59
#: instead of π/2 (P = 32 narrows this to 1.568–1.576).
DEFAULT_PHASE_COUNT = 16
#: Highest spatial frequency a pixel grid carries, in cycles per pixel. At exactly 0.5 a
#: grating along a pixel axis no longer drifts (it flickers in place), so F1 is meaningless.
NYQUIST_FREQUENCY = 0.5
#: Spatial frequencies shown by default: half-octave steps from 0.04 to 0.4 cycles/pixel.
DEFAULT_SPATIAL_FREQUENCIES = tuple(float(f) for f in 0.04 * 2.0 ** (np.arange(7) / 2))


class GratingsProbeSpec(Spec):
    """Drifting gratings shown to ``input``, responses of ``population`` recorded.

    ``spatial_frequencies`` in cycles per pixel (each below Nyquist, 0.5); ``orientations``
    and ``phases`` per drift cycle, evenly spaced; ``grating_size`` (pixels) of a centred
    window (default: the whole input); ``response``: ``rate`` (half-wave rectified) or
    ``spike_count``; ``auto`` takes spike counts for spiking populations.
    """

    kind: Literal["gratings"] = "gratings"
    population: str
    input: str | None = None
    spatial_frequencies: list[PositiveFinite] = list(DEFAULT_SPATIAL_FREQUENCIES)
    orientations: Annotated[int, Field(ge=4, le=360)] = DEFAULT_ORIENTATION_COUNT
    phases: Annotated[int, Field(ge=4, le=256)] = DEFAULT_PHASE_COUNT
    contrast: PositiveFinite = 1.0
    grating_size: tuple[Size, Size] | None = None
    response: Literal["auto", "rate", "spike_count"] = "auto"
    batch_size: Size = 4096


@dataclass(frozen=True)
class GratingSet:
    """A set of drifting gratings: every orientation × spatial frequency × temporal phase.

    Attributes
    ----------
    input_shape : (int, int)
        (height, width) of the input the gratings are shown on.
    grating_shape : (int, int)
        (height, width) of the centred window the grating fills; the rest of the input is
        0 (the mean luminance).
    orientations : numpy.ndarray
        Wave-vector directions θ in radians, evenly spaced over [0, π).
    spatial_frequencies : numpy.ndarray
        Cycles per pixel, ascending, each in (0, 0.5).
    phases : numpy.ndarray
        Temporal phases φ_t in radians, evenly spaced over one cycle [0, 2π).
    contrast : float
        Amplitude of the sinusoid.
    stimuli : numpy.ndarray
        Shape (orientations, frequencies, phases, height, width).
    """

    input_shape: tuple[int, int]
    grating_shape: tuple[int, int]
    orientations: np.ndarray
    spatial_frequencies: np.ndarray
    phases: np.ndarray
    contrast: float
    stimuli: np.ndarray = field(repr=False)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """(orientations, spatial frequencies, phases)."""
        return self.stimuli.shape[:3]

    def flattened(self) -> np.ndarray:
        """Stimuli as (orientations · frequencies · phases, height · width), C order."""
        return self.stimuli.reshape(int(np.prod(self.grid_shape)), -1)


def _positive_shape(value, argument: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in value)
    except (TypeError, ValueError):
        raise SpecError(f"expected (height, width), got {value!r}", key_path=argument) from None
    if height < 1 or width < 1 or (height, width) != tuple(value):
        raise SpecError(f"expected two positive integers, got {tuple(value)!r}",
                        key_path=argument)
    return height, width


def drifting_gratings(input_shape: tuple[int, int],
                      spatial_frequencies,
                      orientation_count: int = DEFAULT_ORIENTATION_COUNT,
                      phase_count: int = DEFAULT_PHASE_COUNT,
                      contrast: float = 1.0,
                      grating_shape: tuple[int, int] | None = None,
                      generate: bool = True) -> GratingSet | None:
    """Drifting sinusoidal gratings over orientations, spatial frequencies and phases.

    Parameters
    ----------
    input_shape : (int, int)
        (height, width) of the population's input.
    spatial_frequencies : sequence of float
        Cycles per pixel, each in (0, 0.5); duplicates are refused, order does not matter.
    orientation_count : int, default 24
        Orientations, evenly spaced over [0°, 180°); at least 4.
    phase_count : int, default 16
        Temporal phases per drift cycle; at least 4 so that F1 is not aliased.
    contrast : float, default 1.0
        Amplitude of the sinusoid (> 0).
    grating_shape : (int, int), optional
        Centred window the grating fills (default: the whole input); it may not be larger
        than the input.
    generate : bool, default True
        False: only check the arguments (returns None).

    Returns
    -------
    GratingSet

    Raises
    ------
    plasticsim.errors.SpecError
        One line naming the argument: a spatial frequency at or above Nyquist (0.5
        cycles/pixel) or not positive, a grating window larger than the input, too few
        orientations or phases, a non-positive contrast.

    Examples
    --------
    >>> gratings = drifting_gratings((16, 16), [0.1, 0.2], orientation_count=8)
    >>> gratings.stimuli.shape
    (8, 2, 16, 16, 16)
    >>> drifting_gratings((16, 16), [0.6])
    Traceback (most recent call last):
    ...
    plasticsim.errors.SpecError: spatial_frequencies: 0.6 cycles/pixel is at or above the Nyquist frequency 0.5 of the pixel grid; use frequencies in (0, 0.5)
    """
    height, width = _positive_shape(input_shape, "input_shape")
    if grating_shape is None:
        window_height, window_width = height, width
    else:
        window_height, window_width = _positive_shape(grating_shape, "grating_shape")
        if window_height > height or window_width > width:
            raise SpecError(f"a {window_height}×{window_width} grating is larger than the "
                            f"{height}×{width} input", key_path="grating_shape")
    frequencies = np.atleast_1d(np.asarray(spatial_frequencies, dtype=np.float64))
    if frequencies.ndim != 1 or frequencies.size == 0:
        raise SpecError("expected a non-empty list of cycles per pixel",
                        key_path="spatial_frequencies")
    for frequency in frequencies:
        if not np.isfinite(frequency) or frequency <= 0:
            raise SpecError(f"{frequency:g} cycles/pixel is not a positive number",
                            key_path="spatial_frequencies")
        if frequency >= NYQUIST_FREQUENCY:
            raise SpecError(f"{frequency:g} cycles/pixel is at or above the Nyquist frequency "
                            f"{NYQUIST_FREQUENCY:g} of the pixel grid; use frequencies in "
                            f"(0, {NYQUIST_FREQUENCY:g})", key_path="spatial_frequencies")
    frequencies = np.sort(frequencies)
    if np.any(np.diff(frequencies) == 0):
        raise SpecError("the same frequency is listed twice", key_path="spatial_frequencies")
    if int(orientation_count) != orientation_count or orientation_count < 4:
        raise SpecError(f"expected an integer of at least 4, got {orientation_count!r}",
                        key_path="orientation_count")
    if int(phase_count) != phase_count or phase_count < 4:
        raise SpecError(f"expected an integer of at least 4, got {phase_count!r}",
                        key_path="phase_count")
    if not np.isfinite(contrast) or contrast <= 0:
        raise SpecError(f"expected a positive number, got {contrast!r}", key_path="contrast")

    if not generate:
        return None
    orientations = np.pi * np.arange(int(orientation_count)) / int(orientation_count)
    phases = 2 * np.pi * np.arange(int(phase_count)) / int(phase_count)
    rows, columns = np.indices((window_height, window_width), dtype=np.float64)
    rows -= (window_height - 1) / 2
    columns -= (window_width - 1) / 2
    across = (columns[None] * np.cos(orientations)[:, None, None]
              + rows[None] * np.sin(orientations)[:, None, None])        # (θ, h, w)
    argument = (2 * np.pi * frequencies[None, :, None, None, None] * across[:, None, None]
                - phases[None, None, :, None, None])
    window = contrast * np.cos(argument)
    stimuli = np.zeros(window.shape[:3] + (height, width))
    top, left = (height - window_height) // 2, (width - window_width) // 2
    stimuli[..., top:top + window_height, left:left + window_width] = window
    return GratingSet(input_shape=(height, width),
                      grating_shape=(window_height, window_width),
                      orientations=orientations, spatial_frequencies=frequencies,
                      phases=phases, contrast=float(contrast), stimuli=stimuli)



@register_probe(GratingsProbeSpec)
def build_gratings(name, spec, ctx) -> dict:
    """Check the probe against the graph and the input's patch shape (at ``validate``)."""
    key = f"probes.{name}"
    population = ctx.population_named(spec.population, f"{key}.population")
    source = ctx.upstream_input(population, spec.input, f"{key}.input")
    shape = source.patch_shape
    if shape is None:
        ctx.error(f"{key}.input", f"gratings need a 2-D input; {source.name!r} is fed by a "
                  "stimulus without a patch shape (use image patches or oriented bars)")
    try:
        drifting_gratings(shape, spec.spatial_frequencies, spec.orientations, spec.phases,
                          spec.contrast, spec.grating_size, generate=False)
    except SpecError as error:
        ctx.error(f"{key}.{error.key_path}", error.message)
    response = spec.response
    if response == "auto":
        response = "spike_count" if population.kind == "lif" else "rate"
    return {"run": run_gratings, "name": name, "population": population.name,
            "input": source.name,
            "input_shape": tuple(shape), "response_kind": response}


def run_gratings(spec, entry: dict, respond, rng) -> dict:
    """Show every grating; return the responses and the grating parameters to store."""
    gratings = drifting_gratings(entry["input_shape"], spec.spatial_frequencies,
                                 spec.orientations, spec.phases, spec.contrast,
                                 spec.grating_size)
    stimuli = gratings.flattened()
    responses = np.concatenate([
        np.asarray(respond({entry["input"]: stimuli[start:start + spec.batch_size]},
                           entry["population"]), dtype=np.float64)
        for start in range(0, len(stimuli), spec.batch_size)])
    return {"path": f"probes/{entry.get('name', 'gratings')}",
            "array": {"responses": responses, "orientations_rad": gratings.orientations,
                      "spatial_frequencies": gratings.spatial_frequencies,
                      "phases_rad": gratings.phases},
            "attributes": {"kind": "gratings", "population": entry["population"],
                           "input": entry["input"], "response_kind": entry["response_kind"],
                           "contrast": gratings.contrast,
                           "input_shape": list(gratings.input_shape),
                           "grating_shape": list(gratings.grating_shape)}}

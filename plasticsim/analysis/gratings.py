"""Drifting-grating probes and the tuning measures V1 physiologists report.

A drifting sinusoidal grating on an h×w input is

    s(x, y, t) = contrast · cos(2πf·x′ − φ_t),   x′ = (x − x_c)·cos θ + (y − y_c)·sin θ,

with (x_c, y_c) the centre of the grating window, f the spatial frequency in cycles per
pixel and φ_t = 2πk/P (k = 0 … P−1) the temporal phase over one drift cycle (the crests move
along +θ as k grows). Coordinates follow :mod:`plasticsim.analysis.gabor`: x is the column
index, y the row index (pointing down), and θ is the direction of the grating's wave vector,
counter-clockwise from the x axis in these coordinates; the bars run at θ + 90°. A Gabor
field with carrier direction θ therefore prefers gratings of orientation θ.

Every unit's response to every grating and phase gives, at each (θ, f), the mean response
over the cycle F0 and the amplitude of its first temporal harmonic F1. From them, per unit:

* the **preferred grating** (θ*, f*): the sampled grating with the largest F0;
* the **orientation tuning curve**: F0 over the orientations at f*;
* **circular variance** (Ringach, Shapley & Hawken 2002, *J Neurosci* 22:5639):
  CV = 1 − |Σ_k r_k e^{2iθ_k}| / Σ_k r_k over the tuning curve, 0 for a unit that responds
  to one orientation only, 1 for an untuned unit; the **preferred orientation** is the angle
  of that vector sum, ½·arg Σ_k r_k e^{2iθ_k};
* **orientation bandwidth** (same paper): the half-width at 1/√2 of the peak of the tuning
  curve interpolated with a periodic cubic spline (no smoothing is added: model responses
  are noise-free; smooth noisy spike counts before probing if needed), the mean of the
  distances to the first crossings on either side of the peak; 180° when the curve never
  drops that low (a real half-width is at most 90°);
* **preferred spatial frequency**: the vertex of the parabola through the peak of the SF
  tuning curve (F0 over the frequencies at θ*) and its two neighbours, in log₂ f (the
  sampled peak itself when it lies at an end of the sampled range);
* **spatial-frequency bandwidth in octaves**: the full width at half height of the SF tuning
  curve, log₂(f_high / f_low), with f_low and f_high found by linear interpolation in
  log₂ f between sampled frequencies (the De Valois, Albrecht & Thorell 1982 definition).
  When the curve does not fall to half height inside the sampled range on a side, the end
  of the range is used and ``sf_bandwidth_bounded`` is False: the value is then a lower
  bound (a low-pass unit, for instance);
* **modulation ratio F1/F0** (Skottun et al. 1991, *Vision Res* 31:1079) at the preferred
  grating: above 1 for simple cells, below 1 for complex cells. A half-wave rectified
  linear unit gives π/2 ≈ 1.571 at every grating it responds to; an energy unit (the sum of
  the squared responses of a quadrature pair) gives 0.

Rate responses are half-wave rectified (negative rates are not observable); spike counts are
used as they are and must not be negative. A unit that never responds (F0 = 0 at every
grating) has ``responsive`` False and NaN in every measure, since none of them is defined.

The functions work on arrays and on a ``respond(stimuli) -> responses`` callable, so the
engine's probe phase can call them with a trained network; nothing here learns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from plasticsim.errors import DataError, SpecError
from plasticsim.model.probes.gratings import (  # noqa: F401  (the stimuli live with the probe)
    DEFAULT_ORIENTATION_COUNT, DEFAULT_PHASE_COUNT, NYQUIST_FREQUENCY, GratingSet,
    drifting_gratings)

#: Resolution of the interpolated orientation tuning curve used for the bandwidth, degrees.
BANDWIDTH_RESOLUTION_DEG = 0.05
#: Bandwidth reported for a unit whose tuning curve never drops to 1/√2 of its peak.
UNTUNED_BANDWIDTH_DEG = 180.0
RESPONSE_KINDS = ("rate", "spike_count")

#: Per-unit columns of :meth:`GratingTuning.table`, in order.
TABLE_COLUMNS = ("responsive", "preferred_orientation_deg", "circular_variance",
                 "orientation_bandwidth_deg", "preferred_spatial_frequency",
                 "sf_bandwidth_octaves", "sf_bandwidth_bounded", "modulation_ratio",
                 "peak_mean_response", "preferred_orientation_index", "preferred_sf_index")


@dataclass(frozen=True)
class GratingTuning:
    """Tuning of every unit of a population measured with a :class:`GratingSet`.

    Attributes
    ----------
    orientations : numpy.ndarray
        Radians, shape (n_orientations,).
    spatial_frequencies : numpy.ndarray
        Cycles per pixel, shape (n_frequencies,).
    phase_count : int
        Temporal phases per cycle the measures were computed from.
    response_kind : str
        ``"rate"`` (half-wave rectified) or ``"spike_count"`` (used as given).
    mean_response : numpy.ndarray
        F0, shape (units, n_orientations, n_frequencies).
    first_harmonic : numpy.ndarray
        F1 (amplitude of the first temporal harmonic), same shape.
    columns : dict of str to numpy.ndarray
        Per-unit measures, one array of length ``units`` each; keys are
        :data:`TABLE_COLUMNS` (see the module docstring for definitions).
    """

    orientations: np.ndarray
    spatial_frequencies: np.ndarray
    phase_count: int
    response_kind: str
    mean_response: np.ndarray = field(repr=False)
    first_harmonic: np.ndarray = field(repr=False)
    columns: dict = field(repr=False)

    @property
    def unit_count(self) -> int:
        """Number of units."""
        return self.mean_response.shape[0]

    @property
    def orientation_tuning(self) -> np.ndarray:
        """F0 over orientations at each unit's preferred SF, shape (units, n_orientations)."""
        index = np.nan_to_num(self.columns["preferred_sf_index"]).astype(int)
        return self.mean_response[np.arange(self.unit_count), :, index]

    @property
    def spatial_frequency_tuning(self) -> np.ndarray:
        """F0 over frequencies at each unit's preferred orientation, (units, n_frequencies)."""
        index = np.nan_to_num(self.columns["preferred_orientation_index"]).astype(int)
        return self.mean_response[np.arange(self.unit_count), index, :]

    def table(self) -> np.ndarray:
        """The per-unit measures as a numpy structured array (one record per unit)."""
        dtype = [(name, self.columns[name].dtype) for name in TABLE_COLUMNS]
        table = np.zeros(self.unit_count, dtype=dtype)
        for name in TABLE_COLUMNS:
            table[name] = self.columns[name]
        return table


def _harmonics(responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F0 and F1 over the last axis (temporal phases of one cycle)."""
    phase_count = responses.shape[-1]
    f0 = responses.mean(axis=-1)
    # the crests pass with phase φ_t = 2πk/P, so the first harmonic is e^{-iφ_t}
    kernel = np.exp(-2j * np.pi * np.arange(phase_count) / phase_count)
    f1 = 2 * np.abs(responses @ kernel) / phase_count
    return f0, f1


def circular_variance(tuning_curves: np.ndarray, orientations: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Circular variance and preferred orientation of orientation tuning curves.

    Parameters
    ----------
    tuning_curves : numpy.ndarray
        Non-negative responses, shape (..., n_orientations), sampled evenly over 180°.
    orientations : numpy.ndarray
        The orientations in radians.

    Returns
    -------
    circular_variance : numpy.ndarray
        1 − |Σ r_k e^{2iθ_k}| / Σ r_k (NaN where Σ r_k = 0).
    preferred_orientation_deg : numpy.ndarray
        ½·arg Σ r_k e^{2iθ_k} in degrees, in [0, 180).

    Examples
    --------
    >>> theta = np.pi * np.arange(12) / 12
    >>> cv, preferred = circular_variance(np.ones(12), theta)
    >>> round(float(cv), 12)
    1.0
    """
    tuning_curves = np.asarray(tuning_curves, dtype=np.float64)
    resultant = tuning_curves @ np.exp(2j * np.asarray(orientations))
    total = tuning_curves.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.where(total > 0, 1 - np.abs(resultant) / total, np.nan)
    preferred = np.degrees(np.angle(resultant) / 2) % 180.0
    return variance, np.where(total > 0, preferred, np.nan)


def orientation_bandwidth(tuning_curve: np.ndarray, orientations: np.ndarray) -> float:
    """Half-width at 1/√2 of the peak of an interpolated orientation tuning curve, degrees.

    Parameters
    ----------
    tuning_curve : numpy.ndarray
        Responses at orientations evenly spaced over 180°, shape (n_orientations,).
    orientations : numpy.ndarray
        The orientations in radians.

    Returns
    -------
    float
        Mean distance from the interpolated peak to the first crossing of peak/√2 on either
        side; :data:`UNTUNED_BANDWIDTH_DEG` (180) when the curve never drops that low.

    Examples
    --------
    >>> theta = np.pi * np.arange(24) / 24
    >>> round(orientation_bandwidth(np.cos(theta) ** 2, theta), 1)   # cos²θ = 1/√2 at 32.8°
    32.8
    """
    degrees = np.degrees(np.asarray(orientations, dtype=np.float64))
    values = np.asarray(tuning_curve, dtype=np.float64)
    # periodic spline over one period of 180° (the first sample repeated at +180°)
    from scipy.interpolate import CubicSpline  # on use: slow to import
    spline = CubicSpline(np.append(degrees, degrees[0] + 180.0), np.append(values, values[0]),
                         bc_type="periodic")
    step = BANDWIDTH_RESOLUTION_DEG
    fine = degrees[0] + step * np.arange(int(round(180.0 / step)))
    curve = spline(fine)
    peak_index = int(np.argmax(curve))
    threshold = curve[peak_index] / np.sqrt(2)
    if curve[peak_index] <= 0 or np.all(curve >= threshold):
        return UNTUNED_BANDWIDTH_DEG
    count = curve.size
    distances = []
    for direction in (1, -1):
        offsets = np.arange(1, count)
        around = curve[(peak_index + direction * offsets) % count]
        below = int(np.argmax(around < threshold))        # first sample under threshold
        previous = curve[peak_index] if below == 0 else around[below - 1]
        # linear interpolation of the crossing between the last sample above and this one
        fraction = (previous - threshold) / (previous - around[below])
        distances.append(step * (below + fraction))
    return float(np.mean(distances))


def _parabola_vertex(x: np.ndarray, y: np.ndarray) -> float:
    """Abscissa of the vertex of the parabola through three points (x[1] the largest y)."""
    denominator = ((x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2]))
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / denominator
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0])
         + x[0] ** 2 * (y[1] - y[2])) / denominator
    if a >= 0:   # flat top (two equal maxima): no interior vertex, keep the sampled peak
        return float(x[1])
    return float(np.clip(-b / (2 * a), x[0], x[2]))


def _half_height_crossing(log_frequencies: np.ndarray, curve: np.ndarray, peak: int,
                          direction: int) -> tuple[float, bool]:
    """log₂ f where the SF curve first falls to half its peak going ``direction`` from it."""
    half = curve[peak] / 2
    index = peak
    while 0 <= index + direction < curve.size:
        following = index + direction
        if curve[following] <= half:
            fraction = (curve[index] - half) / (curve[index] - curve[following])
            return (log_frequencies[index]
                    + fraction * (log_frequencies[following] - log_frequencies[index])), True
        index = following
    return float(log_frequencies[index]), False


def _spatial_frequency_measures(frequencies: np.ndarray, curve: np.ndarray
                                ) -> tuple[float, float, bool]:
    """Preferred SF, SF bandwidth in octaves and whether both half-height sides were found."""
    peak = int(np.argmax(curve))
    log_frequencies = np.log2(frequencies)
    if 0 < peak < curve.size - 1:
        preferred = 2 ** _parabola_vertex(log_frequencies[peak - 1:peak + 2],
                                          curve[peak - 1:peak + 2])
    else:
        preferred = frequencies[peak]
    if curve.size < 2:
        return float(preferred), np.nan, False
    low, low_found = _half_height_crossing(log_frequencies, curve, peak, -1)
    high, high_found = _half_height_crossing(log_frequencies, curve, peak, +1)
    return float(preferred), float(high - low), bool(low_found and high_found)


def analyze_grating_responses(responses: np.ndarray, gratings: GratingSet,
                              response_kind: str = "rate") -> GratingTuning:
    """Tuning measures of every unit from its responses to a :class:`GratingSet`.

    Parameters
    ----------
    responses : numpy.ndarray
        Shape (stimuli, units) in the order of :meth:`GratingSet.flattened`, or
        (orientations, frequencies, phases, units).
    gratings : GratingSet
        The gratings that were shown.
    response_kind : {"rate", "spike_count"}, default "rate"
        ``"rate"``: responses are rates of a rate model and are half-wave rectified;
        ``"spike_count"``: spike counts, used as they are (they may not be negative).

    Returns
    -------
    GratingTuning

    Raises
    ------
    plasticsim.errors.SpecError
        An unknown ``response_kind``.
    plasticsim.errors.DataError
        Responses of the wrong shape, non-finite, or negative spike counts.
    """
    if response_kind not in RESPONSE_KINDS:
        raise SpecError(f"expected one of {', '.join(RESPONSE_KINDS)}, got {response_kind!r}",
                        key_path="response_kind")
    responses = np.asarray(responses, dtype=np.float64)
    grid = gratings.grid_shape
    if responses.ndim == 2 and responses.shape[0] == int(np.prod(grid)):
        responses = responses.reshape(grid + (responses.shape[1],))
    if responses.ndim != 4 or responses.shape[:3] != grid:
        raise DataError(f"grating responses: expected shape ({int(np.prod(grid))}, units) or "
                        f"{grid + ('units',)}, got {responses.shape}")
    if responses.shape[3] == 0:
        raise DataError("grating responses: the population has no units")
    if not np.all(np.isfinite(responses)):
        bad = np.argwhere(~np.isfinite(responses))[0]
        raise DataError(f"grating responses: non-finite response of unit {bad[3]} to the "
                        f"grating at orientation index {bad[0]}, frequency index {bad[1]}, "
                        f"phase index {bad[2]}")
    if response_kind == "rate":
        responses = np.maximum(responses, 0.0)
    elif np.any(responses < 0):
        raise DataError("grating responses: negative spike counts (use response_kind='rate' "
                        "for rates)")
    # (units, orientations, frequencies, phases)
    f0, f1 = _harmonics(np.moveaxis(responses, 3, 0))
    unit_count, orientation_count, frequency_count = f0.shape
    columns = {name: np.full(unit_count, np.nan) for name in TABLE_COLUMNS}
    columns["responsive"] = np.zeros(unit_count, dtype=bool)
    columns["sf_bandwidth_bounded"] = np.zeros(unit_count, dtype=bool)
    columns["preferred_orientation_index"] = np.full(unit_count, -1, dtype=np.int64)
    columns["preferred_sf_index"] = np.full(unit_count, -1, dtype=np.int64)
    for unit in range(unit_count):
        peak = f0[unit].max()
        if not peak > 0:
            continue
        orientation_index, sf_index = np.unravel_index(int(np.argmax(f0[unit])), f0[unit].shape)
        tuning = f0[unit, :, sf_index]
        variance, preferred = circular_variance(tuning, gratings.orientations)
        preferred_sf, sf_bandwidth, bounded = _spatial_frequency_measures(
            gratings.spatial_frequencies, f0[unit, orientation_index, :])
        columns["responsive"][unit] = True
        columns["preferred_orientation_deg"][unit] = preferred
        columns["circular_variance"][unit] = variance
        columns["orientation_bandwidth_deg"][unit] = orientation_bandwidth(
            tuning, gratings.orientations)
        columns["preferred_spatial_frequency"][unit] = preferred_sf
        columns["sf_bandwidth_octaves"][unit] = sf_bandwidth
        columns["sf_bandwidth_bounded"][unit] = bounded
        columns["modulation_ratio"][unit] = f1[unit, orientation_index, sf_index] / peak
        columns["peak_mean_response"][unit] = peak
        columns["preferred_orientation_index"][unit] = orientation_index
        columns["preferred_sf_index"][unit] = sf_index
    return GratingTuning(orientations=gratings.orientations,
                         spatial_frequencies=gratings.spatial_frequencies,
                         phase_count=len(gratings.phases), response_kind=response_kind,
                         mean_response=f0, first_harmonic=f1, columns=columns)


def measure_grating_tuning(respond: Callable[[np.ndarray], np.ndarray], gratings: GratingSet,
                           response_kind: str = "rate", batch_size: int = 4096
                           ) -> GratingTuning:
    """Show every grating to a network through ``respond`` and analyse the responses.

    Parameters
    ----------
    respond : callable
        Maps stimuli (batch × height·width, flattened in C order) to responses
        (batch × units); it must not learn (a probe phase).
    gratings : GratingSet
        From :func:`drifting_gratings`, with ``input_shape`` the population's input shape.
    response_kind : {"rate", "spike_count"}, default "rate"
        See :func:`analyze_grating_responses`.
    batch_size : int, default 4096
        Stimuli per call of ``respond``.

    Returns
    -------
    GratingTuning

    Examples
    --------
    >>> from plasticsim.analysis.gabor import gabor_patch
    >>> field = gabor_patch((16, 16), 7.5, 7.5, np.radians(30), 2.5, 3.5, 0.15, 0.0)
    >>> gratings = drifting_gratings((16, 16), [0.1, 0.15, 0.2])
    >>> tuning = measure_grating_tuning(lambda s: s @ field.reshape(-1, 1), gratings)
    >>> bool(1.55 < tuning.columns["modulation_ratio"][0] < 1.6)    # π/2, sampled at 16 phases
    True
    """
    stimuli = gratings.flattened()
    batches = []
    for start in range(0, stimuli.shape[0], batch_size):
        batch = stimuli[start:start + batch_size]
        response = np.asarray(respond(batch), dtype=np.float64)
        if response.ndim != 2 or response.shape[0] != batch.shape[0]:
            raise DataError(f"grating probe: respond() returned shape {response.shape} for "
                            f"{batch.shape[0]} stimuli; expected ({batch.shape[0]}, units)")
        if batches and response.shape[1] != batches[0].shape[1]:
            raise DataError("grating probe: respond() returned a different number of units "
                            f"between batches ({batches[0].shape[1]}, then {response.shape[1]})")
        batches.append(response)
    return analyze_grating_responses(np.concatenate(batches), gratings, response_kind)


def write_grating_tuning(file: h5py.File | str | Path, population: str,
                         tuning: GratingTuning) -> None:
    """Store a tuning analysis under ``/analysis/gratings/<population>`` (replacing one there).

    Layout of the group: ``table`` (structured, one record per unit, columns
    :data:`TABLE_COLUMNS`), ``mean_response`` and ``first_harmonic`` (units × orientations
    × frequencies), ``orientations_deg``, ``spatial_frequencies`` (cycles/pixel), and the
    attributes ``response_kind`` and ``phase_count``.

    Parameters
    ----------
    file : h5py.File, str or Path
        An open results file (written to in place) or the path of one (opened for append).
    population : str
        Name of the probed population.
    tuning : GratingTuning
    """
    if not isinstance(file, h5py.Group):
        with h5py.File(file, "a") as opened:
            write_grating_tuning(opened, population, tuning)
        return
    path = f"analysis/gratings/{population}"
    if path in file:
        del file[path]
    group = file.require_group(path)
    group.create_dataset("table", data=tuning.table())
    group.create_dataset("mean_response", data=tuning.mean_response)
    group.create_dataset("first_harmonic", data=tuning.first_harmonic)
    group.create_dataset("orientations_deg", data=np.degrees(tuning.orientations))
    group.create_dataset("spatial_frequencies", data=tuning.spatial_frequencies)
    group.attrs["response_kind"] = tuning.response_kind
    group.attrs["phase_count"] = tuning.phase_count


def read_grating_tuning(file: h5py.File | str | Path, population: str) -> GratingTuning:
    """Read back what :func:`write_grating_tuning` stored.

    Raises
    ------
    plasticsim.errors.DataError
        The file has no grating analysis for ``population`` (the message lists those it has).
    """
    if not isinstance(file, h5py.Group):
        with h5py.File(file, "r") as opened:
            return read_grating_tuning(opened, population)
    path = f"analysis/gratings/{population}"
    if path not in file:
        present = sorted(file["analysis/gratings"]) if "analysis/gratings" in file else []
        raise DataError(f"{file.filename}: no grating analysis for population {population!r} "
                        f"(present: {', '.join(present) if present else 'none'})")
    group = file[path]
    table = group["table"][()]
    return GratingTuning(orientations=np.radians(group["orientations_deg"][()]),
                         spatial_frequencies=group["spatial_frequencies"][()],
                         phase_count=int(group.attrs["phase_count"]),
                         response_kind=str(group.attrs["response_kind"]),
                         mean_response=group["mean_response"][()],
                         first_harmonic=group["first_harmonic"][()],
                         columns={name: table[name] for name in table.dtype.names})

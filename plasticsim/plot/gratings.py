"""Figures of a grating-probe analysis: tuning curves and per-layer histograms.

Every function takes :class:`plasticsim.analysis.gratings.GratingTuning` objects (as measured
or as read back from ``/analysis/gratings/<population>``) and returns a
:class:`matplotlib.figure.Figure` built without pyplot, so plotting never switches the
matplotlib backend, never touches global rcParams and leaves no figure open in a pyplot
registry; save it with ``figure.savefig(path)``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from plasticsim.analysis.gratings import UNTUNED_BANDWIDTH_DEG, GratingTuning
from plasticsim.errors import DataError

#: Colours of example units (a colour-blind-safe qualitative set).
UNIT_COLOURS = ("#1f5fa8", "#d1495b", "#2e933c", "#edae49", "#6c4f9c", "#00798c",
                "#8c564b", "#4d4d4d")
HISTOGRAM_COLOUR = "#1f5fa8"
#: Histogram bins: circular variance over [0, 1], half-width at 1/√2 over [0°, 90°] (the
#: untuned sentinel of 180° is counted apart), F1/F0 over [0, 2] (its range for
#: non-negative responses).
CIRCULAR_VARIANCE_BINS = np.linspace(0.0, 1.0, 21)
BANDWIDTH_BINS = np.linspace(0.0, 90.0, 19)
MODULATION_RATIO_BINS = np.linspace(0.0, 2.0, 21)


def _plain_axes(axis) -> None:
    """Drop the top and right spines of one axes (local styling, no global rcParams)."""
    axis.spines["top"].set_visible(False)
    axis.spines["right"].set_visible(False)


def example_units(tuning: GratingTuning, count: int) -> np.ndarray:
    """Indices of up to ``count`` responsive units spread over the range of circular variance.

    Parameters
    ----------
    tuning : GratingTuning
    count : int
        How many units to pick.

    Returns
    -------
    numpy.ndarray
        Unit indices, from the most to the least orientation-selective.
    """
    responsive = np.flatnonzero(tuning.columns["responsive"])
    if responsive.size == 0:
        return responsive
    order = responsive[np.argsort(tuning.columns["circular_variance"][responsive],
                                  kind="stable")]
    picks = np.unique(np.round(np.linspace(0, order.size - 1, min(count, order.size))))
    return order[picks.astype(int)]


def plot_tuning_curves(tuning: GratingTuning, units: Sequence[int] | None = None,
                       max_units: int = 6, population: str = "") -> Figure:
    """Orientation and spatial-frequency tuning curves of example units.

    Parameters
    ----------
    tuning : GratingTuning
    units : sequence of int, optional
        Units to show; by default up to ``max_units`` responsive units spread over the range of
        circular variance (:func:`example_units`).
    max_units : int, default 6
        Cap on the default choice.
    population : str, optional
        Name shown in the title.

    Returns
    -------
    matplotlib.figure.Figure
        Left: mean response F0 against grating orientation at each unit's preferred SF,
        normalised to its peak. Right: F0 against SF at the preferred orientation.

    Raises
    ------
    plasticsim.errors.DataError
        A requested unit does not exist or no unit responded.
    """
    if units is None:
        units = example_units(tuning, max_units)
    units = np.asarray(units, dtype=int)
    if units.size == 0:
        raise DataError("tuning-curve figure: no responsive unit to show")
    outside = units[(units < 0) | (units >= tuning.unit_count)]
    if outside.size:
        raise DataError(f"tuning-curve figure: unit {int(outside[0])} does not exist "
                        f"(the population has {tuning.unit_count} units)")
    orientations_deg = np.degrees(tuning.orientations)
    # close the period so each curve is drawn over the full 0–180° range
    closed = np.append(orientations_deg, 180.0)
    figure = Figure(figsize=(9.0, 4.2), layout="constrained")
    orientation_axis, frequency_axis = figure.subplots(1, 2)
    for position, unit in enumerate(units):
        colour = UNIT_COLOURS[position % len(UNIT_COLOURS)]
        peak = tuning.columns["peak_mean_response"][unit]
        scale = peak if peak > 0 else 1.0
        curve = tuning.orientation_tuning[unit] / scale
        label = (f"unit {unit}: CV {tuning.columns['circular_variance'][unit]:.2f}, "
                 f"F1/F0 {tuning.columns['modulation_ratio'][unit]:.2f}")
        orientation_axis.plot(closed, np.append(curve, curve[0]), color=colour, lw=1.5,
                              marker="o", ms=2.5, label=label)
        frequency_axis.plot(tuning.spatial_frequencies,
                            tuning.spatial_frequency_tuning[unit] / scale, color=colour,
                            lw=1.5, marker="o", ms=2.5)
    orientation_axis.axhline(1 / np.sqrt(2), color="0.6", lw=0.8, ls=":",
                             label="1/√2 of the peak (bandwidth level)")
    orientation_axis.set_xlabel("grating orientation θ (wave-vector direction, degrees)")
    orientation_axis.set_ylabel("mean response F0 / peak")
    orientation_axis.set_xlim(0, 180)
    orientation_axis.set_xticks(np.arange(0, 181, 45))
    orientation_axis.set_title("Orientation tuning at the preferred SF")
    frequency_axis.set_xscale("log", base=2)
    frequency_axis.axhline(0.5, color="0.6", lw=0.8, ls=":")
    frequency_axis.set_xlabel("spatial frequency (cycles/pixel)")
    frequency_axis.set_ylabel("mean response F0 / peak")
    frequency_axis.set_title("SF tuning at the preferred orientation")
    for axis in (orientation_axis, frequency_axis):
        _plain_axes(axis)
    # below the panels, where it hides no curve
    figure.legend(*orientation_axis.get_legend_handles_labels(), loc="outside lower center",
                  ncols=3, frameon=False, fontsize=7)
    name = f" of {population}" if population else ""
    figure.suptitle(f"Drifting-grating tuning{name}: {units.size} example units "
                    f"of {tuning.unit_count}")
    return figure


def _finite(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values)]


def plot_tuning_histograms(tunings: Mapping[str, GratingTuning]) -> Figure:
    """Histograms of circular variance, orientation bandwidth and F1/F0, one row per layer.

    Parameters
    ----------
    tunings : mapping of str to GratingTuning
        Layer (population) name → its tuning analysis, in the order to draw.

    Returns
    -------
    matplotlib.figure.Figure
        One row per layer; each panel's title gives the number of units counted and the
        median. Units that never responded are left out (their count is in the row's
        first title); untuned units (bandwidth 180°) are counted in the bandwidth title.

    Raises
    ------
    plasticsim.errors.DataError
        ``tunings`` is empty.
    """
    if len(tunings) == 0:
        raise DataError("tuning histograms: no layer given")
    figure = Figure(figsize=(10.0, 2.8 * len(tunings) + 0.4), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(tunings), 3, squeeze=False))
    for row, (layer, tuning) in enumerate(tunings.items()):
        columns = tuning.columns
        responsive = np.asarray(columns["responsive"], dtype=bool)
        silent = int((~responsive).sum())
        variance = _finite(columns["circular_variance"][responsive])
        bandwidth_all = _finite(columns["orientation_bandwidth_deg"][responsive])
        untuned = int(np.sum(bandwidth_all >= UNTUNED_BANDWIDTH_DEG))
        bandwidth = bandwidth_all[bandwidth_all < UNTUNED_BANDWIDTH_DEG]
        ratio = _finite(columns["modulation_ratio"][responsive])
        panels = (
            (variance, CIRCULAR_VARIANCE_BINS, "circular variance",
             f"{layer}: circular variance (n = {variance.size} units"
             + (f"; {silent} silent left out" if silent else "") + ")"),
            (bandwidth, BANDWIDTH_BINS, "orientation bandwidth (half-width at 1/√2, degrees)",
             f"{layer}: bandwidth (n = {bandwidth.size} units"
             + (f"; {untuned} untuned, 180°" if untuned else "") + ")"),
            (ratio, MODULATION_RATIO_BINS, "modulation ratio F1/F0",
             f"{layer}: F1/F0 (n = {ratio.size} units)"),
        )
        for axis, (values, bins, label, title) in zip(axes[row], panels):
            axis.hist(np.clip(values, bins[0], bins[-1]), bins=bins, color=HISTOGRAM_COLOUR,
                      edgecolor="white", linewidth=0.5)
            if values.size:
                median = float(np.median(values))
                axis.axvline(median, color="#d1495b", lw=1.2, ls="--",
                             label=f"median {median:.2f}")
                axis.legend(frameon=False, fontsize=7)
            axis.set_xlabel(label)
            axis.set_ylabel("units")
            axis.set_title(title, fontsize=9)
            _plain_axes(axis)
        # the simple/complex boundary of Skottun et al. (1991)
        axes[row, 2].axvline(1.0, color="0.4", lw=0.8, ls=":")
    total = sum(tuning.unit_count for tuning in tunings.values())
    figure.suptitle(f"Grating-probe statistics per layer ({len(tunings)} layers, "
                    f"{total} units)")
    return figure

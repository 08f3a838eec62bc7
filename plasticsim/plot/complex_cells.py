"""Figure of the simple/complex comparison of two layers
(:mod:`plasticsim.analysis.complex_cells`): F1/F0 of both layers and the orientation agreement
of layer 2 with the layer-1 units it weights most. Built without pyplot (no backend switch,
no global rcParams)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from plasticsim.analysis.complex_cells import ORIENTATION_TOLERANCE_DEG
from plasticsim.plot.gratings import MODULATION_RATIO_BINS, _plain_axes

LAYER_COLOURS = ("#1f5fa8", "#d1495b")
ORIENTATION_BINS = np.linspace(0.0, 90.0, 19)


def plot_complex_cells(layer1_ratio: np.ndarray, layer2_ratio: np.ndarray,
                       orientation_difference_deg: np.ndarray, *, layer1: str = "layer 1",
                       layer2: str = "layer 2", top_weights: int = 4) -> Figure:
    """F1/F0 histograms of both layers (as fractions of each layer's units) and the histogram
    of |Δ preferred orientation| between each layer-2 unit and its largest inputs.

    Parameters
    ----------
    layer1_ratio, layer2_ratio : numpy.ndarray
        F1/F0 of the responsive units of each layer.
    orientation_difference_deg : numpy.ndarray
        Per layer-2 unit, the median |Δθ| to its ``top_weights`` largest-weight inputs.
    layer1, layer2 : str
        Population names for the legend and titles.
    top_weights : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    figure = Figure(figsize=(9.0, 3.4), layout="constrained")
    ratio_axis, orientation_axis = figure.subplots(1, 2)
    for values, name, colour in ((layer1_ratio, layer1, LAYER_COLOURS[0]),
                                 (layer2_ratio, layer2, LAYER_COLOURS[1])):
        values = np.asarray(values, float)
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        weights = np.full(values.size, 1.0 / values.size)
        ratio_axis.hist(np.clip(values, MODULATION_RATIO_BINS[0], MODULATION_RATIO_BINS[-1]),
                        bins=MODULATION_RATIO_BINS, weights=weights, color=colour, alpha=0.6,
                        label=f"{name} (n = {values.size} units, median "
                              f"{np.median(values):.2f}, {np.mean(values < 1):.0%} < 1)")
    ratio_axis.axvline(1.0, color="0.4", lw=0.8, ls=":")   # Skottun et al.'s boundary
    ratio_axis.set_xlabel("modulation ratio F1/F0 at the preferred grating")
    ratio_axis.set_ylabel("fraction of the layer's units")
    ratio_axis.set_title("F1/F0: simple (> 1) and complex (< 1)", fontsize=9)
    ratio_axis.legend(frameon=False, fontsize=7)
    _plain_axes(ratio_axis)

    differences = np.asarray(orientation_difference_deg, float)
    differences = differences[np.isfinite(differences)]
    orientation_axis.hist(differences, bins=ORIENTATION_BINS, color=LAYER_COLOURS[1])
    orientation_axis.axvline(ORIENTATION_TOLERANCE_DEG, color="0.4", lw=0.8, ls=":")
    within = float(np.mean(differences <= ORIENTATION_TOLERANCE_DEG)) if differences.size \
        else float("nan")
    orientation_axis.set_xlabel(f"median |Δ preferred orientation| to its {top_weights} "
                                "largest inputs (degrees)")
    orientation_axis.set_ylabel(f"{layer2} units")
    orientation_axis.set_title(f"{layer2}: n = {differences.size} units, {within:.0%} within "
                               f"{ORIENTATION_TOLERANCE_DEG:g}°", fontsize=9)
    _plain_axes(orientation_axis)
    figure.suptitle(f"Simple cells ({layer1}) and complex cells ({layer2}) under drifting "
                    "gratings")
    return figure

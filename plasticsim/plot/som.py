"""Figures of self-organising maps: the orientation map with its pinwheels, the weights on the
sheet, and the map's quality over training."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import EngFormatter

from .mosaic import mosaic_image
from .style import LEARNED, OPTIMAL, styled, subplots


@styled
def plot_orientation_map(results, population: str):
    """Preferred orientation on the sheet (colour), pinwheels (+1 white, −1 black)."""
    stored = results.analysis.get("orientation_map", {}).get(population)
    if stored is None:
        return None
    theta = np.asarray(stored["preferred_orientation_rad"])
    positions = np.asarray(stored["pinwheel_positions"]).reshape(-1, 2)
    charges = np.asarray(stored["pinwheel_charges"])
    summary = results.summary
    figure, axis = subplots(figsize=(5.6, 4.8))
    image = axis.imshow(np.degrees(theta), cmap="hsv", vmin=0, vmax=180,
                        interpolation="nearest", origin="upper")
    for charge, colour in ((1, "white"), (-1, "black")):
        chosen = positions[charges == charge]
        # Pinwheels sit at plaquette centres (r + ½, c + ½) in sheet units.
        axis.scatter(chosen[:, 1] - 0.5, chosen[:, 0] - 0.5, s=22, c=colour,
                     edgecolors="0.3", linewidths=0.6, label=f"pinwheels {charge:+d}")
    colourbar = figure.colorbar(image, ax=axis)
    colourbar.set_label("preferred orientation (°)")
    axis.set_xlabel("sheet column")
    axis.set_ylabel("sheet row")
    rows, columns = theta.shape
    density = summary.get("orientation_map_pinwheel_density")
    spacing = summary.get("orientation_map_column_spacing_units")
    axis.set_title(f"{results.spec.name}: orientation map of {population} ({rows}×{columns} "
                   f"units)\n{len(charges)} pinwheels"
                   + (f", Λ = {float(spacing):.1f} units, {float(density):.2f} per Λ²"
                      if density is not None else ""), fontsize=9)
    axis.legend(frameon=True, fontsize=7, loc="upper right")
    return figure


@styled
def plot_sheet_weights(results, population: str, fields: np.ndarray):
    """Every unit's weights as a patch, laid out on its sheet."""
    rows, columns = results.sheets[population]["shape"]
    figure, axis = subplots(figsize=(6, 6 * rows / columns))
    axis.imshow(mosaic_image(fields, columns=columns, pad=0), cmap="gray", vmin=0, vmax=1,
                interpolation="nearest")
    axis.set_title(f"{results.spec.name}: weights of the {rows * columns} units of "
                   f"{population}, on the sheet", fontsize=9)
    axis.axis("off")
    return figure


@styled
def plot_map_quality(results):
    """Quantisation and topographic errors over training."""
    metrics = results.metrics
    names = [name for name in metrics if name.endswith("quantisation_error")]
    if not names:
        return None
    figure, (top, bottom) = subplots(2, 1, figsize=(5.5, 4.2), sharex=True)
    for name in names:
        top.plot(results.steps, metrics[name], color=LEARNED, marker="o", ms=3)
        bottom.plot(results.steps, metrics[name.replace("quantisation", "topographic")],
                    color=OPTIMAL, marker="o", ms=3)
    top.set_ylabel("quantisation error\nmean ‖x − w_winner‖")
    bottom.set_ylabel("topographic error\n(fraction of inputs)")
    bottom.set_xlabel("training samples")
    bottom.xaxis.set_major_formatter(EngFormatter(sep=""))
    top.set_title(f"{results.spec.name}: map quality on {len(results.steps)} records")
    return figure

"""Figures of image-driven runs (receptive-field mosaics, Gabor statistics, training curves).

Rendered from a results file, like every figure (see :mod:`plasticsim.figures`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis.gabor import good_fits
from .figures import plot_mutual_information
from .mosaic import plot_mosaic
from .style import LEARNED, save, styled, subplots


@styled
def plot_gabor_histograms(tables: dict):
    """Histograms of SF bandwidth, orientation and aspect ratio of the good fits."""
    figure, axes = subplots(1, 3, figsize=(10, 3), layout="constrained")
    panels = (("sf_bandwidth_octaves", "SF bandwidth (octaves)", np.linspace(0, 4, 17)),
              ("orientation_deg", "orientation (°)", np.linspace(0, 180, 13)),
              ("aspect_ratio", "aspect ratio σy/σx", np.linspace(0, 4, 17)))
    for axis, (column, label, bins) in zip(axes, panels):
        for name, table in tables.items():
            values = good_fits(np.asarray(table))[column]
            values = np.clip(values[np.isfinite(values)], bins[0], bins[-1])
            if len(values):
                axis.hist(values, bins=bins, histtype="step", lw=1.6, density=True,
                          label=f"{name} ({len(values)} good fits)")
        axis.set_xlabel(label)
    axes[0].set_ylabel("density")
    figure.suptitle("Gabor fits (R² > 0.8, centre inside): SF bandwidth, orientation, "
                    "aspect ratio")
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(frameon=False, fontsize=7)
    return figure


@styled
def plot_nxny(sets: list, v1_edges: np.ndarray, v1_counts: np.ndarray):
    """nx–ny scatter of each population over the V1 histogram (shaded)."""
    figure, axis = subplots(figsize=(5, 4.6))
    mesh = axis.pcolormesh(v1_edges, v1_edges, v1_counts.T / v1_counts.sum(), cmap="Greys",
                           shading="flat", alpha=0.6)
    figure.colorbar(mesh, ax=axis, label="V1 fraction per bin (Ringach 2002)")
    for field_set, marker in zip(sets, ("o", "s", "^", "D", "v", "P")):
        good = good_fits(field_set.table)
        axis.scatter(np.clip(good["nx"], 0.05, 3), np.clip(good["ny"], 0.05, 3), s=12,
                     marker=marker, alpha=0.75, label=f"{field_set.name} ({len(good)})")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlim(0.05, 3)
    axis.set_ylim(0.05, 3)
    axis.plot([0.05, 3], [0.05, 3], color="0.6", lw=0.6)
    axis.axvline(0.30, color="0.4", lw=0.6, ls=":")
    axis.axhline(0.30, color="0.4", lw=0.6, ls=":")
    axis.set_xlabel("nx = σx·f")
    axis.set_ylabel("ny = σy·f")
    axis.legend(frameon=False, fontsize=7, loc="upper left")
    axis.set_title("Gabor envelope sizes of the good fits over macaque V1")
    return figure


@styled
def render_image_figures(results, directory: str | Path) -> list[Path]:
    """Write ``receptive_fields.png``, ``gabor_statistics.png`` and training curves."""
    directory = Path(directory)
    written = []

    def keep(figure, name):
        written.append(save(figure, directory / f"{name}.png"))

    for population, fields in results.receptive_fields.items():
        figure, axis = subplots(figsize=(5, 5))
        summary = results.summary
        fraction = summary.get("fraction_r2_above_0.9")
        subtitle = f"\n{100 * float(fraction):.0f}% of units with Gabor R² > 0.9" \
            if fraction is not None else ""
        plot_mosaic(axis, fields, f"{results.spec.name}: receptive fields of "
                                  f"{population}{subtitle}")
        keep(figure, "receptive_fields" if len(results.receptive_fields) == 1
             else f"receptive_fields_{population}")
        table = results.gabor.get(population)
        if table is not None and len(table):
            figure = plot_gabor_histograms({results.spec.name: table})
            keep(figure, "gabor_statistics")
    curves = [name for name in ("relative_residual", "active_fraction", "mean_rate",
                                "mean_threshold", "mean_lateral_weight", "mean_gain")
              if name in results.metrics]
    if curves:
        figure, axes = subplots(len(curves), 1, figsize=(5.5, 1.6 * len(curves) + 0.6),
                                    sharex=True, squeeze=False)
        for axis, name in zip(axes[:, 0], curves):
            axis.plot(results.steps, results.metrics[name], color=LEARNED)
            axis.set_ylabel(name.replace("_", " "), fontsize=8)
        axes[-1, 0].set_xlabel("training samples")
        keep(figure, "training")
    figure = plot_mutual_information(results)
    if figure is not None:
        keep(figure, "mutual_information")
    return written

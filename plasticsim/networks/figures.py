"""Figures of image-driven runs (receptive-field mosaics, Gabor statistics, training curves).

Rendered from a results file, like every figure (see :mod:`plasticsim.figures`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..figures import LEARNED, plot_mutual_information, plt


def mosaic_image(fields: np.ndarray, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile fields (units × h × w) into one image, each scaled to its own [−max, max] → [0, 1].

    Padding pixels are 0.5 (grey, the zero level), so the sign of every field is readable.
    """
    fields = np.asarray(fields, dtype=np.float64)
    n_units, height, width = fields.shape
    columns = columns or int(np.ceil(np.sqrt(n_units)))
    rows = int(np.ceil(n_units / columns))
    canvas = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad), 0.5)
    for unit, field in enumerate(fields):
        limit = np.max(np.abs(field)) or 1.0
        row, column = divmod(unit, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        canvas[top:top + height, left:left + width] = 0.5 + 0.5 * field / limit
    return canvas


def plot_mosaic(axis, fields: np.ndarray, title: str) -> None:
    axis.imshow(mosaic_image(fields), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.axis("off")


def render_image_figures(results, directory: str | Path) -> list[Path]:
    """Write ``receptive_fields.png``, ``gabor_statistics.png`` and training curves."""
    directory = Path(directory)
    written = []

    def save(figure, name):
        path = directory / f"{name}.png"
        figure.savefig(path, bbox_inches="tight")
        plt.close(figure)
        written.append(path)

    for population, fields in results.receptive_fields.items():
        figure, axis = plt.subplots(figsize=(5, 5))
        summary = results.summary
        fraction = summary.get("fraction_r2_above_0.9")
        subtitle = f"\n{100 * float(fraction):.0f}% of units with Gabor R² > 0.9" \
            if fraction is not None else ""
        plot_mosaic(axis, fields, f"{results.spec.name}: receptive fields of "
                                  f"{population}{subtitle}")
        save(figure, "receptive_fields" if len(results.receptive_fields) == 1
             else f"receptive_fields_{population}")
        table = results.gabor.get(population)
        if table is not None and len(table):
            from ..compare import plot_gabor_histograms
            figure = plot_gabor_histograms({results.spec.name: table})
            save(figure, "gabor_statistics")
    curves = [name for name in ("relative_residual", "active_fraction", "mean_rate",
                                "mean_threshold", "mean_lateral_weight", "mean_gain")
              if name in results.metrics]
    if curves:
        figure, axes = plt.subplots(len(curves), 1, figsize=(5.5, 1.6 * len(curves) + 0.6),
                                    sharex=True, squeeze=False)
        for axis, name in zip(axes[:, 0], curves):
            axis.plot(results.steps, results.metrics[name], color=LEARNED)
            axis.set_ylabel(name.replace("_", " "), fontsize=8)
        axes[-1, 0].set_xlabel("training samples")
        save(figure, "training")
    figure = plot_mutual_information(results)
    if figure is not None:
        save(figure, "mutual_information")
    return written

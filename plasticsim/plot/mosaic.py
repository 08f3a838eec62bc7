"""Receptive-field mosaics: many small fields tiled into one image, each on its own scale."""

from __future__ import annotations

import numpy as np


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

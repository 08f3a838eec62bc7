"""Figures of Linsker's (1986) layered development: example fields of every layer and the
leading eigenvectors of each layer's MacKay–Miller operator.

Built without pyplot (a :class:`matplotlib.figure.Figure`), like every figure here.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..analysis.linsker1986 import LayerDevelopment
from ..analysis.mackay_miller import gaussian_arbor

EXAMPLE_CELLS = 4
SHOWN_MODES = 2


def plot_layer_fields(layers: list[LayerDevelopment], radii: dict) -> Figure:
    """One row per layer: example final fields w = A·c, then the operator's leading modes.

    Parameters
    ----------
    layers : list of LayerDevelopment
        From :func:`plasticsim.analysis.linsker1986.analyze_linsker1986`.
    radii : dict
        Projection → (arbor radius, cutoff), to draw the eigenvectors as images.
    """
    columns = EXAMPLE_CELLS + SHOWN_MODES
    figure = Figure(figsize=(1.9 * columns, 2.1 * len(layers) + 0.6), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(layers), columns, squeeze=False))
    for row, layer in enumerate(layers):
        cells = np.linspace(0, len(layer.fields) - 1, EXAMPLE_CELLS).astype(int)
        images = [(layer.fields[cell], f"{layer.population} cell {cell}: {layer.kinds[cell]}")
                  for cell in cells]
        radius, cutoff = radii[layer.projection]
        arbor = gaussian_arbor(radius, cutoff)
        if layer.mode_vectors is not None:
            for index in range(min(SHOWN_MODES, len(layer.mode_vectors))):
                images.append((arbor.to_image(layer.mode_vectors[index]),
                               f"mode {index + 1}: {layer.leading_kinds[index]}, "
                               f"λ = {layer.eigenvalues[index]:.3f}"))
        for axis, (image, title) in zip(axes[row], images):
            scale = np.max(np.abs(image)) or 1.0
            extent = image.shape[0] // 2
            picture = axis.imshow(image, cmap="RdBu_r", vmin=-scale, vmax=scale,
                                  extent=(-extent - 0.5, extent + 0.5, extent + 0.5,
                                          -extent - 0.5))
            axis.set_title(title, fontsize=7)
            axis.set_xlabel("column offset (cells)", fontsize=6)
            axis.set_ylabel("row offset (cells)", fontsize=6)
            axis.tick_params(labelsize=6)
        figure.colorbar(picture, ax=axes[row, -1], shrink=0.7, label="w = A·c (scaled)")
        for axis in axes[row, len(images):]:
            axis.set_axis_off()
    total = sum(len(layer.fields) for layer in layers)
    figure.suptitle(f"Linsker 1986: example fields ({EXAMPLE_CELLS} of each layer's cells, "
                    f"{total} cells in {len(layers)} layers) and the leading MacKay–Miller "
                    "modes", fontsize=9)
    return figure

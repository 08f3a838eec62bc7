"""Orientation map of the reference SOM on Obermayer, Ritter & Schulten's feature space.

Obermayer, Ritter & Schulten (1990, *PNAS* 87:8345) trained a Kohonen map on a low-dimensional
feature space: retinal position (x, y) uniform over the sheet's extent and orientation
preference as the vector q·(cos 2φ, sin 2φ), φ uniform. The sheet's units keep their
retinotopy and form orientation columns with pinwheels. This script trains
:func:`plasticsim.analysis.som_metrics.train_reference_som` (the pure-NumPy oracle, no
engine) on that space and reports the map statistics of
:mod:`plasticsim.analysis.orientation_map`; it is a check of the analysis on a real SOM map
and a starting point for the engine's SOM protocol, not a shipped result.

Usage (from the repository root; ~40 s for the defaults on one core)::

    python benchmarks/som_feature_map.py [--side 40] [--q 4] [--steps 100000] [--figure map.png]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from plasticsim.analysis.orientation_map import analyze_orientation_map, find_pinwheels
from plasticsim.analysis.som_metrics import (quantization_error, sheet_coordinates,
                                             topographic_error, train_reference_som)


def feature_space(side: int, orientation_radius: float, n_samples: int,
                  rng: np.random.Generator) -> np.ndarray:
    """(x, y, q cos 2φ, q sin 2φ) samples: positions uniform over the sheet, φ uniform."""
    orientation = rng.uniform(0.0, np.pi, n_samples)
    return np.column_stack([rng.uniform(0, side - 1, n_samples),
                            rng.uniform(0, side - 1, n_samples),
                            orientation_radius * np.cos(2 * orientation),
                            orientation_radius * np.sin(2 * orientation)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=40, help="sheet side (units)")
    parser.add_argument("--q", type=float, default=4.0,
                        help="orientation radius q, in sheet units (larger: wider columns)")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--final-width", type=float, default=1.0, help="final σ (sheet units)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", help="write the colour-coded orientation map here (PNG)")
    arguments = parser.parse_args()

    side = arguments.side
    data_rng, train_rng = (np.random.default_rng(seed) for seed in
                           np.random.SeedSequence(arguments.seed).spawn(2))
    data = feature_space(side, arguments.q, 20_000, data_rng)
    # Start retinotopic with (almost) no orientation preference, as in the 1990 paper.
    initial = np.column_stack([sheet_coordinates((side, side)),
                               0.01 * data_rng.standard_normal((side * side, 2))])
    start = time.perf_counter()
    weights, steps, errors = train_reference_som(
        data, (side, side), arguments.steps, train_rng, rate=(0.1, 0.01),
        width=(5.0, arguments.final_width), initial_weights=initial)
    seconds = time.perf_counter() - start
    theta = ((0.5 * np.arctan2(weights[:, 3], weights[:, 2])) % np.pi).reshape(side, side)
    summary = analyze_orientation_map(theta)
    summary.update(topographic_error=topographic_error(data, weights, (side, side)),
                   quantization_error_initial=float(errors[0]),
                   quantization_error_final=quantization_error(data, weights),
                   training_seconds=seconds, **vars(arguments))
    print(json.dumps(summary, indent=2))
    if arguments.figure:
        from matplotlib.figure import Figure
        figure = Figure(figsize=(5.5, 5))
        axis = figure.subplots()
        image = axis.imshow(np.degrees(theta), cmap="hsv", vmin=0, vmax=180,
                            interpolation="nearest")
        pinwheels = find_pinwheels(theta)
        for charge, marker in ((1, "o"), (-1, "s")):
            chosen = pinwheels.charges == charge
            axis.scatter(pinwheels.columns[chosen], pinwheels.rows[chosen], marker=marker,
                         facecolors="none", edgecolors="k", s=30,
                         label=f"pinwheels {charge:+d} ({int(chosen.sum())})")
        figure.colorbar(image, ax=axis, label="preferred orientation (°)")
        axis.set_xlabel("sheet column")
        axis.set_ylabel("sheet row")
        axis.set_title(f"Reference SOM orientation map\nΛ = "
                       f"{summary['column_spacing_units']:.1f} units, "
                       f"{summary['pinwheel_density']:.2f} pinwheels/Λ²")
        axis.legend(loc="upper right", fontsize=7)
        figure.savefig(arguments.figure, bbox_inches="tight", dpi=90)


if __name__ == "__main__":
    main()

"""Simple and complex cells: F1/F0 of two layers and what the second layer pools.

A second layer that learns phase invariance (Földiák's trace rule,
:mod:`plasticsim.model.rules.foldiak_trace`) should turn simple cells (F1/F0 > 1 at the
preferred drifting grating; Skottun et al. 1991) into complex cells (F1/F0 < 1) by pooling
simple cells of one orientation and different phases — not of different orientations. This
module compares the grating-probe tuning (:mod:`plasticsim.analysis.gratings`) of a pooling
projection's pre (layer 1) and post (layer 2) populations, and measures, for each layer-2
unit, how far its preferred orientation lies from those of the layer-1 units it weights most.

Two forms of that comparison are reported. The headline one takes the unit's
:data:`DEFAULT_TOP_WEIGHTS` largest weights. The trace rule leaves the weights flat near the
top (w → ⟨x | ȳ⟩: a unit's 10–20 largest weights on the shipped run lie within 15% of each
other), so which four are largest is partly chance, and a unit that pools one band of
neighbouring orientations (about the width of a layer-1 tuning curve) often has its top four
on one flank of the band. The second form uses the whole weight profile: the circular mean
of the layer-1 preferred orientations on the doubled-angle circle, each weighted by how much
the unit weights that input above its median weight, ``max(w_j − median w, 0)`` (the part of
the weights the learning added to the untrained, uniform baseline). It still tests pooling
over phase rather than orientation: its resultant length R (1: every input it favours has
one orientation; ≈ 0: it favours inputs of all orientations alike) is reported with it, and
a unit that pooled across orientations would have a short resultant whose direction is
unrelated to the unit's own preferred orientation.

Orientation differences are taken modulo 180° and lie in [0°, 90°].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .gratings import GratingTuning

#: Layer-1 units per layer-2 unit whose orientations are compared (its largest weights): a
#: quadrature pair in both polarities, the smallest set that pools every phase.
DEFAULT_TOP_WEIGHTS = 4
#: Orientation agreement the issue asks of pooled units, degrees.
ORIENTATION_TOLERANCE_DEG = 15.0


@dataclass(frozen=True)
class ComplexCellComparison:
    """F1/F0 of two layers and the orientation agreement of layer 2 with what it pools.

    Attributes
    ----------
    layer1_ratio, layer2_ratio : numpy.ndarray
        F1/F0 at the preferred grating of each responsive unit of each layer.
    orientation_difference_deg : numpy.ndarray
        Per responsive layer-2 unit: the median over its ``top_weights`` largest-weight
        responsive layer-1 units of |Δ preferred orientation| (degrees, in [0, 90]).
    top_weights : int
    pooled_orientation_difference_deg : numpy.ndarray
        Per responsive layer-2 unit: |Δ| between its preferred orientation and the
        above-median-weighted circular mean orientation of its responsive inputs (module
        docstring), degrees in [0, 90]; NaN where no weight lies above the median.
    pooled_orientation_resultant : numpy.ndarray
        The resultant length of that circular mean, in [0, 1].
    """

    layer1_ratio: np.ndarray
    layer2_ratio: np.ndarray
    orientation_difference_deg: np.ndarray
    top_weights: int
    pooled_orientation_difference_deg: np.ndarray
    pooled_orientation_resultant: np.ndarray

    def summary(self, prefix: str = "complex_cells_") -> dict:
        """The figures the issue asks for, under ``prefix``."""
        def median(values):
            return float(np.median(values)) if values.size else float("nan")

        differences = self.orientation_difference_deg
        pooled = self.pooled_orientation_difference_deg
        return {
            prefix + "layer1_units": int(self.layer1_ratio.size),
            prefix + "layer2_units": int(self.layer2_ratio.size),
            prefix + "layer1_median_modulation_ratio": median(self.layer1_ratio),
            prefix + "layer2_median_modulation_ratio": median(self.layer2_ratio),
            prefix + "layer1_fraction_modulation_ratio_below_1": float(
                np.mean(self.layer1_ratio < 1)) if self.layer1_ratio.size else float("nan"),
            prefix + "layer2_fraction_modulation_ratio_below_1": float(
                np.mean(self.layer2_ratio < 1)) if self.layer2_ratio.size else float("nan"),
            prefix + "median_orientation_difference_deg": median(differences),
            prefix + "fraction_orientation_difference_within_15deg": float(
                np.mean(differences <= ORIENTATION_TOLERANCE_DEG)) if differences.size
            else float("nan"),
            prefix + "top_weights": int(self.top_weights),
            prefix + "median_pooled_orientation_difference_deg": median(pooled),
            prefix + "fraction_pooled_orientation_difference_within_15deg": float(
                np.mean(pooled <= ORIENTATION_TOLERANCE_DEG)) if pooled.size else float("nan"),
            prefix + "median_pooled_orientation_resultant": median(
                self.pooled_orientation_resultant),
        }


def orientation_difference_deg(first, second) -> np.ndarray:
    """|first − second| modulo 180°, in [0°, 90°] (orientations in degrees)."""
    difference = np.abs(np.asarray(first, float) - np.asarray(second, float)) % 180.0
    return np.minimum(difference, 180.0 - difference)


def pooled_orientation_deg(weights, orientations_deg) -> tuple[float, float]:
    """Circular mean (on the doubled-angle circle) of ``orientations_deg`` weighted by
    ``max(weights − median(weights), 0)``, and its resultant length in [0, 1].

    Returns ``(nan, nan)`` when no weight lies above the median (flat weights favour nothing).

    Examples
    --------
    >>> mean, length = pooled_orientation_deg([1.0, 1.0, 3.0, 3.0], [0.0, 90.0, 170.0, 10.0])
    >>> round(mean % 180.0, 6), round(length, 6)
    (0.0, 0.939693)
    """
    weights = np.asarray(weights, dtype=np.float64)
    excess = np.clip(weights - np.median(weights), 0.0, None)
    total = excess.sum()
    if not total > 0:
        return float("nan"), float("nan")
    vector = np.sum(excess * np.exp(2j * np.radians(np.asarray(orientations_deg, float))))
    return float(np.degrees(np.angle(vector)) / 2.0 % 180.0), float(abs(vector) / total)


def compare_layers(layer1: GratingTuning, layer2: GratingTuning, weights: np.ndarray,
                   top_weights: int = DEFAULT_TOP_WEIGHTS) -> ComplexCellComparison:
    """F1/F0 of both layers and each layer-2 unit's orientation against its largest inputs.

    Parameters
    ----------
    layer1, layer2 : GratingTuning
        Grating-probe tuning of the pre and post populations.
    weights : numpy.ndarray
        Pooling weights, shape (layer-2 units, layer-1 units).
    top_weights : int
        How many of a layer-2 unit's largest weights (onto responsive layer-1 units) to
        compare orientations with.

    Returns
    -------
    ComplexCellComparison

    Raises
    ------
    ValueError
        If the weights do not match the two layers.

    Examples
    --------
    >>> orientation_difference_deg([10.0, 170.0], [175.0, 80.0]).tolist()
    [15.0, 90.0]
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (layer2.unit_count, layer1.unit_count):
        raise ValueError(f"pooling weights of shape {weights.shape}; the layers have "
                         f"{layer2.unit_count} and {layer1.unit_count} units")
    if top_weights < 1:
        raise ValueError(f"top_weights = {top_weights}; expected at least 1")
    responsive1 = np.asarray(layer1.columns["responsive"], dtype=bool)
    responsive2 = np.asarray(layer2.columns["responsive"], dtype=bool)
    orientation1 = layer1.columns["preferred_orientation_deg"]
    orientation2 = layer2.columns["preferred_orientation_deg"]
    candidates = np.flatnonzero(responsive1)
    differences, pooled, resultants = [], [], []
    for unit in np.flatnonzero(responsive2):
        if candidates.size == 0:
            break
        row = weights[unit, candidates]
        strongest = candidates[np.argsort(row)[::-1][:top_weights]]
        differences.append(float(np.median(orientation_difference_deg(
            orientation2[unit], orientation1[strongest]))))
        mean_deg, resultant = pooled_orientation_deg(row, orientation1[candidates])
        pooled.append(float(orientation_difference_deg(orientation2[unit], mean_deg)))
        resultants.append(resultant)
    return ComplexCellComparison(
        layer1_ratio=np.asarray(layer1.columns["modulation_ratio"][responsive1], float),
        layer2_ratio=np.asarray(layer2.columns["modulation_ratio"][responsive2], float),
        orientation_difference_deg=np.asarray(differences, dtype=np.float64),
        top_weights=int(top_weights),
        pooled_orientation_difference_deg=np.asarray(pooled, dtype=np.float64),
        pooled_orientation_resultant=np.asarray(resultants, dtype=np.float64))


def complex_cell_summaries(results, tunings: dict) -> tuple[dict, dict]:
    """For each ``foldiak_trace`` projection whose pre and post populations were probed with
    gratings: the :meth:`ComplexCellComparison.summary` figures (prefix ``complex_cells_``,
    or ``<projection>_complex_cells_`` when there are several) and the per-unit arrays under
    ``/analysis/complex_cells/<projection>``.

    ``tunings``: population → :class:`GratingTuning` (what the grating summaries computed).
    """
    projections = [(name, p) for name, p in results.spec.model.projections.items()
                   if p.rule.kind == "foldiak_trace" and p.pre in tunings and p.post in tunings
                   and name in results.weights]
    summary, arrays = {}, {}
    for name, projection in projections:
        comparison = compare_layers(tunings[projection.pre], tunings[projection.post],
                                    results.weights[name])
        prefix = "complex_cells_" if len(projections) == 1 else f"{name}_complex_cells_"
        summary.update(comparison.summary(prefix))
        arrays[f"analysis/complex_cells/{name}"] = (
            {"layer1_modulation_ratio": comparison.layer1_ratio,
             "layer2_modulation_ratio": comparison.layer2_ratio,
             "orientation_difference_deg": comparison.orientation_difference_deg,
             "pooled_orientation_difference_deg":
                 comparison.pooled_orientation_difference_deg,
             "pooled_orientation_resultant": comparison.pooled_orientation_resultant},
            {"layer1": projection.pre, "layer2": projection.post,
             "top_weights": comparison.top_weights})
    return summary, arrays

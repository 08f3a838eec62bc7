"""Linsker's (1986) layered development read back from a results file, layer by layer.

For every projection with an arbor and rule ``linsker1986`` (its arbor matrix and constants
are stored under ``/structure/arbors/<projection>``), in order from the input:

* each cell's **field**, the synaptic-strength density w = A·c as an image centred on the
  cell (:func:`cell_fields`), and its class (:func:`plasticsim.analysis.mackay_miller.
  classify_field`): centre and surround sums, all-same-sign, centre-surround or angular;
* the fraction of synapses at a bound (Linsker's fields end saturated);
* the **MacKay–Miller operator** A(Q̃ + k₂J) of the layer, with Q̃ the normalised correlation
  function of its input layer computed from the fields below
  (:func:`plasticsim.analysis.mackay_miller.next_layer_correlation`, starting from
  the uncorrelated layer A), its leading eigenvectors and their classes;
* where the weights have not saturated: each cell's field at the last recorded snapshot
  before more than :data:`UNSATURATED_FRACTION` of the layer's synapses reached a bound
  (and after the weights grew tenfold from their initial noise), and its cosine with the
  operator's leading eigenvector (with the span of the leading family where the leading
  eigenvalue is degenerate, as the 2p pair is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np

from ..errors import DataError
from .mackay_miller import (CorrelationFunction, classify_field, correlation_matrix,
                            cosine_similarity, gaussian_arbor, leading_eigenvectors,
                            next_layer_correlation)

#: A snapshot counts as unsaturated while at most this fraction of its synapses sit at a bound.
UNSATURATED_FRACTION = 0.01
#: Eigenvalues within this relative distance of the largest belong to the leading family. The
#: 2p pair is exactly degenerate for a symmetric correlation function; one computed from
#: learned (noisy) fields splits it by ~1e-4, far less than the development can resolve
#: (over the ~30 time units before saturation a 1% difference changes the ratio by ~5%).
DEGENERACY_TOLERANCE = 0.01
#: A synapse within this fraction of its range (A·(c₊ − c₋)) from a bound counts as at it.
BOUND_TOLERANCE = 1e-6


@dataclass
class LayerDevelopment:
    """What one layer developed (see the module docstring).

    Attributes
    ----------
    projection, population : str
    k1, k2 : float
    fields : numpy.ndarray
        Final fields (cells, 2e+1, 2e+1).
    kinds : list of str
        Class of each final field.
    centre_sums, surround_sums : numpy.ndarray
    saturated_fraction : float
        Synapses at a bound, over all cells.
    eigenvalues : numpy.ndarray
        Leading eigenvalues of A(Q̃ + k₂J).
    leading_kinds : list of str
        Classes of the leading eigenvectors (with their angular order: ``"angular(1)"``).
    unsaturated_step : int or None
        Sample count of the snapshot the cosines are computed at (None: no unsaturated
        snapshot with grown weights was recorded).
    cosines : numpy.ndarray
        Per cell, |cos| between its field at ``unsaturated_step`` and the leading eigenvector.
    mode_vectors : numpy.ndarray or None
        The leading eigenvectors in w space over the arbor (count, n).
    """

    projection: str
    population: str
    k1: float
    k2: float
    fields: np.ndarray = field(repr=False)
    kinds: list = field(repr=False)
    centre_sums: np.ndarray = field(repr=False)
    surround_sums: np.ndarray = field(repr=False)
    saturated_fraction: float = 0.0
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0))
    leading_kinds: list = field(default_factory=list)
    unsaturated_step: int | None = None
    cosines: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    mode_vectors: np.ndarray | None = field(default=None, repr=False)

    def fraction(self, kind: str) -> float:
        """Fraction of cells whose final field is of class ``kind``."""
        return float(np.mean([k == kind for k in self.kinds]))

    @property
    def fraction_on_centre_off_surround(self) -> float:
        """Cells with centre sum > 0 and surround sum < 0."""
        return float(np.mean((self.centre_sums > 0) & (self.surround_sums < 0)))

    @property
    def fraction_off_centre_on_surround(self) -> float:
        """Cells with centre sum < 0 and surround sum > 0."""
        return float(np.mean((self.centre_sums < 0) & (self.surround_sums > 0)))


def cell_fields(weights: np.ndarray, pre_side: int, post_side: int, extent: int,
                periodic: bool) -> np.ndarray:
    """Each post cell's weights as a (2e+1)² image centred on its position on the pre sheet.

    Parameters
    ----------
    weights : numpy.ndarray
        (post_side², pre_side²), row-major sheets.
    pre_side, post_side : int
    extent : int
        e: the image covers offsets −e … e.
    periodic : bool
        Wrap around the pre sheet (else offsets off the sheet are 0).
    """
    weights = np.asarray(weights, dtype=np.float64)
    stride = pre_side // post_side
    offsets = np.arange(-extent, extent + 1)
    rows, columns = np.meshgrid(offsets, offsets, indexing="ij")
    images = np.zeros((post_side * post_side, 2 * extent + 1, 2 * extent + 1))
    for cell in range(post_side * post_side):
        target_rows = (cell // post_side) * stride + rows
        target_columns = (cell % post_side) * stride + columns
        if periodic:
            target_rows, target_columns = target_rows % pre_side, target_columns % pre_side
            images[cell] = weights[cell, target_rows * pre_side + target_columns]
        else:
            keep = ((target_rows >= 0) & (target_rows < pre_side) & (target_columns >= 0)
                    & (target_columns < pre_side))
            images[cell][keep] = weights[cell, target_rows[keep] * pre_side
                                         + target_columns[keep]]
    return images


def _saturated(weights: np.ndarray, arbor: np.ndarray, lower: float, upper: float) -> float:
    inside = arbor > 0
    tolerance = BOUND_TOLERANCE * (upper - lower) * arbor[inside]
    values, scale = weights[inside], arbor[inside]
    at_bound = ((values - lower * scale) <= tolerance) | ((upper * scale - values) <= tolerance)
    return float(np.mean(at_bound))


def _kind_name(result) -> str:
    return f"angular({result.angular_order})" if result.kind == "angular" else result.kind


def analyze_linsker1986(path, eigen_count: int = 4) -> list[LayerDevelopment]:
    """The development of every ``linsker1986`` layer of a run (see the module docstring).

    Parameters
    ----------
    path : str or Path
        A results file.
    eigen_count : int, default 4
        Leading eigenvectors to classify per layer.

    Returns
    -------
    list of LayerDevelopment
        From the layer nearest the input up; empty when the run has no such layer.
    """
    with h5py.File(path, "r") as file:
        if "structure/arbors" not in file:
            return []
        arbors = {name: (dataset[()], dict(dataset.attrs))
                  for name, dataset in file["structure/arbors"].items()}
        weights = {name: file[f"weights/{name}"][()] for name in arbors}
        steps = file["history/step"][()] if "history/step" in file else np.zeros(0, int)
        history = {name: file[f"history/weights/{name}"] for name in arbors
                   if f"history/weights/{name}" in file}
        snapshots = {name: _unsaturated_snapshot(history.get(name), steps, arbors[name])
                     for name in arbors}
        variances = {name: float(np.mean(np.diag(file[f"stimulus/{name}/signal_covariance"])))
                     for name in file.get("stimulus", {})
                     if "signal_covariance" in file[f"stimulus/{name}"]}
    correlations = {pre: CorrelationFunction.uncorrelated(variance)
                    for pre, variance in variances.items()}
    layers, remaining = [], dict(arbors)
    while remaining:
        ready = [name for name, (_, attributes) in remaining.items()
                 if attributes["pre"] in correlations]
        if not ready:
            raise DataError(f"{path}: the input correlation of {sorted(remaining)[0]!r} cannot "
                            "be traced back to a stimulus with a known covariance")
        for name in ready:
            matrix, attributes = remaining.pop(name)
            layer, output = _analyze_layer(name, matrix, attributes, weights[name],
                                           correlations[attributes["pre"]], snapshots[name],
                                           eigen_count)
            correlations[attributes["post"]] = output
            layers.append(layer)
    return layers


def _unsaturated_snapshot(dataset, steps, arbor_entry):
    """(step, weights) of the last record with grown but unsaturated weights, or None."""
    if dataset is None or len(steps) == 0:
        return None
    matrix, attributes = arbor_entry
    lower, upper = attributes["lower"], attributes["upper"]
    initial = np.linalg.norm(dataset[0])
    chosen = None
    for index in range(len(steps)):
        snapshot = dataset[index]
        if _saturated(snapshot, matrix, lower, upper) > UNSATURATED_FRACTION:
            break
        if np.linalg.norm(snapshot) > 10 * initial:   # grown well past the initial noise
            chosen = (int(steps[index]), snapshot)
    return chosen


def _leading_count(eigenvalues: np.ndarray) -> slice:
    """The leading eigenvalue's modes: one, or a degenerate family (the 2p pair cos φ, sin φ
    has one eigenvalue, and any combination of the two is the same mode rotated)."""
    top = eigenvalues[0]
    return slice(0, int(np.sum(eigenvalues >= top - DEGENERACY_TOLERANCE * abs(top))))


def _cosine_with_span(field: np.ndarray, modes: np.ndarray) -> float:
    """|cos| of the angle between a field and the span of ``modes`` (one mode: the plain
    |cos|)."""
    if len(modes) == 1:
        return cosine_similarity(field, modes[0])
    coefficients, *_ = np.linalg.lstsq(modes.T, field, rcond=None)
    norm = np.linalg.norm(field)
    if norm == 0:
        raise DataError("cosine with a mode family: the field is all zero")
    return float(np.linalg.norm(modes.T @ coefficients) / norm)


def _analyze_layer(name, matrix, attributes, final, correlation, snapshot, eigen_count):
    pre_side = int(round(np.sqrt(matrix.shape[1])))
    post_side = int(round(np.sqrt(matrix.shape[0])))
    arbor = gaussian_arbor(attributes["radius"], attributes["cutoff"])
    periodic = bool(attributes["periodic"])
    fields = cell_fields(final, pre_side, post_side, arbor.extent, periodic)
    classes = [classify_field(image) for image in fields]
    normalised = correlation.normalized()
    k2 = float(attributes["k2"])
    modes = leading_eigenvectors(correlation_matrix(normalised, arbor), arbor.density, k2,
                                 eigen_count)
    layer = LayerDevelopment(
        projection=name, population=attributes["post"], k1=float(attributes["k1"]), k2=k2,
        fields=fields, kinds=[_kind_name(c) for c in classes],
        centre_sums=np.array([c.centre_sum for c in classes]),
        surround_sums=np.array([c.surround_sum for c in classes]),
        saturated_fraction=_saturated(final, matrix, attributes["lower"], attributes["upper"]),
        eigenvalues=modes.eigenvalues,
        leading_kinds=[_kind_name(classify_field(arbor.to_image(v)))
                       for v in modes.density_vectors],
        mode_vectors=modes.density_vectors)
    if snapshot is not None:
        step, weights = snapshot
        early = cell_fields(weights, pre_side, post_side, arbor.extent, periodic)
        layer.unsaturated_step = step
        leading = modes.density_vectors[_leading_count(modes.eigenvalues)]
        layer.cosines = np.array([_cosine_with_span(arbor.from_image(image), leading)
                                  for image in early])
    return layer, next_layer_correlation(fields, correlation)


def linsker1986_summary(layers: list[LayerDevelopment]) -> dict:
    """Summary figures per layer, keys prefixed with the population name."""
    summary = {}
    for layer in layers:
        prefix = f"{layer.population}_linsker1986_"
        summary.update({
            prefix + "fraction_on_centre_off_surround": layer.fraction_on_centre_off_surround,
            prefix + "fraction_off_centre_on_surround": layer.fraction_off_centre_on_surround,
            prefix + "fraction_centre_surround": layer.fraction("centre-surround"),
            prefix + "fraction_all_same_sign": layer.fraction("all-same-sign"),
            prefix + "fraction_angular": float(np.mean([k.startswith("angular")
                                                        for k in layer.kinds])),
            prefix + "saturated_fraction": layer.saturated_fraction,
            prefix + "leading_eigenvalue": float(layer.eigenvalues[0]),
            prefix + "leading_mode_centre_surround": layer.leading_kinds[0] == "centre-surround",
        })
        if layer.cosines.size:
            summary[prefix + "unsaturated_step"] = layer.unsaturated_step
            summary[prefix + "min_cosine_leading_eigenvector"] = float(layer.cosines.min())
            summary[prefix + "median_cosine_leading_eigenvector"] = float(
                np.median(layer.cosines))
            summary[prefix + "fraction_cosine_above_0.99"] = float(np.mean(layer.cosines
                                                                           >= 0.99))
    return summary

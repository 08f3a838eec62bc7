"""Self-organising map units (Kohonen 1982): competition on a 2-D sheet with a neighbourhood.

Units sit on a sheet of ``sheet: [rows, columns]`` (row-major, unit = row·columns + column).
For each input x the best-matching unit i* (nearest weight vector of the population's one
feedforward projection) wins, and the population's activity is the neighbourhood of the
winner on the sheet, h_i = h(d(i, i*); σ) — ``gaussian`` exp(−d²/2σ²) or ``bubble`` (1 within
σ). Winner-take-all is the network idealisation of strong lateral inhibition; the Kohonen rule
on the projection (:mod:`plasticsim.model.rules.kohonen`), Δw_i = η h_i (x − w_i), is then a
neighbourhood-weighted Hebbian rule with a decay. The neighbourhood width σ shrinks from
``neighbourhood.initial`` to ``neighbourhood.final`` over the training samples
(``exponential``, ``linear`` or ``inverse``; it stays at ``initial`` during warm-up).

Quality, recorded at each record on a fixed set of ``monitor_samples`` inputs drawn once from
the stimulus: the quantisation error (mean ‖x − w_{i*}‖, Kohonen 2001) and the topographic
error (fraction of inputs whose two best-matching units are not sheet neighbours, Kiviluoto
1996). The geometry and quality functions here are also what :mod:`plasticsim.analysis`
uses.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import model_validator

from ...errors import DataError
from ...schema import PositiveFinite, SampleCount, Seed, Size, Spec
from ..registry import register_neuron

NEIGHBOURHOOD_KINDS = ("gaussian", "bubble")
SCHEDULE_KINDS = ("exponential", "linear", "inverse")
ADJACENCY_KINDS = ("von_neumann", "moore")
#: Seed of the held-out inputs the quality metrics use: fixed, so every run is scored alike.
MONITOR_SEED = 20241203


class NeighbourhoodSpec(Spec):
    """The neighbourhood h(d; σ) and its width schedule (σ in sheet spacings)."""

    kind: Literal["gaussian", "bubble"] = "gaussian"
    initial: PositiveFinite = 5.0
    final: PositiveFinite = 0.5
    schedule: Literal["exponential", "linear", "inverse"] = "exponential"

    @model_validator(mode="after")
    def _shrinks(self):
        if self.final > self.initial:
            raise ValueError(f"final width {self.final} > initial width {self.initial}; the "
                             "neighbourhood shrinks")
        return self


class SomPopulationSpec(Spec):
    """Self-organising map units on a ``sheet`` of rows × columns (= ``size``)."""

    kind: Literal["som"] = "som"
    size: Size
    sheet: tuple[Size, Size]
    periodic: bool = False
    neighbourhood: NeighbourhoodSpec = NeighbourhoodSpec()
    monitor_samples: SampleCount = 1000

    @model_validator(mode="after")
    def _sheet_holds_the_units(self):
        if self.sheet[0] * self.sheet[1] != self.size:
            raise ValueError(f"sheet {self.sheet[0]}×{self.sheet[1]} holds "
                             f"{self.sheet[0] * self.sheet[1]} units, not size {self.size}")
        return self


def _sheet(sheet_shape) -> tuple[int, int]:
    try:
        rows, columns = (int(side) for side in sheet_shape)
    except (TypeError, ValueError):
        raise DataError(f"sheet shape {sheet_shape!r}; expected (rows, columns)") from None
    if rows < 1 or columns < 1:
        raise DataError(f"sheet shape {sheet_shape!r}; expected positive rows and columns")
    return rows, columns


def sheet_coordinates(sheet_shape: tuple[int, int]) -> np.ndarray:
    """(row, column) of every unit, row-major, shape (rows·columns, 2), float."""
    rows, columns = _sheet(sheet_shape)
    row, column = np.divmod(np.arange(rows * columns), columns)
    return np.column_stack([row, column]).astype(np.float64)


def sheet_offsets(sheet_shape: tuple[int, int], periodic: bool = False) -> np.ndarray:
    """Row and column offsets between every pair of units, shape (units, units, 2).

    On a periodic sheet (torus) each offset is the shortest one around it.
    """
    rows, columns = _sheet(sheet_shape)
    coordinates = sheet_coordinates((rows, columns))
    offsets = coordinates[None, :, :] - coordinates[:, None, :]
    if periodic:
        period = np.array([rows, columns], dtype=np.float64)
        offsets -= period * np.rint(offsets / period)
    return offsets


def sheet_distances(sheet_shape: tuple[int, int], periodic: bool = False) -> np.ndarray:
    """Euclidean distance d(i, j) between units on the sheet, shape (units, units)."""
    return np.hypot(*np.moveaxis(sheet_offsets(sheet_shape, periodic), -1, 0))


def neighbourhood(distance: np.ndarray, width: float, kind: str = "gaussian") -> np.ndarray:
    """h(d; σ): ``gaussian`` exp(−d²/(2σ²)), or ``bubble`` 1 where d ≤ σ, else 0.

    Parameters
    ----------
    distance : numpy.ndarray
        Sheet distances to the winner(s), e.g. rows of :func:`sheet_distances`.
    width : float
        σ > 0, in units of the sheet spacing.
    kind : {"gaussian", "bubble"}

    Raises
    ------
    DataError
        If σ is not positive or ``kind`` is unknown.
    """
    if kind not in NEIGHBOURHOOD_KINDS:
        raise DataError(f"neighbourhood {kind!r}; expected one of {NEIGHBOURHOOD_KINDS}")
    if not width > 0:
        raise DataError(f"neighbourhood width {width!r}; expected σ > 0 (sheet units)")
    distance = np.asarray(distance, dtype=np.float64)
    if kind == "bubble":
        return (distance <= width).astype(np.float64)
    return np.exp(-(distance**2) / (2.0 * width**2))


def shrinking_schedule(initial: float, final: float, step, total_steps: int,
                       kind: str = "exponential") -> np.ndarray:
    """A value that shrinks from ``initial`` at step 0 to ``final`` at ``total_steps``.

    ``exponential``: initial·(final/initial)^(t/T), a constant factor per step (Ritter,
    Martinetz & Schulten 1992); ``linear``: initial + (final − initial)·t/T (the SOM
    Toolbox's radius); ``inverse``: initial / (1 + t/τ), τ = T / (initial/final − 1), which is
    plasticsim's ``annealed`` rate with that τ. Steps beyond T keep ``final``.

    Parameters
    ----------
    initial, final : float
        Values at the first and last step (positive; ``final`` ≤ ``initial``).
    step : int or numpy.ndarray
        Step(s) t.
    total_steps : int
        T > 0.
    kind : {"exponential", "linear", "inverse"}

    Returns
    -------
    numpy.ndarray
        The value at each step (0-d for a scalar step).

    Raises
    ------
    DataError
        For an unknown kind, non-positive values or T, or ``final`` > ``initial``.

    Examples
    --------
    >>> float(shrinking_schedule(8.0, 0.5, 50, 100))
    2.0
    """
    if kind not in SCHEDULE_KINDS:
        raise DataError(f"schedule {kind!r}; expected one of {SCHEDULE_KINDS}")
    if not (initial > 0 and final > 0 and final <= initial and total_steps > 0):
        raise DataError(f"schedule from {initial!r} to {final!r} over {total_steps!r} steps; "
                        "expected 0 < final ≤ initial and a positive number of steps")
    fraction = np.clip(np.asarray(step, dtype=np.float64) / total_steps, 0.0, 1.0)
    if kind == "exponential":
        return initial * (final / initial) ** fraction
    if kind == "linear":
        return initial + (final - initial) * fraction
    if final == initial:
        return np.full(fraction.shape, float(initial))
    return initial / (1.0 + fraction * (initial / final - 1.0))


def _check_data(data: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    data = np.atleast_2d(np.asarray(data, dtype=np.float64))
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or data.ndim != 2 or data.shape[1] != weights.shape[1]:
        raise DataError(f"inputs of shape {data.shape} and weights of shape {weights.shape}; "
                        "expected (samples, dimensions) and (units, dimensions)")
    if not (np.all(np.isfinite(data)) and np.all(np.isfinite(weights))):
        raise DataError("inputs or weights contain NaN or infinite values")
    return data, weights


def squared_distances(data: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """‖x − w_i‖² for every input and unit, shape (samples, units)."""
    data, weights = _check_data(data, weights)
    # Expanded form ‖x‖² − 2x·w + ‖w‖² (one matrix product); clipped, as round-off can
    # make an exact match slightly negative.
    squared = (np.sum(data**2, axis=1)[:, None] - 2.0 * data @ weights.T
               + np.sum(weights**2, axis=1)[None, :])
    return np.clip(squared, 0.0, None)


def best_matching_units(data: np.ndarray, weights: np.ndarray, count: int = 1) -> np.ndarray:
    """Indices of the ``count`` nearest units of every input, nearest first.

    Returns
    -------
    numpy.ndarray of int
        (samples, count). Ties go to the lower unit index.
    """
    squared = squared_distances(data, weights)
    if not 1 <= count <= squared.shape[1]:
        raise DataError(f"{count} best-matching units requested of {squared.shape[1]} units")
    return np.argsort(squared, axis=1, kind="stable")[:, :count]


def quantization_error(data: np.ndarray, weights: np.ndarray) -> float:
    """Mean Euclidean distance of the inputs to their best-matching unit."""
    squared = squared_distances(data, weights)
    return float(np.mean(np.sqrt(squared.min(axis=1))))


def topographic_error(data: np.ndarray, weights: np.ndarray, sheet_shape: tuple[int, int],
                      adjacency: str = "von_neumann", periodic: bool = False) -> float:
    """Fraction of inputs whose two best-matching units are not neighbours on the sheet.

    Parameters
    ----------
    data : numpy.ndarray
        (samples, dimensions).
    weights : numpy.ndarray
        (units, dimensions), units row-major on the sheet.
    sheet_shape : (int, int)
        (rows, columns); rows·columns must equal the number of units.
    adjacency : {"von_neumann", "moore"}
        Neighbours share an edge (4 per unit, the SOM Toolbox's rectangular lattice), or
        also a corner (8 per unit).
    periodic : bool, default False
        The sheet is a torus.

    Returns
    -------
    float
        In [0, 1].
    """
    if adjacency not in ADJACENCY_KINDS:
        raise DataError(f"adjacency {adjacency!r}; expected one of {ADJACENCY_KINDS}")
    rows, columns = _sheet(sheet_shape)
    weights = np.asarray(weights)
    if weights.ndim != 2 or len(weights) != rows * columns:
        raise DataError(f"weights of shape {weights.shape} for a {rows}×{columns} sheet; "
                        f"expected {rows * columns} units")
    if rows * columns < 2:
        raise DataError("a topographic error needs at least two units")
    first, second = best_matching_units(data, weights, count=2).T
    offsets = np.abs(sheet_offsets((rows, columns), periodic)[first, second])
    if adjacency == "von_neumann":
        adjacent = offsets.sum(axis=1) == 1
    else:
        adjacent = offsets.max(axis=1) == 1
    return float(np.mean(~adjacent))



def competition(inputs: np.ndarray, weights: np.ndarray, distances: np.ndarray, width: float,
                kind: str) -> np.ndarray:
    """The activity of SOM units: h(d(i, i*); σ) around each input's best-matching unit.

    Parameters
    ----------
    inputs : ndarray (batch, dimensions)
    weights : ndarray (units, dimensions)
    distances : ndarray (units, units)
        Sheet distances.
    width : float
        σ.
    kind : {"gaussian", "bubble"}

    Returns
    -------
    ndarray (batch, units)
    """
    squared = (np.sum(weights**2, axis=1)[None, :] - 2.0 * inputs @ weights.T)
    winners = np.argmin(squared, axis=1)   # ‖x‖² is the same for every unit; ties: lowest
    return neighbourhood(distances[winners], width, kind).astype(inputs.dtype)


@register_neuron(SomPopulationSpec)
def build_som(population, ctx) -> None:
    """activity ← neighbourhood of the winner (slot ``settle``); σ per step as a rate."""
    spec = population.spec
    if len(population.incoming) != 1:
        ctx.error(population.key, "a som population compares its input with the weights of "
                  f"exactly one projection into it (found {len(population.incoming)})")
    if population.recurrent:
        ctx.error(population.recurrent[0].key, "som units compete through winner-take-all; "
                  "a projection onto themselves is not used")
    projection = population.incoming[0]
    name = population.name
    distances = ctx.state(f"{name}.sheet_distances", (population.size, population.size),
                          sheet_distances(spec.sheet, spec.periodic), dtype="float64",
                          role="constant", description="distances between units on the sheet")
    activity = ctx.state(f"{name}.activity", (ctx.batch_size, population.size),
                         role="activity", description="neighbourhood of the winning unit "
                         "(batch × units)")
    population.output = population.learning_activity = activity
    neighbourhood_spec = spec.neighbourhood
    total = ctx.spec.schedule.samples

    def width(samples, spec=neighbourhood_spec, total=total):
        return shrinking_schedule(spec.initial, spec.final, samples, total, spec.schedule)
    rate = ctx.schedule_rate(f"{name}.neighbourhood_width", width)
    ctx.op("som_competition", "settle", population=population,
           reads={"input": projection.pre.output, "weights": projection.weights,
                  "distances": distances},
           writes={"target": activity}, parameters={"neighbourhood": neighbourhood_spec.kind},
           rate=rate, origin=f"{population.key}.neighbourhood")
    source = projection.pre.source
    if source is None:
        return
    monitor = source.sample(np.random.default_rng(MONITOR_SEED),
                            np.ones(spec.monitor_samples, dtype=bool))
    weights = projection.weights

    def quality(state, monitor=monitor):
        W = state[weights]
        return {"quantisation_error": quantization_error(monitor, W),
                "topographic_error": topographic_error(monitor, W, spec.sheet,
                                                       periodic=spec.periodic)}
    ctx.metric(("quantisation_error", "topographic_error"), quality, owner=name)
    ctx.result(f"structure/sheets/{name}", lambda state: np.asarray(spec.sheet),
               {"periodic": spec.periodic})

"""Reference mathematics of Kohonen's self-organising map (SOM), as pure NumPy functions.

The SOM (Kohonen 1982, *Biol Cybern* 43:59) is a local-rule network: units on a 2-D sheet
compete for each input x, the best-matching unit i* (nearest weight vector) wins, and every
unit moves toward x in proportion to its sheet neighbourhood of the winner,

    Δw_i = η(t) · h(i, i*; σ(t)) · (x − w_i),       h = exp(−d(i, i*)² / (2σ²)),

with d the distance between units on the sheet and both the rate η and the neighbourhood
width σ shrinking over training. This module holds the pieces an engine rule is built from
and checked against: sheet geometry, the neighbourhood function, shrinking schedules, the
update itself, the two standard quality measures, and :func:`train_reference_som`, a plain
online loop that serves as the oracle for engine implementations.

Symbols: W (units × dimensions) weights, one row w_i per unit; units are numbered row-major
on a sheet of (rows, columns), unit = row·columns + column.

Quality measures
----------------
quantisation error
    Mean distance ‖x − w_{i*}‖ of inputs to their best-matching unit (Kohonen 2001): how
    well the map represents the inputs. It falls as the map unfolds and σ shrinks.
topographic error
    Fraction of inputs whose best and second-best matching units are not sheet neighbours
    (Kiviluoto 1996, *Proc ICNN* 294): 0 for a map that preserves the inputs' topology, near
    1 for a scrambled one.
"""

from __future__ import annotations

import numpy as np

from plasticsim.errors import DataError
from plasticsim.model.neurons.som import (  # noqa: F401  (the geometry and quality measures)
    ADJACENCY_KINDS, NEIGHBOURHOOD_KINDS, SCHEDULE_KINDS, _check_data, _sheet,
    best_matching_units, neighbourhood,
    quantization_error, sheet_coordinates, sheet_distances, sheet_offsets, shrinking_schedule,
    squared_distances, topographic_error)


def som_update(weights: np.ndarray, sample: np.ndarray, winner: int,
               neighbourhood_weights: np.ndarray, rate: float) -> np.ndarray:
    """One Kohonen step: W + η·h[:, None]·(x − W), returned as a new array.

    Parameters
    ----------
    weights : numpy.ndarray
        (units, dimensions).
    sample : numpy.ndarray
        x, (dimensions,).
    winner : int
        i*, for the record (h already encodes it); checked against ``neighbourhood_weights``
        being largest there.
    neighbourhood_weights : numpy.ndarray
        h(i, i*) per unit, (units,).
    rate : float
        η.
    """
    weights = np.asarray(weights, dtype=np.float64)
    neighbourhood_weights = np.asarray(neighbourhood_weights, dtype=np.float64)
    if neighbourhood_weights.shape != (len(weights),):
        raise DataError(f"{neighbourhood_weights.shape} neighbourhood weights for "
                        f"{len(weights)} units")
    if neighbourhood_weights[winner] < neighbourhood_weights.max():
        raise DataError(f"the neighbourhood is not centred on the winner {winner}")
    return weights + rate * neighbourhood_weights[:, None] * (np.asarray(sample) - weights)


def train_reference_som(data: np.ndarray, sheet_shape: tuple[int, int], steps: int,
                        rng: np.random.Generator, rate: tuple[float, float] = (0.5, 0.01),
                        width: tuple[float, float] | None = None,
                        rate_schedule: str = "exponential",
                        width_schedule: str = "exponential",
                        neighbourhood_kind: str = "gaussian", periodic: bool = False,
                        record_every: int | None = None,
                        initial_weights: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Online SOM training, one input per step: the oracle for engine implementations.

    Each step draws x uniformly from ``data`` (with replacement), finds the winner, and
    applies :func:`som_update` with η(t) and σ(t) from :func:`shrinking_schedule`.

    Parameters
    ----------
    data : numpy.ndarray
        (samples, dimensions) pool of inputs.
    sheet_shape : (int, int)
        (rows, columns).
    steps : int
        Training steps T.
    rng : numpy.random.Generator
        Draws the initial weights (small, around the data mean, so the map starts unordered)
        and the input order.
    rate : (float, float), default (0.5, 0.01)
        η at the first and last step.
    width : (float, float), optional
        σ at the first and last step; default (max(rows, columns)/2, 0.5).
    rate_schedule, width_schedule : str
        :data:`SCHEDULE_KINDS`.
    neighbourhood_kind : str
        :data:`NEIGHBOURHOOD_KINDS`.
    periodic : bool, default False
        Sheet distances on a torus.
    record_every : int, optional
        Steps between quantisation-error records (over the whole ``data``); default T/10.
    initial_weights : numpy.ndarray, optional
        Start from these instead of random weights.

    Returns
    -------
    weights : numpy.ndarray
        (units, dimensions) after T steps.
    recorded_steps : numpy.ndarray
        Steps of the records, starting at 0 and ending at T.
    quantization_errors : numpy.ndarray
        :func:`quantization_error` over ``data`` at those steps.
    """
    rows, columns = _sheet(sheet_shape)
    data = np.atleast_2d(np.asarray(data, dtype=np.float64))
    if steps < 1:
        raise DataError(f"{steps} training steps; expected at least 1")
    width = (max(rows, columns) / 2.0, 0.5) if width is None else width
    record_every = max(1, steps // 10) if record_every is None else int(record_every)
    distances = sheet_distances((rows, columns), periodic)
    if initial_weights is None:
        spread = 0.01 * data.std(axis=0)
        weights = data.mean(axis=0) + spread * rng.standard_normal((rows * columns,
                                                                    data.shape[1]))
    else:
        weights = np.array(initial_weights, dtype=np.float64)
    _check_data(data, weights)
    rates = shrinking_schedule(rate[0], rate[1], np.arange(steps), steps - 1 or 1,
                               rate_schedule)
    widths = shrinking_schedule(width[0], width[1], np.arange(steps), steps - 1 or 1,
                                width_schedule)
    order = rng.integers(len(data), size=steps)
    recorded_steps, errors = [0], [quantization_error(data, weights)]
    for step in range(steps):
        sample = data[order[step]]
        winner = int(np.argmin(np.sum((weights - sample) ** 2, axis=1)))
        weights = som_update(weights, sample, winner,
                             neighbourhood(distances[winner], widths[step], neighbourhood_kind),
                             rates[step])
        if (step + 1) % record_every == 0 or step + 1 == steps:
            recorded_steps.append(step + 1)
            errors.append(quantization_error(data, weights))
    return weights, np.array(recorded_steps), np.array(errors)

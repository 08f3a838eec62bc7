"""Tests for plasticsim.analysis.som_metrics (SOM reference mathematics)."""

import numpy as np
import pytest

from plasticsim.analysis.som_metrics import (best_matching_units, neighbourhood,
                                             quantization_error, sheet_coordinates,
                                             sheet_distances, shrinking_schedule, som_update,
                                             topographic_error, train_reference_som)
from plasticsim.errors import DataError

#: Mean distance of a uniform point in a unit square cell to the cell's centre:
#: (√2 + ln(1 + √2))/6 = 0.3826 (the quantisation error of a perfect square lattice).
SQUARE_CELL_MEAN_DISTANCE = (np.sqrt(2) + np.log(1 + np.sqrt(2))) / 6


def test_sheet_geometry_is_row_major_and_wraps_on_a_torus():
    coordinates = sheet_coordinates((3, 4))
    assert coordinates[5].tolist() == [1.0, 1.0] and coordinates[11].tolist() == [2.0, 3.0]
    flat = sheet_distances((3, 4))
    torus = sheet_distances((3, 4), periodic=True)
    assert flat[0, 3] == 3.0 and torus[0, 3] == 1.0      # (0, 0)–(0, 3)
    assert flat[0, 11] == pytest.approx(np.hypot(2, 3))
    assert torus[0, 11] == pytest.approx(np.hypot(1, 1))
    np.testing.assert_array_equal(torus, torus.T)


def test_neighbourhood_function_values():
    distance = np.array([0.0, 1.5, 3.0])
    np.testing.assert_allclose(neighbourhood(distance, 1.5),
                               [1.0, np.exp(-0.5), np.exp(-2.0)])
    np.testing.assert_array_equal(neighbourhood(distance, 1.5, "bubble"), [1.0, 1.0, 0.0])
    with pytest.raises(DataError, match="σ > 0"):
        neighbourhood(distance, 0.0)
    with pytest.raises(DataError, match="expected one of"):
        neighbourhood(distance, 1.0, "mexican_hat")


def test_shrinking_schedules_reach_their_end_points():
    steps = np.array([0, 25, 100, 150])
    exponential = shrinking_schedule(8.0, 0.5, steps, 100)
    np.testing.assert_allclose(exponential, [8.0, 8.0 * (0.5 / 8.0) ** 0.25, 0.5, 0.5])
    np.testing.assert_allclose(shrinking_schedule(8.0, 0.5, steps, 100, "linear"),
                               [8.0, 6.125, 0.5, 0.5])
    inverse = shrinking_schedule(0.5, 0.01, steps, 100, "inverse")
    tau = 100 / (0.5 / 0.01 - 1)           # plasticsim's annealed rate η₀ / (1 + t/τ)
    np.testing.assert_allclose(inverse[:3], 0.5 / (1 + steps[:3] / tau))
    assert inverse[2] == pytest.approx(0.01)
    with pytest.raises(DataError, match="0 < final ≤ initial"):
        shrinking_schedule(0.5, 1.0, 0, 100)


def test_best_matching_units_and_quantization_error():
    weights = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    data = np.array([[0.2, 0.0], [2.1, 0.0], [2.9, 0.4]])
    assert best_matching_units(data, weights, count=2).tolist() == [[0, 1], [2, 1], [2, 1]]
    expected = np.mean([0.2, 0.9, np.hypot(0.1, 0.4)])
    assert quantization_error(data, weights) == pytest.approx(expected)
    assert quantization_error(weights, weights) == 0.0
    with pytest.raises(DataError, match="expected"):
        quantization_error(np.zeros((2, 3)), weights)


def test_topographic_error_of_an_ordered_and_a_shuffled_grid():
    rows, columns = 10, 12
    grid = sheet_coordinates((rows, columns))           # weights = sheet positions
    # Inputs inside the grid's hull: the two nearest lattice points always share an edge.
    data = np.random.default_rng(0).uniform([0, 0], [rows - 1, columns - 1], size=(5000, 2))
    assert topographic_error(data, grid, (rows, columns)) == 0.0
    shuffled = grid[np.random.default_rng(1).permutation(len(grid))]
    assert topographic_error(data, shuffled, (rows, columns)) > 0.8
    # A grid laid out with rows and columns swapped is a different sheet: mostly broken.
    transposed = sheet_coordinates((columns, rows))
    assert topographic_error(data, transposed[:, ::-1], (rows, columns)) > 0.3
    with pytest.raises(DataError, match="expected 121 units"):
        topographic_error(data, grid, (11, 11))


def test_moore_adjacency_counts_diagonal_neighbours():
    weights = sheet_coordinates((2, 2))
    # Units (0, 1) and (1, 0) moved far away: the two nearest units of inputs near (0.5, 0.5)
    # are (0, 0) and (1, 1), diagonal neighbours on the sheet.
    weights[[1, 2]] += 5.0
    data = np.array([[0.4, 0.45], [0.6, 0.55]])
    assert topographic_error(data, weights, (2, 2)) == 1.0
    assert topographic_error(data, weights, (2, 2), adjacency="moore") == 0.0


def test_som_update_moves_units_by_their_neighbourhood():
    weights = np.zeros((3, 2))
    h = np.array([1.0, 0.5, 0.0])
    updated = som_update(weights, np.array([2.0, -2.0]), 0, h, 0.1)
    np.testing.assert_allclose(updated, [[0.2, -0.2], [0.1, -0.1], [0.0, 0.0]])
    with pytest.raises(DataError, match="not centred on the winner"):
        som_update(weights, np.ones(2), 2, h, 0.1)


def test_reference_som_orders_into_a_grid_on_a_uniform_square():
    data = np.random.default_rng(0).uniform(size=(2000, 2))
    weights, steps, errors = train_reference_som(data, (10, 10), 10_000,
                                                 np.random.default_rng(1))
    assert topographic_error(data, weights, (10, 10)) < 0.05
    assert steps[0] == 0 and steps[-1] == 10_000
    # Quantisation error falls over training, to near a perfect 10×10 lattice's 0.038.
    assert errors[-1] < 0.2 * errors[0]
    assert np.all(np.diff(errors[3:]) < 0.01)
    assert errors[-1] == pytest.approx(SQUARE_CELL_MEAN_DISTANCE / 10, rel=0.2)
    again, _, _ = train_reference_som(data, (10, 10), 10_000, np.random.default_rng(1))
    np.testing.assert_array_equal(weights, again)


def test_an_untrained_map_is_not_ordered():
    data = np.random.default_rng(0).uniform(size=(2000, 2))
    weights, _, _ = train_reference_som(data, (10, 10), 1, np.random.default_rng(1),
                                        rate=(1e-6, 1e-6))
    assert topographic_error(data, weights, (10, 10)) > 0.5

"""Simple and complex cells (plasticsim.analysis.complex_cells) through the engine: an energy
unit pooling a quadrature pair of Gabor units in both polarities has F1/F0 = 0 while its
inputs are simple; the shipped protocol's second layer becomes orientation-selective complex
cells aligned with the simple cells it weights most."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PROTOCOLS

from plasticsim.analysis.complex_cells import (compare_layers, orientation_difference_deg,
                                               pooled_orientation_deg)
from plasticsim.analysis.gabor import gabor_patch
from plasticsim.analysis.gratings import analyze_grating_responses, drifting_gratings
from plasticsim.backends import build
from plasticsim.engine.builder import build_plan
from plasticsim.model.probes.gratings import run_gratings
from plasticsim.spec.loading import load_protocol

PROTOCOL = "complex_cells.yaml"
FREQUENCIES = [0.1, 0.15, 0.2]
KNOWN = ["model.populations.simple.size=4", "model.populations.complex.size=1",
         "schedule.samples=100", "record.every=100",
         f"probes.simple_gratings.spatial_frequencies={FREQUENCIES}",
         f"probes.complex_gratings.spatial_frequencies={FREQUENCIES}"]


def _probe(spec, plan, simulation, name):
    probe, entry = spec.probes[name], plan.info["probes"][name]
    measured = run_gratings(probe, entry, lambda inputs, population: simulation.respond(
        0, inputs, population), np.random.default_rng(0))
    gratings = drifting_gratings((12, 12), probe.spatial_frequencies, probe.orientations,
                                 probe.phases, probe.contrast)
    return analyze_grating_responses(measured["array"]["responses"], gratings, "spike_count")


@pytest.mark.parametrize("pooling, complex_ratio", [
    ([0.15, 0.15, 0.15, 0.15], (0.0, 0.05)),   # phases 0°, 90°, 180°, 270°: an energy unit
    ([0.6, 0.0, 0.0, 0.0], (1.5, 2.0)),        # one simple cell: still simple
])
def test_pooling_a_quadrature_pair_through_the_engine_gives_a_complex_cell(pooling,
                                                                           complex_ratio):
    """Four spiking Gabor units at 30° (a quadrature pair, both polarities) under the
    protocol's grating probe: each has F1/F0 > 1.5; a layer-2 unit summing all four is flat
    over the drift cycle (their counts sum to a signal of period a quarter cycle)."""
    spec = load_protocol(PROTOCOLS / PROTOCOL, KNOWN)
    plan = build_plan(spec)
    simulation = build(plan, "numpy")
    fields = np.stack([gabor_patch((12, 12), 5.5, 5.5, np.radians(30), 2.5, 3.0, 0.15,
                                   np.radians(phase)).ravel() for phase in (0, 90, 180, 270)])
    simulation.write("feedforward.weights",
                     (fields / np.linalg.norm(fields, axis=1, keepdims=True))[None])
    simulation.write("simple.thresholds", np.full((1, 4), 3.0))   # no saturation at c = √2
    simulation.write("complex.thresholds", np.ones((1, 1)))
    simulation.write("pooling.weights", np.array(pooling, float).reshape(1, 1, 4))
    simple = _probe(spec, plan, simulation, "simple_gratings")
    complex_ = _probe(spec, plan, simulation, "complex_gratings")
    assert np.all(simple.columns["modulation_ratio"] > 1.5)
    np.testing.assert_allclose(simple.columns["preferred_orientation_deg"], 30.0, atol=1.0)
    low, high = complex_ratio
    assert low <= complex_.columns["modulation_ratio"][0] <= high
    comparison = compare_layers(simple, complex_, np.array(pooling)[None], top_weights=4)
    assert comparison.orientation_difference_deg[0] < 1.0
    summary = comparison.summary()
    assert summary["complex_cells_layer1_median_modulation_ratio"] > 1.5
    assert summary["complex_cells_fraction_orientation_difference_within_15deg"] == 1.0


def test_orientation_differences_wrap_at_180_degrees():
    np.testing.assert_allclose(orientation_difference_deg([10.0, 170.0, 0.0, 45.0],
                                                          [175.0, 80.0, 90.0, 225.0]),
                               [15.0, 90.0, 90.0, 0.0])


def test_the_pooled_orientation_follows_the_weights_above_the_median():
    """Twelve inputs at 0°, 15°, …, 165°. Favouring four inputs near 30° (as phases of one
    orientation would be) gives their orientation and a long resultant; favouring 0° and 90°
    alike (pooling over orientation) gives a resultant near 0; flat weights favour nothing."""
    orientations = np.arange(12) * 15.0
    one_band = np.full(12, 0.2)
    one_band[[1, 2, 3]] = [0.5, 0.8, 0.5]                       # 15°, 30°, 45°
    mean, resultant = pooled_orientation_deg(one_band, orientations)
    assert orientation_difference_deg(mean, 30.0) < 1e-9 and resultant > 0.9
    two_orientations = np.full(12, 0.2)
    two_orientations[[0, 6]] = 1.0
    assert pooled_orientation_deg(two_orientations, orientations)[1] < 1e-9
    assert np.isnan(pooled_orientation_deg(np.full(12, 0.3), orientations)[0])


def test_pooling_weights_that_do_not_match_the_layers_are_refused():
    spec = load_protocol(PROTOCOLS / PROTOCOL, KNOWN)
    plan = build_plan(spec)
    simulation = build(plan, "numpy")
    tuning = _probe(spec, plan, simulation, "simple_gratings")
    with pytest.raises(ValueError, match="pooling weights of shape"):
        compare_layers(tuning, tuning, np.ones((3, 4)))


SHORT = ["schedule.samples=40000", "record.every=20000",
         "learning_rates.feedforward.window=[0, 20000]",
         "learning_rates.lateral.window=[0, 20000]",
         "learning_rates.pooling.window=[20000, 40000]",
         "learning_rates.pooling.initial=0.6",
         "learning_rates.complex_lateral.window=[20000, 40000]"]


def test_a_short_run_learns_oriented_complex_cells(run_protocol):
    """20,000 samples per layer, layer 2 at three times the shipped pooling rate (at the
    shipped rate 20,000 samples leave it near its untrained state: circular variance 0.62).
    Random pooling alone lowers F1/F0 (the untrained layer 2 of the full run: median 0.53)
    but leaves the units broadly tuned (median circular variance 0.59) and unrelated to their
    largest inputs (6% within 15°): the trace rule must give sharper tuning and agreement as
    well as F1/F0 below layer 1's (this run: 0.84, circular variance 0.41, 3 of 8 units)."""
    summary = run_protocol(PROTOCOL, *SHORT).summary
    layer1 = summary["complex_cells_layer1_median_modulation_ratio"]
    assert layer1 > 1.5
    assert summary["complex_cells_layer2_median_modulation_ratio"] < layer1 - 0.5
    assert summary["complex_gratings_median_circular_variance"] < 0.5
    assert summary["complex_cells_fraction_orientation_difference_within_15deg"] >= 0.25


@pytest.mark.slow
def test_the_full_run_meets_the_complex_cell_targets(run_protocol):
    """The shipped protocol (200,000 samples, seed 1; figures in the README): layer-1 median
    F1/F0 > 1, layer-2 median < 1 with ≥ 60% of units below 1, oriented layer-2 units every
    one of which has its preferred orientation within 15° of its four largest inputs' (on
    seed 1; seeds 1–10 in the README) and of its above-median-weighted inputs' mean."""
    summary = run_protocol(PROTOCOL).summary
    assert summary["complex_cells_layer1_median_modulation_ratio"] > 1.0
    assert summary["complex_cells_layer2_median_modulation_ratio"] < 1.0
    assert summary["complex_cells_layer2_fraction_modulation_ratio_below_1"] >= 0.6
    assert summary["complex_cells_median_orientation_difference_deg"] < 15.0
    assert summary["complex_cells_fraction_orientation_difference_within_15deg"] == 1.0
    assert summary["complex_cells_fraction_pooled_orientation_difference_within_15deg"] == 1.0
    assert summary["complex_cells_median_pooled_orientation_resultant"] > 0.6
    assert summary["complex_gratings_median_circular_variance"] < 0.3

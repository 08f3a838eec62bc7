"""Tests for the grating-probe figures: content, labels, and no global matplotlib state."""

import copy

import matplotlib
import numpy as np
import pytest

from plasticsim.analysis.gabor import gabor_patch
from plasticsim.analysis.gratings import drifting_gratings, measure_grating_tuning
from plasticsim.errors import DataError
from plasticsim.plot.gratings import (
    example_units,
    plot_tuning_curves,
    plot_tuning_histograms,
)

SHAPE = (16, 16)


@pytest.fixture(scope="module")
def tunings():
    """Layer 'simple': 5 Gabors and 1 silent unit; layer 'complex': 3 quadrature energy units
    and 1 radially symmetric (untuned) linear unit."""
    gratings = drifting_gratings(SHAPE, [0.08, 0.12, 0.18, 0.27], orientation_count=12,
                                 phase_count=8)
    angles = np.radians([0.0, 30.0, 60.0, 90.0, 150.0])
    gabors = [gabor_patch(SHAPE, 7.5, 7.5, theta, 2.5, 3.5, 0.12, 0.0) for theta in angles]
    simple_kernel = np.stack(gabors + [np.zeros(SHAPE)]).reshape(6, -1).T
    simple = measure_grating_tuning(lambda s: s @ simple_kernel, gratings)
    even = np.stack([gabor_patch(SHAPE, 7.5, 7.5, t, 2.5, 3.5, 0.12, 0.0) for t in angles[:3]])
    odd = np.stack([gabor_patch(SHAPE, 7.5, 7.5, t, 2.5, 3.5, 0.12, np.pi / 2)
                    for t in angles[:3]])
    y, x = np.indices(SHAPE) - 7.5
    blob = np.exp(-(x ** 2 + y ** 2) / 4.0).ravel()

    def complex_respond(s):
        energy = (s @ even.reshape(3, -1).T) ** 2 + (s @ odd.reshape(3, -1).T) ** 2
        return np.column_stack([energy, s @ blob])

    return {"simple": simple, "complex": measure_grating_tuning(complex_respond, gratings)}


def _texts(figure):
    texts = [figure.get_suptitle()]
    for axis in figure.axes:
        texts += [axis.get_title(), axis.get_xlabel(), axis.get_ylabel()]
    return texts


def test_histograms_count_every_responsive_unit_with_labels_and_titles(tunings):
    figure = plot_tuning_histograms(tunings)
    axes = figure.axes
    assert len(axes) == 6
    assert "2 layers, 10 units" in figure.get_suptitle()
    for axis in axes:
        assert axis.get_title() and axis.get_xlabel() and axis.get_ylabel() == "units"
    heights = [sum(patch.get_height() for patch in axis.patches) for axis in axes]
    # simple: 5 responsive of 6 (one silent); complex: 4 responsive, of which the blob is
    # untuned and drawn apart from the bandwidth histogram
    assert heights == [5, 5, 5, 4, 3, 4]
    assert "n = 5 units; 1 silent left out" in axes[0].get_title()
    assert "1 untuned, 180°" in axes[4].get_title()
    # the medians shown are the data's
    simple_ratio = tunings["simple"].columns["modulation_ratio"][:5]
    assert f"median {np.median(simple_ratio):.2f}" in axes[2].get_legend().get_texts()[0].get_text()


def test_tuning_curves_show_the_requested_units_normalised_to_their_peak(tunings):
    figure = plot_tuning_curves(tunings["simple"], units=[1, 3], population="layer 1")
    orientation_axis, frequency_axis = figure.axes
    assert "layer 1: 2 example units of 6" in figure.get_suptitle()
    lines = [line for line in orientation_axis.get_lines() if line.get_marker() == "o"]
    assert len(lines) == 2
    for line, unit in zip(lines, [1, 3]):
        x, y = line.get_data()
        assert x[0] == 0 and x[-1] == 180
        assert np.max(y) == pytest.approx(1.0)
        # unit 1 is the 30° Gabor and unit 3 the 90° one: the curves peak there
        assert x[np.argmax(y)] == pytest.approx([30.0, 90.0][[1, 3].index(unit)])
    assert frequency_axis.get_xscale() == "log"
    assert all(text for text in _texts(figure))


def test_default_examples_skip_silent_units_and_span_the_selectivity_range(tunings):
    picks = example_units(tunings["complex"], 3)
    variance = tunings["complex"].columns["circular_variance"]
    assert picks[0] == np.nanargmin(variance) and picks[-1] == np.nanargmax(variance)
    assert 5 not in example_units(tunings["simple"], 6)


def test_figures_leave_matplotlib_global_state_alone(tunings, tmp_path):
    backend = matplotlib.get_backend()
    parameters = copy.deepcopy(dict(matplotlib.rcParams))
    for figure in (plot_tuning_histograms(tunings), plot_tuning_curves(tunings["complex"])):
        figure.savefig(tmp_path / "figure.png")
        assert (tmp_path / "figure.png").stat().st_size > 1000
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == parameters


def test_bad_figure_requests_say_what_is_wrong(tunings):
    with pytest.raises(DataError, match="unit 9 does not exist .*6 units"):
        plot_tuning_curves(tunings["simple"], units=[0, 9])
    with pytest.raises(DataError, match="no layer given"):
        plot_tuning_histograms({})

"""The simple/complex comparison figure: both layers' F1/F0 with their unit counts, the
orientation agreement, labelled axes, and no global matplotlib state."""

import copy

import matplotlib
import numpy as np

from plasticsim.plot.complex_cells import plot_complex_cells


def test_figure_names_both_layers_their_unit_counts_and_its_axes():
    before = copy.deepcopy(dict(matplotlib.rcParams))
    backend = matplotlib.get_backend()
    figure = plot_complex_cells(np.array([1.6, 1.7, 1.8, 0.9]), np.array([0.2, 0.5, 1.2]),
                                np.array([3.0, 20.0, 8.0]), layer1="simple", layer2="complex")
    ratio_axis, orientation_axis = figure.axes
    legend = [text.get_text() for text in ratio_axis.get_legend().get_texts()]
    assert legend == ["simple (n = 4 units, median 1.65, 25% < 1)",
                      "complex (n = 3 units, median 0.50, 67% < 1)"]
    assert "n = 3 units, 67% within 15°" in orientation_axis.get_title()
    for axis in figure.axes:
        assert axis.get_xlabel() and axis.get_ylabel()
    assert figure.get_suptitle()
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == before

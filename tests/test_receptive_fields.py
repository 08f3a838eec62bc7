"""Tests for plasticsim.analysis.receptive_fields: orientation index and Gabor summary."""

import numpy as np

from plasticsim.analysis.gabor import gabor_patch
from plasticsim.analysis.receptive_fields import (
    orientation_selectivity_index,
    summarize_receptive_fields,
)


def _difference_of_gaussians(size=12, centre_sd=1.0, surround_sd=2.0):
    y, x = np.indices((size, size)) - (size - 1) / 2
    radius2 = x**2 + y**2
    return (np.exp(-radius2 / (2 * centre_sd**2))
            - (centre_sd / surround_sd) ** 2 * np.exp(-radius2 / (2 * surround_sd**2)))


def test_orientation_index_separates_gabors_from_centre_surround():
    gabors = np.stack([gabor_patch((12, 12), 5.5, 5.5, theta, 1.5, 3.0, 0.2, 0.0)
                       for theta in np.linspace(0, np.pi, 4, endpoint=False)])
    index = orientation_selectivity_index(np.concatenate([gabors,
                                                          _difference_of_gaussians()[None]]))
    assert np.all(index[:4] > 0.5)
    assert index[4] < 0.05


def test_summary_counts_every_unit_and_adds_the_orientation_index():
    fields = np.stack([gabor_patch((12, 12), 5.5, 5.5, 0.3, 1.5, 2.5, 0.2, 0.0),
                       np.zeros((12, 12))])
    summary, table = summarize_receptive_fields(fields)
    assert summary["n_units"] == 2 and summary["n_failed"] == 1
    assert summary["fraction_r2_above_0.9"] == 0.5
    assert len(table) == 2
    assert summary["median_orientation_selectivity_index"] > 0.5

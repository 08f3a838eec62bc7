"""Tests for drifting-grating probes and tuning measures, on units with known answers."""

import h5py
import numpy as np
import pytest

from plasticsim.analysis.gabor import gabor_patch
from plasticsim.analysis.gratings import (
    TABLE_COLUMNS,
    UNTUNED_BANDWIDTH_DEG,
    analyze_grating_responses,
    circular_variance,
    drifting_gratings,
    measure_grating_tuning,
    orientation_bandwidth,
    read_grating_tuning,
    write_grating_tuning,
)
from plasticsim.errors import DataError, SpecError

SHAPE = (24, 24)
FREQUENCIES = 2.0 ** np.linspace(np.log2(0.04), np.log2(0.4), 13)


def _linear_units(fields):
    """respond() of linear units with the given fields (units, h, w)."""
    kernel = np.asarray(fields).reshape(len(fields), -1).T
    return lambda stimuli: stimuli @ kernel


def _gabor(theta_deg, phase=0.0, frequency=0.12):
    return gabor_patch(SHAPE, 11.5, 11.5, np.radians(theta_deg), 3.0, 4.5, frequency, phase)


def _angle_difference(a_deg, b_deg):
    """Smallest difference between two orientations (period 180°)."""
    return np.abs((np.asarray(a_deg) - b_deg + 90.0) % 180.0 - 90.0)


def _synthetic_responses(gratings, f0, modulation=1.0, phase=0.3):
    """Responses whose F0 is ``f0`` (orientations × frequencies) and F1 = modulation·F0."""
    wave = 1 + modulation * np.cos(gratings.phases - phase)              # (phases,)
    return (np.asarray(f0)[:, :, None] * wave)[..., None]                # one unit


# --- the stimuli ----------------------------------------------------------------------------

def test_gratings_drift_along_their_wave_vector_at_the_stated_frequency():
    gratings = drifting_gratings((16, 16), [0.125], orientation_count=4, phase_count=16)
    horizontal = gratings.stimuli[0, 0]           # θ = 0: the wave vector points along x
    # two phase steps of 2π/16 move the crests by (π/4)/(2π·0.125) = 1 pixel along +x
    np.testing.assert_allclose(horizontal[2][:, 1:], horizontal[0][:, :-1], atol=1e-12)
    vertical = gratings.stimuli[2, 0]             # θ = 90°: along y (rows), same crests
    np.testing.assert_allclose(vertical[2][1:, :], vertical[0][:-1, :], atol=1e-12)
    spectrum = np.abs(np.fft.fft(horizontal[0][0]))
    assert np.argmax(spectrum[:8]) == 2           # 0.125 cycles/pixel × 16 pixels
    assert np.max(np.abs(gratings.stimuli)) == pytest.approx(1.0)


def test_grating_window_is_centred_and_the_rest_is_mean_luminance():
    gratings = drifting_gratings((20, 20), [0.1], orientation_count=4, contrast=0.5,
                                 grating_shape=(10, 12))
    stimulus = gratings.stimuli[1, 0, 3]
    assert np.all(stimulus[:5] == 0) and np.all(stimulus[15:] == 0)
    assert np.all(stimulus[:, :4] == 0) and np.all(stimulus[:, 16:] == 0)
    assert np.max(np.abs(stimulus[5:15, 4:16])) == pytest.approx(0.5, abs=0.05)
    assert gratings.flattened().shape == (4 * 1 * 16, 400)


# --- units with known answers ---------------------------------------------------------------

@pytest.mark.parametrize("theta_deg", [13.0, 47.0, 101.0, 166.0])
def test_gabor_unit_is_simple_and_prefers_its_carrier_orientation(theta_deg):
    gratings = drifting_gratings(SHAPE, FREQUENCIES)
    tuning = measure_grating_tuning(_linear_units([_gabor(theta_deg)]), gratings)
    columns = tuning.columns
    assert columns["modulation_ratio"][0] > 1.5                 # rectified linear: π/2
    assert _angle_difference(columns["preferred_orientation_deg"][0], theta_deg) < 2.0
    assert columns["circular_variance"][0] < 0.5
    # the carrier's frequency, up to the envelope's pull towards low frequencies
    assert columns["preferred_spatial_frequency"][0] == pytest.approx(0.12, rel=0.1)
    assert columns["sf_bandwidth_bounded"][0]
    assert 0.5 < columns["sf_bandwidth_octaves"][0] < 3.0
    assert 5.0 < columns["orientation_bandwidth_deg"][0] < 60.0


def test_odd_and_even_gabors_of_one_orientation_have_the_same_tuning():
    gratings = drifting_gratings(SHAPE, FREQUENCIES)
    tuning = measure_grating_tuning(
        _linear_units([_gabor(60.0, 0.0), _gabor(60.0, np.pi / 2)]), gratings)
    preferred = tuning.columns["preferred_orientation_deg"]
    assert _angle_difference(preferred, 60.0).max() < 2.0
    assert np.all(tuning.columns["modulation_ratio"] > 1.5)


@pytest.mark.parametrize("theta_deg", [22.0, 135.0])
def test_quadrature_energy_unit_is_complex(theta_deg):
    even, odd = _gabor(theta_deg, 0.0).ravel(), _gabor(theta_deg, np.pi / 2).ravel()

    def energy(stimuli):
        return ((stimuli @ even) ** 2 + (stimuli @ odd) ** 2)[:, None]

    tuning = measure_grating_tuning(energy, drifting_gratings(SHAPE, FREQUENCIES))
    assert tuning.columns["modulation_ratio"][0] < 0.1
    assert _angle_difference(tuning.columns["preferred_orientation_deg"][0], theta_deg) < 2.0
    # the same pair read as one rectified simple cell is strongly modulated: the probe
    # distinguishes the two, not the fields
    simple = measure_grating_tuning(lambda s: (s @ even)[:, None],
                                    drifting_gratings(SHAPE, FREQUENCIES))
    assert simple.columns["modulation_ratio"][0] > 1.5


def test_radially_symmetric_unit_is_untuned():
    y, x = np.indices(SHAPE) - 11.5
    radius2 = x ** 2 + y ** 2
    difference_of_gaussians = np.exp(-radius2 / (2 * 1.5 ** 2)) - 0.5 * np.exp(
        -radius2 / (2 * 3.0 ** 2))
    tuning = measure_grating_tuning(_linear_units([difference_of_gaussians]),
                                    drifting_gratings(SHAPE, FREQUENCIES))
    assert tuning.columns["circular_variance"][0] > 0.99
    assert tuning.columns["orientation_bandwidth_deg"][0] == UNTUNED_BANDWIDTH_DEG
    assert tuning.columns["modulation_ratio"][0] > 1.5          # still a linear (simple) unit


def test_silent_unit_is_marked_unresponsive_not_given_numbers():
    tuning = measure_grating_tuning(_linear_units([np.zeros(SHAPE), _gabor(30.0)]),
                                    drifting_gratings(SHAPE, FREQUENCIES[:4]))
    assert list(tuning.columns["responsive"]) == [False, True]
    assert np.isnan(tuning.columns["circular_variance"][0])
    assert np.isnan(tuning.columns["modulation_ratio"][0])
    assert np.isfinite(tuning.columns["circular_variance"][1])


# --- the measures on tuning curves with closed-form values ----------------------------------

@pytest.mark.parametrize("depth", [0.0, 0.4, 1.0])
def test_circular_variance_of_a_cosine_tuning_curve(depth):
    # r = 1 + a·cos 2(θ − θ0): |Σ r e^{2iθ}| = N·a/2 and Σ r = N, so CV = 1 − a/2 exactly
    theta = np.pi * np.arange(12) / 12
    curve = 1 + depth * np.cos(2 * (theta - np.radians(70.0)))
    variance, preferred = circular_variance(curve, theta)
    assert variance == pytest.approx(1 - depth / 2, abs=1e-12)
    if depth > 0:
        assert preferred == pytest.approx(70.0, abs=1e-9)


def test_circular_variance_of_one_orientation_is_zero():
    theta = np.pi * np.arange(12) / 12
    variance, preferred = circular_variance(np.eye(12)[4], theta)
    assert variance == pytest.approx(0.0, abs=1e-12)
    assert preferred == pytest.approx(60.0)


@pytest.mark.parametrize("sigma_deg", [10.0, 20.0])
def test_orientation_bandwidth_of_a_gaussian_tuning_curve(sigma_deg):
    # a Gaussian falls to 1/√2 of its peak at σ·√(ln 2)
    theta = np.pi * np.arange(24) / 24
    centre = 52.0
    distance = _angle_difference(np.degrees(theta), centre)
    curve = np.exp(-distance ** 2 / (2 * sigma_deg ** 2))
    expected = sigma_deg * np.sqrt(np.log(2))
    assert orientation_bandwidth(curve, theta) == pytest.approx(expected, abs=0.6)


def test_flat_tuning_curve_has_the_untuned_bandwidth():
    theta = np.pi * np.arange(24) / 24
    assert orientation_bandwidth(np.full(24, 3.0), theta) == UNTUNED_BANDWIDTH_DEG
    assert orientation_bandwidth(1 + 0.1 * np.cos(2 * theta), theta) == UNTUNED_BANDWIDTH_DEG


def test_spatial_frequency_peak_and_octave_bandwidth_of_a_log_gaussian_unit():
    gratings = drifting_gratings((8, 8), FREQUENCIES, orientation_count=8, phase_count=8)
    sigma_octaves, preferred = 0.6, 0.13
    sf_curve = np.exp(-np.log2(gratings.spatial_frequencies / preferred) ** 2
                      / (2 * sigma_octaves ** 2))
    orientation_curve = np.exp(-_angle_difference(np.degrees(gratings.orientations), 45.0) ** 2
                               / (2 * 20.0 ** 2))
    responses = _synthetic_responses(gratings, np.outer(orientation_curve, sf_curve),
                                     modulation=0.5)
    tuning = analyze_grating_responses(responses, gratings, response_kind="spike_count")
    columns = tuning.columns
    # full width at half height of a Gaussian in log₂ f: 2·√(2 ln 2)·σ
    assert columns["sf_bandwidth_octaves"][0] == pytest.approx(
        2 * np.sqrt(2 * np.log(2)) * sigma_octaves, rel=0.03)
    assert columns["sf_bandwidth_bounded"][0]
    assert columns["preferred_spatial_frequency"][0] == pytest.approx(preferred, rel=0.02)
    assert columns["modulation_ratio"][0] == pytest.approx(0.5, abs=1e-12)
    assert columns["preferred_orientation_deg"][0] == pytest.approx(45.0, abs=1e-6)
    np.testing.assert_allclose(tuning.spatial_frequency_tuning[0], sf_curve * 1.0, atol=1e-12)


def test_low_pass_unit_reports_a_lower_bound_on_sf_bandwidth():
    gratings = drifting_gratings((8, 8), FREQUENCIES, orientation_count=8, phase_count=8)
    sf_curve = np.exp(-gratings.spatial_frequencies / 0.1)        # falls from the lowest f
    responses = _synthetic_responses(gratings, np.outer(np.ones(8) + np.eye(8)[2], sf_curve))
    columns = analyze_grating_responses(responses, gratings, "spike_count").columns
    assert not columns["sf_bandwidth_bounded"][0]
    assert columns["preferred_spatial_frequency"][0] == pytest.approx(FREQUENCIES[0])
    # half height is reached at f = 0.04 + 0.1·ln 2 on the high side
    assert columns["sf_bandwidth_octaves"][0] == pytest.approx(
        np.log2((0.04 + 0.1 * np.log(2)) / 0.04), rel=0.03)


def test_rates_are_rectified_and_spike_counts_are_not():
    gratings = drifting_gratings((8, 8), [0.1, 0.2], orientation_count=4, phase_count=8)
    modulation = np.cos(gratings.phases)[None, None, :, None] * np.ones((4, 2, 1, 1))
    rate = analyze_grating_responses(modulation, gratings, "rate")
    assert rate.columns["modulation_ratio"][0] == pytest.approx(np.pi / 2, rel=0.06)
    counts = analyze_grating_responses(3 + 2 * modulation, gratings, "spike_count")
    assert counts.columns["modulation_ratio"][0] == pytest.approx(2 / 3, abs=1e-12)
    with pytest.raises(DataError, match="negative spike counts"):
        analyze_grating_responses(modulation, gratings, "spike_count")


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("frequency", [0.5, 0.7])
def test_frequencies_at_or_above_nyquist_are_refused(frequency):
    with pytest.raises(SpecError, match=r"^spatial_frequencies: .*Nyquist") as error:
        drifting_gratings(SHAPE, [0.1, frequency])
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("frequencies", [[0.0], [-0.1], [np.nan], [], [0.1, 0.1]])
def test_meaningless_frequencies_are_refused(frequencies):
    with pytest.raises(SpecError, match=r"^spatial_frequencies: "):
        drifting_gratings(SHAPE, frequencies)


def test_grating_larger_than_the_input_is_refused():
    with pytest.raises(SpecError, match=r"^grating_shape: a 24×30 grating is larger than the "
                                        r"24×24 input"):
        drifting_gratings(SHAPE, [0.1], grating_shape=(24, 30))


@pytest.mark.parametrize("arguments, key", [({"orientation_count": 3}, "orientation_count"),
                                            ({"phase_count": 2}, "phase_count"),
                                            ({"contrast": 0.0}, "contrast"),
                                            ({"input_shape": (0, 4)}, "input_shape")])
def test_other_bad_grating_arguments_name_the_argument(arguments, key):
    call = {"input_shape": SHAPE, "spatial_frequencies": [0.1], **arguments}
    with pytest.raises(SpecError, match=rf"^{key}: "):
        drifting_gratings(**call)


def test_bad_responses_are_refused_in_one_line():
    gratings = drifting_gratings((8, 8), [0.1], orientation_count=4, phase_count=4)
    with pytest.raises(DataError, match="expected shape"):
        analyze_grating_responses(np.zeros((15, 2)), gratings)
    broken = np.ones((16, 2))
    broken[5, 1] = np.nan
    with pytest.raises(DataError, match="non-finite response of unit 1"):
        analyze_grating_responses(broken, gratings)
    with pytest.raises(DataError, match=r"respond\(\) returned shape"):
        measure_grating_tuning(lambda stimuli: stimuli.sum(axis=1), gratings)
    with pytest.raises(SpecError, match="^response_kind: "):
        analyze_grating_responses(np.ones((16, 2)), gratings, "voltage")


# --- storage --------------------------------------------------------------------------------

def test_tuning_round_trips_through_the_results_layout(tmp_path):
    gratings = drifting_gratings(SHAPE, FREQUENCIES[::3], orientation_count=12)
    tuning = measure_grating_tuning(_linear_units([_gabor(30.0), _gabor(120.0)]), gratings)
    path = tmp_path / "results.h5"
    write_grating_tuning(path, "layer1", tuning)
    write_grating_tuning(path, "layer1", tuning)               # replacing is allowed
    with h5py.File(path, "r") as file:
        assert set(file["analysis/gratings/layer1"]) == {
            "table", "mean_response", "first_harmonic", "orientations_deg",
            "spatial_frequencies"}
        assert file["analysis/gratings/layer1/table"].dtype.names == TABLE_COLUMNS
    back = read_grating_tuning(path, "layer1")
    np.testing.assert_array_equal(back.mean_response, tuning.mean_response)
    for name in TABLE_COLUMNS:
        np.testing.assert_array_equal(back.columns[name], tuning.columns[name])
    assert back.response_kind == "rate" and back.phase_count == 16
    with pytest.raises(DataError, match=r"no grating analysis for population 'layer2' "
                                        r"\(present: layer1\)"):
        read_grating_tuning(path, "layer2")

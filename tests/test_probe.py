"""``plasticsim probe RESULTS.h5 --gratings POPULATION`` (plasticsim.probe): gratings shown to a
trained network rebuilt from its results file, the tuning stored and plotted; bad probes
end with one line naming the option, exit 2, and leave the file as it was."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
from conftest import PROTOCOLS

import plasticsim
from plasticsim.analysis.gratings import (drifting_gratings, measure_grating_tuning,
                                          read_grating_tuning)
from plasticsim.cli import main

FREQUENCIES = [0.1, 0.15, 0.2, 0.3]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short Linsker run on image patches (8×8 input, 64 output units)."""
    out = tmp_path_factory.mktemp("probe")
    plasticsim.run(PROTOCOLS / "linsker_image_patches.yaml", out, overwrite=True,
                   progress=False, figures=False,
                   overrides=["schedule.samples=500", "schedule.warmup_samples=0",
                              "record.every=500", "stimuli.input.covariance_samples=2000"])
    return out / "results.h5"


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_probe_measures_the_trained_weights_and_stores_the_tuning(trained, capsys):
    assert main(["probe", str(trained), "--gratings", "output", "--spatial-frequencies",
                 *map(str, FREQUENCIES), "--orientations", "12", "--phases", "8"]) == 0
    printed = capsys.readouterr().out
    assert "/analysis/gratings/output" in printed and "median_circular_variance" in printed
    stored = read_grating_tuning(trained, "output")
    # The same measure computed directly from the final weights: Z = C x (the population's
    # output, what the probe reads); the initial weights would give other fields.
    with h5py.File(trained, "r") as file:
        weights = file["weights/feedforward"][()]
        assert file["probes/gratings_output"].attrs["population"] == "output"
        assert "output_gratings_median_circular_variance" in file["summary"]
    direct = measure_grating_tuning(lambda stimuli: stimuli @ weights.T,
                                    drifting_gratings((8, 8), FREQUENCIES, 12, 8))
    np.testing.assert_allclose(stored.mean_response, direct.mean_response, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(stored.columns["circular_variance"],
                               direct.columns["circular_variance"], rtol=1e-10)
    figures = trained.parent / "figures"
    assert (figures / "grating_tuning.png").is_file()
    assert (figures / "grating_tuning_curves_output.png").is_file()


@pytest.mark.parametrize("arguments, option, words", [
    (["--gratings", "nowhere"], "--gratings", "no population named 'nowhere'"),
    (["--gratings", "output", "--grating-size", "9", "9"], "--grating-size", "larger than"),
    (["--gratings", "output", "--spatial-frequencies", "0.1", "0.5"],
     "--spatial-frequencies", "Nyquist"),
    (["--gratings", "output", "--orientations", "2"], "--orientations", "4"),
])
def test_bad_probes_name_the_option_and_leave_the_file(trained, arguments, option, words,
                                                       capsys):
    before = _digest(trained)
    assert main(["probe", str(trained), *arguments, "--no-figures"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{option}:" in error and words in error
    assert _digest(trained) == before
    assert not trained.with_name("results.h5.probe-partial").exists()


def test_a_missing_or_incomplete_file_is_one_line(tmp_path, capsys):
    assert main(["probe", str(tmp_path / "none.h5"), "--gratings", "output"]) == 2
    assert "results file not found" in capsys.readouterr().err


def test_the_probe_defaults_to_the_protocols_own_grating_settings(tmp_path, capsys):
    """A protocol that probes ``output`` at contrast 2 over its own frequencies: probing again
    without options measures those gratings (the summary's figure), not the defaults
    (contrast 1, seven frequencies); an option given still wins."""
    plasticsim.run(PROTOCOLS / "linsker_image_patches.yaml", tmp_path, overwrite=True,
                   progress=False, figures=False,
                   overrides=["schedule.samples=500", "schedule.warmup_samples=0",
                              "record.every=500", "stimuli.input.covariance_samples=2000",
                              "probes.declared.kind=gratings",
                              "probes.declared.population=output",
                              "probes.declared.contrast=2.0",
                              f"probes.declared.spatial_frequencies={FREQUENCIES}",
                              "probes.declared.orientations=12", "probes.declared.phases=8"])
    path = tmp_path / "results.h5"
    with h5py.File(path, "r") as file:
        weights = file["weights/feedforward"][()]
    for options, contrast in (([], 2.0), (["--contrast", "0.5"], 0.5)):
        assert main(["probe", str(path), "--gratings", "output", "--no-figures",
                     *options]) == 0
        with h5py.File(path, "r") as file:
            assert file["probes/gratings_output"].attrs["contrast"] == contrast
        direct = measure_grating_tuning(lambda stimuli: stimuli @ weights.T,
                                        drifting_gratings((8, 8), FREQUENCIES, 12, 8,
                                                          contrast))
        np.testing.assert_allclose(read_grating_tuning(path, "output").mean_response,
                                   direct.mean_response, rtol=1e-10, atol=1e-12)
    capsys.readouterr()

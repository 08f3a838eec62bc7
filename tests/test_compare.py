"""Tests for plasticsim.compare and the `plasticsim compare` command."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import plasticsim
from plasticsim.analysis.gabor import gabor_patch
from plasticsim.analysis.v1_reference import load_ringach2002
from plasticsim.cli import main
from plasticsim.compare import compare, load_field_set

ROOT = Path(__file__).resolve().parents[1]
A144 = ROOT.parent / "shared" / "data" / "olshausen" / "A144.mat"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    plasticsim.run(ROOT / "protocols" / "olshausen_field_image_patches.yaml", out,
                   progress=False, figures=False, overrides=[
                       "model.populations.input.size=64",
                       "model.populations.coefficients.size=64",
                       "stimuli.input.patch_size=8", "schedule.samples=2000",
                       "record.every=1000",
                       # The baselines' thresholds below were set on these photographs; on
                       # the dead-leaves default ICA's fields fit Gabors less often (39%
                       # R² > 0.9 against PCA's 9%, 5000 patches of 8×8).
                       "stimuli.input.source={kind: skimage}"])
    return out


def gabor_dictionary(path, blob_like: bool):
    """A pixels × units .mat dictionary of known Gabors (column-major like MATLAB)."""
    sigma, frequency = (1.2, 0.15) if blob_like else (2.0, 0.2)   # nx = 0.18 or 0.40
    fields = [gabor_patch((12, 12), 5.5, 5.5, theta, sigma, sigma, frequency, 0.0)
              for theta in np.linspace(0, np.pi, 12, endpoint=False)]
    scipy.io.savemat(path, {"A": np.stack([f.ravel(order="F") for f in fields], axis=1)})


def test_report_files_and_table_against_a_known_dictionary(tmp_path, small_run):
    gabor_dictionary(tmp_path / "blobs.mat", blob_like=True)
    report = compare(small_run, tmp_path / "blobs.mat", out=tmp_path / "report")
    for name in ("mosaics.png", "nxny.png", "gabor_histograms.png", "report.md",
                 "report.json"):
        assert (tmp_path / "report" / name).is_file()
    blobs = report["populations"]["blobs"]
    assert blobs["fraction_r2_above_0.9"] == 1.0
    assert blobs["blob_like_fraction"] == 1.0
    # All 12 blobs sit in the V1 bin nx, ny ∈ [0.174, 0.302), so the TV distance is one
    # minus V1's share of that bin (9 of 79 cells).
    edges, counts = load_ringach2002()
    assert blobs["tv_distance_to_v1"] == pytest.approx(1 - counts[1, 1] / counts.sum())
    run_row = report["populations"][next(iter(report["populations"]))]
    assert "tv_distance_to_reference" in run_row
    assert json.loads((tmp_path / "report" / "report.json").read_text())["v1"]["n_units"] == 79
    assert "| fraction R² > 0.9 |" in (tmp_path / "report" / "report.md").read_text()


def test_packaged_reference_needs_no_shared_data():
    reference = load_field_set("olshausen-field")
    assert reference.fields.shape == (144, 12, 12)
    assert np.mean(reference.table["r_squared"] > 0.9) >= 0.7


@pytest.mark.skipif(not A144.is_file(), reason=f"Olshausen's A144.mat is not at {A144}")
def test_a144_is_read_in_matlab_column_order():
    field_set = load_field_set(A144)
    assert field_set.fields.shape == (144, 12, 12)
    assert np.mean(field_set.table["r_squared"] > 0.9) >= 0.75


def test_cli_writes_the_report(tmp_path, small_run, capsys):
    assert main(["compare", str(small_run), "--out", str(tmp_path / "cli")]) == 0
    assert "R² > 0.9" in capsys.readouterr().out
    assert (tmp_path / "cli" / "report.md").is_file()


@pytest.mark.parametrize("make, named", [
    (lambda d: d / "missing.h5", "missing.h5"),
    (lambda d: (scipy.io.savemat(d / "x.mat", {"B": np.zeros((10, 3))}), d / "x.mat")[1],
     "x.mat"),
])
def test_bad_reference_is_one_line_with_exit_code_2(tmp_path, small_run, capsys, make, named):
    code = main(["compare", str(small_run), "--reference", str(make(tmp_path)),
                 "--out", str(tmp_path / "r")])
    error = capsys.readouterr().err
    assert code == 2 and named in error and len(error.strip().splitlines()) == 1


def test_pca_and_ica_baselines_are_columns_fitted_to_the_runs_patches(tmp_path, small_run):
    report = compare(small_run, baselines=["pca", "ica"], baseline_patches=5000,
                     out=tmp_path / "baselines")
    names = list(report["populations"])
    assert names[1:] == ["PCA (baseline)", "ICA (baseline)"]
    pca, ica = report["populations"]["PCA (baseline)"], report["populations"]["ICA (baseline)"]
    assert pca["n_units"] == ica["n_units"] == 64   # as many components as the run's units
    # On whitened natural patches PCA's fields fill the patch (an even spread over 8×8 is
    # sqrt(126/12) = 3.24 px) and ICA's are localised and fit Gabors far better.
    assert pca["median_energy_spread_px"] > 3.0
    assert ica["median_energy_spread_px"] < 0.8 * pca["median_energy_spread_px"]
    assert ica["fraction_r2_above_0.9"] > pca["fraction_r2_above_0.9"] + 0.3
    assert "64 components on 5000 patches" in report["baselines"]["ICA (baseline)"]
    text = (tmp_path / "baselines" / "report.md").read_text()
    assert "| PCA (baseline) | ICA (baseline) | macaque V1 |" in text
    assert "median energy spread" in text


def test_cli_baselines_and_their_errors(tmp_path, small_run, capsys):
    assert main(["compare", str(small_run), "--baseline", "pca", "--baseline-patches", "2000",
                 "--out", str(tmp_path / "cli")]) == 0
    assert "PCA (baseline):" in capsys.readouterr().out
    gabor_dictionary(tmp_path / "d.mat", blob_like=False)
    code = main(["compare", str(tmp_path / "d.mat"), "--baseline", "ica"])
    error = capsys.readouterr().err
    assert code == 2 and "d.mat" in error and len(error.strip().splitlines()) == 1
    code = main(["compare", str(small_run), "--baseline", "pca", "--baseline-patches", "-3",
                 "--out", str(tmp_path / "bad")])
    error = capsys.readouterr().err
    assert code == 2 and "positive" in error and len(error.strip().splitlines()) == 1

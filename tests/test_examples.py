"""The scripts in examples/ run as a user runs them (a subprocess, ``--quick``) and show what
they claim: numbers read back from what each script wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLES = REPOSITORY / "examples"


def _run(script: str, out: Path, *arguments: str) -> str:
    """Run ``examples/<script> --quick --out OUT`` from another directory; its stdout."""
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", "--out",
                             str(out), *arguments], capture_output=True, text=True,
                            cwd=out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_linsker_tour_reaches_the_optimum_it_recomputes(tmp_path):
    out = tmp_path / "tour"
    stdout = _run("linsker_tour.py", out)
    report = json.loads((out / "linsker_tour.json").read_text())
    # The script recomputes MI and the optimum from the stored covariances: they must agree
    # with the run's own summary and with the reference optimum (docs/science.md §2).
    assert report["optimum_nats"] == pytest.approx(5.6851, abs=1e-4)
    assert report["optimum_nats"] == pytest.approx(report["summary_optimum_nats"], rel=1e-10)
    assert report["fraction_of_optimum"] == pytest.approx(
        report["summary_fraction_of_optimum"], rel=1e-9)
    assert report["fraction_of_optimum"] >= 0.99          # even on the short run
    assert report["fraction_of_optimum"] <= 1 + 1e-9
    assert report["mode_spectrum_relative_l1"] <= 0.1
    assert (out / "linsker_tour.png").stat().st_size > 10_000
    assert f"{100 * report['fraction_of_optimum']:.2f}% of the closed-form optimum" in stdout


def test_sweep_dataset_matches_the_members(tmp_path):
    xarray = pytest.importorskip("xarray")
    pytest.importorskip("dask.distributed")
    import plasticsim

    out = tmp_path / "sweep"
    _run("sweep_xarray.py", out, "--workers", "2")
    dataset = plasticsim.load_sweep(out / "sweep")
    assert dict(dataset.sizes) == {"noise": 2, "seed": 2, "record": 5}
    assert list(dataset["noise"].values) == [0.1, 1.0]
    index = json.loads((out / "sweep" / "sweep.json").read_text())
    assert len(index["members"]) == 4
    for member in index["members"]:
        summary = json.loads((out / "sweep" / member["directory"] / "summary.json").read_text())
        value = dataset["mutual_information_nats"].sel(noise=member["values"]["noise"],
                                                       seed=member["seed"])
        assert float(value) == summary["mutual_information_nats"]
    information = dataset["mutual_information_nats"]
    # More input noise, less information, for every seed.
    assert np.all(information.sel(noise=0.1) > information.sel(noise=1.0))
    stored = xarray.open_dataset(out / "sweep_xarray.nc", engine="h5netcdf")
    np.testing.assert_array_equal(stored["mutual_information_nats"], information)
    assert (out / "sweep_xarray.png").stat().st_size > 10_000


def test_gating_example_third_factor_finds_the_shared_source(tmp_path):
    out = tmp_path / "gating"
    stdout = _run("gating.py", out)
    mean = json.loads((out / "e1_summary.json").read_text())["mean"]
    assert mean["gate_third_factor"]["alignment_shared"] >= 0.9
    for variant in ("ungated", "gate_only"):
        assert mean[variant]["alignment_shared"] <= 0.2
        assert mean["gate_third_factor"]["bits_shared"] > mean[variant]["bits_shared"] + 0.5
    powers = [values["mean_output_power"] for values in mean.values()]
    assert max(powers) - min(powers) <= 1e-9 * max(powers)    # compared at the same power
    assert "gate_third_factor: alignment with the shared source" in stdout
    assert (out / "gating.png").stat().st_size > 10_000


@pytest.mark.slow
def test_sparse_coding_example_localises_fields_and_compares_with_v1(tmp_path):
    out = tmp_path / "sparse"
    _run("sparse_coding_vs_v1.py", out)
    report = json.loads((out / "compare" / "report.json").read_text())
    run_row, reference_row = report["populations"].values()
    # Random initial fields fit no Gabor; 60 000 patches already localise many of them.
    assert run_row["fraction_r2_above_0.9"] >= 0.3
    assert 0 < run_row["tv_distance_to_v1"] < 1
    # The packaged O&F network (trained on Olshausen's images) as the README reports it.
    assert reference_row["fraction_r2_above_0.9"] == pytest.approx(0.958, abs=0.001)
    assert int(np.sum(report["v1"]["counts"])) == 79
    assert (out / "sparse_coding_vs_v1.png").stat().st_size > 10_000


def test_slurm_example_says_what_it_needs_without_dask_jobqueue(tmp_path):
    """The SLURM example cannot run here; without dask-jobqueue it says so in one line."""
    try:
        import dask_jobqueue  # noqa: F401
        pytest.skip("dask-jobqueue is installed: the example would start SLURM jobs")
    except ImportError:
        pass
    result = subprocess.run([sys.executable, str(EXAMPLES / "sweep_on_slurm.py"), "--quick",
                             "--out", str(tmp_path / "s")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == ("this example needs dask-jobqueue on the login node and "
                                     "the compute nodes: pip install dask-jobqueue")
    assert not (tmp_path / "s").exists()

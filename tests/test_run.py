"""End-to-end runs: the results-file contract, reproducibility, CLI, and failure handling."""

import json

import h5py
import numpy as np
import pytest
import yaml

import plasticsim
from plasticsim.cli import main

from conftest import PROTOCOLS

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["schedule.samples=20000", "schedule.warmup_samples=2000", "record.every=5000"]


def test_results_file_layout(run_protocol):
    results = run_protocol("linsker1992_1d.yaml", *SHORT, figures=True)
    out = results.path.parent
    assert results.path.name == "results.h5"
    with h5py.File(results.path) as file:
        attributes = dict(file.attrs)
        assert attributes["complete"] is True or attributes["complete"] == 1
        for key in ("plasticsim_version", "seed", "backend", "created_utc"):
            assert key in attributes
        spec = yaml.safe_load(file["spec"][()])
        assert spec["model"]["populations"]["output"]["size"] == 8
        assert file["weights/feedforward"].shape == (8, 32)
        for name in ("F_sensing", "F_noise_unlearning", "Q_sensing", "Q_noise_unlearning"):
            assert file[f"weights/lateral/{name}"].shape == (8, 8)
        assert file["stimulus/input/signal_covariance"].shape == (32, 32)
        assert file["stimulus/input/noise_covariance"].shape == (32, 32)
        assert file["populations/output"].attrs["output_noise_variance"] == 1.0
        assert file["populations/input"].attrs["size"] == 32
        steps = file["history/step"][()]
        np.testing.assert_array_equal(steps, [0, 5000, 10000, 15000, 20000])
        assert file["history/weights/feedforward"].shape == (5, 8, 32)
        for name in ("mutual_information_nats", "fraction_of_optimum",
                     "spectral_radius_F_sensing", "settling_residual"):
            assert file[f"metrics/{name}"].shape == steps.shape
        # The last snapshot is the final weight matrix.
        np.testing.assert_array_equal(file["history/weights/feedforward"][-1],
                                      file["weights/feedforward"][()])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fraction_of_optimum"] == pytest.approx(
        results.metrics["fraction_of_optimum"][-1])
    for figure in ("receptive_fields", "frequency_responses", "mutual_information",
                   "mode_spectrum", "settling"):
        assert (out / "figures" / f"{figure}.png").stat().st_size > 1000


def test_load_round_trip(run_protocol):
    results = run_protocol("linsker1992_1d.yaml", *SHORT)
    again = plasticsim.load(results.path)
    assert again.complete
    assert again.spec == results.spec
    np.testing.assert_array_equal(again.weights["feedforward"], results.weights["feedforward"])


def _datasets(path):
    out = {}
    with h5py.File(path) as file:
        file.visititems(lambda name, item: out.__setitem__(name, item[()])
                        if isinstance(item, h5py.Dataset) else None)
    return out


def test_same_seed_reproduces_and_other_seed_differs(tmp_path):
    runs = {}
    for label, seed in (("a", 5), ("b", 5), ("c", 6)):
        runs[label] = plasticsim.run(REFERENCE, tmp_path / label, seed=seed, overrides=SHORT,
                                     progress=False, figures=False)
    first, second, other = (_datasets(runs[k].path) for k in "abc")
    timing = {"summary/wall_seconds", "summary/samples_per_second"}
    assert first.keys() == second.keys()
    for name in first.keys() - timing:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert not np.array_equal(first["weights/feedforward"], other["weights/feedforward"])


def test_existing_output_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    arguments = ["run", str(REFERENCE), "--out", str(out), "--no-progress", "--no-figures"]
    arguments += [x for o in SHORT for x in ("--set", o)]
    assert main(arguments) == 0
    before = (out / "results.h5").stat().st_mtime_ns
    assert main(arguments) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "results.h5").stat().st_mtime_ns == before
    assert main(arguments + ["--overwrite"]) == 0


def test_diverging_run_stops_and_is_marked_incomplete(tmp_path, capsys):
    """A fixed α that is safe for the initial Q̂ but not once Q̂ grows."""
    out = tmp_path / "diverging"
    code = main(["run", str(REFERENCE), "--out", str(out), "--no-progress", "--no-figures",
                 "--set", "model.projections.lateral.settling.alpha=0.9",
                 "--set", "schedule.samples=20000"])
    assert code == 3
    error = capsys.readouterr().err
    assert "diverged at step" in error
    assert "spectral_radius(F)" in error or "settling residual" in error
    assert "Traceback" not in error
    assert not (out / "results.h5").exists()
    with h5py.File(out / "results.incomplete.h5") as file:
        assert not file.attrs["complete"]
        assert "diverged" in file.attrs["error"]


def test_report_prints_summary(run_protocol, capsys, tmp_path):
    results = run_protocol("linsker1992_1d.yaml", *SHORT)
    assert main(["report", str(results.path), "--figures", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "fraction of optimum" in out and "complete" in out
    assert (tmp_path / "f" / "mutual_information.png").exists()


def test_report_on_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing.h5")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy", "array:numpy"])
def test_batch_members_equal_their_runs_alone_bit_for_bit(tmp_path, backend):
    """run_batch stacks seeds along the member axis (on array:numpy as batched products)
    and writes each as a single run: the files equal runs alone, timings aside."""
    if backend.startswith("array"):
        pytest.importorskip("array_api_compat")
    from test_checkpoint import assert_same_results

    from plasticsim.run import run_batch
    tiny = ["schedule.samples=4000", "schedule.warmup_samples=1000", "record.every=1000",
            f"backend={backend}"]
    specs = [plasticsim.load_protocol(REFERENCE, tiny + [f"seed={seed}"]) for seed in (3, 8)]
    batch = run_batch(specs, [tmp_path / "b3", tmp_path / "b8"])
    assert [results.spec.seed for results in batch] == [3, 8]
    for spec, results in zip(specs, batch):
        alone = plasticsim.run(spec, tmp_path / f"alone{spec.seed}", progress=False,
                               figures=False)
        assert_same_results(alone.path, results.path)
        summary = json.loads((results.path.parent / "summary.json").read_text())
        assert summary["mutual_information_bits"] == alone.summary["mutual_information_bits"]
    assert not np.array_equal(batch[0].weights["feedforward"], batch[1].weights["feedforward"])


def test_batch_refuses_protocols_that_differ_in_more_than_the_seed(tmp_path):
    from plasticsim.errors import SpecError
    from plasticsim.run import run_batch
    specs = [plasticsim.load_protocol(REFERENCE, [f"seed={seed}", f"record.every={every}"])
             for seed, every in ((1, 5000), (2, 10000))]
    with pytest.raises(SpecError, match="differ only in their seed"):
        run_batch(specs, [tmp_path / "a", tmp_path / "b"])
    assert not (tmp_path / "a").exists()

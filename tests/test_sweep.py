"""Sweeps on a Dask LocalCluster (plasticsim.sweep): members equal single runs, reruns redo
only unfinished members, load_sweep's Dataset, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import PROTOCOLS
from plasticsim.cli import main
from test_checkpoint import assert_same_results

pytest.importorskip("dask.distributed")
xarray = pytest.importorskip("xarray")

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["schedule.samples=6000", "record.every=2000"]
NOISES = (0.05, 0.1, 0.2)
SEEDS = (1, 2, 3)
GRID = "noise:stimuli.input.input_noise.variance=" + ",".join(str(n) for n in NOISES)


def _sweep_command(out) -> list[str]:
    return [sys.executable, "-m", "plasticsim.cli", "sweep", str(REFERENCE), "--grid", GRID,
            "--seed-list", ",".join(str(s) for s in SEEDS), "--out", str(out),
            "--workers", "2", "--no-progress", *[x for o in SHORT for x in ("--set", o)]]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    import plasticsim
    out = tmp_path_factory.mktemp("sweep")
    # Batches of 3 (the seeds of one noise level), stacked although the numpy backend would
    # not batch by itself: the members must still equal their runs alone.
    result = plasticsim.sweep(REFERENCE, out, [GRID], seeds=list(SEEDS), overrides=SHORT,
                              workers=2, progress=False, batch_size=3)
    return out, result


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """Each member run on its own, in this process."""
    import plasticsim
    runs = {}
    for noise in NOISES:
        for seed in SEEDS:
            out = tmp_path_factory.mktemp(f"alone_{noise}_{seed}")
            runs[noise, seed] = plasticsim.run(
                REFERENCE, out, seed=seed, progress=False, figures=False,
                overrides=SHORT + [f"stimuli.input.input_noise.variance={noise}"]).path
    return runs


def test_members_equal_runs_alone(swept, alone):
    out, result = swept
    assert len(result.members) == 9 and not result.failed
    for entry in result.members:
        assert entry["status"] == "ran"
        assert entry["wall_seconds"] > 0
        assert entry["batch_members"] == 3   # ran stacked with the other seeds
        reference = alone[entry["values"]["noise"], entry["seed"]]
        assert_same_results(reference, out / entry["directory"] / "results.h5")


def test_load_sweep_dims_and_values(swept):
    import plasticsim
    out, result = swept
    dataset = plasticsim.load_sweep(out)
    mi = dataset["mutual_information_bits"]
    assert mi.dims == ("noise", "seed")
    assert list(dataset["noise"].values) == list(NOISES)
    assert list(dataset["seed"].values) == list(SEEDS)
    for entry in result.members:
        summary = json.loads((out / entry["directory"] / "summary.json").read_text())
        value = mi.sel(noise=entry["values"]["noise"], seed=entry["seed"]).item()
        assert value == summary["mutual_information_bits"]
        assert value == entry["summary"]["mutual_information_bits"]
    series = dataset["metrics/mutual_information_bits"]
    assert series.dims == ("noise", "seed", "record")
    np.testing.assert_array_equal(series.isel(record=-1).values, mi.values)
    # More input noise, less information: the sweep shows the science, not just shapes.
    assert (mi.mean("seed").diff("noise") < 0).all()


def test_killed_sweep_reruns_only_unfinished_members(tmp_path, alone):
    out = tmp_path / "sweep"
    process = subprocess.Popen(_sweep_command(out), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    finished = []
    while process.poll() is None:
        finished = [k for k in range(9) if (out / "members" / str(k) / "summary.json").exists()]
        if len(finished) >= 3:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = {k: (out / "members" / str(k) / "results.h5").stat().st_mtime_ns
                   for k in range(9) if (out / "members" / str(k) / "summary.json").exists()}
    assert 3 <= len(done_before) < 9, done_before
    result = subprocess.run(_sweep_command(out), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    index = json.loads((out / "sweep.json").read_text())
    for entry in index["members"]:
        k = entry["index"]
        if k in done_before:
            assert entry["status"] == "skipped"
            assert (out / entry["directory"] / "results.h5").stat().st_mtime_ns == \
                done_before[k]
        else:
            assert entry["status"] in ("ran", "resumed")
        assert_same_results(alone[entry["values"]["noise"], entry["seed"]],
                            out / entry["directory"] / "results.h5")


def test_unknown_key_suggests_the_nearest(tmp_path, capsys):
    code = main(["sweep", str(REFERENCE), "--grid", "stimuli.input.input_nosie.variance=1,2",
                 "--out", str(tmp_path / "s")])
    message = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in message
    assert "did you mean stimuli.input.input_noise.variance?" in message
    assert not (tmp_path / "s").exists()


def test_batches_group_members_that_differ_only_in_seed():
    from plasticsim.sweep import batches, plan_sweep
    plan = plan_sweep(REFERENCE, "unused", [GRID], seeds=[1, 2, 3, 4, 5], overrides=SHORT)
    grouped = batches(plan.members, 2)
    assert [[m["index"] for m in batch] for batch in grouped] == [
        [0, 1], [2, 3], [4], [5, 6], [7, 8], [9], [10, 11], [12, 13], [14]]
    for batch in grouped:
        assert len({m["values"]["noise"] for m in batch}) == 1


def test_only_backends_that_stack_members_batch_by_default():
    from plasticsim.sweep import _auto_batch

    class TwoWorkers:
        def nthreads(self):
            return {"tcp://a": 1, "tcp://b": 1}
    assert _auto_batch(TwoWorkers(), 24, "array:torch") == 6   # two tasks per worker
    assert _auto_batch(TwoWorkers(), 3, "array") == 1
    for backend in ("numpy", "numba", "auto", "brian2"):
        assert _auto_batch(TwoWorkers(), 24, backend) == 1


def test_bad_batch_size_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["sweep", str(REFERENCE), "--batch-size", "0", "--out", str(tmp_path / "s")])
    message = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in message and "--batch-size 0" in message
    assert not (tmp_path / "s").exists()


def test_silent_scheduler_is_one_line_and_exit_2(tmp_path):
    import socket
    with socket.socket() as server:  # a port that accepts connections and never answers
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        result = subprocess.run(
            [sys.executable, "-m", "plasticsim.cli", "sweep", str(REFERENCE), "--grid", GRID,
             "--out", str(tmp_path / "s"), "--scheduler", address, "--scheduler-timeout", "2"],
            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Dask scheduler answered within 4 s" in lines[0], lines
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ the protocol's sweep: block
def _block_protocol(directory, block: str):
    """The 1-D reference protocol (model inlined by path) with a ``sweep:`` block."""
    text = REFERENCE.read_text().replace("model: ../models/linsker_ring.yaml",
                                         f"model: {REFERENCE.parent.parent}/models/"
                                         "linsker_ring.yaml")
    path = directory / "swept.yaml"
    path.write_text(text + "\n" + block)
    return path


def test_block_plans_the_members_the_command_line_does(tmp_path):
    from plasticsim.sweep import plan_sweep
    path = _block_protocol(tmp_path, "sweep:\n  grid:\n    'noise:stimuli.input.input_noise."
                           "variance': [0.05, 0.2]\n  seeds: 2\n  out: elsewhere\n")
    block = plan_sweep(path, overrides=SHORT)
    assert [m["values"] for m in block.members] == [{"noise": 0.05}] * 2 + [{"noise": 0.2}] * 2
    assert [m["seed"] for m in block.members] == [1, 2, 1, 2]   # seeds 2 from the seed, 1
    assert str(block.out) == "elsewhere"
    command_line = plan_sweep(REFERENCE, tmp_path / "s", [GRID.replace("0.1,", "")],
                              seeds=[1, 2], overrides=SHORT)
    assert [m["document"] for m in block.members] == \
        [m["document"] for m in command_line.members]
    # --grid, --seed-list and --out replace the block's.
    replaced = plan_sweep(path, tmp_path / "s", ["nu:model.populations.output."
                                                 "output_noise_variance=0.5,1"], seeds=[7],
                          overrides=SHORT)
    assert [(m["values"], m["seed"]) for m in replaced.members] == [
        ({"nu": 0.5}, 7), ({"nu": 1}, 7)]
    assert replaced.out == tmp_path / "s"


def test_block_sweep_members_equal_runs_alone(tmp_path, alone):
    import h5py
    out = tmp_path / "from_block"
    path = _block_protocol(tmp_path, "sweep:\n  grid:\n    'noise:stimuli.input.input_noise."
                           f"variance': [0.05, 0.2]\n  seed_list: [2]\n  out: {out}\n")
    argv = ["sweep", str(path), "--workers", "1", "--no-progress",
            *[x for o in SHORT for x in ("--set", o)]]
    assert main(argv) == 0
    index = json.loads((out / "sweep.json").read_text())
    assert [(m["values"]["noise"], m["seed"], m["status"]) for m in index["members"]] == [
        (0.05, 2, "ran"), (0.2, 2, "ran")]
    for entry in index["members"]:
        results = out / entry["directory"] / "results.h5"
        assert_same_results(alone[entry["values"]["noise"], entry["seed"]], results)
        with h5py.File(results, "r") as file:  # the sweep's request, not the worker's
            assert file.attrs["command_line"] == "plasticsim " + " ".join(argv)
            assert file.attrs["protocol_path"] == str(path.resolve())
            assert "python_call" not in file.attrs


def test_block_with_an_unknown_key_suggests_the_nearest(tmp_path, capsys):
    path = _block_protocol(tmp_path, "sweep:\n  grid:\n    stimuli.input.input_nosie.variance:"
                           " [1, 2]\n  out: s\n")
    line = len(path.read_text().splitlines()) - 1
    for command in (["sweep", str(path)], ["validate", str(path)]):
        assert main(command) == 2
        message = capsys.readouterr().err.strip()
        assert "\n" not in message
        assert f"{path}:{line}: sweep.grid.stimuli.input.input_nosie.variance: the protocol " \
               "has no such key; did you mean stimuli.input.input_noise.variance?" in message
    both = _block_protocol(tmp_path, "sweep: {seeds: 2, seed_list: [1, 2]}\n")
    assert main(["validate", str(both)]) == 2
    assert "give either seeds or seed_list" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_run_of_a_protocol_with_a_block_runs_it_once(tmp_path):
    import plasticsim
    path = _block_protocol(tmp_path, "sweep: {grid: {stimuli.input.input_noise.variance: "
                           "[1, 2]}, seeds: 3}\n")
    with pytest.warns(UserWarning, match="sweep: block is for plasticsim sweep"):
        results = plasticsim.run(path, tmp_path / "once", progress=False, figures=False,
                                 overrides=["schedule.samples=2000", "record.every=1000",
                                            "schedule.warmup_samples=1000"])
    assert results.spec.seed == 1 and results.spec.stimuli["input"].input_noise.variance == 0.1
    assert not (tmp_path / "once" / "members").exists()

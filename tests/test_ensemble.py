"""Ensembles: expansion of seeds × grid (plasticsim.spec.ensemble), members stacked along the
plan's member axis, and the per-member results layout of the one run loop."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import PROTOCOLS

import plasticsim
from plasticsim.cli import main
from plasticsim.errors import SimulationDiverged, SpecError
from plasticsim.run import INDEX_NAME, build_members
from plasticsim.spec.ensemble import expand_ensemble
from plasticsim.spec.loading import load_protocol

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["schedule.samples=2000", "schedule.warmup_samples=500", "record.every=1000"]
GRID = "ensemble={size: 2, grid: {model.projections.feedforward.constraints.0.value: [1.0, 2.0]}}"


def test_members_are_grid_combinations_times_seeds():
    spec = load_protocol(REFERENCE, SHORT + [
        ("ensemble={seeds: [4, 9], grid: {model.projections.feedforward.constraints.0.value: [1.0, 2.0],"
         " stimuli.input.input_noise.variance: [0.1, 1.0, 10.0]}}")])
    members = expand_ensemble(spec)
    assert len(members) == 2 * 3 * 2
    assert [m.index for m in members] == list(range(12))
    first, last = members[0], members[-1]
    assert first.label == ("model.projections.feedforward.constraints.0.value=1.0,"
                           "stimuli.input.input_noise.variance=0.1,seed=4")
    assert (first.spec.seed, last.spec.seed) == (4, 9)
    assert last.spec.model.projections["feedforward"].constraints[0].value == 2.0
    assert last.spec.stimuli["input"].input_noise.variance == 10.0
    assert all(m.spec.ensemble is None for m in members)


def test_size_means_consecutive_seeds_and_no_block_means_one_member():
    spec = load_protocol(REFERENCE, SHORT + ["seed=5", "ensemble={size: 3}"])
    assert [m.seed for m in expand_ensemble(spec)] == [5, 6, 7]
    plain = load_protocol(REFERENCE, SHORT)
    assert [m.spec for m in expand_ensemble(plain)] == [plain]


@pytest.mark.parametrize("ensemble, words", [
    ("{seeds: [1], size: 2}", "either seeds or size"),
    ("{grid: {schedule.samples: [10, 20]}}", "shared by all members"),
    ("{grid: {model.projections.feedforward.constraints.0.value: []}}", "at least one value"),
])
def test_malformed_ensemble_blocks_are_spec_errors(ensemble, words):
    with pytest.raises(SpecError, match=words):
        load_protocol(REFERENCE, SHORT + [f"ensemble={ensemble}"])


def test_a_bad_grid_value_names_the_member_and_key():
    spec = load_protocol(REFERENCE, SHORT + [
        "ensemble={grid: {model.projections.lateral.settling.method: [jacobi, newton]}}"])
    with pytest.raises(SpecError, match="newton") as error:
        expand_ensemble(spec)
    assert "settling.method" in str(error.value)


def needs_backend(backend):
    if backend != "numpy":
        pytest.importorskip(f"plasticsim.backends.{backend.split(':')[0]}_backend")


@pytest.mark.parametrize("backend", ["numba", "numpy", "array:numpy"])
def test_ensemble_run_writes_one_results_file_per_member(tmp_path, backend):
    needs_backend(backend)
    results = plasticsim.run(REFERENCE, tmp_path, overrides=SHORT + [GRID], backend=backend,
                             progress=False, figures=False)
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert index["backend"] == backend and len(index["members"]) == 4
    assert len(results.members) == 4
    for entry, member in zip(index["members"], results.members):
        path = tmp_path / entry["directory"] / "results.h5"
        with h5py.File(path) as file:
            assert file.attrs["ensemble_member"] == entry["index"]
            assert file.attrs["ensemble_size"] == 4
            assert file.attrs["backend"] == backend
            assert file.attrs["seed"] == entry["seed"]
        assert member.complete
        np.testing.assert_array_equal(member.steps, [0, 1000, 2000])
        assert member.spec.model.projections["feedforward"].constraints[0].value == entry["values"][
            "model.projections.feedforward.constraints.0.value"]
        assert entry["summary"]["fraction_of_optimum"] == pytest.approx(
            member.summary["fraction_of_optimum"])


@pytest.mark.parametrize("backend", ["numpy", "numba", "array:numpy"])
def test_member_results_equal_a_single_run_of_the_member_protocol(tmp_path, backend):
    needs_backend(backend)
    results = plasticsim.run(REFERENCE, tmp_path / "ensemble", overrides=SHORT + [GRID],
                             backend=backend, progress=False, figures=False)
    member = expand_ensemble(results.spec)[3]
    alone = plasticsim.run(member.spec, tmp_path / "alone", progress=False, figures=False,
                           backend=backend)
    np.testing.assert_array_equal(results.members[3].weights["feedforward"],
                                  alone.weights["feedforward"])
    np.testing.assert_array_equal(results.members[3].metrics["mutual_information_nats"],
                                  alone.metrics["mutual_information_nats"])


def test_members_stack_by_structure_and_errors_name_the_member():
    """Seeds share one stacked plan; a grid over a structural value (α) makes one plan per
    value; a member that diverges is named in the one-line error."""
    spec = load_protocol(REFERENCE, SHORT + [
        "schedule.samples=3000", "ensemble={size: 2, grid: "
        "{model.projections.lateral.settling.alpha: [0.1, 0.3]}}"])
    members, plans, simulations = build_members(spec, backend="numpy")
    assert len(members) == 4 and [plan.n_members for plan in plans] == [2, 2]
    assert [plan.info["members"] for plan in plans] == [[0, 1], [2, 3]]
    diverging = simulations[1]
    diverging.warmup()
    with pytest.raises(SimulationDiverged, match=r"ensemble member .*alpha=0.3"):
        while diverging.samples_done < 3000:
            diverging.advance(1000)


def test_cli_prints_one_line_per_member(tmp_path, capsys):
    arguments = ["run", str(REFERENCE), "--out", str(tmp_path), "--no-progress", "--no-figures",
                 "--backend", "numpy"] + [x for o in SHORT + [GRID] for x in ("--set", o)]
    assert main(arguments) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(INDEX_NAME)
    assert sum("members/" in line and "fraction of optimum" in line for line in lines) == 4


def test_grid_values_keep_their_type():
    """1e-05 stays a number (YAML 1.1 would read the text '1e-05' as a string)."""
    spec = load_protocol(REFERENCE, SHORT + [
        "ensemble={grid: {learning_rates.lateral.initial: [0.00001, 0.002]}}"])
    rates = [m.spec.learning_rates["lateral"].initial for m in expand_ensemble(spec)]
    assert rates == [1e-05, 0.002]

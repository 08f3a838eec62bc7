"""Each example of issue 11 ("Hostile input") as a regression test: one readable line and the
right exit status (2 input, 3 divergence), no traceback, no hang, no NaN passed off as a
result, nothing written outside --out."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from plasticsim.analysis.information import infomax_optimum, water_filling_gains
from plasticsim.cli import main
from plasticsim.engine.memory import spec_memory_bytes
from plasticsim.spec.loading import MAX_NODES, load_protocol

from conftest import MODELS, PROTOCOLS

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
SHORT = ["--set", "schedule.samples=400", "--set", "schedule.warmup_samples=0",
         "--set", "record.every=200"]


def _error(capsys) -> str:
    """The one line a failed command printed on stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if not line.startswith("plasticsim: warning")]
    assert len(errors) == 1, lines
    assert errors[0].startswith("plasticsim: error: ")
    return errors[0]


@pytest.fixture
def copy(tmp_path):
    """A copy of the reference protocol and its model: (protocol path, model path)."""
    (tmp_path / "protocols").mkdir()
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "linsker_ring.yaml"
    shutil.copy(MODELS / "linsker_ring.yaml", model)
    protocol = tmp_path / "protocols" / "p.yaml"
    shutil.copy(REFERENCE, protocol)
    return protocol, model


# ------------------------------------------------------------------------ the YAML reader
def test_alias_bomb_is_refused_without_expanding(copy, capsys):
    protocol, _ = copy
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(98 + k)}: &{chr(98 + k)} [" + ",".join([f"*{chr(97 + k)}"] * 9) + "]"
              for k in range(8)]
    bomb = "\n".join(lines) + "\n"
    assert len(bomb.encode()) < 600            # the 540-byte "billion laughs"
    protocol.write_text(protocol.read_text() + bomb)
    assert main(["validate", str(protocol)]) == 2
    error = _error(capsys)
    assert "alias" in error and f"{MAX_NODES:,}" in error and "p.yaml:" in error


def test_recursive_anchor_and_deep_nesting(copy, capsys):
    protocol, _ = copy
    text = protocol.read_text()
    protocol.write_text(text + "loop: &loop [1, *loop]\n")
    assert main(["validate", str(protocol)]) == 2
    assert "recursive alias" in _error(capsys)
    protocol.write_text(text + "deep: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["validate", str(protocol)]) == 2
    assert "nested deeper than 100 levels" in _error(capsys)


def test_non_utf8_and_nul_bytes_name_their_line(copy, capsys):
    protocol, model = copy
    text = protocol.read_bytes()
    protocol.write_bytes(text.replace(b"seed: 1", b"seed: 1 # caf\xe9"))
    line = text.split(b"\n").index(b"seed: 1") + 1
    assert main(["validate", str(protocol)]) == 2
    assert f"p.yaml:{line}: byte 0xe9" in _error(capsys)
    model.write_bytes(model.read_bytes().replace(b"size: 8", b"size: 8\x00"))
    protocol.write_bytes(text)
    assert main(["validate", str(protocol)]) == 2
    assert "linsker_ring.yaml:" in (error := _error(capsys)) and "NUL byte" in error


@pytest.mark.parametrize("path", ["/proc/self/environ", "/dev/zero", "/tmp"])
def test_model_path_that_is_not_a_regular_file(copy, capsys, path):
    protocol, _ = copy
    protocol.write_text(protocol.read_text().replace("../models/linsker_ring.yaml", path))
    assert main(["validate", str(protocol)]) == 2
    error = _error(capsys)
    assert "p.yaml:" in error and "model" in error and (
        "not a regular file" in error or "directory" in error)


def test_no_tag_builds_an_object(copy, capsys):
    protocol, _ = copy
    protocol.write_text(protocol.read_text().replace(
        "name: linsker1992_1d", "name: !!python/object/apply:os.system ['echo pwned']"))
    assert main(["validate", str(protocol)]) == 2
    assert "YAML" in _error(capsys)


# ------------------------------------------------------------------ hangs on accepted values
def test_zero_output_noise_optimum_is_the_limit_of_small_noise():
    """``output_noise_variance: 0`` looped forever in the optimum's bisection."""
    spec = load_protocol(REFERENCE)
    from plasticsim.model.stimuli.gaussian_ring import ring_gaussian_filter
    filter_ = ring_gaussian_filter(32, 2.0)
    q_signal = filter_ @ filter_.T
    q_noise = 0.1 * np.eye(32)
    exact = infomax_optimum(q_signal, q_noise, 0.0, 8, 8.0).mutual_information
    small = infomax_optimum(q_signal, q_noise, 1e-9, 8, 8.0).mutual_information
    assert np.isfinite(exact) and exact == pytest.approx(small, rel=1e-6)
    gains = water_filling_gains(np.array([3.0, 2.0, 1.0]), np.array([1.0, 1.0, 1.0]), 0.0,
                                2.0, "weight", 2)
    assert gains.tolist() == [1.0, 1.0, 0.0]
    assert spec.model.populations["output"].output_noise_variance == 1.0


def test_zero_output_noise_run_finishes(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(REFERENCE), "--out", str(out), "--no-progress", "--no-figures",
                 "--set", "model.populations.output.output_noise_variance=0", *SHORT])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert np.isfinite(summary["optimum_nats"]) and 0 < summary["fraction_of_optimum"] <= 1


def test_huge_iteration_count_is_refused_with_its_range(capsys):
    assert main(["validate", str(REFERENCE), "--set",
                 "model.projections.lateral.settling.iterations=1000000000", "--set",
                 "model.projections.lateral.settling.tolerance=0"]) == 2
    error = _error(capsys)
    assert "settling.iterations" in error and "1000000" in error


def test_large_input_population_is_announced(tmp_path, capsys, monkeypatch):
    """A 3,000-site input spent minutes in the optimum's eigendecomposition in silence."""
    import importlib
    monkeypatch.setattr(importlib.import_module("plasticsim.run"), "LARGE_EIGENPROBLEM", 16)
    assert main(["run", str(REFERENCE), "--out", str(tmp_path / "o"), "--no-progress",
                 "--no-figures", *SHORT]) == 0
    assert "eigendecomposition of 32 × 32" in capsys.readouterr().err


# --------------------------------------------------------------------- memory and seeds
def test_size_that_cannot_fit_is_refused_before_allocation(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(REFERENCE), "--out", str(out),
                 "--set", "model.populations.input.size=3000000"]) == 2
    error = _error(capsys)
    assert "model.populations.input.size" in error and "TiB of memory" in error
    assert not out.exists()


def test_memory_estimate_counts_dense_arrays():
    spec = load_protocol(REFERENCE)
    # 6 dense 32² and 8 batch rows (batch 10) per input, the same for 8 outputs, C 4 times,
    # the lateral 8 × 8 4 times, in bytes.
    expected = 8 * (6 * 32**2 + 8 * 10 * 32 + 6 * 8**2 + 8 * 10 * 8 + 4 * 8 * 32 + 4 * 8 * 8)
    assert spec_memory_bytes(spec) == expected
    assert spec_memory_bytes(spec, members=3) == 3 * expected


def test_seed_out_of_range_is_refused_and_largest_seed_runs(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(REFERENCE), "--out", str(out), "--seed", str(2**64)]) == 2
    assert "seed: expected an integer in [0, 9223372036854775807]" in _error(capsys)
    assert not out.exists()                       # no .partial left behind
    assert main(["run", str(REFERENCE), "--out", str(out), "--seed", str(2**63 - 1),
                 "--no-progress", "--no-figures", *SHORT]) == 0
    with h5py.File(out / "results.h5", "r") as file:
        assert int(file.attrs["seed"]) == 2**63 - 1


@pytest.mark.parametrize("value", ["inf", "1e308", "1e-320", "-1", ".nan"])
def test_variances_outside_the_meaningful_range(capsys, value):
    assert main(["validate", str(REFERENCE), "--set",
                 f"stimuli.input.signal_variance={value}"]) == 2
    error = _error(capsys)
    assert "stimuli.input.signal_variance" in error and "[1e-30, 1e+30]" in error


def test_constraint_value_that_is_a_denormal(capsys):
    assert main(["validate", str(REFERENCE), "--set",
                 "model.projections.feedforward.constraints.0.value=1e-320"]) == 2
    assert "constraints.0.value" in _error(capsys)


# ---------------------------------------------------------------------- divergence exits 3
def test_run_that_diverges_exits_3(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(PROTOCOLS / "oja_subspace.yaml"), "--out", str(out),
                 "--no-progress", "--no-figures", "--set",
                 "learning_rates.feedforward={kind: constant, initial: 1e8}", *SHORT])
    assert code == 3
    assert "diverged" in _error(capsys)
    assert not (out / "results.h5").exists() and (out / "results.incomplete.h5").exists()


def test_run_whose_final_figures_are_not_finite_is_a_divergence(tmp_path, capsys,
                                                                 monkeypatch):
    """A NaN information figure is not passed off as a result: exit 3, nothing complete."""
    import importlib
    module = importlib.import_module("plasticsim.run")
    monkeypatch.setattr(module, "summarize",
                        lambda results: ({"mutual_information_nats": float("nan")}, {}))
    out = tmp_path / "out"
    assert main(["run", str(REFERENCE), "--out", str(out), "--no-progress", "--no-figures",
                 *SHORT]) == 3
    assert "mutual_information_nats = nan (a final figure is not finite)" in _error(capsys)
    assert not (out / "results.h5").exists() and not (out / "summary.json").exists()
    with h5py.File(out / "results.incomplete.h5", "r") as file:
        assert not file.attrs["complete"] and "not finite" in file.attrs["error"]


# --------------------------------------------------------------------------- output paths
@pytest.mark.parametrize("name", ["/tmp/escape", "../escape", "a/b", "..", ".hidden"])
def test_protocol_name_cannot_leave_results(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(REFERENCE), "--set", f"name={name}"]) == 2
    assert "plain file name" in _error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("keep me")
    assert main(["run", str(REFERENCE), "--out", str(target)]) == 2
    assert "not a directory" in _error(capsys)
    assert target.read_text() == "keep me"


# ---------------------------------------------------------------------------- results files
@pytest.fixture(scope="module")
def linsker_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile_run")
    assert main(["run", str(REFERENCE), "--out", str(out), "--no-progress", "--no-figures",
                 *SHORT]) == 0
    return out / "results.h5"


def _damaged(source, target, change):
    shutil.copy(source, target)
    with h5py.File(target, "a") as file:
        change(file)
    return target


def _replace_spec(file):
    del file["spec"]
    file["spec"] = "name: [unclosed"


@pytest.mark.parametrize("change, expected", [
    (_replace_spec, "/spec is not a valid protocol"),
    (lambda file: file.__delitem__("weights"), "/weights missing"),
    (lambda file: file.__delitem__("history"), "/history/step missing"),
    (lambda file: file.attrs.__delitem__("seed"), "root attribute(s) seed missing"),
])
@pytest.mark.parametrize("command", ["report", "compare"])
def test_broken_results_file(tmp_path, capsys, linsker_run, change, expected, command):
    damaged = _damaged(linsker_run, tmp_path / "results.h5", change)
    extra = ["--figures", str(tmp_path / "f")] if command == "report" else \
        ["--out", str(tmp_path / "c")]
    assert main([command, str(damaged), *extra]) == 2
    assert expected in _error(capsys)


def test_corrupted_bytes_are_detected_by_the_checksum(tmp_path, capsys, linsker_run):
    damaged = tmp_path / "results.h5"
    shutil.copy(linsker_run, damaged)
    with h5py.File(damaged, "r") as file:
        offset = file["weights/feedforward"].id.get_chunk_info(0).byte_offset
    data = bytearray(damaged.read_bytes())
    data[offset + 17] ^= 0x10              # one bit of one weight
    damaged.write_bytes(bytes(data))
    assert main(["report", str(damaged), "--figures", str(tmp_path / "f")]) == 2
    assert "filter returned failure" in _error(capsys)


def test_non_finite_weights_in_a_complete_file(tmp_path, capsys, linsker_run):
    def poison(file):
        file["weights/feedforward"][0, 0] = np.nan
    damaged = _damaged(linsker_run, tmp_path / "results.h5", poison)
    assert main(["report", str(damaged), "--figures", str(tmp_path / "f")]) == 2
    assert "/weights/feedforward holds non-finite values" in _error(capsys)


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile_image_run")
    assert main(["run", str(PROTOCOLS / "olshausen_field_image_patches.yaml"), "--out",
                 str(out), "--no-progress", "--no-figures", "--set", "schedule.samples=400",
                 "--set", "record.every=200", "--set", "model.populations.coefficients.size=6",
                 "--set", "stimuli.input.patch_size=6", "--set",
                 "model.populations.input.size=36", "--set",
                 "stimuli.input.covariance_samples=200"]) == 0
    return out / "results.h5"


def test_compare_refuses_an_incomplete_run_unless_allowed(tmp_path, capsys, image_run):
    damaged = _damaged(image_run, tmp_path / "results.h5",
                       lambda file: file.attrs.__setitem__("complete", False))
    assert main(["compare", str(damaged), "--out", str(tmp_path / "c")]) == 2
    assert "incomplete" in (error := _error(capsys)) and "--allow-incomplete" in error
    assert main(["compare", str(damaged), "--out", str(tmp_path / "c"),
                 "--allow-incomplete"]) == 0
    assert (tmp_path / "c" / "report.json").exists()


# ------------------------------------------------------------------- warnings a scientist needs
def test_settling_shortfall_is_warned_and_counted(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(REFERENCE), "--out", str(out), "--no-progress", "--no-figures",
                 "--set", "model.projections.lateral.settling.iterations=2", *SHORT]) == 0
    err = capsys.readouterr().err
    assert "did not reach its tolerance: residual" in err and "> 1e-08" in err
    summary = json.loads((out / "summary.json").read_text())
    with h5py.File(out / "results.h5", "r") as file:
        residuals = file["metrics/settling_residual"][()]
    assert summary["settling_records_above_tolerance"] == int(np.sum(residuals > 1e-8)) >= 1
    assert summary["settling_tolerance"] == 1e-8


@pytest.mark.parametrize("metric", ["euclidean", "input_covariance"])
def test_reachability_hint_for_the_local_rule(tmp_path, capsys, metric):
    """Coloured noise (filter s.d. 4) with a per-unit power bound: the local rule reached 80%
    of the optimum where the natural-gradient metric reached 98.7%."""
    out = tmp_path / "out"
    assert main(["run", str(PROTOCOLS / "linsker1992_1d_power_series.yaml"), "--out",
                 str(out), "--no-progress", "--no-figures", "--set",
                 "stimuli.input.input_noise.filter_sd=4", "--set",
                 f"model.projections.feedforward.rule.metric={metric}", *SHORT]) == 0
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    if metric == "euclidean":
        assert "the local rule may stop short of the optimum" in err
        assert summary["slowest_mode_time_constants"] < 3
    else:
        assert "stop short" not in err and "slowest_mode_time_constants" not in summary


def test_usage_errors_are_one_line(capsys):
    assert main(["run"]) == 2
    assert "required: protocol" in _error(capsys)
    assert main(["frobnicate"]) == 2
    _error(capsys)

"""Short runs of the shipped gating experiments (E1 shared latent + control, E2 Linsker
regression); the full-length runs over 3 seeds are ``slow`` and in the notes."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import plasticsim
from plasticsim.analysis.gating import gaussian_information_bits, shared_latent_results_report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from gating_experiments import E1_VARIANTS, E2_VARIANTS, run_e1, run_e2  # noqa: E402

E1 = "protocols/gating_e1_shared_latent.yaml"
E1_CONTROL = "protocols/gating_e1_control.yaml"
E2 = "protocols/gating_e2_linsker.yaml"


def _train(protocol, overrides, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return plasticsim.run(protocol, out, overrides=overrides, progress=False,
                              figures=False)


def _e1_reports(protocol, samples, out, seed=1):
    reports = {}
    for name, variant in E1_VARIANTS.items():
        results = _train(protocol, [f"schedule.samples={samples}", f"seed={seed}",
                                    f"record.every={samples // 2}", *variant], out / name)
        reports[name] = shared_latent_results_report(results)
    return reports


def test_gaussian_information_estimate_is_exact_for_one_gaussian_channel():
    # z = c·x + ν with x = s + n: I = ½ log₂(1 + c²v_s / (c²σ_n² + σ_ν²)).
    c, v_s, v_n, r = 1.5, 2.0, 0.5, 1.0
    bits = gaussian_information_bits(np.array([[c]]), np.array([[v_s + v_n]]),
                                     np.array([[v_s]]), np.array([[v_s]]), r)
    assert bits == pytest.approx(0.5 * np.log2(1 + c**2 * v_s / (c**2 * v_n + r)), rel=1e-12)


def test_e1_only_gate_plus_third_factor_sends_the_shared_source(tmp_path):
    reports = _e1_reports(E1, samples=20000, out=tmp_path)
    for name in ("ungated", "gate_only"):
        assert reports[name]["alignment_shared"] <= 0.2, (name, reports[name])
        assert reports[name]["bits_shared"] <= 0.1, (name, reports[name])
        assert reports[name]["bits_distractor"] >= 1.5     # it sends the distractors instead
    third = reports["gate_third_factor"]
    assert third["alignment_shared"] >= 0.9, third
    assert third["bits_shared"] >= 0.5, third
    # The two units send different parts of the shared source (no ON/OFF pair).
    assert third["redundancy_shared_bits"] <= 0.05, third
    # Same output power in every variant (the comparison is at fixed power).
    for report in reports.values():
        assert report["mean_output_power"] == pytest.approx(4.0, rel=1e-9)


def test_e1_control_variants_tie(tmp_path):
    """Distractors weaker than the shared source: infomax alone finds it; all variants tie."""
    reports = _e1_reports(E1_CONTROL, samples=30000, out=tmp_path)
    alignments = [r["alignment_shared"] for r in reports.values()]
    assert min(alignments) >= 0.9, reports
    assert max(alignments) - min(alignments) <= 0.08, reports
    assert all(r["bits_distractor"] <= 0.05 for r in reports.values())
    # Information ties too: the gated variants send as much about the shared source as the
    # ungated network, without sending it twice (the decorrelated third factor).
    ungated = reports["ungated"]["bits_shared"]
    for name, report in reports.items():
        assert abs(report["bits_shared"] - ungated) <= 0.05, (name, reports)
        assert report["redundancy_shared_bits"] <= 0.05, (name, reports)


def test_e2_gated_never_exceeds_the_optimum_and_stays_within_2_percent(tmp_path):
    results = {}
    for name, variant in E2_VARIANTS.items():
        run = _train(E2, ["schedule.samples=20000", "schedule.warmup_samples=5000",
                          "record.every=10000", *variant], tmp_path / name)
        results[name] = run.summary["mutual_information_nats"]
    optimum = 5.6851   # docs/science.md §2, M = 8, σ_n² = 0.1
    assert results["gated"] <= optimum + 1e-4
    assert results["ungated"] <= optimum + 1e-4
    assert abs(results["gated"] / results["ungated"] - 1) <= 0.02, results
    assert results["gated"] >= 0.9 * optimum          # and it did learn


def test_experiment_runners_write_summaries_and_figures(tmp_path):
    summary = run_e1(E1, tmp_path / "e1", seeds=[1], overrides=["schedule.samples=2000",
                                                                "record.every=1000"])
    assert set(summary["mean"]) == set(E1_VARIANTS)
    assert (tmp_path / "e1" / "e1_summary.json").is_file()
    assert (tmp_path / "e1" / "figures" / "e1_comparison.png").is_file()
    summary = run_e2(E2, tmp_path / "e2", seeds=[1], overrides=[
        "schedule.samples=2000", "schedule.warmup_samples=0", "record.every=1000"])
    assert summary["optimum_nats"] == pytest.approx(5.6851, abs=1e-4)
    assert (tmp_path / "e2" / "figures" / "e2_mutual_information.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [E1, "protocols/gating_e1_shared_latent_laplace.yaml"])
def test_e1_full_length_over_three_seeds(tmp_path, protocol):
    summary = run_e1(protocol, tmp_path, seeds=[1, 2, 3], figures=False)
    for seed in ("1", "2", "3"):
        third = summary["per_seed"]["gate_third_factor"][seed]
        assert third["alignment_shared"] >= 0.9 and third["bits_shared"] >= 0.5
        assert third["redundancy_shared_bits"] <= 0.05
        for name in ("ungated", "gate_only"):
            other = summary["per_seed"][name][seed]
            assert other["alignment_shared"] <= 0.2 and other["bits_shared"] <= 0.1


@pytest.mark.slow
def test_e1_control_ties_at_full_length_over_three_seeds(tmp_path):
    summary = run_e1(E1_CONTROL, tmp_path, seeds=[1, 2, 3], figures=False)
    for seed in ("1", "2", "3"):
        ungated = summary["per_seed"]["ungated"][seed]["bits_shared"]
        for name in E1_VARIANTS:
            report = summary["per_seed"][name][seed]
            assert abs(report["bits_shared"] - ungated) <= 0.05, (name, seed, report)
            assert report["redundancy_shared_bits"] <= 0.05, (name, seed, report)

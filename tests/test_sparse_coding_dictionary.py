"""The O&F dictionary rule (plasticsim.model.rules.sparse_coding_dictionary): gain
normalisation, and the network on built-in and Olshausen's images."""

from pathlib import Path

import numpy as np
import pytest

import plasticsim
from conftest import simulate
from plasticsim.spec.loading import load_protocol

ROOT = Path(__file__).resolve().parents[1]
OLSHAUSEN_IMAGES = ROOT.parent / "shared" / "data" / "olshausen" / "sparsenet_tcl_trainset"
needs_olshausen_images = pytest.mark.skipif(
    not (OLSHAUSEN_IMAGES / "image0").is_file(),
    reason=f"Olshausen's images are not at {OLSHAUSEN_IMAGES} (CI keeps them in ../shared)")


def test_gain_normalisation_brings_every_unit_to_the_variance_goal():
    spec = load_protocol(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                         small_protocol_overrides(15000))
    rule = spec.model.projections["dictionary"].rule
    goal = rule.variance_goal
    assert rule.gain_exponent == 0.02   # sparsenet.m's rule is the default
    from plasticsim.backends import build
    from plasticsim.engine.builder import build_plan
    simulation = build(build_plan(spec), "numpy")
    probes = simulation.plan.streams[0].draw[0](np.random.default_rng(7),
                                                np.ones((1, 4000), bool), np.float64)
    probes = probes["stimulus.input"][0]

    def respond():
        return simulation.respond(0, {"input": probes}, "coefficients")

    before = np.mean(respond() ** 2, axis=0)
    simulate(spec, simulation=simulation)
    coefficients = respond()
    ratio = np.mean(coefficients**2, axis=0) / goal
    gain = simulation.read("dictionary.gain")[0]
    # Unit-norm functions give ⟨a²⟩ ≈ 0.04 here; after 150 batches the gains have moved
    # each unit to the goal 0.1 (within a factor 1.5 for at least 90% of them).
    assert np.median(before) < goal / 1.5
    assert np.mean((ratio > 1 / 1.5) & (ratio < 1.5)) >= 0.9
    # No unit is silenced: each codes at least 5% of the patches, and no gain collapsed.
    assert np.mean(coefficients != 0, axis=0).min() > 0.05
    assert gain.min() > 0.2 and gain.max() < 5.0
    assert np.std(gain) > 0.02   # the gains did differentiate
    # The rows of the dictionary carry the gains (‖φ_i‖ = g_i).
    np.testing.assert_allclose(np.linalg.norm(simulation.read("dictionary.weights")[0],
                                              axis=1), gain, rtol=1e-10)


def small_protocol_overrides(samples: int) -> list[str]:
    """8×8 patches, 64 units: the shipped protocol scaled down to run in seconds."""
    return ["model.populations.input.size=64", "model.populations.coefficients.size=64",
            "stimuli.input.patch_size=8", f"schedule.samples={samples}",
            "record.every=10000", "learning_rates.dictionary.initial=5.0",
            "learning_rates.dictionary.tau=100000"]


@needs_olshausen_images
def test_small_network_on_olshausen_images_learns_gabors(tmp_path):
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_olshausen_images.yaml",
                             tmp_path, progress=False, figures=False, overrides=[
                                 f"stimuli.input.source.path={OLSHAUSEN_IMAGES}/image*",
                                 *small_protocol_overrides(50000)])
    summary = results.summary
    # Seeds 1–3 give 64%, 77% and 69% here (the pre-engine code: 73%, 81%, 66%); the full
    # protocol's 12×12 fields (slow test) fit better.
    assert summary["fraction_r2_above_0.9"] >= 0.60
    # 8×8 fields are broader in frequency than 12×12 ones (2.35 octaves here against 2.03
    # for the full protocol, whose 1.2–2.2 target the slow test checks).
    assert 1.2 <= summary["median_sf_bandwidth_octaves"] <= 2.5
    assert results.receptive_fields["coefficients"].shape == (64, 8, 8)
    assert results.weights["dictionary"].shape == (64, 64)


def test_small_network_on_builtin_images_learns_gabors(tmp_path):
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                             tmp_path, progress=False, overrides=small_protocol_overrides(30000))
    assert results.summary["fraction_r2_above_0.9"] >= 0.60
    assert results.summary["median_orientation_selectivity_index"] > 0.3
    assert (tmp_path / "figures" / "receptive_fields.png").is_file()
    assert np.all(np.diff(results.metrics["relative_residual"][1:]) < 0.2)


def test_same_seed_gives_identical_dictionaries(tmp_path):
    overrides = ["model.populations.input.size=16", "model.populations.coefficients.size=16",
                 "stimuli.input.patch_size=4", "schedule.samples=1000", "record.every=500"]
    first, second = (plasticsim.run(ROOT / "protocols" / "olshausen_field_image_patches.yaml",
                                    tmp_path / name, progress=False, figures=False,
                                    overrides=overrides) for name in ("a", "b"))
    np.testing.assert_array_equal(first.weights["dictionary"], second.weights["dictionary"])


@pytest.mark.slow
@needs_olshausen_images
def test_full_protocol_on_olshausen_images_meets_the_targets(tmp_path):
    results = plasticsim.run(ROOT / "protocols" / "olshausen_field_olshausen_images.yaml",
                             tmp_path, progress=False, figures=False, overrides=[
                                 f"stimuli.input.source.path={OLSHAUSEN_IMAGES}/image*"])
    assert results.summary["fraction_r2_above_0.9"] >= 0.70
    assert 1.2 <= results.summary["median_sf_bandwidth_octaves"] <= 2.2

"""The grating probe (plasticsim.model.probes.gratings) shown through the engine: a unit with
a known Gabor field gives its orientation and F1/F0 back; bad probes end at validate."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PROTOCOLS

from plasticsim.analysis.gabor import gabor_patch
from plasticsim.analysis.gratings import analyze_grating_responses, drifting_gratings
from plasticsim.backends import build
from plasticsim.cli import main
from plasticsim.engine.builder import build_plan
from plasticsim.model.probes.gratings import run_gratings
from plasticsim.spec.loading import load_protocol

PATCHES = PROTOCOLS / "linsker_image_patches.yaml"
FIXED = ["model.projections.feedforward.rule=none",
         "model.projections.feedforward.constraints=[]", "model.projections={feedforward: "
         "{pre: input, post: output, rule: none}}", "learning_rates={}",
         "schedule.warmup_samples=0", "schedule.samples=10", "record.every=10",
         "model.populations.output.size=2", "model.populations.output.output_noise_variance=0",
         "phases.noise_unlearning.enabled=false"]


def test_a_gabor_unit_through_the_engine_gives_its_orientation_and_f1_f0():
    spec = load_protocol(PATCHES, FIXED + [
        "probes={tuning: {kind: gratings, population: output, orientations: 24, phases: 16,"
        " spatial_frequencies: [0.1, 0.14, 0.2, 0.28]}}"])
    plan = build_plan(spec)
    simulation = build(plan, "numpy")
    theta = np.radians(30)
    gabor = gabor_patch((8, 8), 3.5, 3.5, theta, 1.6, 2.2, 0.2, 0.0).ravel()
    flat = np.ones(64) / 8.0                 # an untuned unit: the patch's mean
    simulation.write("feedforward.weights", np.stack([gabor, flat])[None])
    entry = plan.info["probes"]["tuning"]
    measured = run_gratings(spec.probes["tuning"], entry,
                            lambda inputs, population: simulation.respond(0, inputs, population),
                            np.random.default_rng(0))
    gratings = drifting_gratings((8, 8), [0.1, 0.14, 0.2, 0.28], 24, 16)
    tuning = analyze_grating_responses(measured["array"]["responses"], gratings, "rate")
    columns = tuning.columns
    difference = (columns["preferred_orientation_deg"][0] - 30.0 + 90) % 180 - 90
    assert abs(difference) < 2.0
    assert columns["modulation_ratio"][0] > 1.5
    # The flat unit sees only the gratings' mean over the patch: untuned (or silent).
    assert (not columns["responsive"][1]) or columns["circular_variance"][1] > 0.9


@pytest.mark.parametrize("probe, key, words", [
    ("{kind: gratings, population: nowhere}", "probes.tuning.population", "no population"),
    ("{kind: gratings, population: output, spatial_frequencies: [0.6]}",
     "probes.tuning.spatial_frequencies", "Nyquist"),
    ("{kind: gratings, population: output, grating_size: [12, 12]}",
     "probes.tuning.grating_shape", "larger than"),
])
def test_bad_probes_end_at_validate(probe, key, words, capsys):
    assert main(["validate", str(PATCHES), "--set", f"probes={{tuning: {probe}}}"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and key in error and words in error


def test_spike_counts_are_used_for_spiking_populations():
    from conftest import BUILTIN_IMAGES
    sailnet = load_protocol(PROTOCOLS / "sailnet_olshausen_images.yaml", BUILTIN_IMAGES + [
        "probes={tuning: {kind: gratings, population: spiking}}"])
    assert build_plan(sailnet).info["probes"]["tuning"]["response_kind"] == "spike_count"
    linear = load_protocol(PATCHES, FIXED + ["probes={tuning: {kind: gratings, "
                                             "population: output}}"])
    assert build_plan(linear).info["probes"]["tuning"]["response_kind"] == "rate"

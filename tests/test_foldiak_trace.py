"""Földiák's trace rule (plasticsim.model.rules.foldiak_trace) and its ``trace`` primitive:
the update equals ȳ_t = (1 − δ) ȳ_{t−1} + δ y_t, Δw = η ⟨ȳ (x − w)⟩ on hand-computed numbers,
and specs it cannot learn from are refused with the key."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PROTOCOLS

from plasticsim.backends.numpy_primitives import StepContext, run_operation
from plasticsim.cli import main
from plasticsim.engine.builder import build_plan
from plasticsim.engine.plan import Operation
from plasticsim.spec.loading import load_protocol

PROTOCOL = PROTOCOLS / "complex_cells.yaml"
#: Four frames per batch in sequences of two; short, so that building is quick.
SMALL = ["schedule.batch_size=4", "schedule.block_length=4", "schedule.samples=8",
         "record.every=8", "stimuli.input.sequence.frames=2",
         "model.projections.pooling.rule.trace_rate=0.25"]


def test_trace_primitive_on_a_hand_computed_case():
    """Two sequences of three frames, δ = 0.5: ȳ restarts from 0 at each sequence."""
    op = Operation("trace", "plasticity", reads={"source": "y"}, writes={"target": "trace"},
                   parameters={"sequence_length": 3, "rate": 0.5})
    state = {"y": np.array([[2.0, 0.0], [0.0, 2.0], [4.0, 0.0],
                            [1.0, 0.0], [1.0, 0.0], [1.0, 8.0]]), "trace": np.zeros((6, 2))}
    run_operation(op, state, StepContext(phase=0, training=True))
    expected = [[1.0, 0.0], [0.5, 1.0], [2.25, 0.5],
                [0.5, 0.0], [0.75, 0.0], [0.875, 4.0]]
    np.testing.assert_allclose(state["trace"], expected, rtol=0, atol=1e-15)


def test_the_built_rule_updates_weights_by_its_equation():
    """The plan's pooling operations, run on known counts, give Δw = η/B Σ_b ȳ_b (x_b − w)."""
    plan = build_plan(load_protocol(PROTOCOL, SMALL))
    operations = [op for op in plan.operations if op.origin == "model.projections.pooling.rule"]
    assert [op.primitive for op in operations] == ["trace", "hebbian", "apply_delta"]
    assert operations[0].parameters == {"sequence_length": 2, "rate": 0.25}
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=(4, 8)).astype(float)     # complex counts, 2 sequences
    x = rng.integers(0, 3, size=(4, 144)).astype(float)    # simple counts
    w = rng.random((8, 144))
    state = {"complex.activity": y, "simple.activity": x, "pooling.weights": w.copy(),
             "pooling.trace": np.zeros((4, 8)), "pooling.delta": np.zeros((8, 144))}
    rate = 0.3
    for op in operations:
        run_operation(op, state, StepContext(phase=0, training=True, rate=rate))
    trace = np.empty_like(y)
    for start in (0, 2):                                   # by hand, δ = 0.25
        trace[start] = 0.25 * y[start]
        trace[start + 1] = 0.75 * trace[start] + 0.25 * y[start + 1]
    expected = rate * np.mean([np.outer(trace[b], x[b]) - trace[b][:, None] * w
                               for b in range(4)], axis=0)
    np.testing.assert_allclose(state["pooling.trace"], trace, rtol=1e-14)
    np.testing.assert_allclose(state["pooling.delta"], expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(state["pooling.weights"], w + expected, rtol=1e-14)


def test_trace_weights_move_toward_the_input_when_the_trace_is_on():
    """η ȳ ≤ 1 keeps w a convex mix of w and x: non-negative inputs give non-negative weights."""
    plan = build_plan(load_protocol(PROTOCOL, SMALL))
    operations = [op for op in plan.operations if op.origin == "model.projections.pooling.rule"]
    x = np.zeros((4, 144))
    x[:, 0] = 2.0
    y = np.ones((4, 8))
    w = np.full((8, 144), 0.5)
    state = {"complex.activity": y, "simple.activity": x, "pooling.weights": w.copy(),
             "pooling.trace": np.zeros((4, 8)), "pooling.delta": np.zeros((8, 144))}
    for op in operations:
        run_operation(op, state, StepContext(phase=0, training=True, rate=1.0))
    updated = state["pooling.weights"]
    assert np.all(updated[:, 0] > 0.5) and np.all((updated[:, 1:] < 0.5) & (updated[:, 1:] > 0))


@pytest.mark.parametrize("override, key, words", [
    ("stimuli.input.sequence=null", "model.projections.pooling.rule", "temporally coherent"),
    ("stimuli.input.sequence.frames=3", "stimuli.input.sequence.frames", "divide the batch"),
    ("model.projections.pooling.rule.trace_rate=1.5", "trace_rate", ""),
])
def test_specs_the_rule_cannot_learn_from_are_refused(override, key, words, capsys):
    assert main(["validate", str(PROTOCOL), "--set", override]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and key in error and words in error


def test_a_drift_that_does_not_fit_the_images_is_refused_with_the_key(capsys):
    assert main(["validate", str(PROTOCOL), "--set", "stimuli.input.sequence.speed=20"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "stimuli.input.sequence:" in error
    assert "drifting 980 pixels" in error

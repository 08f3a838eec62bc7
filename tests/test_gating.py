"""Tests of plasticsim.model.gating: the gMLP spatial gating unit, the dendritic gate on the
engine (identity at initialisation), its plasticity, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import erf

from conftest import simulate
from plasticsim.cli import main as cli_main
from plasticsim.engine.builder import build_plan
from plasticsim.errors import SpecError
from plasticsim.model.gating import (decorrelated_drive, gate_value, gate_weights_from_kernel,
                                     gelu, gmlp_block, kernel_tap_index, layer_norm,
                                     spatial_gating_unit)
from plasticsim.spec.loading import protocol_from_document, resolve_protocol_document

LINSKER_PROTOCOL = "protocols/linsker1992_1d.yaml"


# ------------------------------------------------------------------ gMLP (Liu et al. 2021)

def _direct_spatial_gating_unit(Z, W, b, epsilon=1e-5):
    """s(Z) = Z1 ⊙ (W·norm(Z2) + b) written out with explicit loops over positions/channels."""
    n, channels = Z.shape
    half = channels // 2
    out = np.zeros((n, half))
    normalised = np.zeros((n, half))
    for i in range(n):
        row = Z[i, half:]
        mean = sum(row) / half
        variance = sum((v - mean) ** 2 for v in row) / half
        normalised[i] = [(v - mean) / np.sqrt(variance + epsilon) for v in row]
    for i in range(n):
        for c in range(half):
            gate = sum(W[i, j] * normalised[j, c] for j in range(n)) + b[i]
            out[i, c] = Z[i, c] * gate
    return out


def test_spatial_gating_unit_matches_the_formula():
    rng = np.random.default_rng(0)
    n, d, e = 5, 3, 4
    X = rng.standard_normal((n, d))
    U = rng.standard_normal((d, 2 * e))
    Z = 0.5 * X @ U * (1 + erf(X @ U / np.sqrt(2)))   # GeLU(XU), written independently
    assert np.allclose(gelu(X @ U), Z, rtol=0, atol=1e-14)
    W = rng.standard_normal((n, n))
    b = rng.standard_normal(n)
    assert np.allclose(spatial_gating_unit(Z, W, b), _direct_spatial_gating_unit(Z, W, b),
                       rtol=0, atol=1e-12)
    # Batched input gives the same per-example result.
    batch = np.stack([Z, 2 * Z])
    assert np.allclose(spatial_gating_unit(batch, W, b)[1],
                       _direct_spatial_gating_unit(2 * Z, W, b), atol=1e-12)


def test_spatial_gating_unit_is_the_identity_at_init_and_block_reduces_to_ffn():
    rng = np.random.default_rng(1)
    n, d, e = 6, 4, 3
    Z = rng.standard_normal((n, 2 * e))
    assert np.array_equal(spatial_gating_unit(Z, np.zeros((n, n)), np.ones(n)), Z[:, :e])
    X, U, V = rng.standard_normal((n, d)), rng.standard_normal((d, 2 * e)), \
        rng.standard_normal((e, d))
    # W = 0, b = 1: the block is X + GeLU(norm(X) U)[:, :e] V, a plain residual FFN.
    expected = X + gelu(layer_norm(X) @ U)[:, :e] @ V
    assert np.allclose(gmlp_block(X, U, np.zeros((n, n)), np.ones(n), V), expected, atol=1e-13)
    # The positions interact only through W: a non-zero W changes the output.
    assert not np.allclose(gmlp_block(X, U, 0.1 * np.ones((n, n)), np.ones(n), V), expected)


def test_dendritic_gate_with_linear_psi_is_the_sgu_gate():
    """ψ linear, κ = 1, m = 0, LayerNorm over the source: ψ = W_g·norm(ã) + b, gMLP's gate."""
    rng = np.random.default_rng(2)
    source = rng.standard_normal((7, 5))            # batch × source units
    W_g = rng.standard_normal((3, 5))
    _, gate = gate_value(layer_norm(source), W_g, 1.0, 1.0, 0.0, "linear")
    assert np.allclose(gate, layer_norm(source) @ W_g.T + 1.0, atol=1e-14)
    _, sigmoid_gate = gate_value(layer_norm(source), 0 * W_g, 0.0, 3.0, 0.0, "sigmoid")
    assert np.array_equal(sigmoid_gate, np.ones((7, 3)))   # 2σ(0) = 1 exactly


def test_shared_kernel_is_translation_invariant_and_local():
    taps = kernel_tap_index(n_units=4, n_source=8, kernel_size=3)
    kernel = np.array([1.0, 2.0, 3.0])
    W = gate_weights_from_kernel(kernel, taps)
    assert np.all((W != 0).sum(axis=1) == 3)                 # a local arbor of 3 taps
    # Unit i is centred on source 2i; shifting the unit by one shifts its row by two sites.
    for i in range(3):
        assert np.array_equal(np.roll(W[i], 2), W[i + 1])
    assert W[0, 7] == 1.0 and W[0, 0] == 2.0 and W[0, 1] == 3.0   # periodic arbor


# -------------------------------------------------------------- spec + NumPy backend

def _protocol(gate=None, samples=10000, warmup=2000, extra=()):
    document, _ = resolve_protocol_document(
        LINSKER_PROTOCOL, [f"schedule.samples={samples}", f"schedule.warmup_samples={warmup}",
                           "record.every=5000", *extra])
    if gate is not None:
        document["model"]["populations"]["context"] = {"kind": "input", "size": 32}
        document["model"]["populations"]["output"]["gate"] = gate
        document["stimuli"]["context"] = {"kind": "gaussian_ring", "population": "context"}
    return protocol_from_document(document)


def _train(spec):
    simulation = simulate(spec)
    return {name: simulation.read(name)[0] for name in simulation.plan.states}


def _initial(spec, name):
    return build_plan(spec).states[name].initial[0]


@pytest.mark.parametrize("gate", [
    {"source": "context"},
    {"source": "context", "connectivity": "kernel", "kernel_size": 5, "nonlinearity": "linear"},
    {"source": "context", "nonlinearity": "relu", "normalisation": "none"},
])
def test_identity_gate_reproduces_the_ungated_network(gate):
    """W_g = 0 with ψ(b) = 1: the gated 1-D Linsker run equals the ungated one (≤ 1e-12)."""
    ungated = _train(_protocol())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # linear ψ warns (it can go negative)
        gated = _train(_protocol(gate))
    for name in ("feedforward.weights", "lateral.Q"):
        assert np.max(np.abs(gated[name] - ungated[name])) <= 1e-12
    # and the run actually learned something (not a trivially equal pair of initial states)
    assert np.max(np.abs(ungated["feedforward.weights"]
                         - _initial(_protocol(), "feedforward.weights"))) > 0.1


def test_gate_rules_learn_what_they_should():
    """Predictive rule: W_g regresses the rectified rate [d]₊ on ã (→ ½C for Gaussian d fed by
    the unit's own input); from an independent stream there is nothing to predict."""
    # Gate fed by the unit's own basal input: ĝ must learn to predict [d]₊ ≈ ½ d + const.
    spec = _protocol({"source": "input", "learning_rate": 0.002, "normalisation": "none"},
                     samples=1000, warmup=20000)
    with pytest.warns(UserWarning, match="own basal input"):
        own = _train(spec)
    C, W_g = own["feedforward.weights"], own["output.gate_weights"]
    # Least-squares target of [d]₊ on x for Gaussian d: ½ C (Stein's lemma, E[1(d>0)] = ½).
    # Compare the predictions, i.e. in the metric of the input covariance q_L: weakly excited
    # modes (variance σ_n² = 0.1) are learned slowly and matter little to the prediction.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the same warning again
        layer = build_plan(spec).info["member_info"][0]["linear_gaussian_layers"][0]
    q = layer["signal_covariance"] + layer["noise_covariance"]
    cross = np.trace(W_g @ q @ C.T)
    cosine = cross / np.sqrt(np.trace(W_g @ q @ W_g.T) * np.trace(C @ q @ C.T))
    assert cosine > 0.95   # LMS misadjustment at a constant rate keeps it below 1
    assert cross / np.trace(C @ q @ C.T) == pytest.approx(0.5, rel=0.1)   # the ½ of Stein
    # Independent context stream: nothing to predict, W_g stays small.
    independent = _train(_protocol({"source": "context", "learning_rate": 0.002,
                                    "normalisation": "none"}, samples=1000, warmup=20000))
    # Compared as prediction variance (same q_L: the context ring has the input's statistics);
    # what remains is the LMS noise of a constant rate.
    W_independent = independent["output.gate_weights"]
    # (≈ 0.12 of the learned prediction at η_g = 0.002; a real signal would be ≈ 1).
    assert np.trace(W_independent @ q @ W_independent.T) < 0.25 * np.trace(W_g @ q @ W_g.T)


def test_third_factor_rate_is_the_laterally_decorrelated_basal_drive():
    """e_i = d_i − (linear regression of d_i on the d_j, j ≠ i) under Q̂_b: e = d for
    uncorrelated units; for an ON/OFF pair (d₂ ≈ −d₁) what remains is where they differ."""
    rng = np.random.default_rng(0)
    n = 4000
    # Exactly uncorrelated drives (orthogonal columns): Q̂_b is diagonal and e = d.
    uncorrelated = np.linalg.qr(rng.standard_normal((n, 8)))[0] * np.linspace(1, 3, 8)
    moment = uncorrelated.T @ uncorrelated / n
    assert np.allclose(decorrelated_drive(uncorrelated, moment), uncorrelated, rtol=0,
                       atol=1e-10)
    # Correlated drives: e_i is the least-squares residual of d_i on the other units' drives
    # (Q̂_b is this batch's second moment).
    common, private = rng.standard_normal((2, n))
    drives = rng.standard_normal((n, 8))
    drives[:, 0], drives[:, 1] = common + 0.1 * private, -common + 0.1 * private
    e = decorrelated_drive(drives, drives.T @ drives / n)
    for i in range(8):
        others = np.delete(drives, i, axis=1)
        residual = drives[:, i] - others @ np.linalg.lstsq(others, drives[:, i], rcond=None)[0]
        assert np.allclose(e[:, i], residual, rtol=0, atol=1e-9)
    # The ON/OFF pair: the common part is explained by the partner; e₁ ≈ e₂ ∝ the difference.
    assert np.corrcoef(e[:, 0], private)[0, 1] > 0.99
    assert np.corrcoef(e[:, 0], e[:, 1])[0, 1] > 0.95


# ------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("gate, key, words", [
    ({"source": "dendrites"}, "populations.output.gate.source", "no population named"),
    ({"source": "context", "connectivity": "kernel", "kernel_size": 40},
     "populations.output.gate.kernel_size", "larger than"),
    ({"source": "context", "nonlinearity": "tanh"}, "gate.nonlinearity", "sigmoid"),
    ({"source": "output"}, "populations.output.gate.source", "recurrent"),
])
def test_bad_gate_input_names_the_key_and_exits_2(tmp_path, capsys, gate, key, words):
    import yaml

    document, _ = resolve_protocol_document(LINSKER_PROTOCOL)
    document["model"]["populations"]["context"] = {"kind": "input", "size": 32}
    document["model"]["populations"]["output"]["gate"] = gate
    document["stimuli"]["context"] = {"kind": "gaussian_ring", "population": "context"}
    with pytest.raises(SpecError) as error:
        build_plan(protocol_from_document(document))
    assert key in str(error.value) and words in str(error.value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document))
    assert cli_main(["validate", str(path)]) == 2
    message = capsys.readouterr().err
    assert key in message and words in message and f"{path}:" in message

"""The primitives of the step plan in plain NumPy: the reference every backend is held to.

Each function applies one :class:`~plasticsim.engine.plan.Operation` to one member's state
(a mapping of state names to arrays without the member axis) for one step. ``context`` carries
the step's phase, whether it is a training step, the operation's rate for this step and the
operation's streams for this step. A function returns ``None``, or a
:class:`Failure` when the step cannot be completed (a settling network that does not converge,
a singular matrix). The semantics here are the definition of each primitive
(:data:`plasticsim.engine.plan.PRIMITIVES`); the other backends reproduce them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.constraints.norms import constrain
from ..model.gating import (GATE_NONLINEARITIES, decorrelated_drive,
                            gate_weights_from_kernel, normalise_gate_input)
from ..model.neurons.lca import lca_inference
from ..model.neurons.lif import lif_spike_counts
from ..model.neurons.som import competition
from ..model.settling import settle


@dataclass
class StepContext:
    """What a primitive needs to know about the current step besides the state."""

    phase: int
    training: bool
    rate: float | None = None
    streams: dict | None = None


@dataclass(frozen=True)
class Failure:
    """Why a step could not be completed: the offending quantity, its value and a hint."""

    quantity: str
    value: float
    detail: str


def load_stream(op, state, context):
    state[op.writes["target"]][...] = context.streams["stream"]


def matmul(op, state, context):
    product = state[op.reads["source"]] @ state[op.reads["weights"]].T
    if op.parameters["accumulate"]:
        state[op.writes["target"]] += product
    else:
        state[op.writes["target"]][...] = product


def add_stream(op, state, context):
    state[op.writes["target"]] += context.streams["stream"]


def gate(op, state, context):
    parameters = op.parameters
    target = state[op.writes["target"]]
    basal = state[op.writes["basal"]]
    basal[...] = target
    normalised = normalise_gate_input(state[op.reads["source"]], parameters["normalisation"])
    state[op.writes["normalised_source"]][...] = normalised
    prediction = normalised @ state[op.reads["weights"]].T
    psi = GATE_NONLINEARITIES[parameters["nonlinearity"]][0]
    value = psi(parameters["bias"] + parameters["gain"] * (prediction - parameters["offset"]))
    state[op.writes["prediction"]][...] = prediction
    state[op.writes["gate_value"]][...] = value
    target[...] = basal * value


def settle_primitive(op, state, context):
    parameters = op.parameters
    estimate = state[op.reads["estimate"]][context.phase]
    drive = state[op.reads["drive"]]
    try:
        scaled, residual = settle(drive, estimate, parameters["method"],
                                  parameters["iterations"], parameters["tolerance"],
                                  parameters["alpha"], parameters["step"])
    except np.linalg.LinAlgError:
        return Failure("settling residual", float("nan"),
                       "Q̂ is singular: exact settling has no solution")
    if not residual <= 1.0:  # also catches NaN
        return Failure("settling residual", residual,
                       "lateral network does not converge: α ≥ 2/λ_max(Q̂)?")
    state[op.writes["target"]][...] = scaled
    monitor = state[op.writes["residual"]]
    monitor[...] = max(float(monitor), residual)


def running_average(op, state, context):
    source = state[op.reads["source"]]
    target = state[op.writes["target"]]
    if op.parameters.get("phase_indexed"):
        target = target[context.phase]
    form = op.parameters["form"]
    if op.parameters.get("transform") == "relu":
        source = np.maximum(source, 0.0)
    if form == "outer":
        # One sample: the outer product exactly (BLAS's one-term sums are slow at this shape).
        statistic = source.T * source if source.shape[0] == 1 else source.T @ source
        statistic /= source.shape[0]
    elif form == "square":
        statistic = np.mean(source**2, axis=0)
    else:
        statistic = source.mean(axis=0)
    # In place (the same operations in the same order as rate·(statistic − target)): at
    # 1024×256 the temporaries cost as much as the arithmetic.
    np.subtract(statistic, target, out=statistic)
    statistic *= context.rate
    target += statistic


def hebbian(op, state, context):
    parameters = op.parameters
    post, pre = state[op.reads["post"]], state[op.reads["pre"]]
    batch = pre.shape[0]
    # The update is built in the delta array itself, operation by operation (no temporaries
    # of the weights' size: one-sample steps of large layers are bound by memory traffic).
    update = state[op.writes["delta"]]
    if batch == 1:   # an outer product: exactly the one-term sum, without BLAS's K=1 overhead
        np.multiply(post.T, pre, out=update)
    else:
        np.matmul(post.T, pre, out=update)
    decay = parameters["decay"]
    if decay != "none":
        weights = state[op.reads["weights"]]
        if decay == "diagonal":
            update -= (post**2).sum(axis=0)[:, None] * weights
        elif decay == "linear":
            update -= post.sum(axis=0)[:, None] * weights
        elif decay == "subspace":
            update -= (post.T @ post) @ weights
        else:  # sanger
            update -= np.tril(post.T @ post) @ weights
    if parameters["reduce"] == "mean":
        update /= batch
    if parameters.get("offset"):
        update -= parameters["offset"]
    update *= parameters["signs"][context.phase] * context.rate


def solve_right(op, state, context):
    target = state[op.writes["target"]]
    try:
        target[...] = np.linalg.solve(state[op.reads["matrix"]], target.T).T
    except np.linalg.LinAlgError:
        return Failure("input covariance", float("nan"),
                       "q̂_L is singular: the natural-gradient step has no solution")


def third_factor(op, state, context):
    """Δc_i += ρ η Σ_b [e_bi]₊ (p_bi − p̄_i) x_b, e the basal drive decorrelated by Q̂_b⁻¹."""
    try:
        decorrelated = np.maximum(decorrelated_drive(state[op.reads["basal"]],
                                                     state[op.reads["moment"]]), 0.0)
    except np.linalg.LinAlgError:
        return Failure("basal moment", float("nan"),
                       "Q̂_b is singular: the basal drives cannot be decorrelated")
    burst = np.maximum(state[op.reads["gate_value"]], 0.0)
    factor = decorrelated * (burst - state[op.reads["average_burst"]])
    state[op.writes["delta"]] += (op.parameters["ratio"] * context.rate) * (
        factor.T @ state[op.reads["pre"]])


def predictive_gate(op, state, context):
    """ΔW_g = η_g Σ_b ([d_b]₊ − ĝ_b)ᵀ ã_b (a shared kernel learns the sum over its taps)."""
    basal = state[op.reads["basal"]]
    update = op.parameters["learning_rate"] * (
        (np.maximum(basal, 0.0) - state[op.reads["prediction"]]).T
        @ state[op.reads["normalised_source"]])
    weights = state[op.writes["weights"]]
    if "kernel" in op.writes:
        kernel, taps = state[op.writes["kernel"]], state[op.reads["taps"]]
        in_arbor = taps >= 0
        kernel += np.bincount(taps[in_arbor], weights=update[in_arbor], minlength=kernel.size)
        weights[...] = gate_weights_from_kernel(kernel, taps)
    else:
        weights += update


def constrain_primitive(op, state, context):
    parameters = op.parameters
    delta = (state[op.reads["delta"]] if context.training and parameters["uses_delta"]
             else None)
    covariance = state[op.reads["covariance"]] if "covariance" in op.reads else None
    constrain(state[op.writes["weights"]], delta, parameters["budget"], parameters["per_unit"],
              parameters["value"], covariance, parameters["natural"])


def apply_delta(op, state, context):
    state[op.writes["weights"]] += state[op.reads["delta"]]


def clip(op, state, context):
    weights = state[op.writes["weights"]]
    np.maximum(weights, op.parameters["minimum"], out=weights)
    if op.parameters.get("zero_diagonal"):
        np.fill_diagonal(weights, 0.0)


def bounded_hebbian(op, state, context):
    """Linsker (1986): Δw = η A ⊙ (Σ_b y_b x_bᵀ/q₀ + B(k₁ + k₂ Σ_k w_k)), then A c₋ ≤ w ≤ A c₊."""
    parameters = op.parameters
    post, pre = state[op.reads["post"]], state[op.reads["pre"]]
    arbor = state[op.reads["arbor"]]
    weights = state[op.writes["weights"]]
    drift = pre.shape[0] * (parameters["k1"] + parameters["k2"] * weights.sum(axis=1))
    update = (post.T @ pre) * parameters["inverse_variance"] + drift[:, None]
    weights += context.rate * arbor * update
    np.clip(weights, parameters["lower"] * arbor, parameters["upper"] * arbor, out=weights)


def lca(op, state, context):
    parameters = op.parameters
    state[op.writes["target"]][...] = lca_inference(
        state[op.reads["input"]], state[op.reads["weights"]], prior=parameters["prior"],
        sparsity=parameters["sparsity"], prior_scale=parameters["prior_scale"],
        steps=parameters["steps"], dt=parameters["dt"])


def residual(op, state, context):
    state[op.writes["target"]][...] = (state[op.reads["input"]]
                                       - state[op.reads["code"]] @ state[op.reads["weights"]])


def gain_normalisation(op, state, context):
    gain, weights = state[op.writes["gain"]], state[op.writes["weights"]]
    gain *= (state[op.reads["variance"]] / op.parameters["goal"]) ** op.parameters["exponent"]
    # A unit silent for very long has v → 0; keep its gain representable.
    np.maximum(gain, 1e-6, out=gain)
    weights *= (gain / np.linalg.norm(weights, axis=1))[:, None]


def lif_window(op, state, context):
    drive = state[op.reads["drive"]]
    lateral = state[op.reads["lateral"]] if "lateral" in op.reads else np.zeros(
        (drive.shape[1], drive.shape[1]), drive.dtype)
    state[op.writes["target"]][...] = lif_spike_counts(
        drive, lateral, state[op.reads["thresholds"]], time_steps=op.parameters["steps"],
        dt=op.parameters["dt"])


def homeostasis(op, state, context):
    state[op.writes["target"]] += op.parameters["rate"] * (
        state[op.reads["source"]].mean(axis=0) - op.parameters["target_rate"])


def som_competition(op, state, context):
    state[op.writes["target"]][...] = competition(
        state[op.reads["input"]], state[op.reads["weights"]], state[op.reads["distances"]],
        context.rate, op.parameters["neighbourhood"])


def trace(op, state, context):
    """Földiák's (1991) activity trace ȳ_t = (1 − δ) ȳ_{t−1} + δ y_t, run along each sequence
    of ``sequence_length`` consecutive batch rows and started from ȳ_{−1} = 0."""
    source = state[op.reads["source"]]
    target = state[op.writes["target"]]
    length, rate = op.parameters["sequence_length"], op.parameters["rate"]
    sequences = source.reshape(-1, length, source.shape[-1])
    traces = target.reshape(sequences.shape)
    previous = np.zeros_like(sequences[:, 0])
    for frame in range(length):   # a recursion in time: one frame after the other
        previous = (1.0 - rate) * previous + rate * sequences[:, frame]
        traces[:, frame] = previous


#: Primitive name → implementation.
PRIMITIVES = {
    "load_stream": load_stream, "matmul": matmul, "add_stream": add_stream, "gate": gate,
    "settle": settle_primitive, "running_average": running_average, "hebbian": hebbian,
    "solve_right": solve_right, "third_factor": third_factor,
    "predictive_gate": predictive_gate, "constrain": constrain_primitive,
    "apply_delta": apply_delta, "clip": clip, "bounded_hebbian": bounded_hebbian, "lca": lca, "residual": residual,
    "gain_normalisation": gain_normalisation, "lif_window": lif_window,
    "homeostasis": homeostasis, "som_competition": som_competition, "trace": trace,
}


def run_operation(op, state: dict, context: StepContext):
    """Apply ``op`` to one member's ``state`` for one step; a :class:`Failure` or None."""
    return PRIMITIVES[op.primitive](op, state, context)

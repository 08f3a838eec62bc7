"""Multiplicative gating: gMLP's spatial gating unit and its dendritic (two-compartment) reading.

Machine-learning side (Liu, Dai, So & Le 2021, "Pay attention to MLPs")
------------------------------------------------------------------------
:func:`spatial_gating_unit` computes, for Z of shape (…, n positions, 2e channels),

    Z1, Z2 = split(Z, channels);   s(Z) = Z1 ⊙ (W · LayerNorm(Z2) + b)

with LayerNorm over channels, W (n × n) mixing positions and b (n,) one bias per position.
With W = 0 and b = 1 the unit returns Z1: the block starts as a plain feed-forward network.
:func:`gmlp_block` is the whole block: X + s(GeLU(LayerNorm(X) U)) V.

Dendritic side (two-compartment units)
--------------------------------------
A two-compartment unit i has a basal drive d_i (its feedforward input) and an apical gate
compartment fed by *another* population (the gMLP "split"):

    y_i = φ(d_i) · ψ(b + κ (W_g ã − m)_i),     ã = normalise(activity of the gate source)

φ is the unit's own rate function (linear for Linsker units, so the gated network with
W_g = 0 and ψ(b) = 1 *is* the ungated one). ψ: ``linear`` (exactly gMLP), ``relu`` or
``sigmoid`` (2σ, so ψ(0) = 1). Plasticity, all from quantities at the unit itself:

- gate weights, predictive rule (Urbanczik & Senn 2014): ΔW_g = η_g ([d]₊ − ĝ) ãᵀ, where
  ĝ = W_g ã is the apical prediction of the unit's (rectified) rate;
- feedforward third factor (burst-style, Payeur et al. 2021), sensing steps only:
  Δc_i = ρ η [e_i]₊ (p_i − p̄_i) x, p_i = [g_i]₊, p̄_i a running average of p_i, and
  e_i = d_i − Σ_{j≠i} β_ij d_j the basal drive after lateral decorrelation (below).

Rates are rectified in both rules: with symmetric sources and linear rates the drift of the
third factor, E[d ĝ x], is a third moment and vanishes; rectification turns it into
E[[d]₊] Cov(x, ĝ) — the direction of the basal input that predicts the apical stream.

Why e and not d in the third factor: the per-unit term is blind to the other units, and the
Linsker lateral network cannot stop two units from sending the same direction once the gate
shapes their outputs: a rectifying gate turns an ON/OFF pair (c₂ ≈ −c₁) into outputs
y₁ ≈ 2[d₁]₊, y₂ ≈ 2[−d₁]₊ whose second moment E[y₁y₂] is ≈ 0, so Q̂ sees them as independent
(measured: E1 runs ended with cos(c₁, c₂) ≈ −0.8 to −1 in the shared subspace and up to
0.5 bit of redundancy). The third factor therefore reads the *basal* drive decorrelated by
its own running second moment Q̂_b = ⟨d dᵀ⟩ (sensing steps, rate ``average_rate``):
e_i = (d Q̂_b⁻¹)_i / (Q̂_b⁻¹)_ii, the residual of regressing d_i on the other units' drives —
what an anti-Hebbian lateral network among the basal compartments settles to (Földiák
1990; Linsker's own α y = Q̂⁻¹Y, normalised so that e = d for uncorrelated units). For a
nearly redundant pair it amplifies the part in which c₁ and c₂ differ, so the redundant
state is unstable; for decorrelated units the rule is the plain [d]₊ one.

A shared ``kernel`` (translation-invariant W_g inside a local arbor) learns with the sum of
its units' local updates, as weight sharing in a convolution does; that sum is the one
non-local idealisation here and is said so in :class:`DendriticGate`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import model_validator

from ..schema import AveragingRate, Finite, NonNegativeFinite, Size, Spec
from .registry import SENSING

# --------------------------------------------------------------------- gMLP (ML side)

LAYER_NORM_EPSILON = 1e-5  # PyTorch's and the gMLP reference code's default


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GeLU, x Φ(x) = ½ x (1 + erf(x/√2)) (Hendrycks & Gimpel 2016)."""
    from scipy.special import erf  # on use: slow to import
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def layer_norm(x: np.ndarray, axis: int = -1, epsilon: float = LAYER_NORM_EPSILON,
               scale: np.ndarray | None = None, shift: np.ndarray | None = None) -> np.ndarray:
    """(x − mean) / √(var + ε) along ``axis``, then × scale + shift (LayerNorm).

    Examples
    --------
    >>> np.round(layer_norm(np.array([1.0, 3.0])), 3)
    array([-1.,  1.])
    """
    centred = x - x.mean(axis=axis, keepdims=True)
    normalised = centred / np.sqrt((centred**2).mean(axis=axis, keepdims=True) + epsilon)
    if scale is not None:
        normalised = normalised * scale
    if shift is not None:
        normalised = normalised + shift
    return normalised


def spatial_gating_unit(Z: np.ndarray, W: np.ndarray, b: np.ndarray,
                        epsilon: float = LAYER_NORM_EPSILON,
                        norm_scale: np.ndarray | None = None,
                        norm_shift: np.ndarray | None = None) -> np.ndarray:
    """gMLP's spatial gating unit s(Z) = Z1 ⊙ (W · LayerNorm(Z2) + b).

    Parameters
    ----------
    Z : ndarray, shape (..., n, 2e)
        n positions (tokens), 2e channels; Z1 is the first half of the channels, Z2 the second.
    W : ndarray, shape (n, n)
        Spatial projection: (W · V)[i, c] = Σ_j W[i, j] V[j, c]. Initialised ≈ 0 in gMLP.
    b : ndarray, shape (n,)
        One bias per position. Initialised to 1 in gMLP.
    epsilon : float
        LayerNorm's ε.
    norm_scale, norm_shift : ndarray, shape (e,), optional
        LayerNorm's learnable affine parameters (default 1 and 0).

    Returns
    -------
    ndarray, shape (..., n, e)

    Examples
    --------
    >>> Z = np.arange(8.0).reshape(2, 4)          # n = 2 positions, 4 channels
    >>> spatial_gating_unit(Z, np.zeros((2, 2)), np.ones(2))   # identity at init: Z1
    array([[0., 1.],
           [4., 5.]])
    """
    channels = Z.shape[-1]
    if channels % 2:
        raise ValueError(f"the spatial gating unit splits channels in two; got {channels}")
    n = Z.shape[-2]
    if W.shape != (n, n) or np.shape(b) != (n,):
        raise ValueError(f"W must be ({n}, {n}) and b ({n},) for {n} positions; got "
                         f"{W.shape} and {np.shape(b)}")
    half = channels // 2
    Z1, Z2 = Z[..., :half], Z[..., half:]
    gate = np.einsum("ij,...jc->...ic", W, layer_norm(Z2, -1, epsilon, norm_scale, norm_shift))
    return Z1 * (gate + np.asarray(b)[:, None])


def gmlp_block(X: np.ndarray, U: np.ndarray, W: np.ndarray, b: np.ndarray, V: np.ndarray,
               epsilon: float = LAYER_NORM_EPSILON) -> np.ndarray:
    """One gMLP block: X + s(GeLU(LayerNorm(X) U)) V (Liu et al. 2021, Fig. 1).

    Parameters
    ----------
    X : ndarray, shape (..., n, d)
    U : ndarray, shape (d, 2e)
        Channel projection into the gated width (Z = GeLU(norm(X) U)).
    W, b
        The spatial gating unit's parameters (see :func:`spatial_gating_unit`).
    V : ndarray, shape (e, d)
        Channel projection back to the model width.

    Returns
    -------
    ndarray, shape (..., n, d)
    """
    Z = gelu(layer_norm(X, -1, epsilon) @ U)
    return X + spatial_gating_unit(Z, W, b, epsilon) @ V


# ----------------------------------------------------------- dendritic gate (model side)

#: ψ and the bias b that makes ψ(b) = 1 (so the gate starts open at exactly one).
GATE_NONLINEARITIES = {
    "linear": (lambda u: u, 1.0),
    "relu": (lambda u: np.maximum(u, 0.0), 1.0),
    "sigmoid": (lambda u: 2.0 / (1.0 + np.exp(-u)), 0.0),
}


def default_gate_bias(nonlinearity: str) -> float:
    """The bias b with ψ(b) = 1 for a gate nonlinearity."""
    return GATE_NONLINEARITIES[nonlinearity][1]


def normalise_gate_input(activity: np.ndarray, normalisation: str) -> np.ndarray:
    """ã: ``layer`` centres and scales each sample across the source population; ``none``."""
    if normalisation == "none":
        return activity
    return layer_norm(activity, axis=-1)


def kernel_tap_index(n_units: int, n_source: int, kernel_size: int) -> np.ndarray:
    """Tap of the shared kernel that connects unit i to source unit j (−1 outside the arbor).

    Unit i sits at ring position round(i · n_source / n_units) of the source population; its
    arbor is the ``kernel_size`` source units centred there (offsets −⌊k/2⌋ … k − 1 − ⌊k/2⌋,
    periodic), and tap t connects it to offset t − ⌊k/2⌋. Every unit uses the same kernel:
    W_g[i, j] = kernel[tap[i, j]].
    """
    if kernel_size > n_source:
        raise ValueError(f"kernel_size {kernel_size} > source population size {n_source}")
    centres = np.round(np.arange(n_units) * n_source / n_units).astype(int)
    taps = np.full((n_units, n_source), -1, dtype=np.int64)
    half = kernel_size // 2
    for tap in range(kernel_size):
        taps[np.arange(n_units), (centres + tap - half) % n_source] = tap
    return taps


def gate_weights_from_kernel(kernel: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Dense W_g (units × source) of a shared kernel; zero outside each unit's arbor."""
    return np.where(taps >= 0, kernel[np.clip(taps, 0, None)], 0.0)


def gate_value(normalised_source: np.ndarray, gate_weights: np.ndarray, bias: float,
               gain: float, offset: float, nonlinearity: str) -> tuple[np.ndarray, np.ndarray]:
    """Apical prediction ĝ = ã W_gᵀ and gate g = ψ(b + κ(ĝ − m)) for a batch.

    Returns
    -------
    prediction, gate : ndarray, shape (batch, units)
    """
    prediction = normalised_source @ gate_weights.T
    psi = GATE_NONLINEARITIES[nonlinearity][0]
    return prediction, psi(bias + gain * (prediction - offset))


def decorrelated_drive(basal: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """e = d − (what the other units' basal drives predict of d): the third factor's rate.

    e_i = (d Q̂_b⁻¹)_i / (Q̂_b⁻¹)_ii, the residual of the linear regression of d_i on the other
    units' d_j under the second moment Q̂_b: what a lateral anti-Hebbian network on the basal
    compartments settles to. For uncorrelated units e = d.
    """
    precision = np.linalg.inv(moment)
    return basal @ precision / np.diag(precision)


# ------------------------------------------------------------------------------ spec
class ThirdFactorSpec(Spec):
    """Burst-style third factor on the feedforward rule (Payeur et al. 2021).

    Sensing steps add Δc_i = ``ratio``·η [e_i]₊ (p_i − p̄_i) x to the feedforward update, where
    e_i is the basal drive d_i minus its linear prediction from the other units' basal drives
    (lateral decorrelation by Q̂_b = ⟨d dᵀ⟩), p_i = [g_i]₊ the (rectified) gate value read as a
    burst probability and p̄_i its running average; p̄ and Q̂_b move at ``average_rate`` per
    sample. ``ratio`` is the ratio of the third-factor rate to the feedforward rate η.
    """

    ratio: NonNegativeFinite = 1.0
    average_rate: AveragingRate = 0.001


class GateSpec(Spec):
    """The apical (gate) compartment of a two-compartment unit.

    y = φ(d) ⊙ ψ(b + κ(W_g·ã − m)): d is the basal (feedforward) drive, ã the output of the
    ``source`` population after ``normalisation`` (``layer``: centre and scale across the
    source population per sample, gMLP's LayerNorm on Z2; ``none``). ``connectivity``:
    ``dense`` W_g, or ``kernel``: one translation-invariant kernel of ``kernel_size`` taps
    shared by all units inside a local arbor (gMLP's spatial W). ``nonlinearity`` ψ:
    ``linear`` (exactly gMLP; may go negative), ``relu``, ``sigmoid`` (2σ, so ψ(0) = 1).
    ``bias`` b defaults to the value that makes ψ(b) = 1; ``gain`` κ, ``offset`` m.
    W_g starts i.i.d. normal with s.d. ``init_scale`` (0: exactly the ungated network).
    ``learning_rate`` η_g of the predictive rule ΔW_g = η_g ([d]₊ − ĝ) ãᵀ with ĝ = W_g·ã
    (0: fixed). ``third_factor`` adds the burst-style term to the feedforward rule.
    """

    source: str
    connectivity: Literal["dense", "kernel"] = "dense"
    kernel_size: Size | None = None
    normalisation: Literal["layer", "none"] = "layer"
    nonlinearity: Literal["linear", "relu", "sigmoid"] = "sigmoid"
    bias: Finite | None = None
    gain: Finite = 1.0
    offset: Finite = 0.0
    init_scale: NonNegativeFinite = 0.0
    learning_rate: NonNegativeFinite = 0.0
    third_factor: ThirdFactorSpec | None = None

    @model_validator(mode="after")
    def _kernel_has_a_size(self):
        if self.connectivity == "kernel" and self.kernel_size is None:
            raise ValueError("connectivity: kernel needs kernel_size (taps of the shared "
                             "kernel)")
        return self


# --------------------------------------------------------------------------- builder
def build_gate(population, ctx) -> None:
    """Emit the gate compartment of a linear population (slot ``gate``) and its plasticity.

    State (``<population>.`` prefix): ``gate_weights`` W_g (units × source), ``gate_kernel``
    and ``gate_taps`` (shared kernel), ``basal`` d, ``gate_prediction`` ĝ, ``gate_value`` g,
    ``gate_source`` ã, ``average_burst`` p̄ and ``basal_moment`` Q̂_b (third factor).

    Every term is local to unit i: [d_i]₊, ĝ_i, g_i and p̄_i live at the unit, ã_j and x_j at
    its synapses; e_i is the unit's basal drive after lateral inhibition by the other units'
    basal drives (the same kind of lateral network as Linsker's, computed at its fixed point).
    The shared kernel's update sums the units' local updates (weight sharing): that sum is not
    local and is the ML idealisation, as in gMLP itself.
    """
    spec = population.spec.gate
    name, size = population.name, population.size
    key = f"{population.key}.gate"
    source = ctx.population_named(spec.source, f"{key}.source")
    if source is population:
        ctx.error(f"{key}.source", "a gate fed by its own population is recurrent; gate a "
                  "population with the output of another one")
    if source.index >= population.index:
        ctx.error(f"{key}.source", f"the gate source {spec.source!r} is downstream of "
                  f"{name!r} (or in a cycle with it): its output is not known when "
                  f"{name!r} is gated")
    if spec.nonlinearity == "linear":
        ctx.warn(f"{key}.nonlinearity: linear gates (exactly gMLP) can go negative; a rate "
                 "model reads a negative gate as a sign flip")
    basal_sources = {projection.pre.name for projection in population.incoming}
    if spec.source in basal_sources:
        ctx.warn(f"{key}.source: the gate reads the unit's own basal input "
                 f"({spec.source!r}); gMLP's split feeds the gate another population")
    bias = default_gate_bias(spec.nonlinearity) if spec.bias is None else spec.bias
    batch = ctx.batch_size
    rng = ctx.initial_weights_rng(f"gate.{name}")
    if spec.connectivity == "kernel":
        if spec.kernel_size > source.size:
            ctx.error(f"{key}.kernel_size", f"{spec.kernel_size} taps is larger than the "
                      f"source population {spec.source!r} ({source.size} units)")
        taps = kernel_tap_index(size, source.size, spec.kernel_size)
        kernel = spec.init_scale * rng.standard_normal(spec.kernel_size)
        weights = gate_weights_from_kernel(kernel, taps)
        ctx.state(f"{name}.gate_kernel", kernel.shape, kernel, dtype="float64",
                  role="weights", description="shared gate kernel (taps)")
        ctx.state(f"{name}.gate_taps", taps.shape, taps, dtype="int64", role="constant",
                  description="tap of the shared kernel connecting unit i to source unit j "
                  "(−1 outside the arbor)")
    else:
        weights = spec.init_scale * rng.standard_normal((size, source.size))
    gate_weights = ctx.state(f"{name}.gate_weights", (size, source.size), weights,
                             role="weights", description="W_g: apical gate weights "
                             "(units × source units)")
    basal = ctx.state(f"{name}.basal", (batch, size), role="activity",
                      description="basal drive d before gating")
    prediction = ctx.state(f"{name}.gate_prediction", (batch, size), role="activity",
                           description="apical prediction ĝ = W_g ã")
    gate_value = ctx.state(f"{name}.gate_value", (batch, size), role="activity",
                           description="gate g = ψ(b + κ(ĝ − m))")
    normalised = ctx.state(f"{name}.gate_source", (batch, source.size), role="activity",
                           description="normalised gate input ã")
    ctx.op("gate", "gate", population=population,
           reads={"source": source.output, "weights": gate_weights},
           writes={"target": population.drive, "basal": basal, "prediction": prediction,
                   "gate_value": gate_value, "normalised_source": normalised},
           parameters={"normalisation": spec.normalisation, "nonlinearity": spec.nonlinearity,
                       "bias": float(bias), "gain": float(spec.gain),
                       "offset": float(spec.offset)}, origin=key)
    # p̄ starts at ψ(b), the gate's value at initialisation; Q̂_b at the identity (any diagonal
    # start makes the decorrelated rate equal the drive).
    start = max(float(GATE_NONLINEARITIES[spec.nonlinearity][0](np.asarray(bias))), 0.0)
    average_burst = ctx.state(f"{name}.average_burst", (size,), np.full(size, start),
                              role="estimate", description="p̄: running average of the "
                              "rectified gate [g]₊")
    basal_moment = ctx.state(f"{name}.basal_moment", (size, size), np.eye(size),
                             role="estimate", description="Q̂_b: running second moment of "
                             "the basal drives (sensing steps)")
    ctx.result(f"weights/gate_{name}", lambda state: {
        "W_g": state[gate_weights], "average_burst": state[average_burst],
        "basal_moment": state[basal_moment],
        **({"kernel": state[f"{name}.gate_kernel"]} if spec.connectivity == "kernel" else {})},
        {"source": spec.source})

    def plasticity():
        third = spec.third_factor
        if third is not None:
            learners = [p for p in population.incoming if p.delta is not None
                        and p.spec.rule.kind == "linsker_two_phase"]
            if len(learners) != 1:
                ctx.error(f"{key}.third_factor", "the third factor modulates the two-phase "
                          "rule of exactly one projection into the population (found "
                          f"{len(learners)})")
            feedforward = learners[0]
            average_rate = ctx.constant_rate(f"{name}.third_factor_average",
                                             third.average_rate, "running_average")
            ctx.op("running_average", "plasticity", reads={"source": basal},
                   writes={"target": basal_moment}, parameters={"form": "outer"},
                   phases=(SENSING,), rate=average_rate, origin=f"{key}.third_factor")
            ctx.op("third_factor", "plasticity",
                   reads={"basal": basal, "gate_value": gate_value,
                          "average_burst": average_burst, "moment": basal_moment,
                          "pre": feedforward.pre.output},
                   writes={"delta": feedforward.delta},
                   parameters={"ratio": float(third.ratio)}, phases=(SENSING,),
                   training_only=True, rate=feedforward.rate, origin=f"{key}.third_factor")
            ctx.op("running_average", "plasticity", reads={"source": gate_value},
                   writes={"target": average_burst},
                   parameters={"form": "mean", "transform": "relu"}, rate=average_rate,
                   origin=f"{key}.third_factor")
        if spec.learning_rate > 0.0:
            writes = {"weights": gate_weights}
            reads = {"basal": basal, "prediction": prediction,
                     "normalised_source": normalised}
            if spec.connectivity == "kernel":
                writes["kernel"] = f"{name}.gate_kernel"
                reads["taps"] = f"{name}.gate_taps"
            ctx.op("predictive_gate", "plasticity", reads=reads, writes=writes,
                   parameters={"learning_rate": float(spec.learning_rate)},
                   origin=f"{key}.learning_rate")

    ctx.after_rules(plasticity)



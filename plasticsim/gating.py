"""Multiplicative gating: gMLP's spatial gating unit and its dendritic (two-compartment) reading.

Machine-learning side (Liu, Dai, So & Le 2021, "Pay attention to MLPs")
------------------------------------------------------------------------
:func:`spatial_gating_unit` computes, for Z of shape (…, n positions, 2e channels),

    Z1, Z2 = split(Z, channels);   s(Z) = Z1 ⊙ (W · LayerNorm(Z2) + b)

with LayerNorm over channels, W (n × n) mixing positions and b (n,) one bias per position.
With W = 0 and b = 1 the unit returns Z1: the block starts as a plain feed-forward network.
:func:`gmlp_block` is the whole block: X + s(GeLU(LayerNorm(X) U)) V.

Dendritic side (SCIENCE.md §4)
------------------------------
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

import warnings

import numpy as np
from scipy.special import erf

from .errors import SpecError
from .schedules import SENSING, batch_rate

# --------------------------------------------------------------------- gMLP (ML side)

LAYER_NORM_EPSILON = 1e-5  # PyTorch's and the gMLP reference code's default


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GeLU, x Φ(x) = ½ x (1 + erf(x/√2)) (Hendrycks & Gimpel 2016)."""
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


class DendriticGate:
    """Runtime state of the gate compartments of one population inside a Linsker simulation.

    The NumPy backend calls, per run of steps, :meth:`prepare` (after the stimulus is drawn),
    then per step :meth:`modulate` (after the drive, before settling: y = d ⊙ g) and
    :meth:`plasticity` (after the feedforward update is formed, before the constraint).

    Parameters
    ----------
    spec : GateSpec
    population : str
        Name of the gated population (the feedforward projection's post).
    simulation
        The simulation being built (reads its sizes, stimulus, seed and dtype).

    Attributes
    ----------
    weights : ndarray (units, source)
        Dense W_g (for a shared kernel, rebuilt from :attr:`kernel` after each update).
    kernel : ndarray (kernel_size,) or None
    average_burst : ndarray (units,)
        p̄, the running average of p = [g]₊ used by the third factor.
    basal_moment : ndarray (units, units)
        Q̂_b, the running second moment of the basal drives that decorrelates the third
        factor's rate (sensing steps; only with a third factor).

    Notes
    -----
    Every term is local to unit i: [d_i]₊, ĝ_i, g_i and p̄_i live at the unit, ã_j and x_j at
    its synapses; e_i is the unit's basal drive after lateral inhibition by the other units'
    basal drives (the same kind of lateral network as Linsker's, computed at its fixed point). The shared kernel's update sums the units' local updates (weight sharing):
    that sum is not local and is the ML idealisation, as in gMLP itself.
    """

    def __init__(self, spec, population: str, simulation):
        self.spec = spec
        self.population = population
        model = simulation.spec.model
        self.n_units = model.populations[population].size
        self.source_name = spec.source
        self.n_source = model.populations[spec.source].size
        self.dtype = simulation.dtype
        self.bias = default_gate_bias(spec.nonlinearity) if spec.bias is None else spec.bias
        key = f"model.populations.{population}.gate"
        if spec.nonlinearity == "linear":
            warnings.warn(f"{key}.nonlinearity: linear gates (exactly gMLP) can go negative; "
                          f"a rate model reads a negative gate as a sign flip", stacklevel=3)
        self.source_kind = self._bind_source(simulation, key)

        # The gate has its own random stream (child 3 of the root seed), so adding a gate never
        # changes the streams of the weights, stimulus or output noise (children 0–2).
        gate_seed = np.random.SeedSequence(simulation.spec.seed, spawn_key=(3,))
        init_rng, self.source_rng = (np.random.default_rng(s) for s in gate_seed.spawn(2))
        if spec.connectivity == "kernel":
            self.taps = kernel_tap_index(self.n_units, self.n_source, spec.kernel_size)
            self.kernel = spec.init_scale * init_rng.standard_normal(spec.kernel_size)
            self.weights = gate_weights_from_kernel(self.kernel, self.taps)
        else:
            self.taps, self.kernel = None, None
            self.weights = spec.init_scale * init_rng.standard_normal((self.n_units,
                                                                       self.n_source))
        self.weights = self.weights.astype(self.dtype)
        # p̄ starts at ψ(b) = 1, the gate's value at initialisation.
        self.average_burst = np.full(self.n_units, max(self._psi(self.bias), 0.0),
                                     dtype=self.dtype)
        # Q̂_b: running second moment of the basal drives in sensing steps (the third factor's
        # lateral decorrelation); any diagonal start makes the innovation equal the drive.
        self.basal_moment = np.eye(self.n_units, dtype=self.dtype)
        self.normalised_source = None
        self._drive = self._prediction = self._gate = None

    def _psi(self, u):
        return GATE_NONLINEARITIES[self.spec.nonlinearity][0](np.asarray(u, dtype=float))

    def _bind_source(self, simulation, key) -> str:
        """Decide where ã comes from: the basal input, a joint stream, or its own stimulus."""
        populations = simulation.spec.model.populations
        if self.source_name == self.population:
            raise SpecError("a gate fed by its own population is recurrent; the Linsker "
                            "backend supports gates fed by an input population",
                            key_path=f"{key}.source")
        if populations[self.source_name].kind != "input":
            raise SpecError(f"gate source {self.source_name!r} is not an input population; "
                            f"the Linsker backend gates with an input population",
                            key_path=f"{key}.source")
        if self.source_name == simulation.input_population:
            warnings.warn(f"{key}.source: the gate reads the unit's own basal input "
                          f"({self.source_name!r}); gMLP's split feeds the gate another "
                          f"population", stacklevel=4)
            return "basal"
        if getattr(simulation.stimulus.spec, "apical_population", None) == self.source_name:
            simulation.stimulus.set_apical_size(self.n_source)
            return "companion"
        stimuli = [s for s in simulation.spec.stimuli.values()
                   if s.population == self.source_name]
        if len(stimuli) != 1:
            raise SpecError(f"gate source population {self.source_name!r} needs exactly one "
                            f"stimulus (found {len(stimuli)})", key_path=f"{key}.source")
        from .stimuli import build_stimulus
        self.source_stimulus = build_stimulus(stimuli[0], self.n_source)
        return "independent"

    # ------------------------------------------------------------------ stepping
    def prepare(self, inputs: np.ndarray, phases: np.ndarray, stimulus) -> None:
        """Take (or draw) the gate source's activity for a run of steps and normalise it."""
        if self.source_kind == "basal":
            source = inputs
        elif self.source_kind == "companion":
            source = stimulus.last_companion
        else:
            sensing = np.repeat((phases == SENSING)[:, None], inputs.shape[1], axis=1)
            source = self.source_stimulus.sample(self.source_rng, sensing, self.dtype)
        self.normalised_source = normalise_gate_input(source, self.spec.normalisation)

    def modulate(self, step: int, drive: np.ndarray) -> np.ndarray:
        """y = d ⊙ ψ(b + κ(W_g ã − m)) for step ``step`` of the prepared run (φ linear)."""
        prediction, gate = gate_value(self.normalised_source[step], self.weights, self.bias,
                                      self.spec.gain, self.spec.offset, self.spec.nonlinearity)
        self._drive, self._prediction, self._gate = drive, prediction, gate
        return drive * gate

    def plasticity(self, step: int, inputs: np.ndarray, phase: int, feedforward_rate: float,
                   delta: np.ndarray | None) -> np.ndarray | None:
        """Add the third factor to ΔC (sensing steps) and update W_g and p̄; return ΔC."""
        batch = inputs.shape[0]
        rate = np.maximum(self._drive, 0.0)           # rectified basal rate [d]₊
        burst = np.maximum(self._gate, 0.0)           # rectified gate read as burst probability
        third = self.spec.third_factor
        if third is not None and phase == SENSING:
            # [e]₊: the rectified basal rate after lateral decorrelation (Q̂_b learns in
            # warm-up too). Δc_i = ρ η [e_i]₊ (p_i − p̄_i) x, summed over the batch.
            decorrelated = np.maximum(self._basal_innovation(third, batch), 0.0)
            if delta is not None:
                delta = delta + (third.ratio * feedforward_rate) * (
                    (decorrelated * (burst - self.average_burst)).T @ inputs)
        if third is not None:
            self.average_burst += batch_rate(third.average_rate, batch) * (
                burst.mean(axis=0) - self.average_burst)
        if self.spec.learning_rate > 0.0:
            # Predictive rule: the apical compartment learns to predict the unit's rate.
            update = self.spec.learning_rate * ((rate - self._prediction).T
                                                @ self.normalised_source[step])
            if self.kernel is not None:
                in_arbor = self.taps >= 0
                self.kernel += np.bincount(self.taps[in_arbor], weights=update[in_arbor],
                                           minlength=self.kernel.size)
                self.weights = gate_weights_from_kernel(self.kernel, self.taps).astype(
                    self.dtype)
            else:
                self.weights += update
        return delta

    def _basal_innovation(self, third, batch: int) -> np.ndarray:
        """e = d − (what the other units' basal drives predict of d): the third factor's rate.

        Updates Q̂_b ← Q̂_b + ε_B (dᵀd/B − Q̂_b) (rate ``third_factor.average_rate``) with this
        step's basal drives d, then returns e_i = (d Q̂_b⁻¹)_i / (Q̂_b⁻¹)_ii, the residual of the
        linear regression of d_i on the other units' d_j: what a lateral anti-Hebbian network
        on the basal compartments settles to. For decorrelated units e = d.
        """
        drive = self._drive
        self.basal_moment += batch_rate(third.average_rate, batch) * (
            drive.T @ drive / batch - self.basal_moment)
        precision = np.linalg.inv(self.basal_moment)
        return drive @ precision / np.diag(precision)

    def state(self) -> dict[str, np.ndarray]:
        """W_g, p̄ and Q̂_b, keyed as in the results file (``/weights/gate_<population>``)."""
        state = {"W_g": self.weights.copy(), "average_burst": self.average_burst.copy(),
                 "basal_moment": self.basal_moment.copy()}
        if self.kernel is not None:
            state["kernel"] = self.kernel.copy()
        return state


def build_gate(simulation) -> DendriticGate | None:
    """The gate of a Linsker simulation's output population, or None when it has none.

    Raises
    ------
    SpecError
        If a population other than the feedforward projection's post declares a gate (the
        Linsker backend has one layer of gated units).
    """
    gated = {name: p.gate for name, p in simulation.spec.model.populations.items()
             if p.gate is not None}
    if not gated:
        return None
    for name in gated:
        if name != simulation.output_population:
            raise SpecError(f"population {name!r} declares a gate but only the feedforward "
                            f"projection's post ({simulation.output_population!r}) can be gated "
                            f"in a Linsker network", key_path=f"model.populations.{name}.gate")
    name = simulation.output_population
    return DendriticGate(gated[name], name, simulation)


def is_gated(spec) -> bool:
    """True when any population of a protocol's model declares a gate."""
    return any(p.gate is not None for p in spec.model.populations.values())

"""NumPy reference backend for Linsker (1992) two-phase infomax networks.

The step contract (every backend follows it, in this order, for one mini-batch step of B
samples from one phase p ∈ {sensing, noise_unlearning}):

1. **stimulus**  X (B × N): S + N in sensing, N in noise-unlearning.
2. **drive**     Y = X Cᵀ + ν, ν ~ 𝒩(0, σ_ν²) per unit (the output noise of the model).
                 A gated population (:mod:`plasticsim.gating`) then multiplies Y by its gate
                 ψ(b + κ(W_g ã − m)); its plasticity (third factor on ΔC, predictive rule
                 on W_g) runs in step 5, before the constraint.
3. **settle**    α y(∞) with α y(∞) = Q̂_p⁻¹ Y (lateral weights F_p = I − αQ̂_p).
4. **record**    metrics and weight snapshots are taken *before* the step at multiples of
                 ``record.every`` samples (so they describe C after that many samples).
5. **plasticity** lateral: Q̂_p ← Q̂_p + ε_B (YᵀY/B − Q̂_p) (anti-Hebbian term + decay, only
                 in phase p); feedforward: ΔC = s_p η (α y)ᵀ X with s_p = ±1 (summed over
                 the batch).
6. **constraint** ΔC is projected onto the constraint's tangent plane, added, and C is
                 rescaled onto the budget (per unit or in total).

Both plasticity terms use the activities of step 3 (computed with Q̂ before its update).
Rates are *per sample*: a mini-batch sums the feedforward updates of its B samples and moves
running averages by ε_B = 1 − (1 − ε)^B, so ``batch_size`` changes speed, not time scales.
During ``warmup_samples`` the feedforward rate is 0 and settling is skipped (nothing uses it);
the running estimates still learn.
Random streams: one root ``SeedSequence(seed)`` spawns independent streams for the initial
weights, the stimulus and the output noise. Results are bit-reproducible for the same
seed, backend, dtype and machine.
"""

from __future__ import annotations

import numpy as np

from ..constraints import build_constraint
from ..errors import SimulationDiverged, SpecError
from ..gating import build_gate
from ..schedules import SENSING, batch_rate, phase_signs, rate_at, step_phases
from ..settling import settle, settling_alpha, spectral_radius
from ..spec import ProtocolSpec, SettlingSpec
from ..stimuli import build_stimulus
from . import register_backend


class LinskerSimulation:
    """A Linsker network built from a protocol spec; owns weights, estimates and RNG streams.

    Parameters
    ----------
    spec : ProtocolSpec

    Attributes
    ----------
    C : ndarray (M, N)
        Feedforward weights (post × pre).
    Q : ndarray (2, M, M)
        Running output-covariance estimates Q̂ for the sensing and noise-unlearning phases.
    samples_done : int
        Training samples presented so far (after warm-up).
    """

    backend_name = "numpy"

    def __init__(self, spec: ProtocolSpec):
        self.spec = spec
        model = spec.model
        feedforward = [n for n, p in model.projections.items() if p.rule == "linsker_two_phase"]
        if len(feedforward) != 1:
            raise SpecError("a Linsker network needs exactly one projection with rule "
                            f"linsker_two_phase (found {len(feedforward)})",
                            key_path="model.projections")
        self.feedforward_name = feedforward[0]
        projection = model.projections[self.feedforward_name]
        lateral = [n for n, p in model.projections.items()
                   if p.rule == "anti_hebbian_lateral" and p.pre == projection.post]
        self.lateral_name = lateral[0] if lateral else None
        self.settling = (model.projections[self.lateral_name].settling or SettlingSpec()
                         if self.lateral_name else None)
        self.input_population, self.output_population = projection.pre, projection.post
        stimuli = [s for s in spec.stimuli.values() if s.population == projection.pre]
        if len(stimuli) != 1:
            raise SpecError(f"population {projection.pre!r} needs exactly one stimulus",
                            key_path="stimuli")
        self.n_inputs = model.populations[projection.pre].size
        self.n_outputs = model.populations[projection.post].size
        self.output_noise_variance = model.populations[projection.post].output_noise_variance
        self.stimulus = build_stimulus(stimuli[0], self.n_inputs)
        self.dtype = np.dtype(spec.dtype)

        init_seed, stimulus_seed, noise_seed = np.random.SeedSequence(spec.seed).spawn(3)
        self.stimulus_rng = np.random.default_rng(stimulus_seed)
        self.noise_rng = np.random.default_rng(noise_seed)
        init_rng = np.random.default_rng(init_seed)
        self.C = (projection.init.scale
                  * init_rng.standard_normal((self.n_outputs, self.n_inputs))).astype(self.dtype)

        exact_sensing = getattr(self.stimulus, "signal_covariance", None)
        if exact_sensing is not None:
            exact_sensing = exact_sensing + self.stimulus.noise_covariance
        self.constraints = [build_constraint(c, self.n_inputs, exact_sensing)
                            for c in model.constraints if c.projection == self.feedforward_name]
        for constraint in self.constraints:
            constraint.apply(self.C, None)
        self.metric = projection.metric
        if self.metric != "euclidean" and not (
                len(self.constraints) == 1 and hasattr(self.constraints[0], "precondition")):
            raise SpecError("metric: input_covariance needs exactly one output-power "
                            "constraint on the projection (it supplies q̂_L)",
                            key_path=f"model.projections.{self.feedforward_name}.metric")
        # Q̂ starts at the output-noise level plus a unit of signal; warm-up refines it.
        start = (self.output_noise_variance + 1.0) * np.eye(self.n_outputs, dtype=self.dtype)
        self.Q = np.stack([start, start.copy()])
        if self.settling is not None and not isinstance(self.settling.alpha, str):
            limit = 2.0 / float(np.linalg.eigvalsh(start).max())
            if self.settling.alpha >= limit and self.settling.method != "exact":
                raise SpecError(f"alpha = {self.settling.alpha} cannot converge: Jacobi/Euler "
                                f"settling needs 0 < α < 2/λ_max(Q̂) = {limit:.4g} for the "
                                f"initial Q̂ (use 'gershgorin' or 'trace' to stay safe as Q̂ "
                                f"grows)", key_path=f"model.projections.{self.lateral_name}"
                                ".settling.alpha")
        self.signs = phase_signs(spec.phases)
        self.samples_done = 0
        self.warmup_samples_done = 0
        self.last_residual = 0.0
        # Two-compartment units (plasticsim.gating); None keeps the ungated step untouched.
        self.gate = build_gate(self)

    # ------------------------------------------------------------------ stepping
    def warmup(self) -> None:
        """Present ``schedule.warmup_samples`` with the feedforward rate at zero."""
        batch = self.spec.schedule.batch_size
        n_steps = self.spec.schedule.warmup_samples // batch
        if n_steps:
            phases = step_phases(self.spec.schedule, self.spec.phases, 0, n_steps)
            self._advance(phases, np.zeros(n_steps), self._lateral_rates(np.zeros(n_steps)),
                          step_offset=-self.spec.schedule.warmup_samples)
            self.warmup_samples_done = n_steps * batch

    def advance(self, n_samples: int) -> float:
        """Present ``n_samples`` training samples (a multiple of the batch size).

        Returns
        -------
        float
            Largest relative settling residual seen.
        """
        batch = self.spec.schedule.batch_size
        n_steps = n_samples // batch
        first = self.samples_done
        samples = first + batch * np.arange(n_steps)
        phases = step_phases(self.spec.schedule, self.spec.phases, first, n_steps)
        feedforward_rate = rate_at(self.spec.learning_rates[self.feedforward_name], samples)
        residual = self._advance(phases, feedforward_rate, self._lateral_rates(samples),
                                 step_offset=first)
        self.samples_done += n_steps * batch
        return residual

    def _lateral_rates(self, samples):
        if self.lateral_name is None:
            return np.zeros(len(samples))
        return rate_at(self.spec.learning_rates[self.lateral_name], samples)

    def _draw(self, phases):
        """Draw the stimulus and output noise of a run of steps (the same for every backend)."""
        batch = self.spec.schedule.batch_size
        sensing = np.repeat((phases == SENSING)[:, None], batch, axis=1)
        inputs = self.stimulus.sample(self.stimulus_rng, sensing, self.dtype)
        noise = (np.sqrt(self.output_noise_variance)
                 * self.noise_rng.standard_normal((len(phases), batch, self.n_outputs)))
        return inputs, noise.astype(self.dtype, copy=False)

    def _advance(self, phases, feedforward_rate, lateral_rate, step_offset):
        inputs, noise = self._draw(phases)
        if self.gate is not None:  # the gate's source activity for the same samples
            self.gate.prepare(inputs, phases, self.stimulus)
        return self._run_steps(inputs, noise, phases, feedforward_rate, lateral_rate,
                               step_offset)

    def _run_steps(self, inputs, noise, phases, feedforward_rate, lateral_rate, step_offset):
        """Steps 2–6 of the contract for pre-drawn inputs; the part other backends compile."""
        C, Q, batch = self.C, self.Q, inputs.shape[1]
        worst_residual = 0.0
        for k in range(len(phases)):
            X, p = inputs[k], phases[k]
            for constraint in self.constraints:
                constraint.observe(X, p)
            Y = X @ C.T + noise[k]
            if self.gate is not None:  # after the drive, before settling: y = d ⊙ ψ(gate)
                Y = self.gate.modulate(k, Y)
            learning = feedforward_rate[k] != 0.0
            if self.lateral_name is not None and learning:
                scaled, residual, _ = settle(Y, Q[p], self.settling)
                if not np.isfinite(residual) or residual > 1.0:
                    raise SimulationDiverged(step_offset + k * batch, "settling residual",
                                             residual, "lateral network does not converge: "
                                             "α ≥ 2/λ_max(Q̂)?")
                worst_residual = max(worst_residual, residual)
            else:
                scaled = Y  # no lateral network, or warm-up: nothing uses the settled activity
            if self.lateral_name is not None:
                Q[p] += batch_rate(lateral_rate[k], batch) * (Y.T @ Y / batch - Q[p])
            delta = None
            if learning:
                delta = (self.signs[p] * feedforward_rate[k]) * (scaled.T @ X)
                if self.metric != "euclidean":
                    delta = self.constraints[0].precondition(delta)
            if self.gate is not None:  # third factor into ΔC; predictive rule on W_g
                delta = self.gate.plasticity(k, X, p, feedforward_rate[k], delta)
            for constraint in self.constraints:
                constraint.apply(C, delta, self.metric)
                delta = None
            if delta is not None:
                C += delta
        if not np.all(np.isfinite(C)):
            raise SimulationDiverged(step_offset + len(phases) * batch, "feedforward weights",
                                     float("nan"), "non-finite value")
        self.last_residual = worst_residual
        return worst_residual

    # ------------------------------------------------------------------- state
    def alphas(self) -> np.ndarray:
        """α of each phase's lateral network F_p = I − α_p Q̂_p."""
        rule = self.settling.alpha if self.settling else 1.0
        return np.array([settling_alpha(q, rule) for q in self.Q])

    def spectral_radii(self) -> np.ndarray:
        """ρ(F_p) for both phases."""
        return np.array([spectral_radius(q, a) for q, a in zip(self.Q, self.alphas())])

    def state(self) -> dict[str, np.ndarray]:
        """Copies of the weights and running estimates, keyed as in the results file."""
        alphas = self.alphas()
        identity = np.eye(self.n_outputs)
        return {
            "feedforward": self.C.copy(),
            "Q_sensing": self.Q[0].copy(),
            "Q_noise_unlearning": self.Q[1].copy(),
            "F_sensing": identity - alphas[0] * self.Q[0],
            "F_noise_unlearning": identity - alphas[1] * self.Q[1],
            "alpha": alphas,
        }


@register_backend("numpy")
def build_numpy(spec: ProtocolSpec) -> LinskerSimulation:
    return LinskerSimulation(spec)

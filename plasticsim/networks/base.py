"""What the image networks share: stimulus, random streams, schedule and runner interface.

Step contract of every image network, for one mini-batch of B patches X (B × N):

1. **stimulus**   X drawn from the protocol's ``image_patches`` stimulus.
2. **inference**  the network's neural dynamics run for a fixed number of time steps on X
                  with the current weights (sparse coding: LCA; SAILnet: LIF spiking).
3. **record**     metrics and weight snapshots are taken *before* a step at multiples of
                  ``record.every`` samples (they describe the weights after that many samples).
4. **plasticity** every rule uses the activities of step 2; the updates are the batch means
                  of per-sample updates, scaled by the projection's rate at the batch's first
                  sample.
5. **normalisation / clipping** (gain normalisation, W ≥ 0 with zero diagonal).

Random streams: ``SeedSequence(seed).spawn(3)`` → initial weights, stimulus, probes (white
noise for receptive-field mapping). Same seed, dtype and machine → identical results.
"""

from __future__ import annotations

import numpy as np

from ..errors import SimulationDiverged, SpecError
from ..schedules import rate_at
from ..stimuli import build_stimulus


class ImageNetworkSimulation:
    """Base of the image networks: builds the stimulus and streams, steps the schedule.

    Subclasses implement :meth:`_step` (one batch: inference, plasticity, normalisation),
    :meth:`respond` (inference only), :meth:`record_metrics`, :meth:`extra_weights` and the
    property ``feedforward`` (units × pixels).

    Parameters
    ----------
    spec : ProtocolSpec
    feedforward_rule : str
        Rule of the projection from the input population to the network's units.
    """

    backend_name = "numpy"
    # The runner's Linsker-specific hooks: no lateral settling network, no weight constraint.
    lateral_name = None
    constraints: list = []
    last_residual = 0.0

    def __init__(self, spec, feedforward_rule: str):
        self.spec = spec
        model = spec.model
        self.network = model.network
        feedforward = [n for n, p in model.projections.items() if p.rule == feedforward_rule]
        if len(feedforward) != 1:
            raise SpecError(f"a {self.network.kind} network needs exactly one projection with "
                            f"rule {feedforward_rule} (found {len(feedforward)})",
                            key_path="model.projections")
        self.feedforward_name = feedforward[0]
        projection = model.projections[self.feedforward_name]
        self.input_population, self.output_population = projection.pre, projection.post
        stimuli = [s for s in spec.stimuli.values() if s.population == projection.pre]
        if len(stimuli) != 1 or stimuli[0].kind != "image_patches":
            raise SpecError(f"population {projection.pre!r} needs exactly one image_patches "
                            "stimulus", key_path="stimuli")
        self.n_inputs = model.populations[projection.pre].size
        self.n_units = model.populations[projection.post].size
        self.dtype = np.dtype(spec.dtype)
        self.stimulus = build_stimulus(stimuli[0], self.n_inputs)
        self.patch_shape = self.stimulus.patch_shape
        init_seed, stimulus_seed, probe_seed = np.random.SeedSequence(spec.seed).spawn(3)
        self.init_rng = np.random.default_rng(init_seed)
        self.stimulus_rng = np.random.default_rng(stimulus_seed)
        self.probe_rng = np.random.default_rng(probe_seed)
        self.init_scale = projection.init.scale
        self.samples_done = 0
        self.last_batch_metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ stepping
    def warmup(self) -> None:
        """Image networks have no warm-up (``schedule.warmup_samples`` is ignored)."""

    def rate(self, projection: str) -> float:
        """The per-sample rate of ``projection`` at the current sample count."""
        return float(rate_at(self.spec.learning_rates[projection],
                             np.array([self.samples_done]))[0])

    def advance(self, n_samples: int) -> float:
        """Present ``n_samples`` patches (a multiple of the batch size); returns 0.0."""
        batch = self.spec.schedule.batch_size
        for _ in range(n_samples // batch):
            patches = self.stimulus.sample(self.stimulus_rng, np.ones(batch, dtype=bool),
                                           self.dtype)
            self._step(patches)
            self.samples_done += batch
        if not np.all(np.isfinite(self.feedforward)):
            raise SimulationDiverged(self.samples_done, "feedforward weights", float("nan"),
                                     "non-finite value; lower the learning rate")
        return 0.0

    def _step(self, patches: np.ndarray) -> None:
        raise NotImplementedError

    # --------------------------------------------------------------------- state
    @property
    def C(self) -> np.ndarray:
        """Feedforward weights, units × pixels (the runner's name for them)."""
        return self.feedforward

    def state(self) -> dict[str, np.ndarray]:
        return {"feedforward": self.feedforward.copy()}

    def spectral_radii(self) -> np.ndarray:
        return np.zeros(2)

    def receptive_fields(self) -> dict[str, np.ndarray]:
        """Units × h × w fields of the output population, measured as the spec says."""
        mapping = self.network.receptive_fields
        if mapping.method == "weights":
            fields = self.feedforward
        else:
            from ..analysis.receptive_fields import map_receptive_fields
            fields = map_receptive_fields(self.respond, self.n_inputs, mapping.probes,
                                          self.probe_rng, mapping.probe_variance)
        return {self.output_population: np.asarray(fields).reshape((-1,) + self.patch_shape)}

"""Two input streams that share a latent source under stronger private distractors (E1).

The basal stream feeds a unit's feedforward (basal) synapses, the apical stream its gate.
Both see the same latent sources s; each also carries its own distractor sources, which are
independent between the streams. With distractors stronger than the shared source, an
infomax (or Hebbian) learner on the basal stream alone picks the distractors; only a rule
that uses the apical stream can single out the shared source.

The stimulus feeds two populations (``population``, the basal stream, and
``apical_population``); its embeddings are written to the results file
(``/stimulus/<population>/shared_basis`` …), so the analysis needs nothing else.
"""

from __future__ import annotations

from typing import Literal

import numpy as np


from ...schema import PositiveFinite, Seed, Size, Spec
from ..registry import register_stimulus


class SharedLatentStimulusSpec(Spec):
    """Two input streams (basal ``population``, ``apical_population``) sharing a latent source.

    Each stream is x = √v_s B s + √v_d D d + √σ_n² ξ: ``shared_dimensions`` latent sources s
    common to both streams, ``distractor_dimensions`` sources d private to each stream,
    white Gaussian input noise ξ. B and D are orthonormal embeddings drawn once from
    ``mixing_seed`` (part of the stimulus, not of the run). Sources are unit-variance
    ``gaussian`` or ``laplace``. Noise-unlearning samples are the noise alone in both streams.
    """

    kind: Literal["shared_latent"] = "shared_latent"
    population: str = "basal"
    apical_population: str = "apical"
    distribution: Literal["gaussian", "laplace"] = "gaussian"
    shared_dimensions: Size = 2
    shared_variance: PositiveFinite = 1.0
    distractor_dimensions: Size = 2
    distractor_variance: PositiveFinite = 4.0
    input_noise_variance: PositiveFinite = 0.25
    mixing_seed: Seed = 0

    def populations(self) -> list[str]:
        return [self.population, self.apical_population]


def orthonormal_columns(rows: int, columns: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``rows × columns`` matrix with orthonormal columns (QR of a Gaussian matrix)."""
    basis, upper = np.linalg.qr(rng.standard_normal((rows, columns)))
    # Fix the sign ambiguity of QR so the basis is a deterministic function of the stream.
    return basis * np.sign(np.diag(upper))[None, :]


def unit_variance_sources(rng: np.random.Generator, shape: tuple, distribution: str
                          ) -> np.ndarray:
    """Independent zero-mean, unit-variance sources (Laplace: scale 1/√2)."""
    if distribution == "gaussian":
        return rng.standard_normal(shape)
    return rng.laplace(0.0, 1.0 / np.sqrt(2.0), shape)


class SharedLatentStimulus:
    """Source of the ``shared_latent`` stimulus; ``sample`` returns the basal stream.

    Parameters
    ----------
    spec : SharedLatentStimulusSpec
    size : int
        Size of the basal population.
    apical_size : int, optional
        Size of the apical population (default: ``size``). The gate sets it when it binds.

    Attributes
    ----------
    shared_basis, distractor_basis : ndarray (size, k)
        Orthonormal embeddings B, D of the basal stream (what alignment is measured against).
    apical_shared_basis, apical_distractor_basis : ndarray (apical_size, k)
    signal_covariance, noise_covariance : ndarray (size, size)
        Exact covariances of the basal stream: v_s BBᵀ + v_d DDᵀ and σ_n² I.
    last_companion : ndarray or None
        The apical stream drawn together with the last basal sample (same shape prefix).
    """

    def __init__(self, spec: SharedLatentStimulusSpec, size: int, apical_size: int | None = None):
        self.spec = spec
        self.sites = size
        self.shared_dimensions = spec.shared_dimensions
        self.distractor_dimensions = spec.distractor_dimensions
        self.set_apical_size(apical_size or size)
        self.last_companion = None

    def set_apical_size(self, apical_size: int) -> None:
        """(Re)build the embeddings once the apical population's size is known."""
        spec = self.spec
        latent = spec.shared_dimensions + spec.distractor_dimensions
        for name, stream_size in (("basal", self.sites), ("apical", apical_size)):
            if stream_size < latent:
                raise ValueError(f"the {name} stream has {stream_size} units but needs at least "
                                 f"shared_dimensions + distractor_dimensions = {latent}")
        # The embedding is part of the stimulus: it depends on mixing_seed only, never on the
        # run's seed, so every run (and the analysis) sees the same shared directions.
        mixing_rng = np.random.default_rng(spec.mixing_seed)
        basal = orthonormal_columns(self.sites, latent, mixing_rng)
        apical = orthonormal_columns(apical_size, latent, mixing_rng)
        k = spec.shared_dimensions
        self.apical_size = apical_size
        self.shared_basis, self.distractor_basis = basal[:, :k], basal[:, k:]
        self.apical_shared_basis, self.apical_distractor_basis = apical[:, :k], apical[:, k:]
        self.signal_covariance = (spec.shared_variance * self.shared_basis @ self.shared_basis.T
                                  + spec.distractor_variance
                                  * self.distractor_basis @ self.distractor_basis.T)
        self.noise_covariance = spec.input_noise_variance * np.eye(self.sites)

    def sample(self, rng: np.random.Generator, sensing: np.ndarray, dtype=np.float64
               ) -> np.ndarray:
        """Draw the basal stream for each entry of ``sensing``; keep the apical one.

        Every part is drawn for every entry, so the stream does not depend on the phases.

        Returns
        -------
        ndarray, shape ``sensing.shape + (size,)``
            The basal stream; the apical stream is left in :attr:`last_companion`.
        """
        spec = self.spec
        sensing = np.asarray(sensing, dtype=bool)
        shape = sensing.shape
        shared = unit_variance_sources(rng, shape + (spec.shared_dimensions,), spec.distribution)
        basal_distractor = unit_variance_sources(rng, shape + (spec.distractor_dimensions,),
                                                 spec.distribution)
        apical_distractor = unit_variance_sources(rng, shape + (spec.distractor_dimensions,),
                                                  spec.distribution)
        noise_sd = np.sqrt(spec.input_noise_variance)
        basal_noise = noise_sd * rng.standard_normal(shape + (self.sites,))
        apical_noise = noise_sd * rng.standard_normal(shape + (self.apical_size,))
        on = sensing[..., None]
        basal = basal_noise + on * (np.sqrt(spec.shared_variance) * shared @ self.shared_basis.T
                                    + np.sqrt(spec.distractor_variance)
                                    * basal_distractor @ self.distractor_basis.T)
        apical = apical_noise + on * (np.sqrt(spec.shared_variance)
                                      * shared @ self.apical_shared_basis.T
                                      + np.sqrt(spec.distractor_variance)
                                      * apical_distractor @ self.apical_distractor_basis.T)
        self.last_companion = apical.astype(dtype, copy=False)
        return basal.astype(dtype, copy=False)

    def results_arrays(self) -> dict:
        """What the analysis needs: exact basal covariances and the embeddings."""
        return {"signal_covariance": self.signal_covariance,
                "noise_covariance": self.noise_covariance,
                "shared_basis": self.shared_basis, "distractor_basis": self.distractor_basis,
                "apical_shared_basis": self.apical_shared_basis,
                "apical_distractor_basis": self.apical_distractor_basis}


@register_stimulus(SharedLatentStimulusSpec)
def build_shared_latent(name, spec, ctx) -> None:
    """Both streams from one random stream (as drawn together), results under the basal one."""
    key = f"stimuli.{name}"
    basal = ctx.population_named(spec.population, f"{key}.population")
    apical = ctx.population_named(spec.apical_population, f"{key}.apical_population")
    if basal is apical:
        ctx.error(f"{key}.apical_population", "the two streams need two populations")
    try:
        source = SharedLatentStimulus(spec, basal.size, apical.size)
    except ValueError as error:
        ctx.error(key, str(error))
    basal_stream, apical_stream = (ctx.stimulus_stream_name(p) for p in (basal, apical))

    def draw(rng, sensing, dtype):
        basal_inputs = source.sample(rng, sensing, dtype)
        return {basal_stream: basal_inputs, apical_stream: source.last_companion}
    ctx.stream_group(f"stimulus.{name}", {basal_stream: (basal.size,),
                                          apical_stream: (apical.size,)}, "stimulus", draw)
    basal.attach_stimulus(name, spec, source)
    apical.attach_stimulus(name, spec, None)
    arrays = source.results_arrays()
    ctx.result(f"stimulus/{basal.name}", lambda state: arrays,
               {"kind": spec.kind, "apical_population": apical.name})

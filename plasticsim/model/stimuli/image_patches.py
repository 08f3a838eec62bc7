"""Random square patches of natural images (flattened row-major), with optional input noise.

Images come from a ``source`` (:mod:`.images` reads them), are optionally whitened with
Olshausen & Field's filter R(f) = f·exp(−(f/f0)⁴) and scaled, and patches are drawn at
random positions. Sensing samples are patch + N, noise-unlearning samples are N alone, with
N ~ 𝒩(0, σ_n² I) (zero without ``input_noise``). ``signal_covariance`` is the empirical
covariance of ``covariance_samples`` patches drawn from a fixed stream
(:data:`COVARIANCE_SEED`), so a Linsker network on patches is compared with the optimum of that
covariance whatever the run's seed.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from ...errors import DataError
from ...schema import NonNegativeFinite, PositiveFinite, SampleCount, Seed, Size, Size0, Spec
from ..registry import register_stimulus
from .gaussian_ring import InputNoiseSpec, declare_source, patch_population

#: Most pixels a dead-leaves source may generate (32 images of 512 × 512): rendering time
#: and memory grow with it, and a run must not spend minutes before its first sample.
MAX_GENERATED_PIXELS = 32 * 512**2

#: Seed of the stream that estimates an image stimulus's covariance: fixed, so that the
#: optimum a run is compared with does not depend on the run's seed.
COVARIANCE_SEED = 20240601
# Sources whose files the loader reads with an explicit format; a folder is left to the
# suffixes of its files.
_IMAGE_FILE_FORMATS = {"folder": None, "mat": "mat", "npy": "npy", "npz": "npz",
                       "raw": "raw", "image": "image"}


#: Keys of an image source that set the dead-leaves generator (the defaults are its own).
DEAD_LEAVES_KEYS = ("count", "size", "seed", "min_radius", "max_radius", "size_exponent",
                    "max_aspect", "shading", "texture", "blur")


class ImageSourceSpec(Spec):
    """Where natural images come from (read by :func:`plasticsim.model.stimuli.images.load_images`).

    ``skimage``: photographs shipped in scikit-image's wheel (``names``, default grass and
    gravel). ``dead_leaves``: ``count`` generated dead-leaves images of ``size`` × ``size``
    pixels drawn from ``seed`` (a seed of the images, fixed like a photograph collection and
    independent of the run's seed); ``min_radius``, ``max_radius``, ``size_exponent``, ``max_aspect``,
    ``shading``, ``texture`` and ``blur`` are the generator's parameters
    (:func:`plasticsim.model.stimuli.dead_leaves.dead_leaves_images`). ``folder``: every PNG/JPEG/TIFF in ``path``. ``mat``: array ``key``
    (default ``IMAGES``, h×w×n) of a MATLAB v5 or v7.3 file. ``npy``/``npz``: an n×h×w array
    (``key`` names the array in an archive). ``raw``: headerless files (``path`` may be a glob
    such as ``.../image*``) of ``dtype`` (with byte order, e.g. ``'>f4'``) and ``shape``
    (height, width). ``image``: one picture file. Relative paths are relative to the working
    directory.
    """

    kind: Literal["skimage", "dead_leaves", "folder", "mat", "npy", "npz", "raw",
                  "image"] = "skimage"
    path: str | None = None
    names: list[str] | None = None
    key: str | None = None
    dtype: str | None = None
    shape: tuple[Size, Size] | None = None
    count: Size | None = None
    size: Size | None = None
    seed: Seed | None = None
    min_radius: PositiveFinite | None = None
    max_radius: PositiveFinite | None = None
    size_exponent: PositiveFinite | None = None
    max_aspect: Annotated[float, Field(ge=1.0, le=1e3, allow_inf_nan=False)] | None = None
    shading: NonNegativeFinite | None = None
    texture: NonNegativeFinite | None = None
    blur: NonNegativeFinite | None = None

    @model_validator(mode="after")
    def _complete(self):
        given = [name for name in DEAD_LEAVES_KEYS if getattr(self, name) is not None]
        if self.kind != "dead_leaves" and given:
            raise ValueError(f"{', '.join(given)}: keys of the dead-leaves generator; they "
                             f"need kind 'dead_leaves', not {self.kind!r}")
        if self.kind == "dead_leaves":
            count = 8 if self.count is None else self.count
            size = 512 if self.size is None else self.size
            if count * size**2 > MAX_GENERATED_PIXELS:
                raise ValueError(f"count × size² = {count} × {size}² = {count * size**2:,} "
                                 f"generated pixels; expected at most "
                                 f"{MAX_GENERATED_PIXELS:,} (e.g. 32 images of 512 × 512): "
                                 "rendering takes about a second per 512 × 512 image")
        if self.kind not in ("skimage", "dead_leaves") and not self.path:
            raise ValueError(f"an image source of kind {self.kind!r} needs a path")
        if self.kind == "raw" and (self.dtype is None or self.shape is None):
            raise ValueError("a raw image source needs dtype (e.g. '>f4') and shape "
                             "[height, width]")
        return self


class PatchSequenceSpec(Spec):
    """Temporally coherent patches: ``frames`` successive samples from a window drifting
    ``speed`` pixels per frame in a random direction over one image (then a new image,
    position and direction). ``frames`` must divide the batch size, so that a sequence is
    consecutive rows of one batch."""

    frames: Annotated[int, Field(ge=2, le=10_000)] = 10   # samples per sequence
    speed: NonNegativeFinite = 1.0          # pixels per frame, in a random direction


class ImagePatchesStimulusSpec(Spec):
    """Random square patches of natural images, flattened row-major (population size p²).

    ``whiten``: Olshausen & Field's filter R(f) = f·exp(−(f/f0)⁴) (``whitening_f0`` cycles
    per picture, default 0.4 × image size, i.e. 200 for 512 px) and scaling to an average
    pixel variance ``target_variance``; turn it off for already whitened data.
    ``scale_to_variance`` rescales the (possibly whitened) images so that their average
    pixel variance is this value (useful for pre-whitened files at another scale).
    ``border`` pixels at each image edge are never sampled; ``remove_mean`` subtracts each
    patch's mean; ``normalize`` scales each patch to unit norm or unit variance.

    ``input_noise`` (Linsker networks): white noise of the given variance per pixel is added
    to every sensing sample and is the whole input in noise-unlearning samples; the signal
    is the patch itself, whose covariance is estimated from ``covariance_samples`` patches.

    ``sequence`` (:class:`PatchSequenceSpec`): successive samples come from a window drifting
    over one image instead of independent positions (for trace rules,
    :mod:`plasticsim.model.rules.foldiak_trace`); the covariance is still that of independent
    patches.
    """

    kind: Literal["image_patches"] = "image_patches"
    population: str = "input"
    source: ImageSourceSpec = ImageSourceSpec()
    patch_size: Size = 12
    border: Size0 = 4
    whiten: bool = True
    whitening_f0: PositiveFinite | None = None
    target_variance: PositiveFinite = 0.1
    scale_to_variance: PositiveFinite | None = None
    remove_mean: bool = False
    normalize: Literal["unit_norm", "unit_variance"] | None = None
    input_noise: InputNoiseSpec | None = None
    covariance_samples: SampleCount = 50000
    sequence: PatchSequenceSpec | None = None   # drifting-window sequences (trace rules)

    @model_validator(mode="after")
    def _white_noise_only(self):
        if self.input_noise is not None and self.input_noise.filter_sd != 0:
            raise ValueError("image patches take white input noise only (filter_sd: 0)")
        return self

    def populations(self) -> list[str]:
        return [self.population]


class ImagePatchStimulus:
    """Random natural-image patches (flattened row-major), optionally with white input noise.

    Parameters
    ----------
    spec : ImagePatchesStimulusSpec
    size : int
        The input population's size (patch_size², checked by the builder).

    Raises
    ------
    DataError
        If the images cannot be loaded (the message names the file) or the patches do not fit.
    """

    def __init__(self, spec, size: int):
        from .images import PatchSampler, load_images, whiten_olshausen_field

        self.spec = spec
        self.sites = size
        self.patch_shape = (spec.patch_size, spec.patch_size)
        source = spec.source
        if source.kind == "skimage":
            images = load_images("skimage", names=source.names)
        elif source.kind == "dead_leaves":
            from .dead_leaves import dead_leaves_images
            images = dead_leaves_images(**{
                ("n_images" if name == "count" else name): getattr(source, name)
                for name in DEAD_LEAVES_KEYS if getattr(source, name) is not None})
        else:
            images = load_images(source.path, file_format=_IMAGE_FILE_FORMATS[source.kind],
                                 key=source.key, dtype=source.dtype, shape=source.shape)
        where = source.path or source.kind
        needed = spec.patch_size + 2 * spec.border
        if min(images.shape[1:]) < needed:
            raise DataError(f"{where}: images are {images.shape[1]}×{images.shape[2]} pixels; "
                            f"{spec.patch_size}×{spec.patch_size} patches with a "
                            f"{spec.border}-pixel border need at least {needed}×{needed}")
        if spec.whiten:
            images = whiten_olshausen_field(images, f0=spec.whitening_f0,
                                            target_variance=spec.target_variance)
        if spec.scale_to_variance is not None:
            images = images - images.mean(axis=(1, 2), keepdims=True)
            images *= np.sqrt(spec.scale_to_variance / images.var(axis=(1, 2)).mean())
        self.sampler = PatchSampler(images, spec.patch_size, border=spec.border,
                                    remove_mean=spec.remove_mean, normalize=spec.normalize)
        self.noise_variance = spec.input_noise.variance if spec.input_noise else 0.0
        #: Samples per temporally coherent sequence (1: independent samples).
        self.sequence_length = spec.sequence.frames if spec.sequence else 1
        covariance_rng = np.random.default_rng(COVARIANCE_SEED)
        self.signal_covariance = np.cov(self.sampler.sample(spec.covariance_samples,
                                                            covariance_rng), rowvar=False)
        self.noise_covariance = self.noise_variance * np.eye(size)

    def sample(self, rng: np.random.Generator, sensing: np.ndarray, dtype=np.float64
               ) -> np.ndarray:
        """Draw one input per entry of the boolean array ``sensing`` (any shape).

        Patches and noise are drawn for every entry, so the stream does not depend on the
        phases.

        Returns
        -------
        ndarray, shape ``sensing.shape + (patch_size²,)``
        """
        sensing = np.asarray(sensing, dtype=bool)
        count = int(sensing.size)
        if self.spec.sequence is None:
            patches = self.sampler.sample(count, rng)
        else:   # whole sequences: the builder made the batch a multiple of their length
            patches = self.sampler.sample_sequences(
                -(-count // self.sequence_length), self.sequence_length,
                self.spec.sequence.speed, rng)[:count]
        patches = patches.reshape(sensing.shape + (self.sites,))
        inputs = patches * sensing[..., None]
        if self.noise_variance > 0:
            inputs += np.sqrt(self.noise_variance) * rng.standard_normal(inputs.shape)
        return inputs.astype(dtype, copy=False)


@register_stimulus(ImagePatchesStimulusSpec)
def build_image_patches(name, spec, ctx) -> None:
    population = patch_population(name, spec, ctx)
    if spec.sequence is not None and ctx.batch_size % spec.sequence.frames:
        ctx.error(f"stimuli.{name}.sequence.frames", f"{spec.sequence.frames} frames per "
                  f"sequence do not divide the batch size {ctx.batch_size}; a sequence must "
                  "be consecutive samples of one batch")
    source = ImagePatchStimulus(spec, population.size)
    if spec.sequence is not None:   # refuse a path that does not fit now, not mid-run
        try:
            source.sampler.sample_sequences(1, spec.sequence.frames, spec.sequence.speed,
                                            np.random.default_rng(0))
        except DataError as error:
            ctx.error(f"stimuli.{name}.sequence", str(error))
    declare_source(name, spec, source, population, ctx)

"""Natural images: loading, Olshausen–Field whitening and random patches.

Olshausen & Field (1996, *Nature* 381:607; 1997, *Vision Research* 37:3311) trained on ten
512×512 natural scenes, whitened with the filter R(f) = f·exp(−(f/f0)⁴), f0 = 200
cycles/picture, and scaled to an average variance of 0.1. This module reproduces that
preprocessing and draws random square patches from the result.

Sources understood by :func:`load_images`
-----------------------------------------
``"skimage"`` (default)
    Photographs that ship inside the scikit-image wheel, so they load offline without a
    download: ``grass`` and ``gravel`` (512×512, grayscale). They are the only wheel-shipped
    pictures of natural, unstructured surfaces. The other wheel images are man-made
    (``brick``, ``camera``, ``coffee``, ``rocket``), text, people, animals, microscopy, or, for
    ``moon``, a mostly flat low-contrast surface. Both are close-up textures seen from above,
    not scenes with objects and a horizon, and grass is dominated by near-vertical blades, so
    this set has an orientation bias that O&F's images do not have, and sparse coding on it
    learns fields far broader in spatial frequency than V1's (median 3.7 octaves). The image
    protocols default to generated dead-leaves images instead
    (:mod:`plasticsim.model.stimuli.dead_leaves`); for published comparisons use O&F's own
    images.
a folder
    Every PNG, JPEG or TIFF file in it (sorted by name), converted to grayscale in [0, 1].
a ``.mat`` file
    The array stored under ``key`` (default ``"IMAGES"``), laid out h×w×n as in MATLAB.
    Both the v5 format (read with :func:`scipy.io.loadmat`) and the v7.3 HDF5 format (read
    with h5py) are understood.
a ``.npy`` / ``.npz`` file
    An n×h×w (or h×w) array; for ``.npz`` the array named ``key``.
headerless raw binary files
    Given ``dtype`` (e.g. ``">f4"``) and ``shape=(h, w)``, one image per file, row-major. This
    is the format of O&F's pre-whitened training set (``sparsenet-tcl/trainset/image0..9``).

A single image file, a list of files or a glob pattern (``".../image*"``) is also accepted;
the images are stacked in (natural) name order. Every problem with the data raises
:class:`~plasticsim.errors.DataError` with one message that names the file.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from plasticsim.errors import DataError

#: Default built-in set: natural surfaces shipped inside the scikit-image wheel.
SKIMAGE_NATURAL_IMAGES = ("grass", "gravel")
#: Grayscale 512×512 images that scikit-image ships in its wheel (no download needed).
SKIMAGE_OFFLINE_GRAYSCALE = ("grass", "gravel", "moon", "brick", "camera")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_SUFFIX_FORMATS = {".mat": "mat", ".npy": "npy", ".npz": "npz",
                   **{suffix: "image" for suffix in IMAGE_SUFFIXES}}
FILE_FORMATS = ("image", "mat", "npy", "npz", "raw")
PATCH_NORMALIZATIONS = (None, "unit_norm", "unit_variance")


def load_images(
    source: str | os.PathLike | Sequence[str | os.PathLike] = "skimage",
    *,
    file_format: str | None = None,
    key: str | None = None,
    dtype: str | np.dtype | None = None,
    shape: tuple[int, int] | None = None,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Load a set of grayscale images as one float64 array.

    Parameters
    ----------
    source : str, path or sequence of paths, default ``"skimage"``
        ``"skimage"`` for the built-in set, a folder, a file, a glob pattern or a list of
        files (see the module docstring).
    file_format : {"image", "mat", "npy", "npz", "raw"}, optional
        Format of the files; inferred from the suffix when omitted, and ``"raw"`` when
        ``dtype`` is given.
    key : str, optional
        Variable name in a ``.mat`` file (default ``"IMAGES"``) or array name in a ``.npz``
        file (default: its only array).
    dtype : str or numpy dtype, optional
        Element type of raw files, with byte order, e.g. ``">f4"``.
    shape : (int, int), optional
        (height, width) of each raw file's single image.
    names : sequence of str, optional
        Which scikit-image pictures to use with ``source="skimage"``; any of
        ``SKIMAGE_OFFLINE_GRAYSCALE``. Defaults to ``SKIMAGE_NATURAL_IMAGES``.

    Returns
    -------
    numpy.ndarray
        Shape (n_images, height, width), float64, all values finite.

    Raises
    ------
    DataError
        If a file or folder is missing or unreadable, a raw file has the wrong size, an array
        has the wrong number of dimensions, a key is absent, or the images differ in size.

    Examples
    --------
    >>> images = load_images("skimage")
    >>> images.shape
    (2, 512, 512)
    """
    if isinstance(source, str) and source == "skimage":
        return _load_skimage(names)
    if file_format is not None and file_format not in FILE_FORMATS:
        raise DataError(f"unknown image file format {file_format!r}; expected one of {FILE_FORMATS}")
    if dtype is not None:
        file_format = file_format or "raw"
    stacks, paths = [], _resolve_paths(source)
    for path in paths:
        stacks.append(_load_file(path, file_format, key, dtype, shape))
        if stacks[-1].shape[1:] != stacks[0].shape[1:]:
            raise DataError(f"{path}: images are {_size(stacks[-1])} pixels, expected "
                            f"{_size(stacks[0])} like {paths[0]}")
    return np.concatenate(stacks, axis=0)


def _size(stack: np.ndarray) -> str:
    return "×".join(str(n) for n in stack.shape[1:])


def _natural_key(path: Path) -> list:
    # image2 before image10, as a person would order them.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def _resolve_paths(source) -> list[Path]:
    """Turn a folder, file, glob pattern or list of files into an ordered list of files."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            files = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise DataError(f"{path}: folder has no image files; expected "
                                f"{', '.join(IMAGE_SUFFIXES)} files")
            return sorted(files, key=_natural_key)
        if path.exists():
            return [path]
        if glob.has_magic(str(source)):
            matches = [Path(p) for p in glob.glob(str(source)) if Path(p).is_file()]
            if not matches:
                raise DataError(f"{source}: no files match this pattern")
            return sorted(matches, key=_natural_key)
        raise DataError(f"{path}: no such file or folder")
    paths = [Path(p) for p in source]
    if not paths:
        raise DataError("empty list of image files")
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    return paths


def _load_file(path: Path, file_format, key, dtype, shape) -> np.ndarray:
    """Read one file as an (n, h, w) float64 stack."""
    if file_format is None:
        file_format = _SUFFIX_FORMATS.get(path.suffix.lower())
        if file_format is None:
            raise DataError(f"{path}: cannot tell the format from the suffix "
                            f"{path.suffix!r}; expected {', '.join(_SUFFIX_FORMATS)}, or give "
                            "dtype and shape for a headerless raw file")
    if file_format == "raw":
        stack = _read_raw(path, dtype, shape)
    elif file_format == "image":
        stack = _read_picture(path)
    elif file_format == "mat":
        stack = _read_mat(path, key or "IMAGES")
    else:
        stack = _read_numpy(path, key, file_format)
    if not np.all(np.isfinite(stack)):
        raise DataError(f"{path}: contains NaN or infinite values; expected finite pixel values")
    return stack


def _as_stack(array: np.ndarray, path: Path, what: str, layout: str) -> np.ndarray:
    """Check dimensions and dtype; return (n, h, w) float64 from an h×w×n or n×h×w array."""
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataError(f"{path}: {what} has dtype {array.dtype}; expected real numbers")
    if array.ndim == 2:
        array = array[np.newaxis]
    elif array.ndim == 3 and layout == "hwn":
        array = np.moveaxis(array, -1, 0)
    elif array.ndim != 3:
        expected = "h×w×n" if layout == "hwn" else "n×h×w"
        raise DataError(f"{path}: {what} has shape {array.shape}; expected an {expected} "
                        "stack of images or one h×w image")
    return np.ascontiguousarray(array, dtype=np.float64)


def _read_raw(path: Path, dtype, shape) -> np.ndarray:
    if dtype is None or shape is None or len(shape) != 2:
        raise DataError(f"{path}: a headerless raw file needs dtype (e.g. '>f4') and "
                        f"shape=(height, width); got dtype={dtype!r}, shape={shape!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise DataError(f"{path}: {dtype!r} is not a numpy dtype such as '>f4'") from error
    height, width = (int(n) for n in shape)
    expected_bytes = height * width * dtype.itemsize
    actual_bytes = path.stat().st_size
    if actual_bytes != expected_bytes:
        raise DataError(f"{path}: file has {actual_bytes} bytes, expected {expected_bytes} "
                        f"for one {height}×{width} image of dtype '{dtype.str}'")
    return _as_stack(np.fromfile(path, dtype=dtype).reshape(height, width), path, "image", "nhw")


def _read_picture(path: Path) -> np.ndarray:
    import skimage.color  # scikit-image is imported only when pictures are read (slow import)
    import skimage.io
    import skimage.util
    try:
        picture = skimage.io.imread(path)
    except Exception as error:  # the imaging plugins raise many different types
        raise DataError(f"{path}: cannot read as a PNG/JPEG/TIFF image ({error})") from error
    picture = skimage.util.img_as_float(picture)  # integer types scale to [0, 1]
    if picture.ndim == 3 and picture.shape[-1] == 4:
        picture = skimage.color.rgba2rgb(picture)
    if picture.ndim == 3 and picture.shape[-1] == 3:
        picture = skimage.color.rgb2gray(picture)
    if picture.ndim != 2:
        raise DataError(f"{path}: image has shape {picture.shape}; expected a grayscale, RGB "
                        "or RGBA picture")
    return _as_stack(picture, path, "image", "nhw")


def _read_mat(path: Path, key: str) -> np.ndarray:
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as mat_file:
            keys = [name for name in mat_file if not name.startswith("#")]
            if key not in keys:
                raise DataError(f"{path}: no array named {key!r}; the file holds {keys}")
            if not isinstance(mat_file[key], h5py.Dataset):
                raise DataError(f"{path}: {key!r} is a MATLAB struct or cell; expected a "
                                "numeric h×w×n array")
            # MATLAB v7.3 writes column-major data, so h5py sees the axes reversed.
            array = mat_file[key][()].T
    else:
        try:
            import scipy.io  # on use: slow to import
            contents = scipy.io.loadmat(path)
        except Exception as error:  # scipy raises ValueError, TypeError, OSError, ...
            raise DataError(f"{path}: cannot read as a MATLAB file ({error})") from error
        keys = [name for name in contents if not name.startswith("__")]
        if key not in keys:
            raise DataError(f"{path}: no array named {key!r}; the file holds {keys}")
        array = contents[key]
    return _as_stack(np.asarray(array), path, f"array {key!r}", "hwn")


def _read_numpy(path: Path, key: str | None, file_format: str) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as error:  # ValueError, OSError, zipfile errors, ...
        raise DataError(f"{path}: cannot read as a numpy {file_format} file ({error})") from error
    if file_format == "npy":
        if not isinstance(loaded, np.ndarray):
            raise DataError(f"{path}: holds several arrays; expected a single .npy array")
        return _as_stack(loaded, path, "array", "nhw")
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: is a single array, not a .npz archive")
    with loaded:
        keys = list(loaded.files)
        if key is None and len(keys) == 1:
            key = keys[0]
        if key not in keys:
            wanted = "a key" if key is None else f"no array named {key!r}"
            raise DataError(f"{path}: {wanted} is needed; the archive holds {keys}")
        return _as_stack(loaded[key], path, f"array {key!r}", "nhw")


def _load_skimage(names: Sequence[str] | None) -> np.ndarray:
    import skimage.data
    import skimage.util
    names = SKIMAGE_NATURAL_IMAGES if names is None else tuple(names)
    unknown = [name for name in names if name not in SKIMAGE_OFFLINE_GRAYSCALE]
    if unknown or not names:
        raise DataError(f"scikit-image pictures {unknown or names!r} are not available offline; "
                        f"choose from {SKIMAGE_OFFLINE_GRAYSCALE}")
    pictures = [skimage.util.img_as_float(getattr(skimage.data, name)()) for name in names]
    return np.stack(pictures).astype(np.float64)


def _image_stack(images: np.ndarray) -> np.ndarray:
    """Accept one (h, w) image or an (n, h, w) stack of finite numbers."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 2:
        images = images[np.newaxis]
    if images.ndim != 3 or images.shape[0] == 0:
        raise DataError(f"images have shape {images.shape}; expected (n_images, height, width)")
    if not np.all(np.isfinite(images)):
        raise DataError("images contain NaN or infinite values")
    return images


def whiten_olshausen_field(images: np.ndarray, f0: float | None = None,
                           target_variance: float = 0.1) -> np.ndarray:
    """Whiten images with Olshausen & Field's filter and scale them to a fixed variance.

    Each image is multiplied in the 2-D Fourier domain by R(f) = f·exp(−(f/f0)⁴): the ramp f
    flattens the ~1/f amplitude spectrum of natural images, and the quartic exponential cuts
    the highest frequencies, where noise and sampling artefacts dominate. The ramp also sets
    the mean (f = 0) to zero. The FFT treats the image as periodic, as O&F's code did, so
    the outermost pixels carry wrap-around artefacts; :class:`PatchSampler` skips a border.

    Parameters
    ----------
    images : numpy.ndarray
        Shape (n_images, height, width) or (height, width).
    f0 : float, optional
        Cut-off in cycles per picture, where the picture is the larger image side N.
        Defaults to 0.4·N, i.e. O&F's 200 cycles/picture for 512-pixel images.
    target_variance : float, default 0.1
        Average over images of each image's pixel variance after scaling (O&F used 0.1).

    Returns
    -------
    numpy.ndarray
        Whitened images, shape (n_images, height, width), float64.

    Raises
    ------
    DataError
        If the images are not a finite 2-D or 3-D array, or are constant.
    """
    images = _image_stack(images)
    _, height, width = images.shape
    picture_size = max(height, width)
    f0 = 0.4 * picture_size if f0 is None else float(f0)
    # Frequencies in cycles per picture of picture_size pixels (rfft: half plane in x).
    import scipy.fft  # on use: slow to import
    frequency_y = scipy.fft.fftfreq(height)[:, np.newaxis] * picture_size
    frequency_x = scipy.fft.rfftfreq(width)[np.newaxis, :] * picture_size
    frequency = np.hypot(frequency_x, frequency_y)
    response = frequency * np.exp(-((frequency / f0) ** 4))
    spectrum = scipy.fft.rfft2(images, workers=-1) * response
    whitened = scipy.fft.irfft2(spectrum, s=(height, width), workers=-1)
    mean_variance = whitened.var(axis=(1, 2)).mean()
    if mean_variance == 0:
        raise DataError("images are constant; there is nothing to whiten")
    return whitened * np.sqrt(target_variance / mean_variance)


class PatchSampler:
    """Draw random square patches from a set of images.

    Parameters
    ----------
    images : numpy.ndarray
        Shape (n_images, height, width) or (height, width).
    patch_size : int
        Side p of the square patches, in pixels.
    border : int, default 4
        Pixels skipped at every image edge, where whitening leaves wrap-around artefacts
        (sparsenet.m's ``BUFF = 4``).
    whiten : bool, default False
        Apply :func:`whiten_olshausen_field` first. Leave False for images that are already
        whitened, such as O&F's ``IMAGES.mat`` or their ``trainset/image*`` files.
    f0, target_variance : float, optional
        Passed to :func:`whiten_olshausen_field` when ``whiten`` is True.
    remove_mean : bool, default False
        Subtract each patch's own mean. sparsenet.m does not (whitening already removes the
        image mean), so the default keeps O&F's behaviour.
    normalize : {None, "unit_norm", "unit_variance"}, default None
        Scale each patch to unit Euclidean norm or unit variance after mean removal. A
        constant patch stays zero rather than becoming NaN.

    Raises
    ------
    DataError
        If the images are not a finite image stack or the patch plus borders does not fit.

    Examples
    --------
    >>> sampler = PatchSampler(load_images("skimage"), patch_size=12, whiten=True)
    >>> sampler.sample(100, np.random.default_rng(0)).shape
    (100, 144)
    """

    def __init__(self, images: np.ndarray, patch_size: int, *, border: int = 4,
                 whiten: bool = False, f0: float | None = None, target_variance: float = 0.1,
                 remove_mean: bool = False, normalize: str | None = None):
        if normalize not in PATCH_NORMALIZATIONS:
            raise ValueError(f"normalize={normalize!r}; expected one of {PATCH_NORMALIZATIONS}")
        if patch_size < 1 or border < 0:
            raise ValueError(f"patch_size={patch_size} must be ≥ 1 and border={border} ≥ 0")
        images = _image_stack(images)
        if whiten:
            images = whiten_olshausen_field(images, f0=f0, target_variance=target_variance)
        _, height, width = images.shape
        needed = patch_size + 2 * border
        if height < needed or width < needed:
            raise DataError(f"{patch_size}×{patch_size} patches with a {border}-pixel border "
                            f"need images of at least {needed}×{needed} pixels; these are "
                            f"{height}×{width}")
        self.images = images
        self.patch_size = int(patch_size)
        self.border = int(border)
        self.remove_mean = remove_mean
        self.normalize = normalize

    def sample(self, n_patches: int, rng: np.random.Generator) -> np.ndarray:
        """Draw patches at uniformly random images and positions.

        Parameters
        ----------
        n_patches : int
            Number of patches.
        rng : numpy.random.Generator
            Source of randomness; the same generator state gives the same patches.

        Returns
        -------
        numpy.ndarray
            Shape (n_patches, patch_size²); each row is a patch flattened row-major.
        """
        n_images, height, width = self.images.shape
        size, border = self.patch_size, self.border
        image_index = rng.integers(n_images, size=n_patches)
        top = rng.integers(border, height - border - size + 1, size=n_patches)
        left = rng.integers(border, width - border - size + 1, size=n_patches)
        return self._patches_at(image_index, top, left)

    def sample_sequences(self, n_sequences: int, frames: int, speed: float,
                         rng: np.random.Generator) -> np.ndarray:
        """Draw sequences of patches seen through a window drifting over one image.

        Each sequence picks an image, a direction α uniform on [0, 2π) and a start position;
        frame t shows the patch at start + t·speed·(cos α, sin α) (columns, rows), rounded to
        whole pixels, so that image structure translates across the window by ``speed``
        pixels per frame (Földiák 1991's moving stimuli; the temporal coherence a trace rule
        learns invariance from). The whole path stays inside the borders.

        Parameters
        ----------
        n_sequences : int
        frames : int
            Patches per sequence (≥ 1).
        speed : float
            Pixels per frame (≥ 0).
        rng : numpy.random.Generator

        Returns
        -------
        numpy.ndarray
            Shape (n_sequences · frames, patch_size²): the frames of each sequence in order,
            sequence after sequence.

        Raises
        ------
        DataError
            If the path does not fit inside the images' borders.
        """
        n_images, height, width = self.images.shape
        size, border = self.patch_size, self.border
        travel = (frames - 1) * speed
        if size + 2 * border + int(np.ceil(travel)) > min(height, width):
            raise DataError(f"a window of {size}×{size} pixels drifting {travel:g} pixels "
                            f"with a {border}-pixel border needs images of at least "
                            f"{size + 2 * border + int(np.ceil(travel))} pixels a side; these "
                            f"are {height}×{width}")
        image_index = rng.integers(n_images, size=n_sequences)
        direction = rng.uniform(0.0, 2 * np.pi, size=n_sequences)
        # The path's extent along each axis, then a start that keeps both ends inside.
        shift_x = np.rint(np.cos(direction)[:, None] * speed * np.arange(frames)).astype(int)
        shift_y = np.rint(np.sin(direction)[:, None] * speed * np.arange(frames)).astype(int)
        low_x, high_x = shift_x.min(axis=1), shift_x.max(axis=1)
        low_y, high_y = shift_y.min(axis=1), shift_y.max(axis=1)
        left = rng.integers(border - low_x, width - border - size - high_x + 1)
        top = rng.integers(border - low_y, height - border - size - high_y + 1)
        return self._patches_at(np.repeat(image_index, frames),
                                (top[:, None] + shift_y).ravel(),
                                (left[:, None] + shift_x).ravel())

    def _patches_at(self, image_index: np.ndarray, top: np.ndarray, left: np.ndarray
                    ) -> np.ndarray:
        """Patches with top-left corners (top, left) of the given images, post-processed."""
        size = self.patch_size
        n_patches = len(image_index)
        offsets = np.arange(size)
        patches = self.images[image_index[:, None, None],
                              top[:, None, None] + offsets[None, :, None],
                              left[:, None, None] + offsets[None, None, :]]
        patches = patches.reshape(n_patches, size * size)
        if self.remove_mean:
            patches -= patches.mean(axis=1, keepdims=True)
        if self.normalize is not None:
            if self.normalize == "unit_norm":
                scale = np.linalg.norm(patches, axis=1, keepdims=True)
            else:
                scale = patches.std(axis=1, keepdims=True)
            patches = np.divide(patches, scale, out=np.zeros_like(patches), where=scale > 0)
        return patches


def patch_covariance(images: np.ndarray, patch_size: int, n_patches: int,
                     rng: np.random.Generator, **sampler_options) -> np.ndarray:
    """Empirical pixel covariance of random patches.

    Parameters
    ----------
    images : numpy.ndarray
        Shape (n_images, height, width) or (height, width).
    patch_size : int
        Side of the square patches.
    n_patches : int
        Number of patches to average over (at least 2).
    rng : numpy.random.Generator
        Source of randomness.
    **sampler_options
        Passed to :class:`PatchSampler` (``border``, ``whiten``, ``remove_mean``, ...).

    Returns
    -------
    numpy.ndarray
        Shape (patch_size², patch_size²), pixels in row-major order; the ensemble mean is
        subtracted (``numpy.cov``).
    """
    patches = PatchSampler(images, patch_size, **sampler_options).sample(n_patches, rng)
    return np.cov(patches, rowvar=False)

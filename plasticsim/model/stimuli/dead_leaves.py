"""Dead-leaves images: random occluding shapes with power-law sizes, drawn from a seed.

The dead-leaves model (Matheron 1968; Lee, Mumford & Huang 2001, *Int. J. Computer Vision*
41:35) builds a picture from opaque "leaves" dropped one in front of the other. With leaf
sizes whose density falls as r⁻³ the picture is statistically scale invariant, so its power
spectrum falls as 1/f², and every leaf boundary is an occluding edge: whitened, the picture's
filter responses are sparse and heavy-tailed, as those of natural scenes are. These are the
two properties that make sparse coding learn localised, oriented, band-pass fields.

What this generator adds to the textbook model, and why
-------------------------------------------------------
* Ellipses and rectangles at every orientation and aspect ratio (log-uniform in
  ``[1, max_aspect]``), not only discs: straight and curved edges, corners and elongated
  objects (branches, blades), all orientations equally likely.
* Linear shading inside each leaf (a random luminance gradient, scaled to the leaf's size),
  so that surfaces are not perfectly flat, as lit surfaces are not.
* Striped texture along each leaf's long axis (grain, bark, blades of grass): a sinusoid
  across the leaf of random phase, contrast s.d. ``texture`` and wavelength log-uniform from
  2 pixels to the leaf's width. Without it, flat leaves whitened are isolated sharp edges,
  and the sparse-coding network learns pixel-sized edge detectors (median nx 0.02–0.17,
  50–99% blob-like fields, TV distance to V1 0.75–0.89 in eleven mixes of sizes, aspect
  ratios and blur), even where the power spectrum matched that of Olshausen &
  Field's images; with it, fields have the one to two carrier cycles of V1 fields.
* Rendering at ``supersample``× resolution, averaged down to pixels (the sensor's pixel
  aperture), then a Gaussian blur of ``blur`` pixels (the optics' point spread). Without
  them the edges are aliased staircases whose power stays high up to the Nyquist frequency;
  with ``blur`` = 0.5 the whitened spectrum rolls off above ≈ 0.15 cycles/pixel as that of
  Olshausen & Field's whitened photographs does.

How it differs from natural photographs: the texture is one sinusoid per leaf, more regular
than real grain (a few learned fields are patch-wide gratings, which V1 fields are not); no
shadows, perspective or horizon; no correlations between neighbouring objects' luminances,
sizes or orientations; luminances uniform in [0, 1] rather than the skewed distribution of
real scenes; isotropic, whereas real scenes have more horizontal and vertical edges.

Leaves are drawn front to back: a pixel takes the first leaf that covers it, and leaves are
added until every pixel is covered, so the picture has no background. Everything is drawn
from one :class:`numpy.random.Generator` seeded by ``seed``: the same seed and parameters
give the same images on every machine with the same NumPy.
"""

from __future__ import annotations

import functools

import numpy as np

# Elements (leaves × box pixels) rasterised at once: bounds memory at ~100 MB.
_CHUNK_ELEMENTS = 2_000_000
# Leaves are drawn in batches until the picture is covered; this many batches at most.
_MAX_BATCHES = 200


def dead_leaves_images(n_images: int = 8, size: int = 512, *, seed: int = 0,
                       min_radius: float = 1.0, max_radius: float | None = None,
                       size_exponent: float = 3.0, max_aspect: float = 8.0,
                       shading: float = 0.25, texture: float = 0.3, supersample: int = 2,
                       blur: float = 0.5) -> np.ndarray:
    """Draw a stack of dead-leaves images.

    Parameters
    ----------
    n_images : int, default 8
        Number of images.
    size : int, default 512
        Side of each (square) image in pixels.
    seed : int, default 0
        Seed of the generator; the same seed gives the same images.
    min_radius, max_radius : float
        Range of leaf radii (√(semi-axis product) for ellipses, the same area-equivalent
        measure for rectangles), in pixels; default 1 and ``size``.
    size_exponent : float, default 3.0
        Radii have density ∝ r^−size_exponent; 3 is the scale-invariant (1/f²) value.
    max_aspect : float, default 8.0
        Aspect ratios (long/short axis) are log-uniform in [1, max_aspect].
    shading : float, default 0.25
        Standard deviation of the luminance change across a leaf's radius (luminances are
        in [0, 1]).
    texture : float, default 0.3
        Standard deviation of the amplitude of each leaf's stripes.
    supersample : int, default 2
        Leaves are rasterised at this many subpixels per pixel side, then averaged.
    blur : float, default 0.5
        Standard deviation, in pixels, of the Gaussian blur applied after averaging.

    Returns
    -------
    numpy.ndarray
        Shape (n_images, size, size), float64. Cached: repeated calls with the same
        arguments return (a copy of) the same array.

    Examples
    --------
    >>> images = dead_leaves_images(2, 64, seed=1)
    >>> images.shape
    (2, 64, 64)
    """
    return _cached(int(n_images), int(size), int(seed), float(min_radius),
                   None if max_radius is None else float(max_radius), float(size_exponent),
                   float(max_aspect), float(shading), float(texture), int(supersample),
                   float(blur)).copy()


@functools.lru_cache(maxsize=4)
def _cached(n_images, size, seed, min_radius, max_radius, size_exponent, max_aspect,
            shading, texture, supersample, blur) -> np.ndarray:
    if n_images < 1 or size < 1 or supersample < 1:
        raise ValueError(f"n_images={n_images}, size={size} and supersample={supersample} "
                         "must be positive")
    max_radius = float(size) if max_radius is None else max_radius
    if not 0 < min_radius < max_radius:
        raise ValueError(f"need 0 < min_radius ({min_radius}) < max_radius ({max_radius})")
    if max_aspect < 1 or shading < 0 or blur < 0:
        raise ValueError(f"need max_aspect ≥ 1 ({max_aspect}), shading ≥ 0 ({shading}), "
                         f"blur ≥ 0 ({blur})")
    rng = np.random.default_rng(seed)
    images = np.empty((n_images, size, size))
    for index in range(n_images):
        fine = _render(rng, size * supersample, min_radius * supersample,
                       max_radius * supersample, size_exponent, max_aspect, shading,
                       texture, 2.0 * supersample)
        pixels = fine.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
        import scipy.ndimage  # on use: slow to import
        images[index] = scipy.ndimage.gaussian_filter(pixels, blur) if blur > 0 else pixels
    images.setflags(write=False)
    return images


def _radii(rng, count, low, high, exponent):
    """Radii with density ∝ r^−exponent on [low, high] (inverse transform sampling)."""
    uniform = rng.random(count)
    if exponent == 1:
        return low * (high / low) ** uniform
    power = 1.0 - exponent
    return (low**power + uniform * (high**power - low**power)) ** (1.0 / power)


def _render(rng, side, min_radius, max_radius, size_exponent, max_aspect, shading, texture,
            min_wavelength):
    """One side×side picture of leaves, front to back, until every pixel is covered."""
    front = np.full(side * side, np.iinfo(np.int64).max)  # index of the front leaf per pixel
    mean_area = np.mean(np.pi * _radii(rng, 4096, min_radius, max_radius, size_exponent) ** 2)
    # Leaves whose centres fall in a canvas of twice the side: one coverage of it per batch.
    batch = int(min(max(4 * side * side / mean_area, 256), 500_000))
    leaves, first = [], 0
    for _ in range(_MAX_BATCHES):
        leaf = _draw_leaves(rng, batch, side, min_radius, max_radius, size_exponent,
                            max_aspect, shading, texture, min_wavelength)
        _rasterise(front, side, leaf, first)
        leaves.append(leaf)
        first += batch
        if front.max() < first:
            break
    leaf = {name: np.concatenate([batch[name] for batch in leaves]) for name in leaves[0]}
    front[front >= first] = 0  # (only after _MAX_BATCHES batches) the first leaf fills holes
    y, x = np.divmod(np.arange(side * side), side)
    dx, dy = x + 0.5 - leaf["x"][front], y + 0.5 - leaf["y"][front]
    across = dy * leaf["cos"][front] - dx * leaf["sin"][front]  # along the short axis
    picture = (leaf["luminance"][front]
               + leaf["gradient_x"][front] * dx + leaf["gradient_y"][front] * dy
               + leaf["stripes"][front] * np.cos(leaf["stripe_frequency"][front] * across
                                                 + leaf["stripe_phase"][front]))
    return picture.reshape(side, side)


def _draw_leaves(rng, count, side, min_radius, max_radius, size_exponent, max_aspect,
                 shading, texture, min_wavelength) -> dict:
    radius = _radii(rng, count, min_radius, max_radius, size_exponent)
    aspect = np.exp(rng.random(count) * np.log(max_aspect))
    long_axis, short_axis = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    rectangle = rng.random(count) < 0.5
    # A rectangle of half-sides (a, b) has the area of the ellipse (a, b) times 4/π: shrink it
    # so that both shapes of the same radius cover the same area.
    shrink = np.where(rectangle, np.sqrt(np.pi / 4), 1.0)
    angle = rng.random(count) * np.pi
    # Centres uniform over a canvas of twice the side whatever the leaf's size, so that the
    # sizes of the leaves that reach the picture keep the r^-exponent law (a margin that grew
    # with size would thin out the large leaves and with them the low frequencies).
    x = (rng.random(count) * 2 - 0.5) * side
    y = (rng.random(count) * 2 - 0.5) * side
    gradient_angle = rng.random(count) * 2 * np.pi
    gradient = shading * rng.standard_normal(count) / radius
    # Stripes along the long axis (grain, blades, bark), wavelengths log-uniform from
    # min_wavelength (2 pixels) to the leaf's width: every octave of wavelength is equally
    # likely, so large leaves carry fine grain as well as coarse.
    widest = np.maximum(2 * short_axis, min_wavelength)
    wavelength = min_wavelength * (widest / min_wavelength) ** rng.random(count)
    stripes = texture * rng.standard_normal(count)
    stripe_phase = rng.random(count) * 2 * np.pi
    return {"stripes": stripes, "stripe_frequency": 2 * np.pi / wavelength,
            "stripe_phase": stripe_phase,"x": x, "y": y, "a": long_axis * shrink, "b": short_axis * shrink,
            "cos": np.cos(angle), "sin": np.sin(angle), "rectangle": rectangle,
            "luminance": rng.random(count),
            "gradient_x": gradient * np.cos(gradient_angle),
            "gradient_y": gradient * np.sin(gradient_angle)}


def _bucket(width):
    """Round box widths up to four steps per octave, so that few distinct shapes are batched."""
    unit = 2 ** np.maximum(np.floor(np.log2(width)) - 2, 0)
    return (np.ceil(width / unit) * unit).astype(int)


def _rasterise(front, side, leaf, first):
    """Write into ``front`` the smallest leaf index (first + i) covering each pixel centre.

    Leaves whose bounding box has no uncovered pixel are skipped: they lie behind leaves
    drawn before them, so once most of the picture is covered each batch costs little.
    """
    a, b, cos, sin = leaf["a"], leaf["b"], np.abs(leaf["cos"]), np.abs(leaf["sin"])
    rectangle = leaf["rectangle"]
    half_x = np.where(rectangle, a * cos + b * sin, np.sqrt((a * cos) ** 2 + (b * sin) ** 2))
    half_y = np.where(rectangle, a * sin + b * cos, np.sqrt((a * sin) ** 2 + (b * cos) ** 2))
    left = np.floor(leaf["x"] - half_x).astype(int)
    top = np.floor(leaf["y"] - half_y).astype(int)
    width_x = _bucket(np.ceil(leaf["x"] + half_x).astype(int) - left + 1)
    width_y = _bucket(np.ceil(leaf["y"] + half_y).astype(int) - top + 1)
    # Uncovered pixels in each box, from a summed-area table of the uncovered mask.
    uncovered = np.zeros((side + 1, side + 1), dtype=np.int64)
    uncovered[1:, 1:] = (front == np.iinfo(np.int64).max).reshape(side, side).cumsum(0).cumsum(1)
    c0, c1 = np.clip(left, 0, side), np.clip(left + width_x, 0, side)
    r0, r1 = np.clip(top, 0, side), np.clip(top + width_y, 0, side)
    holes = uncovered[r1, c1] - uncovered[r0, c1] - uncovered[r1, c0] + uncovered[r0, c0]
    visible = np.flatnonzero(holes > 0)
    shapes, shape_of = np.unique(np.stack([width_y[visible], width_x[visible]]), axis=1,
                                 return_inverse=True)
    for which_shape in range(shapes.shape[1]):
        height, width = shapes[:, which_shape]
        members = visible[np.flatnonzero(shape_of.ravel() == which_shape)]
        step = max(1, _CHUNK_ELEMENTS // (width * height))
        for start in range(0, members.size, step):
            chosen = members[start:start + step]
            column = left[chosen][:, None] + np.arange(width)                       # (n, w)
            row = top[chosen][:, None] + np.arange(height)                          # (n, h)
            dx = (column + 0.5 - leaf["x"][chosen][:, None])[:, None, :]          # (n, 1, w)
            dy = (row + 0.5 - leaf["y"][chosen][:, None])[:, :, None]             # (n, h, 1)
            c, s = leaf["cos"][chosen][:, None, None], leaf["sin"][chosen][:, None, None]
            u = (dx * c + dy * s) / a[chosen][:, None, None]
            v = (dy * c - dx * s) / b[chosen][:, None, None]
            inside = np.where(rectangle[chosen][:, None, None],
                              np.maximum(np.abs(u), np.abs(v)) <= 1, u * u + v * v <= 1)
            inside &= ((column >= 0) & (column < side))[:, None, :]
            inside &= ((row >= 0) & (row < side))[:, :, None]
            which, r, k = np.nonzero(inside)
            np.minimum.at(front, row[which, r] * side + column[which, k], first + chosen[which])

"""MacKay & Miller's linear analysis of Linsker's 1986 layered Hebb rule.

Linsker (1986, PNAS 83:7508, 8390, 8779) develops each layer M of a feedforward network of
linear cells with the ensemble-averaged Hebb-type rule

    dc_i/dt = k₁ + (1/N) Σ_n (Q_{i n} + k₂) c_n,     c_min ≤ c_i ≤ c_max,

over the N synapses of one cell, with c the synaptic strengths, Q the covariance of the
presynaptic activities (layer M−1) and k₁, k₂ constants. Synapse positions are drawn from a
Gaussian arbor density, so on a square grid of presynaptic cells with density A_j (summing
to 1, which plays the part of Linsker's 1/N) the rule reads dc/dt = k₁·1 + (Q + k₂J)·A·c,
J the all-ones matrix. MacKay & Miller (1990, *Neural Computation* 2:173; *Network*
1:257) write it for the synaptic-strength density w = A·c:

    dw/dt = A(Q + k₂J)·w + k₁·A·1,

so that, while no weight is at a bound, w grows along the leading eigenvectors of the
operator A(Q + k₂J). It is not symmetric but is similar to the symmetric
A^{1/2}(Q + k₂J)A^{1/2}; its eigenvalues are real and its eigenvectors are w = A^{1/2}u for
the symmetric eigenvectors u. For a radially symmetric Q and arbor the eigenvectors are
radial functions times cos mφ or sin mφ ("1s", "2p", "2s", "3d", … in MacKay & Miller's
atomic notation); k₂J acts only on the m = 0 family, since every m ≥ 1 eigenvector sums to
zero.

Conventions (all functions): presynaptic cells sit on the integer grid (row, column); a
cell's field is a vector over its arbor's grid points (:class:`Arbor`), or a square image of
odd side with the postsynaptic cell's position at the centre (:meth:`Arbor.to_image`). The
arbor density follows Linsker: A(d) ∝ exp(−d²/r²), falling to 1/e at the arbor radius r.
Correlation functions are sampled on integer displacements (:class:`CorrelationFunction`).
The scale of Q matters (k₂ is added to it): Linsker's k₁, k₂ are quoted for covariances
normalised so that Q(0) = 1, which :meth:`CorrelationFunction.normalized` gives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from plasticsim.errors import DataError, SpecError

#: Fraction of a field's energy in orders 0 … 3 that must be in m = 0 (the rotation
#: average) for :func:`classify_field` to call it radially symmetric.
RADIAL_ENERGY_THRESHOLD = 0.9
#: Highest angular order that counts as angular structure in :func:`classify_field`. Orders
#: 4 and above are left out of the radial fraction: the square grid's four-fold symmetry
#: puts m = 4 (and 8, …) energy into every pixelated round field, and a saturated field
#: (every synapse at a bound) has pixel-sharp edges whose high orders are the grid's, not
#: the field's (a 9-pixel saturated centre has about 4% of its energy in m = 4 and another
#: 10% above m = 6).
ANGULAR_STRUCTURE_ORDER = 3
#: Highest angular order :func:`angular_energy` resolves. The rings of a pixel grid hold
#: about 2π·r pixels, so order m is resolved only on rings with r ≳ m; fields of a few
#: pixels' radius carry little energy above m = 6 anyway.
DEFAULT_MAX_ORDER = 6
#: Ring-averaged profile values smaller than this fraction of the profile's largest
#: magnitude do not count as a sign change (round-off at a bound or a zero crossing).
SIGN_CHANGE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Arbor:
    """The presynaptic grid points a postsynaptic cell reaches, and their density.

    Attributes
    ----------
    offsets : numpy.ndarray
        Integer (row, column) displacements from the postsynaptic cell, shape (n, 2).
    density : numpy.ndarray
        Arbor weights A_j, summing to 1, shape (n,).
    radius : float
        r in A(d) ∝ exp(−d²/r²), in grid units.
    extent : int
        Largest |row| or |column| offset; images of fields are (2·extent + 1) square.
    """

    offsets: np.ndarray
    density: np.ndarray
    radius: float
    extent: int

    @property
    def size(self) -> int:
        """Number of presynaptic grid points n."""
        return self.density.size

    @property
    def distances(self) -> np.ndarray:
        """Distance of each grid point from the postsynaptic cell, shape (n,)."""
        return np.hypot(self.offsets[:, 0], self.offsets[:, 1])

    def to_image(self, values: np.ndarray) -> np.ndarray:
        """Vectors over the arbor (..., n) as images (..., 2e+1, 2e+1), zero outside it."""
        values = np.asarray(values)
        side = 2 * self.extent + 1
        image = np.zeros(values.shape[:-1] + (side, side), dtype=values.dtype)
        image[..., self.offsets[:, 0] + self.extent, self.offsets[:, 1] + self.extent] = values
        return image

    def from_image(self, image: np.ndarray) -> np.ndarray:
        """Images (..., 2e+1, 2e+1) as vectors over the arbor's grid points (..., n)."""
        image = np.asarray(image)
        side = 2 * self.extent + 1
        if image.shape[-2:] != (side, side):
            raise DataError(f"arbor field: expected images of shape ({side}, {side}), "
                            f"got {image.shape[-2:]}")
        return image[..., self.offsets[:, 0] + self.extent, self.offsets[:, 1] + self.extent]


def gaussian_arbor(radius: float, cutoff: float = 2.0) -> Arbor:
    """Linsker's Gaussian arbor on the integer grid: A(d) ∝ exp(−d²/r²) for d ≤ cutoff·r.

    Parameters
    ----------
    radius : float
        r, in grid units (> 0).
    cutoff : float, default 2.0
        Grid points farther than ``cutoff·radius`` get no synapse (exp(−4) = 1.8% of the
        central density at the default).

    Returns
    -------
    Arbor
        With the density normalised to sum 1.

    Examples
    --------
    >>> arbor = gaussian_arbor(1.0, cutoff=1.0)
    >>> arbor.size, arbor.extent
    (5, 1)
    """
    if not np.isfinite(radius) or radius <= 0:
        raise SpecError(f"expected a positive number of grid units, got {radius!r}",
                        key_path="radius")
    if not np.isfinite(cutoff) or cutoff <= 0:
        raise SpecError(f"expected a positive multiple of the radius, got {cutoff!r}",
                        key_path="cutoff")
    extent = int(np.floor(cutoff * radius))
    rows, columns = np.mgrid[-extent:extent + 1, -extent:extent + 1]
    distance2 = rows ** 2 + columns ** 2
    inside = distance2 <= (cutoff * radius) ** 2 + 1e-9
    offsets = np.column_stack([rows[inside], columns[inside]])
    density = np.exp(-distance2[inside] / radius ** 2)
    return Arbor(offsets=offsets, density=density / density.sum(), radius=float(radius),
                 extent=extent)


@dataclass(frozen=True)
class CorrelationFunction:
    """A stationary correlation (covariance) function sampled on integer displacements.

    Attributes
    ----------
    values : numpy.ndarray
        Shape (2K+1, 2K+1); ``values[K + dr, K + dc]`` is the covariance of two cells
        displaced by (dr, dc). It is zero beyond the extent K.
    """

    values: np.ndarray = field(repr=False)

    def __post_init__(self):
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] % 2 != 1:
            raise DataError(f"correlation function: expected a square array of odd side, got "
                            f"shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise DataError("correlation function: non-finite values")
        object.__setattr__(self, "values", values)

    @property
    def extent(self) -> int:
        """K: the largest displacement sampled along each axis."""
        return self.values.shape[0] // 2

    def __call__(self, row_displacement, column_displacement) -> np.ndarray:
        """Covariance at integer displacements (arrays broadcast); zero beyond the extent."""
        rows = np.asarray(row_displacement, dtype=np.int64)
        columns = np.asarray(column_displacement, dtype=np.int64)
        extent = self.extent
        inside = (np.abs(rows) <= extent) & (np.abs(columns) <= extent)
        result = np.zeros(np.broadcast(rows, columns).shape)
        rows, columns = np.broadcast_arrays(rows, columns)
        result[inside] = self.values[rows[inside] + extent, columns[inside] + extent]
        return result

    def normalized(self) -> CorrelationFunction:
        """The same function scaled to Q(0) = 1 (the scale Linsker's k₁, k₂ refer to)."""
        variance = self.values[self.extent, self.extent]
        if not variance > 0:
            raise DataError(f"correlation function: Q(0) = {variance:g}, cannot normalise")
        return CorrelationFunction(self.values / variance)

    def radial_profile(self) -> tuple[np.ndarray, np.ndarray]:
        """Ring averages of the function: (distances 0, 1, 2, …, K, values)."""
        return ring_profile(self.values)

    @classmethod
    def uncorrelated(cls, variance: float = 1.0) -> CorrelationFunction:
        """Independent cells: Q = variance·δ (Linsker's layer A)."""
        return cls(np.array([[float(variance)]]))

    @classmethod
    def from_function(cls, function: Callable[[np.ndarray], np.ndarray],
                      extent: int) -> CorrelationFunction:
        """Sample a radial function Q(d) of the distance d at displacements up to ``extent``."""
        rows, columns = np.mgrid[-extent:extent + 1, -extent:extent + 1]
        return cls(np.asarray(function(np.hypot(rows, columns)), dtype=np.float64))


def correlation_matrix(correlation: CorrelationFunction, arbor: Arbor) -> np.ndarray:
    """Q restricted to one cell's arbor: Q_ij = Q(offset_i − offset_j), shape (n, n)."""
    difference = arbor.offsets[:, None, :] - arbor.offsets[None, :, :]
    return correlation(difference[..., 0], difference[..., 1])


def mackay_miller_operator(correlation: np.ndarray, density: np.ndarray,
                           k2: float) -> np.ndarray:
    """The operator A(Q + k₂J) that the synaptic-strength density w = A·c follows.

    Parameters
    ----------
    correlation : numpy.ndarray
        Q over the arbor, shape (n, n) (:func:`correlation_matrix`).
    density : numpy.ndarray
        Arbor density A, shape (n,).
    k2 : float
        Linsker's k₂.

    Returns
    -------
    numpy.ndarray
        Shape (n, n): dw/dt = operator @ w + k₁·A while no weight is at a bound.
    """
    correlation = np.asarray(correlation, dtype=np.float64)
    density = np.asarray(density, dtype=np.float64)
    return density[:, None] * (correlation + k2)


@dataclass(frozen=True)
class Eigenmodes:
    """Eigenvalues and eigenvectors of A(Q + k₂J), largest eigenvalue first.

    Attributes
    ----------
    eigenvalues : numpy.ndarray
        Shape (count,), descending.
    density_vectors : numpy.ndarray
        Eigenvectors in w = A·c space (the fields the linear dynamics grows), unit length,
        shape (count, n); the sign makes the largest-magnitude entry positive.
    strength_vectors : numpy.ndarray
        The same modes in synaptic-strength space c = w / A, unit length, (count, n).
    """

    eigenvalues: np.ndarray
    density_vectors: np.ndarray
    strength_vectors: np.ndarray


def leading_eigenvectors(correlation: np.ndarray, density: np.ndarray, k2: float,
                         count: int | None = None) -> Eigenmodes:
    """Leading eigenvectors of the MacKay–Miller operator A(Q + k₂J).

    Computed from the symmetric A^{1/2}(Q + k₂J)A^{1/2}, which has the same eigenvalues, so
    they are exactly real and degenerate families (cos mφ, sin mφ) stay orthogonal.

    Parameters
    ----------
    correlation : numpy.ndarray
        Q over the arbor, (n, n).
    density : numpy.ndarray
        Arbor density A, (n,), all positive.
    k2 : float
        Linsker's k₂.
    count : int, optional
        How many modes to return (default all).

    Returns
    -------
    Eigenmodes

    Examples
    --------
    With no correlation and k₂ > 0 the only growing mode is the arbor itself:

    >>> arbor = gaussian_arbor(2.0)
    >>> modes = leading_eigenvectors(np.zeros((arbor.size, arbor.size)), arbor.density, 1.0, 1)
    >>> bool(np.allclose(modes.density_vectors[0],
    ...                  arbor.density / np.linalg.norm(arbor.density)))
    True
    """
    correlation = np.asarray(correlation, dtype=np.float64)
    density = np.asarray(density, dtype=np.float64)
    n = density.size
    if correlation.shape != (n, n):
        raise DataError(f"MacKay–Miller operator: Q has shape {correlation.shape}, the arbor "
                        f"has {n} points")
    if np.any(density <= 0):
        raise DataError("MacKay–Miller operator: arbor density must be positive everywhere")
    root = np.sqrt(density)
    symmetric = root[:, None] * (correlation + k2) * root[None, :]
    symmetric = (symmetric + symmetric.T) / 2      # remove round-off asymmetry before eigh
    eigenvalues, vectors = np.linalg.eigh(symmetric)
    order = np.argsort(eigenvalues)[::-1][: (n if count is None else int(count))]
    eigenvalues, vectors = eigenvalues[order], vectors[:, order].T
    density_vectors = _unit_rows(vectors * root)
    strength_vectors = _unit_rows(vectors / root)
    return Eigenmodes(eigenvalues=eigenvalues, density_vectors=density_vectors,
                      strength_vectors=strength_vectors)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    # a reproducible sign: the entry of largest magnitude is positive (ties: the first)
    largest = np.argmax(np.abs(vectors) - 1e-9 * np.arange(vectors.shape[1]), axis=1)
    signs = np.sign(vectors[np.arange(len(vectors)), largest])
    return vectors * np.where(signs == 0, 1.0, signs)[:, None]


def cosine_similarity(field: np.ndarray, mode: np.ndarray) -> float:
    """|cos| of the angle between a field and a mode (sign-free: −v is the same mode)."""
    field, mode = np.ravel(field).astype(np.float64), np.ravel(mode).astype(np.float64)
    norms = np.linalg.norm(field) * np.linalg.norm(mode)
    if norms == 0:
        raise DataError("cosine similarity: a field or mode is all zero")
    return float(abs(field @ mode) / norms)


def _polar(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if shape[0] != shape[1] or shape[0] % 2 != 1:
        raise DataError(f"field image: expected a square of odd side centred on the cell, "
                        f"got shape {shape}")
    half = shape[0] // 2
    rows, columns = np.mgrid[-half:half + 1, -half:half + 1]
    return np.hypot(rows, columns), np.arctan2(rows, columns)


def ring_profile(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Averages of an image over rings of width one pixel around its centre.

    Returns
    -------
    distances, values : numpy.ndarray
        Ring k holds the pixels with round(distance) = k; rings without pixels are dropped.
    """
    image = np.asarray(image, dtype=np.float64)
    distance, _ = _polar(image.shape)
    ring = np.rint(distance).astype(int)
    counts = np.bincount(ring.ravel())
    sums = np.bincount(ring.ravel(), weights=image.ravel())
    present = counts > 0
    return np.flatnonzero(present).astype(np.float64), sums[present] / counts[present]


def angular_energy(image: np.ndarray, max_order: int = DEFAULT_MAX_ORDER) -> np.ndarray:
    """Fraction of a field's energy in each angular order m = 0 … max_order.

    On each one-pixel ring the field is projected on e^{−imφ}; a ring of n pixels carrying
    a_m(r)·cos(mφ − φ₀) contributes n·|a_m|²/2 (n·a_0² for m = 0). The fractions are of the
    total energy Σ f²; they sum to about 1 less the energy above ``max_order``, not exactly
    (a ring's pixels are not evenly spaced in angle, so on the inner rings the orders are
    not exactly orthogonal: a few percent either way).

    Parameters
    ----------
    image : numpy.ndarray
        Square image of odd side, centred on the cell.
    max_order : int, default 6

    Returns
    -------
    numpy.ndarray
        Shape (max_order + 1,).
    """
    image = np.asarray(image, dtype=np.float64)
    distance, angle = _polar(image.shape)
    total = float(np.sum(image ** 2))
    if total == 0:
        raise DataError("angular energy: the field is all zero")
    ring = np.rint(distance).astype(int).ravel()
    values, angle = image.ravel(), angle.ravel()
    energy = np.zeros(max_order + 1)
    for radius in np.unique(ring):
        members = ring == radius
        count = int(members.sum())
        for order in range(max_order + 1):
            if radius == 0 and order > 0:
                continue      # the centre pixel has no angle
            coefficient = np.sum(values[members] * np.exp(-1j * order * angle[members])) / count
            energy[order] += count * abs(coefficient) ** 2 * (1 if order == 0 else 2)
    return energy / total


def centre_surround_sums(image: np.ndarray, centre_radius: float | None = None
                         ) -> tuple[float, float, float]:
    """Sum of a field inside and outside its centre.

    Parameters
    ----------
    image : numpy.ndarray
        Square image of odd side, centred on the cell. Pass the synaptic-strength density
        w = A·c to get the total input from each region (each of Linsker's synapses counts
        once, and their number per pixel is ∝ A).
    centre_radius : float, optional
        Pixels at a distance below it form the centre. By default, the first zero crossing
        of the ring-averaged profile (linearly interpolated between rings); infinite (all
        centre, no surround) when the profile never changes sign.

    Returns
    -------
    centre_sum, surround_sum, centre_radius : float
    """
    image = np.asarray(image, dtype=np.float64)
    distance, _ = _polar(image.shape)
    if centre_radius is None:
        centre_radius = _first_zero_crossing(*ring_profile(image))
    inside = distance < centre_radius
    return float(image[inside].sum()), float(image[~inside].sum()), float(centre_radius)


def _first_zero_crossing(distances: np.ndarray, profile: np.ndarray) -> float:
    scale = np.max(np.abs(profile))
    if scale == 0:
        return np.inf
    significant = np.abs(profile) > SIGN_CHANGE_TOLERANCE * scale
    reference = np.sign(profile[np.argmax(significant)])
    previous = int(np.argmax(significant))
    for index in range(previous + 1, profile.size):
        if not significant[index]:
            continue
        if np.sign(profile[index]) != reference:
            # interpolate between the last ring of the centre's sign and this one
            a, b = profile[previous], profile[index]
            return float(distances[previous]
                         + (distances[index] - distances[previous]) * a / (a - b))
        previous = index
    return np.inf


@dataclass(frozen=True)
class FieldClass:
    """What a field (or eigenvector) looks like.

    Attributes
    ----------
    kind : str
        ``"all-same-sign"`` or ``"centre-surround"`` (radially symmetric), or ``"angular"``
        (orientation-like structure: bi-lobed for m = 1, and so on).
    radially_symmetric : bool
        ``radial_fraction`` is at least the threshold (:data:`RADIAL_ENERGY_THRESHOLD`).
    radial_fraction : float
        Energy in m = 0 over the energy in orders 0 … :data:`ANGULAR_STRUCTURE_ORDER`.
    angular_order : int
        The order m holding the most energy.
    angular_energy : numpy.ndarray
        Energy fractions per order (:func:`angular_energy`).
    centre_sum, surround_sum, centre_radius : float
        From :func:`centre_surround_sums`.
    on_centre : bool
        The centre sum is positive.
    """

    kind: str
    radially_symmetric: bool
    radial_fraction: float
    angular_order: int
    angular_energy: np.ndarray
    centre_sum: float
    surround_sum: float
    centre_radius: float
    on_centre: bool


def classify_field(image: np.ndarray, radial_threshold: float = RADIAL_ENERGY_THRESHOLD,
                   max_order: int = DEFAULT_MAX_ORDER) -> FieldClass:
    """Radially symmetric (all-same-sign or centre-surround) or with angular structure.

    Parameters
    ----------
    image : numpy.ndarray
        Square image of odd side, centred on the cell (:meth:`Arbor.to_image`).
    radial_threshold : float, default 0.9
        Fraction of the energy in orders 0 … 3 that must lie in m = 0 for the field to count
        as radially symmetric.
    max_order : int, default 6

    Returns
    -------
    FieldClass
        A radially symmetric field is ``"centre-surround"`` when its ring-averaged profile
        changes sign and the centre and surround sums have opposite signs, else
        ``"all-same-sign"``.

    Examples
    --------
    >>> rows, columns = np.mgrid[-6:7, -6:7]
    >>> d2 = rows ** 2 + columns ** 2
    >>> classify_field(np.exp(-d2 / 4) - 0.3 * np.exp(-d2 / 16)).kind
    'centre-surround'
    >>> classify_field(columns * np.exp(-d2 / 8)).angular_order
    1
    """
    energy = angular_energy(image, max_order)
    centre, surround, radius = centre_surround_sums(image)
    resolved = float(energy[:ANGULAR_STRUCTURE_ORDER + 1].sum())
    radial_fraction = float(energy[0] / resolved) if resolved > 0 else 0.0
    radial = bool(radial_fraction >= radial_threshold)
    if not radial:
        kind = "angular"
    elif np.isfinite(radius) and centre * surround < 0:
        kind = "centre-surround"
    else:
        kind = "all-same-sign"
    return FieldClass(kind=kind, radially_symmetric=radial, radial_fraction=radial_fraction,
                      angular_order=int(np.argmax(energy)), angular_energy=energy,
                      centre_sum=centre, surround_sum=surround, centre_radius=radius,
                      on_centre=bool(centre > 0))


def next_layer_correlation(fields: np.ndarray, correlation: CorrelationFunction
                           ) -> CorrelationFunction:
    """Correlation function of a layer's activities from its fields and its input's.

    A linear cell at position p with synaptic-strength density w (an image centred on p)
    has activity Σ_x w(x)·F(p + x) of its input layer's activities F. Two such cells
    displaced by d then covary by Σ_{x,y} w(x) w(y) Q(d + x − y) = ((w ⋆ w) * Q)(d): the
    field's autocorrelation convolved with the input correlation. With several fields
    (different cells of the layer) their autocorrelations are averaged: exact when all
    cells have the same field up to translation (Linsker's all-excitatory and
    centre-surround layers), and otherwise the mean covariance of a cell with itself
    shifted, the stationary approximation the next layer's analysis uses.

    Parameters
    ----------
    fields : numpy.ndarray
        Synaptic-strength densities w, shape (cells, 2e+1, 2e+1) or one (2e+1, 2e+1) image.
    correlation : CorrelationFunction
        Of the input layer.

    Returns
    -------
    CorrelationFunction
        Of the layer, with extent K + 2e (unnormalised; see
        :meth:`CorrelationFunction.normalized`).

    Examples
    --------
    Uncorrelated input seen through one all-excitatory arbor gives the arbor's
    autocorrelation, a Gaussian of radius √2·r:

    >>> arbor = gaussian_arbor(2.0, cutoff=3.0)
    >>> layer = next_layer_correlation(arbor.to_image(arbor.density),
    ...                                CorrelationFunction.uncorrelated()).normalized()
    >>> round(float(layer(0, 2)), 4), round(float(np.exp(-4 / 8)), 4)
    (0.6065, 0.6065)
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim == 2:
        fields = fields[None]
    if fields.ndim != 3 or fields.shape[1] != fields.shape[2] or fields.shape[1] % 2 != 1:
        raise DataError(f"next-layer correlation: expected fields of shape (cells, side, side) "
                        f"with an odd side, got {fields.shape}")
    from scipy.signal import fftconvolve  # on use: slow to import
    autocorrelation = np.mean([fftconvolve(w, w[::-1, ::-1], mode="full") for w in fields],
                              axis=0)
    return CorrelationFunction(fftconvolve(autocorrelation, correlation.values, mode="full"))

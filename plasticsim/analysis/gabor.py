"""Gabor fits of receptive fields, in the convention of Ringach (2002).

Ringach (2002, *J Neurophysiol* 88:455) fitted macaque V1 simple-cell receptive fields with

    G(x, y) = A·exp(−x′²/(2σx²) − y′²/(2σy²))·cos(2πf·x′ + φ) + offset,

where x′ runs across the bars (along the carrier's wave vector) and y′ along them, and
summarised each fit by the dimensionless envelope sizes nx = σx·f and ny = σy·f, measured in
carrier cycles. This module fits the same model by multistart least squares and derives the
metrics used to compare learned fields with V1 (Ringach 2002 conventions).

Coordinates are in pixels: x is the column index, y the row index (pointing down), with the
centre of pixel (0, 0) at the origin. θ is the direction of the carrier's wave vector,
counter-clockwise from the x axis in these coordinates (clockwise on a displayed image);
the bars run at θ + 90°.

Canonical form: σx, σy > 0, f ≥ 0, A ≥ 0, θ in [0, π) and φ in (−π, π]. Every fit is
brought to this form, so that parameters of different units are comparable (a Gabor with
θ + π and −φ, or with −A and φ + π, is the same function).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plasticsim.errors import DataError

PARAMETER_NAMES = ("x0", "y0", "theta", "sigma_x", "sigma_y", "frequency", "phase",
                   "amplitude", "offset")
DERIVED_NAMES = ("nx", "ny", "aspect_ratio", "sf_bandwidth_octaves", "low_pass",
                 "orientation_halfwidth_deg", "phase_symmetry", "orientation_deg",
                 "carrier_cycles", "center_inside")
#: Columns of the table returned by :func:`fit_gabors`, in order.
TABLE_COLUMNS = PARAMETER_NAMES + ("r_squared", "success") + DERIVED_NAMES

#: Half-width at half height of the Fourier transform of a Gaussian envelope of σ = 1:
#: sqrt(2·ln 2)/(2π) = 0.18739, Ringach's "0.187" (kept unrounded here).
HALF_HEIGHT_CONSTANT = np.sqrt(2 * np.log(2)) / (2 * np.pi)
#: Cap on model evaluations per start: good starts converge in ~15, and the rare start that
#: wanders along a flat valley is not worth hundreds more.
MAX_EVALUATIONS = 100
#: Random candidates screened per refined start in :func:`fit_gabor`.
CANDIDATES_PER_START = 8


@dataclass(frozen=True)
class GaborFit:
    """Best-fitting Gabor of one receptive field, in canonical form.

    Attributes
    ----------
    x0, y0 : float
        Centre in pixels (x = column, y = row).
    theta : float
        Direction of the carrier's wave vector in radians, in [0, π); bars run at θ + π/2.
    sigma_x, sigma_y : float
        Envelope standard deviations in pixels, across (x′) and along (y′) the bars.
    frequency : float
        Carrier spatial frequency in cycles per pixel (≥ 0).
    phase : float
        Carrier phase φ in radians, in (−π, π]; 0 is an even (ON-centre) field.
    amplitude : float
        A ≥ 0.
    offset : float
        Constant added to the Gabor.
    r_squared : float
        1 − SS_residual / SS_total over the pixels; NaN when the fit failed.
    success : bool
        False when no fit was possible (constant or non-finite field); parameters are NaN.
    patch_shape : tuple of int
        (height, width) of the fitted field.
    message : str
        Why the fit failed, or ``""``.
    """

    x0: float
    y0: float
    theta: float
    sigma_x: float
    sigma_y: float
    frequency: float
    phase: float
    amplitude: float
    offset: float
    r_squared: float
    success: bool
    patch_shape: tuple[int, int]
    message: str = ""

    @property
    def nx(self) -> float:
        """Envelope width across the bars in carrier cycles, σx·f."""
        return self.sigma_x * self.frequency

    @property
    def ny(self) -> float:
        """Envelope length along the bars in carrier cycles, σy·f."""
        return self.sigma_y * self.frequency

    @property
    def aspect_ratio(self) -> float:
        """σy/σx: above 1 for fields elongated along their bars."""
        return self.sigma_y / self.sigma_x

    @property
    def low_pass(self) -> bool:
        """True when nx < 0.187: the frequency tuning's half-height reaches f = 0."""
        return bool(self.nx < HALF_HEIGHT_CONSTANT)

    @property
    def sf_bandwidth_octaves(self) -> float:
        """Full spatial-frequency bandwidth at half height, log₂((1+d)/(1−d)), d = 0.187/nx.

        ``inf`` for low-pass fields (nx ≤ 0.187), whose lower half-height frequency is not
        above zero, so the bandwidth in octaves is unbounded; NaN for failed fits.
        """
        if not np.isfinite(self.nx):
            return np.nan
        if self.nx <= HALF_HEIGHT_CONSTANT:
            return np.inf
        ratio = HALF_HEIGHT_CONSTANT / self.nx
        return float(np.log2((1 + ratio) / (1 - ratio)))

    @property
    def orientation_halfwidth_deg(self) -> float:
        """Orientation tuning half-width at half height, atan(0.187/ny), in degrees."""
        with np.errstate(divide="ignore"):
            return float(np.degrees(np.arctan(HALF_HEIGHT_CONSTANT / np.float64(self.ny))))

    @property
    def phase_symmetry(self) -> float:
        """|cos φ|: 1 for even-symmetric fields, 0 for odd-symmetric ones."""
        return float(abs(np.cos(self.phase)))

    @property
    def orientation_deg(self) -> float:
        """Preferred orientation: θ in degrees, in [0, 180), i.e. the carrier direction."""
        return float(np.degrees(self.theta))

    @property
    def carrier_cycles(self) -> float:
        """Carrier cycles across the field's longer side, f·max(height, width).

        Below ~0.5 the data do not pin down f: an odd-symmetric field then fits best as
        f → 0 with A·f fixed, i.e. a derivative of a Gaussian, and nx, ny → 0 with it.
        """
        return self.frequency * max(self.patch_shape)

    @property
    def center_inside(self) -> bool:
        """True when the fitted centre lies within the field's pixels."""
        height, width = self.patch_shape
        return bool(-0.5 <= self.x0 <= width - 0.5 and -0.5 <= self.y0 <= height - 0.5)

    def parameters(self) -> np.ndarray:
        """The nine model parameters in ``PARAMETER_NAMES`` order."""
        return np.array([getattr(self, name) for name in PARAMETER_NAMES])


def gabor_patch(shape: tuple[int, int], x0: float, y0: float, theta: float, sigma_x: float,
                sigma_y: float, frequency: float, phase: float, amplitude: float = 1.0,
                offset: float = 0.0) -> np.ndarray:
    """Evaluate the Gabor model on a pixel grid.

    Parameters
    ----------
    shape : (int, int)
        (height, width) of the patch.
    x0, y0, theta, sigma_x, sigma_y, frequency, phase, amplitude, offset : float
        Model parameters, as in :class:`GaborFit`.

    Returns
    -------
    numpy.ndarray
        Array of the given shape.

    Examples
    --------
    >>> gabor_patch((12, 12), 5.5, 5.5, 0.0, 2.0, 3.0, 0.15, 0.0).shape
    (12, 12)
    """
    y, x = np.indices(shape, dtype=np.float64)
    parameters = (x0, y0, theta, sigma_x, sigma_y, frequency, phase, amplitude, offset)
    return _model(np.array(parameters, dtype=np.float64), x, y)


def _model(parameters: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x0, y0, theta, sigma_x, sigma_y, frequency, phase, amplitude, offset = parameters
    across, along = _rotate(x - x0, y - y0, theta)
    envelope = np.exp(-0.5 * ((across / sigma_x) ** 2 + (along / sigma_y) ** 2))
    return amplitude * envelope * np.cos(2 * np.pi * frequency * across + phase) + offset


def _jacobian(parameters: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Analytic derivatives of the model at every pixel, shape (n_pixels, 9)."""
    x0, y0, theta, sigma_x, sigma_y, frequency, phase, amplitude, _ = parameters
    cos_theta, sin_theta = np.cos(theta), np.sin(theta)
    across, along = _rotate(x - x0, y - y0, theta)
    envelope = np.exp(-0.5 * ((across / sigma_x) ** 2 + (along / sigma_y) ** 2))
    argument = 2 * np.pi * frequency * across + phase
    even, odd = envelope * np.cos(argument), envelope * np.sin(argument)
    d_across = amplitude * (-across / sigma_x**2 * even - 2 * np.pi * frequency * odd)
    d_along = amplitude * (-along / sigma_y**2 * even)
    return np.column_stack([
        -cos_theta * d_across + sin_theta * d_along,  # x0
        -sin_theta * d_across - cos_theta * d_along,  # y0
        along * d_across - across * d_along,  # theta
        amplitude * even * across**2 / sigma_x**3,
        amplitude * even * along**2 / sigma_y**3,
        -amplitude * odd * 2 * np.pi * across,  # frequency
        -amplitude * odd,  # phase
        even,  # amplitude
        np.ones_like(x),  # offset
    ])


def _rotate(dx, dy, theta):
    """Coordinates across (x′) and along (y′) the bars."""
    cos_theta, sin_theta = np.cos(theta), np.sin(theta)
    return dx * cos_theta + dy * sin_theta, -dx * sin_theta + dy * cos_theta


def _bounds(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Box that keeps the fit away from degenerate solutions (one-pixel or huge envelopes)."""
    height, width = shape
    extent = max(height, width)
    lower = [-0.5 * width, -0.5 * height, -np.inf, 0.3, 0.3, 0.0, -np.inf, -np.inf, -np.inf]
    # Frequencies above 1/√2 cycles/pixel alias even along a diagonal.
    upper = [1.5 * width, 1.5 * height, np.inf, 2.0 * extent, 2.0 * extent, np.sqrt(0.5),
             np.inf, np.inf, np.inf]
    return np.array(lower), np.array(upper)


def _with_linear_part(geometry: np.ndarray, patch: np.ndarray, x, y) -> np.ndarray:
    """Complete (x0, y0, θ, σx, σy, f) with the least-squares amplitude, phase and offset.

    The model is linear in A·cos φ, A·sin φ and the offset once the geometry is fixed, so
    every start begins at the best phase for its geometry instead of a guessed one.
    """
    x0, y0, theta, sigma_x, sigma_y, frequency = geometry
    across, along = _rotate(x - x0, y - y0, theta)
    envelope = np.exp(-0.5 * ((across / sigma_x) ** 2 + (along / sigma_y) ** 2))
    carrier = 2 * np.pi * frequency * across
    design = np.column_stack([envelope * np.cos(carrier), -envelope * np.sin(carrier),
                              np.ones(patch.size)])
    (cos_part, sin_part, offset), *_ = np.linalg.lstsq(design, patch, rcond=None)
    return np.array([*geometry, np.arctan2(sin_part, cos_part), np.hypot(cos_part, sin_part),
                     offset])


def _spectral_guess(patch2d: np.ndarray, x, y) -> np.ndarray:
    """Geometry from the energy centroid and the peak of the zero-padded power spectrum."""
    centred = patch2d - patch2d.mean()
    energy = centred.ravel() ** 2
    total = energy.sum()
    x0, y0 = energy @ x / total, energy @ y / total
    # Zero padding to ≥ 4× the patch interpolates the spectrum between DFT bins.
    n_fft = 1 << int(np.ceil(np.log2(4 * max(patch2d.shape))))
    power = np.abs(np.fft.rfft2(centred, s=(n_fft, n_fft))) ** 2
    row, column = np.unravel_index(np.argmax(power), power.shape)
    frequency_y, frequency_x = np.fft.fftfreq(n_fft)[row], np.fft.rfftfreq(n_fft)[column]
    frequency, theta = np.hypot(frequency_x, frequency_y), np.arctan2(frequency_y, frequency_x)
    # The energy is envelope², whose standard deviation is σ/√2.
    across, along = _rotate(x - x0, y - y0, theta)
    sigma_x = np.sqrt(2 * (energy @ across**2) / total)
    sigma_y = np.sqrt(2 * (energy @ along**2) / total)
    return np.array([x0, y0, theta, sigma_x, sigma_y, frequency])


def _random_geometry(guess: np.ndarray, shape, rng: np.random.Generator,
                     perturb: bool) -> np.ndarray:
    """A restart: a jitter of the spectral guess, or a fresh draw over plausible fields."""
    x0, y0, theta, sigma_x, sigma_y, frequency = guess
    if perturb:
        scale = np.exp(rng.normal(0.0, 0.3, size=3))
        return np.array([x0 + rng.normal(0.0, 1.0), y0 + rng.normal(0.0, 1.0),
                         theta + rng.normal(0.0, 0.3), sigma_x * scale[0], sigma_y * scale[1],
                         frequency * scale[2]])
    extent = max(shape)
    return np.array([x0 + rng.normal(0.0, 1.0), y0 + rng.normal(0.0, 1.0),
                     rng.uniform(0.0, np.pi), *np.exp(rng.uniform(0.0, np.log(extent / 3), 2)),
                     np.exp(rng.uniform(np.log(0.5 / extent), np.log(0.4)))])


def _canonical(parameters: np.ndarray) -> np.ndarray:
    """Map equivalent parameter sets to one: σ > 0, f ≥ 0, A ≥ 0, θ in [0, π), φ in (−π, π]."""
    x0, y0, theta, sigma_x, sigma_y, frequency, phase, amplitude, offset = parameters
    if frequency < 0:  # cos(−2πf x′ + φ) = cos(2πf x′ − φ)
        frequency, phase = -frequency, -phase
    if amplitude < 0:  # −A cos(u) = A cos(u + π)
        amplitude, phase = -amplitude, phase + np.pi
    turns = np.floor(theta / np.pi)
    theta -= turns * np.pi
    if turns % 2:  # θ + π flips x′ → −x′, i.e. φ → −φ
        phase = -phase
    phase = np.pi - (np.pi - phase) % (2 * np.pi)
    return np.array([x0, y0, theta, abs(sigma_x), abs(sigma_y), frequency, phase, amplitude,
                     offset])


def _failed_fit(shape, message: str) -> GaborFit:
    return GaborFit(*([np.nan] * len(PARAMETER_NAMES)), r_squared=np.nan, success=False,
                    patch_shape=shape, message=message)


def fit_gabor(patch: np.ndarray, n_starts: int = 4,
              rng: np.random.Generator | None = None) -> GaborFit:
    """Fit a Gabor to one receptive field by multistart least squares.

    The first start uses the energy centroid, the peak of the power spectrum (frequency
    and orientation) and the envelope's second moments. ``CANDIDATES_PER_START`` random
    candidates per further start are drawn, half jittering that guess and half anywhere;
    each gets the least-squares amplitude, phase and offset for its geometry, and the
    ``n_starts − 1`` with the lowest residual join the first start. All nine parameters are
    then refined with :func:`scipy.optimize.least_squares` (analytic Jacobian) inside bounds
    that keep σ ≥ 0.3 px and f below the diagonal Nyquist limit; the lowest residual wins.

    Parameters
    ----------
    patch : numpy.ndarray
        The field, shape (height, width).
    n_starts : int, default 4
        Number of refined starts, including the spectral guess.
    rng : numpy.random.Generator, optional
        Draws the restarts; defaults to ``numpy.random.default_rng(0)`` so that repeated
        calls give identical fits.

    Returns
    -------
    GaborFit
        The canonical best fit. A constant or non-finite field gives ``success=False`` with
        NaN parameters rather than an exception, so batch fits can count failures.

    Raises
    ------
    DataError
        If ``patch`` is not two-dimensional.

    Examples
    --------
    >>> field = gabor_patch((12, 12), 5.5, 5.5, 0.5, 2.0, 3.0, 0.15, 0.0)
    >>> round(fit_gabor(field).nx, 2)
    0.3
    """
    patch2d = np.asarray(patch, dtype=np.float64)
    if patch2d.ndim != 2:
        raise DataError(f"receptive field has shape {patch2d.shape}; expected (height, width)")
    shape = patch2d.shape
    if not np.all(np.isfinite(patch2d)):
        return _failed_fit(shape, "field contains NaN or infinite values")
    total_sum_of_squares = np.sum((patch2d - patch2d.mean()) ** 2)
    if total_sum_of_squares == 0:
        return _failed_fit(shape, "field is constant")
    rng = np.random.default_rng(0) if rng is None else rng

    y, x = (axis.ravel() for axis in np.indices(shape, dtype=np.float64))
    values = patch2d.ravel()
    lower, upper = _bounds(shape)
    guess = _spectral_guess(patch2d, x, y)
    # Screening a candidate costs one small linear solve, refining it ~15 Jacobians, so
    # many candidates are screened and only the most promising are refined.
    candidates = [guess] + [_random_geometry(guess, shape, rng, perturb=bool(i % 2))
                            for i in range(1, n_starts * CANDIDATES_PER_START)]
    starts = [np.clip(_with_linear_part(np.clip(geometry, lower[:6], upper[:6]), values, x, y),
                      lower, upper) for geometry in candidates]
    screening_cost = [np.sum((_model(start, x, y) - values) ** 2) for start in starts[1:]]
    chosen = [starts[0]] + [starts[1 + i] for i in np.argsort(screening_cost)[:n_starts - 1]]

    def residuals(parameters):
        return _model(parameters, x, y) - values

    def jacobian(parameters):
        return _jacobian(parameters, x, y)

    best = None
    for start in chosen:
        from scipy.optimize import least_squares  # on use: slow to import
        result = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper),
                               x_scale="jac", max_nfev=MAX_EVALUATIONS)
        if best is None or result.cost < best.cost:
            best = result
    r_squared = 1.0 - 2.0 * best.cost / total_sum_of_squares  # cost = ½·SS_residual
    return GaborFit(*_canonical(best.x), r_squared=float(r_squared), success=True,
                    patch_shape=shape)


def fit_gabors(fields: np.ndarray, n_starts: int = 4,
               rng: np.random.Generator | None = None) -> np.ndarray:
    """Fit a Gabor to every receptive field of a population.

    Parameters
    ----------
    fields : numpy.ndarray
        Shape (n_units, height, width).
    n_starts : int, default 4
        Starts per field, as in :func:`fit_gabor`.
    rng : numpy.random.Generator, optional
        Seeds one child generator per unit, so each unit's fit does not depend on the
        others; defaults to ``numpy.random.default_rng(0)``.

    Returns
    -------
    numpy.ndarray
        Structured array, one record per unit (failed fits included, with
        ``success=False``), with the fields named in ``TABLE_COLUMNS``.

    Raises
    ------
    DataError
        If ``fields`` is not three-dimensional.
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim != 3:
        raise DataError(f"receptive fields have shape {fields.shape}; expected "
                        "(n_units, height, width)")
    rng = np.random.default_rng(0) if rng is None else rng
    unit_seeds = rng.integers(2**63, size=len(fields))
    dtype = [(name, bool if name in ("success", "low_pass", "center_inside") else np.float64)
             for name in TABLE_COLUMNS]
    table = np.zeros(len(fields), dtype=dtype)
    for unit, (field, seed) in enumerate(zip(fields, unit_seeds)):
        fit = fit_gabor(field, n_starts=n_starts, rng=np.random.default_rng(seed))
        table[unit] = tuple(getattr(fit, name) for name in TABLE_COLUMNS)
    return table


def summarize_fits(table: np.ndarray, r2_threshold: float = 0.8,
                   thresholds: tuple[float, ...] = (0.9, 0.8),
                   blob_threshold: float = 0.30) -> dict:
    """Population summary of a :func:`fit_gabors` table.

    Parameters
    ----------
    table : numpy.ndarray
        Output of :func:`fit_gabors`.
    r2_threshold : float, default 0.8
        Good fits, over which the medians and the blob-like fraction are taken, have
        R² above this and a centre inside the field.
    thresholds : tuple of float, default (0.9, 0.8)
        R² levels whose pass fractions (of all units, failed ones included) are reported.
    blob_threshold : float, default 0.30
        A good fit is blob-like when both nx and ny are below this.

    Returns
    -------
    dict
        ``n_units``, ``n_failed``, ``fraction_r2_above_<t>`` for each threshold, ``n_good``,
        ``n_excluded`` (units not good, failed ones included), ``median_nx``, ``median_ny``,
        ``median_sf_bandwidth_octaves`` (low-pass fields count as ``inf``),
        ``n_low_pass``, ``median_orientation_halfwidth_deg``, ``median_aspect_ratio``,
        ``blob_like_fraction``, ``n_subcycle`` (good fits with under half a carrier cycle
        across the field, see :attr:`GaborFit.carrier_cycles`) and
        ``blob_like_fraction_resolved`` (blob-like fraction without them). Medians and
        fractions are NaN when there is no good fit.
    """
    r_squared = np.where(table["success"], table["r_squared"], -np.inf)
    good = table[(r_squared > r2_threshold) & table["center_inside"]]
    summary = {"n_units": len(table), "n_failed": int(np.sum(~table["success"]))}
    for threshold in thresholds:
        summary[f"fraction_r2_above_{threshold:g}"] = float(np.mean(r_squared > threshold))
    summary.update(n_good=len(good), n_excluded=len(table) - len(good))

    def median(column):
        return float(np.median(good[column])) if len(good) else np.nan

    def blob_fraction(fits):
        blob_like = (fits["nx"] < blob_threshold) & (fits["ny"] < blob_threshold)
        return float(np.mean(blob_like)) if len(fits) else np.nan

    summary.update(
        median_nx=median("nx"),
        median_ny=median("ny"),
        median_sf_bandwidth_octaves=median("sf_bandwidth_octaves"),
        n_low_pass=int(np.sum(good["low_pass"])),
        median_orientation_halfwidth_deg=median("orientation_halfwidth_deg"),
        median_aspect_ratio=median("aspect_ratio"),
        blob_like_fraction=blob_fraction(good),
        n_subcycle=int(np.sum(good["carrier_cycles"] < 0.5)),
        blob_like_fraction_resolved=blob_fraction(good[good["carrier_cycles"] >= 0.5]),
    )
    return summary


def good_fits(table: np.ndarray, r2_threshold: float = 0.8) -> np.ndarray:
    """The units whose fit succeeded with R² > ``r2_threshold`` and centre inside the field
    (the fits that medians and nx–ny histograms use; see :func:`summarize_fits`)."""
    r_squared = np.where(table["success"], table["r_squared"], -np.inf)
    return table[(r_squared > r2_threshold) & table["center_inside"]]


def nxny_histogram(nx: np.ndarray, ny: np.ndarray, edges: np.ndarray,
                   clip: bool = False) -> np.ndarray:
    """Joint histogram of (nx, ny), rows nx bins and columns ny bins.

    Parameters
    ----------
    nx, ny : numpy.ndarray
        Values per unit (NaN entries, from failed fits, are ignored).
    edges : numpy.ndarray
        Bin edges shared by both axes, e.g. ``load_ringach2002()[0]``.
    clip : bool, default False
        Count values beyond the outer edges in the outermost bins. When False they are not
        counted, so compare ``histogram.sum()`` with the number of units.

    Returns
    -------
    numpy.ndarray
        Counts, shape (len(edges) − 1, len(edges) − 1).
    """
    nx, ny, edges = (np.asarray(values, dtype=np.float64) for values in (nx, ny, edges))
    finite = np.isfinite(nx) & np.isfinite(ny)
    nx, ny = nx[finite], ny[finite]
    if clip:
        # histogram2d's outermost bins are closed, so values on the edges are counted.
        nx, ny = (np.clip(values, edges[0], edges[-1]) for values in (nx, ny))
    counts, _, _ = np.histogram2d(nx, ny, bins=[edges, edges])
    return counts


def total_variation_distance(hist_a: np.ndarray, hist_b: np.ndarray) -> float:
    """Total variation distance ½·Σ|p − q| between two histograms, each normalised to 1.

    Parameters
    ----------
    hist_a, hist_b : numpy.ndarray
        Non-negative counts of the same shape.

    Returns
    -------
    float
        0 for identical distributions, 1 for distributions with disjoint support.

    Raises
    ------
    DataError
        If a histogram is empty (no counts), has negative counts, or the shapes differ.
    """
    hist_a, hist_b = (np.asarray(hist, dtype=np.float64) for hist in (hist_a, hist_b))
    if hist_a.shape != hist_b.shape:
        raise DataError(f"histograms have shapes {hist_a.shape} and {hist_b.shape}; "
                        "expected the same bins")
    for hist in (hist_a, hist_b):
        if np.any(hist < 0) or hist.sum() <= 0:
            raise DataError("a histogram has no counts or negative counts; expected counts "
                            "with a positive total")
    return float(0.5 * np.abs(hist_a / hist_a.sum() - hist_b / hist_b.sum()).sum())

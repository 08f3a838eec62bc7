"""Orientation maps of units on a 2-D sheet: preferred orientation, pinwheels, column spacing.

Units on a sheet of ``rows × columns`` are numbered row-major (unit = row·columns + column),
as a self-organising map's units are. For each unit the preferred orientation θ ∈ [0, π) is
read from its receptive field's power spectrum (:func:`preferred_orientation`). The map is
then analysed as the complex field z = e^{2iθ} (the doubling makes θ and θ + π the same
point, as orientations are), following the conventions of Kaschube et al. (2010, *Science*
330:1113) and Wolf & Geisel (1998, *Nature* 395:73):

pinwheels
    Points around which every orientation occurs once: the phase of z winds by ±2π (θ by
    ±π) around them. :func:`winding_numbers` sums the wrapped phase steps of z around every
    plaquette of four neighbouring units; a plaquette with winding +1 or −1 holds a pinwheel
    of that charge.
column spacing Λ
    The map's dominant wavelength, 1/k* where k* is the peak of the radially averaged power
    spectrum of z (mean removed), in units of the sheet's unit spacing
    (:func:`dominant_wavelength`). A hypercolumn has area Λ².
pinwheel density
    Pinwheels per hypercolumn area, ρ = N·Λ²/A over the analysed area A. Measured in tree
    shrew, galago, ferret and cat V1 it is close to π (Kaschube et al. 2010: 3.14 ± 0.1), and
    π is also the mean of any Gaussian random orientation map whose power lies on one ring
    of wavenumbers (Wolf & Geisel 1998; Schnabel et al. 2007).
smoothness
    The mean absolute orientation difference between nearest neighbours (row and column
    neighbours, differences wrapped into [0°, 90°]): 0° for a uniform map, 45° for
    independent random orientations.

Coordinates: x is the column index, y the row index (pointing down), as in
:mod:`plasticsim.analysis.gabor`. θ is the direction of the field's wave vector,
counter-clockwise from the x axis in these coordinates (the convention of
:attr:`plasticsim.analysis.gabor.GaborFit.theta`). A pinwheel has charge +1 when θ turns by
+π going once around it counter-clockwise in (x, y), e.g. θ = ½·atan2(y − y₀, x − x₀).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from plasticsim.errors import DataError

#: Zero padding of a field's FFT in :func:`preferred_orientation`: a fine, square frequency
#: grid (square, so that an isotropic field has no orientation bias from the grid).
FIELD_PADDING = 4
#: Zero padding of the map's FFT in :func:`dominant_wavelength` (non-periodic sheets): it
#: interpolates the spectrum between the sheet's own frequency bins.
MAP_PADDING = 4


def preferred_orientation(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Preferred orientation and orientation selectivity of each field from its spectrum.

    With P(k) the power spectrum of the field (mean removed, zero-padded to a square grid)
    and φ(k) the direction of wave vector k, the power-weighted doubled-angle mean
    V = Σ_k P(k) e^{2iφ(k)} / Σ_k P(k) gives θ = ½·arg V ∈ [0, π) and selectivity |V| ∈ [0, 1]
    (1 for a single grating orientation, 0 for an isotropic field). No model is fitted, so
    every field gets an orientation; for a Gabor θ is its carrier direction (the fitted
    :attr:`~plasticsim.analysis.gabor.GaborFit.theta`), because its power lies in two lobes
    symmetric about ±k₀.

    Parameters
    ----------
    fields : numpy.ndarray
        (units, height, width).

    Returns
    -------
    theta : numpy.ndarray
        One orientation per unit in radians, [0, π); NaN for a constant field.
    selectivity : numpy.ndarray
        |V| per unit; NaN for a constant field.

    Raises
    ------
    DataError
        If ``fields`` is not (units, height, width) or holds NaN or infinite values.

    Examples
    --------
    >>> from plasticsim.analysis.gabor import gabor_patch
    >>> field = gabor_patch((16, 16), 7.5, 7.5, np.pi / 3, 2.5, 3.5, 0.2, 0.0)
    >>> theta, selectivity = preferred_orientation(field[None])
    >>> round(float(np.degrees(theta[0])))
    60
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim != 3:
        raise DataError(f"fields have shape {fields.shape}; expected (units, height, width)")
    if not np.all(np.isfinite(fields)):
        raise DataError("fields contain NaN or infinite values")
    size = FIELD_PADDING * max(fields.shape[1:])
    centred = fields - fields.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.rfft2(centred, s=(size, size))) ** 2
    frequency_y = np.fft.fftfreq(size)[:, None]
    frequency_x = np.fft.rfftfreq(size)[None, :]
    doubled_angle = np.exp(2j * np.arctan2(frequency_y, frequency_x))
    # rfft2 stores half the plane; the other half, P(−k) = P(k), has the same e^{2iφ}, so
    # the half-plane sums are proportional to the full ones except on the fx = 0 and Nyquist
    # columns, which the full plane holds once, not twice: weight the others by 2.
    weight = np.full(frequency_x.shape, 2.0)
    weight[0, 0] = 1.0
    if size % 2 == 0:
        weight[0, -1] = 1.0
    power = power * weight
    total = power.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        vector = np.sum(power * doubled_angle, axis=(1, 2)) / total
    theta = np.where(total > 0, (0.5 * np.angle(vector)) % np.pi, np.nan)
    selectivity = np.where(total > 0, np.abs(vector), np.nan)
    return theta, selectivity


def orientation_map(fields: np.ndarray, sheet_shape: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Preferred orientation and selectivity of units on a sheet, as (rows, columns) maps.

    Parameters
    ----------
    fields : numpy.ndarray
        (units, height, width), units numbered row-major on the sheet.
    sheet_shape : (int, int)
        (rows, columns) of the sheet; rows·columns must equal the number of units.

    Returns
    -------
    theta, selectivity : numpy.ndarray
        (rows, columns) each; see :func:`preferred_orientation`.

    Raises
    ------
    DataError
        If the number of fields does not fill the sheet.
    """
    rows, columns = (int(side) for side in sheet_shape)
    fields = np.asarray(fields)
    if rows < 1 or columns < 1 or fields.ndim != 3 or len(fields) != rows * columns:
        raise DataError(f"{len(fields) if fields.ndim else 0} fields for a {rows}×{columns} "
                        f"sheet; expected {rows * columns} (units × height × width)")
    theta, selectivity = preferred_orientation(fields)
    return theta.reshape(rows, columns), selectivity.reshape(rows, columns)


def complex_orientation_field(theta: np.ndarray, selectivity: np.ndarray | None = None
                              ) -> np.ndarray:
    """z = s·e^{2iθ}: the orientation map as a complex field (s = 1 unless given)."""
    theta = _orientation_map_array(theta)
    z = np.exp(2j * theta)
    return z if selectivity is None else np.asarray(selectivity, dtype=np.float64) * z


def _orientation_map_array(theta: np.ndarray) -> np.ndarray:
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2 or min(theta.shape) < 2:
        raise DataError(f"orientation map has shape {theta.shape}; expected (rows, columns) "
                        "with at least 2 of each")
    if not np.all(np.isfinite(theta)):
        raise DataError(f"orientation map has {int(np.sum(~np.isfinite(theta)))} NaN or "
                        "infinite entries (units without an orientation); expected finite "
                        "angles in radians")
    return theta


def _wrapped(phase_step: np.ndarray) -> np.ndarray:
    """Phase differences wrapped into (−π, π]."""
    return np.pi - (np.pi - phase_step) % (2 * np.pi)


def winding_numbers(theta: np.ndarray, periodic: bool = False) -> np.ndarray:
    """Winding number of z = e^{2iθ} around every plaquette of four neighbouring units.

    The loop (r, c) → (r, c+1) → (r+1, c+1) → (r+1, c) runs counter-clockwise in (x, y) =
    (column, row); each step's change of 2θ is wrapped into (−π, π], and the sum over the
    loop, divided by 2π, is the winding number: +1 or −1 where a pinwheel of that charge sits
    inside, 0 elsewhere (±2 would need four steps of exactly π).

    Parameters
    ----------
    theta : numpy.ndarray
        (rows, columns) orientations in radians (any period-π representative).
    periodic : bool, default False
        Treat the sheet as a torus, adding the plaquettes that wrap around its edges.

    Returns
    -------
    numpy.ndarray of int
        (rows − 1, columns − 1), or (rows, columns) when periodic; entry (r, c) is the
        plaquette whose top-left unit is (r, c).

    Raises
    ------
    DataError
        If ``theta`` is not a finite 2-D map of at least 2 × 2 units.
    """
    phase = 2 * _orientation_map_array(theta)
    if periodic:
        right = np.roll(phase, -1, axis=1)
        below = np.roll(phase, -1, axis=0)
        diagonal = np.roll(below, -1, axis=1)
        corner = phase
    else:
        corner, right = phase[:-1, :-1], phase[:-1, 1:]
        diagonal, below = phase[1:, 1:], phase[1:, :-1]
    circulation = (_wrapped(right - corner) + _wrapped(diagonal - right)
                   + _wrapped(below - diagonal) + _wrapped(corner - below))
    return np.rint(circulation / (2 * np.pi)).astype(np.int64)


@dataclass(frozen=True)
class Pinwheels:
    """Pinwheels found in an orientation map.

    Attributes
    ----------
    rows, columns : numpy.ndarray
        Positions (plaquette centres, in units of the sheet spacing: r + ½, c + ½).
    charges : numpy.ndarray of int
        +1 or −1 each (see the module docstring).
    """

    rows: np.ndarray
    columns: np.ndarray
    charges: np.ndarray

    @property
    def count(self) -> int:
        return int(len(self.charges))


def find_pinwheels(theta: np.ndarray, periodic: bool = False) -> Pinwheels:
    """Pinwheels of an orientation map: the plaquettes with a non-zero winding number.

    Parameters
    ----------
    theta : numpy.ndarray
        (rows, columns) orientations in radians.
    periodic : bool, default False
        See :func:`winding_numbers`.

    Returns
    -------
    Pinwheels
        Positions and charges, in row-major order of their plaquettes.

    Examples
    --------
    >>> y, x = np.indices((9, 9), dtype=float)
    >>> pinwheels = find_pinwheels(0.5 * np.arctan2(y - 4.3, x - 3.6))
    >>> pinwheels.rows, pinwheels.columns, pinwheels.charges
    (array([4.5]), array([3.5]), array([1]))
    """
    windings = winding_numbers(theta, periodic)
    plaquette_rows, plaquette_columns = np.nonzero(windings)
    return Pinwheels(plaquette_rows + 0.5, plaquette_columns + 0.5,
                     windings[plaquette_rows, plaquette_columns])


def radial_power_spectrum(z: np.ndarray, periodic: bool = False
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a complex map (its mean removed).

    Parameters
    ----------
    z : numpy.ndarray
        (rows, columns) complex map, e.g. :func:`complex_orientation_field`.
    periodic : bool, default False
        A periodic sheet is transformed as it is (its own frequencies, 1/rows and
        1/columns apart); a non-periodic one is zero-padded to a square :data:`MAP_PADDING`
        times its larger side, which interpolates between the frequencies the sheet
        resolves.

    Returns
    -------
    wavenumbers : numpy.ndarray
        Ring centres in cycles per unit spacing, from 0 in steps of 1/(padded size), or of
        1/max(rows, columns) when periodic.
    power : numpy.ndarray
        Mean power in each ring of wavenumbers (NaN for rings without a grid point).
    """
    z = np.asarray(z, dtype=np.complex128)
    rows, columns = z.shape
    size = max(rows, columns) * (1 if periodic else MAP_PADDING)
    shape = (rows, columns) if periodic else (size, size)
    spectrum = np.abs(np.fft.fft2(z - z.mean(), s=shape)) ** 2
    radius = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :])
    ring = np.rint(radius * size).astype(np.int64).ravel()
    counts = np.bincount(ring)
    sums = np.bincount(ring, weights=spectrum.ravel())
    with np.errstate(invalid="ignore", divide="ignore"):
        power = sums / counts
    return np.arange(len(counts)) / size, power


def dominant_wavelength(theta: np.ndarray, periodic: bool = False) -> float:
    """The map's column spacing Λ = 1/k*, in units of the sheet spacing.

    k* is the peak of :func:`radial_power_spectrum` of z = e^{2iθ}, refined by a parabola
    through the peak ring and its two neighbours (log power) where both neighbours hold
    power (a spectral line that falls on one ring exactly is left there). Wavelengths longer than the
    sheet's larger side are not considered: they are not resolved as columns.

    Parameters
    ----------
    theta : numpy.ndarray
        (rows, columns) orientations in radians.
    periodic : bool, default False
        See :func:`radial_power_spectrum`.

    Returns
    -------
    float
        Λ, or NaN for a uniform map (no power away from k = 0: no columns to measure).
    """
    z = complex_orientation_field(theta)
    wavenumbers, power = radial_power_spectrum(z, periodic)
    longest = max(z.shape)
    allowed = (wavenumbers >= 1.0 / longest) & (wavenumbers <= 0.5) & np.isfinite(power)
    if not np.any(power[allowed] > 1e-20 * np.abs(z).max() ** 2 * z.size ** 2):
        return float("nan")
    candidates = np.flatnonzero(allowed)
    peak = candidates[np.argmax(power[candidates])]
    wavenumber = wavenumbers[peak]
    neighbours = power[peak - 1:peak + 2:2] if 0 < peak < len(power) - 1 else np.zeros(2)
    # Rings with a millionth of the peak's power carry only round-off and leakage, whose
    # logarithms would move the vertex anywhere within the bin.
    if np.all(np.isfinite(neighbours)) and np.all(neighbours > 1e-6 * power[peak]):
        left, centre, right = np.log(power[peak - 1:peak + 2])
        curvature = left - 2 * centre + right
        if curvature < 0:   # a true maximum: move to the parabola's vertex (within ½ bin)
            shift = 0.5 * (left - right) / curvature
            wavenumber += float(np.clip(shift, -0.5, 0.5)) * (wavenumbers[1] - wavenumbers[0])
    return float(1.0 / wavenumber)


def orientation_smoothness_deg(theta: np.ndarray) -> float:
    """Mean |Δθ| between row and column neighbours, in degrees (differences wrapped to ≤ 90°).

    0 for a uniform map, 45 for independent uniformly random orientations.
    """
    theta = _orientation_map_array(theta)
    steps = np.concatenate([np.diff(theta, axis=0).ravel(), np.diff(theta, axis=1).ravel()])
    # Orientation differences have period π: wrap 2Δθ into (−π, π] and halve.
    return float(np.degrees(np.mean(np.abs(_wrapped(2 * steps)) / 2)))


def analyze_orientation_map(theta: np.ndarray, periodic: bool = False) -> dict:
    """All map statistics of an orientation map, as stored in a results file's summary.

    Parameters
    ----------
    theta : numpy.ndarray
        (rows, columns) orientations in radians.
    periodic : bool, default False
        The sheet is a torus (see :func:`winding_numbers`).

    Returns
    -------
    dict
        ``n_pinwheels``, ``n_pinwheels_positive``, ``n_pinwheels_negative``,
        ``column_spacing_units`` (Λ), ``hypercolumn_area_units`` (Λ²), ``analysed_area_units``
        (the plaquettes' area: (rows − 1)(columns − 1), or rows·columns when periodic),
        ``n_hypercolumns`` (area/Λ²), ``pinwheel_density`` (pinwheels per Λ²; V1 ≈ π) and
        ``orientation_smoothness_deg``. Λ-derived values are NaN for a uniform map.
    """
    theta = _orientation_map_array(theta)
    pinwheels = find_pinwheels(theta, periodic)
    wavelength = dominant_wavelength(theta, periodic)
    rows, columns = theta.shape
    area = float(rows * columns if periodic else (rows - 1) * (columns - 1))
    hypercolumn_area = wavelength**2
    return {
        "n_pinwheels": pinwheels.count,
        "n_pinwheels_positive": int(np.sum(pinwheels.charges > 0)),
        "n_pinwheels_negative": int(np.sum(pinwheels.charges < 0)),
        "column_spacing_units": wavelength,
        "hypercolumn_area_units": hypercolumn_area,
        "analysed_area_units": area,
        "n_hypercolumns": area / hypercolumn_area,
        "pinwheel_density": pinwheels.count * hypercolumn_area / area,
        "orientation_smoothness_deg": orientation_smoothness_deg(theta),
    }

"""Receptive fields of image networks: white-noise mapping, orientation selectivity, summary.

For a network whose units interact laterally, the feedforward weights are not the receptive
field: what a unit responds to also depends on whom it inhibits. :func:`map_receptive_fields`
measures it as an experimenter would, by showing white-noise patches and regressing each
unit's response on the pixels (least squares; for white probes this equals the
spike-triggered average divided by the probe variance).

:func:`orientation_selectivity_index` scores how oriented a field is from its amplitude
spectrum (1 for a single grating orientation, 0 for an isotropic centre–surround field), and
:func:`summarize_receptive_fields` combines it with the Gabor statistics of
:mod:`plasticsim.analysis.gabor`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from plasticsim.analysis.gabor import fit_gabors, summarize_fits
from plasticsim.errors import DataError


def map_receptive_fields(respond: Callable[[np.ndarray], np.ndarray], n_pixels: int,
                         n_probes: int, rng: np.random.Generator,
                         probe_variance: float = 0.1, batch_size: int = 1000) -> np.ndarray:
    """Least-squares linear receptive fields from white-noise probes.

    Parameters
    ----------
    respond : callable
        Maps probes (batch × pixels) to responses (batch × units), e.g. spike counts; it
        must not learn.
    n_pixels : int
        Pixels per probe.
    n_probes : int
        Number of white-noise probes (at least ``n_pixels + 1``).
    rng : numpy.random.Generator
        Draws the probes.
    probe_variance : float, default 0.1
        Pixel variance of the Gaussian probes; choose it near the training patches' so the
        units work in their usual range.
    batch_size : int, default 1000
        Probes per call of ``respond``.

    Returns
    -------
    numpy.ndarray
        Fields, shape (units, pixels): the regression weights of each unit's response on
        the pixels (mean response removed).

    Examples
    --------
    >>> kernel = np.random.default_rng(1).normal(size=(3, 16))
    >>> fields = map_receptive_fields(lambda x: x @ kernel.T, 16, 400,
    ...                               np.random.default_rng(0))
    >>> bool(np.allclose(fields, kernel))
    True
    """
    if n_probes <= n_pixels:
        raise DataError(f"white-noise mapping needs more probes ({n_probes}) than pixels "
                        f"({n_pixels})")
    probes, responses = [], []
    for start in range(0, n_probes, batch_size):
        batch = rng.normal(0.0, np.sqrt(probe_variance),
                           size=(min(batch_size, n_probes - start), n_pixels))
        probes.append(batch)
        responses.append(np.asarray(respond(batch), dtype=np.float64))
    probes, responses = np.concatenate(probes), np.concatenate(responses)
    probes -= probes.mean(axis=0)
    responses -= responses.mean(axis=0)
    fields, *_ = np.linalg.lstsq(probes, responses, rcond=None)
    return fields.T


def orientation_selectivity_index(fields: np.ndarray) -> np.ndarray:
    """Orientation selectivity of each field from its amplitude spectrum.

    The field's linear response amplitude to a grating of orientation θ at the field's
    preferred spatial frequency f* is |F(f*, θ)| (F: zero-padded 2-D Fourier transform).
    OSI = |Σ_θ R(θ) e^{2iθ}| / Σ_θ R(θ) over 36 orientations (the circular variance
    complement used for V1 cells): ≈ 1 for an oriented Gabor, ≈ 0 for an isotropic
    centre–surround field.

    Parameters
    ----------
    fields : numpy.ndarray
        Shape (units, height, width).

    Returns
    -------
    numpy.ndarray
        One index per unit in [0, 1]; NaN for an all-zero field.
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim != 3:
        raise DataError(f"receptive fields have shape {fields.shape}; expected "
                        "(units, height, width)")
    n_units, height, width = fields.shape
    padded = 4 * max(height, width)  # fine frequency grid for the preferred frequency
    spectra = np.abs(np.fft.fft2(fields - fields.mean(axis=(1, 2), keepdims=True),
                                 s=(padded, padded)))
    frequencies = np.fft.fftfreq(padded)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    angles = np.linspace(0.0, np.pi, 36, endpoint=False)
    result = np.full(n_units, np.nan)
    for unit in range(n_units):
        spectrum = spectra[unit]
        if not np.any(spectrum > 0):
            continue
        preferred = radius.flat[np.argmax(spectrum)]
        if preferred == 0:
            result[unit] = 0.0   # a pure low-pass field has no orientation
            continue
        # Sample the spectrum on the ring of the preferred frequency (nearest grid point).
        fy = np.rint(preferred * np.sin(angles) * padded).astype(int) % padded
        fx = np.rint(preferred * np.cos(angles) * padded).astype(int) % padded
        responses = spectrum[fy, fx]
        result[unit] = np.abs(np.sum(responses * np.exp(2j * angles))) / np.sum(responses)
    return result


def summarize_receptive_fields(fields: np.ndarray, n_starts: int = 2,
                               rng: np.random.Generator | None = None
                               ) -> tuple[dict, np.ndarray]:
    """Gabor summary (SCIENCE.md §3 metrics) plus the median orientation selectivity.

    Parameters
    ----------
    fields : numpy.ndarray
        Shape (units, height, width).
    n_starts : int, default 2
        Starts per Gabor fit (see :func:`plasticsim.analysis.gabor.fit_gabor`).
    rng : numpy.random.Generator, optional
        Seeds the fits (default: ``numpy.random.default_rng(0)``).

    Returns
    -------
    summary : dict
        :func:`plasticsim.analysis.gabor.summarize_fits` keys plus
        ``median_orientation_selectivity_index``.
    table : numpy.ndarray
        The per-unit fit table (failed units included).
    """
    table = fit_gabors(fields, n_starts=n_starts, rng=rng)
    summary = summarize_fits(table)
    summary["median_orientation_selectivity_index"] = float(
        np.nanmedian(orientation_selectivity_index(fields)))
    return summary, table

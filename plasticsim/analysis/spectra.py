"""Rotation-invariant spectra of a learned feedforward matrix.

C is only defined up to a rotation U of the outputs (C → UC leaves the MI unchanged), so
single filters are arbitrary; CᵀC is not. Everything here is a function of CᵀC: the mode
spectrum diag(VᵀCᵀCV) (summed within groups of equal eigenvalue, since a degenerate subspace
has no preferred basis) and, on a ring, the population power spectrum Σ_i |ĉ_i(k)|².
"""

from __future__ import annotations

import numpy as np


def mode_groups(eigenvalues: np.ndarray, relative_tolerance: float = 1e-8) -> list[np.ndarray]:
    """Indices of (near-)equal eigenvalues, largest first."""
    order = np.argsort(-eigenvalues, kind="stable")
    scale = max(np.max(np.abs(eigenvalues)), 1e-300)
    groups, current = [], [order[0]]
    for index in order[1:]:
        if abs(eigenvalues[index] - eigenvalues[current[-1]]) <= relative_tolerance * scale:
            current.append(index)
        else:
            groups.append(np.array(current))
            current = [index]
    groups.append(np.array(current))
    return groups


def mode_spectrum(C: np.ndarray, eigenvectors: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Gain of C in each eigenmode group: Σ_{k∈group} v_kᵀ CᵀC v_k."""
    gains = np.sum((C @ eigenvectors) ** 2, axis=0)
    return np.array([gains[group].sum() for group in groups])


def relative_l1(learned: np.ndarray, reference: np.ndarray) -> float:
    """Σ|learned − reference| / Σ|reference|."""
    return float(np.sum(np.abs(learned - reference)) / np.sum(np.abs(reference)))


def ring_frequencies(n_sites: int) -> np.ndarray:
    """Spatial frequencies k = 0 … N/2 in cycles per ring."""
    return np.arange(n_sites // 2 + 1)


def unit_power_spectra(C: np.ndarray) -> np.ndarray:
    """Power per mode of each unit's filter at ring frequencies 0 … N/2, shape (M, N/2+1).

    |ĉ_i(k)|²/N: the gain per Fourier mode. Frequencies 0 < k < N/2 carry two modes (cosine
    and sine), so the full-ring sum Σ_k over −N/2…N/2 equals ‖c_i‖² (Parseval); keeping the
    per-mode value (not the ±k sum) makes k = 0 comparable with the others, so a low-pass
    spectrum peaks at 0.
    """
    return np.abs(np.fft.rfft(C, axis=1)) ** 2 / C.shape[1]


def population_power_spectrum(C: np.ndarray) -> np.ndarray:
    """Σ_i power of unit i at each ring frequency: invariant to rotations of the outputs."""
    return unit_power_spectra(C).sum(axis=0)


def peak_frequency(spectrum: np.ndarray) -> int:
    """Index (cycles per ring) of the largest value."""
    return int(np.argmax(spectrum))


def band_pass_index(spectrum: np.ndarray) -> float:
    """1 − P(0)/max P: 0 for a low-pass spectrum (peak at DC), → 1 for a strong band-pass one."""
    return float(1.0 - spectrum[0] / max(np.max(spectrum), 1e-300))

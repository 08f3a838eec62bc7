"""Metrics of a Linsker run computed from recorded weights and the stimulus covariances.

These functions read arrays (from a results file or a snapshot), never a live simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .information import NATS_PER_BIT, InfomaxOptimum, infomax_optimum, mutual_information
from .spectra import (band_pass_index, mode_groups, mode_spectrum, peak_frequency,
                      population_power_spectrum, relative_l1)


@dataclass(frozen=True)
class GaussianProblem:
    """What the analysis needs to know about a linear Gaussian run."""

    signal_covariance: np.ndarray
    noise_covariance: np.ndarray
    output_noise_variance: float
    n_outputs: int
    budget_kind: str          # "weight" or "power"
    budget_per_unit: float

    @property
    def total_budget(self) -> float:
        return self.n_outputs * self.budget_per_unit

    @property
    def sensing_covariance(self) -> np.ndarray:
        return self.signal_covariance + self.noise_covariance

    def optimum(self) -> InfomaxOptimum:
        return infomax_optimum(self.signal_covariance, self.noise_covariance,
                               self.output_noise_variance, self.n_outputs, self.total_budget,
                               self.budget_kind)

    def mutual_information(self, C) -> float:
        return mutual_information(np.asarray(C, dtype=float), self.signal_covariance,
                                  self.noise_covariance, self.output_noise_variance)


def snapshot_metrics(problem: GaussianProblem, C, optimum_nats: float) -> dict[str, float]:
    """MI (nats, bits), fraction of the optimum and output power of one weight snapshot."""
    C = np.asarray(C, dtype=float)
    mi = problem.mutual_information(C)
    power = np.einsum("ij,jk,ik->i", C, problem.sensing_covariance, C)
    return {
        "mutual_information_nats": mi,
        "mutual_information_bits": mi / NATS_PER_BIT,
        "fraction_of_optimum": mi / optimum_nats,
        "mean_output_power": float(power.mean()),
        "mean_weight_norm_squared": float(np.mean(np.sum(C * C, axis=1))),
    }


def information_and_modes(problem: GaussianProblem, C, optimum: InfomaxOptimum) -> dict:
    """MI against the optimum and the rotation-invariant mode spectra (any input geometry)."""
    eigenvalues, eigenvectors = np.linalg.eigh(problem.sensing_covariance
                                               + np.pi * problem.noise_covariance)
    groups = mode_groups(eigenvalues)
    learned_modes = mode_spectrum(C, eigenvectors, groups)
    optimal_modes = mode_spectrum(optimum.weights, eigenvectors, groups)
    mi = problem.mutual_information(C)
    return {
        "mutual_information_nats": mi,
        "mutual_information_bits": mi / NATS_PER_BIT,
        "optimum_nats": optimum.mutual_information,
        "optimum_bits": optimum.mutual_information_bits,
        "fraction_of_optimum": mi / optimum.mutual_information,
        "mode_spectrum_relative_l1": relative_l1(learned_modes, optimal_modes),
        "learned_mode_spectrum": learned_modes,
        "optimal_mode_spectrum": optimal_modes,
    }


def compare_with_optimum(problem: GaussianProblem, C, optimum: InfomaxOptimum | None = None
                         ) -> dict:
    """Final comparison on a ring: MI, mode spectrum and population spectrum vs the optimum."""
    C = np.asarray(C, dtype=float)
    optimum = optimum or problem.optimum()
    learned_population = population_power_spectrum(C)
    optimal_population = population_power_spectrum(optimum.weights)
    return {
        **information_and_modes(problem, C, optimum),
        "learned_population_spectrum": learned_population,
        "optimal_population_spectrum": optimal_population,
        "learned_peak_frequency": peak_frequency(learned_population),
        "optimal_peak_frequency": peak_frequency(optimal_population),
        "learned_band_pass_index": band_pass_index(learned_population),
        "optimal_band_pass_index": band_pass_index(optimal_population),
    }


# ------------------------------------------------------------------ 2-D image patches
# On patches the ring quantities above (FFT along the flattened rows, peak ring frequency)
# mean nothing. What an infomax solution fixes is CᵀC (C → UC keeps the MI), so the 2-D
# metrics below are all functions of CᵀC: the population power spectrum Σ_i |ĉ_i(f)|², its
# radial profile and orientation bias, and the canonical fields (CᵀC)^{1/2}.


def population_power_spectrum_2d(C, patch_shape, padding: int = 4) -> np.ndarray:
    """Σ_i |ĉ_i(f)|² on a zero-padded (padding·h × padding·w) frequency grid (numpy order)."""
    fields = np.asarray(C, dtype=float).reshape((-1,) + tuple(patch_shape))
    size = (padding * patch_shape[0], padding * patch_shape[1])
    return np.sum(np.abs(np.fft.fft2(fields, s=size)) ** 2, axis=0)


def _frequency_grid(shape):
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.hypot(fx, fy), np.arctan2(fy, fx)


def radial_power_spectrum(C, patch_shape, n_bins: int = 8, padding: int = 4):
    """Population power averaged over annuli of radial frequency |f| (cycles per pixel).

    Returns
    -------
    frequencies : ndarray (n_bins,)
        Bin centres from 0 to 0.5 cycles/pixel (the corners beyond Nyquist are left out).
    power : ndarray (n_bins,)
    """
    spectrum = population_power_spectrum_2d(C, patch_shape, padding)
    radius, _ = _frequency_grid(spectrum.shape)
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    index = np.digitize(radius, edges) - 1
    power = np.array([spectrum[index == b].mean() for b in range(n_bins)])
    return 0.5 * (edges[1:] + edges[:-1]), power


def population_orientation_index(C, patch_shape, padding: int = 4) -> float:
    """Orientation bias of the population spectrum: |Σ_f P(f) e^{2iθ_f}| / Σ_f P(f), f ≠ 0.

    0 for an isotropic population (centre–surround fields, or oriented fields covering all
    orientations evenly), 1 for a population tuned to a single orientation. Invariant to
    rotations of the outputs. Note it cannot tell a centre–surround code from a complete
    oriented basis (an Olshausen–Field dictionary scores ≈ 0.03): it tests the subspace.
    """
    spectrum = population_power_spectrum_2d(C, patch_shape, padding)
    radius, angle = _frequency_grid(spectrum.shape)
    keep = radius > 0
    weights = spectrum[keep]
    return float(np.abs(np.sum(weights * np.exp(2j * angle[keep]))) / np.sum(weights))


def canonical_fields(C, patch_shape) -> np.ndarray:
    """The symmetric representative K = (CᵀC)^{1/2} of the solution class {UC}, as pixels × h × w.

    Every C with the same CᵀC gives the same K; row x of K is the field "centred" on pixel x
    (for a translation-invariant CᵀC the rows are shifted copies of one kernel, the local
    solution Atick & Redlich single out). Its orientation selectivity is the honest
    orientation measure of a rotation-invariant objective; the learned rows are arbitrary
    mixtures.
    """
    C = np.asarray(C, dtype=float)
    eigenvalues, eigenvectors = np.linalg.eigh(C.T @ C)
    root = (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T
    return root.reshape((-1,) + tuple(patch_shape))


def compare_with_optimum_patches(problem: GaussianProblem, C, patch_shape,
                                 optimum: InfomaxOptimum | None = None) -> dict:
    """Final comparison for image patches: MI, mode spectrum and 2-D rotation-invariant metrics.

    Replaces the ring-only population spectrum / peak frequency of
    :func:`compare_with_optimum` by the radial population spectrum, its orientation index, and
    the orientation selectivity (median over pixels) of the canonical fields (CᵀC)^{1/2}.
    """
    from .receptive_fields import orientation_selectivity_index

    C = np.asarray(C, dtype=float)
    optimum = optimum or problem.optimum()
    frequencies, learned_radial = radial_power_spectrum(C, patch_shape)
    _, optimal_radial = radial_power_spectrum(optimum.weights, patch_shape)
    return {
        **information_and_modes(problem, C, optimum),
        "radial_frequencies_cycles_per_pixel": frequencies,
        "learned_radial_spectrum": learned_radial,
        "optimal_radial_spectrum": optimal_radial,
        "radial_spectrum_relative_l1": relative_l1(learned_radial, optimal_radial),
        "learned_radial_peak_cycles_per_pixel": float(frequencies[np.argmax(learned_radial)]),
        "optimal_radial_peak_cycles_per_pixel": float(frequencies[np.argmax(optimal_radial)]),
        "learned_population_orientation_index": population_orientation_index(C, patch_shape),
        "optimal_population_orientation_index": population_orientation_index(
            optimum.weights, patch_shape),
        "learned_canonical_orientation_selectivity": float(np.nanmedian(
            orientation_selectivity_index(canonical_fields(C, patch_shape)))),
        "optimal_canonical_orientation_selectivity": float(np.nanmedian(
            orientation_selectivity_index(canonical_fields(optimum.weights, patch_shape)))),
        "optimal_rows_orientation_selectivity": float(np.nanmedian(
            orientation_selectivity_index(np.asarray(optimum.weights).reshape(
                (-1,) + tuple(patch_shape))))),
    }


# ------------------------------------------------------------------ stacked linear layers
def layer_input_covariances(chain, noise_variances, q_signal, q_noise):
    """Signal and noise covariances of the input of the last layer of a chain of linear layers.

    Layer k receives Z_{k−1} = C_{k−1} Z_{k−2} + ν_{k−1} (Z_0 = X = S + N). Z_{k−1} is Gaussian
    with signal covariance A q_S Aᵀ and, given S, noise covariance A q_N Aᵀ + the propagated
    output noises, A = C_{k−1} ⋯ C_1.

    Parameters
    ----------
    chain : list of ndarray
        Weights C_1, …, C_{k−1} of the layers below (empty for the first layer).
    noise_variances : list of float
        σ² of their output noise.
    q_signal, q_noise : ndarray
        Covariances of the input's signal and noise.
    """
    signal = np.asarray(q_signal, dtype=float)
    noise = np.asarray(q_noise, dtype=float)
    for C, variance in zip(chain, noise_variances):
        C = np.asarray(C, dtype=float)
        signal = C @ signal @ C.T
        noise = C @ noise @ C.T + variance * np.eye(C.shape[0])
    return signal, noise


def layer_problem(layer: dict, weights: list, budget=None) -> GaussianProblem:
    """The Gaussian problem of a layer given the weights of the layers below it.

    ``layer`` describes the chain as the results file stores it (``noise_variances``,
    ``signal_covariance``, ``noise_covariance``, ``budget_kind``/``budget_value``); ``weights``
    are C_1 … C_k (the last one the layer's own).
    """
    signal, noise = layer_input_covariances(weights[:-1], layer["noise_variances"][:-1],
                                            layer["signal_covariance"],
                                            layer["noise_covariance"])
    kind = layer.get("budget_kind") or "weight"
    value = float(layer.get("budget_value") or 1.0)
    return GaussianProblem(signal, noise, float(layer["noise_variances"][-1]),
                           int(np.asarray(weights[-1]).shape[0]), kind, value)


#: Time constants of its slowest mode a local rule needs to come close to the optimum.
REACHABLE_TIME_CONSTANTS = 3.0


def slowest_mode_eigenvalue(problem: GaussianProblem, optimum: InfomaxOptimum) -> float:
    """Smallest eigenvalue of the sensing covariance q_L along the modes the optimum uses.

    A Hebbian-type update driven by the input moves the weights along eigenmode k of q_L at
    a rate η λ_k per sample (a time constant of 1/(η λ_k) samples), so the slowest mode the
    optimum needs sets how long a local (Euclidean-metric) rule takes to reach it. A mode is
    used where the optimal C carries more than 1e-3 of its largest mode energy.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(problem.sensing_covariance)
    energy = np.sum((np.asarray(optimum.weights) @ eigenvectors) ** 2, axis=0)
    used = energy > 1e-3 * energy.max() if energy.max() > 0 else np.ones(energy.shape, bool)
    return float(np.min(eigenvalues[used]))


def integrated_rate(kind: str, initial: float, tau: float | None, samples: int) -> float:
    """∫ η(t) dt over ``samples`` training samples: η₀ T, or η₀ τ ln(1 + T/τ) if annealed."""
    if kind == "annealed":
        return float(initial * tau * np.log1p(samples / tau))
    return float(initial * samples)

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


def compare_with_optimum(problem: GaussianProblem, C, optimum: InfomaxOptimum | None = None
                         ) -> dict:
    """Final comparison: MI, mode spectrum and population spectrum against the optimum."""
    C = np.asarray(C, dtype=float)
    optimum = optimum or problem.optimum()
    eigenvalues, eigenvectors = np.linalg.eigh(problem.sensing_covariance
                                               + np.pi * problem.noise_covariance)
    groups = mode_groups(eigenvalues)
    learned_modes = mode_spectrum(C, eigenvectors, groups)
    optimal_modes = mode_spectrum(optimum.weights, eigenvectors, groups)
    learned_population = population_power_spectrum(C)
    optimal_population = population_power_spectrum(optimum.weights)
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
        "learned_population_spectrum": learned_population,
        "optimal_population_spectrum": optimal_population,
        "learned_peak_frequency": peak_frequency(learned_population),
        "optimal_peak_frequency": peak_frequency(optimal_population),
        "learned_band_pass_index": band_pass_index(learned_population),
        "optimal_band_pass_index": band_pass_index(optimal_population),
    }

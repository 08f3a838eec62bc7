"""Figures of a run, rendered from its results file (never from a live simulation)."""

from __future__ import annotations


import numpy as np
from matplotlib.ticker import EngFormatter

from ..analysis.spectra import ring_frequencies, unit_power_spectra
from .mosaic import plot_mosaic
from .style import LEARNED, OPTIMAL, styled, subplots


def _feedforward(results):
    """The weights of the (first) two-phase projection: the ring figures show those."""
    name = next((n for n, p in results.spec.model.projections.items()
                 if p.rule.kind == "linsker_two_phase"), None)
    return None if name is None else np.asarray(results.weights[name])


@styled
def plot_receptive_fields(results):
    """Each output unit's feedforward weights over the input ring."""
    C = _feedforward(results)
    if C is None:
        return None
    n_units, n_sites = C.shape
    columns = min(n_units, 4 if n_units <= 8 else 8)
    rows = int(np.ceil(n_units / columns))
    figure, axes = subplots(rows, columns, figsize=(1.9 * columns, 1.4 * rows + 0.8),
                                sharex=True, sharey=True, squeeze=False, layout="constrained")
    limit = np.max(np.abs(C))
    for index, axis in enumerate(axes.flat):
        if index >= n_units:
            axis.axis("off")
            continue
        axis.axhline(0, color="0.8", lw=0.6)
        axis.plot(np.arange(n_sites), C[index], color=LEARNED, lw=1.2)
        axis.set_ylim(-1.1 * limit, 1.1 * limit)
        axis.set_title(f"unit {index}", fontsize=8)
    figure.supxlabel("input site")
    figure.supylabel("weight")
    figure.suptitle("Receptive fields (feedforward weights)\nany rotation of the outputs is "
                    "equally optimal: compare spectra, not single filters", fontsize=9)
    return figure


@styled
def plot_frequency_responses(results):
    """Unit power spectra, their sum, and the optimal population spectrum."""
    C = _feedforward(results)
    if C is None:
        return None
    frequencies = ring_frequencies(C.shape[1])
    figure, axis = subplots(figsize=(5.5, 3.4))
    for unit_spectrum in unit_power_spectra(C):
        axis.plot(frequencies, unit_spectrum, color=LEARNED, alpha=0.25, lw=0.8)
    summary = results.summary
    axis.plot(frequencies, unit_power_spectra(C).sum(axis=0), color=LEARNED, lw=2.2,
              label="learned population (sum over units)")
    if "optimal_population_spectrum" in summary:
        axis.plot(frequencies, summary["optimal_population_spectrum"], color=OPTIMAL, lw=1.8,
                  ls="--", label="optimal population")
    axis.plot([], [], color=LEARNED, alpha=0.4, lw=0.8, label="single units")
    axis.set_xlabel("spatial frequency (cycles per ring)")
    axis.set_ylabel("filter power")
    axis.set_title("Frequency responses")
    axis.legend(frameon=False, fontsize=8)
    return figure


@styled
def plot_mutual_information(results):
    """I(Z; S) over training, with the closed-form optimum."""
    if "mutual_information_bits" not in results.metrics:
        return None
    figure, axis = subplots(figsize=(5.5, 3.4))
    axis.plot(results.steps, results.metrics["mutual_information_bits"], color=LEARNED, lw=1.8,
              label="learned network")
    if "optimum_bits" in results.summary:
        optimum = float(results.summary["optimum_bits"])
        axis.axhline(optimum, color=OPTIMAL, ls="--", lw=1.4,
                     label=f"closed-form optimum ({optimum:.3f} bits)")
        final = float(results.summary["fraction_of_optimum"])
        axis.set_title(f"Mutual information: {100 * final:.2f}% of the optimum at the end")
    axis.set_xlabel("training samples")
    axis.xaxis.set_major_formatter(EngFormatter(sep=""))
    axis.set_ylabel("I(Z; S) (bits)")
    axis.legend(frameon=False, fontsize=8, loc="lower right")
    return figure


@styled
def plot_mode_spectrum(results):
    """Learned gains per eigenmode group (largest input variance first) against the optimum."""
    summary = results.summary
    if "learned_mode_spectrum" not in summary:
        return None
    learned = np.asarray(summary["learned_mode_spectrum"])
    optimal = np.asarray(summary["optimal_mode_spectrum"])
    shown = max(int(np.max(np.flatnonzero(np.maximum(learned, optimal)
                                          > 1e-3 * np.max(optimal)))) + 2, 4)
    shown = min(shown, learned.size)
    index = np.arange(shown)
    figure, axis = subplots(figsize=(5.5, 3.4))
    axis.bar(index - 0.2, learned[:shown], width=0.4, color=LEARNED, label="learned")
    axis.bar(index + 0.2, optimal[:shown], width=0.4, color=OPTIMAL, label="optimal g*")
    axis.set_xlabel("eigenmode group of q_L (largest variance first)")
    axis.set_ylabel("gain  Σ vᵀCᵀCv")
    axis.set_title(f"Mode spectrum (relative L1 to optimum: "
                   f"{float(summary['mode_spectrum_relative_l1']):.3f})")
    axis.legend(frameon=False, fontsize=8)
    return figure


@styled
def plot_settling(results):
    """Spectral radius of F and the settling residual over training."""
    metrics = results.metrics
    if "spectral_radius_F_sensing" not in metrics:
        return None
    figure, (top, bottom) = subplots(2, 1, figsize=(5.5, 4.2), sharex=True)
    top.plot(results.steps, metrics["spectral_radius_F_sensing"], label="sensing", color=LEARNED)
    top.plot(results.steps, metrics["spectral_radius_F_noise_unlearning"],
             label="noise unlearning", color="#edae49")
    top.axhline(1.0, color=OPTIMAL, ls="--", lw=1, label="divergence")
    top.set_ylabel("spectral radius of F")
    top.legend(frameon=False, fontsize=8)
    residual = np.maximum(np.asarray(metrics["settling_residual"]), 1e-17)
    bottom.semilogy(results.steps, residual, color=LEARNED)
    bottom.set_ylabel("worst settling residual")
    bottom.set_xlabel("training samples")
    bottom.xaxis.set_major_formatter(EngFormatter(sep=""))
    return figure


@styled
def plot_patch_spectra(results):
    """Linsker on image patches: rotation-invariant views of C (functions of CᵀC only).

    Left: canonical fields (CᵀC)^{1/2} of the central pixels; right: population power against
    radial spatial frequency, learned and optimal.
    """
    from ..analysis.linsker import canonical_fields

    summary = results.summary
    C = _feedforward(results)
    patch = int(results.spec.stimuli[next(iter(results.spec.stimuli))].patch_size)
    fields = canonical_fields(C, (patch, patch))
    centre = [row * patch + column for row in range(patch // 4, patch - patch // 4)
              for column in range(patch // 4, patch - patch // 4)]
    figure, (left, right) = subplots(1, 2, figsize=(9, 4), layout="constrained")
    plot_mosaic(left, fields[centre], "canonical fields (CᵀC)^½ of the central pixels\n"
                f"median OSI {float(summary['learned_canonical_orientation_selectivity']):.2f}"
                " (invariant to rotations of the outputs)")
    frequencies = summary["radial_frequencies_cycles_per_pixel"]
    right.plot(frequencies, summary["learned_radial_spectrum"], color=LEARNED, lw=2,
               marker="o", label="learned population")
    right.plot(frequencies, summary["optimal_radial_spectrum"], color=OPTIMAL, lw=1.6,
               ls="--", label="optimal population")
    right.set_xlabel("radial spatial frequency (cycles/pixel)")
    right.set_ylabel("Σ_i |ĉ_i(f)|², annulus mean")
    right.set_ylim(bottom=0)
    right.set_title("population spectrum; orientation index "
                    f"{float(summary['learned_population_orientation_index']):.3f} "
                    f"(optimum {float(summary['optimal_population_orientation_index']):.3f})",
                    fontsize=9)
    right.legend(frameon=False, fontsize=8)
    return figure

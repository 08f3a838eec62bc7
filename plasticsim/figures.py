"""Figures of a run, rendered from its results file (never from a live simulation)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter  # noqa: E402

from .analysis.spectra import ring_frequencies, unit_power_spectra  # noqa: E402

plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
                     "font.size": 9})
LEARNED, OPTIMAL = "#1f5fa8", "#d1495b"


def render_figures(results, directory: str | Path) -> list[Path]:
    """Write the standard figures of a run as PNG files; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if getattr(results, "receptive_fields", None):  # image-driven runs: mosaics, Gabor stats
        from .networks.figures import render_image_figures
        written = render_image_figures(results, directory)
        if "learned_radial_spectrum" in results.summary:  # Linsker on patches (2-D spectra)
            figure = plot_patch_spectra(results)
            path = directory / "canonical_fields_and_radial_spectrum.png"
            figure.savefig(path, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
        return written
    written = []
    for name, plot in (("receptive_fields", plot_receptive_fields),
                       ("frequency_responses", plot_frequency_responses),
                       ("mutual_information", plot_mutual_information),
                       ("mode_spectrum", plot_mode_spectrum),
                       ("settling", plot_settling)):
        figure = plot(results)
        if figure is None:
            continue
        path = directory / f"{name}.png"
        figure.savefig(path, bbox_inches="tight")
        plt.close(figure)
        written.append(path)
    return written


def _feedforward(results):
    name = next(n for n, p in results.spec.model.projections.items()
                if p.rule == "linsker_two_phase")
    return np.asarray(results.weights[name])


def plot_receptive_fields(results):
    """Each output unit's feedforward weights over the input ring."""
    C = _feedforward(results)
    n_units, n_sites = C.shape
    columns = min(n_units, 4 if n_units <= 8 else 8)
    rows = int(np.ceil(n_units / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 1.4 * rows + 0.8),
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


def plot_frequency_responses(results):
    """Unit power spectra, their sum, and the optimal population spectrum."""
    C = _feedforward(results)
    frequencies = ring_frequencies(C.shape[1])
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
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


def plot_mutual_information(results):
    """I(Z; S) over training, with the closed-form optimum."""
    if "mutual_information_bits" not in results.metrics:
        return None
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
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
    figure, axis = plt.subplots(figsize=(5.5, 3.4))
    axis.bar(index - 0.2, learned[:shown], width=0.4, color=LEARNED, label="learned")
    axis.bar(index + 0.2, optimal[:shown], width=0.4, color=OPTIMAL, label="optimal g*")
    axis.set_xlabel("eigenmode group of q_L (largest variance first)")
    axis.set_ylabel("gain  Σ vᵀCᵀCv")
    axis.set_title(f"Mode spectrum (relative L1 to optimum: "
                   f"{float(summary['mode_spectrum_relative_l1']):.3f})")
    axis.legend(frameon=False, fontsize=8)
    return figure


def plot_settling(results):
    """Spectral radius of F and the settling residual over training."""
    metrics = results.metrics
    if "spectral_radius_F_sensing" not in metrics:
        return None
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(5.5, 4.2), sharex=True)
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


def plot_patch_spectra(results):
    """Linsker on image patches: rotation-invariant views of C (functions of CᵀC only).

    Left: canonical fields (CᵀC)^{1/2} of the central pixels; right: population power against
    radial spatial frequency, learned and optimal.
    """
    from .analysis.linsker import canonical_fields
    from .networks.figures import plot_mosaic

    summary = results.summary
    C = _feedforward(results)
    patch = int(results.spec.stimuli[next(iter(results.spec.stimuli))].patch_size)
    fields = canonical_fields(C, (patch, patch))
    centre = [row * patch + column for row in range(patch // 4, patch - patch // 4)
              for column in range(patch // 4, patch - patch // 4)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
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

"""All the standard figures of a run, written as PNG files from its results file."""

from __future__ import annotations

from pathlib import Path

from .figures import (plot_frequency_responses, plot_mode_spectrum, plot_mutual_information,
                      plot_patch_spectra, plot_receptive_fields, plot_settling)
from .images import render_image_figures
from .som import plot_map_quality, plot_orientation_map, plot_sheet_weights
from .style import save


def render_figures(results, directory: str | Path) -> list[Path]:
    """Write the standard figures of a run as PNG files; return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = (_map_figures(results, directory) + render_grating_figures(results, directory)
               + _linsker1986_figures(results, directory))
    if results.sheets and not results.receptive_fields:
        return written
    if getattr(results, "receptive_fields", None):  # image-driven runs: mosaics, Gabor stats
        written += render_image_figures(results, directory)
        if "learned_radial_spectrum" in results.summary:  # Linsker on patches (2-D spectra)
            written.append(save(plot_patch_spectra(results),
                                directory / "canonical_fields_and_radial_spectrum.png"))
        return written
    for name, plot in (("receptive_fields", plot_receptive_fields),
                       ("frequency_responses", plot_frequency_responses),
                       ("mutual_information", plot_mutual_information),
                       ("mode_spectrum", plot_mode_spectrum),
                       ("settling", plot_settling)):
        figure = plot(results)
        if figure is None:
            continue
        written.append(save(figure, directory / f"{name}.png"))
    return written


def _map_figures(results, directory: Path) -> list[Path]:
    """Self-organising maps: orientation map, weights on the sheet, quality over training."""
    written = []
    figure = plot_map_quality(results)
    if figure is not None:
        written.append(save(figure, directory / "map_quality.png"))
    for population in results.sheets:
        fields = results.receptive_fields.get(population)
        if fields is None:
            continue
        written.append(save(plot_sheet_weights(results, population, fields),
                            directory / f"sheet_weights_{population}.png"))
        figure = plot_orientation_map(results, population)
        if figure is not None:
            written.append(save(figure, directory / f"orientation_map_{population}.png"))
    return written


def render_grating_figures(results, directory: Path) -> list[Path]:
    """Grating probes: tuning curves of example units per population, and the histograms of
    circular variance, orientation bandwidth and F1/F0 of every probed population."""
    if "gratings" not in results.analysis:
        return []
    from ..analysis.gratings import read_grating_tuning
    from .gratings import plot_tuning_curves, plot_tuning_histograms

    tunings = {population: read_grating_tuning(results.path, population)
               for population in results.analysis["gratings"]}
    written = [save(plot_tuning_histograms(tunings), directory / "grating_tuning.png")]
    for name, comparison in results.analysis.get("complex_cells", {}).items():
        from .complex_cells import plot_complex_cells
        attributes = results.attributes_of(f"analysis/complex_cells/{name}")
        written.append(save(plot_complex_cells(
            comparison["layer1_modulation_ratio"], comparison["layer2_modulation_ratio"],
            comparison["orientation_difference_deg"], layer1=str(attributes["layer1"]),
            layer2=str(attributes["layer2"]), top_weights=int(attributes["top_weights"])),
            directory / f"complex_cells_{name}.png"))
    for population, tuning in tunings.items():
        written.append(save(plot_tuning_curves(tuning, population=population),
                            directory / f"grating_tuning_curves_{population}.png"))
    return written


def _linsker1986_figures(results, directory: Path) -> list[Path]:
    """Linsker 1986 layers: example fields per layer and the leading MacKay–Miller modes."""
    arbors = {name: p.arbor for name, p in results.spec.model.projections.items()
              if p.arbor is not None and p.rule.kind == "linsker1986"}
    if not arbors:
        return []
    from ..analysis.linsker1986 import analyze_linsker1986
    from .linsker1986 import plot_layer_fields
    layers = analyze_linsker1986(results.path)
    radii = {name: (arbor.radius, arbor.cutoff) for name, arbor in arbors.items()}
    return [save(plot_layer_fields(layers, radii), directory / "linsker1986_fields.png")]

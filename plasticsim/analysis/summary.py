"""The final comparison of a run, computed from its results file.

:func:`summarize` reads what the run wrote (weights, the stimulus covariances, the structure
of its linear Gaussian layers, receptive fields) and returns the summary figures and the
analysis arrays to store (the optimum, Gabor fit tables). It never sees a live simulation.
"""

from __future__ import annotations

import numpy as np

from .information import projected_gradient_ascent
from .linsker import (compare_with_optimum, compare_with_optimum_patches, information_and_modes,
                      layer_problem)
from .receptive_fields import summarize_receptive_fields


def linear_layer_summaries(results) -> tuple[dict, dict]:
    """MI against the optimum for each two-phase linear layer with a closed-form MI.

    A single layer (the input feeding it directly) is compared with its closed-form optimum
    (water filling, or projected gradient ascent for non-commuting covariances) with the mode
    and population spectra; keys are unprefixed. With several layers each layer's keys are
    prefixed with its population name, and a layer above the first is compared with its
    optimum *given the learned weights below it* (projected gradient ascent: its input
    covariances do not commute); ``data_processing_holds`` checks I(z_k; S) ≤ I(z_{k−1}; S).

    Returns
    -------
    summary : dict
    arrays : dict
        Path → (array, attributes) to store (``analysis/optimum/...``).
    """
    layers = results.layers
    summary, arrays = {}, {}
    previous_information = None
    for index, (population, layer) in enumerate(sorted(
            layers.items(), key=lambda item: len(item[1]["chain"]))):
        weights = [np.asarray(results.weights[name]) for name in layer["chain"]]
        C = weights[-1]
        prefix = "" if len(layers) == 1 else f"{population}_"
        single = len(weights) == 1
        if layer.get("budget_kind") is None:
            problem = layer_problem(layer, weights)
            summary[prefix + "mutual_information_nats"] = problem.mutual_information(C)
            continue
        problem = layer_problem(layer, weights)
        if single:
            optimum = problem.optimum()
            patch_shape = layer.get("patch_shape")
            if patch_shape is not None:
                figures = compare_with_optimum_patches(problem, C, tuple(patch_shape), optimum)
            else:
                figures = compare_with_optimum(problem, C, optimum)
        else:
            optimal = projected_gradient_ascent(problem.signal_covariance,
                                                problem.noise_covariance,
                                                problem.output_noise_variance,
                                                problem.n_outputs, problem.total_budget,
                                                problem.budget_kind)
            from .information import InfomaxOptimum
            optimum = InfomaxOptimum(problem.mutual_information(optimal), None, None, optimal,
                                     problem.budget_kind, "projected_gradient_given_layers_below")
            figures = information_and_modes(problem, C, optimum)
        figures["budget_kind"] = problem.budget_kind
        information = figures["mutual_information_nats"]
        if previous_information is not None:
            figures["data_processing_holds"] = bool(information <= previous_information + 1e-9)
        previous_information = information
        summary.update({prefix + key: value for key, value in figures.items()})
        arrays[f"analysis/optimum{'/' + population if prefix else ''}"] = (
            {"weights": optimum.weights},
            {"mutual_information_nats": optimum.mutual_information,
             "budget_kind": optimum.budget_kind, "method": optimum.method})
    return summary, arrays


def receptive_field_summaries(results) -> tuple[dict, dict]:
    """Gabor statistics of image-driven populations.

    Fields are ``/receptive_fields/<population>`` where a probe measured them; otherwise the
    weights of each projection from an image input (rows reshaped to the patch).
    """
    fields = {name: np.asarray(value) for name, value in results.receptive_fields.items()}
    measured = set(fields)
    for name, projection in results.spec.model.projections.items():
        shape = results.patch_shapes.get(projection.pre)
        if shape is None or projection.post in fields or projection.pre == projection.post:
            continue
        if projection.arbor is not None:
            continue   # local arbor fields: the Linsker 1986 analysis reads them
        fields[projection.post] = np.asarray(results.weights[name]).reshape(
            (-1,) + tuple(shape))
    summary, arrays = {}, {}
    for population, population_fields in fields.items():
        if population in results.sheets:
            # A map's prototypes (e.g. bars) are not receptive fields to fit Gabors to; their
            # orientation map is the analysis (orientation_map_summaries).
            arrays[f"receptive_fields/{population}"] = (population_fields,
                                                        {"method": "weights"})
            continue
        population_summary, table = summarize_receptive_fields(population_fields)
        if population not in measured:
            arrays[f"receptive_fields/{population}"] = (
                population_fields, {"method": "weights", "projection": next(
                    name for name, p in results.spec.model.projections.items()
                    if p.post == population)})
        arrays[f"analysis/gabor/{population}"] = (table, {})
        prefix = f"{population}_" if len(fields) > 1 else ""
        summary.update({prefix + key: value for key, value in population_summary.items()})
    return summary, arrays


def principal_subspace_summaries(results) -> dict:
    """How far each Oja/Sanger projection is from the principal subspace of its input.

    For a projection with rule ``oja_subspace`` whose input has a known covariance, the
    largest principal angle (radians) between the span of its rows and that of the top-M
    eigenvectors of the sensing-phase input covariance (M = number of units), and the
    deviation of W Wᵀ from the identity (orthonormal rows at the fixed point).
    """
    from scipy.linalg import subspace_angles

    summary = {}
    for name, projection in results.spec.model.projections.items():
        stimulus = results.stimulus.get(projection.pre, {})
        if projection.rule.kind != "oja_subspace" or "signal_covariance" not in stimulus:
            continue
        covariance = np.asarray(stimulus["signal_covariance"]) + np.asarray(
            stimulus["noise_covariance"])
        W = np.asarray(results.weights[name], dtype=float)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        top = eigenvectors[:, np.argsort(eigenvalues)[::-1][:W.shape[0]]]
        summary[f"{name}_largest_principal_angle_rad"] = float(
            np.max(subspace_angles(W.T, top)))
        summary[f"{name}_orthonormality_error"] = float(
            np.max(np.abs(W @ W.T - np.eye(W.shape[0]))))
    return summary


def orientation_map_summaries(results) -> tuple[dict, dict]:
    """Orientation maps of populations on a sheet whose receptive fields are known.

    Each unit's preferred orientation comes from its field's power spectrum
    (:func:`plasticsim.analysis.orientation_map.preferred_orientation`); the summary adds the
    pinwheel count, the map's dominant wavelength Λ, pinwheels per Λ² and the smoothness
    (keys ``orientation_map_*``, prefixed with the population where several maps exist), and
    ``/analysis/orientation_map/<population>`` stores θ, the selectivity and the pinwheels.
    """
    from .orientation_map import analyze_orientation_map, find_pinwheels, orientation_map

    summary, arrays = {}, {}
    fields = dict(results.receptive_fields)
    for name, projection in results.spec.model.projections.items():
        shape = results.patch_shapes.get(projection.pre)
        if shape is not None and projection.post not in fields:
            fields[projection.post] = np.asarray(results.weights[name]).reshape(
                (-1,) + tuple(shape))
    mapped = [name for name in results.sheets if name in fields]
    for population in mapped:
        sheet = results.sheets[population]
        theta, selectivity = orientation_map(fields[population], sheet["shape"])
        statistics = analyze_orientation_map(theta, sheet["periodic"])
        pinwheels = find_pinwheels(theta, sheet["periodic"])
        prefix = "orientation_map_" if len(mapped) == 1 else f"{population}_orientation_map_"
        summary.update({prefix + key: value for key, value in statistics.items()})
        summary[prefix + "median_selectivity"] = float(np.nanmedian(selectivity))
        arrays[f"analysis/orientation_map/{population}"] = (
            {"preferred_orientation_rad": theta, "selectivity": selectivity,
             "pinwheel_positions": np.column_stack([pinwheels.rows, pinwheels.columns]).astype(
                 float).reshape(-1, 2),
             "pinwheel_charges": np.asarray(pinwheels.charges, dtype=float)},
            {"method": "power spectrum of each unit's field", "sheet": list(sheet["shape"])})
    return summary, arrays


def grating_summaries(results) -> tuple[dict, dict]:
    """Tuning of each population a ``gratings`` probe measured (``/probes/<name>``).

    Stores the per-unit analysis under ``/analysis/gratings/<population>`` (the layout of
    :func:`plasticsim.analysis.gratings.write_grating_tuning`) and adds, per population,
    ``<population>_gratings_``: ``median_circular_variance``,
    ``fraction_circular_variance_below_0.5``, ``median_orientation_bandwidth_deg``,
    ``median_modulation_ratio`` (F1/F0), ``fraction_modulation_ratio_above_1``,
    ``median_preferred_spatial_frequency`` and ``responsive_units``; for a trace-rule
    projection between two probed layers, the ``complex_cells_*`` comparison
    (:func:`plasticsim.analysis.complex_cells.complex_cell_summaries`).
    """
    from .complex_cells import complex_cell_summaries
    from .gratings import analyze_grating_responses, drifting_gratings

    summary, arrays, tunings = {}, {}, {}
    for name, probe in results.probes.items():
        attributes = probe["attributes"]
        if attributes.get("kind") != "gratings":
            continue
        gratings = drifting_gratings(tuple(attributes["input_shape"]),
                                     probe["spatial_frequencies"], len(probe["orientations_rad"]),
                                     len(probe["phases_rad"]), attributes["contrast"],
                                     tuple(attributes["grating_shape"]))
        tuning = analyze_grating_responses(probe["responses"], gratings,
                                           attributes["response_kind"])
        population = attributes["population"]
        tunings[population] = tuning
        columns = tuning.columns
        responsive = columns["responsive"]
        variance = columns["circular_variance"][responsive]
        ratio = columns["modulation_ratio"][responsive]
        prefix = f"{population}_gratings_"
        summary.update({
            prefix + "responsive_units": int(responsive.sum()),
            prefix + "median_circular_variance": float(np.median(variance))
            if variance.size else float("nan"),
            prefix + "fraction_circular_variance_below_0.5": float(np.mean(variance < 0.5))
            if variance.size else float("nan"),
            prefix + "median_orientation_bandwidth_deg": float(np.nanmedian(
                columns["orientation_bandwidth_deg"][responsive])) if variance.size
            else float("nan"),
            prefix + "median_modulation_ratio": float(np.median(ratio))
            if ratio.size else float("nan"),
            prefix + "fraction_modulation_ratio_above_1": float(np.mean(ratio > 1))
            if ratio.size else float("nan"),
            prefix + "median_preferred_spatial_frequency": float(np.nanmedian(
                columns["preferred_spatial_frequency"][responsive])) if variance.size
            else float("nan")})
        arrays[f"analysis/gratings/{population}"] = (
            {"table": tuning.table(), "mean_response": tuning.mean_response,
             "first_harmonic": tuning.first_harmonic,
             "orientations_deg": np.degrees(tuning.orientations),
             "spatial_frequencies": tuning.spatial_frequencies},
            {"response_kind": tuning.response_kind, "phase_count": tuning.phase_count,
             "probe": name})
    more, more_arrays = complex_cell_summaries(results, tunings)
    summary.update(more)
    arrays.update(more_arrays)
    return summary, arrays


def map_quality_summaries(results) -> dict:
    """First and last recorded quantisation and topographic errors of each SOM.

    The history holds the whole curve (``metrics``); the summary keeps its two ends, so that a
    reader sees at a glance that the map unfolded (quantisation error falling) and kept its
    topology (topographic error, Kiviluoto 1996: fraction of inputs whose two best-matching
    units are not neighbours).
    """
    summary = {}
    for name, values in results.metrics.items():
        if name.endswith(("quantisation_error", "topographic_error")) and len(values):
            summary[f"{name}_initial"] = float(values[0])
            summary[f"{name}_final"] = float(values[-1])
    return summary


def linsker1986_summaries(results) -> dict:
    """Per layer of Linsker's (1986) development (:mod:`plasticsim.analysis.linsker1986`):
    field classes, centre and surround signs, saturation, the leading MacKay–Miller modes and
    the cosine of unsaturated fields with the leading one (``<population>_linsker1986_*``)."""
    if not any(p.arbor is not None for p in results.spec.model.projections.values()):
        return {}
    # Imported only for arbor networks: it pulls in scipy.signal (about 1 s of start-up that
    # every other protocol's run would pay for nothing).
    from .linsker1986 import analyze_linsker1986, linsker1986_summary
    return linsker1986_summary(analyze_linsker1986(results.path))


def summarize(results) -> tuple[dict, dict]:
    """Every final figure of a run and the analysis arrays to store with it."""
    summary, arrays = linear_layer_summaries(results)
    summary.update(principal_subspace_summaries(results))
    summary.update(map_quality_summaries(results))
    summary.update(linsker1986_summaries(results))
    for analysis in (receptive_field_summaries, orientation_map_summaries, grating_summaries):
        more, more_arrays = analysis(results)
        summary.update(more)
        arrays.update(more_arrays)
    return summary, arrays

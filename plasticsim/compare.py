"""``plasticsim compare``: receptive fields of a run against a reference and macaque V1.

A report holds, for the run and (optionally) a reference population: receptive-field
mosaics side by side, the nx–ny scatter over the V1 histogram, histograms of SF bandwidth,
orientation and aspect ratio, and a table (fraction of units with Gabor R² > 0.9 and > 0.8,
medians, blob-like fraction, orientation selectivity, total-variation distance of the binned
nx–ny histogram to V1's and to the reference's), written as PNG + Markdown + JSON.

References
----------
``RUN.h5`` (or a run directory)
    Another run's receptive fields (``/receptive_fields``; first population).
``FILE.mat``
    A dictionary stored as pixels × units (Olshausen's ``A144.mat``, key ``A``), each column
    a square field in MATLAB's column-major order. v5 and v7.3 files are read.
``olshausen-field``
    The fields of this package's own Olshausen–Field network, trained on Olshausen's images
    with ``protocols/olshausen_field_olshausen_images.yaml`` (seed 1) and shipped as
    ``plasticsim/data/olshausen_field_network.npz``. Olshausen's own ``A144.mat`` carries no
    licence, so it is not shipped; pass its path as ``FILE.mat`` to compare with it.

Baselines
---------
``pca`` and ``ica`` (``baselines=``, ``--baseline``, repeatable) fit PCA and FastICA to
patches drawn from the run's own image stimulus, rebuilt from its stored protocol, with as
many components as the run has units (at most one per pixel), and add them as columns of the
table and to every figure (:mod:`plasticsim.analysis.baselines`). ICA's fields are its basis
functions by default (as the Olshausen–Field network's), or its filters
(``ica_fields="filters"``, as white-noise maps).

Units whose fit is poor are counted in the table (``n_excluded``), never dropped silently;
the medians, blob-like fraction and nx–ny histograms use the good fits (R² > 0.8, centre
inside the field), as :func:`plasticsim.analysis.gabor.summarize_fits` defines them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import h5py
import numpy as np

from .analysis.baselines import (BASELINE_METHODS, DEFAULT_PATCHES, DEFAULT_SEED,
                                 energy_spread, fit_baseline, run_patches)
from .analysis.gabor import TABLE_COLUMNS, good_fits, nxny_histogram, summarize_fits, total_variation_distance
from .analysis.receptive_fields import orientation_selectivity_index, summarize_receptive_fields
from .analysis.v1_reference import V1_LITERATURE_MEDIANS, load_ringach2002
from .errors import DataError
from .schema import MAX_SEED
from .io.results import load
from .plot.images import plot_gabor_histograms, plot_nxny
from .plot.mosaic import plot_mosaic
from .plot.style import save, styled, subplots

PACKAGED_REFERENCE = "olshausen_field_network.npz"
#: Most patches the PCA/ICA baselines are fitted to.
MAX_BASELINE_PATCHES = 10_000_000
GOOD_R2 = 0.8
V1_CHOICES = ("ringach2002",)
#: Rows of the comparison table: (key, label, format).
TABLE_ROWS = (
    ("n_units", "units", "{:.0f}"),
    ("fraction_r2_above_0.9", "fraction R² > 0.9", "{:.1%}"),
    ("fraction_r2_above_0.8", "fraction R² > 0.8", "{:.1%}"),
    ("n_excluded", "units excluded (R² ≤ 0.8 or centre outside; failed fits)", "{:.0f}"),
    ("median_nx", "median nx", "{:.2f}"),
    ("median_ny", "median ny", "{:.2f}"),
    ("median_sf_bandwidth_octaves", "median SF bandwidth (octaves)", "{:.2f}"),
    ("median_orientation_halfwidth_deg", "median orientation half-width (°)", "{:.1f}"),
    ("median_aspect_ratio", "median aspect ratio σy/σx", "{:.2f}"),
    ("blob_like_fraction", "blob-like fraction (nx, ny < 0.30)", "{:.1%}"),
    ("median_orientation_selectivity_index", "median orientation selectivity index", "{:.2f}"),
    ("median_energy_spread_px", "median energy spread (px; smaller = more localised)",
     "{:.2f}"),
    ("tv_distance_to_v1", "TV distance of nx–ny histogram to V1", "{:.3f}"),
    ("tv_distance_to_reference", "TV distance of nx–ny histogram to reference", "{:.3f}"),
)


@dataclass
class FieldSet:
    """A population of receptive fields with its Gabor fit table.

    Attributes
    ----------
    name : str
    fields : numpy.ndarray
        (units, height, width).
    table : numpy.ndarray
        :func:`plasticsim.analysis.gabor.fit_gabors` table.
    source : str
        Where the fields came from.
    """

    name: str
    fields: np.ndarray
    table: np.ndarray
    source: str


def _fit(fields: np.ndarray) -> np.ndarray:
    return summarize_receptive_fields(fields)[1]


def load_run(path: str | Path, allow_incomplete: bool = False):
    """A run's results for comparison: contract checked, complete unless allowed otherwise."""
    results = load(path)
    if not results.complete and not allow_incomplete:
        error = results.attributes.get("error")
        raise DataError(f"{results.path}: the run is incomplete (complete = false"
                        + (f"; error: {' '.join(str(error).split())[:200]}" if error else "")
                        + "); pass --allow-incomplete to compare it anyway")
    return results


def load_field_set(source: str | Path, key: str | None = None,
                   allow_incomplete: bool = False) -> FieldSet:
    """Load receptive fields from a run, a MATLAB dictionary or the packaged reference.

    Parameters
    ----------
    source : str or Path
        ``results.h5`` or its directory, a ``.mat`` file, or ``"olshausen-field"``.
    key : str, optional
        Variable in a ``.mat`` file (default: ``A`` if present, else its only 2-D array).

    Raises
    ------
    DataError
        If the file is missing, unreadable, has no receptive fields, or its fields are not
        square.
    """
    if str(source) == "olshausen-field":
        resource = resources.files("plasticsim") / "data" / PACKAGED_REFERENCE
        if not resource.is_file():
            raise DataError(f"{resource}: the packaged Olshausen–Field reference is missing "
                            "(broken installation); pass a run or a .mat file instead")
        with resources.as_file(resource) as path, np.load(path) as archive:
            fields = archive["fields"]
        return FieldSet("olshausen-field (network)", fields, _fit(fields), str(resource))
    path = Path(source)
    if path.suffix.lower() == ".mat":
        fields = _read_mat_dictionary(path, key)
        return FieldSet(path.stem, fields, _fit(fields), str(path))
    results = load_run(path, allow_incomplete)
    if not results.receptive_fields:
        raise DataError(f"{results.path}: holds no /receptive_fields; expected the results of "
                        "an image-driven run")
    population = next(iter(results.receptive_fields))
    fields = np.asarray(results.receptive_fields[population])
    if fields.ndim != 3 or fields.dtype.kind not in "biuf" or 0 in fields.shape:
        raise DataError(f"{results.path}: /receptive_fields/{population} has shape "
                        f"{fields.shape} ({fields.dtype}); expected units × height × width "
                        "numbers")
    if not np.all(np.isfinite(fields)):
        raise DataError(f"{results.path}: /receptive_fields/{population} holds non-finite "
                        "values")
    table = results.gabor.get(population)
    table = _fit(fields) if table is None else np.asarray(table)
    if table.dtype.names is None or not set(TABLE_COLUMNS) <= set(table.dtype.names) or \
            table.shape != (fields.shape[0],):
        raise DataError(f"{results.path}: /analysis/gabor/{population} is not a Gabor fit "
                        f"table with one record per unit ({fields.shape[0]})")
    return FieldSet(results.spec.name, fields, table, str(results.path))


def _read_mat_dictionary(path: Path, key: str | None) -> np.ndarray:
    """Pixels × units array of a .mat file → units × side × side fields (column-major)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as handle:
            arrays = {name: handle[name][()].T for name in handle
                      if isinstance(handle[name], h5py.Dataset)}
    else:
        try:
            import scipy.io  # on use: slow to import
            arrays = {name: value for name, value in scipy.io.loadmat(path).items()
                      if not name.startswith("__")}
        except Exception as error:  # scipy raises several types for unreadable files
            raise DataError(f"{path}: cannot read as a MATLAB file ({error})") from error
    matrices = [name for name, value in arrays.items()
                if isinstance(value, np.ndarray) and value.ndim == 2]
    if key is None:
        key = "A" if "A" in arrays else (matrices[0] if len(matrices) == 1 else None)
    if key not in arrays:
        raise DataError(f"{path}: no dictionary named {key!r}; the file holds "
                        f"{sorted(arrays)} (expected a pixels × units array, e.g. 'A')")
    matrix = np.asarray(arrays[key], dtype=np.float64)
    side = int(round(np.sqrt(matrix.shape[0]))) if matrix.ndim == 2 else 0
    if matrix.ndim != 2 or side * side != matrix.shape[0]:
        raise DataError(f"{path}: {key!r} has shape {matrix.shape}; expected pixels × units "
                        "with a square number of pixels")
    return np.stack([matrix[:, unit].reshape(side, side, order="F")
                     for unit in range(matrix.shape[1])])


def population_row(field_set: FieldSet, v1_edges: np.ndarray, v1_counts: np.ndarray,
                   reference: FieldSet | None = None) -> dict:
    """The comparison table's figures for one population (see :data:`TABLE_ROWS`)."""
    row = summarize_fits(field_set.table)
    row["median_orientation_selectivity_index"] = float(
        np.nanmedian(orientation_selectivity_index(field_set.fields)))
    # Localisation without a model fit, so that fields no Gabor fits (PCA's) are scored too.
    row["median_energy_spread_px"] = float(np.nanmedian(energy_spread(field_set.fields)))
    good = good_fits(field_set.table)
    # Values beyond the V1 grid go to its outer bins, so every good unit counts once.
    histogram = nxny_histogram(good["nx"], good["ny"], v1_edges, clip=True)
    row["nxny_histogram"] = histogram.tolist()
    row["tv_distance_to_v1"] = (total_variation_distance(histogram, v1_counts)
                                if histogram.sum() else float("nan"))
    if reference is not None:
        reference_good = good_fits(reference.table)
        reference_histogram = nxny_histogram(reference_good["nx"], reference_good["ny"],
                                             v1_edges, clip=True)
        row["tv_distance_to_reference"] = (
            total_variation_distance(histogram, reference_histogram)
            if histogram.sum() and reference_histogram.sum() else float("nan"))
    return row


def baseline_field_sets(run: str | Path, methods, n_units: int,
                        n_patches: int = DEFAULT_PATCHES, seed: int = DEFAULT_SEED,
                        ica_fields: str = "basis_functions") -> list[FieldSet]:
    """PCA/ICA field sets fitted to patches of the run's own stimulus (module docstring).

    Parameters
    ----------
    run : str or Path
        ``results.h5`` of an image-driven run (or its directory).
    methods : sequence of str
        Baselines, each in :data:`plasticsim.analysis.baselines.BASELINE_METHODS`.
    n_units : int
        The run's number of units; the baselines get as many components (at most one per
        pixel).
    n_patches, seed : int
        Patches drawn from the rebuilt stimulus and their seed (also FastICA's).
    ica_fields : {"basis_functions", "filters"}

    Raises
    ------
    DataError
        If a method is unknown, ``run`` is not a results file, or its patches cannot be
        rebuilt.
    """
    unknown = [method for method in methods if method not in BASELINE_METHODS]
    if unknown:
        raise DataError(f"unknown baseline {unknown[0]!r}; available: "
                        f"{', '.join(BASELINE_METHODS)}")
    if not methods:
        return []
    if str(run) == "olshausen-field" or Path(run).suffix.lower() == ".mat":
        raise DataError(f"{run}: the PCA/ICA baselines rebuild the patches of a run, so they "
                        "need a run's results.h5, not a dictionary")
    patches, patch_shape = run_patches(load_run(run, True), n_patches, seed)
    n_components = min(n_units, patches.shape[1])
    sets = []
    for method in dict.fromkeys(methods):   # once each, in the order given
        baseline = fit_baseline(method, patches, n_components, patch_shape, seed, ica_fields)
        source = baseline.description()
        if n_components < n_units:
            source += f" (the run has {n_units} units; at most one component per pixel)"
        sets.append(FieldSet(f"{method.upper()} (baseline)", baseline.fields,
                             _fit(baseline.fields), source))
    return sets


def compare(run: str | Path, reference: str | Path | None = None, v1: str = "ringach2002",
            out: str | Path | None = None, reference_key: str | None = None,
            baselines=(), baseline_patches: int = DEFAULT_PATCHES,
            baseline_seed: int = DEFAULT_SEED, ica_fields: str = "basis_functions",
            allow_incomplete: bool = False) -> dict:
    """Write a comparison report of a run's receptive fields; return its figures.

    Parameters
    ----------
    run : str or Path
        ``results.h5`` of an image-driven run (or its directory).
    reference : str or Path, optional
        ``"olshausen-field"``, another run, or a ``.mat`` dictionary (see module docstring).
    v1 : {"ringach2002"}
        The V1 data set.
    out : str or Path, optional
        Report directory (default: ``compare/`` next to the run's results file).
    reference_key : str, optional
        Variable name in a ``.mat`` reference.
    baselines : sequence of str, optional
        ``"pca"`` and/or ``"ica"``: fitted to the run's patches and added as columns.
    baseline_patches, baseline_seed : int
        Patches for the baselines and their seed (see :func:`baseline_field_sets`).
    ica_fields : {"basis_functions", "filters"}
        Which ICA fields are compared.
    allow_incomplete : bool
        Compare runs that did not finish (refused by default: their fields are not final).

    Returns
    -------
    dict
        The JSON report: ``populations`` (name → table row), ``baselines`` (name → how
        it was fitted), ``v1`` and ``files``.
    """
    if v1 not in V1_CHOICES:
        raise DataError(f"unknown V1 data set {v1!r}; available: {', '.join(V1_CHOICES)}")
    if not 1 <= baseline_patches <= MAX_BASELINE_PATCHES:
        raise DataError(f"--baseline-patches: expected a positive integer in [1, "
                        f"{MAX_BASELINE_PATCHES}], got {baseline_patches}")
    if not 0 <= baseline_seed <= MAX_SEED:
        raise DataError(f"--baseline-seed: expected an integer in [0, {MAX_SEED}], got "
                        f"{baseline_seed}")
    run_set = load_field_set(run, allow_incomplete=allow_incomplete)
    reference_set = (load_field_set(reference, reference_key, allow_incomplete)
                     if reference is not None else None)
    if reference_set is not None and reference_set.name == run_set.name:
        reference_set.name += " (reference)"
    baseline_sets = baseline_field_sets(run, list(baselines), len(run_set.fields),
                                        baseline_patches, baseline_seed, ica_fields)
    out = Path(out) if out is not None else Path(run_set.source).parent / "compare"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"--out {out}: cannot create the report directory "
                        f"({error.strerror or error}); expected a directory") from None
    v1_edges, v1_counts = load_ringach2002()
    sets = [run_set] + ([reference_set] if reference_set is not None else []) + baseline_sets
    rows = {field_set.name: population_row(field_set, v1_edges, v1_counts, reference_set
                                           if field_set is run_set else None)
            for field_set in sets}
    v1_row = {"n_units": int(v1_counts.sum()),
              "blob_like_fraction": V1_LITERATURE_MEDIANS["blob_like_fraction"]["value"],
              "median_orientation_halfwidth_deg":
                  V1_LITERATURE_MEDIANS["orientation_halfwidth_deg"]["value"],
              "median_sf_bandwidth_octaves":
                  V1_LITERATURE_MEDIANS["sf_bandwidth_octaves"]["value"],
              "tv_distance_to_v1": 0.0}

    files = []
    files.append(_save(_mosaics(sets, rows), out / "mosaics.png"))
    files.append(_save(plot_nxny(sets, v1_edges, v1_counts), out / "nxny.png"))
    files.append(_save(plot_gabor_histograms({s.name: s.table for s in sets}),
                       out / "gabor_histograms.png"))
    report = {"run": run_set.source,
              "reference": reference_set.source if reference_set else None,
              "baselines": {field_set.name: field_set.source for field_set in baseline_sets},
              "v1": {"name": v1, "edges": v1_edges.tolist(), "counts": v1_counts.tolist(),
                     **v1_row, "literature": V1_LITERATURE_MEDIANS},
              "populations": rows,
              "files": [path.name for path in files] + ["report.md", "report.json"]}
    (out / "report.json").write_text(json.dumps(_finite(report), indent=2) + "\n")
    (out / "report.md").write_text(markdown_report(report, sets))
    return report


@styled
def _mosaics(sets, rows):
    figure, axes = subplots(1, len(sets), figsize=(4.2 * len(sets), 4.6), squeeze=False)
    for axis, field_set in zip(axes[0], sets):
        fraction = rows[field_set.name]["fraction_r2_above_0.9"]
        plot_mosaic(axis, field_set.fields, f"{field_set.name}\n{100 * fraction:.0f}% R² > 0.9")
    figure.suptitle("Receptive fields (each scaled to its own maximum; grey = 0)")
    return figure


def _save(figure, path: Path) -> Path:
    return save(figure, path, dpi=90)


def _finite(value):
    """NaN → None, so the JSON is strict."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def markdown_report(report: dict, sets: list[FieldSet]) -> str:
    """The report's table and figures as Markdown."""
    names = list(report["populations"]) + ["macaque V1"]
    columns = list(report["populations"].values()) + [report["v1"]]
    lines = ["# Receptive-field comparison", "",
             f"- run: `{report['run']}`",
             f"- reference: `{report['reference']}`" if report["reference"] else
             "- reference: none",
             *[f"- {name}: {source}, drawn from the run's own image stimulus"
               for name, source in report.get("baselines", {}).items()],
             "- V1: Ringach (2002) binned nx–ny histogram of 79 simple cells (via VOneNet); "
             "literature medians as listed in `plasticsim.analysis.v1_reference`", "",
             "Medians, blob-like fraction and histograms use the good fits (R² > 0.8, centre "
             "inside the field); the excluded units are counted in the table.", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label, template in TABLE_ROWS:
        cells = []
        for column in columns:
            value = column.get(key)
            cells.append("–" if value is None or (isinstance(value, float)
                                                   and not np.isfinite(value))
                         else template.format(float(value)))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "![mosaics](mosaics.png)", "", "![nx–ny](nxny.png)", "",
              "![histograms](gabor_histograms.png)", ""]
    return "\n".join(lines)

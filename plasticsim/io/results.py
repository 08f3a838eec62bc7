"""Reading results files back: :func:`load` returns a :class:`Results` object.

The layout is the public contract documented in docs/results.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import DataError, SpecError
from ..spec.loading import decode_text, parse_yaml, protocol_from_document


@dataclass
class Results:
    """One run's results, read from its HDF5 file.

    Attributes
    ----------
    path : Path
    attributes : dict
        Root attributes (``plasticsim_version``, ``seed``, ``backend``, ``complete``, …).
    spec : ProtocolSpec
        The fully resolved protocol the run used.
    weights : dict
        Final weights: ``weights["feedforward"]`` (post × pre) and the lateral arrays.
    steps : ndarray
        Sample counts of the records.
    history : Mapping
        Weight snapshots, each of shape (records, …), aligned with ``steps`` (read from the
        file when asked for: :class:`LazyGroup`).
    activities : dict
        With ``record.activities``: per population, its activity in the last step of each
        record, shape (records, batch samples, units), aligned with ``steps`` (read when
        asked for).
    metrics : dict
        Scalar time series aligned with ``steps``.
    stimulus : dict
        Per input population: ``signal_covariance`` and ``noise_covariance`` where known.
    populations : dict
        Per population: ``size``, ``kind``, ``output_noise_variance``.
    summary : dict
        The final comparison (as in ``summary.json``), where the run completed.
    receptive_fields : dict
        Image-driven runs: per population, fields of shape (units, height, width).
    gabor : dict
        Image-driven runs: per population, the Gabor fit table (one record per unit).
    layers : dict
        Per linear two-phase layer with a closed-form MI: the chain of projections from the
        input (``chain``), ``noise_variances``, the input's ``signal_covariance`` and
        ``noise_covariance``, ``budget_kind``/``budget_value`` and ``patch_shape``.
    patch_shapes : dict
        Per image-fed input population: (height, width) of its patches.
    stimulus_attributes : dict
        Per input population: the attributes of ``/stimulus/<population>`` (kind, …).
    sheets : dict
        Per population on a 2-D sheet (self-organising maps): ``shape`` (rows, columns) and
        ``periodic``.
    analysis : dict
        Everything under ``/analysis`` (optimum, Gabor tables, orientation maps, …).
    probes : dict
        What the protocol's probes measured, ``/probes/<name>``: arrays, and the group's
        attributes under ``"attributes"``.
    """

    path: Path
    attributes: dict
    spec: object
    weights: dict = field(default_factory=dict)
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    history: dict = field(default_factory=dict)
    activities: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    stimulus: dict = field(default_factory=dict)
    populations: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    receptive_fields: dict = field(default_factory=dict)
    gabor: dict = field(default_factory=dict)
    layers: dict = field(default_factory=dict)
    patch_shapes: dict = field(default_factory=dict)
    sheets: dict = field(default_factory=dict)
    analysis: dict = field(default_factory=dict)
    probes: dict = field(default_factory=dict)
    stimulus_attributes: dict = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return bool(self.attributes.get("complete", False))

    def to_xarray(self):
        """Every dataset of the file as one :class:`xarray.Dataset` with named dimensions
        (``record``, populations, …), the ``record`` coordinate (sample counts), units and
        descriptions as attributes (:func:`plasticsim.io.dimensions.to_xarray`; needs the
        ``analysis`` extra: ``pip install 'plasticsim[analysis]'``)."""
        from .dimensions import to_xarray
        try:
            import xarray  # noqa: F401
        except ImportError:
            raise DataError("to_xarray needs xarray: pip install 'plasticsim[analysis]'") \
                from None
        return to_xarray(self.path)

    def attributes_of(self, path: str) -> dict:
        """The HDF5 attributes of a group or dataset in the file (e.g. a probe's settings)."""
        with h5py.File(self.path, "r") as file:
            if path not in file:
                raise DataError(f"{self.path}: no /{path}")
            return {key: _attribute(value) for key, value in file[path].attrs.items()}


class LazyGroup(Mapping):
    """A read-only mapping of the arrays of one group of a results file, each read from the
    file when asked for (records of long runs: weight snapshots, activities), so loading a
    results file does not hold them all in memory."""

    def __init__(self, path: Path, group: str, names: list[str]):
        self.path, self.group, self.names = Path(path), group, list(names)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise KeyError(name)
        with h5py.File(self.path, "r") as file:
            return file[f"{self.group}/{name}"][()]

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"LazyGroup({self.path}:/{self.group}: {', '.join(self.names)})"


def _lazy_group(file, path: Path, group: str):
    if group not in file:
        return {}
    return LazyGroup(path, group, [name for name, item in file[group].items()
                                   if isinstance(item, h5py.Dataset)])


def _read_group(group) -> dict:
    out = {}
    for name, item in group.items():
        out[name] = _read_group(item) if isinstance(item, h5py.Group) else item[()]
    return out


#: Root attributes every results file has (docs/results.md).
REQUIRED_ATTRIBUTES = ("plasticsim_version", "seed", "backend", "dtype", "protocol", "complete")
#: Groups and datasets every results file has, complete or not.
REQUIRED_ENTRIES = ("spec", "populations", "history/step")
#: Entries that are groups wherever they appear.
GROUPS = ("populations", "history", "history/weights", "metrics", "weights", "summary",
          "stimulus", "analysis", "structure", "probes", "receptive_fields")
#: What a complete run adds.
REQUIRED_WHEN_COMPLETE = ("summary",)


def must_be_finite(name: str) -> bool:
    """Whether a summary figure must be finite in a complete run: the information figures.
    (A NaN median of an empty set of good Gabor fits is a reported finding, not a failure.)"""
    return "information" in name or "optimum" in name


def results_path(path: str | Path) -> Path:
    """``results.h5`` of a run directory, or the path itself; DataError if it is no file."""
    path = Path(path)
    try:
        if path.is_dir():
            path = path / "results.h5"
        if not path.is_file():
            raise DataError(f"{path}: results file not found (expected results.h5 or a run "
                            "directory holding one)")
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a usable path ({error})") from None
    return path


def check_contract(path: str | Path) -> Path:
    """Check a results file against the public layout before anything reads it.

    Checks the root attributes, the groups and datasets every file has (and those of a
    complete run), that ``/spec`` is text, that ``/history/step`` and every
    ``/metrics/<name>`` and ``/history/weights/<name>`` have one entry per record, and that a
    complete run's final weights and metrics are finite.

    Returns
    -------
    Path
        The results file.

    Raises
    ------
    DataError
        Naming everything that is missing or malformed.
    """
    path = results_path(path)
    problems: list[str] = []
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error})") from None
    try:
        with handle as file:
            attributes = set(file.attrs.keys())
            missing = [name for name in REQUIRED_ATTRIBUTES if name not in attributes]
            if missing:
                problems.append(f"root attribute(s) {', '.join(missing)} missing")
            complete = bool(file.attrs.get("complete", False)) if "complete" in attributes \
                else False
            required = REQUIRED_ENTRIES + (REQUIRED_WHEN_COMPLETE if complete else ())
            missing = [f"/{name}" for name in required if name not in file]
            if missing:
                problems.append(f"{', '.join(missing)} missing")
            groups = [f"/{name}" for name in GROUPS if name in file
                      and not isinstance(file[name], h5py.Group)]
            if groups:
                problems.append(f"{', '.join(groups)} should be a group, not a dataset")
            if "spec" in file and not (isinstance(file["spec"], h5py.Dataset)
                                       and file["spec"].shape == ()
                                       and file["spec"].dtype.kind in "OSU"):
                problems.append("/spec is not a YAML text dataset")
            records = None
            if "history/step" in file:
                step = file["history/step"]
                if not isinstance(step, h5py.Dataset) or step.ndim != 1 or \
                        step.dtype.kind not in "iu":
                    problems.append("/history/step is not a 1-D integer dataset")
                else:
                    records = step.shape[0]
            for group_name in ("metrics", "history/weights"):
                group = file.get(group_name)
                if group is None:
                    continue
                if not isinstance(group, h5py.Group):
                    problems.append(f"/{group_name} is not a group")
                    continue
                for name, item in group.items():
                    if not isinstance(item, h5py.Dataset) or item.ndim < 1 or \
                            item.dtype.kind not in "biuf":
                        problems.append(f"/{group_name}/{name} is not a numeric series")
                    elif records is not None and item.shape[0] != records:
                        problems.append(f"/{group_name}/{name} has {item.shape[0]} records, "
                                        f"/history/step {records}")
            if complete and not problems:
                problems += _non_finite(file, ("weights",))
                problems += [f"/summary/{name} is not finite"
                             for name, item in file["summary"].items()
                             if must_be_finite(name) and isinstance(item, h5py.Dataset)
                             and item.dtype.kind == "f" and not np.all(np.isfinite(item[()]))]
                for name, item in file.get("metrics", {}).items():   # the final figures
                    if item.shape[0] and not np.all(np.isfinite(item[-1])):
                        problems.append(f"/metrics/{name} is not finite at the last record")
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as error:
        raise DataError(f"{path}: corrupt results file ({' '.join(str(error).split())})"
                        ) from None
    if problems:
        raise DataError(f"{path}: not a valid plasticsim results file: "
                        + "; ".join(problems[:6])
                        + (f"; and {len(problems) - 6} more" if len(problems) > 6 else ""))
    return path


def _non_finite(file, groups) -> list[str]:
    """Datasets under ``groups`` that hold non-finite numbers (a complete run has none)."""
    found = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" and item.size and \
                not np.all(np.isfinite(item[()])):
            found.append(f"/{item.name.lstrip('/')} holds non-finite values")
    for group in groups:
        if group in file and isinstance(file[group], h5py.Group):
            file[group].visititems(visit)
        elif group in file and not isinstance(file[group], h5py.Group):
            found.append(f"/{group} is not a group")
    return found


def load(path: str | Path) -> Results:
    """Read a results file, checking its contract first (:func:`check_contract`).

    Raises
    ------
    DataError
        The file is missing, not a plasticsim results file, or corrupt.
    """
    path = check_contract(path)
    try:
        return _load(path)
    except SpecError as error:
        raise DataError(f"{path}: /spec is not a valid protocol ({error})") from None
    except (OSError, KeyError, ValueError, TypeError, AttributeError, IndexError,
            RuntimeError) as error:
        raise DataError(f"{path}: corrupt results file ({type(error).__name__}: "
                        f"{' '.join(str(error).split())[:300]})") from None


def _load(path: Path) -> Results:
    """Read a results file written by :func:`plasticsim.run`.

    Parameters
    ----------
    path : str or Path
        ``results.h5`` (or a run directory containing it).

    Raises
    ------
    DataError
        If the file is missing or not a plasticsim results file.
    """
    with h5py.File(path, "r") as file:
        spec_text = file["spec"][()]
        where = f"{path}:/spec"
        if isinstance(spec_text, bytes):
            spec_text = decode_text(spec_text, where)
        document, _ = parse_yaml(str(spec_text), where)
        if not isinstance(document, dict):
            raise DataError(f"{where}: not a protocol (expected a mapping of keys)")
        results = Results(
            path=path,
            attributes=dict(file.attrs),
            spec=protocol_from_document(document, source=where),
            weights=_read_group(file["weights"]) if "weights" in file else {},
            steps=file["history/step"][()] if "history/step" in file else np.zeros(0, int),
            history=_lazy_group(file, path, "history/weights"),
            activities=_lazy_group(file, path, "activities"),
            metrics=_read_group(file["metrics"]) if "metrics" in file else {},
            stimulus=_read_group(file["stimulus"]) if "stimulus" in file else {},
            populations={name: dict(group.attrs) for name, group in file["populations"].items()}
            if "populations" in file else {},
            summary=_read_group(file["summary"]) if "summary" in file else {},
            receptive_fields=_read_group(file["receptive_fields"])
            if "receptive_fields" in file else {},
            gabor=_read_group(file["analysis/gabor"]) if "analysis/gabor" in file else {},
        )
        if results.complete and results.spec.model.projections and "weights" not in file:
            raise DataError(f"{path}: not a valid plasticsim results file: /weights missing "
                            "(a complete run of a model with projections stores them)")
        results.attributes["spec_yaml"] = spec_text
        if "stimulus" in file:
            for name, group in file["stimulus"].items():
                results.stimulus_attributes[name] = dict(group.attrs)
                if "patch_shape" in group.attrs:
                    results.patch_shapes[name] = tuple(int(n) for n in group.attrs["patch_shape"])
        if "analysis" in file:
            results.analysis = _read_group(file["analysis"])
        if "probes" in file:
            for name, group in file["probes"].items():
                results.probes[name] = {**_read_group(group), "attributes": {
                    key: _attribute(value) for key, value in group.attrs.items()}}
        if "structure/sheets" in file:
            for name, dataset in file["structure/sheets"].items():
                results.sheets[name] = {"shape": tuple(int(n) for n in dataset[()]),
                                        "periodic": bool(dataset.attrs.get("periodic", False))}
        if "structure/linear_gaussian_layers" in file:
            for name, group in file["structure/linear_gaussian_layers"].items():
                layer = {key: _attribute(value) for key, value in group.attrs.items()}
                layer["chain"] = [str(item) for item in layer["chain"]]
                stimulus = results.stimulus.get(layer["input"], {})
                layer["signal_covariance"] = stimulus.get("signal_covariance")
                layer["noise_covariance"] = stimulus.get("noise_covariance")
                results.layers[name] = layer
    return results


def _attribute(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [item.decode() if isinstance(item, bytes) else item.item()
                if isinstance(item, np.generic) else item for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value

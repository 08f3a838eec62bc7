"""Named dimensions of a results file (HDF5 dimension scales), and its labelled-array view.

When a run completes, :func:`label_dimensions` attaches a dimension scale to every axis of
every dataset, so that netCDF readers (``xarray.open_dataset(path, engine="h5netcdf",
group=...)``) and h5py users see names, not ``phony_dim_*``. The scales live at the root of
the file (netCDF's rule: a group sees the dimensions of its ancestors):

- ``record``: the first axis of everything under ``history/``, ``metrics/`` and
  ``activities/``; its values are the sample counts of the records (as ``history/step``);
- one dimension per population, named after it (``input``, ``output``, …), of its size;
  a second axis over the same population is ``<population>_pre`` for a projection from a
  population to itself (lateral weights) and ``<population>_2`` otherwise (covariances);
- ``sample`` for the samples of a recorded step (``activities/<population>``);
- ``patch_row`` / ``patch_column`` for receptive fields shown as patches; ``mode`` and
  ``frequency`` for the summary's mode and population spectra, ``phase`` for the settling
  step sizes per phase;
- any other axis: ``<dataset name>_<axis>``.

An axis is named after a population when the dataset's path names a projection (its post
and pre populations) or a population (``stimulus/input/…``), or when exactly one population
has that size. Dimensions that are not also variables carry netCDF's ``NAME`` marker, so
netCDF readers show them as dimensions only.

:func:`to_xarray` reads a results file into one :class:`xarray.Dataset` whose variables are
the file's datasets under their paths (``"metrics/mutual_information_bits"``), with these
dimensions; compound tables become one variable per field (``"analysis/gabor/output.x0"``).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: netCDF-4's marker of a dimension scale that is not also a variable.
NETCDF_DIMENSION_ONLY = "This is a netCDF dimension but not a netCDF variable."
RECORD = "record"
RECORDED_GROUPS = ("history", "metrics", "activities")
#: Units and descriptions of well-known entries (attributes ``units`` and ``long_name``).
DESCRIPTIONS = {
    RECORD: ("samples", "training samples presented before the record"),
    "history/step": ("samples", "training samples presented before the record"),
}


#: Names of the axes of well-known 1-D entries, by the end of the dataset's name.
NAMED_AXES = {"mode_spectrum": "mode", "population_spectrum": "frequency", "alpha": "phase",
              "radial_spectrum": "radial_frequency",
              "radial_frequencies_cycles_per_pixel": "radial_frequency"}


def _units(path: str) -> tuple[str, str] | None:
    if path in DESCRIPTIONS:
        return DESCRIPTIONS[path]
    name = path.rsplit("/", 1)[-1]
    if name.endswith("_bits"):
        return "bit", name.replace("_", " ")
    if name.endswith("_nats"):
        return "nat", name.replace("_", " ")
    return None


def _is_scale(dataset: h5py.Dataset) -> bool:
    return dataset.attrs.get("CLASS") == b"DIMENSION_SCALE"


def dataset_dimensions(path: str, shape: tuple, populations: dict,
                       projections: dict) -> list[str]:
    """Dimension names of a dataset's axes (see the module docstring).

    Parameters
    ----------
    path : str
        Path of the dataset in the file.
    shape : tuple
    populations : dict
        Population name → size.
    projections : dict
        Projection name → (post population, pre population).
    """
    parts = path.split("/")
    names: list[str | None] = [None] * len(shape)
    first = 0
    if parts[0] in RECORDED_GROUPS and shape:
        names[0], first = RECORD, 1
    axes = list(range(first, len(shape)))
    projection = next((p for p in parts if p in projections), None)
    if projection is not None and len(axes) == 2:
        post, pre = projections[projection]
        if shape[axes[0]] == populations.get(post) and shape[axes[1]] == populations.get(pre):
            names[axes[0]] = post
            names[axes[1]] = f"{pre}_pre" if pre == post else pre
    if projection is None and parts[-1] == "weights" and len(axes) == 2:
        # Weights of no named projection (the closed-form optimum): the one projection
        # between two populations with this shape.
        matches = [(post, pre) for post, pre in projections.values() if post != pre
                   and (populations.get(post), populations.get(pre)) == shape[first:]]
        if len(matches) == 1:
            names[axes[0]], names[axes[1]] = matches[0]
    population = next((p for p in parts if p in populations), None)
    if parts[0] == "activities" and len(axes) == 2:
        names[axes[0]] = "sample"  # the samples of the record's last step (its batch)
    if parts[0] == "receptive_fields" and len(axes) == 3:
        names[axes[1]], names[axes[2]] = "patch_row", "patch_column"
    by_size: dict[int, list[str]] = {}
    for name, size in populations.items():
        by_size.setdefault(size, []).append(name)
    for axis in axes:
        if names[axis] is not None:
            continue
        size = shape[axis]
        if population is not None and populations[population] == size:
            candidate = population
        elif len(by_size.get(size, [])) == 1:
            candidate = by_size[size][0]
        elif len(axes) == 1 and any(parts[-1].endswith(k) for k in NAMED_AXES):
            candidate = next(v for k, v in NAMED_AXES.items() if parts[-1].endswith(k))
        else:
            candidate = f"{parts[-1]}_{axis}"
        if candidate in names:
            candidate = f"{candidate}_2"
        names[axis] = candidate
    return [str(name) for name in names]


def label_dimensions(file: h5py.File, populations: dict, projections: dict) -> None:
    """Attach named dimension scales to every dataset of an open results file."""
    datasets = []
    file.visititems(lambda name, item: datasets.append(name)
                    if isinstance(item, h5py.Dataset) and not _is_scale(item) else None)
    sizes: dict[str, int] = {}
    if "history/step" in file and RECORD not in file:
        record = file.create_dataset(RECORD, data=file["history/step"][()])
        record.make_scale(RECORD)
        record.attrs["units"], record.attrs["long_name"] = DESCRIPTIONS[RECORD]
    if RECORD in file:
        sizes[RECORD] = len(file[RECORD])
    for path in datasets:
        dataset = file[path]
        described = _units(path)
        if described is not None:
            dataset.attrs.setdefault("units", described[0])
            dataset.attrs.setdefault("long_name", described[1])
        if not dataset.shape:
            continue
        names = dataset_dimensions(path, dataset.shape, populations, projections)
        for axis, (name, size) in enumerate(zip(names, dataset.shape)):
            if sizes.get(name, size) != size or (name in file and name not in sizes):
                name = f"{name}_{size}"  # the same name with another size, or a clash
            if name not in sizes:
                if name not in file:
                    scale = file.create_dataset(name, data=np.zeros(size, dtype="f4"))
                    scale.make_scale(f"{NETCDF_DIMENSION_ONLY}{size:10d}")
                sizes[name] = size
            dataset.dims[axis].attach_scale(file[name])


def spec_dimensions(spec) -> tuple[dict, dict]:
    """(population → size, projection → (post, pre)) of a protocol's model."""
    model = spec.model
    return ({name: int(population.size) for name, population in model.populations.items()},
            {name: (projection.post, projection.pre)
             for name, projection in model.projections.items()})


def _dimension_names(dataset: h5py.Dataset, path: str) -> list[str]:
    names = []
    for axis, dimension in enumerate(dataset.dims):
        names.append(dimension[0].name.rsplit("/", 1)[-1] if len(dimension)
                     else f"{path}_dim{axis}")
    return names


def to_xarray(path: str | Path):
    """Every dataset of a results file as one :class:`xarray.Dataset` (see the module
    docstring): variables under their paths, named dimensions, the ``record`` coordinate
    (sample counts), the root attributes as the Dataset's attributes."""
    import xarray

    variables, coordinates = {}, {}
    with h5py.File(path, "r") as file:
        attributes = {key: _plain(value) for key, value in file.attrs.items()}

        def visit(name, item):
            if not isinstance(item, h5py.Dataset):
                return
            if _is_scale(item):
                if name == RECORD:
                    coordinates[RECORD] = xarray.Variable(
                        (RECORD,), item[()], {k: _plain(v) for k, v in item.attrs.items()
                                              if k not in ("CLASS", "NAME", "REFERENCE_LIST")})
                return
            value = item[()]
            if isinstance(value, bytes):
                value = value.decode()
            dims = _dimension_names(item, name)
            attrs = {key: _plain(v) for key, v in item.attrs.items()
                     if key not in ("DIMENSION_LIST", "CLASS", "NAME", "REFERENCE_LIST")}
            if item.dtype.names:  # a table: one variable per field
                for field in item.dtype.names:
                    variables[f"{name}.{field}"] = xarray.Variable(dims, value[field], attrs)
            else:
                variables[name] = xarray.Variable(dims, value, attrs)

        file.visititems(visit)
    return xarray.Dataset(variables, coords=coordinates, attrs=attributes)


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.bool_):
        return int(value)  # netCDF has no booleans
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [item.decode() if isinstance(item, bytes) else item for item in value]
    return value

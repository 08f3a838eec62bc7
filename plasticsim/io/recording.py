"""Streaming results to HDF5 (the public layout: docs/results.md).

The file is written under a temporary name (``results.h5.partial``) with the root attribute
``complete = False``; only a finished run sets ``complete = True`` and renames it to
``results.h5``. A run that fails keeps its data under ``results.incomplete.h5`` with the
error message in the root attribute ``error``.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import h5py
import numpy as np

from ..version import __version__

PARTIAL_NAME = "results.h5.partial"
FINAL_NAME = "results.h5"
FAILED_NAME = "results.incomplete.h5"


class Recorder:
    """Writes one run's results file as the simulation advances.

    Parameters
    ----------
    out_dir : Path
        Output directory (must exist).
    spec_yaml : str
        The fully resolved protocol as YAML text.
    attributes : dict
        Root attributes (seed, backend, ...).
    """

    def __init__(self, out_dir: Path, spec_yaml: str, attributes: dict):
        self.out_dir = Path(out_dir)
        self.partial_path = self.out_dir / PARTIAL_NAME
        self.file = h5py.File(self.partial_path, "w")
        self.file.attrs.update({
            "plasticsim_version": __version__,
            "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "complete": False,
            **attributes,
        })
        self.file.create_dataset("spec", data=spec_yaml, dtype=h5py.string_dtype())
        self.n_records = 0

    @classmethod
    def reopen_partial(cls, out_dir: Path, n_records: int) -> "Recorder":
        """Go on writing the ``results.h5.partial`` in ``out_dir`` (a resumed run), which holds
        ``n_records`` records."""
        recorder = cls.__new__(cls)
        recorder.out_dir = Path(out_dir)
        recorder.partial_path = recorder.out_dir / PARTIAL_NAME
        recorder.file = h5py.File(recorder.partial_path, "a")
        recorder.n_records = int(n_records)
        return recorder

    def write_populations(self, populations: dict) -> None:
        """``/populations/<name>``: size, kind and the neuron model's scalar parameters."""
        for name, population in populations.items():
            group = self.file.require_group(f"populations/{name}")
            for key, value in population.model_dump(mode="json").items():
                if isinstance(value, (int, float, str, bool)):
                    group.attrs[key] = value
            group.attrs.setdefault("output_noise_variance", 0.0)

    def write_layers(self, layers: list) -> None:
        """``/structure/linear_gaussian_layers/<population>``: what the closed-form analysis of
        stacked linear layers needs (chain of weights, noise variances, input covariances,
        budget)."""
        for layer in layers:
            group = self.file.require_group(
                f"structure/linear_gaussian_layers/{layer['population']}")
            group.attrs["projection"] = layer["projection"]
            group.attrs["chain"] = [name.rsplit(".weights", 1)[0] for name in layer["chain"]]
            group.attrs["noise_variances"] = layer["noise_variances"]
            group.attrs["input"] = layer["input"]
            if layer["budget"] is not None:
                group.attrs["budget_kind"] = layer["budget"]["kind"]
                group.attrs["budget_value"] = layer["budget"]["value"]
            if layer["patch_shape"] is not None:
                group.attrs["patch_shape"] = list(layer["patch_shape"])

    def write_entry(self, path: str, value, attributes: dict | None = None) -> None:
        """A dataset (array) or group (mapping of names to arrays) at ``path``."""
        if isinstance(value, dict):
            self.write_arrays(path, value, attributes)
            return
        parent, _, name = path.rpartition("/")
        self.write_arrays(parent, {name: value})
        if attributes:
            self.file[path].attrs.update(attributes)

    def record(self, step: int, metrics: dict, weights: dict | None,
               activities: dict | None = None) -> None:
        """Append one record: the sample count, scalar metrics and (optional) weight snapshots
        and population activities."""
        self._append("history/step", np.int64(step))
        for name, value in metrics.items():
            self._append(f"metrics/{name}", np.float64(value))
        for name, value in (weights or {}).items():
            self._append(f"history/weights/{name}", np.asarray(value))
        for name, value in (activities or {}).items():
            self._append(f"activities/{name}", np.asarray(value))
        self.n_records += 1
        self.file.flush()

    def _append(self, path: str, value) -> None:
        value = np.asarray(value)
        if path not in self.file:
            self.file.create_dataset(path, shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                                     dtype=value.dtype, chunks=(max(1, 64 // max(1, value.size // 1024 + 1)),) + value.shape,
                                     fletcher32=_checksummed(value))
        dataset = self.file[path]
        if dataset.shape[0] != self.n_records:
            raise RuntimeError(f"{path}: records out of step ({dataset.shape[0]} vs {self.n_records})")
        dataset.resize(self.n_records + 1, axis=0)
        dataset[self.n_records] = value

    def write_arrays(self, group: str, arrays: dict, attributes: dict | None = None) -> None:
        target = self.file.require_group(group) if group else self.file
        for name, value in arrays.items():
            if name in target:
                del target[name]
            value = np.asarray(value)
            target.create_dataset(name, data=value,
                                  fletcher32=_checksummed(value) and value.ndim > 0)
        target.attrs.update(attributes or {})

    def close(self) -> Path:
        """Close the partial file (e.g. so that the analysis can read it); see :meth:`reopen`."""
        self.file.close()
        return self.partial_path

    def reopen(self) -> None:
        self.file = h5py.File(self.partial_path, "a")

    def finish(self) -> Path:
        """Mark complete, close and rename to ``results.h5``."""
        self.file.attrs["complete"] = True
        self.file.close()
        final = self.out_dir / FINAL_NAME
        os.replace(self.partial_path, final)
        return final

    def fail(self, message: str) -> Path:
        """Keep what was recorded, marked incomplete, under ``results.incomplete.h5``."""
        if self.file.id.valid:
            self.file.attrs["complete"] = False
            self.file.attrs["error"] = message
            self.file.close()
        failed = self.out_dir / FAILED_NAME
        os.replace(self.partial_path, failed)
        return failed


def _checksummed(value: np.ndarray) -> bool:
    """Whether a dataset gets a Fletcher-32 checksum: numeric arrays with data, so that
    damaged bytes are an error on reading instead of numbers plotted silently (scalars and
    strings cannot be chunked, which the filter needs)."""
    return value.dtype.kind in "biuf" and value.size > 0

"""Streaming results to HDF5 (the public layout is documented in README.md).

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

from . import __version__

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

    def write_populations(self, populations: dict) -> None:
        for name, population in populations.items():
            group = self.file.require_group(f"populations/{name}")
            group.attrs["size"] = population.size
            group.attrs["kind"] = population.kind
            group.attrs["output_noise_variance"] = population.output_noise_variance

    def write_stimulus(self, population: str, stimulus, kind: str) -> None:
        group = self.file.require_group(f"stimulus/{population}")
        group.attrs["kind"] = kind
        for name in ("signal_covariance", "noise_covariance"):
            if getattr(stimulus, name, None) is not None:
                group.create_dataset(name, data=getattr(stimulus, name))

    def record(self, step: int, metrics: dict, weights: dict | None) -> None:
        """Append one record: the sample count, scalar metrics and (optional) weight snapshots."""
        self._append("history/step", np.int64(step))
        for name, value in metrics.items():
            self._append(f"metrics/{name}", np.float64(value))
        for name, value in (weights or {}).items():
            self._append(f"history/weights/{name}", np.asarray(value))
        self.n_records += 1
        self.file.flush()

    def _append(self, path: str, value) -> None:
        value = np.asarray(value)
        if path not in self.file:
            self.file.create_dataset(path, shape=(0,) + value.shape, maxshape=(None,) + value.shape,
                                     dtype=value.dtype, chunks=(max(1, 64 // max(1, value.size // 1024 + 1)),) + value.shape)
        dataset = self.file[path]
        if dataset.shape[0] != self.n_records:
            raise RuntimeError(f"{path}: records out of step ({dataset.shape[0]} vs {self.n_records})")
        dataset.resize(self.n_records + 1, axis=0)
        dataset[self.n_records] = value

    def write_arrays(self, group: str, arrays: dict, attributes: dict | None = None) -> None:
        target = self.file.require_group(group)
        for name, value in arrays.items():
            if name in target:
                del target[name]
            target.create_dataset(name, data=np.asarray(value))
        target.attrs.update(attributes or {})

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

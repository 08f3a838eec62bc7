"""Checkpoints of a running protocol, and resuming a run from one.

A checkpoint (``OUT/checkpoint.npz``, or in the staging directory of an ``--overwrite`` run)
holds everything the rest of the run depends on, taken at a record boundary:

- every state array of every plan (weights, running averages, monitors, …, all members);
- each member's random streams (the bit generators' states), the sample, warm-up and step
  counters;
- each member's results file as it was then (streamed in whole: records, stimulus arrays,
  …) and its record count, the closed-form optima, the last metrics and the wall time so far;
- the fully resolved protocol (YAML), its SHA-256, the backend that ran it and the plasticsim
  version.

The file is a zip (``.npy`` members for the arrays, the results files as they are,
``meta.json``; NumPy's ``np.load`` reads the arrays) with a SHA-256 over its contents in
``meta.json``. It is written to a temporary file and renamed over the previous one, so a kill
at any moment leaves the previous checkpoint or the new one, whole. :func:`resume` rebuilds the plans from
the stored protocol on the stored backend, restores all of the above and goes on training:
the chunks are the same record-sized chunks and every random number comes from the same
stream state, so the results equal an uninterrupted run's bit for bit (same backend, dtype
and machine). When the run completes, its checkpoint is removed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

from .errors import DataError, SpecError
from .io import output
from .io.recording import FAILED_NAME, FINAL_NAME, PARTIAL_NAME, Recorder
from .version import __version__


def protocol_hash(spec) -> str:
    """SHA-256 of the fully resolved protocol's YAML: what a checkpoint must belong to."""
    from .spec.loading import spec_to_yaml

    return hashlib.sha256(spec_to_yaml(spec).encode()).hexdigest()

CHECKPOINT_NAME = output.CHECKPOINT_NAME
#: Layout version of the checkpoint file.
FORMAT = 1
#: The checkpoint's description inside the zip.
META_NAME = "meta.json"


class Checkpointer:
    """Saves checkpoints of a run at the record boundaries its protocol asks for.

    Parameters
    ----------
    directory : Path
        The directory the run writes into (``OUT`` or its staging directory).
    spec : ProtocolSpec
        The run's fully resolved protocol.
    simulations : list of Simulation
    runs : list of plasticsim.run._MemberRun
    last_samples : int
        Sample count of the last checkpoint (a resumed run's starting point).
    """

    def __init__(self, directory: Path, spec, simulations: list, runs: list,
                 last_samples: int = 0):
        self.path = Path(directory) / CHECKPOINT_NAME
        self.directory = Path(directory)
        self.spec, self.simulations, self.runs = spec, simulations, runs
        self.config = spec.checkpoint
        self.last_samples = last_samples
        self.last_time = time.monotonic()
        self.saved = 0

    def offer(self, samples: int) -> None:
        """Save a checkpoint at this record boundary if one is due."""
        config = self.config
        if not config.enabled:
            return
        due = (config.every is not None and samples - self.last_samples >= config.every) or \
            (config.seconds is not None and time.monotonic() - self.last_time >= config.seconds)
        if due:
            self.save(samples)

    def save(self, samples: int) -> Path:
        """Write the checkpoint of the run at ``samples`` training samples, atomically."""
        from .spec.loading import spec_to_yaml

        arrays = {}
        simulations = []
        for number, simulation in enumerate(self.simulations):
            for name in simulation.plan.states:
                arrays[f"simulation{number}/{name}"] = np.array(simulation.read(name))
            simulations.append({
                "samples_done": simulation.samples_done,
                "warmup_samples_done": simulation.warmup_samples_done,
                "steps_done": simulation.steps_done,
                "streams": [[rng.bit_generator.state for rng in member]
                            for member in simulation.stream_rngs]})
        members, files = [], {}
        for number, member_run in enumerate(self.runs):
            member_run.recorder.file.flush()  # the bytes on disk are then a whole file
            files[f"member{number}/results.h5"] = member_run.recorder.partial_path
            members.append({
                "index": member_run.member.index,
                "directory": str(member_run.directory.relative_to(self.directory)),
                "records": member_run.recorder.n_records,
                "optima": member_run.optima,
                "last_metrics": member_run.last_metrics,
                "hints": member_run.hints,
                "elapsed_seconds": time.perf_counter() - member_run.started})
        digest = hashlib.sha256()
        _digest_arrays(digest, arrays)
        for name in sorted(files):
            with open(files[name], "rb") as handle:
                _digest_stream(digest, name, handle)
        meta = {"format": FORMAT, "plasticsim_version": __version__,
                "protocol": self.spec.name, "protocol_sha256": protocol_hash(self.spec),
                "spec_yaml": spec_to_yaml(self.spec),
                "backend": self.simulations[0].backend_name, "samples": samples,
                "saved_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "simulations": simulations, "members": members,
                "content_sha256": digest.hexdigest()}
        # A zip (as .npz) written member by member: the results files are streamed in, never
        # held in memory, however long the run has grown them.
        temporary = self.path.with_name(self.path.name + ".tmp")
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, value in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.ascontiguousarray(value),
                                              allow_pickle=False)
            for name, source in files.items():
                archive.write(source, name)
            archive.writestr(META_NAME, json.dumps(meta))
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self.last_samples, self.last_time = samples, time.monotonic()
        self.saved += 1
        return self.path


@dataclass
class Checkpoint:
    """A checkpoint read back and checked (see :func:`find`).

    Attributes
    ----------
    path : Path
    out : Path
        The run directory the user named.
    directory : Path
        The directory the run writes into (``out`` or its staging directory).
    meta : dict
    arrays : dict
    spec : ProtocolSpec
    """

    path: Path
    out: Path
    directory: Path
    meta: dict
    arrays: dict
    spec: object


def find(out: str | Path) -> Checkpoint:
    """The checkpoint of the run in ``out``, read and checked; nothing is written.

    Raises
    ------
    DataError
        No checkpoint, a corrupt one, one from another plasticsim version, or one that
        belongs to another protocol than the run in the directory.
    """
    out = Path(out)
    if not out.is_dir():
        raise DataError(f"{out}: no such run directory")
    for directory in (out / output.STAGING_NAME, out):
        if (directory / CHECKPOINT_NAME).is_file():
            return _read(directory / CHECKPOINT_NAME, out, directory)
    if (out / FINAL_NAME).is_file() or (out / output.INDEX_NAME).is_file():
        raise DataError(f"{out}: no checkpoint to resume from (the run there is complete)")
    raise DataError(f"{out}: no checkpoint to resume from (checkpoints are written every "
                    f"checkpoint.seconds or checkpoint.every samples of a run)")


def _read(path: Path, out: Path, directory: Path) -> Checkpoint:
    from .spec.loading import protocol_from_document

    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(META_NAME))
            version, content = meta["plasticsim_version"], meta["content_sha256"]
            digest, spec_yaml = meta["protocol_sha256"], meta["spec_yaml"]
            arrays = {name[:-4]: np.lib.format.read_array(archive.open(name),
                                                          allow_pickle=False)
                      for name in archive.namelist() if name.endswith(".npy")}
            files = sorted(name for name in archive.namelist()
                           if name.endswith("/results.h5"))
            check = hashlib.sha256()
            _digest_arrays(check, arrays)
            for name in files:
                with archive.open(name) as handle:  # zipfile checks the CRC at the end
                    _digest_stream(check, name, handle)
        if check.hexdigest() != content:
            raise ValueError("the contents do not match their SHA-256")
    except Exception as error:  # zip, CRC, JSON or key errors: all mean a damaged file
        raise DataError(f"{path}: corrupt checkpoint ({type(error).__name__}: "
                        f"{str(error)[:120]}); run the protocol again") from None
    if meta.get("format") != FORMAT or version != __version__:
        raise DataError(f"{path}: checkpoint written by plasticsim {version} (format "
                        f"{meta.get('format')}); this is plasticsim {__version__} (format "
                        f"{FORMAT}): resume it with that version or run the protocol again")
    try:
        spec = protocol_from_document(yaml.safe_load(spec_yaml), source=f"{path}:spec")
    except SpecError as error:
        raise DataError(f"{path}: corrupt checkpoint (its protocol does not load: "
                        f"{error})") from None
    if protocol_hash(spec) != digest:
        raise DataError(f"{path}: corrupt checkpoint (its protocol does not match its "
                        f"SHA-256)")
    for member in meta["members"]:
        member_directory = directory / member["directory"]
        for name in (PARTIAL_NAME, FAILED_NAME, FINAL_NAME):
            theirs = _protocol_of(member_directory / name)
            if theirs is not None and theirs != digest:
                raise DataError(f"{path}: checkpoint of protocol {meta['protocol']!r} "
                                f"(sha256 {digest[:12]}), but {member_directory / name} "
                                f"belongs to another protocol (sha256 {theirs[:12]})")
    return Checkpoint(path, out, directory, meta, arrays, spec)


def _digest_arrays(digest, arrays: dict) -> None:
    """Feed the names, dtypes, shapes and bytes of a checkpoint's arrays to ``digest``."""
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())


def _digest_stream(digest, name: str, handle, block: int = 1 << 20) -> None:
    digest.update(f"{name};".encode())
    while chunk := handle.read(block):
        digest.update(chunk)


def _protocol_of(path: Path) -> str | None:
    """The protocol hash a results file records (None: no file, unreadable or older)."""
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as file:
            value = file.attrs.get("protocol_sha256")
    except OSError:  # a file cut by the kill: the checkpoint holds its own copy
        return None
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def restore(checkpoint: Checkpoint, simulations: list, runs: list) -> Checkpointer:
    """Put a checkpoint's state back into freshly built simulations and member runs.

    Everything is checked before anything is written; then the members' partial results files
    are restored from the checkpoint and the run can train on from ``checkpoint.meta
    ["samples"]`` (:func:`plasticsim.run.resume`).

    Returns
    -------
    Checkpointer
        The checkpointer of the resumed run, counting from the checkpoint's sample.

    Raises
    ------
    DataError
        A checkpoint whose arrays do not fit the plans (nothing is changed then).
    """
    meta, arrays = checkpoint.meta, checkpoint.arrays
    spec = checkpoint.spec
    _check_shapes(checkpoint, simulations, runs)
    # Checked: from here on the directory changes.
    for number, (simulation, stored) in enumerate(zip(simulations, meta["simulations"])):
        for name in simulation.plan.states:
            simulation.write(name, arrays[f"simulation{number}/{name}"])
        simulation.samples_done = stored["samples_done"]
        simulation.warmup_samples_done = stored["warmup_samples_done"]
        simulation.steps_done = stored["steps_done"]
        for rngs, states in zip(simulation.stream_rngs, stored["streams"]):
            for rng, state in zip(rngs, states):
                rng.bit_generator.state = state
    for number, (member_run, stored) in enumerate(zip(runs, meta["members"])):
        directory = member_run.directory
        directory.mkdir(parents=True, exist_ok=True)
        partial = directory / PARTIAL_NAME
        temporary = partial.with_name(partial.name + ".tmp")
        with zipfile.ZipFile(checkpoint.path) as archive, \
                archive.open(f"member{number}/results.h5") as source, \
                open(temporary, "wb") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        os.replace(temporary, partial)
        (directory / FAILED_NAME).unlink(missing_ok=True)  # the interrupted attempt's file
        member_run.recorder = Recorder.reopen_partial(directory, stored["records"])
        member_run.optima = stored["optima"]
        member_run.last_metrics = stored["last_metrics"]
        member_run.hints = stored.get("hints", {})
        member_run.started = time.perf_counter() - stored["elapsed_seconds"]
    return Checkpointer(checkpoint.directory, spec, simulations, runs,
                        last_samples=meta["samples"])


def _check_shapes(checkpoint: Checkpoint, simulations: list, runs: list) -> None:
    """Refuse a checkpoint whose arrays do not fit the plans its protocol builds."""
    meta, arrays = checkpoint.meta, checkpoint.arrays
    problem = None
    if len(meta["simulations"]) != len(simulations) or len(meta["members"]) != len(runs):
        problem = "a different number of plans or members"
    else:
        for number, simulation in enumerate(simulations):
            for name, state in simulation.plan.states.items():
                stored = arrays.get(f"simulation{number}/{name}")
                current = simulation.read(name)
                if stored is None or stored.shape != current.shape or \
                        stored.dtype != current.dtype:
                    problem = f"state {name!r} is missing or has another shape"
                    break
            streams = meta["simulations"][number]["streams"]
            if problem is None and [len(s) for s in streams] != \
                    [len(s) for s in simulation.stream_rngs]:
                problem = "another number of random streams"
        with zipfile.ZipFile(checkpoint.path) as archive:
            stored_files = set(archive.namelist())
        for number in range(len(runs)):
            if problem is None and f"member{number}/results.h5" not in stored_files:
                problem = f"member {number} has no results file"
    if problem:
        raise DataError(f"{checkpoint.path}: corrupt checkpoint ({problem})")

"""Parameter sweeps run as Dask tasks, and the sweep's results as one labelled Dataset.

A sweep is every combination of the grid's values (``--grid KEY=V1,V2,…``, any key of the
resolved protocol, schedule keys included) times every seed. Each member is an ordinary run
of the protocol with those values set (``--set KEY=V``, ``seed=S``), written to
``OUT/members/<k>/`` exactly as ``plasticsim run`` writes a run, so a member's results equal
a run of that member alone. Members run as tasks on a Dask cluster: by default a
``dask.distributed.LocalCluster`` of one single-threaded worker process per core, or an
existing cluster given by its scheduler address (for a SLURM cluster, start one with
dask-jobqueue and pass ``cluster.scheduler_address``; see :func:`sweep`).

``OUT/sweep.json`` lists the grid, the seeds and every member (values, seed, directory,
status, error, wall time). Running the same sweep again skips members whose complete results
file belongs to the same member protocol, resumes members that left a checkpoint and runs
the rest; one member failing is recorded and does not stop the others. On a backend that
steps stacked members together (``array``), members that differ only in their seed go to a
worker in batches and run stacked along the plan's member axis
(:func:`plasticsim.run.run_batch`), each still written as its own run, equal to it.
:func:`load_sweep` gives one :class:`xarray.Dataset` with a dimension per grid key and one
for seeds.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import DataError, PlasticsimError, SpecError

SWEEP_NAME = "sweep.json"
MEMBERS_DIRECTORY = "members"


@dataclass(frozen=True)
class GridAxis:
    """One grid dimension: its name (the xarray dimension), protocol key and values."""

    name: str
    key: str
    values: tuple


def parse_grid(text: str) -> GridAxis:
    """``[NAME:]KEY=V1,V2,…`` (values parsed as YAML) → :class:`GridAxis`; the dimension is
    called NAME, or the key's last part."""
    if "=" not in text:
        raise SpecError(f"--grid {text}: expected [NAME:]KEY=V1,V2,...", file="--grid")
    head, _, values = text.partition("=")
    name, _, key = head.rpartition(":")
    key = key.strip()
    name = name.strip() or key.split(".")[-1]
    parsed = tuple(yaml.safe_load(value) for value in values.split(",") if value.strip())
    if not parsed:
        raise SpecError(f"--grid {text}: give at least one value", file="--grid")
    return GridAxis(name, key, parsed)


def check_keys(spec, axes: list[GridAxis]) -> None:
    """Refuse a grid key that the resolved protocol does not have, naming the nearest."""
    from .spec.loading import grid_key_problem
    for axis in axes:
        problem = grid_key_problem(spec, axis.key)
        if problem is not None:
            raise SpecError(problem, file="--grid", key_path=axis.key)


@dataclass
class SweepResults:
    """A finished (or partly failed) sweep: ``sweep.json`` and its member entries."""

    path: Path
    index: dict

    @property
    def members(self) -> list:
        return self.index["members"]

    @property
    def failed(self) -> list:
        return [member for member in self.members if member["status"] == "failed"]


def _member_document(base: dict, axes: list[GridAxis], values: tuple, seed: int) -> dict:
    from .spec.loading import apply_overrides, protocol_from_document
    document = json.loads(json.dumps(base))
    overrides = [f"{axis.key}={json.dumps(value)}" for axis, value in zip(axes, values)]
    apply_overrides(document, overrides + [f"seed={seed}"], {})
    document["ensemble"] = document["sweep"] = None  # a member is one run
    label = ",".join(f"{axis.name}={value}" for axis, value in zip(axes, values))
    try:  # the member must be a valid protocol before anything runs
        spec = protocol_from_document(document, source="sweep grid")
    except SpecError as error:
        raise SpecError(f"sweep member {label},seed={seed}: {error.message}",
                        file="--grid", key_path=error.key_path) from None
    return spec.model_dump(mode="json")


def run_member(document: dict, directory: str, figures: bool,
               requested: dict | None = None) -> dict:
    """One sweep member (a Dask task): skip it if done, resume it from a checkpoint, or run
    it. Returns its status, summary and wall time; a failure is returned, not raised.

    ``requested``: the sweep's request (:func:`plasticsim.io.provenance.invocation`), which
    the member's results file records instead of the worker's command line."""
    from threadpoolctl import threadpool_limits

    from .checkpoint import protocol_hash
    from .io.provenance import invoked_by
    from .run import resume, run
    from .spec.loading import protocol_from_document

    started = time.perf_counter()
    directory = Path(directory)
    try:
        spec = protocol_from_document(document, source="sweep member")
        digest = protocol_hash(spec)
        done = _completed(directory, digest)
        if done is not None:
            return {"status": "skipped", "summary": done, "wall_seconds": 0.0}
        # One BLAS thread per member: the cluster runs one member per core.
        with threadpool_limits(1), invoked_by(requested or {}):
            if _has_checkpoint(directory):
                try:
                    results = resume(directory, progress=False, figures=figures)
                    status = "resumed"
                except DataError:  # a checkpoint of another member protocol: run afresh
                    results = run(spec, directory, overwrite=True, progress=False,
                                  figures=figures)
                    status = "ran"
            else:
                results = run(spec, directory, overwrite=True, progress=False,
                              figures=figures)
                status = "ran"
        return {"status": status, "summary": _plain(results.summary),
                "wall_seconds": time.perf_counter() - started}
    except (PlasticsimError, OSError, ValueError, RuntimeError) as error:
        return {"status": "failed", "error": f"{type(error).__name__}: {error}",
                "wall_seconds": time.perf_counter() - started}


def _has_checkpoint(directory: Path) -> bool:
    """Whether an interrupted run of a member left a checkpoint (in place or staged)."""
    from .checkpoint import CHECKPOINT_NAME
    from .io import output
    return any((d / CHECKPOINT_NAME).is_file()
               for d in (directory, directory / output.STAGING_NAME))


def batches(members: list, size: int) -> list[list]:
    """Members in groups of at most ``size`` whose protocols differ only in their seed, in
    member order within each group."""
    groups: dict[str, list] = {}
    for member in members:
        shape = dict(member["document"], seed=None)
        groups.setdefault(json.dumps(shape, sort_keys=True), []).append(member)
    size = max(1, int(size))
    return [group[start:start + size] for group in groups.values()
            for start in range(0, len(group), size)]


def _auto_batch(client, members: int, backend: str) -> int:
    """Members per task: 1 unless the backend steps stacked members together
    (:func:`plasticsim.backends.stacks_members`: batching then makes each member cheaper),
    then about two tasks per worker thread (some balance if members take different times),
    or 1 where the cluster has no workers yet (one still scaling up)."""
    from .backends import stacks_members
    if not stacks_members(backend):
        return 1
    try:
        threads = sum(client.nthreads().values())
    except Exception:  # a cluster that cannot say: no batching
        threads = 0
    return max(1, -(-members // (2 * threads))) if threads else 1


def run_batch_task(documents: list, directories: list, figures: bool,
                   requested: dict | None = None) -> list[dict]:
    """Sweep members as one Dask task: complete ones are skipped, ones with a checkpoint
    resumed alone, the rest run as one batch (:func:`plasticsim.run.run_batch`). If the batch
    fails, its members run again one by one, so that a failure is recorded for the member
    that caused it. Returns one outcome per member, as :func:`run_member`."""
    from threadpoolctl import threadpool_limits

    from .checkpoint import protocol_hash
    from .io.provenance import invoked_by
    from .run import run_batch
    from .spec.loading import protocol_from_document

    outcomes: list = [None] * len(documents)
    pending = []
    for position, (document, directory) in enumerate(zip(documents, directories)):
        directory = Path(directory)
        try:
            spec = protocol_from_document(document, source="sweep member")
            done = _completed(directory, protocol_hash(spec))
        except (PlasticsimError, OSError, ValueError) as error:
            outcomes[position] = {"status": "failed", "error": f"{type(error).__name__}: "
                                                               f"{error}", "wall_seconds": 0.0}
            continue
        if done is not None:
            outcomes[position] = {"status": "skipped", "summary": done, "wall_seconds": 0.0}
        elif _has_checkpoint(directory):
            outcomes[position] = run_member(document, str(directory), figures, requested)
        else:
            pending.append((position, spec))
    if len(pending) > 1:
        started = time.perf_counter()
        try:
            with threadpool_limits(1), invoked_by(requested or {}):
                results = run_batch([spec for _, spec in pending],
                                    [directories[position] for position, _ in pending],
                                    figures=figures)
            share = (time.perf_counter() - started) / len(pending)
            for (position, _), result in zip(pending, results):
                outcomes[position] = {"status": "ran", "summary": _plain(result.summary),
                                      "wall_seconds": share, "batch_members": len(pending)}
            pending = []
        except (PlasticsimError, OSError, ValueError, RuntimeError):
            pass   # run one by one below: the member that fails is the one recorded
    for position, _ in pending:
        outcomes[position] = run_member(documents[position], directories[position], figures,
                                        requested)
    return outcomes


def _completed(directory: Path, digest: str) -> dict | None:
    """The summary of a complete run of protocol ``digest`` in ``directory``, else None."""
    from .checkpoint import _protocol_of
    results, summary = directory / "results.h5", directory / "summary.json"
    if not summary.is_file() or _protocol_of(results) != digest:
        return None
    import h5py
    try:
        with h5py.File(results, "r") as file:
            if not file.attrs.get("complete", False):
                return None
        return json.loads(summary.read_text())
    except (OSError, ValueError):
        return None


def _plain(value):
    import numpy as np
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _client(scheduler: str | None, workers: int | None, timeout: float):
    """A Dask client: to ``scheduler``, or to a new LocalCluster (returned to close)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PlasticsimError("plasticsim sweep needs Dask: pip install "
                              "'plasticsim[dask]'") from None
    if scheduler:
        # Client's own timeout covers connecting, not a peer that accepts the connection and
        # never answers the handshake: bound the whole attempt from outside.
        import concurrent.futures
        import threading
        outcome: concurrent.futures.Future = concurrent.futures.Future()

        def connect():
            try:
                outcome.set_result(Client(scheduler, timeout=timeout))
            except BaseException as error:  # handed to the waiting thread
                outcome.set_exception(error)

        threading.Thread(target=connect, daemon=True).start()
        try:
            return outcome.result(timeout=timeout + 2.0), None  # 2 s for the handshake
        except (OSError, TimeoutError, ValueError, concurrent.futures.TimeoutError) as error:
            raise PlasticsimError(f"--scheduler {scheduler}: no Dask scheduler answered "
                                  f"within {timeout + 2.0:g} s ({type(error).__name__})") \
                from None
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                           processes=True, dashboard_address=None)
    return Client(cluster), cluster


@dataclass
class SweepPlan:
    """What a sweep will run: the resolved protocol, grid axes, seeds, sweep directory and
    members (``index``, ``values``, ``seed``, ``directory``, ``document``: the member's
    protocol)."""

    spec: object
    axes: list
    seeds: list
    out: Path
    members: list


def plan_sweep(protocol, out: str | Path | None = None,
               grid: list[GridAxis] | list[str] | None = None, *,
               seeds: list[int] | None = None, overrides: list[str] | None = None
               ) -> SweepPlan:
    """The members of a sweep, checked, nothing run (arguments and defaults as for
    :func:`sweep`: the protocol's ``sweep:`` block fills in what is not given).

    Raises
    ------
    SpecError
        As :func:`sweep`.
    """
    from .run import resolve_spec

    spec, _, _ = resolve_spec(protocol, overrides)
    block = spec.sweep
    if grid is None and block is not None:
        axes = [GridAxis(*axis) for axis in block.axes()]
    else:
        axes = [parse_grid(axis) if isinstance(axis, str) else axis for axis in grid or []]
    check_keys(spec, axes)
    if seeds is None and block is not None:
        seeds = block.seed_list or (list(range(spec.seed, spec.seed + block.seeds))
                                    if block.seeds else None)
    if out is None:
        if block is None or block.out is None:
            raise SpecError("no sweep directory: give --out (out= from Python) or sweep.out "
                            "in the protocol", file="--out")
        out = block.out
    names = [axis.name for axis in axes]
    if len(set(names)) != len(names) or "seed" in names:
        raise SpecError(f"--grid: dimension names must differ from each other and from "
                        f"'seed' ({', '.join(names)}); name them NAME:KEY=…", file="--grid")
    seeds = list(seeds) if seeds else [spec.seed]
    base = spec.model_dump(mode="json")
    members = []
    for values in itertools.product(*(axis.values for axis in axes)):
        for seed in seeds:
            members.append({"index": len(members),
                            "values": dict(zip(names, values)), "seed": seed,
                            "directory": f"{MEMBERS_DIRECTORY}/{len(members)}",
                            "document": _member_document(base, axes, values, seed)})
    return SweepPlan(spec, axes, seeds, Path(out), members)


def sweep(protocol, out: str | Path | None = None,
          grid: list[GridAxis] | list[str] | None = None, *,
          seeds: list[int] | None = None, overrides: list[str] | None = None,
          scheduler: str | None = None, workers: int | None = None,
          scheduler_timeout: float = 10.0, figures: bool = False,
          progress: bool = True, batch_size: int | None = None) -> SweepResults:
    """Run a grid × seeds sweep of a protocol as Dask tasks.

    Parameters
    ----------
    protocol : path or ProtocolSpec
    out : path, optional
        Sweep directory: ``sweep.json`` and ``members/<k>/``. Default: the protocol's
        ``sweep.out``.
    grid : list of GridAxis or of "[NAME:]KEY=V1,V2,…" strings, optional
        Default: the protocol's ``sweep.grid`` (none without a ``sweep:`` block; ``[]``: no
        grid, whatever the block says).
    seeds : list of int, optional
        Default: the protocol's ``sweep.seeds`` or ``sweep.seed_list``, else its seed.
    overrides : list of str, optional
        ``--set`` overrides applied to every member.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``). For SLURM::

            from dask_jobqueue import SLURMCluster
            cluster = SLURMCluster(cores=1, memory="2GB", walltime="02:00:00")
            cluster.scale(jobs=24)
            plasticsim.sweep(..., scheduler=cluster.scheduler_address)

        The sweep directory must then be on a file system the workers share.
    workers : int, optional
        Worker processes of the LocalCluster (default: one per core).
    scheduler_timeout : float
        Seconds to wait for ``scheduler`` to accept the connection (2 s more are given to
        its handshake).
    figures : bool
        Render each member's figures.
    batch_size : int, optional
        Most members one Dask task runs. Members that differ only in their seed run as one
        batch, stacked along the plan's member axis (:func:`plasticsim.run.run_batch`: each
        member's results equal its run alone); batches save no checkpoints. Default: for a
        backend that steps stacked members together (``array``, ``array:torch``, …) the
        members spread over about two tasks per worker; for the others (numpy, numba,
        brian2: members one after another, so stacking saves nothing) 1, every member its
        own task, with checkpoints.

    Raises
    ------
    SpecError
        A grid key the protocol does not have (the nearest valid key is named), a value
        that makes an invalid member protocol, or no ``out``; nothing runs then.

    Examples
    --------
    A protocol can carry its sweep (``--grid``, ``--seeds`` and ``--out`` replace it)::

        sweep:
          grid: {"noise:stimuli.input.input_noise.variance": [0.01, 0.1, 1.0]}
          seeds: 3
          out: results/noise_sweep

    >>> plasticsim.sweep("protocols/noise.yaml")  # doctest: +SKIP
    PlasticsimError
        ``scheduler`` does not answer within ``scheduler_timeout``.
    """
    from tqdm.auto import tqdm

    from .io import output, provenance

    plan = plan_sweep(protocol, out, grid, seeds=seeds, overrides=overrides)
    if batch_size is not None and not 1 <= batch_size <= 10**6:
        raise SpecError(f"--batch-size {batch_size}: expected an integer in [1, 1000000]",
                        file="--batch-size")
    # Asked for here, run on the workers: each member records this request (its command
    # line, the protocol file's commit), not the worker process's.
    requested = provenance.invocation(
        None if type(protocol).__name__ == "ProtocolSpec" else protocol,
        provenance.python_call("sweep", protocol, out, grid=_shown_grid(grid), seeds=seeds,
                               overrides=overrides or None, scheduler=scheduler))
    spec, axes, seeds, members, out = (plan.spec, plan.axes, plan.seeds, plan.members,
                                       plan.out)
    client, cluster = _client(scheduler, workers, scheduler_timeout)
    out.mkdir(parents=True, exist_ok=True)
    index = {"protocol": spec.name, "grid": [{"name": a.name, "key": a.key,
                                               "values": list(a.values)} for a in axes],
             "seeds": seeds, "members": []}
    for member in members:
        index["members"].append({key: member[key] for key in ("index", "values", "seed",
                                                                "directory")}
                                | {"status": "pending"})
    _write_index(out, index)
    started = time.perf_counter()
    try:
        futures = {}
        if batch_size is None:
            batch_size = _auto_batch(client, len(members), spec.backend)
        for batch in batches(members, batch_size):
            future = client.submit(run_batch_task, [m["document"] for m in batch],
                                   [str(out / m["directory"]) for m in batch], figures,
                                   requested, key=f"plasticsim-members-{out.name}-"
                                   f"{batch[0]['index']}-{time.time_ns()}", pure=False)
            futures[future] = [member["index"] for member in batch]
        from dask.distributed import as_completed
        with tqdm(total=len(members), unit="member", disable=not progress,
                  desc=f"sweep {spec.name}") as bar:
            for future in as_completed(futures):
                entries = [index["members"][k] for k in futures[future]]
                try:
                    for entry, outcome in zip(entries, future.result()):
                        entry.update(outcome)
                except Exception as error:  # the worker itself died: recorded, not raised
                    for entry in entries:
                        entry.update({"status": "failed",
                                      "error": f"{type(error).__name__}: {error}"})
                _write_index(out, index)
                bar.update(len(entries))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    index["wall_seconds"] = time.perf_counter() - started
    _write_index(out, index)
    output.recover(out)
    return SweepResults(out / SWEEP_NAME, index)


def _shown_grid(grid) -> list[str] | None:
    """A sweep's ``grid`` argument as the ``--grid`` strings it stands for."""
    if grid is None:
        return None
    return [axis if isinstance(axis, str) else
            f"{axis.name}:{axis.key}=" + ",".join(json.dumps(v) for v in axis.values)
            for axis in grid]


def _write_index(out: Path, index: dict) -> None:
    temporary = out / (SWEEP_NAME + ".tmp")
    temporary.write_text(json.dumps(index, indent=1, default=str) + "\n")
    os.replace(temporary, out / SWEEP_NAME)


def load_sweep(directory: str | Path):
    """A sweep's members as one :class:`xarray.Dataset`.

    Dimensions: one per grid key (named as in the grid, coordinates its values), ``seed``,
    and ``record`` for the metric series. Variables: every numeric scalar of the members'
    summaries (NaN where a member failed or has not finished) and every metric series
    (``metrics/<name>``) of the members' results files.

    Raises
    ------
    DataError
        No ``sweep.json`` in ``directory``.
    """
    import numpy as np
    import xarray

    from .io.results import load

    directory = Path(directory)
    path = directory / SWEEP_NAME
    if not path.is_file():
        raise DataError(f"{directory}: not a sweep directory (no {SWEEP_NAME})")
    index = json.loads(path.read_text())
    dims = [axis["name"] for axis in index["grid"]] + ["seed"]
    coords = {axis["name"]: axis["values"] for axis in index["grid"]}
    coords["seed"] = index["seeds"]
    shape = tuple(len(coords[name]) for name in dims)
    summaries, series, steps = {}, {}, None
    status = np.full(shape, "", dtype=object)
    for member in index["members"]:
        position = tuple([coords[axis["name"]].index(member["values"][axis["name"]])
                          for axis in index["grid"]] + [index["seeds"].index(member["seed"])])
        status[position] = member["status"]
        results_path = directory / member["directory"] / "results.h5"
        if member["status"] == "failed" or not results_path.is_file():
            continue
        results = load(results_path)
        for key, value in results.summary.items():
            if key not in coords and np.ndim(value) == 0 and \
                    np.issubdtype(np.asarray(value).dtype, np.number):
                summaries.setdefault(key, np.full(shape, np.nan))[position] = value
        if steps is None:
            steps = results.steps
        if len(results.steps) == len(steps):
            for key, value in results.metrics.items():
                series.setdefault(key, np.full(shape + (len(steps),), np.nan))[position] = value
    variables = {key: (dims, value) for key, value in summaries.items()}
    variables |= {f"metrics/{key}": (dims + ["record"], value) for key, value in series.items()}
    variables["status"] = (dims, status.astype(str))
    if steps is not None:
        coords["record"] = steps
    return xarray.Dataset(variables, coords=coords,
                          attrs={"protocol": index["protocol"],
                                 "grid_keys": json.dumps({a["name"]: a["key"]
                                                          for a in index["grid"]})})

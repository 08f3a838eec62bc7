"""Probing a trained network from its results file: ``plasticsim probe RESULTS.h5 --gratings``.

The network is rebuilt from the protocol stored in the file (``/spec``), with a ``gratings``
probe added (:mod:`plasticsim.model.probes.gratings`), so the probe is checked against the
graph exactly as in a protocol: a population that does not exist, gratings larger than the
input or a spatial frequency at or above Nyquist end before anything is computed. The
trained state is put back from ``/weights`` (feedforward weights, lateral Q̂ estimates, LIF
thresholds, gate weights); a state the responses depend on that the file does not hold is
refused rather than left at its initial value. The gratings are then shown through the
engine's probe phase (:meth:`plasticsim.backends.base.Simulation.respond`: the population
slots only, no plasticity, no output noise).

The results file is replaced only once the new one is complete: the probe writes a copy
(``results.h5.probe-partial``), adds ``/probes/gratings_<population>``,
``/analysis/gratings/<population>`` and the summary figures
``<population>_gratings_*`` (:func:`plasticsim.analysis.summary.grating_summaries`), and
renames it over the original.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np

from .errors import DataError, SpecError

PARTIAL_SUFFIX = ".probe-partial"
#: Probe settings that the command line exposes, as probe spec keys.
GRATING_SETTINGS = ("input", "spatial_frequencies", "orientations", "phases", "contrast",
                    "grating_size", "response")


def _restored_states(file: h5py.File, plan) -> dict:
    """Trained state arrays of the plan found in the results file: state name → array."""
    restored = {}
    weights = file.get("weights")
    if weights is None:
        return restored
    for projection, info in plan.info["projections"].items():
        if info["weights"] is not None and isinstance(weights.get(projection), h5py.Dataset):
            restored[info["weights"]] = weights[projection][()]
        lateral = weights.get(projection)
        if isinstance(lateral, h5py.Group) and "Q_sensing" in lateral:
            restored[f"{projection}.Q"] = np.stack([lateral["Q_sensing"][()],
                                                    lateral["Q_noise_unlearning"][()]])
    for population in plan.info["populations"]:
        if f"{population}_thresholds" in weights:
            restored[f"{population}.thresholds"] = weights[f"{population}_thresholds"][()]
        gate = weights.get(f"gate_{population}")
        if isinstance(gate, h5py.Group):
            for key, state in (("W_g", "gate_weights"), ("kernel", "gate_kernel"),
                               ("average_burst", "average_burst"),
                               ("basal_moment", "basal_moment")):
                if key in gate:
                    restored[f"{population}.{state}"] = gate[key][()]
    return {name: value for name, value in restored.items() if name in plan.states}


def _respond_dependencies(plan) -> set:
    """Learned or estimated states the probe phase reads (what must come from the file)."""
    from .backends.base import RESPOND_SLOTS

    needed = set()
    for op in plan.operations:
        if op.slot in RESPOND_SLOTS:
            needed.update(name for name in op.reads.values()
                          if plan.states[name].role in ("weights", "estimate"))
    return needed


def _cli_key(key_path: str | None, name: str) -> str | None:
    """``probes.<name>.grating_shape`` → ``--grating-size`` (the option the user typed)."""
    if not key_path or not key_path.startswith(f"probes.{name}"):
        return key_path
    rest = key_path[len(f"probes.{name}"):].lstrip(".")
    field = rest.split(".")[0] or "gratings"
    field = {"population": "gratings", "grating_shape": "grating_size",
             "orientation_count": "orientations", "phase_count": "phases"}.get(field, field)
    return "--" + field.replace("_", "-")


def _declared_settings(spec, population: str) -> dict:
    """Settings of the protocol's own ``gratings`` probes of ``population``, where they agree.

    A run's summary reports its probes' figures (e.g. protocols/complex_cells.yaml probes at
    contrast √2); probing the same population again without options then measures the same
    gratings, so it reproduces the summary rather than a different figure. Where several
    probes of the population disagree on a setting, that setting keeps its default.
    """
    declared = [probe.model_dump(mode="json") for probe in (spec.probes or {}).values()
                if getattr(probe, "kind", None) == "gratings"
                and probe.population == population]
    shared = {}
    for key in GRATING_SETTINGS:
        values = [settings[key] for settings in declared]
        if values and all(value == values[0] for value in values):
            shared[key] = values[0]
    return shared


def probe_gratings(results_path: str | Path, population: str, *, figures: bool = True,
                   figure_directory: str | Path | None = None, **settings) -> dict:
    """Show drifting gratings to ``population`` of a trained network; store the tuning.

    Parameters
    ----------
    results_path : str or Path
        ``results.h5`` of a complete run (or its directory).
    population : str
        The population whose responses are measured.
    figures : bool, default True
        Write the grating figures (histograms per probed population, tuning curves).
    figure_directory : path, optional
        Default: ``figures/`` next to the results file.
    **settings
        Keys of the ``gratings`` probe (:class:`~plasticsim.model.probes.gratings.
        GratingsProbeSpec`): ``input``, ``spatial_frequencies``, ``orientations``,
        ``phases``, ``contrast``, ``grating_size``, ``response``. A None value takes the
        setting of the protocol's own gratings probe of ``population`` when the stored
        protocol has one (so the figures match the run's summary), else the default.

    Returns
    -------
    dict
        ``path`` (the results file), ``summary`` (the ``<population>_gratings_*`` figures),
        ``figures`` (paths written).

    Raises
    ------
    plasticsim.errors.SpecError
        A bad probe (the key path names the command-line option).
    plasticsim.errors.DataError
        A missing, unreadable or incomplete results file, or one without the trained state
        the population's responses need.
    """
    from .analysis.summary import grating_summaries
    from .backends import build
    from .engine.builder import build_plan
    from .io.results import load
    from .run import _jsonable
    from .spec.loading import protocol_from_document

    results = load(results_path)
    path = results.path
    if not results.complete:
        raise DataError(f"{path}: the run did not complete (complete = false); probe a "
                        "finished run")
    unknown = set(settings) - set(GRATING_SETTINGS)
    if unknown:
        raise SpecError(f"unknown grating setting {sorted(unknown)[0]!r} (settings: "
                        f"{', '.join(GRATING_SETTINGS)})")
    name = f"gratings_{population}"
    probe = {**_declared_settings(results.spec, population),
             "kind": "gratings", "population": population,
             **{key: value for key, value in settings.items() if value is not None}}
    document = results.spec.model_dump(mode="json")
    document["probes"] = {name: probe}
    document["ensemble"] = None
    try:
        spec = protocol_from_document(document, source=str(path))
        plan = build_plan(spec)
    except SpecError as error:
        raise SpecError(error.message, file=str(path),
                        key_path=_cli_key(error.key_path, name)) from None
    simulation = build(plan, "numpy")
    with h5py.File(path, "r") as file:
        restored = _restored_states(file, plan)
    missing = sorted(_respond_dependencies(plan) - set(restored))
    if missing:
        raise DataError(f"{path}: the file holds no trained value of {missing[0]!r}, which the "
                        f"responses of {population!r} depend on")
    for state, value in restored.items():
        expected = plan.states[state].shape
        if value.shape != expected:
            raise DataError(f"{path}: /weights holds {state} of shape {value.shape}, the "
                            f"network needs {expected}")
        simulation.write(state, np.asarray(value)[None])

    entry = plan.info["probes"][name]

    def respond(inputs, target):
        return simulation.respond(0, inputs, target)
    measured = entry["run"](spec.probes[name], entry, respond,
                            np.random.default_rng(np.random.SeedSequence(spec.seed,
                                                                         spawn_key=(3,))))

    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    shutil.copyfile(path, partial)
    try:
        with h5py.File(partial, "a") as file:
            if measured["path"] in file:
                del file[measured["path"]]
            group = file.create_group(measured["path"])
            for key, value in measured["array"].items():
                group.create_dataset(key, data=np.asarray(value))
            group.attrs.update({"probe": name, **measured["attributes"]})
        summary, arrays = grating_summaries(load(partial))
        with h5py.File(partial, "a") as file:
            for target, (values, attributes) in arrays.items():
                if target in file:
                    del file[target]
                group = file.create_group(target)
                for key, value in values.items():
                    group.create_dataset(key, data=np.asarray(value))
                group.attrs.update(attributes)
            stored = file.require_group("summary")
            for key, value in summary.items():
                if key in stored:
                    del stored[key]
                stored.create_dataset(key, data=value)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    summary_file = path.parent / "summary.json"
    if summary_file.is_file():
        previous = json.loads(summary_file.read_text())
        previous.update(_jsonable(summary))
        summary_file.write_text(json.dumps(previous, indent=2) + "\n")
    written = []
    if figures:
        from .plot.render import render_grating_figures
        directory = Path(figure_directory) if figure_directory else path.parent / "figures"
        directory.mkdir(parents=True, exist_ok=True)
        written = render_grating_figures(load(path), directory)
    own = {key: value for key, value in summary.items()
           if key.startswith(f"{population}_gratings_")}
    return {"path": path, "summary": own, "figures": written}

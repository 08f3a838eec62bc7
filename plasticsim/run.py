"""Running a protocol end to end: spec → backend → results file, summary and figures."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .analysis.linsker import GaussianProblem, compare_with_optimum, snapshot_metrics
from .backends import build
from .errors import OutputExistsError, PlasticsimError, SimulationDiverged
from .loading import load_protocol, spec_to_yaml
from .recording import FAILED_NAME, FINAL_NAME, PARTIAL_NAME, Recorder
from .results import Results, load
from .spec import ProtocolSpec

OUTPUT_FILES = (FINAL_NAME, PARTIAL_NAME, FAILED_NAME, "summary.json", "figures")


def prepare_output_directory(out: Path, overwrite: bool) -> None:
    """Create ``out``; refuse to touch an existing run unless ``overwrite``."""
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{out} already holds a run ({', '.join(existing)}); "
                                f"choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for name in existing:
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()


def gaussian_problem(simulation) -> GaussianProblem | None:
    """The closed-form problem of a simulation whose stimulus covariances are known."""
    stimulus = simulation.stimulus
    constraints = simulation.constraints
    if getattr(stimulus, "signal_covariance", None) is None or len(constraints) != 1:
        return None
    constraint = constraints[0].spec
    return GaussianProblem(stimulus.signal_covariance, stimulus.noise_covariance,
                           simulation.output_noise_variance, simulation.n_outputs,
                           constraint.budget_kind, constraint.value)


def run(protocol: str | Path | ProtocolSpec, out: str | Path | None = None, *,
        seed: int | None = None, overrides: list[str] | None = None,
        backend: str | None = None, overwrite: bool = False, progress: bool = True,
        figures: bool = True) -> Results:
    """Run a protocol and return its results.

    Parameters
    ----------
    protocol : path or ProtocolSpec
        A protocol YAML file, or an already validated spec.
    out : path, optional
        Output directory (default ``results/<protocol name>``). Receives ``results.h5``,
        ``summary.json`` and ``figures/``.
    seed : int, optional
        Overrides the protocol's root seed.
    overrides : list of str, optional
        ``"dotted.key=value"`` overrides, applied before validation.
    backend : str, optional
        Overrides the protocol's backend.
    overwrite : bool
        Replace an existing run in ``out``.
    progress : bool
        Show a progress bar.
    figures : bool
        Render the figures.

    Returns
    -------
    Results
        Or, for a protocol with an ``ensemble`` block, :class:`~plasticsim.ensemble.EnsembleResults`.

    Examples
    --------
    >>> import plasticsim
    >>> results = plasticsim.run("protocols/linsker1992_1d.yaml", "results/quick",
    ...                          overrides=["schedule.samples=20000"], overwrite=True,
    ...                          progress=False)  # doctest: +SKIP
    >>> results.summary["fraction_of_optimum"]  # doctest: +SKIP
    """
    overrides = list(overrides or [])
    if seed is not None:
        overrides.append(f"seed={int(seed)}")
    if backend is not None:
        overrides.append(f"backend={backend}")
    if isinstance(protocol, ProtocolSpec):
        spec = protocol
        if overrides:
            from .loading import apply_overrides, protocol_from_document
            document = apply_overrides(spec.model_dump(mode="json"), overrides, {})
            spec = protocol_from_document(document)
    else:
        spec = load_protocol(protocol, overrides)
    out = Path(out) if out is not None else Path("results") / spec.name
    if getattr(spec, "ensemble", None) is not None:  # E networks at once: plasticsim.ensemble
        from .ensemble import run_ensemble
        return run_ensemble(spec, out, overwrite=overwrite, progress=progress, figures=figures)
    simulation = build(spec)  # fails early (bad backend, bad network) before touching out
    prepare_output_directory(out, overwrite)

    problem = gaussian_problem(simulation)
    optimum = problem.optimum() if problem is not None else None
    recorder = Recorder(out, spec_to_yaml(spec), {
        "seed": spec.seed, "backend": simulation.backend_name, "dtype": spec.dtype,
        "protocol": spec.name})
    started = time.perf_counter()
    try:
        recorder.write_populations(spec.model.populations)
        for name, stimulus_spec in spec.stimuli.items():
            if stimulus_spec.population == simulation.input_population:
                recorder.write_stimulus(stimulus_spec.population, simulation.stimulus,
                                        stimulus_spec.kind)
        simulation.warmup()
        _record(recorder, simulation, problem, optimum, residual=0.0)
        every, total = spec.record.every, spec.schedule.samples
        with tqdm(total=total, unit="sample", unit_scale=True, disable=not progress,
                  desc=spec.name, leave=False) as bar:
            while simulation.samples_done < total:
                chunk = min(every, total - simulation.samples_done)
                residual = simulation.advance(chunk)
                _record(recorder, simulation, problem, optimum, residual)
                bar.update(chunk)
        wall_seconds = time.perf_counter() - started
        summary = _summary(simulation, problem, optimum, wall_seconds)
        write_final_state(recorder, simulation, summary, optimum)
        path = recorder.finish()
    except PlasticsimError as error:
        recorder.fail(str(error))
        raise
    except BaseException as error:
        recorder.fail(f"{type(error).__name__}: {error}")
        raise
    results = load(path)
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    if figures:
        from .figures import render_figures
        render_figures(results, out / "figures")
    return results


def write_final_state(recorder, simulation, summary: dict, optimum) -> None:
    """Final weights, receptive fields, summary and optimum of a run (or ensemble member).

    Adds the receptive-field summary of image-driven networks to ``summary`` in place.
    """
    state = simulation.state()
    recorder.write_arrays("weights", {simulation.feedforward_name: state["feedforward"]})
    if simulation.lateral_name is not None:
        recorder.write_arrays(f"weights/{simulation.lateral_name}",
                              {k: v for k, v in state.items() if k != "feedforward"},
                              {"phases": ["sensing", "noise_unlearning"]})
    if getattr(simulation, "gate", None) is not None:  # two-compartment units
        recorder.write_arrays(f"weights/gate_{simulation.gate.population}",
                              simulation.gate.state(), {"source": simulation.gate.source_name})
    if hasattr(simulation, "extra_weights"):  # image networks: gains, lateral W, θ
        recorder.write_arrays("weights", simulation.extra_weights())
    summary.update(_write_receptive_fields(recorder, simulation))
    recorder.write_arrays("summary", {k: v for k, v in summary.items()
                                      if not isinstance(v, str)})
    if optimum is not None:
        recorder.write_arrays("analysis/optimum", {"weights": optimum.weights},
                              {"mutual_information_nats": optimum.mutual_information,
                               "budget_kind": optimum.budget_kind,
                               "method": optimum.method})


def _record(recorder, simulation, problem, optimum, residual):
    radii = simulation.spectral_radii() if simulation.lateral_name else np.zeros(2)
    metrics = {
        "spectral_radius_F_sensing": radii[0],
        "spectral_radius_F_noise_unlearning": radii[1],
        "settling_residual": residual,
    }
    worst = int(np.argmax(radii))
    if radii[worst] >= 1.0:
        raise SimulationDiverged(simulation.samples_done, "spectral_radius(F)", radii[worst],
                                 f"{('sensing', 'noise_unlearning')[worst]} phase")
    if hasattr(simulation, "record_metrics"):  # image networks' own scalars
        metrics.update(simulation.record_metrics())
    C = simulation.C
    if problem is not None:
        metrics.update(snapshot_metrics(problem, C, optimum.mutual_information))
    snapshot = {simulation.feedforward_name: C} if simulation.spec.record.weights else None
    recorder.record(simulation.samples_done, metrics, snapshot)


def _write_receptive_fields(recorder, simulation) -> dict:
    """Store units × h × w fields of image-driven networks and return their Gabor summary.

    A simulation may measure its own fields (``receptive_fields()``, e.g. white-noise mapping
    through lateral interactions); otherwise, with an image stimulus, the feedforward
    weights reshaped to the patch are the fields. Gabor fit tables go to
    ``/analysis/gabor/<population>``; with several populations the summary keys are prefixed
    with the population name.
    """
    if hasattr(simulation, "receptive_fields"):
        fields = simulation.receptive_fields()
    elif getattr(simulation.stimulus, "patch_shape", None) is not None:
        fields = {simulation.output_population:
                  np.asarray(simulation.C).reshape((-1,) + simulation.stimulus.patch_shape)}
    else:
        return {}
    from .analysis.receptive_fields import summarize_receptive_fields
    summary = {}
    for population, population_fields in fields.items():
        recorder.write_arrays("receptive_fields", {population: population_fields})
        population_summary, table = summarize_receptive_fields(population_fields)
        recorder.write_arrays("analysis/gabor", {population: table})
        prefix = f"{population}_" if len(fields) > 1 else ""
        summary.update({prefix + key: value for key, value in population_summary.items()})
    return summary


def _summary(simulation, problem, optimum, wall_seconds) -> dict:
    spec = simulation.spec
    summary = {
        "protocol": spec.name,
        "backend": simulation.backend_name,
        "seed": spec.seed,
        "samples": simulation.samples_done,
        "wall_seconds": wall_seconds,
        "samples_per_second": simulation.samples_done / max(wall_seconds, 1e-9),
        "final_settling_residual": simulation.last_residual,
        "final_spectral_radius_F": float(np.max(simulation.spectral_radii()))
        if simulation.lateral_name else 0.0,
    }
    if problem is not None:
        summary["budget_kind"] = problem.budget_kind
        patch_shape = getattr(simulation.stimulus, "patch_shape", None)
        if patch_shape is not None:  # image patches: 2-D radial metrics, no ring FFT
            from .analysis.linsker import compare_with_optimum_patches
            summary.update(compare_with_optimum_patches(problem, simulation.C, patch_shape,
                                                        optimum))
        else:
            summary.update(compare_with_optimum(problem, simulation.C, optimum))
    return summary


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value

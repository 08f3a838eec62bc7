"""Command line: ``plasticsim run | resume | sweep | report | validate | compare | probe |
export``; a thin layer over the Python API."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from .errors import DataError, PlasticsimError, SpecError


#: Exit statuses: input errors (bad YAML, values, files), divergence or non-finite final
#: figures, an internal error (a bug: please report it), Ctrl-C.
EXIT_INPUT, EXIT_DIVERGED, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 3, 70, 130


class UsageError(Exception):
    """A command line argparse refused (printed as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (one line, printed by :func:`main`) not printed."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "(no message)"


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as one line each: what the scientist needs to read, not source lines."""
    print(f"plasticsim: warning: {_one_line(message)}", file=file or sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="plasticsim", description=__doc__.split(";")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a protocol and write results, summary and figures")
    run.add_argument("protocol", help="protocol YAML file")
    run.add_argument("--out", help="output directory (default results/<protocol name>)")
    run.add_argument("--seed", type=int, help="root seed (overrides the protocol's)")
    run.add_argument("--backend", help="backend (overrides the protocol's)")
    run.add_argument("--set", dest="overrides", action="append", default=[],
                     metavar="KEY=VALUE", help="override a protocol value (repeatable), "
                     "e.g. --set stimuli.input.input_noise.variance=0.01")
    run.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--no-figures", action="store_true", help="skip rendering figures")

    resume = sub.add_parser("resume", help="continue a killed or interrupted run from its "
                            "last checkpoint")
    resume.add_argument("out", help="the run's output directory")
    resume.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    resume.add_argument("--no-figures", action="store_true", help="skip rendering figures")

    sweep = sub.add_parser("sweep", help="run a grid x seeds sweep of a protocol as Dask tasks")
    sweep.add_argument("protocol", help="protocol YAML file")
    sweep.add_argument("--grid", action="append", metavar="[NAME:]KEY=V1,V2,...",
                       help="a protocol key and its values (repeatable); the dimension is "
                       "NAME or the key's last part, e.g. noise:stimuli.input.input_noise."
                       "variance=0.01,0.1,1 (default: the protocol's sweep.grid; any "
                       "--grid replaces the whole block grid)")
    seeds = sweep.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, metavar="N", help="seeds seed, seed+1, ..., "
                       "seed+N-1 (seed: the protocol's or --seed)")
    seeds.add_argument("--seed-list", metavar="S1,S2,...", help="these seeds (default for "
                       "both: the protocol's sweep.seeds or sweep.seed_list, else its seed)")
    sweep.add_argument("--seed", type=int, help="first seed (overrides the protocol's)")
    sweep.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="KEY=VALUE", help="override a value of every member")
    sweep.add_argument("--out", help="sweep directory (default: the protocol's sweep.out)")
    sweep.add_argument("--scheduler", help="address of an existing Dask scheduler (default: "
                       "a LocalCluster, one worker per core)")
    sweep.add_argument("--workers", type=int, help="LocalCluster worker processes")
    sweep.add_argument("--scheduler-timeout", type=float, default=10.0, metavar="SECONDS",
                       help="how long to wait for --scheduler to answer (default 10)")
    sweep.add_argument("--batch-size", type=int, metavar="N", help="most members per Dask "
                       "task; members differing only in seed run stacked (default: about "
                       "two tasks per worker on the array backend, else 1: one member per "
                       "task, with checkpoints)")
    sweep.add_argument("--figures", action="store_true", help="render each member's figures")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    report = sub.add_parser("report", help="re-render figures and print a summary of a run")
    report.add_argument("results", help="results.h5 (or its directory)")
    report.add_argument("--figures", help="figure directory (default: next to the file)")

    validate = sub.add_parser("validate", help="check a protocol (and its model) without running")
    validate.add_argument("protocol")
    validate.add_argument("--set", dest="overrides", action="append", default=[],
                          metavar="KEY=VALUE")
    validate.add_argument("--backend", help="check that this backend can run it (default: the "
                          "protocol's)")
    validate.add_argument("--print", action="store_true", help="print the resolved protocol")
    validate.add_argument("--plan", action="store_true", help="print the step plan: every "
                          "operation in the order the engine runs it")

    export = sub.add_parser("export", help="write a protocol as a standalone script for "
                            "another simulator (brian2: plain `python OUT.py`)")
    export.add_argument("protocol", help="protocol YAML file")
    export.add_argument("output", nargs="?", help="script to write (or -o)")
    export.add_argument("--to", required=True, choices=("brian2",), help="target simulator")
    export.add_argument("-o", "--out", dest="out", help="script to write")
    export.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a protocol value (repeatable)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing script")

    compare = sub.add_parser("compare", help="compare a run's receptive fields with a "
                             "reference and macaque V1 (PNG + Markdown + JSON report)")
    compare.add_argument("results", help="results.h5 of an image-driven run (or its directory)")
    compare.add_argument("--reference", help="olshausen-field (packaged O&F network fields), "
                         "another RUN.h5, or a FILE.mat dictionary (pixels × units, e.g. A144)")
    compare.add_argument("--reference-key", help="variable name in a .mat reference")
    compare.add_argument("--v1", default="ringach2002", help="V1 data set (ringach2002)")
    compare.add_argument("--out", help="report directory (default: compare/ next to the run)")
    compare.add_argument("--allow-incomplete", action="store_true", help="compare a run "
                         "that did not finish (results.incomplete.h5, complete = false)")
    compare.add_argument("--baseline", dest="baselines", action="append", default=[],
                         choices=("pca", "ica"), help="add PCA or FastICA fitted to the run's "
                         "own patches as a column (repeatable)")
    compare.add_argument("--baseline-patches", type=int, default=50_000, metavar="N",
                         help="patches the baselines are fitted to (default 50000)")
    compare.add_argument("--baseline-seed", type=int, default=0,
                         help="seed of the baselines' patches and of FastICA (default 0)")
    compare.add_argument("--ica-fields", choices=("basis_functions", "filters"),
                         default="basis_functions", help="ICA basis functions (as the O&F "
                         "network's dictionary; default) or filters (as white-noise maps)")

    probe = sub.add_parser("probe", help="present drifting gratings to a population of a "
                           "trained network (no plasticity); store /analysis/gratings/"
                           "<population> in the results file and write figures")
    probe.add_argument("results", help="results.h5 of a complete run (or its directory)")
    probe.add_argument("--gratings", metavar="POPULATION", required=True,
                       help="population whose grating responses are measured")
    probe.add_argument("--input", help="input population the gratings are shown on (default: "
                       "the only one upstream)")
    probe.add_argument("--spatial-frequencies", type=float, nargs="+", metavar="F",
                       help="cycles per pixel, each below Nyquist (0.5)")
    probe.add_argument("--orientations", type=int, help="orientations over 180° (default 24)")
    probe.add_argument("--phases", type=int, help="temporal phases per cycle (default 16)")
    probe.add_argument("--contrast", type=float, help="grating amplitude (default: the "
                       "protocol's own gratings probe of the population, else 1); likewise "
                       "the other options default to that probe's settings")
    probe.add_argument("--grating-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                       help="centred grating window in pixels (default: the whole input)")
    probe.add_argument("--response", choices=("auto", "rate", "spike_count"))
    probe.add_argument("--figures", help="figure directory (default: next to the file)")
    probe.add_argument("--no-figures", action="store_true", help="skip rendering figures")
    return parser


SUMMARY_ROWS = (
    ("mutual_information_bits", "mutual information (bits)", "{:.4f}"),
    ("optimum_bits", "closed-form optimum (bits)", "{:.4f}"),
    ("fraction_of_optimum", "fraction of optimum", "{:.4%}"),
    ("mode_spectrum_relative_l1", "mode spectrum rel. L1 to optimum", "{:.3f}"),
    ("learned_peak_frequency", "population spectrum peak (cycles/ring)", "{:.0f}"),
    ("optimal_peak_frequency", "optimal spectrum peak (cycles/ring)", "{:.0f}"),
    ("learned_band_pass_index", "band-pass index (learned)", "{:.3f}"),
    ("optimal_band_pass_index", "band-pass index (optimal)", "{:.3f}"),
    ("final_spectral_radius_F", "spectral radius of F (final)", "{:.4f}"),
    ("final_settling_residual", "settling residual (last interval, worst)", "{:.2e}"),
    ("samples", "training samples", "{:.0f}"),
    ("wall_seconds", "wall time (s)", "{:.1f}"),
    ("samples_per_second", "samples per second", "{:,.0f}"),
    # Image-driven runs (Gabor fits of the receptive fields, Ringach 2002 conventions).
    ("fraction_r2_above_0.9", "units with Gabor R² > 0.9", "{:.1%}"),
    ("fraction_r2_above_0.8", "units with Gabor R² > 0.8", "{:.1%}"),
    ("median_sf_bandwidth_octaves", "median SF bandwidth (octaves)", "{:.2f}"),
    ("median_nx", "median nx", "{:.2f}"),
    ("median_ny", "median ny", "{:.2f}"),
    ("blob_like_fraction", "blob-like fraction (good fits)", "{:.1%}"),
    ("median_orientation_selectivity_index", "median orientation selectivity", "{:.2f}"),
    # Self-organising maps (Kohonen): map quality and the orientation map's pinwheels.
    ("quantisation_error_initial", "quantisation error (first record)", "{:.4f}"),
    ("quantisation_error_final", "quantisation error (last record)", "{:.4f}"),
    ("topographic_error_final", "topographic error (last record)", "{:.4f}"),
    ("orientation_map_n_pinwheels", "pinwheels", "{:.0f}"),
    ("orientation_map_column_spacing_units", "column spacing Λ (units)", "{:.2f}"),
    ("orientation_map_pinwheel_density", "pinwheels per Λ²", "{:.2f}"),
    ("orientation_map_orientation_smoothness_deg", "orientation step to neighbour (deg)",
     "{:.1f}"),
)


# Figures that the builder prefixes with their owner (a layer or a projection), e.g.
# ``layer2_fraction_of_optimum``: shown once per owner after the unprefixed rows.
OWNER_ROWS = (
    ("_mutual_information_bits", "mutual information (bits)", "{:.4f}"),
    ("_optimum_bits", "optimum (bits)", "{:.4f}"),
    ("_fraction_of_optimum", "fraction of optimum", "{:.4%}"),
    ("_largest_principal_angle_rad", "largest principal angle (rad)", "{:.4f}"),
    ("_orthonormality_error", "orthonormality error", "{:.2e}"),
    ("_quantisation_error_final", "quantisation error (last record)", "{:.4f}"),
    ("_topographic_error_final", "topographic error (last record)", "{:.4f}"),
)


def _number(key: str, value) -> float:
    """A summary figure as a float; a DataError for anything else (a damaged file)."""
    if np.ndim(value) != 0 or not isinstance(np.asarray(value).item(), (int, float)):
        raise DataError(f"summary {key} is not a number (got {np.asarray(value).dtype} of "
                        f"shape {np.shape(value)})")
    return float(value)


def format_summary(summary: dict) -> str:
    """A two-column text table of the scalar results."""
    lines = []
    for key, label, template in SUMMARY_ROWS:
        if key in summary:
            lines.append(f"  {label:<42} {template.format(_number(key, summary[key]))}")
    for key, value in summary.items():
        for suffix, label, template in OWNER_ROWS:
            owner = key[:-len(suffix)]
            if key.endswith(suffix) and owner and not isinstance(value, (list, dict, str)):
                lines.append(f"  {label + ' (' + owner + ')':<42} "
                             f"{template.format(_number(key, value))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; every error ends as one line on stderr and an exit status.

    Returns
    -------
    int
        0, or :data:`EXIT_INPUT` (2), :data:`EXIT_DIVERGED` (3), :data:`EXIT_INTERNAL` (70),
        :data:`EXIT_INTERRUPTED` (130).
    """
    import shlex

    from .io.provenance import invoked_by

    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    command = ["plasticsim", *(sys.argv[1:] if argv is None else argv)]
    try:
        with invoked_by({"command_line": shlex.join(command)}):  # what runs record
            return _main(argv)
    finally:
        warnings.showwarning = shown


def _main(argv: list[str] | None) -> int:
    try:
        arguments = _parser().parse_args(argv)
    except UsageError as error:
        print(f"plasticsim: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("plasticsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        status = _command(arguments)
    except PlasticsimError as error:
        print(f"plasticsim: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("plasticsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("plasticsim: error: out of memory (reduce population sizes, batch_size or "
              "ensemble size)", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:   # output piped into e.g. head: nothing left to say
        return 0
    except Exception as error:  # a bug: still one line, and a status that says so
        print(f"plasticsim: internal error: {type(error).__name__}: "
              f"{_one_line(error)[:500]} (please report this with the command line)",
              file=sys.stderr)
        return EXIT_INTERNAL
    return status


def _command(arguments) -> int:
    """Carry out one parsed command (errors propagate to :func:`_main`); its exit status."""
    if arguments.command in ("run", "resume"):
        if arguments.command == "run":
            from .run import run
            results = run(arguments.protocol, arguments.out, seed=arguments.seed,
                          overrides=arguments.overrides, backend=arguments.backend,
                          overwrite=arguments.overwrite, progress=not arguments.no_progress,
                          figures=not arguments.no_figures)
        else:
            from .run import resume
            results = resume(arguments.out, progress=not arguments.no_progress,
                             figures=not arguments.no_figures)
        print(f"{results.spec.name}: wrote {results.path}")
        if hasattr(results, "members"):  # an ensemble: one line per member
            for entry in results.index:
                fraction = entry["summary"].get("fraction_of_optimum")
                print(f"  {entry['directory']}  {entry['label']}"
                      + (f"  fraction of optimum {fraction:.4%}" if fraction else ""))
        else:
            print(format_summary(results.summary))
    elif arguments.command == "sweep":
        from .sweep import sweep
        overrides = list(arguments.overrides)
        if arguments.seed is not None:
            overrides.append(f"seed={arguments.seed}")
        seeds = None
        if arguments.seed_list:
            try:
                seeds = [int(seed) for seed in arguments.seed_list.split(",") if seed.strip()]
            except ValueError:
                raise SpecError(f"--seed-list {arguments.seed_list!r}: expected integers "
                                 "separated by commas, e.g. 1,2,3") from None
        elif arguments.seeds:
            from .run import resolve_spec
            first = resolve_spec(arguments.protocol, overrides)[0].seed
            seeds = list(range(first, first + arguments.seeds))
        result = sweep(arguments.protocol, arguments.out, arguments.grid, seeds=seeds,
                       overrides=overrides, scheduler=arguments.scheduler,
                       workers=arguments.workers,
                       scheduler_timeout=arguments.scheduler_timeout,
                       figures=arguments.figures, progress=not arguments.no_progress,
                       batch_size=arguments.batch_size)
        for entry in result.members:
            values = ",".join(f"{k}={v}" for k, v in entry["values"].items())
            mi = entry.get("summary", {}).get("mutual_information_bits")
            print(f"  {entry['directory']}  {values}{',' if values else ''}seed="
                  f"{entry['seed']}  {entry['status']}"
                  + (f"  MI {mi:.4f} bits" if mi is not None else "")
                  + (f"  {entry['error']}" if entry.get("error") else ""))
        print(f"sweep: wrote {result.path} ({len(result.members)} members, "
              f"{len(result.failed)} failed, {result.index['wall_seconds']:.1f} s)")
        if result.failed:
            return 1
    elif arguments.command == "report":
        from .io.results import load
        from .plot.render import render_figures
        results = load(arguments.results)   # checks the file's contract first
        directory = Path(arguments.figures) if arguments.figures else \
            results.path.parent / "figures"
        try:
            paths = render_figures(results, directory)
        except OSError as error:
            raise DataError(f"{directory}: cannot write figures "
                            f"({error.strerror or error})") from None
        except (ValueError, TypeError, IndexError, KeyError) as error:
            # The contract holds but the content does not fit together: a damaged file.
            raise DataError(f"{results.path}: cannot draw figures from this file "
                            f"({type(error).__name__}: {_one_line(error)[:200]}); is it "
                            "damaged?") from None
        state = "complete" if results.complete else "INCOMPLETE"
        print(f"{results.path} ({state}; protocol {results.spec.name}, seed "
              f"{results.attributes.get('seed')}, backend "
              f"{results.attributes.get('backend')})")
        print(format_summary(results.summary))
        print(f"figures: {', '.join(str(p) for p in paths)}")
    elif arguments.command == "compare":
        from .compare import compare
        report = compare(arguments.results, arguments.reference, arguments.v1,
                         arguments.out, arguments.reference_key,
                         baselines=arguments.baselines,
                         baseline_patches=arguments.baseline_patches,
                         baseline_seed=arguments.baseline_seed,
                         ica_fields=arguments.ica_fields,
                         allow_incomplete=arguments.allow_incomplete)
        for name, row in report["populations"].items():
            print(f"{name}: {100 * row['fraction_r2_above_0.9']:.0f}% R² > 0.9, "
                  f"blob-like {row['blob_like_fraction']:.2f}, TV to V1 "
                  f"{row['tv_distance_to_v1']:.3f}")
        print(f"report: {', '.join(report['files'])}")
    elif arguments.command == "probe":
        from .probe import probe_gratings
        probed = probe_gratings(
            arguments.results, arguments.gratings, figures=not arguments.no_figures,
            figure_directory=arguments.figures, input=arguments.input,
            spatial_frequencies=arguments.spatial_frequencies,
            orientations=arguments.orientations, phases=arguments.phases,
            contrast=arguments.contrast, grating_size=arguments.grating_size,
            response=arguments.response)
        print(f"{probed['path']}: /analysis/gratings/{arguments.gratings}")
        for key, value in probed["summary"].items():
            print(f"  {key.split('_gratings_', 1)[1]:<42} {value:.4g}")
        if probed["figures"]:
            print(f"figures: {', '.join(str(p) for p in probed['figures'])}")
    elif arguments.command == "export":
        from .export import export_brian2
        out = arguments.out or arguments.output
        if not out:
            raise SpecError("export needs the script to write (-o OUT.py)")
        path = export_brian2(arguments.protocol, out, arguments.overrides,
                             arguments.overwrite)
        print(f"wrote {path} (run it with: python {path})")
    elif arguments.command == "validate":
        from .run import validate
        from .spec.loading import spec_to_yaml
        spec, plans = validate(arguments.protocol, arguments.overrides, arguments.backend)
        if arguments.print:
            print(spec_to_yaml(spec), end="")
        if arguments.plan:
            for plan in plans:
                print(plan.describe())
        model = spec.model
        operations = sum(len(plan.operations) for plan in plans)
        print(f"{arguments.protocol}: valid ({spec.name}: "
              + ", ".join(f"{n} {p.size}" for n, p in model.populations.items())
              + f"; {operations} operations per step; {spec.schedule.samples} samples; "
              f"backend {arguments.backend or spec.backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Command line: ``plasticsim run | report | validate | compare | export``; a thin layer over
the Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import PlasticsimError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plasticsim", description=__doc__.split(";")[0])
    sub = parser.add_subparsers(dest="command", required=True)

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
)


def format_summary(summary: dict) -> str:
    """A two-column text table of the scalar results."""
    lines = []
    for key, label, template in SUMMARY_ROWS:
        if key in summary:
            lines.append(f"  {label:<42} {template.format(float(summary[key]))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        if arguments.command == "run":
            from .run import run
            results = run(arguments.protocol, arguments.out, seed=arguments.seed,
                          overrides=arguments.overrides, backend=arguments.backend,
                          overwrite=arguments.overwrite, progress=not arguments.no_progress,
                          figures=not arguments.no_figures)
            print(f"{results.spec.name}: wrote {results.path}")
            if hasattr(results, "members"):  # an ensemble: one line per member
                for entry in results.index:
                    fraction = entry["summary"].get("fraction_of_optimum")
                    print(f"  {entry['directory']}  {entry['label']}"
                          + (f"  fraction of optimum {fraction:.4%}" if fraction else ""))
            else:
                print(format_summary(results.summary))
        elif arguments.command == "report":
            from .io.results import load
            from .plot.render import render_figures
            results = load(arguments.results)
            directory = Path(arguments.figures) if arguments.figures else \
                results.path.parent / "figures"
            paths = render_figures(results, directory)
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
                             ica_fields=arguments.ica_fields)
            for name, row in report["populations"].items():
                print(f"{name}: {100 * row['fraction_r2_above_0.9']:.0f}% R² > 0.9, "
                      f"blob-like {row['blob_like_fraction']:.2f}, TV to V1 "
                      f"{row['tv_distance_to_v1']:.3f}")
            print(f"report: {', '.join(report['files'])}")
        elif arguments.command == "export":
            from .export import export_brian2
            out = arguments.out or arguments.output
            if not out:
                print("plasticsim: error: export needs the script to write (-o OUT.py)",
                      file=sys.stderr)
                return 2
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
    except PlasticsimError as error:
        print(f"plasticsim: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("plasticsim: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

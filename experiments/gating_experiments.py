"""Gating experiments E1 (shared latent, and its control) and E2 (Linsker regression).

Each experiment runs one shipped protocol in several variants and seeds through
:func:`plasticsim.run`, then reads the results files back (never the live simulations):

E1  ``ungated`` (gate removed), ``gate_only`` (gate + predictive rule, no third factor) and
    ``gate_third_factor``, all at the same output power; alignment, Gaussian information
    about the shared source and the distractor, redundancy (:mod:`plasticsim.analysis.gating`).
E2  ``gated`` vs ``ungated`` closed-form MI against the closed-form optimum.

Command line (an experiment script, not part of the package)::

    python experiments/gating_experiments.py e1 protocols/gating_e1_shared_latent.yaml \
        --out results/gating_e1 --seeds 1 2 3
    python experiments/gating_experiments.py e2 protocols/gating_e2_linsker.yaml \
        --out results/gating_e2 --seeds 1 2 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from plasticsim.analysis.gating import shared_latent_results_report

E1_VARIANTS = {
    "ungated": ["model.populations.output.gate=null"],
    "gate_only": ["model.populations.output.gate.third_factor=null"],
    "gate_third_factor": [],
}
E2_VARIANTS = {
    "ungated": ["model.populations.output.gate=null"],
    "gated": [],
}
E1_SCALARS = ("alignment_shared", "alignment_distractor", "bits_shared", "bits_distractor",
              "redundancy_shared_bits", "mean_output_power")


def _run_variants(protocol, out: Path, variants: dict, seeds, overrides):
    from plasticsim.run import run

    runs = {}
    for name, variant_overrides in variants.items():
        for seed in seeds:
            runs[name, seed] = run(protocol, out / f"{name}_seed{seed}", seed=seed,
                                   overrides=list(overrides) + variant_overrides,
                                   overwrite=True, progress=False, figures=False)
    return runs


def run_e1(protocol, out, seeds=(1, 2, 3), overrides=(), figures=True) -> dict:
    """Run E1 (or its control) in its three variants over ``seeds``.

    Returns
    -------
    dict
        ``per_seed[variant][seed]`` (the scalars of
        :func:`~plasticsim.analysis.gating.shared_latent_report`), ``mean`` and ``std``
        over seeds per variant, and ``history`` (alignment over training) for the figure.
        Also written to ``out/e1_summary.json``.
    """
    out = Path(out)
    runs = _run_variants(protocol, out, E1_VARIANTS, seeds, overrides)
    summary = {"protocol": str(protocol), "seeds": list(seeds), "per_seed": {}, "mean": {},
               "std": {}, "history": {}}
    for name in E1_VARIANTS:
        reports = [shared_latent_results_report(runs[name, seed]) for seed in seeds]
        summary["per_seed"][name] = {str(seed): {k: float(r[k]) for k in E1_SCALARS}
                                     for seed, r in zip(seeds, reports)}
        for key in E1_SCALARS:
            values = [r[key] for r in reports]
            summary["mean"].setdefault(name, {})[key] = float(np.mean(values))
            summary["std"].setdefault(name, {})[key] = float(np.std(values))
        summary["history"][name] = {"steps": reports[0]["steps"].tolist(),
                                    "alignment_shared": [r["alignment_shared_history"].tolist()
                                                         for r in reports]}
    (out / "e1_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if figures:
        plot_e1(summary, out / "figures" / "e1_comparison.png")
    return summary


def run_e2(protocol, out, seeds=(1, 2, 3), overrides=(), figures=True) -> dict:
    """Run E2: gated vs ungated Linsker learning, closed-form MI against the optimum.

    Returns
    -------
    dict
        ``per_seed[variant][seed]`` with ``mutual_information_nats`` and
        ``fraction_of_optimum``, ``optimum_nats``, and ``gated_over_ungated`` per seed.
        Also written to ``out/e2_summary.json``.
    """
    out = Path(out)
    runs = _run_variants(protocol, out, E2_VARIANTS, seeds, overrides)
    summary = {"protocol": str(protocol), "seeds": list(seeds), "per_seed": {},
               "gated_over_ungated": {}}
    for (name, seed), results in runs.items():
        summary["optimum_nats"] = float(results.summary["optimum_nats"])
        summary["per_seed"].setdefault(name, {})[str(seed)] = {
            "mutual_information_nats": float(results.summary["mutual_information_nats"]),
            "fraction_of_optimum": float(results.summary["fraction_of_optimum"]),
            "steps": np.asarray(results.steps).tolist(),
            "mutual_information_history": np.asarray(
                results.metrics["mutual_information_nats"]).tolist()}
    for seed in seeds:
        gated = summary["per_seed"]["gated"][str(seed)]["mutual_information_nats"]
        ungated = summary["per_seed"]["ungated"][str(seed)]["mutual_information_nats"]
        summary["gated_over_ungated"][str(seed)] = gated / ungated
    (out / "e2_summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if figures:
        plot_e2(summary, out / "figures" / "e2_mutual_information.png")
    return summary


def plot_e1(summary: dict, path: Path) -> Path:
    """Bars (mean ± s.d. over seeds) of alignment and bits per variant; alignment over time."""
    from plasticsim.plot.style import subplots

    variants = list(summary["mean"])
    colours = {"ungated": "#888888", "gate_only": "#1f5fa8", "gate_third_factor": "#d1495b"}
    figure, axes = subplots(1, 4, figsize=(13, 3.2))
    for axis, (key, label) in zip(axes[:3], (
            ("alignment_shared", "alignment with shared source"),
            ("bits_shared", "bits about shared source"),
            ("bits_distractor", "bits about distractor"))):
        means = [summary["mean"][v][key] for v in variants]
        errors = [summary["std"][v][key] for v in variants]
        axis.bar(range(len(variants)), means, yerr=errors,
                 color=[colours.get(v, "k") for v in variants])
        axis.set_xticks(range(len(variants)), [v.replace("_", "\n") for v in variants])
        axis.set_title(label)
    for variant in variants:
        history = summary["history"][variant]
        for index, curve in enumerate(history["alignment_shared"]):
            axes[3].plot(history["steps"], curve, color=colours.get(variant, "k"),
                         label=variant if index == 0 else None, lw=1)
    axes[3].set_xlabel("training samples")
    axes[3].set_title("alignment with shared source")
    axes[3].legend(frameon=False, fontsize=7)
    figure.suptitle(f"{Path(summary['protocol']).stem}: seeds {summary['seeds']} "
                    f"(Gaussian MI estimate, same output power)", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    return path


def plot_e2(summary: dict, path: Path) -> Path:
    """Closed-form MI over training, gated and ungated, against the optimum."""
    from plasticsim.plot.style import subplots

    figure, axis = subplots(figsize=(5, 3.2))
    for variant, colour in (("ungated", "#888888"), ("gated", "#d1495b")):
        for index, record in enumerate(summary["per_seed"][variant].values()):
            axis.plot(record["steps"], record["mutual_information_history"], color=colour,
                      lw=1, label=variant if index == 0 else None)
    axis.axhline(summary["optimum_nats"], color="k", ls="--", lw=1, label="closed-form optimum")
    axis.set_xlabel("training samples")
    axis.set_ylabel("I(Z; S) (nats)")
    axis.legend(frameon=False, fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python experiments/gating_experiments.py")
    parser.add_argument("experiment", choices=("e1", "e2"))
    parser.add_argument("protocol")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    arguments = parser.parse_args(argv)
    runner = run_e1 if arguments.experiment == "e1" else run_e2
    summary = runner(arguments.protocol, arguments.out, arguments.seeds, arguments.overrides)
    if arguments.experiment == "e1":
        for variant, values in summary["mean"].items():
            spread = summary["std"][variant]
            print(f"{variant:>18}: " + ", ".join(
                f"{k} {values[k]:.3f}±{spread[k]:.3f}" for k in E1_SCALARS))
    else:
        print(f"optimum {summary['optimum_nats']:.4f} nats")
        for variant, records in summary["per_seed"].items():
            print(f"{variant:>8}: " + ", ".join(
                f"seed {s} {r['mutual_information_nats']:.4f} ({r['fraction_of_optimum']:.2%})"
                for s, r in records.items()))
        print("gated/ungated: " + ", ".join(f"{v:.4f}" for v in
                                           summary["gated_over_ungated"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

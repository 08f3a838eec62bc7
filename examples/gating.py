"""The gating experiment: which information a two-compartment unit sends (E1).

The basal and apical input streams share a latent source, hidden in the basal stream under
stronger, stream-specific distractors (``protocols/gating_e1_shared_latent.yaml``;
docs/science.md §8). Three variants of the same network are trained at the same output
power: ``ungated`` (no apical gate), ``gate_only`` (gate with its predictive rule) and
``gate_third_factor`` (gate + burst-style third factor in the feedforward rule). Ungated
infomax sends the stronger distractors; only the third factor, which lets the apical stream
steer feedforward learning, aligns the units with the shared source. The runs and their
analysis are those of ``experiments/gating_experiments.py``::

    python examples/gating.py             # the protocol's full length, seeds 1 2 3
    python examples/gating.py --quick     # 20 000 samples, seed 1
    python examples/gating.py --out DIR   # default: results/examples-gating

Writes the runs (``DIR/<variant>_seed<k>/``), ``DIR/e1_summary.json`` and ``DIR/gating.png``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from plasticsim import load_protocol
from plasticsim.plot.style import save, styled, subplots

REPOSITORY = Path(__file__).resolve().parents[1]
PROTOCOL = REPOSITORY / "protocols" / "gating_e1_shared_latent.yaml"
sys.path.insert(0, str(REPOSITORY / "experiments"))
from gating_experiments import run_e1  # noqa: E402

QUICK = {"seeds": [1], "overrides": ["schedule.samples=20000", "record.every=2000"]}
FULL = {"seeds": [1, 2, 3], "overrides": []}
COLOURS = {"ungated": "#888888", "gate_only": "#1f5fa8", "gate_third_factor": "#d1495b"}


@styled
def draw(summary: dict, units: int):
    """Alignment and information per variant (mean ± s.d. over seeds), alignment over time."""
    variants = list(summary["mean"])
    figure, axes = subplots(1, 3, figsize=(12, 3.6), layout="constrained")
    positions = np.arange(len(variants))
    labels = [variant.replace("_", "\n") for variant in variants]
    colours = [COLOURS[variant] for variant in variants]
    axes[0].bar(positions, [summary["mean"][v]["alignment_shared"] for v in variants],
                yerr=[summary["std"][v]["alignment_shared"] for v in variants], color=colours)
    axes[0].set_xticks(positions, labels)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_ylabel("alignment with the shared source")
    axes[0].set_title("Which direction the units send")
    width = 0.38
    for offset, key, hatch, label in ((-width / 2, "bits_shared", "", "shared source"),
                                      (width / 2, "bits_distractor", "//", "distractors")):
        axes[1].bar(positions + offset, [summary["mean"][v][key] for v in variants], width,
                    yerr=[summary["std"][v][key] for v in variants], color=colours,
                    hatch=hatch, edgecolor="white", label=label)
    axes[1].set_xticks(positions, labels)
    axes[1].set_ylabel("information (bits, Gaussian estimate)")
    axes[1].set_title("What the units send (same output power)")
    axes[1].legend(frameon=False, fontsize=8)
    for variant in variants:
        history = summary["history"][variant]
        for index, curve in enumerate(history["alignment_shared"]):
            axes[2].plot(history["steps"], curve, color=COLOURS[variant], lw=1.2,
                         label=variant if index == 0 else None)
    axes[2].set_xlabel("training samples")
    axes[2].set_ylabel("alignment with the shared source")
    axes[2].set_title("Alignment over training")
    axes[2].legend(frameon=False, fontsize=8)
    figure.suptitle(f"Gating experiment E1 ({Path(summary['protocol']).stem}), seed(s) "
                    f"{', '.join(str(seed) for seed in summary['seeds'])}; {units} output units")
    return figure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/gating.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short seed")
    parser.add_argument("--out", type=Path, default=Path("results/examples-gating"))
    arguments = parser.parse_args(argv)
    settings = QUICK if arguments.quick else FULL
    arguments.out.mkdir(parents=True, exist_ok=True)
    summary = run_e1(PROTOCOL, arguments.out, seeds=settings["seeds"],
                     overrides=settings["overrides"], figures=False)
    units = load_protocol(PROTOCOL).model.populations["output"].size
    figure_path = save(draw(summary, units), arguments.out / "gating.png")
    for variant, values in summary["mean"].items():
        print(f"{variant:>18}: alignment with the shared source {values['alignment_shared']:.3f}, "
              f"{values['bits_shared']:.3f} bits about it, {values['bits_distractor']:.3f} "
              f"about the distractors, output power {values['mean_output_power']:.3f}")
    print(f"figure: {figure_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A tour of Linsker's (1992) infomax network: run it, check it against theory, plot it.

Runs the reference protocol (a ring of 32 input sites, 8 linear output units, two-phase
learning with anti-Hebbian lateral settling; docs/science.md §1–2) from Python, reads the
results file back, recomputes the mutual information of the learned weights and the
closed-form optimum from the stored input covariances (independently of the run's own
summary), and draws the receptive fields, the information over training and the mode
spectrum::

    python examples/linsker_tour.py            # the protocol's full length (about 25 s)
    python examples/linsker_tour.py --quick    # a short run (a few seconds)
    python examples/linsker_tour.py --out DIR  # default: results/examples-linsker_tour

Writes ``DIR/run/`` (the run directory), ``DIR/linsker_tour.png`` and ``DIR/linsker_tour.json``
(the figures printed at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

import plasticsim
from plasticsim.analysis.information import infomax_optimum, mutual_information
from plasticsim.plot.style import LEARNED, OPTIMAL, save, styled, subplots

PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "linsker1992_1d.yaml"
#: A short run: 60 000 samples after a 5 000-sample warm-up, with the protocol's annealing
#: time constant shortened so that the rate has decayed by the end as in the full run.
QUICK = ["schedule.samples=60000", "schedule.warmup_samples=5000",
         "learning_rates.feedforward.tau=6000", "record.every=5000"]


def run_tour(out: Path, quick: bool) -> dict:
    """Run the protocol, check it against the closed-form optimum and draw the figure."""
    out.mkdir(parents=True, exist_ok=True)
    plasticsim.run(PROTOCOL, out / "run", overrides=QUICK if quick else [], overwrite=True,
                   progress=False, figures=False)
    results = plasticsim.load(out / "run" / "results.h5")   # everything from the file

    C = np.asarray(results.weights["feedforward"])           # M × N
    stimulus = results.stimulus["input"]
    q_signal, q_noise = stimulus["signal_covariance"], stimulus["noise_covariance"]
    output_noise = float(results.populations["output"]["output_noise_variance"])
    n_units = C.shape[0]
    # The protocol's constraint is unit-norm rows: a total weight budget of M × 1.
    optimum = infomax_optimum(q_signal, q_noise, output_noise, n_units, budget=n_units * 1.0,
                              budget_kind="weight")
    learned = mutual_information(C, q_signal, q_noise, output_noise)
    # Mode spectrum: the gain the learned C puts on each eigenmode of the input, ‖C v_k‖²,
    # against the optimum's g_k (C itself is defined only up to a rotation of the outputs).
    # On a ring the modes come in degenerate pairs (cos and sin of one frequency), within
    # which any split of the gain is equally good, so gains are summed per eigenvalue.
    modes = optimum.eigenvectors
    variances = np.einsum("ik,ij,jk->k", modes, q_signal + q_noise, modes)
    order = np.argsort(-variances, kind="stable")
    group = np.cumsum(np.r_[0, np.diff(variances[order]) < -1e-9 * variances.max()])
    learned_gains = np.bincount(group, np.sum((C @ modes) ** 2, axis=0)[order])
    optimal_gains = np.bincount(group, optimum.gains[order])
    report = {
        "mutual_information_nats": learned,
        "optimum_nats": optimum.mutual_information,
        "fraction_of_optimum": learned / optimum.mutual_information,
        "summary_fraction_of_optimum": float(results.summary["fraction_of_optimum"]),
        "summary_optimum_nats": float(results.summary["optimum_nats"]),
        "mode_spectrum_relative_l1": float(np.sum(np.abs(learned_gains - optimal_gains))
                                           / np.sum(optimal_gains)),
        "samples": int(results.summary["samples"]),
        "units": n_units,
    }
    figure = draw(results, C, learned_gains, optimal_gains, report)
    report["figure"] = str(save(figure, out / "linsker_tour.png"))
    (out / "linsker_tour.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


@styled
def draw(results, C, learned_gains, optimal_gains, report):
    """Receptive fields, information over training, and the mode spectrum."""
    figure, (fields, information, spectrum) = subplots(1, 3, figsize=(13, 3.6),
                                                       layout="constrained")
    sites = np.arange(C.shape[1])
    for unit, row in enumerate(C):
        fields.plot(sites, row, lw=1, label=f"unit {unit}")
    fields.set_title(f"Receptive fields ({C.shape[0]} units)")
    fields.set_xlabel("input site on the ring")
    fields.set_ylabel("feedforward weight")
    fields.legend(frameon=False, fontsize=6, ncol=2)

    nats_per_bit = np.log(2.0)
    information.plot(results.steps, results.metrics["mutual_information_nats"], color=LEARNED,
                     label="learned network")
    information.axhline(report["optimum_nats"], color=OPTIMAL, ls="--",
                        label=f"closed-form optimum ({report['optimum_nats']:.4f} nats, "
                              f"{report['optimum_nats'] / nats_per_bit:.3f} bits)")
    information.set_title(f"I(Z; S): {100 * report['fraction_of_optimum']:.2f}% of the optimum")
    information.set_xlabel("training samples")
    information.set_ylabel("mutual information (nats)")
    information.legend(frameon=False, fontsize=7, loc="lower right")

    shown = max(int(np.max(np.flatnonzero(optimal_gains > 0))) + 3, 6)
    index = np.arange(min(shown, learned_gains.size))
    spectrum.bar(index - 0.2, learned_gains[index], width=0.4, color=LEARNED, label="learned")
    spectrum.bar(index + 0.2, optimal_gains[index], width=0.4, color=OPTIMAL,
                 label="optimal g*")
    spectrum.set_title(f"Mode spectrum (relative L1 {report['mode_spectrum_relative_l1']:.3f})")
    spectrum.set_xlabel("eigenmode group of the input (largest variance first)")
    spectrum.set_ylabel("gain ‖C v‖²")
    spectrum.legend(frameon=False, fontsize=7)
    figure.suptitle(f"Linsker (1992) two-phase infomax, {report['samples']:,} samples")
    return figure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/linsker_tour.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--out", type=Path, default=Path("results/examples-linsker_tour"))
    arguments = parser.parse_args(argv)
    report = run_tour(arguments.out, arguments.quick)
    print(f"learned I(Z; S) = {report['mutual_information_nats']:.4f} nats, "
          f"{100 * report['fraction_of_optimum']:.2f}% of the closed-form optimum "
          f"{report['optimum_nats']:.4f} nats (mode spectrum relative L1 "
          f"{report['mode_spectrum_relative_l1']:.3f}); figure: {report['figure']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

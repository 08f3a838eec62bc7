"""Olshausen & Field sparse coding on the built-in images, compared with macaque V1.

Trains the O&F network (LCA inference with lateral inhibition, L1 prior, Hebbian dictionary
learning with gain normalisation; docs/science.md §5) on the package's built-in dead-leaves
images (generated, no download: Olshausen's own natural images are not shipped), fits a
Gabor function to every learned field and compares the population with V1 — Ringach's
(2002) nx–ny measurements of macaque simple cells, which the package carries
(``plasticsim/data/ringach2002_nxny.csv``) — and with the package's O&F network trained on
Olshausen's images (``plasticsim/data/olshausen_field_network.npz``), through
:func:`plasticsim.compare.compare`::

    python examples/sparse_coding_vs_v1.py            # the protocol's full length (minutes;
                                                      # add --backend numba to go faster)
    python examples/sparse_coding_vs_v1.py --quick    # 2 small images, 60 000 patches
    python examples/sparse_coding_vs_v1.py --out DIR  # default: results/examples-sparse_coding

Writes ``DIR/run/`` (the run), ``DIR/compare/`` (``report.md``, ``report.json``, the mosaics,
the nx–ny scatter over the V1 histogram, Gabor histograms) and ``DIR/sparse_coding_vs_v1.png``.
The quick run's fields are not yet V1-like; it shows the pipeline and that learning has
started to localise them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import plasticsim
from plasticsim.compare import compare
from plasticsim.plot.mosaic import plot_mosaic
from plasticsim.plot.style import save, styled, subplots

PROTOCOL = (Path(__file__).resolve().parents[1] / "protocols"
            / "olshausen_field_image_patches.yaml")
#: Two 192 × 192 dead-leaves images (about a second to generate instead of twenty), 60 000
#: patches, the dictionary's annealing shortened to match.
QUICK = ["stimuli.input.source={kind: dead_leaves, count: 2, size: 192}",
         "schedule.samples=60000", "learning_rates.dictionary.tau=10000", "record.every=20000"]
#: Rows of the printed table: report key, label, format.
ROWS = (("fraction_r2_above_0.9", "fields with Gabor R² > 0.9", "{:.1%}"),
        ("median_nx", "median nx", "{:.2f}"), ("median_ny", "median ny", "{:.2f}"),
        ("median_sf_bandwidth_octaves", "median SF bandwidth (octaves)", "{:.2f}"),
        ("blob_like_fraction", "blob-like (nx, ny < 0.30)", "{:.1%}"),
        ("tv_distance_to_v1", "TV distance of nx–ny to V1", "{:.3f}"))


@styled
def draw(fields: np.ndarray, report: dict):
    """The learned fields, and the run's nx–ny against V1's."""
    figure, (mosaic, scatter) = subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    plot_mosaic(mosaic, fields, f"Learned basis functions ({len(fields)} units)")
    edges = np.asarray(report["v1"]["edges"])
    counts = np.asarray(report["v1"]["counts"], dtype=float)
    centres = 0.5 * (edges[:-1] + edges[1:])
    nx, ny = np.meshgrid(centres, centres, indexing="ij")
    scatter.scatter(nx.ravel(), ny.ravel(), s=400 * counts.ravel() / counts.max(),
                    color="0.75", label=f"macaque V1 (Ringach 2002, {int(counts.sum())} cells)")
    name = next(iter(report["populations"]))
    row = report["populations"][name]
    histogram = np.asarray(row["nxny_histogram"], dtype=float)
    scatter.scatter(nx.ravel(), ny.ravel(), s=400 * histogram.ravel() / max(histogram.max(), 1),
                    facecolor="none", edgecolor="#d1495b",
                    label=f"this run ({int(histogram.sum())} good fits)")
    scatter.set_xlabel("nx = σx·f (envelope across the bars, in periods)")
    scatter.set_ylabel("ny = σy·f (along the bars)")
    scatter.set_title(f"nx–ny histograms: TV distance to V1 {row['tv_distance_to_v1']:.3f}")
    scatter.legend(frameon=False, fontsize=8, loc="upper right")
    figure.suptitle("Olshausen & Field sparse coding on built-in dead-leaves images vs V1")
    return figure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/sparse_coding_vs_v1.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run on small images")
    parser.add_argument("--backend", default=None, help="e.g. numba (default: the protocol's)")
    parser.add_argument("--out", type=Path, default=Path("results/examples-sparse_coding"))
    arguments = parser.parse_args(argv)
    out = arguments.out
    out.mkdir(parents=True, exist_ok=True)
    results = plasticsim.run(PROTOCOL, out / "run", overrides=QUICK if arguments.quick else [],
                             backend=arguments.backend, overwrite=True, progress=False,
                             figures=False)
    report = compare(out / "run" / "results.h5", reference="olshausen-field",
                     out=out / "compare")
    population = next(iter(results.receptive_fields))
    figure_path = save(draw(np.asarray(results.receptive_fields[population]), report),
                       out / "sparse_coding_vs_v1.png")
    names = list(report["populations"])
    print(f"{'':32}" + "".join(f"{name[:30]:>32}" for name in names) + f"{'V1':>10}")
    for key, label, form in ROWS:
        values = [report["populations"][name].get(key, float("nan")) for name in names]
        v1 = report["v1"].get(key)
        print(f"{label:32}" + "".join(f"{form.format(value):>32}" for value in values)
              + (f"{form.format(v1):>10}" if v1 is not None else f"{'':>10}"))
    print(f"report: {out / 'compare' / 'report.md'}; figure: {figure_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

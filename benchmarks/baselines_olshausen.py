"""PCA and FastICA baselines on Olshausen's images: Gabor-fit fractions, several seeds.

Fits both baselines (:mod:`plasticsim.analysis.baselines`) to 50 000 patches rebuilt from a
run's stored protocol, 144 components, ICA as basis functions and as filters, and prints
the fraction of fields with Gabor R² > 0.9 (and > 0.8), the median nx/ny, the blob-like
fraction and the median energy spread per seed. Needs a results file of
``protocols/olshausen_field_olshausen_images.yaml`` (any length: only its stimulus is used).

Usage (from the repository root; ~2 min per seed on one core)::

    plasticsim run protocols/olshausen_field_olshausen_images.yaml --out /tmp/of_ol \\
        --set stimuli.input.source.path='/path/to/sparsenet_tcl_trainset/image*'
    python benchmarks/baselines_olshausen.py /tmp/of_ol/results.h5 [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse

import numpy as np

from plasticsim.analysis.baselines import energy_spread, fit_ica, fit_pca, run_patches
from plasticsim.analysis.gabor import fit_gabors, summarize_fits
from plasticsim.io.results import load


def describe(name: str, fields: np.ndarray, extra: str = "") -> str:
    summary = summarize_fits(fit_gabors(fields, n_starts=2))
    return (f"{name}: R² > 0.9 {summary['fraction_r2_above_0.9']:.1%}, R² > 0.8 "
            f"{summary['fraction_r2_above_0.8']:.1%}, median nx {summary['median_nx']:.2f}, "
            f"ny {summary['median_ny']:.2f}, blob-like {summary['blob_like_fraction']:.1%} "
            f"of {summary['n_good']} good fits, median energy spread "
            f"{np.median(energy_spread(fields)):.2f} px{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="results.h5 of an Olshausen-images run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--patches", type=int, default=50_000)
    arguments = parser.parse_args()
    results = load(arguments.results)
    for seed in arguments.seeds:
        patches, shape = run_patches(results, arguments.patches, seed=seed)
        n_units = len(next(iter(results.receptive_fields.values())))
        for kind in ("basis_functions", "filters"):
            ica = fit_ica(patches, n_units, shape, seed=seed, field_kind=kind)
            print(describe(f"seed {seed} ICA {kind}", ica.fields,
                           f"; {ica.n_iterations} iterations, converged {ica.converged}"),
                  flush=True)
        print(describe(f"seed {seed} PCA", fit_pca(patches, n_units, shape).fields),
              flush=True)


if __name__ == "__main__":
    main()

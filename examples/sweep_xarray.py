"""A noise × seed sweep on Dask, read back as one xarray Dataset and plotted.

Sweeps the input-noise variance σ_n² of the 1-D Linsker protocol over several seeds with
:func:`plasticsim.sweep` (members run as Dask tasks on a ``LocalCluster``, one worker
process per core, or ``--workers N``), loads the whole sweep with
:func:`plasticsim.load_sweep` — one Dataset with dimensions ``noise``, ``seed`` and
``record`` — and plots the learned information against noise next to the closed-form
optimum::

    python examples/sweep_xarray.py             # σ_n² ∈ {0.01, 0.1, 1} × 3 seeds, 60 000 each
    python examples/sweep_xarray.py --quick     # 2 noise levels × 2 seeds, 4 000 samples
    python examples/sweep_xarray.py --out DIR   # default: results/examples-sweep_xarray

Needs the ``dask`` and ``analysis`` extras (``pip install 'plasticsim[dask,analysis]'``).
Writes the sweep directory ``DIR/sweep/`` (``sweep.json``, ``members/<k>/``),
``DIR/sweep_xarray.png`` and ``DIR/sweep_xarray.nc`` (the Dataset, netCDF). Running it again
skips the members that are already complete. For a SLURM cluster see
``examples/sweep_on_slurm.py`` where present, or pass ``scheduler=`` to
:func:`plasticsim.sweep`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import plasticsim
from plasticsim.plot.style import LEARNED, OPTIMAL, save, styled, subplots

PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "linsker1992_1d.yaml"
NOISE_KEY = "stimuli.input.input_noise.variance"
FULL = {"noise": [0.01, 0.1, 1.0], "seeds": [1, 2, 3],
        "overrides": ["schedule.samples=60000", "schedule.warmup_samples=5000",
                      "learning_rates.feedforward.tau=6000", "record.every=5000"]}
QUICK = {"noise": [0.1, 1.0], "seeds": [1, 2],
         "overrides": ["schedule.samples=4000", "schedule.warmup_samples=1000",
                       "learning_rates.feedforward.tau=1000", "record.every=1000"]}


def run_sweep(out: Path, quick: bool, workers: int | None):
    """Run (or complete) the sweep and return its Dataset."""
    settings = QUICK if quick else FULL
    grid = [f"noise:{NOISE_KEY}=" + ",".join(str(value) for value in settings["noise"])]
    plasticsim.sweep(PROTOCOL, out / "sweep", grid, seeds=settings["seeds"],
                     overrides=settings["overrides"], workers=workers, progress=False)
    return plasticsim.load_sweep(out / "sweep")


@styled
def draw(dataset):
    """Learned MI per seed and its mean against noise, with the closed-form optimum."""
    figure, (levels, training) = subplots(1, 2, figsize=(11, 3.8), layout="constrained")
    information = dataset["mutual_information_nats"]
    # xarray draws onto the axes it is given (no pyplot figure state).
    information.plot.line(x="noise", hue="seed", ax=levels, marker="o", lw=0.8,
                          add_legend=False, color=LEARNED, alpha=0.5)
    information.mean("seed").plot.line(x="noise", ax=levels, color=LEARNED, lw=2,
                                       label=f"learned (mean of {dataset.sizes['seed']} seeds)")
    dataset["optimum_nats"].isel(seed=0).plot.line(x="noise", ax=levels, color=OPTIMAL,
                                                    ls="--", label="closed-form optimum")
    levels.set_xscale("log")
    levels.set_xlabel("input-noise variance σ_n²")
    levels.set_ylabel("I(Z; S) (nats)")
    levels.set_title(f"Information against noise ({dataset.sizes['noise']} levels × "
                     f"{dataset.sizes['seed']} seeds)")
    levels.legend(frameon=False, fontsize=8)
    fraction = dataset["metrics/fraction_of_optimum"].mean("seed")
    fraction.plot.line(x="record", hue="noise", ax=training)
    training.set_xlabel("training samples")
    training.set_ylabel("fraction of the optimum (mean over seeds)")
    training.set_title("Learning curves per noise level")
    figure.suptitle(f"plasticsim.sweep of {dataset.attrs['protocol']} on Dask, "
                    "read with plasticsim.load_sweep")
    return figure


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python examples/sweep_xarray.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small, short sweep")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes of the LocalCluster (default: one per core)")
    parser.add_argument("--out", type=Path, default=Path("results/examples-sweep_xarray"))
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    dataset = run_sweep(arguments.out, arguments.quick, arguments.workers)
    figure_path = save(draw(dataset), arguments.out / "sweep_xarray.png")
    # netCDF reads "/" in a name as a group: store metrics/<name> as metrics.<name>.
    dataset.rename({name: name.replace("/", ".") for name in dataset.data_vars if "/" in name}
                   ).to_netcdf(arguments.out / "sweep_xarray.nc", engine="h5netcdf")
    print(dataset["mutual_information_nats"].to_pandas().to_string(
        float_format=lambda value: f"{value:.4f}"))
    fraction = dataset["fraction_of_optimum"]
    print(f"fraction of the optimum: {100 * float(fraction.min()):.2f}%–"
          f"{100 * float(fraction.max()):.2f}% over {int(np.prod(fraction.shape))} members; "
          f"figure: {figure_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

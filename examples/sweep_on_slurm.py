"""A plasticsim sweep on a SLURM cluster, through dask-jobqueue.

Each SLURM job starts one Dask worker; the sweep submits its members (noise levels × seeds
of the 1-D Linsker protocol) to the cluster's scheduler and writes ``sweep.json`` and
``members/<k>/`` under ``--out``. The directory must be on a file system that the compute
nodes share (home or project space, not a node's /tmp). Run this on a login node::

    pip install dask-jobqueue
    python examples/sweep_on_slurm.py --out /shared/me/noise_sweep --jobs 12 \\
        --queue normal --account my_project

Rerunning the same command skips members already complete and resumes interrupted ones from
their checkpoints. ``plasticsim.load_sweep(OUT)`` then gives one xarray Dataset with the
dimensions (noise, seed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import plasticsim

PROTOCOL = Path(__file__).resolve().parent.parent / "protocols" / "linsker1992_1d.yaml"
#: Input-noise variances σ_n² swept (the protocol's own value is 0.1).
NOISE_GRID = "noise:stimuli.input.input_noise.variance=0.01,0.03,0.1,0.3,1.0"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="sweep directory on a shared file system")
    parser.add_argument("--jobs", type=int, default=8, help="SLURM jobs (one worker each)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per noise level")
    parser.add_argument("--queue", help="SLURM partition")
    parser.add_argument("--account", help="SLURM account")
    parser.add_argument("--walltime", default="01:00:00", help="per job, HH:MM:SS")
    parser.add_argument("--quick", action="store_true", help="two noise levels, 20000 "
                        "samples per member: checks the cluster set-up in minutes")
    arguments = parser.parse_args()
    grid = "noise:stimuli.input.input_noise.variance=0.01,1.0" if arguments.quick \
        else NOISE_GRID
    overrides = ["schedule.samples=20000"] if arguments.quick else None

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        print("this example needs dask-jobqueue on the login node and the compute nodes: "
              "pip install dask-jobqueue", file=sys.stderr)
        return 2

    # One core and one worker per job: a member of this protocol runs on one core, and
    # plasticsim limits each member to one BLAS thread.
    cluster = SLURMCluster(cores=1, processes=1, memory="2GB", walltime=arguments.walltime,
                           queue=arguments.queue, account=arguments.account)
    cluster.scale(jobs=arguments.jobs)
    try:
        result = plasticsim.sweep(PROTOCOL, arguments.out, [grid], overrides=overrides,
                                  seeds=list(range(1, arguments.seeds + 1)),
                                  scheduler=cluster.scheduler_address,
                                  scheduler_timeout=60.0)
    finally:
        cluster.close()
    print(f"wrote {result.path}: {len(result.members)} members, {len(result.failed)} failed")
    dataset = plasticsim.load_sweep(arguments.out)
    print(dataset["mutual_information_bits"].mean("seed").to_series().to_string())
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())

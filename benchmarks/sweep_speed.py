"""Sweep speed: N members of the 1-D protocol on a Dask LocalCluster vs. the same members run
one after another.

Runs the members (noise levels × seeds of ``protocols/linsker1992_1d.yaml``) first one after
another in this process with :func:`plasticsim.run` (the baseline: the sum of their wall
times), then as one ``plasticsim.sweep`` on a LocalCluster of ``--workers`` processes (wall
time including starting the cluster), checks that every member's mutual information is the
same both ways, and prints the ratio sweep / sequential.

Usage (from the repository root)::

    python benchmarks/sweep_speed.py [--members 24] [--workers 2] [--samples 50000] \
        [--backend NAME] [--batch-size N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import plasticsim

REFERENCE = Path(__file__).resolve().parents[1] / "protocols" / "linsker1992_1d.yaml"
NOISES = (0.05, 0.1, 0.2, 0.4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=24, help="a multiple of 4")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--backend", help="backend of every member (default: the "
                        "protocol's, numpy); array:numpy batches members by default")
    parser.add_argument("--batch-size", type=int, help="members per Dask task (default: "
                        "plasticsim.sweep's; 1: no batching)")
    arguments = parser.parse_args()
    seeds = list(range(1, arguments.members // len(NOISES) + 1))
    overrides = [f"schedule.samples={arguments.samples}"]
    if arguments.backend:
        overrides.append(f"backend={arguments.backend}")
    grid = "noise:stimuli.input.input_noise.variance=" + ",".join(map(str, NOISES))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        sequential, alone = 0.0, {}
        for noise in NOISES:
            for seed in seeds:
                started = time.perf_counter()
                results = plasticsim.run(
                    REFERENCE, scratch / f"alone_{noise}_{seed}", seed=seed, progress=False,
                    figures=False,
                    overrides=overrides + [f"stimuli.input.input_noise.variance={noise}"])
                sequential += time.perf_counter() - started
                alone[noise, seed] = results.summary["mutual_information_bits"]
        started = time.perf_counter()
        result = plasticsim.sweep(REFERENCE, scratch / "sweep", [grid], seeds=seeds,
                                  overrides=overrides, workers=arguments.workers,
                                  progress=False, batch_size=arguments.batch_size)
        swept = time.perf_counter() - started
        assert not result.failed, result.failed
        for entry in result.members:
            assert entry["summary"]["mutual_information_bits"] == \
                alone[entry["values"]["noise"], entry["seed"]]
        members = sum(entry["wall_seconds"] for entry in result.members)
    print(f"{len(result.members)} members of {arguments.samples} samples: one after another "
          f"{sequential:.1f} s; sweep on {arguments.workers} workers {swept:.1f} s (members' "
          f"own wall time summed {members:.1f} s); ratio sweep / sequential "
          f"{swept / sequential:.2f}")


if __name__ == "__main__":
    main()

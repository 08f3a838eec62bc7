"""Peak memory of a long run: the 1-D protocol for 20 million samples with every population's
activity recorded every 1,000 samples (20,000 records streamed to the results file, a
checkpoint about once a minute).

Runs ``plasticsim run`` in a child process and prints its peak resident set size (from
``getrusage``), the wall time, the records written and the size of the results file.

Usage (from the repository root; about 10–20 min on the numba backend)::

    python benchmarks/long_run_memory.py [--samples 20000000] [--backend numba]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

REFERENCE = Path(__file__).resolve().parents[1] / "protocols" / "linsker1992_1d.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20_000_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--backend", default="numba")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "long"
        command = [sys.executable, "-m", "plasticsim.cli", "run", str(REFERENCE), "--out",
                   str(out), "--backend", arguments.backend, "--no-progress", "--no-figures",
                   "--set", f"schedule.samples={arguments.samples}",
                   "--set", f"record.every={arguments.every}",
                   "--set", "record.activities=true"]
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # kB on Linux
        with h5py.File(out / "results.h5", "r") as file:
            records = len(file["history/step"])
            shapes = {name: file[f"activities/{name}"].shape for name in file["activities"]}
        size_mb = (out / "results.h5").stat().st_size / 2**20
    print(f"{arguments.samples:,} samples, record every {arguments.every}, backend "
          f"{arguments.backend}: peak RSS {peak_mb:.0f} MB, wall {wall:.0f} s, {records} "
          f"records, activities {shapes}, results file {size_mb:.1f} MB")


if __name__ == "__main__":
    main()

"""Speed of the engine's backends on the Linsker, Olshausen–Field and SAILnet networks.

Linsker rows (the same per-sample work as ``benchmarks/brian2_linsker.py``): float64, inputs of
N units, M outputs, per sample the drive Y = C x, K = 20 Jacobi settling iterations
y ← Y + F y, the lateral update Q̂ ← Q̂ + ε (Y Yᵀ − Q̂) and the feedforward update
C ← C ± η αy xᵀ, phases alternating block by block (one block per step); no weight
constraint, no output noise. Two differences from the Brian2 script, neither changing the work
per sample: α is ``gershgorin`` (1/max row sum of |Q̂|, M² additions per sample) instead of a
fixed 0.25, and η = 1e-6 (with a fixed α and no constraint, C grows until the network
diverges within the ~10⁶ samples a full benchmark presents).

Rows (samples per second; for ensembles, summed over members):

- ``numpy``: the NumPy reference backend, one sample at a time.
- ``numba``: the Numba backend, one network, one sample at a time (the biologically literal
  mode).
- ``numba_batch``: the Numba backend with mini-batches of ``--batch`` samples.
- ``numba_ensemble``: ``--ensemble`` independent networks (one plan, a member axis), one
  sample at a time, members in parallel threads.
- ``numba_ensemble_batch``: one network per core, each with mini-batches of ``--batch``.
- ``array_batch``: the array backend (``--array`` namespace), where it is installed.
- ``array_ensemble``: ``--array-ensemble`` networks (0: skipped; 1024 on a GPU) as one stack
  on the array backend, each with mini-batches of ``--array-ensemble-batch`` (default 1: one
  sample at a time). For float32 on a CUDA device the row also gives the fraction of the
  card's FP32 peak (``--fp32-peak`` TFLOP/s, or the vendor figure for known card names).
- ``brian2_cpp_standalone`` / ``brian2_cython``: :func:`brian2_linsker.measure_brian2`, each
  in a subprocess; its main-loop time (code generation and compilation excluded).
- ``backend_brian2:cpp_standalone`` (``--brian2-backend``): the same plan on the Brian2
  backend (one sample per step). Its ``engine`` time is :meth:`Simulation.run_steps`, which
  for the standalone target includes starting the compiled binary and passing the state and
  the chunk's inputs through files (compilation excluded); ``main_loop`` is Brian2's own timer
  of the binary's simulation loop, the figure the hand-written network's row reports. Its
  ``×brian2`` column is the ratio to the hand-written network measured in the same run.
- ``olshausen_field`` and ``sailnet`` networks (the shipped protocols on the built-in images,
  144 units on 12 × 12 patches, mini-batches of 100): ``numpy``, ``numba``, ``array``.

Each row is timed twice: ``engine`` = :meth:`Simulation.run_steps` on a chunk drawn
beforehand (what Brian2's loop times, minus its random numbers) and ``end_to_end`` =
:meth:`Simulation.advance`, which also draws the stimulus (for the Gaussian-ring stimulus
N normals of white input noise per sample, which are only scaled, and for the sensing half of
the samples N more, filtered by a circular convolution: one product with the N × N circulant
up to 128 sites, an FFT above; image patches for the others) and the output noise.
Each figure is the best of ``--repeats`` runs: the machine may be shared, and the best run is
the least disturbed one.

``--baseline-checkout PATH`` times the same Linsker rows with the code of another checkout
(e.g. the pre-engine code) in a subprocess with ``PYTHONPATH=PATH``, interleaved with the
rows of this checkout (new, old, new, old, …) so that both see the same machine load, and
prints the ratio new/old. The subprocess calls that checkout's own
``benchmarks/linsker_speed.py`` functions ``benchmark_spec``, ``measure_simulation`` and
``measure_numba_ensemble`` (this module keeps their names and signatures).

FLOPs per Linsker sample: 4MN (drive and feedforward update) + 40M² (20 settling products)
+ 3M² (lateral update), so GFLOP/s = samples/s × FLOPs. The GEMM rate is measured in the
same run (a 2048² float64 matrix product on all cores), and the in-cache bound is the one in
the issue (≈ 1,000,000 / 64,000 / 4,000 samples/s).

Usage::

    .venv/bin/python benchmarks/linsker_speed.py --quick --no-brian2 --no-memory
    .venv/bin/python benchmarks/linsker_speed.py --baseline-checkout ../plasticsim-old --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

SIZES = [(64, 16), (256, 64), (1024, 256)]
IN_CACHE_BOUND = {(64, 16): 1_000_000, (256, 64): 64_000, (1024, 256): 4_000}
# Samples per measurement (full run); --quick divides by QUICK_DIVISOR.
SAMPLES = {
    "numpy": [20_000, 5_000, 500],
    "numba": [200_000, 20_000, 2_000],
    "numba_batch": [400_000, 100_000, 10_000],
    "numba_ensemble": [50_000, 5_000, 500],  # per member
    "array": [100_000, 20_000, 4_000],
    "array_ensemble": [1_000, 200, 50],  # per member
    "brian2_backend": [100_000, 10_000, 1_000],
}
QUICK_DIVISOR = 5
#: The issue's targets for one network, one sample at a time: engine GFLOP/s as a fraction of
#: one core's share of the GEMM rate.
ONE_CORE_GEMM_TARGET = {"64x16": 0.30, "256x64": 0.60, "1024x256": 0.45}
#: The sparse networks: protocol, samples per measurement (numpy, numba, array).
SPARSE_NETWORKS = {"olshausen_field": ("olshausen_field_image_patches.yaml", 2_000),
                   "sailnet": ("sailnet_olshausen_images.yaml", 5_000)}
#: Built-in images instead of files outside the repository (as the test suite does).
BUILTIN_IMAGES = ["stimuli.input.source={kind: skimage}", "stimuli.input.whiten=true"]
LINSKER_ROWS = ("numpy", "numba", "numba_batch", "numba_ensemble", "numba_ensemble_batch",
                "array_batch", "array_ensemble")
#: Dense FP32 peak (TFLOP/s, vendor figures, no tensor cores) by CUDA device name.
FP32_PEAK_TFLOPS = {"H200": 67.0, "H100 PCIe": 51.2, "H100": 67.0, "A100": 19.5, "L40S": 91.6,
                    "L4": 30.3, "A10": 31.2, "T4": 8.1}


def flops_per_sample(n_in: int, n_out: int) -> int:
    """Useful floating-point operations of one Linsker sample (see the module docstring)."""
    return 4 * n_in * n_out + 43 * n_out * n_out


def benchmark_document(n_in: int, n_out: int, batch: int = 1, backend: str = "numpy",
                       samples: int = 1000, record_every: int | None = None,
                       dtype: str = "float64", seed: int = 1) -> dict:
    """The benchmark Linsker network as a protocol document (see the module docstring)."""
    return {
        "name": f"linsker_speed_{n_in}x{n_out}",
        "model": {
            "populations": {"input": {"kind": "input", "size": n_in},
                            "output": {"kind": "linear", "size": n_out,
                                       "output_noise_variance": 0.0}},
            "projections": {
                "feedforward": {"pre": "input", "post": "output", "rule": "linsker_two_phase",
                                "init": {"kind": "normal", "scale": n_in ** -0.5}},
                "lateral": {"pre": "output", "post": "output", "rule": "anti_hebbian_lateral",
                            "settling": {"method": "jacobi", "iterations": 20,
                                         "tolerance": 0.0, "alpha": "gershgorin"}}}},
        "stimuli": {"input": {"kind": "gaussian_ring", "population": "input",
                              "signal_filter_sd": 0.5, "signal_variance": 1.0,
                              "input_noise": {"variance": 0.1}}},
        "schedule": {"samples": samples, "block_length": batch, "batch_size": batch,
                     "warmup_samples": 0},
        "learning_rates": {"feedforward": {"kind": "constant", "initial": 1e-6},
                           "lateral": {"kind": "constant", "initial": 1e-3}},
        "record": {"every": record_every or samples, "weights": True},
        "backend": backend,
        "dtype": dtype,
        "seed": seed,
    }


def benchmark_spec(n_in, n_out, batch=1, backend="numpy", samples=1000, record_every=None,
                   dtype="float64", seed=1):
    """:func:`benchmark_document` validated into a protocol spec."""
    from plasticsim.spec.loading import protocol_from_document
    return protocol_from_document(benchmark_document(n_in, n_out, batch, backend, samples,
                                                     record_every, dtype, seed))


def best_of(function, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``function()``."""
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def _synchronize(simulation) -> None:
    namespace = getattr(simulation, "namespace", None)
    if namespace is not None and hasattr(namespace, "synchronize"):
        namespace.synchronize()


def _timed_simulation(specs: list, backend: str, samples: int, repeats: int) -> dict:
    """Engine and end-to-end rates of a plan of ``specs`` (one member per spec), set up as
    ``plasticsim.run`` runs it: recording every ``samples`` samples, so that a backend that
    draws the next chunk ahead can do so."""
    from plasticsim.backends import build
    from plasticsim.engine.builder import build_plans

    batch = specs[0].schedule.batch_size
    total = batch + samples * (2 * repeats + 2)
    specs = [spec.model_copy(update={
        "schedule": spec.schedule.model_copy(update={"samples": total, "warmup_samples": 0}),
        "record": spec.record.model_copy(update={"every": samples})}) for spec in specs]
    plans = build_plans(specs)
    if len(plans) != 1:
        raise ValueError("the members of a benchmark ensemble must share one structure")
    simulation = build(plans[0], backend)
    simulation.advance(batch)  # compile or load the compiled code, touch the state once
    chunk = simulation.prepare_chunk(samples)

    def engine():
        failures = simulation.run_steps(chunk)
        if failures:
            raise RuntimeError(f"benchmark network failed: {failures[0]}")
        _synchronize(simulation)

    def end_to_end():
        simulation.advance(samples)
        _synchronize(simulation)

    members = len(specs)
    return {"engine": members * samples / best_of(engine, repeats),
            "end_to_end": members * samples / best_of(end_to_end, repeats)}


def measure_simulation(spec, backend: str, samples: int, repeats: int) -> dict:
    """Engine (a prepared chunk through ``run_steps``) and end-to-end (``advance``) rates."""
    return _timed_simulation([spec], backend, samples, repeats)


def measure_ensemble(spec, backend: str, members: int, samples: int, repeats: int) -> dict:
    """``members`` networks (seeds 0 … members − 1) in one plan on ``backend``."""
    specs = [spec.model_copy(update={"seed": seed}) for seed in range(members)]
    return _timed_simulation(specs, backend, samples, repeats)


def measure_numba_ensemble(spec, members: int, samples: int, repeats: int) -> dict:
    """``members`` networks (seeds 0 … members − 1) in one plan on the numba backend."""
    return measure_ensemble(spec, "numba", members, samples, repeats)


def fp32_peak(backend: str, given: float) -> float | None:
    """The CUDA device's dense FP32 peak in TFLOP/s: ``given`` if positive, else the vendor
    figure of a known card name; None off CUDA or for an unknown card."""
    if given > 0:
        return given
    if "cuda" not in backend and "cupy" not in backend:
        return None
    try:
        import torch
        device = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001  (no PyTorch or no device: the peak is unknown)
        return None
    return next((peak for key, peak in FP32_PEAK_TFLOPS.items() if key in device), None)


def measure_brian2_backend(spec, target: str, samples: int, repeats: int) -> dict:
    """:func:`measure_simulation` for a Brian2 backend target, plus (C++ standalone) the rate
    by Brian2's own timer of the binary's simulation loop, the figure the hand-written
    network's row reports."""
    from plasticsim.backends import build
    from plasticsim.engine.builder import build_plan
    spec = spec.model_copy(update={
        "schedule": spec.schedule.model_copy(update={"samples": samples * (repeats + 1),
                                                     "warmup_samples": 0}),
        "record": spec.record.model_copy(update={"every": samples})})
    simulation = build(build_plan(spec), target)
    simulation.advance(spec.schedule.batch_size)
    chunk = simulation.prepare_chunk(samples)
    loop = []

    def engine():
        if simulation.run_steps(chunk):
            raise RuntimeError("benchmark network failed")
        loop.append(getattr(simulation._runner, "last_run_seconds", None))

    rates = {"engine": samples / best_of(engine, repeats)}
    if all(loop):
        rates["main_loop"] = samples / min(loop)
    return rates


def sparse_network_spec(name: str, backend: str, dtype: str = "float64"):
    """A shipped sparse-coding protocol on the built-in images."""
    from plasticsim.spec.loading import load_protocol
    protocol, _ = SPARSE_NETWORKS[name]
    return load_protocol(HERE.parent / "protocols" / protocol,
                         BUILTIN_IMAGES + [f"backend={backend}", f"dtype={dtype}"])


def measure_gemm(repeats: int = 3, size: int = 2048) -> float:
    """GFLOP/s of a size² float64 matrix product (all cores, NumPy's BLAS)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b
    return 2 * size ** 3 / best_of(lambda: a @ b, repeats) / 1e9


def measure_memory(n_in: int, n_out: int, samples: int, every: int) -> float:
    """Peak resident MB of a full ``plasticsim run`` (numba, history every ``every``)."""
    code = (
        "import sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import linsker_speed, plasticsim\n"
        "spec = linsker_speed.benchmark_spec(%d, %d, samples=%d, record_every=%d, "
        "backend='numba')\n"
        "plasticsim.run(spec, %r, overwrite=True, progress=False, figures=False)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent.
        "print('PEAK_RSS_KB', open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
    )
    with tempfile.TemporaryDirectory() as out:
        # A first run compiles (LLVM alone peaks at ~250 MB) and fills the on-disk cache;
        # the measured run loads compiled code, as every later run on the machine does.
        warm = code % (str(HERE), str(HERE.parent), 16, 4, 10, 10, out)
        subprocess.run([sys.executable, "-c", warm], capture_output=True, check=False)
        program = code % (str(HERE), str(HERE.parent), n_in, n_out, samples, every, out)
        result = subprocess.run([sys.executable, "-c", program], capture_output=True,
                                text=True, check=False)
    for line in result.stdout.splitlines():
        if line.startswith("PEAK_RSS_KB"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"memory run failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def measure_brian(n_in, n_out, mode: str, quick: bool) -> dict:
    import brian2_linsker
    table = brian2_linsker.SAMPLES_QUICK if quick else brian2_linsker.SAMPLES_FULL
    samples = table[mode][SIZES.index((n_in, n_out))] if (n_in, n_out) in SIZES \
        else table[mode][-1]
    return brian2_linsker.measure_brian2(n_in, n_out, samples, mode, timeout=600)


# --------------------------------------------------------------- the baseline checkout
_BASELINE_WORKER = r"""
import json, os, sys
checkout = sys.argv[1]
sys.path.insert(0, os.path.join(checkout, "benchmarks"))
sys.path.insert(0, checkout)
import linsker_speed as old
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    job = json.loads(line)
    try:
        spec = old.benchmark_spec(job["n_in"], job["n_out"], batch=job["batch"],
                                  dtype=job["dtype"])
        if job["members"]:
            rates = old.measure_numba_ensemble(spec, job["members"], job["samples"], 1)
        else:
            rates = old.measure_simulation(spec, job["backend"], job["samples"], 1)
        print(json.dumps({"rates": rates}), flush=True)
    except Exception as error:  # report and carry on: one row's failure is not the run's
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
"""


class BaselineCheckout:
    """Another checkout's benchmark functions in a subprocess (``PYTHONPATH=checkout``).

    Its Numba cache goes to a folder of its own (``NUMBA_CACHE_DIR``), so the other
    checkout is only read. One measurement (best of 1) per :meth:`measure` call, so the
    caller can interleave them with its own.
    """

    def __init__(self, checkout: str):
        self.checkout = str(Path(checkout).resolve())
        environment = dict(os.environ, PYTHONPATH=self.checkout,
                           NUMBA_CACHE_DIR=str(Path(tempfile.gettempdir())
                                               / f"plasticsim-baseline-numba-{os.getuid()}"))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BASELINE_WORKER, self.checkout], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=environment, cwd=self.checkout)
        ready = self.process.stdout.readline()
        if not ready:
            raise RuntimeError(f"the baseline checkout {self.checkout} could not be imported "
                               "(see its error above)")

    def measure(self, row: str, n_in: int, n_out: int, batch: int, samples: int,
                members: int = 0, dtype: str = "float64") -> dict | None:
        backend = "numpy" if row == "numpy" else ("array:numpy" if row.startswith("array")
                                                  else "numba")
        job = {"n_in": n_in, "n_out": n_out, "batch": batch, "samples": samples,
               "members": members, "backend": backend, "dtype": dtype}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            print(f"  baseline {row}: {answer['error']}", flush=True)
            return None
        return answer["rates"]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=60)


def _best(runs: list) -> dict:
    """Per kind, the best rate over runs (None entries are failed runs)."""
    runs = [run for run in runs if run]
    return {kind: max(run[kind] for run in runs) for kind in ("engine", "end_to_end")
            if runs and all(kind in run for run in runs)}


# ------------------------------------------------------------------------------ main
def linsker_jobs(arguments, n_in, n_out, count) -> dict:
    """Row name → (spec factory arguments, members, samples) of the Linsker rows."""
    batch = arguments.batch
    workers = os.cpu_count() or 1
    return {
        "numpy": (1, 0, count("numpy", n_in, n_out)),
        "numba": (1, 0, count("numba", n_in, n_out)),
        "numba_batch": (batch, 0, count("numba_batch", n_in, n_out, batch)),
        "numba_ensemble": (1, arguments.ensemble, count("numba_ensemble", n_in, n_out)),
        "numba_ensemble_batch": (batch, workers, max(batch, count(
            "numba_batch", n_in, n_out, batch * workers) // workers // batch * batch)),
        "array_batch": (batch, 0, count("array", n_in, n_out, batch)),
        "array_ensemble": (arguments.array_ensemble_batch, arguments.array_ensemble,
                           count("array_ensemble", n_in, n_out,
                                 arguments.array_ensemble_batch)),
    }


def run_linsker_row(row, spec, members, samples, backend_array) -> dict:
    if row == "array_ensemble":
        return measure_ensemble(spec, backend_array, members, samples, 1)
    if members:
        return measure_numba_ensemble(spec, members, samples, 1)
    backend = {"numpy": "numpy", "array_batch": backend_array}.get(row, "numba")
    return measure_simulation(spec, backend, samples, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_DIVISOR}× fewer samples, one repeat less")
    parser.add_argument("--sizes", default=None, help="e.g. 64x16,256x64 (default: all three)")
    parser.add_argument("--batch", type=int, default=500, help="mini-batch size")
    parser.add_argument("--ensemble", type=int, default=8, help="networks in numba_ensemble")
    parser.add_argument("--array", default="array:numpy",
                        help="array backend name (array:torch:cuda, array:cupy on a GPU)")
    parser.add_argument("--array-ensemble", type=int, default=0,
                        help="networks in array_ensemble (0: skip the row; 1024 on a GPU)")
    parser.add_argument("--array-ensemble-batch", type=int, default=1,
                        help="mini-batch of each array_ensemble network")
    parser.add_argument("--fp32-peak", type=float, default=0.0,
                        help="the GPU's FP32 peak in TFLOP/s (0: from its name if known)")
    parser.add_argument("--no-brian2", action="store_true", help="skip the Brian2 rows")
    parser.add_argument("--brian2-backend", default="brian2:cpp_standalone",
                        help="Brian2 backend targets to time (comma-separated; '' for none), "
                        "e.g. brian2:cpp_standalone,brian2")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument("--no-gemm", action="store_true",
                        help="skip the CPU GEMM rate (e.g. for GPU rows)")
    parser.add_argument("--no-sparse", action="store_true",
                        help="skip the Olshausen–Field and SAILnet rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=0,
                        help="samples per Linsker measurement (per member for ensembles) "
                        "instead of the table's (0: the table's)")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--only", default=",".join(LINSKER_ROWS),
                        help="Linsker rows to run (comma-separated)")
    parser.add_argument("--baseline-checkout", default=None, metavar="PATH",
                        help="also time the Linsker rows with the code of this checkout "
                        "(interleaved) and print new/old")
    parser.add_argument("--json", default="results/linsker_speed.json", help="output file")
    arguments = parser.parse_args(argv)

    import plasticsim
    from plasticsim.errors import BackendUnavailable

    sizes = SIZES if not arguments.sizes else [
        tuple(int(v) for v in size.split("x")) for size in arguments.sizes.split(",")]
    divisor = QUICK_DIVISOR if arguments.quick else 1
    repeats = max(1, arguments.repeats - (1 if arguments.quick else 0))

    def count(row, n_in, n_out, multiple=1):
        index = SIZES.index((n_in, n_out)) if (n_in, n_out) in SIZES else -1
        samples = max(multiple, arguments.samples or SAMPLES[row][index] // divisor)
        return samples // multiple * multiple

    gemm = None if arguments.no_gemm else measure_gemm()
    if gemm is not None:
        print(f"GEMM (2048², float64, {os.cpu_count()} cores): {gemm:.1f} GFLOP/s", flush=True)
    baseline = BaselineCheckout(arguments.baseline_checkout) \
        if arguments.baseline_checkout else None
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cores": os.cpu_count(), "gemm_gflops": gemm,
                          "load_average": os.getloadavg()},
              "plasticsim_version": plasticsim.__version__, "quick": arguments.quick,
              "batch": arguments.batch, "ensemble": arguments.ensemble,
              "repeats": repeats, "baseline_checkout": arguments.baseline_checkout,
              "rows": []}
    only = set(arguments.only.split(","))
    dtype = arguments.dtype
    try:
        for n_in, n_out in sizes:
            flops = flops_per_sample(n_in, n_out)
            rows, old_rows = {}, {}
            for row, (batch, members, samples) in linsker_jobs(arguments, n_in, n_out,
                                                                 count).items():
                if row not in only or (row == "array_ensemble" and not members):
                    continue
                spec = benchmark_spec(n_in, n_out, batch=batch, dtype=dtype)
                new_runs, old_runs = [], []
                try:
                    for _ in range(repeats):  # interleaved: new, old, new, old, …
                        new_runs.append(run_linsker_row(row, spec, members, samples,
                                                        arguments.array))
                        if baseline is not None:
                            old_runs.append(baseline.measure(row, n_in, n_out, batch, samples,
                                                             members, dtype))
                except BackendUnavailable as error:
                    print(f"{n_in}x{n_out} {row}: skipped ({error})", flush=True)
                    continue
                rows[row] = _best(new_runs)
                if baseline is not None and _best(old_runs):
                    old_rows[row] = _best(old_runs)
            if not arguments.no_brian2 and dtype == "float64":
                for mode in ("cpp_standalone", "cython"):
                    info = measure_brian(n_in, n_out, mode, arguments.quick)
                    rows[f"brian2_{mode}"] = {"end_to_end": info["samples_per_second"],
                                              "brian2": info}
                for target in filter(None, arguments.brian2_backend.split(",")):
                    spec = benchmark_spec(n_in, n_out, batch=1, dtype=dtype)
                    samples = count("brian2_backend", n_in, n_out)
                    try:
                        rows[f"backend_{target}"] = measure_brian2_backend(spec, target,
                                                                           samples, repeats)
                    except BackendUnavailable as error:
                        print(f"{n_in}x{n_out} backend {target}: skipped ({error})", flush=True)
            standalone = rows.get("brian2_cpp_standalone", {}).get("end_to_end")
            numpy_rate = rows.get("numpy", {}).get("engine")
            for name, row in rows.items():
                entry = {"network": "linsker", "size": f"{n_in}x{n_out}", "row": name,
                         "flops_per_sample": flops}
                for kind in ("engine", "end_to_end", "main_loop"):
                    if kind not in row:
                        continue
                    rate = row[kind]
                    old = old_rows.get(name, {}).get(kind)
                    entry[kind] = {
                        "samples_per_second": rate,
                        "gflops": rate * flops / 1e9,
                        "fraction_of_gemm": rate * flops / 1e9 / gemm if gemm else None,
                        "fraction_of_in_cache_bound": rate / IN_CACHE_BOUND[(n_in, n_out)]
                        if (n_in, n_out) in IN_CACHE_BOUND else None,
                        "ratio_to_brian2_standalone": rate / standalone if standalone else None,
                        "ratio_to_numpy": rate / numpy_rate if numpy_rate else None,
                        "baseline_samples_per_second": old,
                        "ratio_to_baseline": rate / old if old else None}
                    if name == "array_ensemble" and dtype == "float32":
                        peak = fp32_peak(arguments.array, arguments.fp32_peak)
                        entry[kind]["fraction_of_fp32_peak"] = (rate * flops / 1e12 / peak
                                                                if peak else None)
                if name == "array_ensemble":
                    entry.update(members=arguments.array_ensemble, backend=arguments.array,
                                 batch=arguments.array_ensemble_batch)
                if "brian2" in row:
                    entry["brian2"] = row["brian2"]
                report["rows"].append(entry)
                print_row(entry)
        if not arguments.no_sparse:
            for network, (_, samples) in SPARSE_NETWORKS.items():
                samples = max(100, samples // divisor // 100 * 100)
                measured = {}
                for backend in ("numpy", "numba", arguments.array):
                    try:
                        spec = sparse_network_spec(network, "numpy", dtype)
                        measured[backend] = _best([measure_simulation(spec, backend, samples, 1)
                                                   for _ in range(repeats)])
                    except BackendUnavailable as error:
                        print(f"{network} {backend}: skipped ({error})", flush=True)
                numpy_rate = measured.get("numpy", {}).get("engine")
                for backend, row in measured.items():
                    entry = {"network": network, "size": "144x144", "row": backend}
                    for kind, rate in row.items():
                        entry[kind] = {"samples_per_second": rate,
                                       "ratio_to_numpy": rate / numpy_rate if numpy_rate
                                       else None}
                    report["rows"].append(entry)
                    print_row(entry)
    finally:
        if baseline is not None:
            baseline.close()
    if not arguments.no_memory:
        samples = 5000 if arguments.quick else 20000
        peak = measure_memory(1024, 256, samples, 1000)
        report["memory"] = {"size": "1024x256", "samples": samples, "record_every": 1000,
                            "peak_resident_mb": peak}
        print(f"memory: 1024x256, {samples} samples, history every 1000: peak resident "
              f"{peak:.0f} MB (target < 500 MB)", flush=True)
    report["targets"] = targets(report)
    for line in report["targets"]:
        print(line)
    path = Path(arguments.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


HEADER_PRINTED = []


def print_row(entry: dict) -> None:
    if not HEADER_PRINTED:
        print(f"\n{'network':<16}{'size':>9} {'row':<22}{'kind':<11}{'samples/s':>12}"
              f"{'GFLOP/s':>9}{'%GEMM':>7}{'%cache':>8}{'×brian2':>9}{'×numpy':>8}"
              f"{'baseline':>12}{'new/old':>9}")
        HEADER_PRINTED.append(True)
    for kind in ("engine", "end_to_end", "main_loop"):
        if kind not in entry:
            continue
        value = entry[kind]

        def number(key, template, value=value):
            return template.format(value[key]) if value.get(key) is not None else "-"
        print(f"{entry['network']:<16}{entry['size']:>9} {entry['row']:<22}{kind:<11}"
              f"{value['samples_per_second']:>12,.0f}{number('gflops', '{:.2f}'):>9}"
              f"{number('fraction_of_gemm', '{:.1%}'):>7}"
              f"{number('fraction_of_in_cache_bound', '{:.1%}'):>8}"
              f"{number('ratio_to_brian2_standalone', '{:.2f}'):>9}"
              f"{number('ratio_to_numpy', '{:.1f}'):>8}"
              f"{number('baseline_samples_per_second', '{:,.0f}'):>12}"
              f"{number('ratio_to_baseline', '{:.2f}'):>9}", flush=True)


def targets(report: dict) -> list[str]:
    """The issue's targets, each with the measured figure and met / not met."""
    lines = []
    rows = {(row["network"], row["size"], row["row"]): row for row in report["rows"]}
    for (network, size, name), row in rows.items():
        ratio = row.get("engine", {}).get("ratio_to_baseline")
        if ratio is not None:
            lines.append(f"target engine ≥ 90% of the baseline ({network} {size} {name}): "
                         f"{ratio:.0%} — {'met' if ratio >= 0.9 else 'NOT met'}")
    for network in SPARSE_NETWORKS:
        compiled = rows.get((network, "144x144", "numba"))
        reference = rows.get((network, "144x144", "numpy"))
        if compiled and reference:
            for kind in ("engine", "end_to_end"):
                ratio = compiled[kind]["samples_per_second"] / \
                    reference[kind]["samples_per_second"]
                goal = 3.0 if kind == "end_to_end" else 1.0
                lines.append(f"target numba ≥ {goal:g}× numpy ({network}, {kind}): "
                             f"{ratio:.2f}× — {'met' if ratio >= goal else 'NOT met'}")
    for size in sorted({row["size"] for row in report["rows"] if row["network"] == "linsker"},
                       key=lambda s: int(s.split("x")[0])):
        one = rows.get(("linsker", size, "numba"))
        for kind in ("engine", "end_to_end"):
            ratio = one[kind]["ratio_to_brian2_standalone"] if one else None
            if ratio is not None:
                lines.append(f"target numba one-sample ≥ 5× Brian2 standalone at {size} "
                             f"({kind}): {ratio:.2f}× — {'met' if ratio >= 5 else 'NOT met'}")
        gemm = report["machine"]["gemm_gflops"]
        if one and gemm and size in ONE_CORE_GEMM_TARGET:
            # One network uses one core: its share of the all-core GEMM rate.
            share = one["engine"]["gflops"] / (gemm / report["machine"]["cores"])
            goal = ONE_CORE_GEMM_TARGET[size]
            lines.append(f"target numba one-sample engine ≥ {goal:.0%} of one core's GEMM "
                         f"share at {size}: {share:.1%} — {'met' if share >= goal else 'NOT met'}")
        if size == "64x16" and one:
            for kind in ("engine", "end_to_end"):
                fraction = one[kind]["fraction_of_in_cache_bound"]
                lines.append(f"target numba one-sample ≥ 50% of in-cache bound at 64x16 "
                             f"({kind}): {fraction:.1%} — "
                             f"{'met' if fraction >= 0.5 else 'NOT met'}")
        candidates = [(rows[("linsker", size, name)][kind]["fraction_of_gemm"] or 0.0, name,
                       kind)
                      for name in ("numba_batch", "numba_ensemble", "numba_ensemble_batch",
                                   "array_batch")
                      if ("linsker", size, name) in rows
                      for kind in ("engine", "end_to_end") if kind in rows[("linsker", size,
                                                                             name)]]
        if size in ("256x64", "1024x256") and candidates:
            best = max(candidates)
            lines.append(f"target batched/ensemble ≥ 50% of GEMM at {size}: best "
                         f"{best[0]:.1%} ({best[1]}, {best[2]}) — "
                         f"{'met' if best[0] >= 0.5 else 'NOT met'}")
    for row in report["rows"]:
        for kind in ("engine", "end_to_end"):
            fraction = row.get(kind, {}).get("fraction_of_fp32_peak")
            if fraction is not None:
                lines.append(f"target GPU ensemble of ≥ 1024 networks ≥ 25% of FP32 peak "
                             f"({row['size']}, {row['members']} members, batch "
                             f"{row['batch']}, {kind}): {fraction:.2%} — "
                             f"{'met' if fraction >= 0.25 and row['members'] >= 1024 else 'NOT met'}")
    for (network, size, name), row in rows.items():
        if name.startswith("backend_brian2"):
            for kind in ("engine", "main_loop"):
                ratio = row.get(kind, {}).get("ratio_to_brian2_standalone")
                if ratio is not None:
                    lines.append(f"target {name} within 1.5× of the hand-written Brian2 network "
                                 f"at {size} ({kind}): {ratio:.2f}× — "
                                 f"{'met' if ratio >= 1 / 1.5 else 'NOT met'}")
    if "memory" in report:
        peak = report["memory"]["peak_resident_mb"]
        lines.append(f"target memory 1024x256 < 500 MB resident: {peak:.0f} MB — "
                     f"{'met' if peak < 500 else 'NOT met'}")
    return lines


if __name__ == "__main__":
    sys.exit(main())

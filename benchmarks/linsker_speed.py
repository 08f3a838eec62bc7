"""Speed of the Linsker network on every backend, against Brian2, in one run.

The network (the same per-sample work as ``benchmarks/brian2_linsker.py``): float64, inputs
of N units, M outputs, per sample the drive Y = C x, 20 Jacobi settling iterations
y ← Y + F y, the lateral update Q̂ ← Q̂ + ε (Y Yᵀ − Q̂) and the feedforward update
C ← C ± η αy xᵀ, phases alternating sample by sample; no weight constraint, no output noise.
Two differences from the Brian2 script, neither changing the work per sample: α is
``gershgorin`` (1/max row sum of |Q̂|, M² additions per sample) instead of a fixed 0.25, and
η = 1e-6. Brian2's inputs have the same statistics in both phases, so its weights do not
grow; here the sensing phase carries the signal, C grows without a constraint, and a fixed
α diverged within the ~10⁶ samples a full benchmark presents.

Rows (samples per second; for ensembles, summed over members):

- ``numpy``: the NumPy reference backend, one sample at a time.
- ``numba``: the Numba backend, one network, one sample at a time (the biologically literal
  mode).
- ``numba_batch``: the Numba backend with mini-batches of ``--batch`` samples.
- ``numba_ensemble``: ``--ensemble`` independent networks, one sample at a time, in parallel.
- ``numba_ensemble_batch``: one network per core, each with mini-batches of ``--batch``.
- ``array``: the array backend (``--array`` namespace; NumPy on the CPU unless a GPU is
  asked for) with mini-batches, and ``array_ensemble`` with ``--gpu-ensemble`` networks.
- ``brian2_cpp_standalone`` / ``brian2_cython``: :func:`brian2_linsker.measure_brian2`, each
  in a subprocess; its main-loop time (code generation and compilation excluded).

Each plasticsim row is timed twice: ``engine`` = steps 2–6 of the step contract on
pre-drawn samples (what Brian2's loop times, minus its random numbers) and ``end_to_end`` =
``advance()``, which also draws the stimulus (two N × N filter products per sample for the
Gaussian-ring stimulus) and the output noise. Each figure is the best of ``--repeats`` runs
(the development machine is shared; the best run is the least disturbed one).

FLOPs per sample: 4MN (drive and feedforward update) + 40M² (20 settling products)
+ 3M² (lateral update), so GFLOP/s = samples/s × FLOPs. The GEMM rate is measured in the
same run (a 2048² float64 matrix product on all cores), and the in-cache bound is the one
in the issue (≈ 1,000,000 / 64,000 / 4,000 samples/s).

Usage::

    .venv/bin/python benchmarks/linsker_speed.py --quick --json results/linsker_speed.json
    .venv/bin/python benchmarks/linsker_speed.py --no-brian2 --sizes 64x16
"""

from __future__ import annotations

import argparse
import itertools
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
BRIAN2_REFERENCE = {"brian2_cpp_standalone": [96_000, 9_200, 530],
                    "brian2_cython": [1_070, 1_070, 290]}
# Samples per measurement (full run); --quick divides by QUICK_DIVISOR.
SAMPLES = {
    "numpy": [20_000, 5_000, 500],
    "numba": [200_000, 20_000, 2_000],
    "numba_batch": [400_000, 100_000, 10_000],
    "numba_ensemble": [50_000, 5_000, 500],  # per member
    "array": [100_000, 20_000, 4_000],
    "array_ensemble": [5_000, 1_000, 100],  # per member
}
QUICK_DIVISOR = 5


def flops_per_sample(n_in: int, n_out: int) -> int:
    """Useful floating-point operations of one sample (see the module docstring)."""
    return 4 * n_in * n_out + 43 * n_out * n_out


def benchmark_document(n_in: int, n_out: int, batch: int = 1, backend: str = "numpy",
                       samples: int = 1000, record_every: int | None = None,
                       dtype: str = "float64") -> dict:
    """The benchmark network as a protocol document (see the module docstring)."""
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
                                         "tolerance": 0.0, "alpha": "gershgorin"}}},
            "constraints": []},
        "stimuli": {"input": {"kind": "gaussian_ring", "population": "input",
                              "signal_filter_sd": 0.5, "signal_variance": 1.0,
                              "input_noise": {"variance": 0.1}}},
        "schedule": {"samples": samples, "block_length": batch, "batch_size": batch},
        "learning_rates": {"feedforward": {"kind": "constant", "initial": 1e-6},
                           "lateral": {"kind": "constant", "initial": 1e-3}},
        "record": {"every": record_every or samples, "weights": True},
        "backend": backend,
        "dtype": dtype,
    }


def benchmark_spec(*args, **kwargs):
    from plasticsim.loading import protocol_from_document
    return protocol_from_document(benchmark_document(*args, **kwargs))


def best_of(function, repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls of ``function()``."""
    best = np.inf
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def measure_simulation(spec, backend: str, samples: int, repeats: int) -> dict:
    """Engine (pre-drawn steps) and end-to-end (``advance``) rates of one network.

    The run is set up as ``plasticsim.run`` would run it, recording every ``samples``
    samples, so a backend that draws the next chunk ahead (numba) can do so.
    """
    from plasticsim.backends import build
    from plasticsim.ensemble import step_plan

    batch = spec.schedule.batch_size
    total = batch + samples * (2 * repeats + 2)
    spec = spec.model_copy(update={
        "schedule": spec.schedule.model_copy(update={"samples": total}),
        "record": spec.record.model_copy(update={"every": samples})})
    simulation = build(spec, backend)
    simulation.advance(batch)  # compile / load compiled code, touch the state once
    phases, feedforward, lateral, offset = step_plan(simulation, samples)
    inputs, noise = simulation._draw(phases)

    def engine():
        simulation._run_steps(inputs, noise, phases, feedforward, lateral, offset)
        synchronize(simulation)

    def end_to_end():
        simulation.advance(samples)
        synchronize(simulation)

    return {"engine": samples / best_of(engine, repeats),
            "end_to_end": samples / best_of(end_to_end, repeats)}


def synchronize(simulation) -> None:
    namespace = getattr(simulation, "namespace", None)
    if namespace is not None:
        namespace.synchronize()


def measure_numba_ensemble(spec, members: int, samples: int, repeats: int) -> dict:
    """E networks one sample at a time: compiled members in parallel threads."""
    from plasticsim.backends.numba_backend import (
        NumbaEnsemble,
        _executor,
        lateral_batch_rates,
        run_members,
    )
    from plasticsim.ensemble import step_plan

    specs = [spec.model_copy(update={"seed": seed}) for seed in range(members)]
    ensemble = NumbaEnsemble(specs)
    ensemble.advance(1)
    group = ensemble.groups[0]
    plans = [step_plan(simulation, samples) for simulation in ensemble.members]
    draws = [simulation._draw(plan[0]) for simulation, plan in zip(ensemble.members, plans)]
    arguments = (group["C"], group["Q"], group["covariances"],
                 np.stack([draw[0] for draw in draws]), np.stack([draw[1] for draw in draws]),
                 np.stack([plan[0] for plan in plans]).astype(np.int64),
                 np.stack([plan[1] for plan in plans]),
                 np.stack([lateral_batch_rates(plan[2], spec.schedule.batch_size)
                           for plan in plans]),
                 group["int_parameters"], group["float_parameters"], group["constraint_ints"],
                 group["constraint_floats"], np.zeros((members, 2), np.int64),
                 np.zeros((members, 2)))
    del draws
    workers = os.cpu_count() or 1
    bounds = np.linspace(0, members, min(workers, members) + 1).astype(int)

    def engine():
        futures = [_executor().submit(run_members, low, high, *arguments)
                   for low, high in itertools.pairwise(bounds)]
        for future in futures:
            future.result()

    return {"engine": members * samples / best_of(engine, repeats),
            "end_to_end": members * samples / best_of(lambda: ensemble.advance(samples),
                                                      repeats)}


def measure_array_ensemble(spec, name: str, members: int, samples: int,
                           repeats: int) -> dict:
    from plasticsim.backends.array_backend import ArrayEnsemble

    specs = [spec.model_copy(update={"seed": seed}) for seed in range(members)]
    ensemble = ArrayEnsemble(specs, name)
    ensemble.advance(1)

    def end_to_end():
        ensemble.advance(samples)
        ensemble.groups[0][1].xp.synchronize()

    return {"end_to_end": members * samples / best_of(end_to_end, repeats)}


FP32_PEAK_TFLOPS = {"H200": 67.0, "H100 PCIe": 51.2, "H100": 67.0, "A100": 19.5,
                    "L4": 30.3, "A10": 31.2, "T4": 8.1}


def guess_fp32_peak(name: str) -> float | None:
    """Dense FP32 peak (TFLOP/s, vendor figure) of the CUDA device, if known by name."""
    if "cuda" not in name and "cupy" not in name:
        return None
    try:
        import torch
        device = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001  (no torch or no device: the peak is unknown)
        return None
    for key, peak in FP32_PEAK_TFLOPS.items():
        if key in device:
            return peak
    return None


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_DIVISOR}× fewer samples, one repeat less")
    parser.add_argument("--sizes", default=None, help="e.g. 64x16,256x64 (default: all three)")
    parser.add_argument("--batch", type=int, default=500, help="mini-batch size")
    parser.add_argument("--ensemble", type=int, default=8, help="networks in numba_ensemble")
    parser.add_argument("--array", default="array:numpy",
                        help="array backend name (array:torch:cuda, array:cupy on a GPU)")
    parser.add_argument("--gpu-ensemble", type=int, default=0,
                        help="networks in array_ensemble (0: skip; 1024 on a GPU)")
    parser.add_argument("--no-brian2", action="store_true", help="skip the Brian2 rows")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--only", default="numpy,numba,array,brian2",
                        help="row families to run (comma-separated)")
    parser.add_argument("--fp32-peak", type=float, default=0.0,
                        help="the GPU's FP32 peak in TFLOP/s (0: guess from its name)")
    parser.add_argument("--json", default="results/linsker_speed.json", help="output file")
    arguments = parser.parse_args(argv)

    import plasticsim

    sizes = SIZES if not arguments.sizes else [
        tuple(int(v) for v in size.split("x")) for size in arguments.sizes.split(",")]
    divisor = QUICK_DIVISOR if arguments.quick else 1
    repeats = max(1, arguments.repeats - (1 if arguments.quick else 0))

    def count(row, n_in, n_out, multiple=1):
        index = SIZES.index((n_in, n_out)) if (n_in, n_out) in SIZES else -1
        samples = max(multiple, SAMPLES[row][index] // divisor)
        return samples // multiple * multiple

    gemm = measure_gemm()
    print(f"GEMM (2048², float64, {os.cpu_count()} cores): {gemm:.1f} GFLOP/s", flush=True)
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cores": os.cpu_count(), "gemm_gflops": gemm,
                          "load_average": os.getloadavg()},
              "plasticsim_version": plasticsim.__version__, "quick": arguments.quick,
              "batch": arguments.batch, "ensemble": arguments.ensemble, "rows": []}
    only = set(arguments.only.split(","))
    dtype = arguments.dtype
    batch = arguments.batch
    for n_in, n_out in sizes:
        flops = flops_per_sample(n_in, n_out)
        rows = {}

        def spec(n_in=n_in, n_out=n_out, **options):
            return benchmark_spec(n_in, n_out, dtype=dtype, **options)
        if "numpy" in only:
            rows["numpy"] = measure_simulation(spec(), "numpy", count("numpy", n_in, n_out),
                                               repeats)
        if "numba" in only:
            rows["numba"] = measure_simulation(spec(), "numba", count("numba", n_in, n_out),
                                               repeats)
            rows["numba_batch"] = measure_simulation(
                spec(batch=batch), "numba", count("numba_batch", n_in, n_out, batch), repeats)
            rows["numba_ensemble"] = measure_numba_ensemble(
                spec(), arguments.ensemble, count("numba_ensemble", n_in, n_out), repeats)
            workers = os.cpu_count() or 1
            rows["numba_ensemble_batch"] = measure_numba_ensemble(
                spec(batch=batch), workers,
                count("numba_batch", n_in, n_out, batch * workers) // workers, repeats)
        if "array" in only:
            rows["array_batch"] = measure_simulation(
                spec(batch=batch), arguments.array, count("array", n_in, n_out, batch),
                repeats)
            if arguments.gpu_ensemble:
                rows["array_ensemble"] = measure_array_ensemble(
                    spec(), arguments.array, arguments.gpu_ensemble,
                    count("array_ensemble", n_in, n_out), repeats)
        if "brian2" in only and dtype == "float64":
            for mode in ("cpp_standalone", "cython"):
                info = measure_brian(n_in, n_out, mode, arguments.quick)
                rows[f"brian2_{mode}"] = {"end_to_end": info["samples_per_second"],
                                          "brian2": info}
        standalone = rows.get("brian2_cpp_standalone", {}).get("end_to_end")
        numpy_rate = rows.get("numpy", {}).get("end_to_end")
        for name, row in rows.items():
            entry = {"size": f"{n_in}x{n_out}", "row": name, "flops_per_sample": flops}
            for kind in ("engine", "end_to_end"):
                if kind not in row:
                    continue
                rate = row[kind]
                entry[kind] = {
                    "samples_per_second": rate,
                    "gflops": rate * flops / 1e9,
                    "fraction_of_gemm": rate * flops / 1e9 / gemm,
                    "fraction_of_in_cache_bound": rate / IN_CACHE_BOUND[(n_in, n_out)]
                    if (n_in, n_out) in IN_CACHE_BOUND else None,
                    "ratio_to_brian2_standalone": rate / standalone if standalone else None,
                    "ratio_to_numpy": rate / numpy_rate if numpy_rate else None}
                if name == "array_ensemble":
                    peak = arguments.fp32_peak or guess_fp32_peak(arguments.array)
                    entry[kind]["fraction_of_fp32_peak"] = \
                        rate * flops / 1e12 / peak if peak else None
            if "brian2" in row:
                entry["brian2"] = row["brian2"]
            report["rows"].append(entry)
            print_row(entry)
    if not arguments.no_memory:
        samples = 5000 if arguments.quick else 20000
        peak = measure_memory(1024, 256, samples, 1000)
        report["memory"] = {"size": "1024x256", "samples": samples, "record_every": 1000,
                            "peak_resident_mb": peak}
        print(f"memory: 1024x256, {samples} samples, history every 1000: peak resident "
              f"{peak:.0f} MB (target < 500 MB)", flush=True)
    report["targets"] = targets(report)
    for row in report["rows"]:
        fraction = row.get("end_to_end", {}).get("fraction_of_fp32_peak")
        if fraction is not None:
            report["targets"].append(
                f"target GPU ensemble of ≥ 1024 networks ≥ 25% of FP32 peak ({row['size']}, "
                f"{dtype}): {fraction:.2%} — {'met' if fraction >= 0.25 else 'NOT met'}")
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
        print(f"\n{'size':>9} {'row':<22}{'kind':<11}{'samples/s':>12}{'GFLOP/s':>9}"
              f"{'%GEMM':>7}{'%cache':>8}{'×brian2':>9}{'×numpy':>8}")
        HEADER_PRINTED.append(True)
    for kind in ("engine", "end_to_end"):
        if kind not in entry:
            continue
        value = entry[kind]

        def number(key, template, value=value):
            return template.format(value[key]) if value.get(key) is not None else "-"
        print(f"{entry['size']:>9} {entry['row']:<22}{kind:<11}"
              f"{value['samples_per_second']:>12,.0f}{value['gflops']:>9.2f}"
              f"{number('fraction_of_gemm', '{:.1%}'):>7}"
              f"{number('fraction_of_in_cache_bound', '{:.1%}'):>8}"
              f"{number('ratio_to_brian2_standalone', '{:.2f}'):>9}"
              f"{number('ratio_to_numpy', '{:.1f}'):>8}", flush=True)


def targets(report: dict) -> list[str]:
    """The issue's targets, each with the measured figure and met / not met."""
    lines = []
    rows = {(row["size"], row["row"]): row for row in report["rows"]}
    for size in sorted({row["size"] for row in report["rows"]},
                       key=lambda s: int(s.split("x")[0])):
        one = rows.get((size, "numba"))
        for kind in ("engine", "end_to_end"):
            ratio = one[kind]["ratio_to_brian2_standalone"] if one else None
            if ratio is not None:
                lines.append(f"target numba one-sample ≥ 5× Brian2 standalone at {size} "
                             f"({kind}): {ratio:.2f}× — {'met' if ratio >= 5 else 'NOT met'}")
        if size == "64x16" and one:
            for kind in ("engine", "end_to_end"):
                fraction = one[kind]["fraction_of_in_cache_bound"]
                lines.append(f"target numba one-sample ≥ 50% of in-cache bound at 64x16 "
                             f"({kind}): {fraction:.1%} — "
                             f"{'met' if fraction >= 0.5 else 'NOT met'}")
        candidates = [(rows[(size, name)][kind]["fraction_of_gemm"], name, kind)
                      for name in ("numba_batch", "numba_ensemble", "numba_ensemble_batch",
                                   "array_batch")
                      if (size, name) in rows
                      for kind in ("engine", "end_to_end") if kind in rows[(size, name)]]
        if size in ("256x64", "1024x256") and candidates:
            best = max(candidates)
            lines.append(f"target batched/ensemble ≥ 50% of GEMM at {size}: best "
                         f"{best[0]:.1%} ({best[1]}, {best[2]}) — "
                         f"{'met' if best[0] >= 0.5 else 'NOT met'}")
    if "memory" in report:
        peak = report["memory"]["peak_resident_mb"]
        lines.append(f"target memory 1024x256 < 500 MB resident: {peak:.0f} MB — "
                     f"{'met' if peak < 500 else 'NOT met'}")
    return lines


if __name__ == "__main__":
    sys.exit(main())

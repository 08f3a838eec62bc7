"""Brian2 side of the Linsker-network speed benchmark.

The network (same per-sample steps as the plasticsim engine runs)
-----------------------------------------------------------------
For every sample, with ``x`` a vector of ``n_in`` float64 values::

    Y = C x                                 # feedforward drive, C is n_out x n_in
    y = Y;  repeat 20 times: y <- Y + F y   # Jacobi lateral settling, F = I - alpha Q
    Q <- Q + eps (Y Y^T - Q)                # anti-Hebbian lateral term + decay
    F  = I - alpha Q
    C <- C + eta s (alpha y) x^T            # s = +1 sensing phase, -1 noise phase

Phases alternate sample by sample (sample 0 is sensing, s=+1; sample 1 noise,
s=-1; ...).  Inputs are Gaussian, ``randn()`` per input neuron per sample (the
correctness check feeds fixed inputs from a ``TimedArray`` instead).

Brian2 formulation
------------------
Two clocks: a base clock ``dt`` (one Jacobi iteration per step) and a sample
clock ``dt_s = 20 dt`` (one sample per 20 base steps).  Objects:

* ``inp``  NeuronGroup(n_in), sample clock: ``x``.
* ``hid``  NeuronGroup(n_out), sample clock: ``Y`` (target of the feedforward
  summed variable) and ``y`` linked to ``out.y``.
* ``out``  NeuronGroup(n_out), base clock: ``y``, ``L`` (target of the lateral
  summed variable) and ``Y`` linked to ``hid.Y``.
* ``ff``   Synapses(inp -> hid), dense all-to-all, synaptic weight ``C``;
  ``Y_post = C*x_pre : 1 (summed)``.  A summed variable is evaluated on the
  clock of its *target* group, so putting ``Y`` in the sample-clock group
  ``hid`` makes the n_in*n_out feedforward product run once per sample instead
  of once per time step.
* ``lat``  Synapses(out -> out), dense all-to-all including i == j, variables
  ``Q`` and ``F`` (F = delta_ij - alpha*Q kept as a stored weight);
  ``L_post = F*y_pre : 1 (summed)`` on the base clock, i.e. one dense F y
  product per time step = one Jacobi iteration.

Order of operations in a time step (schedule slot, order), sample-clock items
only at sample boundaries:

1. ``start``, 0 (sample clock): plasticity for the sample that has just
   finished, ``ff``: ``C += eta*alpha*s*y_post*x_pre`` and ``lat``:
   ``Q += eps*(Y_pre*Y_post - Q); F = int(i == j) - alpha*Q``.  Both are gated
   by ``int(t > 0*second)`` because there is no finished sample at t = 0.
2. ``start``, 1: flip the phase sign ``s`` (shared variable of ``ff``).
3. ``start``, 2: draw the new input, ``x = randn()``.
4. ``groups``, 0: summed variable ``Y = C x`` (sample clock).
5. ``groups``, 2: ``y = Y`` (initial Jacobi iterate, sample clock).
6. ``groups``, 3: summed variable ``L = F y`` (base clock).
7. ``groups``, 5: ``y = Y + L`` (base clock) -- one Jacobi iteration.

So a sample occupies exactly 20 base steps and gets exactly 20 iterations;
its plasticity is applied at the first step of the next sample.  The run
therefore lasts ``n_samples*20 + 1`` base steps: the extra step applies the
plasticity of the last sample (and does ~1/20 of a sample of spare work).

Per sample the work is n_in*n_out (Y) + n_in*n_out (C update) + n_out^2 (Q/F
update) + 20*n_out^2 (settling), i.e. no redundant dense work.  The per-step
overhead is the cost of a Brian2 time step with ~4 code objects, which
dominates for small networks in runtime (Cython/numpy) mode.

Timing
------
``wall_seconds_run`` is the main-loop time Brian2 itself records as
``device._last_run_time``: for runtime (Cython/numpy) targets this is measured
by ``Network.run`` around the simulation loop only, after ``before_run`` has
generated/compiled/loaded all code objects; for C++ standalone it is the value
measured inside the generated ``network.cpp`` around the simulation loop and
written to ``results/last_run_info.txt`` (code generation, g++ compilation,
array initialisation and result writing are excluded).  Without OpenMP that
C++ timer is ``std::clock()`` (process CPU time), which equals wall time for
this single-threaded run.  ``wall_seconds_total_including_build`` is the wall
time of network construction + codegen + compilation + run (+ for standalone
the binary's start-up and result writing), measured from Python.

Notes from the 2-core development VM: for small networks in standalone mode
roughly 40 % of the main-loop time was the kernel side of the ``std::clock()``
call that Brian2's generated loop makes after every time step (a real
syscall there); that is Brian2's own overhead and is included.  Enabling
OpenMP (``openmp_threads=1`` or ``2``) was slower on that VM (1 thread: about
-30 % at 64x16; 2 threads: >10x slower), so the default is no OpenMP.
Timings on a shared VM varied by up to ~2x between repeated runs.

Each measurement runs in a fresh subprocess by default (robust for standalone
builds and isolates Brian2 global state); ``measure_brian2(...,
subprocess=False)`` does it in-process, using a temporary build directory and
``device.reinit()`` / ``device.activate()`` / ``set_device('runtime')``
afterwards so that several measurements can run in one process.

Usage::

    .venv/bin/python benchmarks/brian2_linsker.py --quick
    .venv/bin/python benchmarks/brian2_linsker.py --check-only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess as _subprocess
import sys
import tempfile
import time

import numpy as np

N_ITER = 20  # Jacobi settling iterations per sample (= base steps per sample)

# Default plasticity parameters for the benchmark: chosen so that the dynamics
# stay bounded (spectral radius of F < 1, slow random walk of C) over long
# runs; inputs are unit-variance Gaussians, C0 ~ N(0, 1/n_in), Q0 = I.
DEFAULT_PARAMS = {"alpha": 0.25, "eps": 1e-3, "eta": 1e-5}

MODES = ("cpp_standalone", "cython", "numpy")


# ---------------------------------------------------------------------------
# Plain NumPy reference implementation
# ---------------------------------------------------------------------------
def numpy_reference(X, C0, Q0, alpha, eps, eta, n_iter=N_ITER):
    """Run the per-sample steps in plain NumPy. X has shape (n_samples, n_in)."""
    C = np.array(C0, dtype=np.float64, copy=True)
    Q = np.array(Q0, dtype=np.float64, copy=True)
    n_out = C.shape[0]
    eye = np.eye(n_out)
    F = eye - alpha * Q
    for k, x in enumerate(X):
        s = 1.0 if k % 2 == 0 else -1.0  # sensing, noise, sensing, ...
        Y = C @ x
        y = Y.copy()
        for _ in range(n_iter):
            y = Y + F @ y
        Q = Q + eps * (np.outer(Y, Y) - Q)
        F = eye - alpha * Q
        C = C + eta * s * np.outer(alpha * y, x)
    return C, Q


def initial_state(n_in, n_out, seed=1):
    rng = np.random.default_rng(seed)
    C0 = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
    Q0 = np.eye(n_out)
    return C0, Q0


# ---------------------------------------------------------------------------
# Brian2 network
# ---------------------------------------------------------------------------
def build_network(n_in, n_out, C0, Q0, alpha, eps, eta, inputs=None):
    """Create the Brian2 objects (for the currently active device/target).

    ``inputs``: None -> ``x = randn()`` per sample; otherwise an array of shape
    (n_samples, n_in) fed through a TimedArray.
    Returns (net, objects dict, run duration function).
    """
    import brian2 as b2

    dt = 1 * b2.ms
    dt_s = N_ITER * dt
    base_clock = b2.Clock(dt=dt, name="base_clock")
    sample_clock = b2.Clock(dt=dt_s, name="sample_clock")

    namespace = {"alpha": alpha, "eps": eps, "eta_alpha": eta * alpha}

    inp = b2.NeuronGroup(n_in, "x : 1", clock=sample_clock, name="inp")
    hid = b2.NeuronGroup(
        n_out, "Y : 1\ny : 1 (linked)", clock=sample_clock, order=1, name="hid"
    )
    out = b2.NeuronGroup(
        n_out, "y : 1\nL : 1\nY : 1 (linked)", clock=base_clock, order=4, name="out"
    )
    hid.y = b2.linked_var(out, "y")
    out.Y = b2.linked_var(hid, "Y")

    ff = b2.Synapses(
        inp, hid, "C : 1\ns : 1 (shared)\nY_post = C*x_pre : 1 (summed)",
        clock=sample_clock, name="ff",
    )
    lat = b2.Synapses(
        out, out, "Q : 1\nF : 1\nL_post = F*y_pre : 1 (summed)",
        clock=sample_clock, name="lat",
    )
    # Explicit index arrays so that the synapse order is known (also in
    # standalone mode, where i/j cannot be read back before the run).
    ff_i = np.repeat(np.arange(n_in), n_out)
    ff_j = np.tile(np.arange(n_out), n_in)
    ff.connect(i=ff_i, j=ff_j)
    lat_i = np.repeat(np.arange(n_out), n_out)
    lat_j = np.tile(np.arange(n_out), n_out)
    lat.connect(i=lat_i, j=lat_j)

    ff.C = C0[ff_j, ff_i]  # C[post, pre]
    ff.s = -1.0  # flipped to +1 before sample 0
    lat.Q = Q0[lat_j, lat_i]
    lat.F = (lat_i == lat_j).astype(np.float64) - alpha * Q0[lat_j, lat_i]

    # 1. plasticity of the sample that just finished (none at t = 0)
    ff.run_regularly(
        "C += eta_alpha*s*y_post*x_pre*int(t > 0*second)",
        clock=sample_clock, when="start", order=0, name="ff_plasticity",
    )
    lat.run_regularly(
        "Q += eps*(Y_pre*Y_post - Q)*int(t > 0*second)\n"
        "F = int(i == j) - alpha*Q",
        clock=sample_clock, when="start", order=0, name="lat_plasticity",
    )
    # 2. phase sign for the new sample
    ff.run_regularly("s = -s", clock=sample_clock, when="start", order=1,
                     name="phase_flip")
    # 3. new input
    if inputs is None:
        inp.run_regularly("x = randn()", clock=sample_clock, when="start",
                          order=2, name="draw_input")
    else:
        inputs = np.asarray(inputs, dtype=np.float64)
        namespace["x_ta"] = b2.TimedArray(inputs, dt=dt_s, name="x_ta")
        inp.run_regularly("x = x_ta(t, i)", clock=sample_clock, when="start",
                          order=2, name="draw_input")
    # 4. (groups, 0) Y = C x  -- summed variable updater of ff
    # 5. initial iterate
    out.run_regularly("y = Y", clock=sample_clock, when="groups", order=2,
                      name="settle_init")
    # 6. (groups, 3) L = F y  -- summed variable updater of lat
    # 7. one Jacobi iteration
    out.run_regularly("y = Y + L", clock=base_clock, when="groups", order=5,
                      name="settle_iter")

    net = b2.Network(inp, hid, out, ff, lat)

    def duration(n_samples):
        # + one base step: applies the plasticity of the last sample
        return (n_samples * N_ITER + 1) * dt

    objs = {"inp": inp, "hid": hid, "out": out, "ff": ff, "lat": lat}
    return net, objs, duration, namespace


def _read_matrices(objs, n_in, n_out):
    ff, lat = objs["ff"], objs["lat"]
    C = np.full((n_out, n_in), np.nan)
    C[np.asarray(ff.j[:]), np.asarray(ff.i[:])] = np.asarray(ff.C[:])
    Q = np.full((n_out, n_out), np.nan)
    Q[np.asarray(lat.j[:]), np.asarray(lat.i[:])] = np.asarray(lat.Q[:])
    return C, Q


def _set_target(mode):
    import brian2 as b2

    if mode == "cpp_standalone":
        return
    if mode not in ("cython", "numpy"):
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    b2.set_device("runtime")
    b2.prefs.codegen.target = mode


def _run_inprocess(n_in, n_out, n_samples, mode, params, inputs=None, seed=1,
                   keep_build_dir=False, openmp_threads=0):
    """Build and run one network in this process. Returns (info dict, C, Q)."""
    import brian2 as b2

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    t0 = time.perf_counter()
    build_dir = None
    if mode == "cpp_standalone":
        build_dir = tempfile.mkdtemp(prefix="brian2_linsker_")
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = int(openmp_threads)
    else:
        _set_target(mode)
    try:
        if inputs is None:
            b2.seed(seed)
        C0, Q0 = initial_state(n_in, n_out, seed=seed)
        net, objs, duration, namespace = build_network(
            n_in, n_out, C0, Q0, inputs=inputs, **params
        )
        net.run(duration(n_samples), namespace=namespace, report=None)
        if mode == "cpp_standalone":
            b2.device.build(directory=build_dir, compile=True, run=True,
                            debug=False, clean=False)
        run_time = float(b2.device._last_run_time)
        C, Q = _read_matrices(objs, n_in, n_out)
        t_total = time.perf_counter() - t0
    finally:
        if mode == "cpp_standalone":
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")
            if build_dir is not None and not keep_build_dir:
                shutil.rmtree(build_dir, ignore_errors=True)
    info = {
        "samples_per_second": n_samples / run_time if run_time > 0 else float("inf"),
        "wall_seconds_run": run_time,
        "wall_seconds_total_including_build": t_total,
        "mode": mode,
        "n_in": int(n_in),
        "n_out": int(n_out),
        "n_samples": int(n_samples),
        "brian2_version": b2.__version__,
        "openmp_threads": int(openmp_threads) if mode == "cpp_standalone" else None,
        # extras
        "timing_source": ("network.cpp main loop (results/last_run_info.txt)"
                          if mode == "cpp_standalone"
                          else "Network.run main loop (excl. before_run/compilation)"),
        "state_finite": bool(np.all(np.isfinite(C)) and np.all(np.isfinite(Q))),
        "max_abs_C": float(np.max(np.abs(C))),
        "max_abs_Q": float(np.max(np.abs(Q))),
    }
    return info, C, Q


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------
def measure_brian2(n_in, n_out, n_samples, mode, subprocess=True, params=None,
                   seed=1, timeout=None, openmp_threads=0):
    """Simulate ``n_samples`` samples of the n_in x n_out network in Brian2.

    Returns a dict with samples_per_second, wall_seconds_run,
    wall_seconds_total_including_build, mode, n_in, n_out, n_samples,
    brian2_version (+ a few diagnostic extras).  ``wall_seconds_run`` excludes
    code generation/compilation (see module docstring).  By default the
    measurement runs in a fresh Python subprocess.  ``openmp_threads`` only
    affects cpp_standalone (0 = no OpenMP, Brian2's default; on the 2-core
    test VM 1 or 2 threads were slower, see module docstring).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {MODES}")
    params = dict(DEFAULT_PARAMS if params is None else params)
    if not subprocess:
        info, _, _ = _run_inprocess(n_in, n_out, n_samples, mode, params, seed=seed,
                                    openmp_threads=openmp_threads)
        return info
    job = json.dumps({"n_in": n_in, "n_out": n_out, "n_samples": n_samples,
                      "mode": mode, "params": params, "seed": seed,
                      "openmp_threads": openmp_threads})
    t0 = time.perf_counter()
    proc = _subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--_worker", job],
        check=False, capture_output=True, text=True, timeout=timeout,
    )
    t_proc = time.perf_counter() - t0
    marker = "BRIAN2_LINSKER_RESULT "
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(marker):
            info = json.loads(line[len(marker):])
            info["wall_seconds_subprocess"] = t_proc
            return info
    raise RuntimeError(
        f"Brian2 worker failed (rc={proc.returncode}) for {mode} {n_in}x{n_out}:\n"
        f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )


def check_against_numpy(mode="cython", n_in=8, n_out=4, n_samples=6, seed=3,
                        subprocess=False, verbose=False):
    """Compare Brian2's final C and Q with the NumPy reference.

    Small network, fixed pseudo-random inputs (TimedArray), plasticity rates
    large enough that C and Q change visibly.  Returns the max abs difference
    over all entries of C and Q.
    """
    params = {"alpha": 0.25, "eps": 0.05, "eta": 0.02}
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_in))
    if subprocess:
        job = json.dumps({"n_in": n_in, "n_out": n_out, "n_samples": n_samples,
                          "mode": mode, "params": params, "seed": seed, "check": True,
                          "X": X.tolist()})
        proc = _subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--_worker", job],
            check=False, capture_output=True, text=True,
        )
        marker = "BRIAN2_LINSKER_RESULT "
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith(marker):
                return float(json.loads(line[len(marker):])["max_abs_diff"])
        raise RuntimeError(f"check worker failed:\n{proc.stdout[-4000:]}\n"
                           f"{proc.stderr[-4000:]}")
    _, C, Q = _run_inprocess(n_in, n_out, n_samples, mode, params, inputs=X,
                             seed=seed)
    C0, Q0 = initial_state(n_in, n_out, seed=seed)
    C_ref, Q_ref = numpy_reference(X, C0, Q0, **params)
    diff = max(float(np.max(np.abs(C - C_ref))), float(np.max(np.abs(Q - Q_ref))))
    if verbose:
        print(f"[check {mode}] |C-C0|max={np.max(np.abs(C_ref - C0)):.3g} "
              f"|Q-Q0|max={np.max(np.abs(Q_ref - Q0)):.3g} "
              f"max|brian2 - numpy|={diff:.3g}")
    return diff


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------
SIZES = [(64, 16), (256, 64), (1024, 256)]
# samples per (mode, size index); chosen for a few seconds per run on 2 cores
SAMPLES_FULL = {
    "cpp_standalone": [200_000, 20_000, 2_000],
    "cython": [20_000, 10_000, 1_000],
    "numpy": [1_000, 1_000, 300],
}
SAMPLES_QUICK = {
    "cpp_standalone": [20_000, 2_000, 200],
    "cython": [500, 500, 100],
    "numpy": [200, 200, 50],
}
REFERENCE = {  # other people's 2-core machine, samples/s
    "cpp_standalone": [96_000, 9_200, 530],
    "cython": [1_070, 1_070, 290],
}


def _worker(job_json):
    job = json.loads(job_json)
    if job.get("check"):
        import brian2 as b2

        X = np.asarray(job["X"], dtype=np.float64)
        _, C, Q = _run_inprocess(job["n_in"], job["n_out"], job["n_samples"],
                                 job["mode"], job["params"], inputs=X, seed=job["seed"])
        C0, Q0 = initial_state(job["n_in"], job["n_out"], seed=job["seed"])
        C_ref, Q_ref = numpy_reference(X, C0, Q0, **job["params"])
        diff = max(float(np.max(np.abs(C - C_ref))), float(np.max(np.abs(Q - Q_ref))))
        result = {"max_abs_diff": diff, "brian2_version": b2.__version__}
    else:
        result, _, _ = _run_inprocess(job["n_in"], job["n_out"], job["n_samples"],
                                      job["mode"], job["params"], seed=job["seed"],
                                      openmp_threads=job.get("openmp_threads", 0))
    print("BRIAN2_LINSKER_RESULT " + json.dumps(result), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="few samples per run")
    ap.add_argument("--modes", default="cpp_standalone,cython",
                    help="comma-separated subset of cpp_standalone,cython,numpy")
    ap.add_argument("--sizes", default=None,
                    help="comma-separated n_inxn_out list, e.g. 64x16,256x64")
    ap.add_argument("--samples", type=int, default=None,
                    help="override the number of samples for every run")
    ap.add_argument("--check-only", action="store_true")
    ap.add_argument("--no-check", action="store_true")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--_worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._worker is not None:
        _worker(args._worker)
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r}")
    sizes = SIZES
    if args.sizes:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]

    if not args.no_check:
        for m in modes:
            d = check_against_numpy(mode=m, subprocess=True)
            print(f"correctness ({m}, 8x4, 6 samples): max |C,Q brian2 - numpy| = {d:.3g}"
                  f"  {'OK' if d <= 1e-9 else 'FAIL'}", flush=True)
        if args.check_only:
            return 0

    table = SAMPLES_QUICK if args.quick else SAMPLES_FULL
    results = []
    print(f"\n{'mode':<15}{'size':>10}{'samples':>9}{'samples/s':>12}"
          f"{'run [s]':>9}{'total [s]':>10}{'ref samples/s':>15}", flush=True)
    for m in modes:
        for k, (n_in, n_out) in enumerate(sizes):
            idx = SIZES.index((n_in, n_out)) if (n_in, n_out) in SIZES else None
            if args.samples is not None:
                n_samples = args.samples
            elif idx is not None:
                n_samples = table[m][idx]
            else:
                n_samples = table[m][-1]
            info = measure_brian2(n_in, n_out, n_samples, m)
            results.append(info)
            ref = REFERENCE.get(m, [None] * 3)[idx] if idx is not None else None
            print(f"{m:<15}{f'{n_in}x{n_out}':>10}{n_samples:>9}"
                  f"{info['samples_per_second']:>12,.0f}{info['wall_seconds_run']:>9.2f}"
                  f"{info['wall_seconds_total_including_build']:>10.1f}"
                  f"{(f'{ref:,}' if ref else '-'):>15}"
                  f"{'' if info['state_finite'] else '  (non-finite state!)'}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Numba backend: the plan's operations fused into one compiled loop over a chunk of steps.

For each plan structure the backend writes the Python source of one function,
``run_members(first, stop, phases, training, <states>, <rates>, <streams>, status, values)``,
that steps members ``first … stop − 1`` through every step of a chunk and calls the compiled
kernels of :mod:`plasticsim.backends.numba_kernels` in the plan's order, with the phase and
training conditions, the per-step rates and streams, and the static parameters (iteration
counts, methods, signs, which code path a batch size takes) written into the source as
constants. The source goes to a per-user cache directory (:func:`cache_directory`) under a
name that hashes it, is created once and never rewritten, and is imported from there, so
Numba's on-disk cache (``cache=True``) finds the compiled loop on every later run of the
same structure: only the first run of a structure on a machine compiles.

One fusion is made: a Hebbian update whose delta is added by the ``apply_delta`` that follows
(no constraint) adds each entry to the weights as it computes it; where no other operation
reads that delta, a one-sample update is not stored in it (the ``delta`` buffer then keeps
an older value; nothing reads it). Every other operation is one kernel call.

Everything random and every schedule is drawn on the host by :class:`~.base.Simulation`, so
the compiled loop sees the numbers the NumPy reference sees. Sums run in another order than
NumPy's (and BLAS from SciPy rather than NumPy's), so float64 results agree with the reference
to rounding (the conformance suite holds them to 1e-10 relative), not bit for bit; they are
bit-reproducible for the same seed, dtype and machine, with or without threads.

Parallelism: ensemble members run in parallel threads (the compiled loop releases the GIL),
BLAS runs on one thread meanwhile (:data:`single_threaded_blas`), and the next chunk's random
streams are drawn in a background thread, on copies of the members' streams, while the current
chunk runs (:attr:`NumbaSimulation.prefetch`).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, which the kernels call, before threadpoolctl looks)

from ..errors import BackendUnavailable
from . import numba_kernels as kernels
from . import register_backend
from .base import Simulation, StepFailure
from .numpy_primitives import PRIMITIVES
import itertools

#: Environment variable that overrides where generated step loops are written.
CACHE_ENVIRONMENT = "PLASTICSIM_NUMBA_CACHE"

#: What a failed kernel status means: (quantity, detail) as the NumPy reference words it.
FAILURES = {
    kernels.STATUS_SETTLING_DIVERGED: ("settling residual", "lateral network does not "
                                       "converge: α ≥ 2/λ_max(Q̂)?"),
    kernels.STATUS_SETTLING_SINGULAR: ("settling residual", "Q̂ is singular: exact settling "
                                       "has no solution"),
    kernels.STATUS_SOLVE_SINGULAR: ("input covariance", "q̂_L is singular: the "
                                    "natural-gradient step has no solution"),
    kernels.STATUS_MOMENT_SINGULAR: ("basal moment", "Q̂_b is singular: the basal drives "
                                     "cannot be decorrelated"),
}

SETTLING_METHODS = ("jacobi", "euler", "exact")
ALPHA_RULES = {"gershgorin": kernels.ALPHA_GERSHGORIN, "trace": kernels.ALPHA_TRACE}
DECAYS = {"none": kernels.DECAY_NONE, "diagonal": kernels.DECAY_DIAGONAL,
          "subspace": kernels.DECAY_SUBSPACE, "sanger": kernels.DECAY_SANGER,
          "linear": kernels.DECAY_LINEAR}
NONLINEARITIES = {"linear": kernels.NONLINEARITY_LINEAR, "relu": kernels.NONLINEARITY_RELU,
                  "sigmoid": kernels.NONLINEARITY_SIGMOID}
AVERAGE_FORMS = ("outer", "square", "mean")
PRIOR_NAMES = ("cauchy", "l1")
NORMALISATIONS = ("layer", "none")


# ------------------------------------------------------------------ code generation
def cache_directory() -> Path:
    """Where generated step loops (and Numba's cache of them) live.

    ``$PLASTICSIM_NUMBA_CACHE`` if set, else ``$XDG_CACHE_HOME/plasticsim/numba`` (default
    ``~/.cache/plasticsim/numba``); a per-user folder in the temporary directory where the
    home directory cannot be written.
    """
    configured = os.environ.get(CACHE_ENVIRONMENT)
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "plasticsim" / "numba"


def _writable(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if os.access(directory, os.W_OK):
            return directory
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"plasticsim-numba-{os.getuid()}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def _kernels_fingerprint() -> str:
    """Hash of the kernels' source and the compiler's version.

    Numba's cache of a function does not notice that a function it calls has changed; a
    generated step loop inlines the kernels, so its file name must change with them.
    """
    text = Path(kernels.__file__).read_bytes()
    return hashlib.sha256(text + numba.__version__.encode() + np.__version__.encode()
                          ).hexdigest()[:16]


def _literal(value) -> str:
    """A Python literal of a static parameter, typed as the kernels expect it."""
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if np.isnan(value):
        return "np.nan"
    if np.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    return repr(value)


@dataclass
class StepLoop:
    """A generated, imported step loop of one plan structure.

    Attributes
    ----------
    function : numba dispatcher
        ``run_members(first, stop, phases, training, *states, *rates, *streams, status,
        values)``.
    states, rates, streams : list of str
        Names of the arguments, in order.
    path : Path
        The generated source file.
    """

    function: object
    states: list
    rates: list
    streams: list
    path: Path


class _SourceWriter:
    """Writes the step loop of a plan, operation by operation."""

    def __init__(self, plan):
        self.plan = plan
        self.batch = plan.batch_size
        self.use_blas = self.batch >= kernels.BLAS_MIN_BATCH
        self.dtype = np.dtype(plan.dtype).name
        self.states: list[str] = []
        self.rates: list[str] = []
        self.streams: list[str] = []
        self.scratch: list[str] = []
        self.body: list[str] = []
        self._dummies: dict[tuple, str] = {}

    # ---------------------------------------------------------------- arguments
    def _argument(self, table: list, prefix: str, name: str) -> str:
        if name not in table:
            table.append(name)
        return f"{prefix}{table.index(name)}"

    def array(self, name: str) -> str:
        """The member's state array ``name`` (without the member axis)."""
        return f"{self._argument(self.states, 'state', name)}[m]"

    def phase_array(self, name: str) -> str:
        """The current phase's slice of a per-phase state (e.g. Q̂_p)."""
        return f"{self._argument(self.states, 'state', name)}[m, phase]"

    def scalar(self, name: str) -> str:
        return self.array(name)

    def rate(self, name: str) -> str:
        return f"{self._argument(self.rates, 'rate', name)}[m, k]"

    def stream(self, name: str) -> str:
        return f"{self._argument(self.streams, 'stream', name)}[m, k]"

    def dimension(self, name: str, axis: int) -> str:
        """Size of ``axis`` of a state's per-member shape, read from the array at run time
        (so that plans differing only in sizes share one compiled loop)."""
        variable = self._argument(self.states, "state", name)
        return f"{variable}.shape[{axis + 1}]"

    def state_dtype(self, name: str) -> str:
        return self.plan.states[name].initial.dtype.name

    def new_scratch(self, shape: tuple, dtype: str) -> str:
        """A scratch array allocated once per call of the step loop."""
        variable = f"scratch{sum(line.lstrip().startswith('scratch') for line in self.scratch)}"
        dims = ", ".join(shape) + ("," if len(shape) == 1 else "")
        self.scratch.append(f"    {variable} = np.empty(({dims}), np.{dtype})")
        return variable

    def dummy(self, ndim: int, dtype: str) -> str:
        """An empty array standing for an optional argument the kernel does not use (same
        type as the real one, so the kernel compiles once for both)."""
        key = (ndim, dtype)
        if key not in self._dummies:
            variable = f"unused{len(self._dummies)}"
            self._dummies[key] = variable
            self.scratch.append(f"    {variable} = np.empty(({', '.join(['0'] * ndim)}"
                                f"{',' if ndim == 1 else ''}), np.{dtype})")
        return self._dummies[key]

    # ----------------------------------------------------------------- emitting
    def emit(self, index: int, op) -> None:
        lines = getattr(self, f"_{op.primitive}")(op)
        conditions = []
        if op.training_only:
            conditions.append("training")
        if op.phases is not None:
            conditions.append("(" + " or ".join(f"phase == {p}" for p in op.phases) + ")")
        indent = "            "
        arguments = ", ".join(f"{role}={name}" for role, name in
                              {**op.reads, **op.writes, **op.streams}.items())
        self.body.append(f"{indent}# {index}: {op.primitive} {arguments}"[:98])
        if conditions:
            self.body.append(f"{indent}if {' and '.join(conditions)}:")
            indent += "    "
        self.body.extend(indent + line for line in lines)

    @staticmethod
    def _failure_check(call: str, returns_value: bool = True) -> list[str]:
        """Lines that call a kernel returning a status (and a value), and stop the member at
        this step if it failed."""
        return [f"code, value = {call}" if returns_value else f"code = {call}",
                "if code != 0:",
                "    status[m, 0] = code",
                "    status[m, 1] = k",
                f"    values[m] = {'value' if returns_value else 'np.nan'}",
                "    break"]

    def refuse(self, op, what: str):
        raise BackendUnavailable(f"the numba backend does not implement {op.primitive} with "
                                 f"{what} ({op.origin}); use backend numpy")

    def _check_matrix_state(self, op, *names):
        for name in names:
            if len(self.plan.states[name].shape) != 2:
                self.refuse(op, f"state {name!r} of shape {self.plan.states[name].shape} "
                            "(batch × units expected)")

    def _load_stream(self, op):
        target = op.writes["target"]
        self._check_matrix_state(op, target)
        return [f"kernels.load_stream({self.array(target)}, "
                f"{self.stream(op.streams['stream'])})"]

    def _add_stream(self, op):
        target = op.writes["target"]
        self._check_matrix_state(op, target)
        return [f"kernels.add_stream({self.array(target)}, "
                f"{self.stream(op.streams['stream'])})"]

    def _matmul(self, op):
        source, weights, target = op.reads["source"], op.reads["weights"], op.writes["target"]
        self._check_matrix_state(op, source, target)
        accumulate = bool(op.parameters["accumulate"])
        dtype = self.state_dtype(target)
        if self.use_blas:
            product = (self.new_scratch((str(self.batch), self.dimension(target, 1)), dtype)
                       if accumulate else self.dummy(2, dtype))
            function = "matmul_blas"
        else:
            product = (self.new_scratch((self.dimension(target, 1),), dtype)
                       if accumulate else self.dummy(1, dtype))
            function = "matmul_loops"
        return [f"kernels.{function}({self.array(source)}, {self.array(weights)}, "
                f"{self.array(target)}, {_literal(accumulate)}, {product})"]

    def _gate(self, op):
        p = op.parameters
        if p["normalisation"] not in NORMALISATIONS:
            self.refuse(op, f"normalisation {p['normalisation']!r}")
        if p["nonlinearity"] not in NONLINEARITIES:
            self.refuse(op, f"nonlinearity {p['nonlinearity']!r}")
        w = op.writes
        return [f"kernels.gate({self.array(op.reads['source'])}, "
                f"{self.array(op.reads['weights'])}, {self.array(w['target'])}, "
                f"{self.array(w['basal'])}, {self.array(w['normalised_source'])}, "
                f"{self.array(w['prediction'])}, {self.array(w['gate_value'])}, "
                f"{_literal(p['normalisation'] == 'layer')}, "
                f"{_literal(NONLINEARITIES[p['nonlinearity']])}, {_literal(p['bias'])}, "
                f"{_literal(p['gain'])}, {_literal(p['offset'])}, {_literal(self.use_blas)})"]

    def _settle(self, op):
        p = op.parameters
        drive, estimate = op.reads["drive"], op.reads["estimate"]
        target, residual = op.writes["target"], op.writes["residual"]
        if p["method"] not in SETTLING_METHODS:
            self.refuse(op, f"method {p['method']!r}")
        dtype = self.state_dtype(drive)
        units = self.dimension(drive, 1)
        if p["method"] == "exact":
            call = (f"kernels.settle_exact({self.array(drive)}, {self.phase_array(estimate)}, "
                    f"{self.array(target)}, "
                    f"{self.new_scratch((str(self.batch), units), dtype)}, "
                    f"{self.new_scratch((units, units), 'float64')}, "
                    f"{self.new_scratch((units,), 'int64')}, "
                    f"{self.new_scratch((units,), 'float64')})")
        else:
            alpha = p["alpha"]
            if isinstance(alpha, str):
                if alpha not in ALPHA_RULES:
                    self.refuse(op, f"alpha {alpha!r}")
                rule, fixed = ALPHA_RULES[alpha], 0.0
            else:
                rule, fixed = kernels.ALPHA_FIXED, float(alpha)
            constants = (f"{_literal(int(p['iterations']))}, {_literal(p['tolerance'])}, "
                         f"{_literal(rule)}, {_literal(fixed)}, {_literal(p['step'])}")
            alpha_estimate = self.new_scratch((units, units), dtype)
            if self.batch == 1:
                call = (f"kernels.settle_vector({self.array(drive)}, "
                        f"{self.phase_array(estimate)}, {self.array(target)}, {constants}, "
                        f"{self.new_scratch((units,), dtype)}, "
                        f"{self.new_scratch((units,), dtype)}, {alpha_estimate})")
            else:
                shape = (str(self.batch), units)
                call = (f"kernels.settle_batch({self.array(drive)}, "
                        f"{self.phase_array(estimate)}, {self.array(target)}, {constants}, "
                        f"{self.new_scratch(shape, dtype)}, {self.new_scratch(shape, dtype)}, "
                        f"{alpha_estimate}, {_literal(self.use_blas)})")
        monitor = self.scalar(residual)
        return self._failure_check(call) + [f"if value > {monitor}:",
                                            f"    {monitor} = value"]

    def _running_average(self, op):
        p = op.parameters
        source, target = op.reads["source"], op.writes["target"]
        form = p["form"]
        if form not in AVERAGE_FORMS:
            self.refuse(op, f"form {form!r}")
        transform = p.get("transform")
        if transform not in (None, "relu"):
            self.refuse(op, f"transform {transform!r}")
        self._check_matrix_state(op, source)
        target_expression = (self.phase_array(target) if p.get("phase_indexed")
                             else self.array(target))
        rate = self.rate(op.rate)
        rectify = transform == "relu"
        if form == "outer":
            dtype = self.state_dtype(source)
            units = self.dimension(source, 1)
            rectified = (self.new_scratch((str(self.batch), units), dtype) if rectify
                         else self.dummy(2, dtype))
            product = (self.new_scratch((units, units), dtype)
                       if self.batch > 1 or self.use_blas else self.dummy(2, dtype))
            return [f"kernels.running_average_outer({self.array(source)}, "
                    f"{target_expression}, {rate}, {_literal(rectify)}, {rectified}, "
                    f"{product}, {_literal(self.use_blas)})"]
        return [f"kernels.running_average_vector({self.array(source)}, {target_expression}, "
                f"{rate}, {_literal(form == 'square')}, {_literal(rectify)})"]

    def _hebbian(self, op):
        p = op.parameters
        post, pre, delta = op.reads["post"], op.reads["pre"], op.writes["delta"]
        decay = p["decay"]
        if decay not in DECAYS:
            self.refuse(op, f"decay {decay!r}")
        if p["reduce"] not in ("sum", "mean"):
            self.refuse(op, f"reduce {p['reduce']!r}")
        self._check_matrix_state(op, post, pre)
        signs = tuple(float(s) for s in p["signs"])
        rate = self.rate(op.rate)
        if signs[0] == signs[1]:
            coefficient = f"{_literal(signs[0])} * {rate}"
        else:
            coefficient = (f"({_literal(signs[0])} if phase == 0 else {_literal(signs[1])})"
                           f" * {rate}")
        dtype = self.state_dtype(delta)
        weights = (self.array(op.reads["weights"]) if decay != "none"
                   else self.dummy(2, dtype))
        mean = _literal(p["reduce"] == "mean")
        offset = _literal(float(p.get("offset") or 0.0))
        if decay in ("subspace", "sanger"):
            units = self.dimension(delta, 0)
            moment = self.new_scratch((units, units), dtype)
            return [f"kernels.hebbian_subspace({self.array(post)}, {self.array(pre)}, "
                    f"{weights}, {self.array(delta)}, {_literal(decay == 'sanger')}, {mean}, "
                    f"{offset}, {coefficient}, {moment}, {_literal(self.use_blas)})"]
        function = "hebbian_blas" if self.use_blas else "hebbian_loops"
        applied = self.fused_into.get(id(op))
        if applied is not None:  # weights += delta here: the apply_delta that follows, fused
            weights = self.array(applied.writes["weights"])
        # ΔW must hold this step's update only where another operation reads it.
        store = applied is None or any(
            delta in other.reads.values() or delta in other.writes.values()
            for other in self.plan.operations if other is not op and other is not applied)
        return [f"kernels.{function}({self.array(post)}, {self.array(pre)}, {weights}, "
                f"{self.array(delta)}, {_literal(DECAYS[decay])}, {mean}, {offset}, "
                f"{coefficient}, {_literal(applied is not None)}, {_literal(store)})"]

    def _solve_right(self, op):
        matrix, target = op.reads["matrix"], op.writes["target"]
        size = self.dimension(matrix, 0)
        call = (f"kernels.solve_right({self.array(matrix)}, {self.array(target)}, "
                f"{self.new_scratch((size, size), 'float64')}, "
                f"{self.new_scratch((size,), 'int64')}, "
                f"{self.new_scratch((size,), 'float64')})")
        return self._failure_check(call, returns_value=False)

    def _third_factor(self, op):
        r = op.reads
        units = self.dimension(r["moment"], 0)
        coefficient = f"{_literal(op.parameters['ratio'])} * {self.rate(op.rate)}"
        call = (f"kernels.third_factor({self.array(r['basal'])}, {self.array(r['gate_value'])}, "
                f"{self.array(r['average_burst'])}, {self.array(r['moment'])}, "
                f"{self.array(r['pre'])}, {self.array(op.writes['delta'])}, {coefficient}, "
                f"{self.new_scratch((units, units), 'float64')}, "
                f"{self.new_scratch((units,), 'int64')}, "
                f"{self.new_scratch((units,), 'float64')}, "
                f"{self.new_scratch((units, units), 'float64')}, "
                f"{self.new_scratch((str(self.batch), units), 'float64')})")
        return self._failure_check(call, returns_value=False)

    def _predictive_gate(self, op):
        r, w = op.reads, op.writes
        basal = r["basal"]
        error = self.new_scratch((str(self.batch), self.dimension(basal, 1)),
                                 self.state_dtype(basal))
        arguments = (f"{self.array(basal)}, {self.array(r['prediction'])}, "
                     f"{self.array(r['normalised_source'])}, {self.array(w['weights'])}, "
                     f"{_literal(op.parameters['learning_rate'])}")
        if "kernel" in w:
            sums = self.new_scratch((self.dimension(w["kernel"], 0),), "float64")
            return [f"kernels.predictive_gate_kernel({arguments}, {self.array(w['kernel'])}, "
                    f"{self.array(r['taps'])}, {error}, {sums})"]
        return [f"kernels.predictive_gate_dense({arguments}, {error})"]

    def _constrain(self, op):
        p = op.parameters
        weights, delta = op.writes["weights"], op.reads["delta"]
        if p["budget"] not in ("weight", "power"):
            self.refuse(op, f"budget {p['budget']!r}")
        power = p["budget"] == "power"
        if power and "covariance" not in op.reads:
            self.refuse(op, "a power budget without an input covariance")
        covariance = (self.array(op.reads["covariance"]) if "covariance" in op.reads
                      else self.dummy(2, "float64"))
        use_delta = "training" if p["uses_delta"] else "False"
        rows, columns = self.dimension(weights, 0), self.dimension(weights, 1)
        return [f"kernels.constrain({self.array(weights)}, {self.array(delta)}, {use_delta}, "
                f"{_literal(power)}, {_literal(bool(p['per_unit']))}, {_literal(p['value'])}, "
                f"{covariance}, {_literal(bool(p['natural']))}, "
                f"{self.new_scratch((rows, columns), 'float64')}, "
                f"{self.new_scratch((rows,), 'float64')})"]

    def _apply_delta(self, op):
        return [f"kernels.apply_delta({self.array(op.writes['weights'])}, "
                f"{self.array(op.reads['delta'])})"]

    def _clip(self, op):
        p = op.parameters
        return [f"kernels.clip({self.array(op.writes['weights'])}, {_literal(p['minimum'])}, "
                f"{_literal(bool(p.get('zero_diagonal')))})"]

    def _bounded_hebbian(self, op):
        p = op.parameters
        post, pre = op.reads["post"], op.reads["pre"]
        self._check_matrix_state(op, post, pre)
        return [f"kernels.bounded_hebbian({self.array(post)}, {self.array(pre)}, "
                f"{self.array(op.writes['weights'])}, {self.array(op.reads['arbor'])}, "
                f"{_literal(p['k1'])}, {_literal(p['k2'])}, {_literal(p['inverse_variance'])}, "
                f"{_literal(p['lower'])}, {_literal(p['upper'])}, {self.rate(op.rate)})"]

    def _lca(self, op):
        p = op.parameters
        if p["prior"] not in PRIOR_NAMES:
            self.refuse(op, f"prior {p['prior']!r}")
        patches, weights, target = op.reads["input"], op.reads["weights"], op.writes["target"]
        self._check_matrix_state(op, patches, target)
        dtype = self.state_dtype(target)
        units, pixels = self.dimension(weights, 0), self.dimension(weights, 1)
        batch = (str(self.batch), units)
        tiny = _literal(float(np.finfo(np.dtype(self.state_dtype(weights))).tiny))
        return [f"kernels.lca({self.array(patches)}, {self.array(weights)}, "
                f"{self.array(target)}, {_literal(p['prior'] == 'cauchy')}, "
                f"{_literal(p['sparsity'])}, {_literal(p['prior_scale'])}, "
                f"{_literal(int(p['steps']))}, {_literal(p['dt'])}, {tiny}, "
                f"{self.new_scratch((units,), dtype)}, "
                f"{self.new_scratch((units, pixels), dtype)}, "
                f"{self.new_scratch((units, units), dtype)}, "
                f"{self.new_scratch(batch, dtype)}, {self.new_scratch(batch, dtype)}, "
                f"{self.new_scratch(batch, dtype)}, {self.new_scratch(batch, dtype)}, "
                f"{_literal(self.use_blas)})"]

    def _residual(self, op):
        r = op.reads
        return [f"kernels.residual({self.array(r['input'])}, {self.array(r['code'])}, "
                f"{self.array(r['weights'])}, {self.array(op.writes['target'])}, "
                f"{_literal(self.use_blas)})"]

    def _gain_normalisation(self, op):
        p = op.parameters
        return [f"kernels.gain_normalisation({self.array(op.reads['variance'])}, "
                f"{self.array(op.writes['gain'])}, {self.array(op.writes['weights'])}, "
                f"{_literal(p['goal'])}, {_literal(p['exponent'])})"]

    def _lif_window(self, op):
        p = op.parameters
        drive, target = op.reads["drive"], op.writes["target"]
        self._check_matrix_state(op, drive, target)
        dtype = self.state_dtype(drive)
        units = self.dimension(drive, 1)
        if "lateral" in op.reads:
            lateral = self.array(op.reads["lateral"])
            transposed = self.new_scratch((units, units), dtype)
        else:
            lateral = transposed = self.dummy(2, dtype)
        return [f"kernels.lif_window({self.array(drive)}, {lateral}, "
                f"{_literal('lateral' in op.reads)}, {self.array(op.reads['thresholds'])}, "
                f"{self.array(target)}, {_literal(int(p['steps']))}, {_literal(p['dt'])}, "
                f"{self.new_scratch((units,), dtype)}, {transposed}, "
                f"{self.new_scratch((units,), dtype)}, {self.new_scratch((units,), 'int64')})"]

    def _homeostasis(self, op):
        p = op.parameters
        return [f"kernels.homeostasis({self.array(op.reads['source'])}, "
                f"{self.array(op.writes['target'])}, {_literal(p['rate'])}, "
                f"{_literal(p['target_rate'])})"]

    def _trace(self, op):
        p = op.parameters
        return [f"kernels.trace({self.array(op.reads['source'])}, "
                f"{self.array(op.writes['target'])}, {_literal(int(p['sequence_length']))}, "
                f"{_literal(p['rate'])})"]

    def _som_competition(self, op):
        inputs, target = op.reads["input"], op.writes["target"]
        self._check_matrix_state(op, inputs, target)
        kind = op.parameters["neighbourhood"]
        if kind not in ("gaussian", "bubble"):
            self.refuse(op, f"neighbourhood {kind!r}")
        return [f"kernels.som_competition({self.array(inputs)}, "
                f"{self.array(op.reads['weights'])}, {self.array(op.reads['distances'])}, "
                f"{self.rate(op.rate)}, {_literal(kind == 'bubble')}, {self.array(target)})"]

    # ----------------------------------------------------------------- fusion
    def _find_fusions(self) -> None:
        """Pair each Hebbian update (decay ``none`` or ``diagonal``) with the ``apply_delta``
        that adds its delta, where nothing in between touches the delta or the weights and
        both run in the same steps: the kernel then adds each entry as it computes it (one
        pass over the weights instead of three; delta is still written).
        """
        self.fused_into: dict[int, object] = {}
        self.fused_away: set[int] = set()
        operations = self.plan.operations
        for index, op in enumerate(operations):
            if op.primitive != "hebbian" or op.parameters.get("decay") not in (
                    "none", "diagonal", "linear"):
                continue
            delta = op.writes["delta"]
            later = [k for k in range(index + 1, len(operations))
                     if delta in operations[k].reads.values()
                     or delta in operations[k].writes.values()]
            if not later or operations[later[0]].primitive != "apply_delta":
                continue
            applied = operations[later[0]]
            weights = applied.writes["weights"]
            between = operations[index + 1:later[0]]
            if (any(weights in other.reads.values() or weights in other.writes.values()
                    for other in between)
                    or (applied.training_only, applied.phases) != (op.training_only, op.phases)
                    or (op.parameters["decay"] in ("diagonal", "linear")
                        and op.reads["weights"] != weights)):
                continue
            self.fused_into[id(op)] = applied
            self.fused_away.add(later[0])

    # ------------------------------------------------------------------- source
    def source(self) -> str:
        self._find_fusions()
        for index, op in enumerate(self.plan.operations):
            if op.primitive not in PRIMITIVES:
                raise BackendUnavailable(f"the numba backend does not implement the "
                                         f"{op.primitive!r} operation ({op.origin}); use "
                                         "backend numpy")
            if index in self.fused_away:
                self.body.append(f"            # {index}: apply_delta (fused into the Hebbian "
                                 "update above)")
                continue
            self.emit(index, op)
        arguments = (["first", "stop", "phases", "training"]
                     + [f"state{i}" for i in range(len(self.states))]
                     + [f"rate{i}" for i in range(len(self.rates))]
                     + [f"stream{i}" for i in range(len(self.streams))]
                     + ["status", "values"])
        legend = ([f"#   state{i}: {name}" for i, name in enumerate(self.states)]
                  + [f"#   rate{i}: {name}" for i, name in enumerate(self.rates)]
                  + [f"#   stream{i}: {name}" for i, name in enumerate(self.streams)])
        signature = ",\n                ".join(", ".join(arguments[i:i + 8])
                                                for i in range(0, len(arguments), 8))
        return "\n".join([
            '"""A plan\'s step loop, generated by plasticsim.backends.numba_backend."""',
            "# Do not edit: the file name is a hash of this text; a different plan or kernel",
            "# version writes another file.",
            f"# kernels {_kernels_fingerprint()}, batch {self.batch}, dtype {self.dtype}",
            *legend,
            "import numba",
            "import numpy as np",
            "",
            "from plasticsim.backends import numba_kernels as kernels",
            "",
            "",
            "@numba.njit(cache=True, nogil=True)",
            f"def run_members({signature}):",
            "    n_steps = phases.shape[0]",
            *self.scratch,
            "    for m in range(first, stop):",
            "        for k in range(n_steps):",
            "            phase = phases[k]",
            *self.body,
            "",
        ])


_LOADED: dict[str, StepLoop] = {}
_LOAD_LOCK = threading.Lock()


def generate_source(plan) -> tuple[str, list, list, list]:
    """The step loop's source for ``plan`` and the names of its state, rate and stream
    arguments (in order).

    Raises
    ------
    BackendUnavailable
        For an operation, or a parameter value, the kernels do not implement.
    """
    writer = _SourceWriter(plan)
    text = writer.source()
    return text, writer.states, writer.rates, writer.streams


def compile_plan(plan) -> StepLoop:
    """The step loop of ``plan``: generated, written to the cache directory once, imported.

    The file is named after the hash of its text and created atomically (written to a
    temporary file, then hard-linked into place), so concurrent runs never see half a file
    and an existing file is never rewritten: its timestamp stays, and Numba's cache of it
    stays valid.
    """
    text, states, rates, streams = generate_source(plan)
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    with _LOAD_LOCK:
        if digest in _LOADED:
            return _LOADED[digest]
        directory = _writable(cache_directory())
        path = directory / f"plan_{digest}.py"
        if not path.exists():
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".plan_", suffix=".py")
            try:
                with os.fdopen(handle, "w") as stream:
                    stream.write(text)
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    pass  # another process wrote the same text first
                except OSError:  # no hard links here: a rename is atomic too
                    if not path.exists():
                        os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        module_name = f"plasticsim_numba_plan_{digest}"
        specification = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(specification)
        sys.modules[module_name] = module
        specification.loader.exec_module(module)
        loop = StepLoop(module.run_members, states, rates, streams, path)
        _LOADED[digest] = loop
        return loop


# --------------------------------------------------------------------- threads
class _SingleThreadedBLAS:
    """Context: every loaded BLAS on one thread inside (re-entrant across threads).

    NumPy and SciPy (whose BLAS the kernels call) each bundle an OpenBLAS with its own thread
    pool, and OpenBLAS threads spin for a while after each call. On a small or busy machine,
    BLAS threads next to compiled members, the prefetching thread or another pool oversubscribe
    the cores (the pre-engine backend measured the same run 3 to 40 times slower). Parallelism
    comes from members instead. The first thread in sets one thread, the last one out restores
    the previous setting. Without threadpoolctl this does nothing.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._controller = None
        self._restore = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                if self._controller is None:
                    try:
                        from threadpoolctl import ThreadpoolController
                        self._controller = ThreadpoolController()
                    except Exception:  # noqa: BLE001  (not installed: leave threads alone)
                        self._controller = False
                if self._controller:
                    self._restore = self._controller.limit(limits=1, user_api="blas")
            self._depth += 1
        return self

    def __exit__(self, *exception):
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._restore is not None:
                self._restore.restore_original_limits()
                self._restore = None
        return False


single_threaded_blas = _SingleThreadedBLAS()
_MEMBER_POOL: ThreadPoolExecutor | None = None
_PREFETCH_POOL: ThreadPoolExecutor | None = None


def _member_pool() -> ThreadPoolExecutor:
    global _MEMBER_POOL
    if _MEMBER_POOL is None:
        _MEMBER_POOL = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 1) - 1),
                                          thread_name_prefix="plasticsim-numba")
    return _MEMBER_POOL


def _prefetch_pool() -> ThreadPoolExecutor:
    # Its own thread: drawing ahead must never wait behind members (or the other way).
    global _PREFETCH_POOL
    if _PREFETCH_POOL is None:
        _PREFETCH_POOL = ThreadPoolExecutor(max_workers=1,
                                            thread_name_prefix="plasticsim-prefetch")
    return _PREFETCH_POOL


# ------------------------------------------------------------------ simulation
class NumbaSimulation(Simulation):
    """A plan's members stepped by its generated, compiled step loop.

    State lives in NumPy arrays with a leading member axis (as the NumPy backend's), so
    :meth:`read` and :meth:`write` need no copies; the compiled loop updates them in place.

    Parameters
    ----------
    plan : Plan
    labels : list of str, optional
    threads : int, optional
        Threads that step members in parallel (default: the number of cores, at most the
        number of members).
    """

    backend_name = "numba"
    supported_primitives = frozenset(PRIMITIVES)
    #: Draw the next chunk's streams in a background thread while a chunk runs.
    prefetch = True

    def __init__(self, plan, labels=None, threads: int | None = None):
        self.step_loop = compile_plan(plan)
        self.threads = max(1, min(threads or os.cpu_count() or 1, plan.n_members))
        self._pending = None
        super().__init__(plan, labels)

    def _allocate(self, initial: dict) -> None:
        self.state = {name: np.ascontiguousarray(np.array(value))
                      for name, value in initial.items()}

    def read(self, name: str) -> np.ndarray:
        return self.state[name]

    def write(self, name: str, value: np.ndarray) -> None:
        self.state[name][...] = value

    # --------------------------------------------------------------- stepping
    def run_steps(self, chunk) -> list[StepFailure]:
        loop = self.step_loop
        members = self.n_members
        status = np.zeros((members, 2), dtype=np.int64)
        values = np.zeros(members, dtype=np.float64)
        arguments = (np.ascontiguousarray(chunk.phases, dtype=np.int64), bool(chunk.training),
                     *(self.state[name] for name in loop.states),
                     *(np.ascontiguousarray(chunk.rates[name], dtype=np.float64)
                       for name in loop.rates),
                     *(np.ascontiguousarray(chunk.streams[name]) for name in loop.streams),
                     status, values)
        with single_threaded_blas:
            if self.threads == 1:
                loop.function(0, members, *arguments)
            else:
                bounds = np.linspace(0, members, self.threads + 1).astype(int)
                futures = [_member_pool().submit(loop.function, low, high, *arguments)
                           for low, high in itertools.pairwise(bounds[:-1])]
                loop.function(int(bounds[-2]), members, *arguments)
                for future in futures:
                    future.result()
        failures = []
        for member in np.flatnonzero(status[:, 0]):
            quantity, detail = FAILURES[int(status[member, 0])]
            failures.append(StepFailure(int(member), int(status[member, 1]), quantity,
                                        float(values[member]), detail))
        return failures

    # --------------------------------------------------------------- prefetch
    def prepare_chunk(self, n_samples: int, warmup: bool = False, rngs=None):
        """As :meth:`Simulation.prepare_chunk`; takes the chunk drawn ahead if it is the one
        asked for (its stream copies then become the simulation's streams)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            key, future, copies = pending
            # Always wait: a stimulus may keep state between draws (a companion stream), so
            # two draws must never overlap.
            chunk = future.result()
            if rngs is None and key == self._chunk_key(n_samples, warmup):
                self.stream_rngs = copies
                return chunk
        return super().prepare_chunk(n_samples, warmup, rngs)

    def _chunk_key(self, n_samples: int, warmup: bool) -> tuple:
        return (bool(warmup), 0 if warmup else self.samples_done, n_samples)

    def _run(self, chunk) -> None:
        if self.prefetch:
            self._draw_ahead(chunk)
        super()._run(chunk)

    def _draw_ahead(self, chunk) -> None:
        """Start drawing the chunk ``plasticsim.run`` asks for next, on copies of the streams.

        After the warm-up that is the first ``record.every`` training samples; after a
        training chunk, the next ``record.every`` (fewer at the end). If the next call asks
        for something else, the chunk drawn ahead is dropped and the streams were never
        touched.
        """
        first_spec = self.plan.members[0]
        every, total = first_spec.record.every, first_spec.schedule.samples
        first = 0 if not chunk.training else chunk.first_sample + chunk.n_steps * self.batch_size
        count = min(every, total - first) // self.batch_size * self.batch_size
        if count <= 0:
            return
        copies = copy.deepcopy(self.stream_rngs)
        # A shallow copy with its own sample count: the main thread advances samples_done
        # while this draws.
        ahead = copy.copy(self)
        ahead.samples_done = first

        def draw():
            with single_threaded_blas:
                return Simulation.prepare_chunk(ahead, count, False, copies)
        self._pending = ((False, first, count), _prefetch_pool().submit(draw), copies)


@register_backend("numba")
def build_numba(plan, labels=None, variant=None) -> NumbaSimulation:
    """The numba backend's simulation of ``plan`` (``variant`` is unused: one flavour)."""
    return NumbaSimulation(plan, labels)


build_numba.supported_primitives = NumbaSimulation.supported_primitives

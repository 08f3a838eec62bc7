"""Array backend: the plan's primitives as batched array operations over one namespace.

Every primitive of :data:`plasticsim.engine.plan.PRIMITIVES` is written once against the
array API standard (through ``array-api-compat``), so the same code runs on NumPy (CPU; what
CI tests), PyTorch (CPU or CUDA) and CuPy (CUDA). State lives on the namespace's device with
the plan's leading member axis, and every operation acts on all members at once: an ensemble
of E networks is a stack of E matrices, so each step is a handful of batched matrix products
(E × batch × units) whatever E is. Python runs once per operation per step (and once per
settling or inference iteration), never per member or per sample.

Backend names: ``array`` (CuPy, else PyTorch, on a CUDA device where one is usable; else
NumPy), ``array:numpy``, ``array:torch`` (CUDA if available, else CPU), ``array:torch:cpu``,
``array:torch:cuda``, ``array:cupy``. PyTorch is the GPU extra:
``pip install 'plasticsim[gpu]'``.

Host side (:class:`~.base.Simulation`): phases, rates and every random stream are drawn on
the host from the members' own streams, exactly as for the NumPy backend, and moved to the
device once per chunk (one transfer per ``record.every`` samples, not per step). Results
therefore agree with the NumPy reference to rounding: summation orders of batched products
differ, so float64 agrees to ≈1e-13 relative and float32 to float32 rounding (the conformance
suite holds them to 1e-10 and 1e-3).

Arrays are never changed in place (every operation makes new arrays and rebinds the state
name), so keeping the state as it was is a shallow copy of a dict. That gives failures
(settling that does not converge, a singular matrix) the reference's semantics without a
device-to-host round trip per step: a chunk first runs *fast*, with the failure conditions
accumulated on the device and read once at the end; if any member failed, the chunk is run
again from its start in *checked* mode, where each failure is read when it happens, the
failing member's state is set aside as it was at that moment, and the other members go on to
the end of the chunk — what the NumPy backend does member by member.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field

import numpy as np

from ..errors import BackendUnavailable, DataError
from ..model.gating import LAYER_NORM_EPSILON
from ..model.neurons.som import NEIGHBOURHOOD_KINDS
from ..model.settling import RESIDUAL_CHECK_EVERY
from . import register_backend
from .base import Simulation, StepFailure
from .numpy_primitives import PRIMITIVES as REFERENCE_PRIMITIVES

GPU_HINT = "install the GPU extra with: pip install 'plasticsim[gpu]'"
CUPY_HINT = "install CuPy for your CUDA version, e.g. pip install cupy-cuda12x"
NAMES = ("array", "array:numpy", "array:torch", "array:torch:cpu", "array:torch:cuda",
         "array:cupy")

#: Why a step failed, worded as the NumPy reference words it: (quantity, detail).
SETTLING_DIVERGED = ("settling residual", "lateral network does not converge: α ≥ 2/λ_max(Q̂)?")
SETTLING_SINGULAR = ("settling residual", "Q̂ is singular: exact settling has no solution")
SOLVE_SINGULAR = ("input covariance", "q̂_L is singular: the natural-gradient step has no "
                  "solution")
MOMENT_SINGULAR = ("basal moment", "Q̂_b is singular: the basal drives cannot be decorrelated")


# ------------------------------------------------------------------ namespaces
class ArrayNamespace:
    """One array library on one device, through its array-API namespace.

    Parameters
    ----------
    library : {"numpy", "torch", "cupy"}
    device : {"cpu", "cuda"}

    Attributes
    ----------
    xp : module
        The ``array_api_compat`` namespace of the library.
    device : object
        What the library's ``device=`` arguments take.
    singular_errors : tuple of exception types
        What the library's ``linalg.solve``/``inv`` raise for a singular matrix (CuPy raises
        nothing: its results are checked for non-finite values instead).
    """

    def __init__(self, library: str, device: str = "cpu"):
        self.library = library
        self.device_kind = device
        #: Reading a value back is free (no device round trip to avoid).
        self.on_host = device == "cpu"
        self.xp = importlib.import_module(f"array_api_compat.{library}")
        if library == "torch":
            import torch
            self.module = torch
            self.device = torch.device(device)
            self.singular_errors = (torch.linalg.LinAlgError,)
        elif library == "cupy":
            import cupy
            self.module = cupy
            self.device = None  # CuPy's current device
            self.singular_errors = (np.linalg.LinAlgError,)
        else:
            self.module = np
            self.device = "cpu"
            self.singular_errors = (np.linalg.LinAlgError,)

    @property
    def name(self) -> str:
        """The backend name this namespace stands for (the results' ``backend``)."""
        if self.library == "torch":
            return f"array:torch:{self.device_kind}"
        return f"array:{self.library}"

    def dtype(self, dtype):
        """The namespace's dtype of a NumPy dtype."""
        return getattr(self.xp, np.dtype(dtype).name)

    def asarray(self, host: np.ndarray):
        """A device copy of a host array (the host array may change afterwards)."""
        host = np.asarray(host)
        return self.xp.asarray(host, dtype=self.dtype(host.dtype), device=self.device,
                               copy=True)

    def to_host(self, array) -> np.ndarray:
        """A NumPy copy of a device array."""
        if self.library == "torch":
            return array.detach().cpu().numpy().copy()
        if self.library == "cupy":
            return self.module.asnumpy(array)
        return np.array(array, copy=True)

    def synchronize(self) -> None:
        """Wait for the device's queued work (for timings)."""
        if self.library == "torch" and self.device_kind == "cuda":
            self.module.cuda.synchronize()
        elif self.library == "cupy":
            self.module.cuda.Device().synchronize()


def _cuda_usable(library: str) -> bool:
    """Whether ``library`` is installed and sees a CUDA device."""
    if importlib.util.find_spec(library) is None:
        return False
    try:
        if library == "torch":
            import torch
            return bool(torch.cuda.is_available())
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001  (a broken driver or library means no usable device)
        return False


def resolve_namespace(name: str) -> ArrayNamespace:
    """The namespace that the backend name ``name`` asks for.

    Raises
    ------
    BackendUnavailable
        For an unknown name, a library that is not installed (with the install hint) or a
        CUDA device that is not usable.
    """
    parts = name.split(":")
    library = parts[1] if len(parts) > 1 else None
    device = parts[2] if len(parts) > 2 else None
    if parts[0] != "array" or len(parts) > 3 or library not in (None, "numpy", "torch", "cupy") \
            or device not in (None, "cpu", "cuda") or (device is not None and library != "torch"):
        raise BackendUnavailable(f"unknown array backend {name!r}; use one of "
                                 f"{', '.join(NAMES)}")
    if library is None:  # plain "array": a GPU where one is usable, else NumPy
        for candidate in ("cupy", "torch"):
            if _cuda_usable(candidate):
                return ArrayNamespace(candidate, "cuda")
        return ArrayNamespace("numpy")
    if library == "numpy":
        return ArrayNamespace("numpy")
    if importlib.util.find_spec(library) is None:
        package, hint = ("PyTorch", GPU_HINT) if library == "torch" else ("CuPy", CUPY_HINT)
        raise BackendUnavailable(f"backend {name!r} needs {package}, which is not installed; "
                                 f"{hint}")
    if library == "cupy" or device == "cuda":
        if not _cuda_usable(library):
            raise BackendUnavailable(f"backend {name!r} needs a CUDA device; none is usable "
                                     "here (use array:numpy or array:torch:cpu)")
        return ArrayNamespace(library, "cuda")
    if device is None:
        device = "cuda" if _cuda_usable("torch") else "cpu"
    return ArrayNamespace("torch", device)


# ----------------------------------------------------------------- step context
class _RecheckChunk(Exception):
    """Raised in fast mode where a failure cannot be accumulated on the device (a library
    that raises for a singular matrix): the chunk is run again in checked mode."""


@dataclass
class _Step:
    """What an operation needs about the current step besides the state.

    ``rates`` and ``streams`` hold the chunk's device arrays (members, steps, …).
    """

    simulation: "ArraySimulation"
    checked: bool
    rates: dict
    streams: dict
    k: int = 0
    phase: int = 0
    training: bool = True
    _cast_rates: dict = field(default_factory=dict)

    def rate(self, name: str, dtype):
        """This step's rate of every member, shape (members,), in ``dtype``."""
        key = (name, dtype)
        if key not in self._cast_rates:
            self._cast_rates[key] = self.simulation._astype(self.rates[name], dtype)
        return self._cast_rates[key][:, self.k]

    def stream(self, name: str):
        return self.streams[name][:, self.k]


# ------------------------------------------------------------------ simulation
class ArraySimulation(Simulation):
    """A plan's members stepped together as stacks of arrays on one device.

    Parameters
    ----------
    plan : Plan
    labels : list of str, optional
    name : str
        Backend name (``array``, ``array:torch:cuda``, …), resolved by
        :func:`resolve_namespace`.
    """

    supported_primitives = frozenset(REFERENCE_PRIMITIVES)

    def __init__(self, plan, labels=None, name: str = "array"):
        self.namespace = resolve_namespace(name)
        self.xp = self.namespace.xp
        self.backend_name = self.namespace.name
        self._host_cache: dict = {}
        unknown = [op for op in plan.operations if op.primitive not in self.supported_primitives]
        if unknown:
            raise BackendUnavailable(f"the array backend does not implement the "
                                     f"{unknown[0].primitive!r} operation ({unknown[0].origin})"
                                     "; use backend numpy")
        super().__init__(plan, labels)
        self.compiled = [(op, getattr(self, f"_{op.primitive}")(op)) for op in plan.operations]
        self.fallible = any(op.primitive in ("settle", "solve_right", "third_factor")
                            for op in plan.operations)

    # --------------------------------------------------------- state on the device
    def _allocate(self, initial: dict) -> None:
        self.state = {name: self.namespace.asarray(value) for name, value in initial.items()}

    def read(self, name: str) -> np.ndarray:
        """A host copy of a state array (cached until the state changes)."""
        if name not in self._host_cache:
            self._host_cache[name] = self.namespace.to_host(self.state[name])
        return self._host_cache[name]

    def write(self, name: str, value: np.ndarray) -> None:
        current = self.state[name]
        value = np.broadcast_to(np.asarray(value, dtype=self.plan.states[name].initial.dtype),
                                tuple(current.shape))
        self.state[name] = self.namespace.asarray(value)
        self._host_cache.pop(name, None)

    # ------------------------------------------------------------------ stepping
    def run_steps(self, chunk) -> list[StepFailure]:
        self._host_cache.clear()
        upload = self.namespace.asarray
        rates = {name: upload(np.asarray(values, dtype=np.float64))
                 for name, values in chunk.rates.items()}
        streams = {name: upload(values) for name, values in chunk.streams.items()}
        start = dict(self.state)  # arrays are never changed in place: this keeps them
        if self.fallible:
            try:
                self._failed = self.xp.zeros(self.n_members, dtype=self.xp.bool,
                                             device=self.namespace.device)
                self._run_chunk(chunk, _Step(self, False, rates, streams))
                if not bool(self.xp.any(self._failed)):
                    return []
            except _RecheckChunk:
                pass
            self.state = dict(start)
        return self._run_chunk(chunk, _Step(self, True, rates, streams))

    def _run_chunk(self, chunk, step: _Step) -> list[StepFailure]:
        self._failures: dict[int, StepFailure] = {}
        self._set_aside: dict[int, dict] = {}
        step.training = chunk.training
        # A failed member's arrays are still computed (then discarded) until the chunk ends:
        # NumPy's overflow warnings about them would be about numbers nobody sees. Failures
        # and non-finite weights are reported as errors.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for k in range(chunk.n_steps):
                step.k, step.phase = k, int(chunk.phases[k])
                for op, function in self.compiled:
                    if op.runs_in(step.phase, step.training):
                        function(self.state, step)
                if len(self._failures) == self.n_members:
                    break
        # Failed members: their state as it was when their step failed.
        for member, kept in self._set_aside.items():
            selected = self.xp.arange(self.n_members, device=self.namespace.device) == member
            for name, array in kept.items():
                mask = self.xp.reshape(selected, (-1,) + (1,) * (array.ndim - 1))
                self.state[name] = self.xp.where(mask, array, self.state[name])
        return [self._failures[member] for member in sorted(self._failures)]

    def _fail(self, step: _Step, mask, values, reason: tuple) -> None:
        """Members where ``mask`` (device bool, (members,)) is true fail this step with
        ``values`` (device, (members,)) and ``reason``: call before the operation writes."""
        if not step.checked:
            self._failed = self._failed | mask
            return
        hits = self.namespace.to_host(mask)
        if not hits.any():
            return
        values = self.namespace.to_host(values)
        for member in np.flatnonzero(hits):
            member = int(member)
            if member not in self._failures:
                self._failures[member] = StepFailure(member, step.k, reason[0],
                                                     float(values[member]), reason[1])
                self._set_aside[member] = dict(self.state)

    def _solve(self, step: _Step, matrices, right, reason: tuple, inverse: bool = False):
        """matrices⁻¹ right (or matrices⁻¹) for stacks; members with a singular matrix fail
        with ``reason`` (their result is zero)."""
        xp = self.xp
        solve = (lambda a, b: xp.linalg.inv(a)) if inverse else xp.linalg.solve
        try:
            result = solve(matrices, right)
        except self.namespace.singular_errors:
            if not step.checked:
                raise _RecheckChunk from None
            parts, singular = [], np.zeros(self.n_members, dtype=bool)
            for member in range(self.n_members):
                try:
                    parts.append(solve(matrices[member], None if inverse else right[member]))
                except self.namespace.singular_errors:
                    singular[member] = True
                    parts.append(xp.zeros(matrices.shape[1:] if inverse else right.shape[1:],
                                          dtype=matrices.dtype, device=self.namespace.device))
            result = xp.stack(parts)
            mask = self.namespace.asarray(singular)
        else:
            if self.namespace.library != "cupy":
                return result
            # CuPy returns non-finite values for a singular matrix instead of raising.
            finite = xp.all(xp.isfinite(xp.reshape(matrices, (self.n_members, -1))), axis=1)
            solved = xp.all(xp.isfinite(xp.reshape(result, (self.n_members, -1))), axis=1)
            mask = finite & ~solved
        self._fail(step, mask, xp.full(self.n_members, float("nan"), dtype=xp.float64,
                                       device=self.namespace.device), reason)
        return result

    # ------------------------------------------------------------------ helpers
    def _astype(self, array, dtype):
        """``array`` in ``dtype``, without a copy when it already is (the array API's
        ``astype`` copies by default)."""
        return self.xp.astype(array, dtype, copy=False)

    def _members(self, vector, ndim: int):
        """A (members,) array shaped to broadcast against arrays of ``ndim`` dimensions."""
        return vector[(slice(None),) + (None,) * (ndim - 1)]

    def _transpose(self, array):
        return self.xp.matrix_transpose(array)

    def _dtype_of(self, name: str):
        return self.namespace.dtype(self.plan.states[name].initial.dtype)

    @staticmethod
    def _set_phase(array, phase: int, value, xp):
        """``array`` with ``array[:, phase] = value`` (a new array)."""
        parts = [value if p == phase else array[:, p] for p in range(array.shape[1])]
        return xp.stack(parts, axis=1)

    def _relative_residual(self, Y, reconstructed):
        """‖Y − reconstructed‖_F / max(‖Y‖_F, 1e-300) per member, float64."""
        xp = self.xp
        gap = Y - reconstructed
        gap = xp.sqrt(xp.sum(gap * gap, axis=(-2, -1)))
        norm = xp.sqrt(xp.sum(Y * Y, axis=(-2, -1)))
        return self._astype(gap, xp.float64) / xp.maximum(self._astype(norm, xp.float64), 1e-300)

    # --------------------------------------------------------------- primitives
    # Each ``_<primitive>(op)`` returns ``function(state, step)``, which replaces the arrays
    # that ``op`` writes; the semantics are numpy_primitives' (the reference), for all
    # members at once.
    def _load_stream(self, op):
        target, stream = op.writes["target"], op.streams["stream"]

        def load_stream(state, step):
            state[target] = step.stream(stream)
        return load_stream

    def _add_stream(self, op):
        target, stream = op.writes["target"], op.streams["stream"]

        def add_stream(state, step):
            state[target] = state[target] + step.stream(stream)
        return add_stream

    def _matmul(self, op):
        xp = self.xp
        source, weights, target = op.reads["source"], op.reads["weights"], op.writes["target"]
        accumulate = bool(op.parameters["accumulate"])
        dtype = self._dtype_of(target)

        def matmul(state, step):
            product = xp.matmul(state[source], self._transpose(state[weights]))
            if accumulate:
                product = state[target] + product
            state[target] = self._astype(product, dtype)
        return matmul

    def _normalise_gate_input(self, activity, normalisation: str):
        if normalisation == "none":
            return activity
        xp = self.xp
        centred = activity - xp.mean(activity, axis=-1, keepdims=True)
        return centred / xp.sqrt(xp.mean(centred**2, axis=-1, keepdims=True)
                                 + LAYER_NORM_EPSILON)

    def _gate(self, op):
        xp = self.xp
        p = op.parameters
        psi = {"linear": lambda u: u, "relu": lambda u: xp.maximum(u, 0.0),
               "sigmoid": lambda u: 2.0 / (1.0 + xp.exp(-u))}[p["nonlinearity"]]
        w = op.writes
        dtypes = {role: self._dtype_of(name) for role, name in w.items()}

        def gate(state, step):
            basal = state[w["target"]]
            normalised = self._normalise_gate_input(state[op.reads["source"]],
                                                    p["normalisation"])
            prediction = xp.matmul(normalised, self._transpose(state[op.reads["weights"]]))
            value = psi(p["bias"] + p["gain"] * (prediction - p["offset"]))
            state[w["basal"]] = self._astype(basal, dtypes["basal"])
            state[w["normalised_source"]] = self._astype(normalised, dtypes["normalised_source"])
            state[w["prediction"]] = self._astype(prediction, dtypes["prediction"])
            state[w["gate_value"]] = self._astype(value, dtypes["gate_value"])
            state[w["target"]] = self._astype(basal * value, dtypes["target"])
        return gate

    def _settling_alpha(self, Q, alpha):
        """α per member in float64, as :func:`plasticsim.model.settling.settling_alpha`."""
        xp = self.xp
        if alpha == "gershgorin":
            return 1.0 / self._astype(xp.max(xp.sum(xp.abs(Q), axis=-1), axis=-1), xp.float64)
        if alpha == "trace":
            return 1.0 / self._astype(xp.linalg.trace(Q), xp.float64)
        return xp.full(Q.shape[0], float(alpha), dtype=xp.float64, device=self.namespace.device)

    def _settle(self, op):
        xp = self.xp
        p = op.parameters
        drive, estimate = op.reads["drive"], op.reads["estimate"]
        target, monitor = op.writes["target"], op.writes["residual"]
        method, iterations, tolerance = p["method"], int(p["iterations"]), p["tolerance"]
        dtype = self._dtype_of(target)

        def settle(state, step):
            Q = state[estimate][:, step.phase]
            Y = state[drive]
            if method == "exact":
                scaled = self._transpose(self._solve(step, Q, self._transpose(Y),
                                                     SETTLING_SINGULAR))
                residual = self._relative_residual(Y, xp.matmul(scaled, Q))
            else:
                alpha = self._astype(self._settling_alpha(Q, p["alpha"]), Q.dtype)
                alpha_Q = self._members(alpha, 3) * Q
                y, active, residual = Y, None, None
                masked = False  # whether some member has stopped (its y is then kept)
                for iteration in range(1, iterations + 1):
                    # y ← y + h (Y − αQ̂ y); members that have converged keep their y.
                    moved = y + p["step"] * (Y - xp.matmul(y, alpha_Q))
                    y = xp.where(self._members(active, 3), moved, y) if masked else moved
                    if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == iterations:
                        now = self._relative_residual(Y, xp.matmul(y, alpha_Q))
                        residual = xp.where(active, now, residual) if masked else now
                        done = ~xp.isfinite(now) | (now <= tolerance)
                        active = ~done if active is None else active & ~done
                        # On a device, with a tolerance of 0 (only a non-finite residual stops
                        # a member), skip the round trip: frozen members need no early exit.
                        if self.namespace.on_host or tolerance > 0:
                            remaining = int(xp.sum(self._astype(active, xp.int64)))
                            if remaining == 0:
                                break
                            masked = remaining < self.n_members
                        else:
                            masked = True
                scaled = self._members(alpha, 3) * y
            self._fail(step, ~(residual <= 1.0), residual,  # ~(r ≤ 1) also catches NaN
                       SETTLING_DIVERGED)
            state[target] = self._astype(scaled, dtype)
            state[monitor] = xp.maximum(state[monitor], residual)
        return settle

    def _running_average(self, op):
        xp = self.xp
        source_name, target_name = op.reads["source"], op.writes["target"]
        form = op.parameters["form"]
        phase_indexed = bool(op.parameters.get("phase_indexed"))
        relu = op.parameters.get("transform") == "relu"
        dtype = self._dtype_of(target_name)

        def running_average(state, step):
            source = state[source_name]
            if relu:
                source = xp.maximum(source, 0.0)
            if form == "outer":
                statistic = xp.matmul(self._transpose(source), source) / source.shape[1]
            elif form == "square":
                statistic = xp.mean(source**2, axis=1)
            else:
                statistic = xp.mean(source, axis=1)
            whole = state[target_name]
            target = whole[:, step.phase] if phase_indexed else whole
            rate = self._members(step.rate(op.rate, dtype), target.ndim)
            updated = self._astype(target + rate * (statistic - target), dtype)
            state[target_name] = (self._set_phase(whole, step.phase, updated, xp)
                                  if phase_indexed else updated)
        return running_average

    def _hebbian(self, op):
        xp = self.xp
        p = op.parameters
        post_name, pre_name, delta = op.reads["post"], op.reads["pre"], op.writes["delta"]
        decay, mean, offset = p["decay"], p["reduce"] == "mean", p.get("offset")
        dtype = self._dtype_of(delta)

        def hebbian(state, step):
            post, pre = state[post_name], state[pre_name]
            batch = pre.shape[1]
            update = xp.matmul(self._transpose(post), pre)
            if decay != "none":
                weights = state[op.reads["weights"]]
                if decay == "diagonal":
                    update = update - xp.sum(post**2, axis=1)[:, :, None] * weights
                elif decay == "linear":
                    update = update - xp.sum(post, axis=1)[:, :, None] * weights
                else:
                    moment = xp.matmul(self._transpose(post), post)
                    if decay == "sanger":
                        units = moment.shape[-1]
                        index = xp.arange(units, device=self.namespace.device)
                        moment = xp.where(index[:, None] >= index[None, :], moment, 0.0)
                    update = update - xp.matmul(moment, weights)
            if mean:
                update = update / batch
            if offset:
                update = update - offset
            coefficient = p["signs"][step.phase] * step.rate(op.rate, update.dtype)
            state[delta] = self._astype(self._members(coefficient, 3) * update, dtype)
        return hebbian

    def _solve_right(self, op):
        xp = self.xp
        target_name, matrix_name = op.writes["target"], op.reads["matrix"]
        dtype = self._dtype_of(target_name)

        def solve_right(state, step):
            matrix, target = state[matrix_name], state[target_name]
            wide = xp.result_type(matrix.dtype, target.dtype)
            solved = self._solve(step, self._astype(matrix, wide),
                                 self._astype(self._transpose(target), wide), SOLVE_SINGULAR)
            state[target_name] = self._astype(self._transpose(solved), dtype)
        return solve_right

    def _third_factor(self, op):
        xp = self.xp
        r = op.reads
        delta = op.writes["delta"]
        dtype = self._dtype_of(delta)
        ratio = op.parameters["ratio"]

        def third_factor(state, step):
            moment = state[r["moment"]]
            precision = self._solve(step, moment, None, MOMENT_SINGULAR, inverse=True)
            decorrelated = xp.maximum(xp.matmul(state[r["basal"]], precision)
                                      / xp.linalg.diagonal(precision)[:, None, :], 0.0)
            burst = xp.maximum(state[r["gate_value"]], 0.0)
            factor = decorrelated * (burst - state[r["average_burst"]][:, None, :])
            increment = xp.matmul(self._transpose(factor), state[r["pre"]])
            rate = self._members(ratio * step.rate(op.rate, increment.dtype), 3)
            state[delta] = self._astype(state[delta] + rate * increment, dtype)
        return third_factor

    def _predictive_gate(self, op):
        xp = self.xp
        r, w = op.reads, op.writes
        learning_rate = op.parameters["learning_rate"]
        weights_dtype = self._dtype_of(w["weights"])

        def predictive_gate(state, step):
            error = xp.maximum(state[r["basal"]], 0.0) - state[r["prediction"]]
            update = learning_rate * xp.matmul(self._transpose(error),
                                               state[r["normalised_source"]])
            if "kernel" not in w:
                state[w["weights"]] = self._astype(state[w["weights"]] + update, weights_dtype)
                return
            # A shared kernel learns the sum of the updates over its taps (the reference's
            # bincount): a product with the one-hot table of the taps, then read back out.
            kernel, taps = state[w["kernel"]], state[r["taps"]]
            members, size = kernel.shape
            flat = xp.reshape(taps, (members, -1))
            one_hot = self._astype(flat[:, :, None] == xp.arange(size, device=self.namespace.device),
                                kernel.dtype)
            increment = xp.matmul(xp.reshape(self._astype(update, kernel.dtype),
                                             (members, 1, -1)), one_hot)
            kernel = kernel + xp.reshape(increment, (members, size))
            gathered = xp.take_along_axis(kernel, xp.maximum(flat, 0), axis=1)
            dense = xp.where(taps >= 0, xp.reshape(gathered, tuple(taps.shape)), 0.0)
            state[w["kernel"]] = kernel
            state[w["weights"]] = self._astype(dense, weights_dtype)
        return predictive_gate

    def _constrain(self, op):
        xp = self.xp
        p = op.parameters
        weights_name = op.writes["weights"]
        delta_name = op.reads.get("delta")
        covariance_name = op.reads.get("covariance")
        budget, per_unit, value, natural = p["budget"], p["per_unit"], p["value"], p["natural"]
        dtype = self._dtype_of(weights_name)
        axes = -1 if per_unit else (-2, -1)

        def constrain(state, step):
            C = state[weights_name]
            covariance = state[covariance_name] if covariance_name else None

            def cost_gradient(weights):  # the gradient of each unit's cost, up to a factor 2
                return weights if budget == "weight" else xp.matmul(weights, covariance)

            if step.training and p["uses_delta"]:
                delta = state[delta_name]
                gradient = cost_gradient(C)
                direction = C if natural else gradient
                coefficient = (xp.sum(delta * gradient, axis=axes)
                               / xp.sum(direction * gradient, axis=axes))
                coefficient = coefficient[..., None] if per_unit else coefficient[:, None, None]
                delta = self._astype(delta - coefficient * direction, delta.dtype)
                state[delta_name] = delta
                C = C + delta
            cost = xp.sum(C * cost_gradient(C), axis=-1)
            if per_unit:
                factor = xp.sqrt(value / cost)[..., None]
            else:
                factor = xp.sqrt(C.shape[-2] * value / xp.sum(cost, axis=-1))[:, None, None]
            state[weights_name] = self._astype(C * factor, dtype)
        return constrain

    def _apply_delta(self, op):
        xp = self.xp
        weights, delta = op.writes["weights"], op.reads["delta"]
        dtype = self._dtype_of(weights)

        def apply_delta(state, step):
            state[weights] = self._astype(state[weights] + state[delta], dtype)
        return apply_delta

    def _bounded_hebbian(self, op):
        xp = self.xp
        p = op.parameters
        post_name, pre_name = op.reads["post"], op.reads["pre"]
        arbor_name, weights_name = op.reads["arbor"], op.writes["weights"]
        dtype = self._dtype_of(weights_name)

        def bounded_hebbian(state, step):
            post, pre, weights = state[post_name], state[pre_name], state[weights_name]
            arbor = self._astype(state[arbor_name], dtype)
            drift = pre.shape[1] * (p["k1"] + p["k2"] * xp.sum(weights, axis=-1))
            update = (xp.matmul(self._transpose(post), pre) * p["inverse_variance"]
                      + drift[:, :, None])
            rate = self._members(step.rate(op.rate, update.dtype), 3)
            moved = weights + rate * arbor * update
            state[weights_name] = self._astype(
                xp.minimum(xp.maximum(moved, p["lower"] * arbor), p["upper"] * arbor), dtype)
        return bounded_hebbian

    def _clip(self, op):
        xp = self.xp
        weights = op.writes["weights"]
        minimum = op.parameters["minimum"]
        zero_diagonal = op.parameters.get("zero_diagonal")

        def clip(state, step):
            clipped = xp.maximum(state[weights], minimum)
            if zero_diagonal:
                index = xp.arange(clipped.shape[-1], device=self.namespace.device)
                clipped = xp.where(index[:, None] == index[None, :], 0.0, clipped)
            state[weights] = clipped
        return clip

    def _lca(self, op):
        xp = self.xp
        p = op.parameters
        prior, sparsity, prior_scale = p["prior"], p["sparsity"], p["prior_scale"]
        steps, dt = int(p["steps"]), p["dt"]
        input_name, weights_name, target = op.reads["input"], op.reads["weights"], \
            op.writes["target"]
        dtype = self._dtype_of(target)

        def soft_threshold(potentials):
            return xp.sign(potentials) * xp.maximum(xp.abs(potentials) - sparsity, 0.0)

        def lca(state, step):
            patches, weights = state[input_name], state[weights_name]
            tiny = float(np.finfo(np.dtype(str(weights.dtype).split(".")[-1])).tiny)
            gains = xp.maximum(xp.linalg.vector_norm(weights, axis=-1), tiny)   # (E, U)
            directions = weights / gains[:, :, None]
            drive = xp.matmul(patches, self._transpose(directions))
            overlaps = xp.matmul(directions, self._transpose(directions))
            # plasticsim.model.neurons.lca.stable_lca_step, per member.
            largest = self._astype(xp.linalg.eigvalsh(overlaps)[:, -1], xp.float64)
            if prior == "cauchy":
                curvature = 2.0 * sparsity / (prior_scale
                                              * self._astype(xp.min(gains, axis=-1), xp.float64))**2
            else:
                curvature = 0.0
            stable = xp.minimum(1.0 / xp.maximum(largest + curvature, 1.0), dt)
            step_size = self._members(self._astype(stable, drive.dtype), 3)
            scale = gains[:, None, :]
            if prior == "l1":
                units = overlaps.shape[-1]
                lateral = overlaps - xp.eye(units, dtype=overlaps.dtype,
                                            device=self.namespace.device)
                potentials = xp.zeros_like(drive)
                for _ in range(steps):
                    potentials = potentials + step_size * (
                        drive - potentials - xp.matmul(soft_threshold(potentials), lateral))
                code = soft_threshold(potentials) / scale
            else:
                contributions = drive
                for _ in range(steps):
                    coefficients = contributions / scale
                    slope = 2.0 * coefficients / (prior_scale**2 + coefficients**2) / scale
                    contributions = contributions + step_size * (
                        drive - xp.matmul(contributions, overlaps) - sparsity * slope)
                code = contributions / scale
            state[target] = self._astype(code, dtype)
        return lca

    def _residual(self, op):
        xp = self.xp
        target = op.writes["target"]
        dtype = self._dtype_of(target)

        def residual(state, step):
            state[target] = self._astype(state[op.reads["input"]] - xp.matmul(
                state[op.reads["code"]], state[op.reads["weights"]]), dtype)
        return residual

    def _gain_normalisation(self, op):
        xp = self.xp
        gain_name, weights_name = op.writes["gain"], op.writes["weights"]
        goal, exponent = op.parameters["goal"], op.parameters["exponent"]
        gain_dtype, weights_dtype = self._dtype_of(gain_name), self._dtype_of(weights_name)

        def gain_normalisation(state, step):
            gain = state[gain_name] * (state[op.reads["variance"]] / goal) ** exponent
            # A unit silent for very long has v → 0; keep its gain representable.
            gain = self._astype(xp.maximum(gain, 1e-6), gain_dtype)
            weights = state[weights_name]
            factor = gain / xp.linalg.vector_norm(weights, axis=-1)
            state[gain_name] = gain
            state[weights_name] = self._astype(weights * factor[:, :, None], weights_dtype)
        return gain_normalisation

    def _lif_window(self, op):
        xp = self.xp
        steps, dt = int(op.parameters["steps"]), op.parameters["dt"]
        target = op.writes["target"]
        lateral_name = op.reads.get("lateral")
        dtype = self._dtype_of(target)

        def lif_window(state, step):
            drive = state[op.reads["drive"]]
            thresholds = state[op.reads["thresholds"]][:, None, :]
            inhibition = (self._transpose(state[lateral_name]) if lateral_name is not None
                          else None)
            potentials = xp.zeros_like(drive)
            spikes = xp.zeros_like(drive)
            counts = xp.zeros_like(drive)
            for _ in range(steps):
                # Without a lateral projection the reference subtracts spikes · 0 = 0.
                leak = drive - potentials
                if inhibition is not None:
                    leak = leak - xp.matmul(spikes, inhibition)
                potentials = potentials + dt * leak
                spikes = self._astype(potentials > thresholds, drive.dtype)
                potentials = potentials * (1.0 - spikes)   # reset the units that fired
                counts = counts + spikes
            state[target] = self._astype(counts, dtype)
        return lif_window

    def _homeostasis(self, op):
        xp = self.xp
        target = op.writes["target"]
        rate, goal = op.parameters["rate"], op.parameters["target_rate"]
        dtype = self._dtype_of(target)

        def homeostasis(state, step):
            state[target] = self._astype(
                state[target] + rate * (xp.mean(state[op.reads["source"]], axis=1) - goal),
                dtype)
        return homeostasis

    def _trace(self, op):
        xp = self.xp
        source, target = op.reads["source"], op.writes["target"]
        length, rate = int(op.parameters["sequence_length"]), op.parameters["rate"]
        dtype = self._dtype_of(target)

        def trace(state, step):
            values = state[source]
            members, batch, units = values.shape
            sequences = xp.reshape(values, (members, batch // length, length, units))
            previous = xp.zeros_like(sequences[:, :, 0])
            frames = []
            for frame in range(length):   # a recursion in time: one frame after the other
                previous = (1.0 - rate) * previous + rate * sequences[:, :, frame]
                frames.append(previous)
            state[target] = self._astype(
                xp.reshape(xp.stack(frames, axis=2), (members, batch, units)), dtype)
        return trace

    def _som_competition(self, op):
        xp = self.xp
        kind = op.parameters["neighbourhood"]
        if kind not in NEIGHBOURHOOD_KINDS:
            raise DataError(f"neighbourhood {kind!r}; expected one of {NEIGHBOURHOOD_KINDS}")
        target = op.writes["target"]
        dtype = self._dtype_of(target)

        def som_competition(state, step):
            inputs, weights = state[op.reads["input"]], state[op.reads["weights"]]
            distances = state[op.reads["distances"]]
            squared = (xp.sum(weights**2, axis=-1)[:, None, :]
                       - 2.0 * xp.matmul(inputs, self._transpose(weights)))
            winners = xp.argmin(squared, axis=-1)   # ‖x‖² is the same for every unit
            rows = xp.broadcast_to(winners[:, :, None], tuple(squared.shape))
            distance = self._astype(xp.take_along_axis(distances, rows, axis=1), xp.float64)
            width = self._members(step.rate(op.rate, xp.float64), 3)
            if kind == "bubble":
                value = self._astype(distance <= width, xp.float64)
            else:
                value = xp.exp(-(distance**2) / (2.0 * width**2))
            state[target] = self._astype(value, dtype)
        return som_competition


@register_backend("array")
def build_array(plan, labels=None, variant=None) -> ArraySimulation:
    """The array backend's simulation of ``plan`` on the namespace ``variant`` names."""
    return ArraySimulation(plan, labels, variant or "array")


build_array.supported_primitives = ArraySimulation.supported_primitives
#: ``check_supported`` (and so ``plasticsim validate``) resolves the namespace of a name.
build_array.check_variant = resolve_namespace

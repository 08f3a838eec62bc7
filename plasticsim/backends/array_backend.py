"""Array backend: the step contract as batched matrix products over one array namespace.

The same code runs on NumPy (CPU; what CI tests), PyTorch (CPU or CUDA) and CuPy (CUDA):
every operation goes through a small namespace adapter (:class:`ArrayNamespace`). It is
written for throughput on a GPU: an ensemble of E networks (or one network with large
mini-batches) is one stack of matrices (E, …), so each contract step is a handful of batched
matrix products over all members at once. Python runs once per step and once per ten
settling iterations (the convergence check), not per sample or per member.

Backend names: ``array`` (CuPy or PyTorch on a CUDA device if one is usable, else NumPy on
the CPU), ``array:numpy``, ``array:torch`` (CUDA if available, else CPU), ``array:torch:cpu``,
``array:torch:cuda``, ``array:cupy``. The GPU extra installs PyTorch:
``pip install 'plasticsim[gpu]'``.

Random numbers are drawn on the host from the same streams as the NumPy backend (so results
agree with it to rounding in float64; on a GPU, float32 and the device's summation order make
them agree only to float32 tolerance) and moved to the device once per ``advance``.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..constraints import OutputPowerConstraint
from ..ensemble import (
    draw_steps,
    lateral_batch_rates,
    register_ensemble_builder,
    step_plan,
    unsupported_features,
)
from ..errors import BackendUnavailable, SimulationDiverged
from ..schedules import batch_rate
from . import register_backend
from .numpy_backend import LinskerSimulation

RESIDUAL_CHECK_EVERY = 10  # as plasticsim.settling: the same convergence decisions
INSTALL_HINT = "install the GPU extra with: pip install 'plasticsim[gpu]'"


# ------------------------------------------------------------------ namespaces
class ArrayNamespace:
    """The few array operations the backend needs, for NumPy, CuPy or PyTorch.

    Parameters
    ----------
    library : {"numpy", "cupy", "torch"}
    device : {"cpu", "cuda"}
    """

    def __init__(self, library: str, device: str = "cpu"):
        self.library = library
        self.device = device
        if library == "torch":
            import torch
            self.module = torch
            self.torch_device = torch.device(device)
        elif library == "cupy":
            import cupy
            self.module = cupy
        else:
            self.module = np

    @property
    def name(self) -> str:
        return f"array:{self.library}" + (f":{self.device}" if self.library == "torch" else "")

    def _dtype(self, dtype):
        if self.library != "torch" or dtype is None:
            return dtype
        return {np.dtype(np.float64): self.module.float64,
                np.dtype(np.float32): self.module.float32,
                np.dtype(np.int64): self.module.int64}[np.dtype(dtype)]

    def asarray(self, array, dtype=None):
        """A device copy (or view) of a host array."""
        if self.library == "torch":
            return self.module.as_tensor(np.asarray(array), dtype=self._dtype(dtype),
                                         device=self.torch_device)
        return self.module.asarray(array, dtype=dtype)

    def to_numpy(self, array) -> np.ndarray:
        if self.library == "torch":
            return array.detach().cpu().numpy()
        if self.library == "cupy":
            return self.module.asnumpy(array)
        return np.asarray(array)

    def transpose(self, array):
        """Swap the last two axes."""
        if self.library == "torch":
            return array.transpose(-1, -2)
        return self.module.swapaxes(array, -1, -2)

    def matmul(self, a, b):
        return self.module.matmul(a, b)

    def solve(self, A, B):
        """A⁻¹ B for stacks of square A."""
        return self.module.linalg.solve(A, B)

    def sum(self, array, axis):
        if self.library == "torch":
            return array.sum(dim=axis)
        return array.sum(axis=axis)

    def amax(self, array, axis):
        if self.library == "torch":
            return array.amax(dim=axis)
        return array.max(axis=axis)

    def sqrt(self, array):
        return self.module.sqrt(array)

    def abs(self, array):
        return self.module.abs(array)

    def diagonal_sum(self, array):
        """Trace of each matrix of a stack."""
        if self.library == "torch":
            return array.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        return self.module.trace(array, axis1=-2, axis2=-1)

    def finite(self, array):
        """Host boolean array: whether each member (leading axis) has only finite entries."""
        flags = self.module.isfinite(array).reshape(array.shape[0], -1)
        flags = flags.all(dim=-1) if self.library == "torch" else flags.all(axis=-1)
        return self.to_numpy(flags)

    def astype(self, array, dtype):
        if self.library == "torch":
            return array.to(self._dtype(dtype))
        return array.astype(dtype, copy=False)

    def copy(self, array):
        return array.clone() if self.library == "torch" else array.copy()

    def synchronize(self) -> None:
        """Wait for queued device work (for timings)."""
        if self.library == "torch" and self.device == "cuda":
            self.module.cuda.synchronize()
        elif self.library == "cupy":
            self.module.cuda.Device().synchronize()


def _cuda_usable(library: str) -> bool:
    if importlib.util.find_spec(library) is None:
        return False
    try:
        if library == "torch":
            import torch
            return bool(torch.cuda.is_available())
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001  (a broken driver means no usable device, no more)
        return False


def resolve_namespace(name: str) -> ArrayNamespace:
    """The namespace a backend name asks for.

    Raises
    ------
    BackendUnavailable
        If the library is not installed or the device is not usable, with the install hint.
    """
    parts = name.split(":")
    library = parts[1] if len(parts) > 1 else None
    device = parts[2] if len(parts) > 2 else None
    if library is None:  # plain "array": a GPU where one is usable, else NumPy
        for candidate in ("cupy", "torch"):
            if _cuda_usable(candidate):
                return ArrayNamespace(candidate, "cuda")
        return ArrayNamespace("numpy")
    if library not in ("numpy", "torch", "cupy") or (device not in (None, "cpu", "cuda")) \
            or (library != "torch" and device is not None) or len(parts) > 3:
        raise BackendUnavailable(f"unknown array backend {name!r}; use array, array:numpy, "
                                 f"array:torch, array:torch:cpu, array:torch:cuda or "
                                 f"array:cupy")
    if library == "numpy":
        return ArrayNamespace("numpy")
    if importlib.util.find_spec(library) is None:
        package = "PyTorch" if library == "torch" else "CuPy"
        hint = INSTALL_HINT if library == "torch" else "install CuPy for your CUDA version"
        raise BackendUnavailable(f"backend {name!r} needs {package}, which is not "
                                 f"installed; {hint}")
    if library == "cupy" or device == "cuda":
        if not _cuda_usable(library):
            raise BackendUnavailable(f"backend {name!r} needs a CUDA device; none is usable "
                                     f"here (use array:numpy or array:torch:cpu)")
        return ArrayNamespace(library, "cuda")
    if device is None:
        device = "cuda" if _cuda_usable("torch") else "cpu"
    return ArrayNamespace("torch", device)


# --------------------------------------------------------------- batched steps
def _structure(simulation) -> tuple:
    """What must be equal for members to share one batched run."""
    settling = simulation.settling
    constraints = tuple((type(c).__name__, c.per_unit, getattr(c, "running", False))
                        for c in simulation.constraints)
    return (simulation.C.shape, simulation.dtype.str, simulation.spec.schedule.batch_size,
            None if settling is None else (settling.method, settling.iterations,
                                           settling.alpha if isinstance(settling.alpha, str)
                                           else "fixed"),
            constraints, getattr(simulation, "metric", "euclidean"))


class BatchedLinsker:
    """Steps 2–6 of the contract for a stack of E structurally equal networks.

    Host arrays of the member simulations stay authoritative: :meth:`run` uploads the
    state, steps it on the device and writes it back in place.

    Parameters
    ----------
    namespace : ArrayNamespace
    simulations : list of LinskerSimulation
        Members with equal :func:`_structure`.
    """

    def __init__(self, namespace: ArrayNamespace, simulations: list):
        self.xp = namespace
        self.simulations = simulations
        first = simulations[0]
        self.dtype = first.dtype
        self.batch = first.spec.schedule.batch_size
        self.settling = first.settling
        self.natural = getattr(first, "metric", "euclidean") != "euclidean"
        self.constraints = first.constraints  # kinds and flags; values are per member
        xp = namespace
        host = np.asarray
        settling = self.settling
        if settling is not None:
            self.step = 1.0 if settling.method == "jacobi" else settling.dt / settling.tau
            self.tolerance = host([s.settling.tolerance for s in simulations])
            self.fixed_alpha = xp.asarray(
                [0.0 if isinstance(s.settling.alpha, str) else float(s.settling.alpha)
                 for s in simulations], self.dtype)
        self.signs = np.stack([s.signs for s in simulations])
        self.values = [xp.asarray([s.constraints[c].spec.value for s in simulations],
                                  np.float64) for c in range(len(self.constraints))]
        self.covariance_rates = [
            xp.asarray([batch_rate(s.constraints[c].spec.averaging_rate, self.batch)
                        for s in simulations], np.float64)
            for c in range(len(self.constraints))]

    # ------------------------------------------------------------ state io
    def _upload(self):
        xp = self.xp
        C = xp.asarray(np.stack([s.C for s in self.simulations]))
        Q = xp.asarray(np.stack([s.Q for s in self.simulations]))
        covariances = [xp.asarray(np.stack([s.constraints[c].input_covariance
                                            for s in self.simulations]), np.float64)
                       if isinstance(constraint, OutputPowerConstraint) else None
                       for c, constraint in enumerate(self.constraints)]
        return C, Q, covariances

    def _download(self, C, Q, covariances) -> None:
        xp = self.xp
        C, Q = xp.to_numpy(C), xp.to_numpy(Q)
        for member, simulation in enumerate(self.simulations):
            simulation.C[...] = C[member]
            simulation.Q[...] = Q[member]
            for c, covariance in enumerate(covariances):
                if covariance is not None:
                    simulation.constraints[c].input_covariance[...] = \
                        xp.to_numpy(covariance[member])

    # -------------------------------------------------------------- stepping
    def run(self, inputs, noise, phases, feedforward_rate, lateral_rate, step_offsets):
        """Run pre-drawn steps for all members.

        Parameters
        ----------
        inputs, noise : ndarray (E, steps, B, N), (E, steps, B, M)
        phases : int ndarray (E, steps)
        feedforward_rate, lateral_rate : ndarray (E, steps)
            η and ε per sample.
        step_offsets : sequence of int
            Sample count of each member's first step (for error messages).

        Returns
        -------
        ndarray (E,)
            Each member's largest settling residual.

        Raises
        ------
        SimulationDiverged
            For the first member that diverged; its attribute ``member`` is the member's
            position in the stack.
        """
        xp = self.xp
        E, n_steps, batch = inputs.shape[:3]
        C, Q, covariances = self._upload()
        inputs = xp.asarray(inputs)
        noise = xp.asarray(noise)
        lateral_batch = lateral_batch_rates(lateral_rate, batch)
        members = np.arange(E)
        member_index = xp.asarray(members, np.int64)
        worst = np.zeros(E)
        for k in range(n_steps):
            X = inputs[:, k]
            phase = phases[:, k]
            shared_phase = bool(np.all(phase == phase[0]))
            learning = feedforward_rate[:, k] != 0.0
            sensing = xp.asarray((phase == 0).astype(self.dtype))[:, None, None]
            XtX = None
            for c, constraint in enumerate(self.constraints):
                if covariances[c] is not None and constraint.running and np.any(phase == 0):
                    if XtX is None:
                        XtX = xp.matmul(xp.transpose(X), X) / batch
                    rate = self.covariance_rates[c][:, None, None] * sensing
                    covariances[c] = covariances[c] + rate * (XtX - covariances[c])
            Y = xp.matmul(X, xp.transpose(C)) + noise[:, k]
            if shared_phase:
                Qp = Q[:, int(phase[0])]
            else:
                phase_index = xp.asarray(phase, np.int64)
                Qp = Q[member_index, phase_index]
            activity = Y
            if self.settling is not None and np.any(learning):
                activity, residual = self._settle(Y, Qp, learning)
                bad = learning & ~(residual <= 1.0)
                if np.any(bad):
                    member = int(np.argmax(bad))
                    self._download(C, Q, covariances)
                    error = SimulationDiverged(
                        int(step_offsets[member]) + k * batch, "settling residual",
                        float(residual[member]), "lateral network does not converge: "
                        "α ≥ 2/λ_max(Q̂)?")
                    error.member = member  # position in the stack, for ensembles
                    raise error
                worst = np.where(learning, np.maximum(worst, residual), worst)
            if self.settling is not None:
                product = xp.matmul(xp.transpose(Y), Y)
                # Symmetric by construction (a batched product need not be bit-symmetric).
                product = (product + xp.transpose(product)) * (0.5 / batch)
                rate = xp.asarray(lateral_batch[:, k], self.dtype)[:, None, None]
                updated = Qp + rate * (product - Qp)
                if shared_phase:
                    Q[:, int(phase[0])] = updated
                else:
                    Q[member_index, phase_index] = updated
            coefficient = np.where(learning, self.signs[members, phase] * feedforward_rate[:, k],
                                   0.0)
            delta = None
            if np.any(learning):
                delta = xp.asarray(coefficient, self.dtype)[:, None, None] * xp.matmul(
                    xp.transpose(activity), X)
                if self.natural:  # ΔC q̂_L⁻¹ in float64, as the reference (q̂ symmetric)
                    delta = xp.transpose(xp.solve(covariances[0], xp.transpose(
                        xp.astype(delta, np.float64))))
            for c, constraint in enumerate(self.constraints):
                C = self._constrain(C, delta if c == 0 else None, c, covariances[c])
            if not self.constraints and delta is not None:
                C = C + delta
        finite = xp.finite(C)
        self._download(C, Q, covariances)
        if not np.all(finite):
            member = int(np.argmin(finite))
            error = SimulationDiverged(int(step_offsets[member]) + n_steps * batch,
                                       "feedforward weights", float("nan"), "non-finite value")
            error.member = member
            raise error
        return worst

    def _alpha(self, Qp):
        xp = self.xp
        rule = self.settling.alpha
        if rule == "gershgorin":
            return 1.0 / xp.amax(xp.sum(xp.abs(Qp), axis=-1), axis=-1)
        if rule == "trace":
            return 1.0 / xp.diagonal_sum(Qp)
        return self.fixed_alpha

    def _settle(self, Y, Qp, learning):
        """α y(∞) and the relative residual per member (host array)."""
        xp = self.xp
        settling = self.settling
        Y_norm = xp.to_numpy(xp.sqrt(xp.sum(xp.sum(Y * Y, axis=-1), axis=-1)))
        Y_norm = np.maximum(Y_norm, 1e-300)
        if settling.method == "exact":
            scaled = xp.transpose(xp.solve(Qp, xp.transpose(Y)))
            gap = Y - xp.matmul(scaled, Qp)
            residual = xp.to_numpy(xp.sqrt(xp.sum(xp.sum(gap * gap, axis=-1), axis=-1)))
            return scaled, residual / Y_norm
        alpha = self._alpha(Qp)
        alpha_Q = alpha[:, None, None] * Qp
        y = xp.copy(Y)
        gradient = Y - xp.matmul(y, alpha_Q)
        active = learning.copy()  # members still iterating
        residual = np.full(len(learning), np.inf)
        step = self.step * xp.asarray(active.astype(self.dtype))[:, None, None]
        for iteration in range(1, settling.iterations + 1):
            y = y + step * gradient
            gradient = Y - xp.matmul(y, alpha_Q)
            if iteration % RESIDUAL_CHECK_EVERY == 0 or iteration == settling.iterations:
                norm = xp.to_numpy(xp.sqrt(xp.sum(xp.sum(gradient * gradient, axis=-1),
                                                  axis=-1))) / Y_norm
                residual = np.where(active, norm, residual)
                done = ~np.isfinite(norm) | (norm <= self.tolerance)
                active &= ~done
                if not np.any(active):
                    break
                step = self.step * xp.asarray(active.astype(self.dtype))[:, None, None]
        return alpha[:, None, None] * y, residual

    def _constrain(self, C, delta, c, covariance):
        """Project ΔC on the budget's tangent plane, add it, rescale onto the budget.

        Power budgets work in float64 (the input covariance is float64, as in the
        reference); C keeps its dtype.
        """
        xp = self.xp
        per_unit = self.constraints[c].per_unit
        power = covariance is not None
        wide = xp.astype(C, np.float64) if power else C
        if delta is not None:
            gradient = xp.matmul(wide, covariance) if power else C
            direction = wide if self.natural else gradient
            if per_unit:
                coefficient = xp.sum(delta * gradient, axis=-1) / xp.sum(direction * gradient,
                                                                        axis=-1)
                delta = delta - coefficient[:, :, None] * direction
            else:
                coefficient = (xp.sum(xp.sum(delta * gradient, axis=-1), axis=-1)
                               / xp.sum(xp.sum(direction * gradient, axis=-1), axis=-1))
                delta = delta - coefficient[:, None, None] * direction
            C = xp.astype(C + delta, self.dtype)
            wide = xp.astype(C, np.float64) if power else C
        cost = xp.sum(wide * xp.matmul(wide, covariance), axis=-1) if power \
            else xp.sum(C * C, axis=-1)
        value = self.values[c]
        if per_unit:
            factor = xp.sqrt(value[:, None] / cost)[:, :, None]
        else:
            factor = xp.sqrt(C.shape[-2] * value / xp.sum(cost, axis=-1))[:, None, None]
        return xp.astype(C * factor, self.dtype)


# ------------------------------------------------------------- simulations
class ArraySimulation(LinskerSimulation):
    """One Linsker network on the array backend (an ensemble of one).

    Parameters
    ----------
    spec : ProtocolSpec
    name : str
        Backend name (``array``, ``array:torch``, …), resolved to a namespace.
    """

    def __init__(self, spec, name: str = "array", namespace: ArrayNamespace | None = None):
        unsupported_features(spec, "array")  # before the namespace: the reason comes first
        self.namespace = namespace or resolve_namespace(name)
        super().__init__(spec)
        unsupported_features(self, "array")
        self.backend_name = self.namespace.name
        self._engine = None

    def _draw(self, phases):
        return draw_steps(self, phases)

    def _run_steps(self, inputs, noise, phases, feedforward_rate, lateral_rate, step_offset):
        if self._engine is None:
            self._engine = BatchedLinsker(self.namespace, [self])
        residual = self._engine.run(inputs[None], noise[None], np.asarray(phases)[None],
                                    np.asarray(feedforward_rate, dtype=float)[None],
                                    np.asarray(lateral_rate, dtype=float)[None],
                                    [step_offset])
        self.last_residual = float(residual[0])
        return self.last_residual


class ArrayEnsemble:
    """Ensemble members stepped together as stacks of matrices on one device.

    Parameters
    ----------
    specs : list of ProtocolSpec
    name : str
        Backend name.
    """

    def __init__(self, specs, name: str = "array"):
        namespace = resolve_namespace(name)
        self.members = [ArraySimulation(spec, namespace=namespace) for spec in specs]
        self.backend_name = namespace.name
        groups: dict[tuple, list[int]] = {}
        for index, simulation in enumerate(self.members):
            groups.setdefault(_structure(simulation), []).append(index)
        self.groups = [(indices, BatchedLinsker(namespace, [self.members[i] for i in indices]))
                       for indices in groups.values()]

    @property
    def samples_done(self) -> int:
        """Training samples presented so far (the same for every member)."""
        return self.members[0].samples_done

    def warmup(self) -> None:
        samples = self.members[0].spec.schedule.warmup_samples
        self._run(samples, warmup=True)
        for simulation in self.members:
            batch = simulation.spec.schedule.batch_size
            simulation.warmup_samples_done = samples // batch * batch

    def advance(self, n_samples: int) -> np.ndarray:
        self._run(n_samples, warmup=False)
        for simulation in self.members:
            batch = simulation.spec.schedule.batch_size
            simulation.samples_done += n_samples // batch * batch
        return np.array([simulation.last_residual for simulation in self.members])

    def _run(self, n_samples: int, warmup: bool) -> None:
        from ..ensemble import member_error

        for indices, engine in self.groups:
            simulations = [self.members[index] for index in indices]
            plans = [step_plan(simulation, n_samples, warmup) for simulation in simulations]
            if len(plans[0][0]) == 0:
                continue
            draws = [simulation._draw(plan[0]) for simulation, plan in zip(simulations, plans)]
            try:
                residuals = engine.run(
                    np.stack([draw[0] for draw in draws]), np.stack([draw[1] for draw in draws]),
                    np.stack([plan[0] for plan in plans]), np.stack([plan[1] for plan in plans]),
                    np.stack([plan[2] for plan in plans]), [plan[3] for plan in plans])
            except SimulationDiverged as error:
                index = indices[error.member]
                raise member_error(error, self.members[index], index)
            for simulation, residual in zip(simulations, residuals):
                simulation.last_residual = float(residual)


def _builder(name: str):
    def build_array(spec) -> ArraySimulation:
        return ArraySimulation(spec, name)
    return build_array


for _name in ("array", "array:numpy", "array:torch", "array:torch:cpu", "array:torch:cuda",
              "array:cupy"):
    register_backend(_name)(_builder(_name))


@register_ensemble_builder("array")
def build_array_ensemble(specs, name: str = "array") -> ArrayEnsemble:
    return ArrayEnsemble(specs, name)

"""Brian2 backend: the step plan compiled into Brian2 objects (runtime or C++ standalone).

The plan's operations become Brian2 code; the host draws phases, rates and random streams
exactly as for every other backend (:class:`~plasticsim.backends.base.Simulation`) and hands
them to Brian2 as ``TimedArray`` objects, so Brian2 sees the same samples as NumPy.

How a plan maps onto Brian2 (:class:`Brian2Network`, plain data that
:func:`instantiate` turns into Brian2 objects and :mod:`plasticsim.export.brian2` into a
script):

- every state array becomes a variable of a ``NeuronGroup``, one group per owner of the state
  (``output.drive`` and ``output.settled`` → group ``output``, one neuron per batch entry and
  unit; ``feedforward.weights`` → group ``feedforward``, one neuron per weight); a running
  estimate per phase (shape 2 × M × M) becomes one variable per phase;
- a product summed over one index (a matrix product, an outer product summed over the batch)
  is a *pair group* (one neuron per term, its factors linked to their groups) and a
  ``Synapses`` object from it to the result's group with a ``(summed)`` variable;
- one plan step is one tick of a *step clock*; lateral settling runs on a *fast clock*, one
  Jacobi/Euler iteration per tick, K = iterations + 1 ticks per step (the residual is checked
  every 10 iterations, as the reference does, and a converged network stops changing);
- a leaky integrate-and-fire window (SAILnet's ``lif_window``) also runs on the fast clock,
  one Euler step per tick (``steps`` ticks): the population's group becomes a spiking
  ``NeuronGroup`` (``threshold`` u > θ, ``reset`` u ← 0 and a spike counted; no refractory
  period, as in the reference), and lateral inhibition is a ``Synapses`` object with
  ``on_pre`` (a spike of unit j adds W_ij to unit i's input of the next tick, within its batch
  entry), its weights linked to the lateral weight matrix: event-driven, so the rare spikes
  (target rate 0.05 per input) cost what they are, not a product of every pair per tick;
  homeostatic thresholds, Hebbian terms with Oja's diagonal decay and Földiák's offset, and
  clipping with a zero diagonal are step-clock code like the rest;
- the weight updates of step k run at the start of step k + 1 (so every chunk of steps ends
  with one extra tick that applies the last step's updates), gated by per-step controls
  (``active``, ``training``, ``phase`` and the rates, each a ``TimedArray`` over steps).

Targets: ``brian2`` (runtime, Brian2's own code-generation choice: Cython where it works,
else NumPy), ``brian2:numpy``, ``brian2:cython`` and ``brian2:cpp_standalone`` (compiled once
per simulation for a fixed number of steps; every chunk of the run is one execution of the
binary with the state and streams passed as ``run_args``).

Operations outside this vocabulary (exact settling, power budgets, gates, sparse coding,
SOMs, Hebbian decays other than Oja's, …) are refused before anything is compiled
(:func:`refusal`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

import numpy as np

from . import register_backend
from .base import Simulation, StepFailure
from ..errors import BackendUnavailable
from ..model.settling import RESIDUAL_CHECK_EVERY

def _brian2_installed() -> bool:
    try:
        return importlib.util.find_spec("brian2") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules["brian2"] is None
        return False


# Registered only where brian2 is installed; brian2 itself is imported when a simulation is
# built (importing it takes a second or two that runs on other backends need not pay).
if not _brian2_installed():
    raise ImportError("No module named 'brian2'")


def _import_brian2():
    try:
        import brian2
    except ImportError as error:
        raise BackendUnavailable(f"backend brian2 is unavailable: brian2 does not import "
                                 f"({error}); install it with: pip install 'brian2>=2.9'") \
            from None
    return brian2

TARGETS = ("brian2", "brian2:numpy", "brian2:cython", "brian2:cpp_standalone")
SUPPORTED_PRIMITIVES = frozenset({"load_stream", "matmul", "add_stream", "settle",
                                  "running_average", "hebbian", "constrain", "apply_delta",
                                  "lif_window", "homeostasis", "clip"})
#: Hebbian decay terms written as Brian2 code.
HEBBIAN_DECAYS = ("none", "diagonal")
#: Fast-clock tick (arbitrary: the plan has no physical time; ticks are counted).
TICK_MS = 1.0


class Index(np.ndarray):
    """An integer index array that remembers the formula it was made from (``text``), so
    that an exported script can write the formula instead of the numbers."""

    text = ""


def terms(formula: str, **sizes) -> Index:
    """``formula`` evaluated at every term of a grid of ``sizes`` (C order), e.g.
    ``terms("b*32 + n", b=10, m=8, n=32)``: one entry per (b, m, n)."""
    axes = [a.ravel() for a in np.meshgrid(*(np.arange(n) for n in sizes.values()),
                                           indexing="ij")]
    function = eval(f"lambda {', '.join(sizes)}: {formula}")  # our own formulas only
    values = np.broadcast_to(np.asarray(function(*axes), dtype=np.int64), axes[0].shape)
    index = np.array(values).view(Index)
    index.text = (f"terms(lambda {', '.join(sizes)}: {formula}, "
                  + ", ".join(f"{k}={v}" for k, v in sizes.items()) + ")")
    return index


# ------------------------------------------------------------------------ refusal
def refusal(plan, name: str = "brian2") -> str | None:
    """Why ``plan`` cannot run on Brian2 target ``name`` (None: it can)."""
    if name not in TARGETS:
        return (f"unknown Brian2 target {name!r}; choose one of {', '.join(TARGETS)}")
    if plan.n_members != 1:
        return (f"the {name} backend runs one network per plan; this plan stacks "
                f"{plan.n_members} ensemble members (use backend numpy or numba)")
    if np.dtype(plan.dtype) != np.float64:
        return f"the {name} backend runs float64 plans only (dtype {plan.dtype})"
    settled = set()
    for op in plan.operations:
        why = _operation_refusal(op, plan)
        if why is None and op.slot in ("drive", "gate") and set(op.reads.values()) & settled:
            why = ("it reads a settled activity in the same step (settling runs on the fast "
                   "clock after every drive)")
        if why is not None:
            return (f"the {name} backend cannot run the {op.primitive!r} operation "
                    f"({op.origin}): {why}")
        if op.primitive in ("settle", "lif_window"):
            settled.add(op.writes["target"])
    for state in plan.states.values():  # (operations first: they name what needs the state)
        if np.dtype(state.initial.dtype).kind != "f":
            return f"the {name} backend has no integer state ({state.name})"
    return None


def _operation_refusal(op, plan) -> str | None:
    parameters = op.parameters
    if op.primitive not in SUPPORTED_PRIMITIVES:
        return "Brian2 code for it is not written (use backend numpy or numba)"
    if op.primitive == "settle":
        if parameters["method"] == "exact":
            return "Brian2 code has no linear solve; use settling method jacobi or euler"
        if _prefix(op.reads["drive"]) != _prefix(op.writes["target"]):
            return "the drive and the settled activity belong to different populations"
    if op.primitive == "running_average":
        if parameters["form"] != "outer" or parameters.get("transform"):
            return f"only the outer-product form is written (form {parameters['form']!r})"
    if op.primitive == "hebbian":
        if parameters["decay"] not in HEBBIAN_DECAYS:
            return (f"decay {parameters['decay']!r} is not written (only "
                    f"{', '.join(HEBBIAN_DECAYS)})")
        if parameters["decay"] != "none" and (_prefix(op.reads["weights"])
                                              != _prefix(op.writes["delta"])):
            return "the decayed weights and the delta belong to different projections"
    if op.primitive == "lif_window":
        if _prefix(op.reads["drive"]) != _prefix(op.writes["target"]):
            return "the drive and the spike counts belong to different populations"
    if op.primitive == "constrain":
        if parameters["budget"] != "weight" or parameters["natural"]:
            return ("output-power budgets need q̂_L products that are not written; use "
                    "unit_weight_norm or total_weight_norm")
    return None


# ------------------------------------------------------------------- the network
@dataclass
class GroupSpec:
    """A NeuronGroup: ``variables`` name → initial value (array or scalar); ``linked`` name →
    (group, variable, index array)."""

    name: str
    size: int
    clock: str = "step"
    variables: dict = field(default_factory=dict)
    linked: dict = field(default_factory=dict)
    comment: str = ""
    #: Spiking groups: the threshold condition and the reset statements (else empty).
    threshold: str = ""
    reset: str = ""

    def equations(self) -> str:
        """The group's Brian2 equations (one dimensionless variable per name)."""
        return "\n".join([f"{name} : 1" for name in self.variables]
                         + [f"{name} : 1 (linked)" for name in self.linked])

    def events(self) -> dict:
        """``threshold`` and ``reset`` keywords of a spiking group (else none)."""
        return {"threshold": self.threshold, "reset": self.reset} if self.threshold else {}


@dataclass
class SynapsesSpec:
    """Synapses from ``source`` to ``target`` (one per entry of ``i``/``j``) with summed
    variables ``summed`` (target variable → expression)."""

    name: str
    source: str
    target: str
    i: np.ndarray
    j: np.ndarray
    summed: dict = field(default_factory=dict)
    comment: str = ""
    clock: str = "step"
    #: Event-driven synapses: statements run for each spike of the source (else empty).
    on_pre: str = ""
    #: Synaptic variables linked to a group's variable: name → (group, variable, index),
    #: the index (one entry per synapse) stored in the synaptic variable ``name + "_index"``.
    linked: dict = field(default_factory=dict)

    def equations(self) -> str:
        """Summed variables, and each linked variable with its stored index."""
        lines = [f"{target}_post = {expression} : 1 (summed)"
                 for target, expression in self.summed.items()]
        for name in self.linked:
            lines += [f"{name} : 1 (linked)", f"{name}_index : integer (constant)"]
        return "\n".join(lines)

    def events(self) -> dict:
        """The ``on_pre`` keyword of event-driven synapses (else none)."""
        return {"on_pre": self.on_pre} if self.on_pre else {}


@dataclass
class CodeSpec:
    """One scheduled code object: ``kind`` ``regular`` (run_regularly ``code`` on ``owner``)
    or ``summed`` (the updater of summed variable ``code`` of synapses ``owner``)."""

    kind: str
    owner: str
    code: str
    clock: str
    when: str
    order: int
    name: str
    comment: str = ""


@dataclass
class Brian2Network:
    """A compiled plan as plain data (see the module docstring)."""

    ticks_per_step: int
    groups: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    codes: list = field(default_factory=list)
    #: TimedArray name → per-step width (0: one value per step).
    timed_arrays: dict = field(default_factory=dict)
    #: Plan state name → list of (group, variable) (one per phase for phase-indexed arrays).
    state_variables: dict = field(default_factory=dict)
    #: Settling monitors: (group, residual state name or None).
    monitors: list = field(default_factory=list)
    #: Control name → (kind, source): kind ``control`` (active/training/phase), ``rate``
    #: (plan rate name) or ``stream`` (plan stream name); ``prev``: shifted by one step.
    controls: dict = field(default_factory=dict)

    def order(self, clock: str) -> int:
        return sum(1 for code in self.codes if code.clock == clock)


def _prefix(state: str) -> str:
    return state.split(".")[0]


def _identifier(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text)
    return cleaned if cleaned[:1].isalpha() else f"g_{cleaned}"


def _variable_name(quantity: str) -> str:
    """A Brian2 variable name for a state quantity (never a unit name such as ``m``)."""
    from brian2.equations.equations import check_identifier_units
    name = _identifier(quantity)
    try:
        check_identifier_units(name)
    except SyntaxError:
        name = f"v_{name}"
    return name


class PlanCompiler:
    """Lays a plan out as a :class:`Brian2Network`."""

    def __init__(self, plan):
        self.plan = plan
        self.batch = plan.batch_size
        # Fast ticks per step: one per settling iteration (+ the final check), one per Euler
        # step of a LIF window.
        ticks = [op.parameters["iterations"] + 1 for op in plan.operations
                 if op.primitive == "settle"]
        ticks += [op.parameters["steps"] for op in plan.operations
                  if op.primitive == "lif_window"]
        self.net = Brian2Network(ticks_per_step=max(ticks, default=1))
        self.counter = 0
        self._declare_states()

    # ------------------------------------------------------------------ helpers
    def _declare_states(self):
        groups: dict[tuple, GroupSpec] = {}
        for name, state in self.plan.states.items():
            prefix, quantity = name.split(".", 1) if "." in name else (name, "value")
            split = len(state.shape) == 3  # one array per phase (running estimates)
            size = int(np.prod(state.shape[1:] if split else state.shape, dtype=np.int64))
            key = (prefix, size)
            if key not in groups:
                names = {g.name for g in groups.values()}
                group_name = _identifier(prefix)
                if group_name in names:
                    group_name = f"{group_name}_{size}"
                groups[key] = GroupSpec(group_name, size, comment=f"states of {prefix!r}")
            group = groups[key]
            initial = np.asarray(state.initial[0], dtype=np.float64)
            variable = _variable_name(quantity)
            if split:
                names = [f"{variable}_{k}" for k in range(state.shape[0])]
                for k, var in enumerate(names):
                    group.variables[var] = initial[k].ravel()
            else:
                names = [variable]
                group.variables[variable] = initial.ravel() if size > 1 or initial.ndim \
                    else np.array([float(initial)])
            self.net.state_variables[name] = [(group.name, var) for var in names]
        for group in groups.values():
            self.net.groups[group.name] = group

    def where(self, state: str, index: int = 0) -> tuple[str, str]:
        return self.net.state_variables[state][index]

    def shape(self, state: str) -> tuple:
        return self.plan.states[state].shape

    def unique(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def code(self, owner, code, clock="step", when="start", comment="", kind="regular"):
        name = self.unique(f"{owner}_{'sum' if kind == 'summed' else 'code'}")
        self.net.codes.append(CodeSpec(kind, owner, code.strip(), clock, when,
                                       self.net.order(clock), name, comment))

    def control(self, name: str, prev: bool) -> str:
        """``name(t - t0)``: a per-step control of this step (``prev``: of the last step)."""
        full = f"{name}_prev" if prev else name
        self.net.timed_arrays.setdefault(full, 0)
        return f"{full}(t - t0)"

    def gate(self, op, prev: bool) -> str:
        """1 where ``op`` runs in this step (or the last, for updates), else 0."""
        factors = [self.control("active", prev)]
        if op.training_only:
            factors.append(self.control("training", prev))
        if op.phases is not None and len(op.phases) == 1:
            phase = self.control("phase", prev)
            factors.append(phase if op.phases[0] == 1 else f"(1 - {phase})")
        return "*".join(factors)

    def rate(self, op) -> str:
        name = "rate_" + _identifier(op.rate)
        self.net.controls[name + "_prev"] = ("rate", op.rate)
        return self.control(name, prev=True)

    def stream(self, op) -> str:
        stream = op.streams["stream"]
        name = "stream_" + _identifier(stream)
        self.net.timed_arrays[name] = self.batch * int(np.prod(self.streams_shape[stream]))
        self.net.controls[name] = ("stream", stream)
        return f"{name}(t - t0, i)"

    def add_group(self, name, size, clock="step", variables=None, comment="") -> GroupSpec:
        group = GroupSpec(name, size, clock, dict(variables or {}), comment=comment)
        self.net.groups[name] = group
        return group

    def contract(self, stem, left, right, out_group, out_index, clock="step", when="start",
                 comment="") -> str:
        """Σ left · right into ``out_group`` (``left``/``right``: (group, variable, index)
        per term; ``out_index``: the result entry of each term); returns the sum's variable."""
        pairs = self.add_group(self.unique(f"{stem}_terms"), len(out_index), clock,
                               {"product": 0.0}, comment=f"one neuron per term of {comment}")
        pairs.linked["left"] = left
        pairs.linked["right"] = right
        self.code(pairs.name, "product = left*right", clock, when, comment)
        return self.sum_into(stem, pairs.name, "product", out_group, out_index, clock, when,
                             comment)

    def sum_into(self, stem, source, variable, out_group, out_index, clock="step",
                 when="start", comment="", expressions=None) -> str | list:
        """Σ of ``variable`` of ``source`` per entry of ``out_index`` into ``out_group``."""
        expressions = expressions or {stem: f"{variable}_pre"}
        synapses = SynapsesSpec(self.unique(f"{stem}_sum"), source, out_group,
                                terms("i", i=len(out_index)), out_index,
                                comment=comment)
        names = []
        for target, expression in expressions.items():
            target_name = self.unique(target)
            self.net.groups[out_group].variables[target_name] = 0.0
            synapses.summed[target_name] = expression
            names.append(target_name)
        self.net.synapses[synapses.name] = synapses
        for target_name in names:
            self.code(synapses.name, target_name, clock, when, comment, kind="summed")
        return names[0] if len(names) == 1 else names

    # --------------------------------------------------------------- operations
    def compile(self) -> Brian2Network:
        self.streams_shape = {name: shape for group in self.plan.streams
                                   for name, shape in group.outputs.items()}
        for prev, slots in ((True, ("plasticity", "constraint")),
                            (False, ("stimulus", "drive", "gate", "settle"))):
            for op in self.plan.operations:
                if op.slot in slots:
                    getattr(self, f"_{op.primitive}")(op, prev)
        self._merge_adjacent_codes()
        for name in list(self.net.timed_arrays):
            if name not in self.net.controls:
                base = name[:-5] if name.endswith("_prev") else name
                self.net.controls[name] = ("control", base)
        return self.net

    def _merge_adjacent_codes(self):
        """One run_regularly for consecutive code of one group on one clock (fewer code
        objects: each costs a call per tick, and a compiled file in standalone). Safe: each
        statement reads and writes its own neuron's variables, and what another object
        writes in between is never between two merged blocks."""
        merged = {"step": [], "fast": []}
        for code in self.net.codes:
            sequence = merged[code.clock]
            last = sequence[-1] if sequence else None
            if (last is not None and code.kind == last.kind == "regular"
                    and code.owner == last.owner and code.when == last.when):
                last.code += "\n" + code.code
                last.comment += "; " + code.comment
            else:
                sequence.append(code)
        self.net.codes = []
        for clock, sequence in merged.items():
            for order, code in enumerate(sequence):
                code.order = order
                self.net.codes.append(code)

    def _load_stream(self, op, prev):
        group, var = self.where(op.writes["target"])
        g = self.gate(op, prev)
        self.code(group, f"{var} = {g}*{self.stream(op)} + (1 - {g})*{var}",
                  comment=f"{op.writes['target']} ← stream {op.streams['stream']}")

    def _add_stream(self, op, prev):
        group, var = self.where(op.writes["target"])
        self.code(group, f"{var} = {var} + {self.gate(op, prev)}*{self.stream(op)}",
                  comment=f"{op.writes['target']} += stream {op.streams['stream']}")

    def _matmul(self, op, prev):
        source, weights, target = op.reads["source"], op.reads["weights"], op.writes["target"]
        batch, n_in = self.shape(source)
        n_out = self.shape(weights)[0]
        grid = {"b": batch, "m": n_out, "n": n_in}
        group, var = self.where(target)
        total = self.contract("drive", (*self.where(source), terms(f"b*{n_in} + n", **grid)),
                              (*self.where(weights), terms(f"m*{n_in} + n", **grid)), group,
                              terms(f"b*{n_out} + m", **grid),
                              comment=f"{target} = {source} · {weights}ᵀ")
        g = self.gate(op, prev)
        value = f"({total} + {var})" if op.parameters["accumulate"] else total
        self.code(group, f"{var} = {g}*{value} + (1 - {g})*{var}",
                  comment=f"{target} {'+' if op.parameters['accumulate'] else ''}= Σ C x")

    def _running_average(self, op, prev):
        source, target = op.reads["source"], op.writes["target"]
        batch, size = self.shape(source)
        grid = {"b": batch, "m": size, "k": size}
        group = self.where(target)[0]
        where = self.where(source)
        total = self.contract("outer", (*where, terms(f"b*{size} + m", **grid)),
                              (*where, terms(f"b*{size} + k", **grid)), group,
                              terms(f"m*{size} + k", **grid), comment=f"Σ_b {source}ᵀ {source}")
        g, rate = self.gate(op, prev), self.rate(op)
        if op.parameters.get("phase_indexed"):
            phase = self.control("phase", prev)
            lines = []
            for index, (_, var) in enumerate(self.net.state_variables[target]):
                selected = phase if index == 1 else f"(1 - {phase})"
                lines.append(f"{var} = {var} + {g}*{selected}*{rate}*({total}/{batch} - {var})")
            code = "\n".join(lines)
        else:
            var = self.where(target)[1]
            code = f"{var} = {var} + {g}*{rate}*({total}/{batch} - {var})"
        self.code(group, code, comment=f"{target} += ε (⟨outer⟩_batch − {target})")

    def _hebbian(self, op, prev):
        post, pre, delta = op.reads["post"], op.reads["pre"], op.writes["delta"]
        batch, n_out = self.shape(post)
        n_in = self.shape(pre)[1]
        grid = {"b": batch, "m": n_out, "n": n_in}
        group, var = self.where(delta)
        total = self.contract("hebb", (*self.where(post), terms(f"b*{n_out} + m", **grid)),
                              (*self.where(pre), terms(f"b*{n_in} + n", **grid)), group,
                              terms(f"m*{n_in} + n", **grid),
                              comment=f"Σ_b {post}ᵀ {pre}")
        if op.parameters["decay"] == "diagonal":
            # Oja: Σ_b post_bm² per row m, times the row's weights, off the product.
            post_group, post_var = self.where(post)
            square = self.unique("square")
            self.net.groups[post_group].variables[square] = 0.0
            self.code(post_group, f"{square} = {post_var}**2", comment=f"{post}²")
            rows = self.add_group(self.unique("decay_rows"), n_out,
                                  comment=f"one per row of {delta}")
            row_sum = self.sum_into("decay", post_group, square, rows.name,
                                    terms("m", b=batch, m=n_out), comment=f"Σ_b {post}²")
            link = self.unique("decay")
            self.net.groups[group].linked[link] = (rows.name, row_sum,
                                                   terms("m", m=n_out, n=n_in))
            w = self.where(op.reads["weights"])[1]
            total = f"({total} - {link}*{w})"
        if op.parameters["reduce"] == "mean":
            total = f"({total}/{batch})"
        if op.parameters.get("offset"):
            total = f"({total} - {float(op.parameters['offset'])!r})"
        s0, s1 = (repr(float(s)) for s in op.parameters["signs"])
        phase = self.control("phase", prev)
        sign = f"((1 - {phase})*{s0} + {phase}*({s1}))"
        g = self.gate(op, prev)
        self.code(group, f"{var} = {g}*(({sign}*{self.rate(op)})*{total}) + (1 - {g})*{var}",
                  comment=f"{delta} ← s_phase η Σ_b post pre")

    def _apply_delta(self, op, prev):
        group, var = self.where(op.writes["weights"])
        delta = self.where(op.reads["delta"])[1]
        self.code(group, f"{var} = {var} + {self.gate(op, prev)}*{delta}",
                  comment="weights += delta")

    def _clip(self, op, prev):
        group, w = self.where(op.writes["weights"])
        g = self.gate(op, prev)
        code = f"{w} = {g}*clip({w}, {float(op.parameters['minimum'])!r}, inf) + (1 - {g})*{w}"
        if op.parameters.get("zero_diagonal"):
            n_out, n_in = self.shape(op.writes["weights"])
            mask = self.unique("diagonal")
            self.net.groups[group].variables[mask] = (
                np.arange(n_out)[:, None] == np.arange(n_in)[None, :]).ravel().astype(float)
            code += f"\n{w} = {w}*(1 - {g}*{mask})"
        self.code(group, code, comment=f"{op.writes['weights']} ≥ minimum"
                  + (", zero diagonal" if op.parameters.get("zero_diagonal") else ""))

    def _homeostasis(self, op, prev):
        source, target = op.reads["source"], op.writes["target"]
        batch, size = self.shape(source)
        group, theta = self.where(target)
        total = self.sum_into("count_sum", self.where(source)[0], self.where(source)[1],
                              group, terms("m", b=batch, m=size), comment=f"Σ_b {source}")
        rate, goal = float(op.parameters["rate"]), float(op.parameters["target_rate"])
        g = self.gate(op, prev)
        self.code(group, f"{theta} = {theta} + {g}*({rate!r}*({total}/{batch} - {goal!r}))",
                  comment=f"{target} += γ (⟨n⟩_batch − p)")

    def _lif_window(self, op, prev):
        """Leaky integrate-and-fire units on the fast clock, one Euler step per tick; lateral
        inhibition by event-driven synapses (a spike of tick t reaches the other units'
        potentials at tick t + 1, as in the reference)."""
        drive, target = op.reads["drive"], op.writes["target"]
        batch, size = self.shape(drive)
        steps, dt = int(op.parameters["steps"]), float(op.parameters["dt"])
        population, D = self.where(drive)
        counts = self.where(target)[1]
        spec = self.net.groups[population]
        spec.clock = "fast"   # the group's threshold and reset run every fast tick
        tag = self.unique("lif")
        v, lateral, tick, running = (f"{tag}_{name}" for name in ("v", "lateral", "tick",
                                                                   "running"))
        on, theta = f"{tag}_on", f"{tag}_theta"
        spec.variables.update({v: 0.0, lateral: 0.0, tick: 0.0, running: 0.0, on: 0.0})
        spec.linked[theta] = (*self.where(op.reads["thresholds"]),
                              terms("m", b=batch, m=size))
        g = self.gate(op, prev)
        self.code(population, f"""
{on} = {g}
{v} = (1 - {on})*{v}
{lateral} = (1 - {on})*{lateral}
{counts} = (1 - {on})*{counts}
{tick} = (1 - {on})*{tick}
""", comment="a window starts: u = 0, no spikes, n = 0")
        self.code(population, f"""
{running} = {on}*int({tick} < {steps} - 0.5)
{v} = {v} + {running}*({dt!r}*({D} - {v} - {lateral}))
{lateral} = 0
{tick} = {tick} + 1
""", clock="fast", when="groups", comment="u += dt (Q x − u − W s) for the window's steps")
        spec.threshold = f"{running} > 0.5 and {v} > {theta}"
        spec.reset = f"{v} = 0\n{counts} = {counts} + 1"
        if "lateral" in op.reads:
            grid = {"b": batch, "i": size, "j": size}   # unit j's spike inhibits unit i
            synapses = SynapsesSpec(self.unique("inhibition"), population, population,
                                    terms(f"b*{size} + j", **grid),
                                    terms(f"b*{size} + i", **grid), clock="fast",
                                    on_pre=f"{lateral}_post += weight",
                                    comment=f"W_ij s_j within each batch entry "
                                    f"({op.reads['lateral']})")
            synapses.linked["weight"] = (*self.where(op.reads["lateral"]),
                                         terms(f"i*{size} + j", **grid))
            self.net.synapses[synapses.name] = synapses

    def _constrain(self, op, prev):
        parameters = op.parameters
        weights, delta = op.writes["weights"], op.reads["delta"]
        n_out, n_in = self.shape(weights)
        group, w = self.where(weights)
        d = self.where(delta)[1]
        per_unit = parameters["per_unit"]
        rows = self.add_group(self.unique("budget"), n_out if per_unit else 1,
                              comment=f"one per {'row' if per_unit else 'matrix'} of "
                              f"{weights}")
        row_of_weight = terms("m" if per_unit else "0*m", m=n_out, n=n_in)
        g = self.gate(op, prev)
        if parameters["uses_delta"]:
            # ΔC loses its component along C (the budget's normal), then C += ΔC.
            use = f"{g}*{self.control('training', prev)}"
            self.code(group, f"budget_dot = {d}*{w}\nbudget_norm = {w}*{w}",
                      comment="terms of ΔC·C and C·C")
            self.net.groups[group].variables.update({"budget_dot": 0.0, "budget_norm": 0.0})
            dot, norm = self.sum_into("dot", group, None, rows.name, row_of_weight,
                                      expressions={"dot": "budget_dot_pre",
                                                   "norm": "budget_norm_pre"},
                                      comment="ΔC·C and C·C per budget")
            rows.variables["coefficient"] = 0.0
            self.code(rows.name, f"coefficient = {dot}/{norm}",
                      comment="ΔC·C / C·C")
            link = self.unique("coefficient")
            self.net.groups[group].linked[link] = (rows.name, "coefficient", row_of_weight)
            self.code(group, f"{d} = {d} - {use}*{link}*{w}\n{w} = {w} + {use}*{d}",
                      comment="ΔC −= (ΔC·C / C·C) C; C += ΔC")
        self.code(group, f"budget_norm = {w}*{w}", comment="terms of ‖C‖²")
        self.net.groups[group].variables["budget_norm"] = 0.0
        cost = self.sum_into("cost", group, "budget_norm", rows.name, row_of_weight,
                             comment="‖c_i‖² per budget")
        value = float(parameters["value"]) * (1 if per_unit else n_out)
        rows.variables["scale"] = 1.0
        self.code(rows.name, f"scale = sqrt({value!r}/{cost})", comment="back onto the budget")
        link = self.unique("scale")
        self.net.groups[group].linked[link] = (rows.name, "scale", row_of_weight)
        self.code(group, f"{w} = {g}*({w}*{link}) + (1 - {g})*{w}",
                  comment="C rescaled onto its budget")

    def _settle(self, op, prev):
        parameters = op.parameters
        drive, estimate = op.reads["drive"], op.reads["estimate"]
        target, residual_state = op.writes["target"], op.writes.get("residual")
        batch, size = self.shape(drive)
        iterations, tolerance = int(parameters["iterations"]), float(parameters["tolerance"])
        step = float(parameters["step"])
        population, D = self.where(drive)
        settled = self.where(target)[1]
        q_group = self.where(estimate)[0]
        phase = self.control("phase", prev)
        g = self.gate(op, prev)
        tag = self.unique("settle")
        # The monitor: α, residual sums, convergence flags, the worst residual.
        if residual_state is not None:
            monitor_name, maxres = self.where(residual_state)
            monitor = self.net.groups[monitor_name]
        else:
            monitor = self.add_group(f"{tag}_monitor", 1, comment="settling monitor")
            maxres = "worst_residual"
            monitor.variables[maxres] = 0.0
        monitor.variables.update({"alpha": 1.0, "residual_now": 0.0, "converged": 1.0,
                                  "done": 0.0, "iteration": 0.0, "failed": 0.0,
                                  "failed_residual": 0.0, "step_count": 0.0,
                                  "failed_step": -1.0})
        self.net.monitors.append((monitor.name, residual_state))
        # Q̂ of this step's phase, and α.
        q_vars = [var for _, var in self.net.state_variables[estimate]]
        q_group_spec = self.net.groups[q_group]
        current = f"{tag}_Q"
        q_group_spec.variables[current] = 0.0
        if len(q_vars) == 2:
            self.code(q_group, f"{current} = (1 - {phase})*{q_vars[0]} + {phase}*{q_vars[1]}",
                      comment="Q̂ of this step's phase")
        else:
            self.code(q_group, f"{current} = {q_vars[0]}", comment="Q̂")
        alpha = parameters["alpha"]
        rows_index = terms("i", i=size, j=size)
        if alpha == "gershgorin":
            rows = self.add_group(f"{tag}_rows", size, comment="rows of Q̂ (Gershgorin α)")
            q_group_spec.variables[f"{tag}_absQ"] = 0.0
            self.code(q_group, f"{tag}_absQ = abs({current})", comment="|Q̂_ij|")
            row_sum = self.sum_into("row_sum", q_group, f"{tag}_absQ", rows.name, rows_index,
                                    comment="Σ_j |Q̂_ij|")
            # The largest row sum, exactly: the one row no other row exceeds (ties: lowest i).
            i, j = terms("i", i=size, j=size), terms("j", i=size, j=size)
            above = self.unique("above")
            rows.variables[above] = 0.0
            self.net.synapses[f"{tag}_compare"] = SynapsesSpec(
                f"{tag}_compare", rows.name, rows.name, i, j,
                {above: f"int({row_sum}_pre > {row_sum}_post or ({row_sum}_pre == "
                        f"{row_sum}_post and i < j))"}, comment="rows that exceed each row")
            self.code(f"{tag}_compare", above, kind="summed", comment="count rows above")
            rows.variables["largest"] = 0.0
            self.code(rows.name, f"largest = {row_sum}*int({above} < 0.5)",
                      comment="the largest row sum (0 elsewhere)")
            largest = self.sum_into("max_row_sum", rows.name, "largest", monitor.name,
                                    terms("0*i", i=size), comment="max_i Σ_j |Q̂_ij|")
            self.code(monitor.name, f"alpha = 1.0/{largest}", comment="α = 1/max row sum")
        elif alpha == "trace":
            q_group_spec.variables[f"{tag}_diagonal"] = 0.0
            diagonal = (np.arange(size)[:, None] == np.arange(size)[None, :]).ravel()
            q_group_spec.variables[f"{tag}_on_diagonal"] = diagonal.astype(float)
            self.code(q_group, f"{tag}_diagonal = {current}*{tag}_on_diagonal",
                      comment="diagonal of Q̂")
            trace = self.sum_into("trace", q_group, f"{tag}_diagonal", monitor.name,
                                  terms("0*i", i=size * size), comment="tr Q̂")
            self.code(monitor.name, f"alpha = 1.0/{trace}", comment="α = 1/tr Q̂")
        else:
            self.code(monitor.name, f"alpha = {float(alpha)!r}", comment="fixed α")
        zeros_q = terms("0*i", i=size * size)
        zeros_p = terms("0*i", i=batch * size)
        q_group_spec.linked[f"{tag}_alpha"] = (monitor.name, "alpha", zeros_q)
        q_group_spec.variables[f"{tag}_aQ"] = 0.0
        self.code(q_group, f"{tag}_aQ = {tag}_alpha*{current}", comment="αQ̂")
        # Start of the step: y = Y, settle only in active training steps.
        p_group = self.net.groups[population]
        y, lateral = f"{tag}_y", f"{tag}_lateral"
        p_group.variables[y] = 0.0
        p_group.variables[f"{tag}_dsq"] = 0.0
        self.code(population, f"{y} = {D}\n{tag}_dsq = {D}**2", comment="y ← Y; terms of ‖Y‖²")
        d2 = self.sum_into("d2", population, f"{tag}_dsq", monitor.name,
                           zeros_p, comment="‖Y‖²")
        self.code(monitor.name, f"converged = 1 - {g}\niteration = 0\ndone = 0\n"
                  "step_count = step_count + 1", comment="start settling")
        for var in ("alpha", "converged", "done"):
            p_group.linked[f"{tag}_{var}"] = (monitor.name, var, zeros_p)
        # One iteration per fast tick: L = y αQ̂, check, y ← y + h (Y − L).
        grid = {"b": batch, "m": size, "k": size}
        total = self.contract("lateral", (population, y, terms(f"b*{size} + k", **grid)),
                              (q_group, f"{tag}_aQ", terms(f"k*{size} + m", **grid)),
                              population, terms(f"b*{size} + m", **grid), clock="fast",
                              when="groups",
                              comment="(y αQ̂) per batch entry")
        p_group.variables[f"{tag}_rsq"] = 0.0
        self.code(population, f"{tag}_rsq = ({D} - {total})**2", clock="fast", when="groups",
                  comment="terms of ‖Y − y αQ̂‖²")
        r2 = self.sum_into("r2", population, f"{tag}_rsq", monitor.name, zeros_p, "fast",
                           "groups", comment="‖Y − y αQ̂‖²")
        every = RESIDUAL_CHECK_EVERY
        self.code(monitor.name, f"""
check = int(iteration > 0.5 and converged < 0.5 and (abs(iteration - {every}*floor(iteration/{every} + 0.5)) < 0.5 or iteration > {iterations} - 0.5))
residual_check = sqrt({r2})/clip(sqrt({d2}), 1e-300, 1e308)
residual_now = check*residual_check + (1 - check)*residual_now
now_converged = int(converged > 0.5 or (check > 0.5 and (residual_now <= {tolerance!r} or not (residual_now < 1e308) or iteration > {iterations} - 0.5)))
done = now_converged - converged
converged = now_converged
{maxres} = done*({maxres}*int({maxres} >= residual_now) + residual_now*int(residual_now > {maxres})) + (1 - done)*{maxres}
newly_failed = int(failed < 0.5 and done > 0.5 and not (residual_now <= 1.0))
failed_step = failed_step + newly_failed*(step_count - 1 - failed_step)
failed_residual = failed_residual + newly_failed*(residual_now - failed_residual)
failed = int(failed > 0.5 or newly_failed > 0.5)
iteration = iteration + 1 - converged
""", clock="fast", when="groups", comment="residual check every 10 iterations; stop when "
                  "converged")
        monitor.variables.update({"check": 0.0, "residual_check": 0.0, "now_converged": 0.0,
                                  "newly_failed": 0.0})
        self.code(population, f"""
{settled} = {tag}_done*({tag}_alpha*{y}) + (1 - {tag}_done)*{settled}
{y} = {y} + {step!r}*({D} - {total})*(1 - {tag}_converged)
""", clock="fast", when="groups", comment="settled ← α y once converged; else "
                  "y ← y + h (Y − y αQ̂)")


# ------------------------------------------------------------------ instantiation
def instantiate(b2, net: Brian2Network, suffix: str = "") -> dict:
    """Brian2 objects of ``net`` (for the active device); returns name → object, with the
    clocks under ``"step_clock"`` / ``"fast_clock"``. Brian2 names get ``suffix`` (two
    simulations alive in one process must not share object names)."""
    tick = TICK_MS * b2.ms
    clocks = {"fast": b2.Clock(dt=tick, name="fast_clock" + suffix),
              "step": b2.Clock(dt=net.ticks_per_step * tick, name="step_clock" + suffix)}
    objects = {"fast_clock": clocks["fast"], "step_clock": clocks["step"]}
    for group in net.groups.values():
        objects[group.name] = b2.NeuronGroup(group.size, group.equations() or "dummy : 1",
                                             clock=clocks[group.clock], name=group.name + suffix,
                                             **group.events())
    for group in net.groups.values():
        neurons = objects[group.name]
        for name, value in group.variables.items():
            setattr(neurons, name, value)
        for name, (source, variable, index) in group.linked.items():
            setattr(neurons, name, b2.linked_var(objects[source], variable,
                                                 index=np.asarray(index).astype(np.int64)))
    for synapses in net.synapses.values():
        created = b2.Synapses(objects[synapses.source], objects[synapses.target],
                              synapses.equations(), clock=clocks[synapses.clock],
                              name=synapses.name + suffix, **synapses.events())
        created.connect(i=np.asarray(synapses.i, dtype=np.int32),
                        j=np.asarray(synapses.j, dtype=np.int32))
        for name, (source, variable, index) in synapses.linked.items():
            setattr(created, f"{name}_index", np.asarray(index).astype(np.int32))
            setattr(created, name, b2.linked_var(objects[source], variable,
                                                 index=f"{name}_index"))
        objects[synapses.name] = created
    for code in net.codes:
        if code.kind == "summed":
            updater = objects[code.owner].summed_updaters[f"{code.code}_post"]
            updater._clock = clocks[code.clock]
            updater.when, updater.order = code.when, code.order
        else:
            objects[code.owner].run_regularly(code.code, clock=clocks[code.clock],
                                              when=code.when, order=code.order,
                                              name=code.name + suffix)
    return objects


def timed_array_values(net: Brian2Network, chunk, start: int, n_steps: int,
                       capacity: int) -> dict:
    """Per-step controls and streams of steps ``start … start + n_steps`` of ``chunk``, padded
    with inactive steps to ``capacity + 1`` (the last one applies the last step's updates)."""
    length = capacity + 1
    values = {}
    steps = np.arange(start, start + n_steps)
    base = {"active": np.zeros(length), "training": np.zeros(length), "phase": np.zeros(length)}
    base["active"][:n_steps] = 1.0
    base["training"][:n_steps] = float(chunk.training)
    base["phase"][:n_steps] = chunk.phases[steps]
    for name, (kind, source) in net.controls.items():
        prev = name.endswith("_prev")
        if kind == "control":
            series = base[source]
        elif kind == "rate":
            series = np.zeros(length)
            series[:n_steps] = chunk.rates[source][0, steps]
        else:
            width = net.timed_arrays[name]
            drawn = chunk.streams[source][0, steps].reshape(n_steps, -1)
            series = np.zeros((length, width))
            series[:n_steps] = drawn
        if prev:  # step k applies the updates of step k − 1
            shifted = np.zeros_like(series)
            shifted[1:] = series[:-1]
            series = shifted
        values[name] = series
    return values


# --------------------------------------------------------------------- simulation
class Brian2Simulation(Simulation):
    """A plan compiled into Brian2 objects; the host keeps the state between chunks.

    Parameters
    ----------
    plan : Plan
    labels : list of str, optional
    target : str
        One of :data:`TARGETS`.
    """

    backend_name = "brian2"

    def __init__(self, plan, labels=None, target: str = "brian2"):
        self.target = target
        self.backend_name = target
        self.network = PlanCompiler(plan).compile()
        super().__init__(plan, labels)

    def _allocate(self, initial: dict) -> None:
        self.state = {name: np.array(value, dtype=np.float64) for name, value in initial.items()}
        if self.target == "brian2:cpp_standalone":
            self._runner = _StandaloneRunner(self.network, self._capacity())
        else:
            self._runner = _RuntimeRunner(self.network, self.target)

    def _capacity(self) -> int:
        """Steps per execution of the standalone binary: one record interval."""
        member = self.plan.members[0]
        return max(1, member.record.every // self.batch_size)

    def read(self, name: str) -> np.ndarray:
        return self.state[name]

    def write(self, name: str, value: np.ndarray) -> None:
        self.state[name][...] = value

    def _variables(self) -> dict:
        """(group, variable) → flat values of every plan state (the host's copy)."""
        values = {}
        for name, places in self.network.state_variables.items():
            array = self.state[name][0, ...]
            if len(places) == 1:
                values[places[0]] = array.ravel()
            else:
                for index, place in enumerate(places):
                    values[place] = array[index].ravel()
        return values

    def _store(self, values: dict) -> None:
        for name, places in self.network.state_variables.items():
            target = self.state[name][0, ...]
            if len(places) == 1:
                target[...] = values[places[0]].reshape(target.shape)
            else:
                for index, place in enumerate(places):
                    target[index] = values[place].reshape(target[index].shape)

    def run_steps(self, chunk) -> list[StepFailure]:
        capacity = self._runner.capacity or chunk.n_steps
        for start in range(0, chunk.n_steps, capacity):
            n_steps = min(capacity, chunk.n_steps - start)
            controls = timed_array_values(self.network, chunk, start, n_steps,
                                          self._runner.capacity or n_steps)
            values, monitors = self._runner.run(self._variables(), controls, n_steps)
            self._store(values)
            for _, monitor in monitors.items():
                if monitor["failed"] > 0.5:
                    return [StepFailure(0, start + int(monitor["failed_step"]),
                                        "settling residual", float(monitor["failed_residual"]),
                                        "lateral network does not converge: α ≥ 2/λ_max(Q̂)?")]
        return []


class _RuntimeRunner:
    """One Brian2 network in this process (numpy or Cython code generation)."""

    capacity = 0  # any number of steps per run

    def __init__(self, net: Brian2Network, target: str):
        b2 = _import_brian2()
        self.b2, self.net = b2, net
        _quiet(b2)
        b2.set_device("runtime")
        b2.prefs.codegen.target = {"brian2": "auto", "brian2:numpy": "numpy",
                                   "brian2:cython": "cython"}[target]
        try:  # plain names where free: Cython's cache of compiled code is keyed by them
            self.objects = instantiate(b2, net)
        except ValueError:  # another live simulation holds them
            self.objects = instantiate(b2, net, _suffix())
        self.network = b2.Network([obj for name, obj in self.objects.items()
                                   if not name.endswith("_clock")])
        self.defaults = {(group.name, name): value for group in net.groups.values()
                         for name, value in group.variables.items()}

    def run(self, variables: dict, controls: dict, n_steps: int):
        b2 = self.b2
        for (group, name), value in self.defaults.items():
            if (group, name) not in variables:
                getattr(self.objects[group], name + "_")[:] = value
        for (group, name), value in variables.items():
            getattr(self.objects[group], name + "_")[:] = value
        ticks = self.net.ticks_per_step
        tick = TICK_MS * b2.ms
        now = int(round(float(self.network.t / tick)))
        aligned = -(-now // ticks) * ticks  # the step clock's next tick
        namespace = {"t0": aligned * tick}
        for name, values in controls.items():
            namespace[name] = b2.TimedArray(values, dt=ticks * tick, name=name)
        self.network.run((aligned - now + n_steps * ticks + 1) * tick, namespace=namespace,
                         report=None)
        values = {(group, name): np.array(getattr(self.objects[group], name + "_")[:])
                  for group, name in variables}
        return values, _monitor_values(self.net, lambda group, name: np.array(
            getattr(self.objects[group], name + "_")[:]))


_INSTANCES = [0]


def _suffix() -> str:
    _INSTANCES[0] += 1
    return f"_{_INSTANCES[0]}"


def _monitor_values(net, get) -> dict:
    return {group: {key: float(get(group, key)[0]) for key in
                    ("failed", "failed_step", "failed_residual")}
            for group, _ in net.monitors}


class _StandaloneRunner:
    """The network compiled once as a C++ standalone binary for ``capacity`` steps; each chunk
    is one execution with the state and the chunk's controls passed as ``run_args``."""

    def __init__(self, net: Brian2Network, capacity: int):
        compiler = os.environ.get("CXX") or "g++"
        missing = [tool for tool in (compiler, "make") if shutil.which(tool) is None]
        if missing:
            raise BackendUnavailable(f"backend brian2:cpp_standalone needs a C++ compiler "
                                     f"and make; not found: {', '.join(missing)} (install "
                                     "them, e.g. apt-get install g++ make, or use backend "
                                     "brian2)")
        b2 = _import_brian2()
        _quiet(b2)
        self.net, self.capacity = net, capacity
        self.directory = tempfile.mkdtemp(prefix="plasticsim-brian2-")
        ticks = net.ticks_per_step
        tick = TICK_MS * b2.ms
        try:
            b2.set_device("cpp_standalone", directory=self.directory, build_on_run=False)
            objects = instantiate(b2, net)
            namespace = {"t0": 0 * b2.ms}
            self.timed = {}
            for name, width in net.timed_arrays.items():
                shape = (capacity + 1,) if width == 0 else (capacity + 1, width)
                array = b2.TimedArray(np.zeros(shape), dt=ticks * tick, name=name)
                namespace[name] = self.timed[name] = array
            network = b2.Network([obj for name, obj in objects.items()
                                  if not name.endswith("_clock")])
            network.run((capacity * ticks + 1) * tick, namespace=namespace, report=None)
            device = b2.get_device()
            self.files = {}
            for group in net.groups.values():
                for name in group.variables:
                    variable = objects[group.name].variables[name]
                    self.files[(group.name, name)] = device.get_array_filename(variable)
            device.build(directory=self.directory, compile=True, run=False,
                         with_output=False)
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        finally:
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")

    def run(self, variables: dict, controls: dict, n_steps: int):
        static = os.path.join(self.directory, "static_arrays")
        arguments = []
        for (group, name), value in variables.items():
            filename = f"plasticsim_{group}_{name}.dat"
            np.asarray(value, dtype=np.float64).tofile(os.path.join(static, filename))
            arguments.append(f"{group}.{name}=static_arrays/{filename}")
        for name, values in controls.items():
            filename = f"plasticsim_{name}.dat"
            np.asarray(values, dtype=np.float64).tofile(os.path.join(static, filename))
            arguments.append(f"{name}.values=static_arrays/{filename}")
        results = os.path.join(self.directory, "results", "")
        os.makedirs(results, exist_ok=True)
        completed = subprocess.run(["./main", "--results_dir", results, *arguments],
                                   cwd=self.directory, capture_output=True, text=True)
        if completed.returncode:
            raise RuntimeError(f"the Brian2 standalone binary failed ({self.directory}): "
                               f"{completed.stderr[-2000:]}")

        # Brian2's own timer of the simulation loop (excludes start-up and file transfers).
        with open(os.path.join(results, "last_run_info.txt")) as info:
            self.last_run_seconds = float(info.read().split()[0])

        def get(group, name):
            return np.fromfile(os.path.join(results, self.files[(group, name)]),
                               dtype=np.float64)
        values = {key: get(*key) for key in variables}
        return values, _monitor_values(self.net, get)

    def __del__(self):
        shutil.rmtree(getattr(self, "directory", ""), ignore_errors=True)


def _quiet(b2) -> None:
    """Brian2's INFO/WARNING logging on the console would interleave with the run's output."""
    b2.BrianLogger.log_level_error()


def _build(plan, labels=None, variant=None) -> Brian2Simulation:
    name = variant or "brian2"
    reason = refusal(plan, name)
    if reason is not None:
        raise BackendUnavailable(reason)
    return Brian2Simulation(plan, labels, name)


def _register(target: str) -> None:
    def builder(plan, labels=None, variant=None):
        return _build(plan, labels, variant or target)
    # check_supported asks the builder why it refuses a plan, naming the target.
    builder.refusal = refusal
    register_backend(target)(builder)


for _target in TARGETS:
    _register(_target)

"""``plasticsim export --to brian2``: a protocol as one standalone Brian2 script.

The script is the network the Brian2 backend compiles (:mod:`plasticsim.backends.brian2_backend`)
written out as Brian2 code, with the host side (phases, learning rates and the random streams
drawn from the protocol's seed exactly as plasticsim draws them) as plain NumPy. It imports
only ``numpy`` and ``brian2``; ``python OUT.py`` runs the protocol chunk by chunk as
``plasticsim run`` does and writes the final state (learned weights, running estimates) to an
``.npz`` next to it, so it reproduces the backend's final weights.

Exportable: what the Brian2 backend runs, with ``gaussian_ring`` stimuli, white output noise
and ``constant`` / ``annealed`` learning rates. Anything else is refused with the reason.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np

from .errors import BackendUnavailable, OutputExistsError
from .version import __version__


def export_brian2(protocol, out, overrides: list[str] | None = None,
                  overwrite: bool = False) -> Path:
    """Write the Brian2 script of ``protocol`` to ``out``.

    Raises
    ------
    SpecError, BackendUnavailable
        A protocol that does not validate, or one the Brian2 backend or the exporter cannot
        express (with the reason).
    OutputExistsError
        ``out`` exists and ``overwrite`` is false.
    """
    from .backends import check_supported
    from .run import validate
    spec, plans = validate(protocol, overrides)
    if len(plans) != 1 or plans[0].n_members != 1:
        raise BackendUnavailable("export --to brian2 writes one network; this protocol is an "
                                 "ensemble (export one member with --set instead)")
    plan = plans[0]
    check_supported(plan, "brian2")
    out = Path(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; choose another output or pass --overwrite")
    text = brian2_script(spec, plan, source=str(protocol))
    compile(text, str(out), "exec")  # a generated script that does not parse is our bug
    temporary = out.with_name(f".{out.name}.partial")
    temporary.write_text(text)
    os.replace(temporary, out)  # a previous script stays whole until the new one is complete
    return out


# ------------------------------------------------------------------ the host side
def _stream_code(spec, plan) -> tuple[list[str], list[str]]:
    """Draw functions of the plan's streams (as plasticsim draws them) and their table."""
    functions, table = [], []
    for group in plan.streams:
        (stream, shape), = group.outputs.items()
        function = "draw_" + stream.replace(".", "_")
        kind, name = group.name.split(".", 1)
        if kind == "stimulus":
            stimulus = spec.stimuli[name]
            if stimulus.kind != "gaussian_ring":
                raise BackendUnavailable(f"export --to brian2: stimulus {name!r} is "
                                         f"{stimulus.kind!r}; only gaussian_ring is written")
            sites = shape[0]
            functions.append(f'''
# Stimulus {name!r} (gaussian_ring on {sites} sites): signal S = √v_S A_S ξ, input noise
# N = √σ_n² A_N ξ′; sensing samples are S + N, noise-unlearning samples N alone.
SIGNAL_FILTER_{_py(name)} = np.sqrt({stimulus.signal_variance!r}) * ring_filter({sites}, {stimulus.signal_filter_sd!r})
NOISE_FILTER_{_py(name)} = np.sqrt({stimulus.input_noise.variance!r}) * ring_filter({sites}, {stimulus.input_noise.filter_sd!r})


def {function}(rng, sensing):
    white = rng.standard_normal((2,) + sensing.shape + ({sites},))
    inputs = white[1] @ NOISE_FILTER_{_py(name)}.T
    inputs += (white[0] @ SIGNAL_FILTER_{_py(name)}.T) * sensing[..., None]
    return inputs''')
        elif kind == "output_noise":
            variance = spec.model.populations[name].output_noise_variance
            functions.append(f'''

def {function}(rng, sensing):
    """Output noise ν of {name!r}: white, variance {variance!r}."""
    return {float(np.sqrt(variance))!r} * rng.standard_normal(sensing.shape + ({shape[0]},))''')
        else:
            raise BackendUnavailable(f"export --to brian2: stream {group.name!r} is not "
                                     "written")
        table.append(f"    ({stream!r}, {tuple(group.seed_key)!r}, {function}),")
    return functions, table


def _rate_code(spec, plan) -> list[str]:
    rows = []
    for name, rate in plan.rates.items():
        projection, what = name.rsplit(".", 1)
        schedule = spec.learning_rates.get(projection)
        if what != "learning_rate" or schedule is None:
            raise BackendUnavailable(f"export --to brian2: rate {name!r} is not written")
        tau = None if schedule.tau is None else float(schedule.tau)
        rows.append(f"    {name!r}: ({schedule.kind!r}, {schedule.initial!r}, {tau!r}, "
                    f"{rate.kind!r}, {rate.zero_in_warmup!r}),")
    return rows


def _py(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def _array(value: np.ndarray) -> str:
    value = np.asarray(value, dtype=np.float64)
    if not value.any():
        return f"np.zeros({value.size})" if value.ndim else "0.0"
    if value.ndim == 0 or value.size == 1:
        return repr(float(value.ravel()[0]))
    return f"np.array({value.ravel().tolist()!r})"


def _index(index) -> str:
    text = getattr(index, "text", "")
    return text or f"np.array({np.asarray(index).tolist()!r})"


# ---------------------------------------------------------------------- the script
def brian2_script(spec, plan, source: str = "<protocol>") -> str:
    """The text of the standalone Brian2 script of ``plan`` (see the module docstring)."""
    from .backends.brian2_backend import PlanCompiler
    net = PlanCompiler(plan).compile()
    member = plan.members[0]
    schedule, phases, record = member.schedule, member.phases, member.record
    functions, streams = _stream_code(spec, plan)
    rates = _rate_code(spec, plan)
    initial = {name: state.initial[0] for name, state in plan.states.items()}
    placed = {place: (name, index) for name, places in net.state_variables.items()
              for index, place in enumerate(places)}
    out_name = f"{spec.name}_final_state.npz"

    lines = [f'''#!/usr/bin/env python
"""{spec.name}: {spec.description or "exported plasticsim protocol"}

A standalone Brian2 script exported by plasticsim {__version__} from {source}
(seed {member.seed}, {schedule.samples} samples after {schedule.warmup_samples} warm-up samples,
mini-batches of {schedule.batch_size}). It imports only numpy and brian2. Run it with

    python {{this file}} [OUT.npz] [--target numpy|cython]

and it writes the final state (learned weights, running estimates) to OUT.npz
(default {out_name}), keyed by plasticsim's state names.

How the network is laid out
---------------------------
One mini-batch step is one tick of ``step_clock``; the lateral network settles on
``fast_clock``, one Jacobi/Euler iteration per tick ({net.ticks_per_step} ticks per step;
the residual is checked every 10 iterations and a converged network stops changing).
Each population is a NeuronGroup with one neuron per (batch entry, unit); each weight
matrix a NeuronGroup with one neuron per weight. A product summed over an index (a
matrix product, an outer product summed over the batch) is a group of its terms (their
factors linked to the groups that hold them) and Synapses onto the result with a summed
variable. The weight updates of step k run at the start of step k + 1, gated by per-step
controls (active, training, phase, rates) that are TimedArrays, as are the random inputs,
drawn here from the protocol's seed exactly as plasticsim draws them.

The step plan (``plasticsim validate --plan``):

{textwrap.indent(plan.describe(), "    ")}
"""

import sys

import brian2 as b2
import numpy as np

# ----------------------------------------------------------------------------- protocol
SEED = {member.seed}
BATCH = {schedule.batch_size}
SAMPLES = {schedule.samples}
WARMUP_SAMPLES = {schedule.warmup_samples}
RECORD_EVERY = {record.every}
BLOCK_LENGTH = {schedule.block_length}
PHASES_ENABLED = ({phases.sensing.enabled!r}, {phases.noise_unlearning.enabled!r})
TICKS_PER_STEP = {net.ticks_per_step}
TICK = 1 * b2.ms  # the plan has no physical time: ticks are only counted


# ------------------------------------------------- host side: phases, rates, random inputs
def ring_filter(sites, filter_sd):
    """Circulant matrix whose rows are a unit-norm Gaussian of s.d. filter_sd sites."""
    if filter_sd == 0:
        return np.eye(sites)
    offsets = np.arange(sites)
    distance = np.minimum(offsets, sites - offsets)
    kernel = np.exp(-distance**2 / (2.0 * filter_sd**2))
    kernel /= np.linalg.norm(kernel)
    return np.stack([np.roll(kernel, i) for i in range(sites)])
''']
    lines += functions
    lines.append(f'''

#: Stream name, spawn key of its random stream under SeedSequence(SEED), draw function.
STREAMS = [
{chr(10).join(streams)}
]
RNGS = [np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=key))
        for _, key, _ in STREAMS]
#: Rate name → (schedule kind, initial, tau, kind, zero in warm-up). Learning rates η(t) are
#: η₀ or η₀ / (1 + t/τ) per sample; running averages use ε_B = 1 − (1 − ε)^B per step.
RATES = {{
{chr(10).join(rates)}
}}


def step_phases(first_sample, n_steps):
    """0 sensing, 1 noise-unlearning: alternating blocks of BLOCK_LENGTH samples."""
    if not all(PHASES_ENABLED):
        return np.full(n_steps, PHASES_ENABLED.index(True))
    return ((first_sample + BATCH * np.arange(n_steps)) // BLOCK_LENGTH) % 2


def rate_values(name, samples, warmup):
    schedule, initial, tau, kind, zero_in_warmup = RATES[name]
    if warmup and zero_in_warmup:
        values = np.zeros(len(samples))
    elif schedule == "constant":
        values = np.full(len(samples), initial)
    else:
        values = initial / (1.0 + samples / tau)
    return 1.0 - (1.0 - values) ** BATCH if kind == "running_average" else values


def terms(function, **sizes):
    """function(indices) at every term of a grid of sizes (C order): index arrays."""
    axes = np.meshgrid(*(np.arange(n) for n in sizes.values()), indexing="ij")
    values = function(*(a.ravel() for a in axes))
    return np.broadcast_to(np.asarray(values, dtype=np.int64), axes[0].size).copy()


# ------------------------------------------------------------------------------ network
fast_clock = b2.Clock(dt=TICK, name="fast_clock")
step_clock = b2.Clock(dt=TICKS_PER_STEP * TICK, name="step_clock")
''')
    objects = []
    for group in net.groups.values():
        lines.append(f"# {group.comment}" if group.comment else "")
        events = "".join(f", {key}={value!r}" for key, value in group.events().items())
        lines.append(f'{group.name} = b2.NeuronGroup({group.size}, """\n'
                     + group.equations() + f'\n""", clock={group.clock}_clock, '
                     f'name={group.name!r}{events})')
        objects.append(group.name)
    lines.append("\n# Initial values (the state plasticsim built from the seed, and the "
                 "network's own variables)")
    for group in net.groups.values():
        for name, value in group.variables.items():
            if (group.name, name) in placed:
                state, index = placed[(group.name, name)]
                array = initial[state]
                if len(net.state_variables[state]) > 1:
                    array = array[index]
                lines.append(f"{group.name}.{name} = {_array(array)}  # {state}")
            elif np.any(np.asarray(value)):
                lines.append(f"{group.name}.{name} = {_array(value)}")
    lines.append("\n# Linked variables: each term's factors, read where they are held")
    for group in net.groups.values():
        for name, (source, variable, index) in group.linked.items():
            lines.append(f"{group.name}.{name} = b2.linked_var({source}, {variable!r}, "
                         f"index={_index(index)})")
    lines.append("\n# Sums over terms: Synapses onto the result with a summed variable")
    for synapses in net.synapses.values():
        on_pre = "".join(f", {key}={value!r}" for key, value in synapses.events().items())
        lines.append(f"# {synapses.comment}" if synapses.comment else "")
        lines.append(f'{synapses.name} = b2.Synapses({synapses.source}, {synapses.target}, '
                     f'"""\n' + synapses.equations() + f'\n""", clock={synapses.clock}_clock, '
                     f'name={synapses.name!r}{on_pre})')
        lines.append(f"{synapses.name}.connect(i={_index(synapses.i)}, "
                     f"j={_index(synapses.j)})")
        for name, (source, variable, index) in synapses.linked.items():
            lines.append(f"{synapses.name}.{name}_index = {_index(index)}")
            lines.append(f"{synapses.name}.{name} = b2.linked_var({source}, {variable!r}, "
                         f"index={name + '_index'!r})")
        objects.append(synapses.name)
    lines.append("\n# The step, in order: last step's updates, then stimulus and drives "
                 "(step_clock, 'start'); settling iterations (fast_clock, 'groups')")
    for code in net.codes:
        lines.append(f"# {code.comment}" if code.comment else "")
        if code.kind == "summed":
            lines.append(f"{code.owner}.summed_updaters[{code.code + '_post'!r}]._clock = "
                         f"{code.clock}_clock")
            lines.append(f"{code.owner}.summed_updaters[{code.code + '_post'!r}].when = "
                         f"{code.when!r}")
            lines.append(f"{code.owner}.summed_updaters[{code.code + '_post'!r}].order = "
                         f"{code.order}")
        else:
            lines.append(f'{code.owner}.run_regularly("""\n{code.code}\n""", '
                         f'clock={code.clock}_clock, when={code.when!r}, order={code.order}, '
                         f'name={code.name!r})')
    state_table = "\n".join(f"    {name!r}: ({plan.states[name].shape!r}, {places!r}),"
                            for name, places in net.state_variables.items())
    controls = "\n".join(f"    {name!r}: ({kind!r}, {source!r}, {net.timed_arrays[name]}),"
                         for name, (kind, source) in net.controls.items())
    monitors = ", ".join(f"{group!r}" for group, _ in net.monitors)
    residuals = [net.state_variables[state][0] for _, state in net.monitors if state]
    lines.append(f'''
network = b2.Network([{", ".join(objects)}])
GROUPS = {{{", ".join(f"{name!r}: {name}" for name in objects if name in net.groups)}}}
#: plasticsim state name → (shape, [(group, variable)]) (one variable per phase).
STATE = {{
{state_table}
}}
#: TimedArray name → (kind, what, width): per-step controls (``_prev``: of the last step).
CONTROLS = {{
{controls}
}}
SETTLING_MONITORS = [{monitors}]
RESIDUAL_MONITORS = {residuals!r}


def controls_of(phases, training, rates, streams, n_steps):
    """Per-step TimedArray values, one inactive step at the end (it applies the updates of the
    last step)."""
    length = n_steps + 1
    base = {{"active": np.zeros(length), "training": np.zeros(length),
            "phase": np.zeros(length)}}
    base["active"][:n_steps] = 1.0
    base["training"][:n_steps] = float(training)
    base["phase"][:n_steps] = phases
    values = {{}}
    for name, (kind, what, width) in CONTROLS.items():
        if kind == "control":
            series = base[what]
        elif kind == "rate":
            series = np.zeros(length)
            series[:n_steps] = rates[what]
        else:
            series = np.zeros((length, width))
            series[:n_steps] = streams[what].reshape(n_steps, width)
        if name.endswith("_prev"):
            series = np.concatenate([np.zeros_like(series[:1]), series[:-1]])
        values[name] = series
    return values


def run_chunk(n_samples, first_sample, warmup):
    """Draw the host side of n_samples samples and run them (as plasticsim's advance)."""
    n_steps = n_samples // BATCH
    if warmup:
        phases = step_phases(0, n_steps)
        samples = np.zeros(n_steps)
    else:
        phases = step_phases(first_sample, n_steps)
        samples = first_sample + BATCH * np.arange(n_steps)
    rates = {{name: rate_values(name, samples, warmup) for name in RATES}}
    sensing = np.repeat(phases == 0, BATCH)
    streams = {{name: draw(rng, sensing) for (name, _, draw), rng in zip(STREAMS, RNGS)}}
    now = int(round(float(network.t / TICK)))
    aligned = -(-now // TICKS_PER_STEP) * TICKS_PER_STEP  # the step clock's next tick
    namespace = {{"t0": aligned * TICK}}
    for name, values in controls_of(phases, not warmup, rates, streams, n_steps).items():
        namespace[name] = b2.TimedArray(values, dt=TICKS_PER_STEP * TICK, name=name)
    network.run((aligned - now + n_steps * TICKS_PER_STEP + 1) * TICK, namespace=namespace,
                report=None)
    for monitor in SETTLING_MONITORS:
        if GROUPS[monitor].failed[0] > 0.5:
            sys.exit(f"step {{int(GROUPS[monitor].failed_step[0])}} of this chunk: settling "
                     f"residual {{GROUPS[monitor].failed_residual[0]:.6g}}: the lateral network "
                     "does not converge")
    return n_steps * BATCH


def final_state():
    state = {{}}
    for name, (shape, places) in STATE.items():
        values = [np.array(getattr(GROUPS[group], variable + "_")[:]) for group, variable in places]
        state[name] = (values[0] if len(values) == 1 else np.stack(values)).reshape(shape)
    return state


def main(argv):
    arguments = [a for a in argv if not a.startswith("--")]
    if "--target" in argv:
        b2.prefs.codegen.target = argv[argv.index("--target") + 1]
        arguments.remove(b2.prefs.codegen.target)
    out = arguments[0] if arguments else {out_name!r}
    if WARMUP_SAMPLES // BATCH:
        run_chunk(WARMUP_SAMPLES // BATCH * BATCH, 0, warmup=True)
    done = 0
    while done < SAMPLES:
        chunk = min(RECORD_EVERY, SAMPLES - done)
        run_chunk(chunk, done, warmup=False)
        done += chunk
        for group, variable in RESIDUAL_MONITORS:  # reset at each record, as plasticsim does
            setattr(GROUPS[group], variable, 0.0)
    np.savez(out, **final_state())
    print(f"wrote {{out}}")


if __name__ == "__main__":
    main(sys.argv[1:])
''')
    return "\n".join(lines) + "\n"

"""A seeded mutator of the shipped protocols, models and results files, and the checks every
mutated case must pass through the command line (see tests/test_fuzz.py).

Every case is a function of (kind, seed): a failure names the seed, and
``python tests/fuzzing.py validate 1234`` replays it. The checks are those of issue 11: no
traceback, no hang, the right exit status (2 input, 3 divergence), one line on stderr,
nothing written outside ``--out``, and no complete results with non-finite figures.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import random
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
PROTOCOLS = REPOSITORY / "protocols"
MODELS = REPOSITORY / "models"

#: Protocols mutated for ``validate`` (all shipped ones but those reading external images).
VALIDATE_PROTOCOLS = sorted(path.name for path in PROTOCOLS.glob("*.yaml")
                            if "kind: raw" not in path.read_text()
                            and "/shared/" not in path.read_text())
#: Protocols mutated for ``run``: the fast ones (a short run takes well under a second).
RUN_PROTOCOLS = ["linsker1992_1d.yaml", "linsker1992_1d_colored.yaml",
                 "linsker1992_1d_power_series.yaml", "oja_subspace.yaml",
                 "gating_e1_control.yaml", "gating_e2_linsker.yaml", "som_square.yaml"]
#: Seconds one in-process case may take before it counts as a hang.
CASE_SECONDS = 60

#: Values that probe the range checks.
HOSTILE_VALUES = [0, -1, 1, 1e-320, 5e-324, 1e-300, 1e308, -1e308, float("inf"),
                  float("-inf"), float("nan"), 2**63, 2**64, -(2**63), 10**30, 10**400, 1e9,
                  0.5, 3000, 10**7, "", "x", "../../escape", "/tmp/escape", "a/b", "..",
                  None, True, [], {}, [1, 2], {"kind": "nonsense"}, "1e-320", "inf", "nan",
                  "\x00", "é", -0.0, 1e30, 1e-30, 2.0, 100000]


class Hang(BaseException):
    """Raised by the alarm: a case ran past :data:`CASE_SECONDS` (not an Exception, so the
    command line's handlers cannot swallow it)."""


@dataclass
class Outcome:
    """What one command did."""

    code: int | None
    stderr: str
    stdout: str = ""
    escaped: str | None = None      # an exception that left cli.main
    hung: bool = False
    problems: list = field(default_factory=list)


def call_cli(arguments: list[str], seconds: int = CASE_SECONDS) -> Outcome:
    """``plasticsim <arguments>`` in this process, stdout and stderr captured, with an alarm."""
    from plasticsim.cli import main

    stderr, stdout = io.StringIO(), io.StringIO()

    def alarm(signum, frame):
        raise Hang()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    outcome = Outcome(None, "")
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            outcome.code = main(arguments)
    except Hang:
        outcome.hung = True
    except BaseException as error:   # noqa: BLE001 - anything leaving main is a failure
        outcome.escaped = f"{type(error).__name__}: {error}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    outcome.stderr, outcome.stdout = stderr.getvalue(), stdout.getvalue()
    return outcome


def basic_problems(outcome: Outcome, allowed: tuple) -> list[str]:
    """Traceback, hang, escaped exception, wrong status, or an error of more than one line."""
    problems = []
    if outcome.hung:
        problems.append("hang")
    if outcome.escaped:
        problems.append(f"exception left main: {outcome.escaped[:300]}")
    if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
        problems.append("traceback printed")
    if outcome.code is not None and outcome.code not in allowed:
        problems.append(f"exit {outcome.code} (allowed {allowed}): {outcome.stderr[-300:]}")
    if outcome.code not in (None, 0):
        errors = [line for line in outcome.stderr.splitlines()
                  if line.startswith("plasticsim: error") or
                  line.startswith("plasticsim: internal")]
        if len(errors) != 1:
            problems.append(f"expected one error line, got {len(errors)}: "
                            f"{outcome.stderr[-300:]!r}")
        other = [line for line in outcome.stderr.splitlines() if line.strip()
                 and not line.startswith("plasticsim: ")]
        if other:
            problems.append(f"stderr lines that are neither errors nor warnings: {other[:2]}")
    return problems


# ----------------------------------------------------------------- documents and mutations
def _leaves(document, prefix=()):
    """Every key path of a nested document (mappings and lists), leaves and inner nodes."""
    paths = []
    if isinstance(document, dict):
        for key, value in document.items():
            paths.append(prefix + (key,))
            paths += _leaves(value, prefix + (key,))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            paths.append(prefix + (index,))
            paths += _leaves(value, prefix + (index,))
    return paths


def _set(document, path, value):
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _get(document, path):
    for key in path:
        document = document[key]
    return document


def _delete(document, path):
    target = _get(document, path[:-1])
    del target[path[-1]]


def mutate_document(document: dict, rng: random.Random, mutations: int,
                    numeric: bool = False) -> dict:
    """A copy of ``document`` with ``mutations`` random structural or value changes
    (``numeric``: mostly numbers scaled or replaced, so that many cases still run)."""
    document = copy.deepcopy(document)
    for _ in range(mutations):
        paths = _leaves(document)
        numbers = [path for path in paths if isinstance(_get(document, path), (int, float))
                   and not isinstance(_get(document, path), bool)]
        if not paths:
            break
        path = rng.choice(numbers if numeric and numbers and rng.random() < 0.8 else paths)
        action = rng.random() * (0.55 if numeric and path in numbers else 1.0)
        current = _get(document, path)
        if action < 0.55:
            if isinstance(current, (int, float)) and not isinstance(current, bool) and \
                    rng.random() < 0.5:
                factor = rng.choice([0, -1, 1e-300, 1e300, 1e-12, 1e12, 10, 0.1, 2**40, 2,
                                     0.5, 1.5, 3])
                try:
                    value = current * factor
                except OverflowError:
                    value = float("inf")
            else:
                value = rng.choice(HOSTILE_VALUES)
            _set(document, path, copy.deepcopy(value))
        elif action < 0.7:
            _delete(document, path)
        elif action < 0.8:
            parent = _get(document, path[:-1])
            if isinstance(parent, dict):
                parent[rng.choice(["extra", "kind", "size", "seed", "samples", "name"])] = \
                    copy.deepcopy(rng.choice(HOSTILE_VALUES))
        elif action < 0.9:
            other = _get(document, rng.choice(paths))   # graft another subtree here
            _set(document, path, copy.deepcopy(other))
        else:
            _set(document, path, {"nested": [current, {"deeper": current}]})
    return document


def _yaml_text(document) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def mutate_text(text: str, rng: random.Random) -> bytes:
    """Text-level damage: truncation, byte flips, NUL and non-UTF-8 bytes, alias bombs,
    recursive anchors, deep nesting, tabs, duplicate documents."""
    raw = text.encode()
    choice = rng.randrange(10)
    if choice == 0:
        return raw[:rng.randrange(len(raw) + 1)]
    if choice == 1:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if choice == 2:
        at = rng.randrange(len(raw))
        return raw[:at] + rng.choice([b"\x00", b"\xff\xfe", b"\xe9", b"\x80"]) + raw[at:]
    if choice == 3:
        lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
        lines += [f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]" for k in range(1, 9)]
        return (text + "\n" + "\n".join(lines) + "\n").encode()
    if choice == 4:
        return (text + "\nloop: &loop [1, *loop]\n").encode()
    if choice == 5:
        depth = rng.choice([50, 150, 3000])
        return (text + "\ndeep: " + "[" * depth + "]" * depth + "\n").encode()
    if choice == 6:
        return raw.replace(b"  ", b"\t", 1)
    if choice == 7:
        return raw + b"\n---\nname: second\n"
    if choice == 8:
        return (text + "\nbig: " + "9" * 5000 + "\n").encode()
    return raw.replace(b":", b"", 1)


@dataclass
class ProtocolCase:
    """A mutated protocol (and model) written into a directory."""

    protocol: Path
    description: str


def make_protocol_case(directory: Path, seed: int, names=VALIDATE_PROTOCOLS,
                       run_sized: bool = False) -> ProtocolCase:
    """Write a mutated copy of a shipped protocol and its model under ``directory``.

    ``run_sized`` first shortens the schedule (so that the case can be run), then mutates
    one or two values; otherwise up to four mutations hit the protocol, the model, or the
    text of either.
    """
    rng = random.Random(seed)
    name = rng.choice(list(names))
    protocol = yaml.safe_load((PROTOCOLS / name).read_text())
    model_ref = protocol.get("model")
    model = yaml.safe_load((PROTOCOLS / model_ref).read_text()) if isinstance(model_ref, str) \
        else None
    (directory / "protocols").mkdir(parents=True, exist_ok=True)
    (directory / "models").mkdir(parents=True, exist_ok=True)
    if run_sized:
        schedule = protocol.setdefault("schedule", {})
        batch = int(schedule.get("batch_size", 1))
        schedule["samples"] = 20 * batch * rng.choice([1, 2, 5])
        schedule["warmup_samples"] = 0
        protocol.setdefault("record", {})["every"] = 10 * batch
        for probe in (protocol.get("probes") or {}).values():
            if isinstance(probe, dict) and "samples" in probe:
                probe["samples"] = 200
    what = []
    target = rng.random()
    mutations = 1 if run_sized else rng.randint(1, 4)
    text_damage = None
    if model is not None and target < 0.45:
        model = mutate_document(model, rng, mutations, numeric=run_sized)
        what.append(f"model x{mutations}")
    elif target < (0.95 if run_sized else 0.85):
        protocol = mutate_document(protocol, rng, mutations, numeric=run_sized)
        what.append(f"protocol x{mutations}")
    else:
        text_damage = "model" if model is not None and rng.random() < 0.5 else "protocol"
        what.append(f"{text_damage} text damaged")
    model_path = directory / "models" / (Path(model_ref).name if isinstance(model_ref, str)
                                         else "model.yaml")
    protocol_path = directory / "protocols" / name
    try:
        model_text = _yaml_text(model) if model is not None else None
        protocol_text = _yaml_text(protocol)
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):
        model_text = (PROTOCOLS / model_ref).read_text() if model is not None else None
        protocol_text = (PROTOCOLS / name).read_text()
    if model_text is not None:
        model_path.write_bytes(mutate_text(model_text, rng) if text_damage == "model"
                               else model_text.encode())
    protocol_path.write_bytes(mutate_text(protocol_text, rng) if text_damage == "protocol"
                              else protocol_text.encode())
    return ProtocolCase(protocol_path, f"{name} seed {seed}: {', '.join(what)}")


def files_under(directory: Path) -> set[Path]:
    return {path.relative_to(directory) for path in directory.rglob("*")}


def check_validate(directory: Path, seed: int) -> tuple[list[str], int | None]:
    """Validate one mutated protocol: status 0 or 2, no traceback, one error line."""
    case = make_protocol_case(directory, seed)
    outcome = call_cli(["validate", str(case.protocol)])
    return [f"{case.description}: {p}" for p in basic_problems(outcome, (0, 2))], outcome.code


def check_run(directory: Path, seed: int) -> tuple[list[str], int | None]:
    """Validate, then run, one mutated short protocol, checking everything issue 11 asks."""
    case = make_protocol_case(directory / "input", seed, RUN_PROTOCOLS, run_sized=True)
    before = files_under(directory)
    validated = call_cli(["validate", str(case.protocol)])
    problems = basic_problems(validated, (0, 2))
    out = directory / "out"
    outcome = call_cli(["run", str(case.protocol), "--out", str(out), "--no-progress",
                        "--no-figures"])
    problems += basic_problems(outcome, (0, 2, 3))
    if validated.code == 0 and outcome.code == 2:
        problems.append(f"validate accepted what run refuses: {outcome.stderr.strip()[-300:]}")
    if validated.code == 2 and outcome.code not in (2, None):
        problems.append(f"validate refused what run accepted (exit {outcome.code})")
    written = {path for path in files_under(directory) - before
               if path.parts[0] != "out"}
    if written:
        problems.append(f"wrote outside --out: {sorted(map(str, written))[:3]}")
    final = out / "results.h5"
    if outcome.code == 0:
        problems += complete_results_problems(final)
    elif final.exists():
        problems.append(f"exit {outcome.code} but a results.h5 was written")
    return [f"{case.description}: {p}" for p in problems], outcome.code


def complete_results_problems(path: Path) -> list[str]:
    """A complete run's results: marked complete, contract held, finite final figures."""
    from plasticsim.errors import DataError
    from plasticsim.io.results import check_contract, must_be_finite

    if not path.exists():
        return ["exit 0 without results.h5"]
    try:
        check_contract(path)
    except DataError as error:
        return [f"exit 0 with a results file that breaks the contract: {error}"]
    with h5py.File(path, "r") as file:
        if not bool(file.attrs.get("complete")):
            return ["exit 0 with complete = false"]
    summary = json.loads((path.parent / "summary.json").read_text())
    bad = [key for key, value in summary.items() if isinstance(value, float)
           and must_be_finite(key) and not math.isfinite(value)]
    return [f"complete run with non-finite {bad}"] if bad else []


# ----------------------------------------------------------------------- results files
def make_base_results(directory: Path) -> dict[str, Path]:
    """Two short complete runs to damage: a Linsker ring and a small image-driven network."""
    import plasticsim

    bases = {}
    for name, overrides in (
            ("linsker1992_1d.yaml", ["schedule.samples=400", "schedule.warmup_samples=0",
                                     "record.every=200"]),
            ("olshausen_field_image_patches.yaml",
             ["schedule.samples=400", "record.every=200", "model.populations.coefficients.size=6",
              "stimuli.input.patch_size=6", "model.populations.input.size=36",
              "stimuli.input.covariance_samples=200"])):
        out = directory / name.replace(".yaml", "")
        plasticsim.run(PROTOCOLS / name, out, overrides=overrides, overwrite=True,
                       progress=False, figures=False)
        bases[name] = out / "results.h5"
    return bases


def _all_entries(file) -> list[str]:
    names = []
    file.visit(names.append)
    return names


def damage_results(base: Path, target: Path, seed: int) -> str:
    """Copy ``base`` to ``target`` and damage it one of several ways; describe how."""
    rng = random.Random(seed)
    raw = base.read_bytes()
    choice = rng.randrange(11)
    if choice == 0:
        target.write_bytes(raw[:rng.randrange(len(raw))])
        return "truncated"
    if choice == 1:
        data = bytearray(raw)
        for _ in range(rng.randint(1, 64)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        target.write_bytes(bytes(data))
        return "bits flipped"
    if choice == 2:
        target.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(0, 4096))))
        return "random bytes"
    target.write_bytes(raw)
    with h5py.File(target, "a") as file:
        entries = _all_entries(file)
        entry = rng.choice(entries)
        if choice == 3:
            del file[entry]
            return f"deleted /{entry}"
        if choice == 4:
            file.attrs["complete"] = rng.choice([False, True, "yes", 2, np.nan])
            return f"complete = {file.attrs['complete']!r}"
        if choice == 5:
            key = rng.choice(list(file.attrs))
            del file.attrs[key]
            return f"deleted attribute {key}"
        if choice == 6:
            del file["spec"]
            text = file_spec = yaml.safe_dump(mutate_document(
                yaml.safe_load(raw_spec(base)), rng, rng.randint(1, 3)), sort_keys=False)
            if rng.random() < 0.3:
                file_spec = mutate_text(text, rng).decode("utf-8", "replace")
            file.create_dataset("spec", data=file_spec, dtype=h5py.string_dtype())
            return "mutated /spec"
        item = file[entry]
        if not isinstance(item, h5py.Dataset):
            del file[entry]
            file[entry] = rng.choice([np.zeros(3), "text", np.int64(7)])
            return f"group /{entry} replaced by a dataset"
        if choice == 7 and item.dtype.kind == "f" and item.size:
            values = item[()]
            values.flat[rng.randrange(values.size)] = rng.choice([np.nan, np.inf, 1e308])
            item[...] = values
            return f"non-finite value in /{entry}"
        if choice == 8:
            del file[entry]
            file[entry] = np.zeros(rng.choice([(0,), (1,), (2, 3), (5, 5, 5)]))
            return f"/{entry} reshaped"
        if choice == 9:
            del file[entry]
            file[entry] = rng.choice(["text", np.array([b"a", b"b"]), np.arange(3) > 1])
            return f"/{entry} retyped"
        file.attrs[rng.choice(list(file.attrs))] = rng.choice(
            [np.nan, "", -1, 2**63, np.zeros(3)])
        return "attribute value replaced"


def raw_spec(path: Path) -> str:
    with h5py.File(path, "r") as file:
        value = file["spec"][()]
    return value.decode() if isinstance(value, bytes) else value


def check_results(directory: Path, bases: dict[str, Path], seed: int,
                  command: str) -> tuple[list[str], int | None]:
    """``report`` or ``compare`` on one damaged results file: status 0 or 2, one line, and
    exit 0 only for a file that still holds its contract."""
    from plasticsim.errors import DataError
    from plasticsim.io.results import check_contract

    rng = random.Random(seed)
    base = bases[rng.choice(sorted(bases))]
    target = directory / "damaged" / "results.h5"
    target.parent.mkdir(parents=True, exist_ok=True)
    how = damage_results(base, target, seed)
    before = files_under(directory)
    out = directory / "out"
    arguments = (["report", str(target), "--figures", str(out)] if command == "report" else
                 ["compare", str(target), "--out", str(out)])
    outcome = call_cli(arguments)
    problems = basic_problems(outcome, (0, 2))
    written = {path for path in files_under(directory) - before if path.parts[0] != "out"}
    if written:
        problems.append(f"wrote outside --out: {sorted(map(str, written))[:3]}")
    if outcome.code == 0:
        try:
            check_contract(target)
        except DataError as error:
            problems.append(f"exit 0 on a file that breaks the contract: {error}")
        if command == "compare":
            with h5py.File(target, "r") as file:
                if not bool(file.attrs.get("complete")):
                    problems.append("compare accepted an incomplete run")
    return [f"{base.parent.name} seed {seed} ({how}): {p}" for p in problems], outcome.code


if __name__ == "__main__":   # replay one case: python tests/fuzzing.py validate|run SEED
    import tempfile

    kind, case_seed = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory() as temporary:
        checker = {"validate": check_validate, "run": check_run}[kind]
        found, code = checker(Path(temporary), case_seed)
        print(f"exit {code}", *found, sep="\n")

"""Fuzzing the command line with mutated protocols, models and results files (issue 11).

The default suite runs a bounded sample of each kind; ``pytest -m slow tests/test_fuzz.py``
runs the large one (≥ 1,000 validations, ≥ 100 runs, ≥ 100 damaged results files through
``report`` and through ``compare``) and prints the counts. Every case is reproducible from
its seed (``python tests/fuzzing.py validate SEED``).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time

import pytest

import fuzzing
from conftest import PROTOCOLS


def _campaign(tmp_path, kind: str, seeds, bases=None):
    """Run the cases of ``seeds``; return (problems, exit-status counts)."""
    problems, codes = [], collections.Counter()
    for seed in seeds:
        directory = tmp_path / f"{kind}_{seed}"
        directory.mkdir()
        if kind == "validate":
            found, code = fuzzing.check_validate(directory, seed)
        elif kind == "run":
            found, code = fuzzing.check_run(directory, seed)
        else:
            found, code = fuzzing.check_results(directory, bases, seed, kind)
        problems += found
        codes[code] += 1
    return problems, codes


@pytest.fixture(scope="module")
def damaged_bases(tmp_path_factory):
    return fuzzing.make_base_results(tmp_path_factory.mktemp("fuzz_bases"))


def test_fuzz_validate(tmp_path):
    problems, codes = _campaign(tmp_path, "validate", range(150))
    assert not problems, "\n".join(problems[:10])
    # The mutations reach both outcomes: refusals and (rarer) still-valid protocols.
    assert codes[2] > 50 and codes[0] > 0, codes


def test_fuzz_run(tmp_path):
    problems, codes = _campaign(tmp_path, "run", range(12))
    assert not problems, "\n".join(problems[:10])
    assert codes[0] > 0 and codes[2] > 0, codes


@pytest.mark.parametrize("command", ["report", "compare"])
def test_fuzz_damaged_results(tmp_path, damaged_bases, command):
    problems, codes = _campaign(tmp_path, command, range(5), damaged_bases)
    assert not problems, "\n".join(problems[:10])
    assert codes[2] > 0, codes


def test_fuzz_fifo_model_does_not_hang(tmp_path):
    """A model path that is a FIFO with no writer: refused at once, in a fresh process."""
    (tmp_path / "protocols").mkdir()
    os.mkfifo(tmp_path / "model.yaml")
    protocol = tmp_path / "protocols" / "p.yaml"
    protocol.write_text((PROTOCOLS / "linsker1992_1d.yaml").read_text().replace(
        "../models/linsker_ring.yaml", "../model.yaml"))
    completed = subprocess.run([sys.executable, "-m", "plasticsim.cli", "validate",
                                str(protocol)], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "FIFO" in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def test_interrupt_is_one_line_and_130(tmp_path):
    """SIGINT during a run: exit 130, one line, the partial file kept as incomplete."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "plasticsim.cli", "run", str(PROTOCOLS / "linsker1992_1d.yaml"),
         "--out", str(out), "--no-progress", "--no-figures", "--set", "schedule.samples=50000000",
         "--set", "record.every=10000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):   # wait until training has started (the partial file exists)
        if (out / "results.h5.partial").exists():
            break
        time.sleep(0.1)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines() == ["plasticsim: interrupted"] or (
        stderr.strip().splitlines()[-1] == "plasticsim: interrupted"
        and all(line.startswith("plasticsim: ") for line in stderr.strip().splitlines()))
    assert (out / "results.incomplete.h5").exists() and not (out / "results.h5").exists()


@pytest.mark.slow
def test_fuzz_large(tmp_path, damaged_bases, capsys):
    """The large run of issue 11: report the counts (pytest -m slow -s shows them)."""
    counts = {}
    problems = []
    for kind, seeds in (("validate", range(10_000, 11_200)), ("run", range(20_000, 20_150)),
                        ("report", range(30_000, 30_120)), ("compare", range(40_000, 40_120))):
        found, codes = _campaign(tmp_path, kind, seeds, damaged_bases)
        problems += found
        counts[kind] = dict(codes)
    with capsys.disabled():
        print(f"\nfuzz counts (exit status: cases): {counts}; problems: {len(problems)}")
    assert not problems, "\n".join(problems[:20])
    assert sum(counts["validate"].values()) >= 1000 and sum(counts["run"].values()) >= 100
    assert sum(counts["report"].values()) >= 100 and sum(counts["compare"].values()) >= 100

"""Provenance (plasticsim.io.provenance): versions, host, command line, the protocol's git
commit and the backend that ran, as the results file and summary.json record them."""

from __future__ import annotations

import json
import shlex
import shutil
import socket
import subprocess
import sys

import h5py
import numpy as np
import pydantic
import pytest
import yaml

from conftest import PROTOCOLS
import plasticsim
from plasticsim.cli import main
from plasticsim.io import provenance

TINY = ["schedule.samples=2000", "schedule.warmup_samples=1000", "record.every=1000"]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(directory, *arguments) -> str:
    return subprocess.run(["git", "-C", str(directory), *arguments], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repository(tmp_path):
    """A git repository holding the 1-D reference protocol (backend auto) and its model."""
    root = tmp_path / "lab"
    (root / "protocols").mkdir(parents=True)
    shutil.copytree(PROTOCOLS.parent / "models", root / "models")
    text = (PROTOCOLS / "linsker1992_1d.yaml").read_text()
    (root / "protocols" / "ring.yaml").write_text(text.replace("backend: numpy",
                                                               "backend: auto"))
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=Lab", "-c", "user.email=lab@example.org", "commit", "-q",
         "-m", "protocols")
    return root


def test_versions_are_those_installed_and_nothing_is_imported():
    before = set(sys.modules)
    attributes = provenance.environment()
    loaded = {name.split(".")[0] for name in set(sys.modules) - before}
    assert not loaded & {"torch", "brian2", "numba", "scipy", "dask"}, loaded
    assert attributes["numpy_version"] == np.__version__
    assert attributes["h5py_version"] == h5py.__version__
    assert attributes["pydantic_version"] == pydantic.VERSION
    assert attributes["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert attributes["host"] == socket.gethostname()


def test_absent_package_is_left_out(monkeypatch):
    monkeypatch.setitem(provenance.PACKAGES, "nothing", "no-such-distribution-plasticsim")
    assert "nothing" not in provenance.package_versions()
    assert "numpy" in provenance.package_versions()


@needs_git
def test_git_state_of_a_repository_and_outside_one(repository, tmp_path, monkeypatch):
    head = _git(repository, "rev-parse", "HEAD")
    assert provenance.git_state(repository / "protocols") == {"git_commit": head,
                                                              "git_dirty": False}
    (repository / "protocols" / "notes.txt").write_text("not committed\n")
    assert provenance.git_state(repository / "protocols") == {"git_commit": head,
                                                              "git_dirty": True}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert provenance.git_state(outside) == {}
    monkeypatch.setenv("PATH", str(outside))  # no git at all
    assert provenance.git_state(repository) == {}


@needs_git
def test_run_records_commit_command_line_and_the_backend_that_ran(repository, tmp_path):
    pytest.importorskip("numba")
    protocol = repository / "protocols" / "ring.yaml"
    out = tmp_path / "run"
    argv = ["run", str(protocol), "--out", str(out), "--no-progress", "--no-figures",
            *[x for override in TINY for x in ("--set", override)]]
    assert main(argv) == 0
    with h5py.File(out / "results.h5", "r") as file:
        attributes = dict(file.attrs)
        stored = yaml.safe_load(file["spec"][()].decode())
    assert attributes["git_commit"] == _git(repository, "rev-parse", "HEAD")
    assert not attributes["git_dirty"]
    assert attributes["protocol_path"] == str(protocol.resolve())
    assert attributes["command_line"] == shlex.join(["plasticsim", *argv])
    assert "python_call" not in attributes
    # auto resolved to numba: the attribute and the stored protocol say so.
    assert attributes["backend"] == "numba" and attributes["backend_requested"] == "auto"
    assert stored["backend"] == "numba"
    assert attributes["numpy_version"] == np.__version__
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["git_commit"] == attributes["git_commit"]
    assert summary["provenance"]["backend"] == "numba"
    assert summary["provenance"]["host"] == socket.gethostname()


def test_python_call_is_recorded_and_a_spec_has_no_commit(tmp_path):
    spec = plasticsim.load_protocol(PROTOCOLS / "linsker1992_1d.yaml", TINY)
    results = plasticsim.run(spec, tmp_path / "run", seed=4, progress=False, figures=False)
    attributes = results.attributes
    assert attributes["python_call"] == (f"plasticsim.run(<ProtocolSpec linsker1992_1d>, "
                                         f"{str(tmp_path / 'run')!r}, seed=4)")
    assert attributes["command_line"] == shlex.join(sys.argv)
    assert "git_commit" not in attributes and "protocol_path" not in attributes
    assert attributes["backend"] == attributes["backend_requested"] == "numpy"

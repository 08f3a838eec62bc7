"""Provenance of a run: which software ran it where, who asked for it and how, and the commit
of the protocol file's repository. Stored as root attributes of the results file and, in
short, under ``provenance`` in ``summary.json``.

Two parts with different lifetimes:

- :func:`environment` describes the process that runs the simulation (package versions,
  Python, platform, host). Versions come from the installed distributions' metadata, so that
  recording them imports nothing (torch or brian2 are not loaded by a numpy run).
- :func:`invocation` describes the request: the command line, the Python call, the protocol
  file and its repository's git commit. A command that starts runs elsewhere (the command
  line, a sweep whose members run on Dask workers) states its own request with
  :func:`invoked_by`, which the runs it starts record instead of their worker's.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.metadata
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

#: Distributions whose versions a results file records where installed (name in the file,
#: distribution name).
PACKAGES = {"numpy": "numpy", "scipy": "scipy", "numba": "numba", "brian2": "brian2",
            "torch": "torch", "h5py": "h5py", "pydantic": "pydantic", "dask": "dask",
            "array_api_compat": "array-api-compat"}
#: Seconds one git command may take (a network file system, a huge repository).
GIT_TIMEOUT_SECONDS = 5.0
#: Root attributes that describe how a run was asked for: they differ between two runs of the
#: same protocol with equal results (another command line, a copy of the protocol file in
#: another place or repository).
INVOCATION_ATTRIBUTES = ("command_line", "python_call", "protocol_path", "git_commit",
                         "git_dirty")
#: What ``summary.json`` repeats under ``provenance``.
SUMMARY_KEYS = ("plasticsim_version", "backend", "backend_requested", "python_version",
                "host", "git_commit", "git_dirty", "protocol_path", "command_line")

_OUTER: contextvars.ContextVar[dict | None] = contextvars.ContextVar("plasticsim_invocation",
                                                                     default=None)


def package_versions() -> dict[str, str]:
    """``{name: version}`` of the installed :data:`PACKAGES` (absent ones are left out)."""
    versions = {}
    for name, distribution in PACKAGES.items():
        try:
            versions[name] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def environment() -> dict:
    """Root attributes of the process that runs: ``<package>_version`` of each installed
    package, ``python_version``, ``platform`` and ``host``."""
    return dict(_process_environment())


@functools.cache
def _process_environment() -> dict:
    # Gathered once per process (about 5 ms: metadata look-ups, platform probes), not once per
    # member: an ensemble of a thousand networks would otherwise spend seconds on it.
    attributes = {f"{name}_version": version for name, version in package_versions().items()}
    attributes.update({"python_version": platform.python_version(),
                       "python_implementation": platform.python_implementation(),
                       "platform": platform.platform(), "host": socket.gethostname()})
    return attributes


def git_state(directory: str | Path) -> dict:
    """``git_commit`` (HEAD) and ``git_dirty`` (``git status --porcelain`` lists anything) of
    the repository holding ``directory``; empty where git is missing, slow or ``directory``
    is not in a repository."""
    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(directory), *arguments],
                                  capture_output=True, text=True,
                                  timeout=GIT_TIMEOUT_SECONDS)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit or not commit.strip():
        return {}
    state = {"git_commit": commit.strip()}
    status = git("status", "--porcelain")
    if status is not None:
        state["git_dirty"] = bool(status.strip())
    return state


def invocation(protocol_path: str | Path | None = None, python_call: str | None = None
               ) -> dict:
    """Root attributes of the request: ``command_line`` (this process's ``sys.argv``, or the
    command an outer :func:`invoked_by` states), ``python_call``, ``protocol_path`` and the
    :func:`git_state` of the protocol file's repository."""
    outer = _OUTER.get()
    attributes = {"command_line": shlex.join(sys.argv)}
    if outer is None and python_call is not None:
        attributes["python_call"] = python_call
    if protocol_path is not None:
        path = Path(protocol_path).resolve()
        attributes["protocol_path"] = str(path)
        attributes.update(git_state(path.parent))
    attributes.update(outer or {})
    return attributes


@contextlib.contextmanager
def invoked_by(attributes: dict):
    """Runs started inside record ``attributes`` (e.g. ``{"command_line": "plasticsim run
    …"}``, or a sweep's whole :func:`invocation`) as their request."""
    token = _OUTER.set({**(_OUTER.get() or {}), **attributes})
    try:
        yield
    finally:
        _OUTER.reset(token)


def python_call(function: str, *arguments, **keywords) -> str:
    """``plasticsim.run('p.yaml', 'out', seed=3)``: a call as it would be typed (keywords
    left at None are left out)."""
    shown = [_shown(argument) for argument in arguments]
    shown += [f"{key}={_shown(value)}" for key, value in keywords.items() if value is not None]
    return f"plasticsim.{function}({', '.join(shown)})"


def _shown(value) -> str:
    if isinstance(value, Path):
        return repr(str(value))
    if type(value).__name__ == "ProtocolSpec":
        return f"<ProtocolSpec {value.name}>"
    return repr(value)


def summary_block(attributes: dict) -> dict:
    """The part of a results file's root attributes that ``summary.json`` repeats."""
    return {key: _plain(attributes[key]) for key in SUMMARY_KEYS if key in attributes}


def _plain(value):
    return value.item() if hasattr(value, "item") else value

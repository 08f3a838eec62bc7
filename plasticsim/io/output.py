"""Output directories: a run replaces an earlier one only when it is complete.

A run into a fresh directory writes there directly (``results.h5.partial`` → ``results.h5``).
A run into a directory that already holds a run (``--overwrite``) writes into the staging
directory ``OUT/.plasticsim-staging/`` instead and, once everything is written, *commits*:
each new file is moved over its old counterpart with one ``os.replace`` (atomic: a reader
sees the old file or the new one, never none), the results files last, and only then are the
earlier run's leftover files that plasticsim wrote removed. Before moving anything the commit
writes a journal (``OUT/.plasticsim-commit.json``); a commit cut short is finished by the
next ``run``, ``resume`` or ``sweep`` on the directory (:func:`recover`). A kill before the
commit leaves the earlier run as it was (and the staged run resumable from its checkpoint).

Only files plasticsim writes are ever removed: the names in :data:`RUN_FILES`, at the top of
the directory and in ``members/<k>/``, and in ``figures/`` the files listed in its manifest
(:data:`FIGURES_MANIFEST`, written with the figures).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .recording import FAILED_NAME, FINAL_NAME, PARTIAL_NAME

STAGING_NAME = ".plasticsim-staging"
JOURNAL_NAME = ".plasticsim-commit.json"
#: Written into ``figures/`` with the figures: the names of the files plasticsim made there.
FIGURES_MANIFEST = ".plasticsim-figures"
FIGURES_DIRECTORY = "figures"
CHECKPOINT_NAME = "checkpoint.npz"
INDEX_NAME = "ensemble.json"
MEMBERS_DIRECTORY = "members"
#: Files of one run directory that plasticsim writes.
RUN_FILES = (FINAL_NAME, PARTIAL_NAME, FAILED_NAME, "summary.json", CHECKPOINT_NAME)
#: Entries whose presence means a directory holds a run.
RUN_ENTRIES = RUN_FILES + (FIGURES_DIRECTORY, INDEX_NAME, MEMBERS_DIRECTORY)


def existing_run(out: Path) -> list[str]:
    """The entries of a run that ``out`` holds (empty: nothing of plasticsim's there)."""
    return [name for name in RUN_ENTRIES if (out / name).exists()]


def prepare(out: Path, overwrite: bool) -> Path:
    """The directory a new run writes into: ``out`` itself if it holds no run, else (with
    ``overwrite``) a fresh staging directory inside it.

    Raises
    ------
    OutputExistsError
        ``out`` holds a run and ``overwrite`` is false.
    """
    from ..errors import OutputExistsError

    out = Path(out)
    recover(out)
    existing = existing_run(out)
    if existing and not overwrite:
        hint = " or `plasticsim resume` it" if CHECKPOINT_NAME in existing else ""
        raise OutputExistsError(f"{out} already holds a run ({', '.join(existing)}); "
                                f"choose another --out or pass --overwrite{hint}")
    out.mkdir(parents=True, exist_ok=True)
    staging = out / STAGING_NAME
    if staging.exists():  # an earlier staged run that never committed: plasticsim's own
        shutil.rmtree(staging)
    if not existing:
        return out
    staging.mkdir()
    return staging


def plasticsim_files(directory: Path) -> list[str]:
    """Relative paths of the files plasticsim wrote in a run directory (and its members)."""
    found = []
    for name in RUN_FILES + (INDEX_NAME,):
        if (directory / name).is_file():
            found.append(name)
    manifest = directory / FIGURES_DIRECTORY / FIGURES_MANIFEST
    if manifest.is_file():
        for name in manifest.read_text().split("\n"):
            if name and (directory / FIGURES_DIRECTORY / name).is_file():
                found.append(f"{FIGURES_DIRECTORY}/{name}")
        found.append(f"{FIGURES_DIRECTORY}/{FIGURES_MANIFEST}")
    members = directory / MEMBERS_DIRECTORY
    if members.is_dir():
        for member in sorted(members.iterdir()):
            if member.is_dir() and member.name.isdigit():
                found += [f"{MEMBERS_DIRECTORY}/{member.name}/{path}"
                          for path in plasticsim_files(member)]
    return found


def write_figures_manifest(directory: Path, paths: list) -> None:
    """Record which files of ``directory`` (a ``figures/`` folder) plasticsim wrote."""
    names = sorted({Path(path).name for path in paths})
    (Path(directory) / FIGURES_MANIFEST).write_text("\n".join(names) + "\n")


def commit(staging: Path, out: Path) -> None:
    """Move a complete staged run from ``staging`` into ``out`` (see the module docstring)."""
    staging, out = Path(staging), Path(out)
    if staging == out:
        return
    new = sorted(str(path.relative_to(staging)) for path in staging.rglob("*")
                 if path.is_file() and path.name != CHECKPOINT_NAME)
    # The results files last: until the first of them moves, ``out`` reads as the old run.
    new.sort(key=lambda name: (Path(name).name == FINAL_NAME, name))
    old = plasticsim_files(out)
    journal = {"staging": STAGING_NAME, "new": new,
               "remove": sorted(set(old) - set(new))}
    _write_atomically(out / JOURNAL_NAME, json.dumps(journal, indent=1))
    _roll_forward(out, journal)


def recover(out: Path) -> None:
    """Finish a commit that was cut short (a journal is left), if there is one."""
    out = Path(out)
    journal_path = out / JOURNAL_NAME
    if not journal_path.is_file():
        return
    try:
        journal = json.loads(journal_path.read_text())
    except (OSError, ValueError):
        # The journal is written atomically, so an unreadable one was never written by us:
        # leave everything as it is.
        return
    _roll_forward(out, journal)


def _roll_forward(out: Path, journal: dict) -> None:
    staging = out / journal["staging"]
    for name in journal["new"]:
        source = staging / name
        if source.is_file():  # moved already where a cut-short commit got that far
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, out / name)
    for name in journal["remove"]:
        target = out / name
        if target.is_file():
            target.unlink()
        for parent in target.parents:  # figures/, members/<k>/, members/ when left empty
            if parent == out:
                break
            try:
                parent.rmdir()
            except OSError:
                break
    if staging.exists():
        shutil.rmtree(staging)
    (out / JOURNAL_NAME).unlink(missing_ok=True)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)

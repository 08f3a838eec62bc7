"""Ensembles as specs: an ``ensemble:`` block expands into member protocols.

A protocol asks for an ensemble with an ``ensemble:`` block::

    ensemble:
      size: 8                       # seeds seed … seed + 7 (or: seeds: [1, 5, 9])
      grid:                         # optional: every combination of these values
        stimuli.input.input_noise.variance: [0.01, 0.1, 1.0]

which :func:`expand_ensemble` turns into member protocols (the grid's combinations × the
seeds, grid keys as for ``--set``). Each member is an ordinary network with its own state and
random streams; members whose plans have the same structure run as one stack along the plan's
member axis, so a member's results equal a single run of its member protocol.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from .protocol import ProtocolSpec


@dataclass(frozen=True)
class EnsembleMember:
    """One member of an ensemble: its index, label, seed, grid values and protocol."""

    index: int
    label: str
    seed: int
    values: dict[str, Any]
    spec: ProtocolSpec


def expand_ensemble(spec: ProtocolSpec) -> list[EnsembleMember]:
    """The member protocols of ``spec.ensemble`` (grid combinations × seeds, in that order).

    A protocol without an ensemble block is an ensemble of one.

    Raises
    ------
    SpecError
        If a grid key or value makes an invalid protocol (the message names the key).

    Examples
    --------
    >>> from plasticsim.spec import load_protocol
    >>> spec = load_protocol("protocols/linsker1992_1d.yaml",
    ...                      ["ensemble={size: 2, grid: {model.constraints.0.value: [1, 2]}}"])
    >>> [m.label for m in expand_ensemble(spec)]  # doctest: +SKIP
    ['model.constraints.0.value=1,seed=1', 'model.constraints.0.value=1,seed=2', ...]
    """
    from .loading import protocol_from_document

    ensemble = spec.ensemble
    if ensemble is None:
        return [EnsembleMember(0, f"seed={spec.seed}", spec.seed, {}, spec)]
    if ensemble.seeds is not None:
        seeds = list(ensemble.seeds)
    else:
        seeds = [spec.seed + offset for offset in range(ensemble.size or 1)]
    keys = list(ensemble.grid)
    base = spec.model_dump(mode="json")
    base["ensemble"] = None
    members = []
    for combination in itertools.product(*(ensemble.grid[key] for key in keys)):
        values = dict(zip(keys, combination))
        for seed in seeds:
            document = json.loads(json.dumps(base))  # a deep copy
            for key, value in values.items():
                _set_dotted(document, key, value)
            document["seed"] = seed
            try:
                member_spec = protocol_from_document(document, source="ensemble.grid")
            except SpecError as error:
                raise SpecError(f"member with {values or 'the base values'}: {error.message}",
                                file=error.file, line=error.line,
                                key_path=error.key_path) from None
            label = ",".join([f"{key}={value}" for key, value in values.items()]
                             + [f"seed={seed}"])
            members.append(EnsembleMember(len(members), label, seed, values, member_spec))
    return members


def _set_dotted(document: dict, key: str, value) -> None:
    """Set ``document[a][b]…`` for the dotted ``key`` (list items by index), as ``--set`` does.

    The value keeps its YAML type (``--set`` would parse text; here it is already parsed).
    """
    parts = key.split(".")
    target = document
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            if last:
                target[int(part)] = value
            else:
                target = target[int(part)]
        elif isinstance(target, dict):
            if last:
                target[part] = value
            else:
                target = target.setdefault(part, {})
        else:
            raise SpecError(f"cannot set {key}: {'.'.join(parts[:depth])} is not a mapping",
                            key_path=f"ensemble.grid.{key}")



"""Load YAML protocols and models into validated specs, with errors that name file and line.

A protocol's ``model`` is either a mapping (inline model) or a path relative to the protocol
file. Command-line overrides (``--set dotted.key=value``) are applied to the merged document
before validation, so ``--set model.populations.output.size=32`` works for referenced models
too. The resolved document, not the original files, is what gets stored with the results.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import SpecError
from .model import (MOVED_KEYS, MOVED_PROJECTION_KEYS, RENAMED_POPULATION_KINDS, ModelSpec)
from .protocol import ProtocolSpec

Location = tuple[str, int | None]  # (file, 1-based line)


def _read_yaml(path: Path) -> tuple[Any, dict[tuple, Location]]:
    """Parse a YAML file; return the data and a map from key paths to (file, line)."""
    if not path.is_file():
        raise SpecError(f"file not found (expected a YAML file at {path})", file=str(path))
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError(f"YAML syntax error: {error.problem or error}", file=str(path),
                        line=line) from None
    lines: dict[tuple, Location] = {}

    def walk(current, prefix):
        lines[prefix] = (str(path), current.start_mark.line + 1)
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                lines[prefix + (key_node.value,)] = (str(path), key_node.start_mark.line + 1)
                walk_child = prefix + (key_node.value,)
                walk(value_node, walk_child)
                lines[walk_child] = (str(path), key_node.start_mark.line + 1)
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                walk(item, prefix + (str(index),))

    if node is not None:
        walk(node, ())
    return data, lines


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise SpecError(f"override {text!r} is not of the form dotted.key=value", file="--set")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise SpecError(f"override {text!r} has an empty key", file="--set")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return key.split("."), parsed


def apply_overrides(document: dict, overrides: list[str], lines: dict) -> dict:
    """Set ``dotted.key=value`` entries (values parsed as YAML) in a nested dict, in place."""
    for text in overrides or []:
        keys, value = _parse_override(text)
        target = document
        for depth, key in enumerate(keys[:-1]):
            if isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
                continue
            if not isinstance(target, dict):
                raise SpecError(f"cannot set {'.'.join(keys)}: {'.'.join(keys[:depth])} "
                                f"is not a mapping", file="--set", key_path=".".join(keys))
            if key == "rule" and isinstance(target.get(key), str):
                # ``rule: name`` is short for ``rule: {kind: name}``; expand it to set a key.
                target[key] = {"kind": target[key]}
            target = target.setdefault(key, {})
        last = keys[-1]
        if isinstance(target, list) and last.isdigit() and int(last) < len(target):
            target[int(last)] = value
        elif isinstance(target, dict):
            target[last] = value
        else:
            raise SpecError(f"cannot set {'.'.join(keys)}: parent is not a mapping",
                            file="--set", key_path=".".join(keys))
        lines[tuple(keys)] = (f"--set {text}", None)
    return document


def _valid_keys(model: type, loc: tuple) -> list[str]:
    """Field names valid at ``loc`` (a pydantic error location, union tags included) below
    ``model``."""
    annotation: Any = model
    for part in loc:
        annotation = _strip(annotation)
        members = _union_members(annotation)
        if members:
            chosen = _member_for_tag(members, part)
            if chosen is not None:      # this part of the location is a union tag
                annotation = chosen
                continue
            annotation = members[0] if len(members) == 1 else None
            if annotation is None:
                return []
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if part not in annotation.model_fields:
                return []
            annotation = annotation.model_fields[part].annotation
            continue
        origin = typing.get_origin(annotation)
        if origin in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _strip(annotation)
    members = _union_members(annotation)
    if len(members) == 1:
        annotation = members[0]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _strip(annotation):
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation) -> list:
    """The spec classes of a union (Optional and tags stripped); [] if not a union."""
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return [_strip(m) for m in typing.get_args(annotation) if m is not type(None)
                and isinstance(_strip(m), type) and issubclass(_strip(m), BaseModel)]
    return []


def _member_for_tag(members: list, tag: str):
    for member in members:
        field = member.model_fields.get("kind")
        if field is not None and tag in typing.get_args(field.annotation):
            return member
    return None


def _format_validation_error(error: ValidationError, lines: dict, default_file: str,
                             root: type) -> SpecError:
    """The first problem of a pydantic error, as a SpecError with file, line and key path."""
    # An unknown key usually explains a "missing" one next to it (a typo): report it first.
    problems = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = problems[0]
    loc = tuple(str(part) for part in first["loc"])
    # Drop discriminator tags (e.g. 'gaussian_ring') that pydantic inserts into the path.
    key_path = tuple(part for part in loc if not _is_tag(part)) or loc
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        valid = _valid_keys(root, tuple(str(p) for p in first["loc"][:-1]
                                        if not str(p).startswith("function-")))
        suggestion = difflib.get_close_matches(key_path[-1], valid, n=1, cutoff=0.5)
        message = f"unknown key {key_path[-1]!r}"
        if suggestion:
            message += f"; did you mean {suggestion[0]!r}?"
        elif valid:
            message += f"; valid keys here: {', '.join(valid)}"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] in ("union_tag_invalid", "union_tag_not_found"):
        expected = first.get("ctx", {}).get("expected_tags", "")
        tag = first.get("ctx", {}).get("tag")
        tags = [t.strip(" '") for t in str(expected).split(",") if t.strip()]
        if tag is None:
            message = f"required key 'kind' is missing; expected one of {', '.join(tags)}"
        else:
            message = f"unknown kind {tag!r}; expected one of {', '.join(tags)}"
            suggestion = difflib.get_close_matches(str(tag), tags, n=1, cutoff=0.5)
            if suggestion:
                message += f"; did you mean {suggestion[0]!r}?"
            key_path = key_path + ("kind",)
    elif first["type"] == "value_error":
        message = str(first.get("ctx", {}).get("error", message))
    elif "input" in first and not isinstance(first["input"], (dict, list)):
        message = f"{message} (got {first['input']!r})"
    file, line = default_file, None
    for length in range(len(key_path), -1, -1):
        if key_path[:length] in lines:
            file, line = lines[key_path[:length]]
            break
    return SpecError(message, file=file, line=line, key_path=".".join(key_path) or None)


def _is_tag(part: str) -> bool:
    """Union tags and validator names pydantic puts into error locations (not user keys)."""
    from ..model.registry import CONSTRAINTS, NEURONS, PROBES, RULES, STIMULI
    kinds = set()
    for registry in (CONSTRAINTS, NEURONS, PROBES, RULES, STIMULI):
        kinds.update(registry)
    return part in kinds or part.startswith("function-")


def check_moved_keys(document: dict, lines: dict, default_file: str) -> None:
    """Refuse keys of earlier versions with a message that says where they went."""
    def fail(key_path: tuple, message: str):
        file, line = lines.get(key_path, (default_file, None))
        raise SpecError(message, file=file, line=line, key_path=".".join(key_path))

    model = document.get("model")
    if not isinstance(model, dict):
        return
    for (first, second), message in MOVED_KEYS.items():
        if second in model:
            fail((first, second), message)
    for name, projection in (model.get("projections") or {}).items():
        if isinstance(projection, dict):
            for key, message in MOVED_PROJECTION_KEYS.items():
                if key in projection:
                    fail(("model", "projections", name, key), message.format(name=name))
            if "projection" in str(projection.get("constraints", "")) and isinstance(
                    projection.get("constraints"), list):
                for index, item in enumerate(projection["constraints"]):
                    if isinstance(item, dict) and "projection" in item:
                        fail(("model", "projections", name, "constraints", str(index),
                              "projection"), "a constraint under a projection applies to that "
                             "projection: remove the 'projection' key")
    for name, population in (model.get("populations") or {}).items():
        if isinstance(population, dict) and population.get("kind") in RENAMED_POPULATION_KINDS:
            old = population["kind"]
            fail(("model", "populations", name, "kind"),
                 f"population kind {old!r} is now {RENAMED_POPULATION_KINDS[old]!r}, with its "
                 "neuron parameters on the population (see the README's model section)")


def locate(error: SpecError, lines: dict | None, default_file: str | None = None
           ) -> SpecError:
    """The error with the file and line of its key path filled in (for errors raised after
    validation, e.g. by the builder, which know the key path only)."""
    if error.file is not None or not lines:
        if error.file is None and default_file:
            return SpecError(error.message, file=default_file, line=error.line,
                             key_path=error.key_path)
        return error
    file, line = default_file, None
    parts = tuple((error.key_path or "").split(".")) if error.key_path else ()
    for length in range(len(parts), -1, -1):
        if parts[:length] in lines:
            file, line = lines[parts[:length]]
            break
    return SpecError(error.message, file=file, line=line, key_path=error.key_path)


def load_model(path: str | Path) -> ModelSpec:
    """Load and validate a model YAML file."""
    path = Path(path)
    data, lines = _read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError("a model file must be a mapping of keys", file=str(path), line=1)
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as error:
        raise _format_validation_error(error, lines, str(path), ModelSpec) from None


def resolve_protocol_document(path: str | Path, overrides: list[str] | None = None
                              ) -> tuple[dict, dict]:
    """Read a protocol, inline its model file and apply overrides.

    Returns
    -------
    document : dict
        The merged document (ready for :class:`ProtocolSpec`).
    lines : dict
        Key path → (file, line) for error messages.
    """
    path = Path(path)
    data, lines = _read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError("a protocol file must be a mapping of keys", file=str(path), line=1)
    model_ref = data.get("model")
    if isinstance(model_ref, str):
        model_path = (path.parent / model_ref).resolve()
        if not model_path.is_file():
            file, line = lines.get(("model",), (str(path), None))
            raise SpecError(f"model file not found: {model_ref} (looked for {model_path})",
                            file=file, line=line, key_path="model")
        model_data, model_lines = _read_yaml(model_path)
        if not isinstance(model_data, dict):
            raise SpecError("a model file must be a mapping of keys", file=str(model_path),
                            line=1)
        data["model"] = model_data
        for key, location in model_lines.items():
            lines[("model",) + key] = location
    apply_overrides(data, overrides or [], lines)
    return data, lines


def load_protocol(path: str | Path, overrides: list[str] | None = None) -> ProtocolSpec:
    """Load a protocol YAML file (with its model) into a validated :class:`ProtocolSpec`.

    Parameters
    ----------
    path : str or Path
        Protocol file.
    overrides : list of str, optional
        ``"dotted.key=value"`` strings applied before validation.

    Raises
    ------
    SpecError
        With file, line and key path of the first problem.
    """
    document, lines = resolve_protocol_document(path, overrides)
    return protocol_from_document(document, lines, str(path))


def load_protocol_with_lines(path: str | Path, overrides: list[str] | None = None
                             ) -> tuple[ProtocolSpec, dict]:
    """:func:`load_protocol`, also returning the key-path → (file, line) map for later errors."""
    document, lines = resolve_protocol_document(path, overrides)
    return protocol_from_document(document, lines, str(path)), lines


def protocol_from_document(document: dict, lines: dict | None = None,
                           source: str = "<protocol>") -> ProtocolSpec:
    """Validate an already-parsed protocol document (e.g. one built in Python)."""
    if isinstance(document, dict):
        check_moved_keys(document, lines or {}, source)
    try:
        return ProtocolSpec.model_validate(document)
    except ValidationError as error:
        raise _format_validation_error(error, lines or {}, source, ProtocolSpec) from None


def spec_to_yaml(spec: ProtocolSpec) -> str:
    """The fully resolved protocol (model inlined, defaults filled) as YAML text."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)

"""Load YAML protocols and models into validated specs, with errors that name file and line.

A protocol's ``model`` is either a mapping (inline model) or a path relative to the protocol
file. Command-line overrides (``--set dotted.key=value``) are applied to the merged document
before validation, so ``--set model.populations.output.size=32`` works for referenced models
too. The resolved document, not the original files, is what gets stored with the results.
"""

from __future__ import annotations

import codecs
import difflib
import os
import stat
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import SpecError
from .model import (MOVED_KEYS, MOVED_PROJECTION_KEYS, RENAMED_POPULATION_KINDS, ModelSpec)
from .protocol import ProtocolSpec

Location = tuple[str, int | None]  # (file, 1-based line)


# ------------------------------------------------------------------ reading YAML safely
# Protocols and models are shared between labs, so the reader treats them as hostile: only
# regular files, bounded in bytes, decoded strictly, and parsed with the safe loader under a
# depth and alias-expansion budget (a 540-byte "billion laughs" file expands to gigabytes).
#: Largest protocol or model file read (bytes); shipped ones are a few kilobytes.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Deepest nesting of mappings and sequences, counted after alias expansion.
MAX_DEPTH = 100
#: Most YAML nodes a document may expand to through aliases.
MAX_NODES = 200_000
#: Most characters of scalars a document may expand to through aliases.
MAX_CHARACTERS = 16 * 1024 * 1024
#: Pseudo-file systems whose "files" are not documents (and may block or leak secrets).
REFUSED_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def read_text_file(path: Path, what: str = "a YAML file") -> str:
    """The UTF-8 text of a regular file, or a :class:`SpecError` that says why not.

    Refuses directories, FIFOs, devices and anything under /proc, /sys or /dev (without
    opening them, so a FIFO cannot block the reader), files over :data:`MAX_FILE_BYTES`, NUL
    bytes and bytes that are not UTF-8 (with the line of the first bad byte).
    """
    where = str(path)
    try:
        resolved = Path(os.path.realpath(path))
    except (OSError, ValueError) as error:
        raise SpecError(f"cannot resolve the path ({error}); expected {what}", file=where
                        ) from None
    if any(resolved == root or root in resolved.parents for root in REFUSED_ROOTS):
        raise SpecError(f"{resolved} is not a regular file on disk (paths under /proc, /sys and "
                        f"/dev are refused); expected {what}", file=where)
    try:
        info = os.stat(resolved)
    except FileNotFoundError:
        raise SpecError(f"file not found (expected {what} at {path})", file=where) from None
    except (OSError, ValueError) as error:
        raise SpecError(f"cannot read ({getattr(error, 'strerror', None) or error}); expected "
                        f"{what}", file=where) from None
    if not stat.S_ISREG(info.st_mode):
        kind = ("a directory" if stat.S_ISDIR(info.st_mode) else
                "a FIFO" if stat.S_ISFIFO(info.st_mode) else
                "a socket" if stat.S_ISSOCK(info.st_mode) else "a device or special file")
        raise SpecError(f"is {kind}, not a regular file; expected {what}", file=where)
    if info.st_size > MAX_FILE_BYTES:
        raise SpecError(f"is {info.st_size:,} bytes; at most {MAX_FILE_BYTES:,} bytes are read "
                        f"as {what}", file=where)
    try:
        # O_NONBLOCK: if the file was swapped for a FIFO since the stat, opening cannot block.
        descriptor = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SpecError(f"is not a regular file; expected {what}", file=where)
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SpecError(f"cannot read ({error.strerror or error}); expected {what}",
                        file=where) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(f"is over {MAX_FILE_BYTES:,} bytes; expected {what}", file=where)
    return decode_text(raw, where)


def decode_text(raw: bytes, where: str) -> str:
    """Strict UTF-8 (a leading byte-order mark allowed); NUL bytes refused, with their line."""
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    nul = raw.find(b"\0")
    if nul >= 0:
        raise SpecError(f"NUL byte at offset {nul}; expected UTF-8 text (is this a binary "
                        "file?)", file=where, line=raw.count(b"\n", 0, nul) + 1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"byte 0x{raw[error.start]:02x} at offset {error.start} is not UTF-8; "
                        "expected UTF-8 text", file=where,
                        line=raw.count(b"\n", 0, error.start) + 1) from None


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root, where: str) -> None:
    """Refuse recursive aliases and documents whose alias expansion exceeds the budget.

    An iterative depth-first walk over the composed node graph (aliases are shared nodes):
    each node's expanded size, character count and depth are computed once, so a bomb is
    measured without being expanded.
    """
    measured: dict[int, tuple[int, int, int]] = {}   # id → (nodes, characters, depth)
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            nodes, characters, depth = 1, 0, 1
            if isinstance(node, yaml.ScalarNode):
                characters = len(node.value)
            for child in _children(node):
                child_nodes, child_characters, child_depth = measured[id(child)]
                nodes += child_nodes
                characters += child_characters
                depth = max(depth, child_depth + 1)
            line = node.start_mark.line + 1
            if nodes > MAX_NODES or characters > MAX_CHARACTERS:
                raise SpecError(f"the document expands through aliases to more than "
                                f"{MAX_NODES:,} nodes or {MAX_CHARACTERS:,} characters (an "
                                f"alias bomb?); write the values out or use fewer aliases",
                                file=where, line=line)
            if depth > MAX_DEPTH:
                raise SpecError(f"nested deeper than {MAX_DEPTH} levels (aliases included)",
                                file=where, line=line)
            measured[key] = (nodes, characters, depth)
            continue
        if key in measured:
            continue
        if key in on_path:
            raise SpecError("recursive alias: a node contains itself (anchors may only be "
                            "used after their node is complete)", file=where,
                            line=node.start_mark.line + 1)
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise SpecError("recursive alias: a node contains itself (anchors may only "
                                "be used after their node is complete)", file=where,
                                line=child.start_mark.line + 1)
            if id(child) not in measured:
                stack.append((child, False))


def parse_yaml(text: str, where: str):
    """Parse one YAML document with the safe loader under the depth and expansion budget.

    Returns
    -------
    data : object
        The document (plain Python values; no tag ever builds another object).
    node : yaml.Node or None
        Its node graph (for line numbers).

    Raises
    ------
    SpecError
        A syntax error (with its line), or a document over budget.
    """
    try:
        # Nesting is checked on the event stream first: the parser is iterative, while the
        # composer and constructor recurse and would end in RecursionError on deep input.
        depth = 0
        for count, event in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise SpecError(f"nested deeper than {MAX_DEPTH} levels", file=where,
                                    line=event.start_mark.line + 1)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            if count > 4 * MAX_NODES:
                raise SpecError(f"more than {MAX_NODES:,} YAML nodes", file=where,
                                line=event.start_mark.line + 1)
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, None
            _check_expansion(node, where)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(error.problem or error).split())
        raise SpecError(f"YAML syntax error: {problem}", file=where, line=line) from None
    except yaml.YAMLError as error:
        raise SpecError(f"YAML error: {' '.join(str(error).split())}", file=where) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as error:
        # e.g. an integer with more digits than Python converts
        raise SpecError(f"cannot read a value: {' '.join(str(error).split())[:200]}",
                        file=where) from None
    return data, node


def _read_yaml(path: Path) -> tuple[Any, dict[tuple, Location]]:
    """Parse a YAML file; return the data and a map from key paths to (file, line)."""
    data, node = parse_yaml(read_text_file(path), str(path))
    lines: dict[tuple, Location] = {}
    if node is None:
        return data, lines
    # Iterative walk: the graph is within budget, but aliases may repeat subtrees.
    stack = [(node, ())]
    while stack:
        current, prefix = stack.pop()
        lines.setdefault(prefix, (str(path), current.start_mark.line + 1))
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                lines[prefix + (key,)] = (str(path), key_node.start_mark.line + 1)
                stack.append((value_node, prefix + (key,)))
        elif isinstance(current, yaml.SequenceNode):
            for index, item in enumerate(current.value):
                stack.append((item, prefix + (str(index),)))
    return data, lines


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise SpecError(f"override {text!r} is not of the form dotted.key=value", file="--set")
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise SpecError(f"override {text!r} has an empty key", file="--set")
    if not value.strip():
        return key.split("."), ""
    try:
        parsed, _ = parse_yaml(value, f"--set {key}")
    except SpecError as error:
        if not error.message.startswith("YAML syntax error"):
            raise
        parsed = value  # not YAML: the text itself
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
    # Drop discriminator tags (e.g. 'gaussian_ring') that pydantic inserts into the path; a
    # part the document has as a key (a stimulus named 'input') is the user's, not a tag.
    kept: tuple = ()
    for part in loc:
        if kept + (part,) in lines or not _is_tag(part):
            kept += (part,)
    key_path = kept or loc
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
    projections = model.get("projections")
    for name, projection in (projections.items() if isinstance(projections, dict) else ()):
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
    populations = model.get("populations")
    for name, population in (populations.items() if isinstance(populations, dict) else ()):
        if isinstance(population, dict) and isinstance(population.get("kind"), str) and \
                population["kind"] in RENAMED_POPULATION_KINDS:
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
        file, line = lines.get(("model",), (str(path), None))
        model_path = path.parent / model_ref
        try:
            model_path = model_path.resolve()
            exists = model_path.exists()
        except (OSError, ValueError, RuntimeError):  # NUL byte, symlink loop, …
            exists = False
        if not exists:
            looked = os.path.abspath(model_path).replace("\0", "\\0")
            raise SpecError(f"model file not found: {model_ref} (looked for {looked})",
                            file=file, line=line, key_path="model")
        try:
            model_data, model_lines = _read_yaml(model_path)
        except SpecError as error:
            if error.line is not None:
                raise
            # A path that is not a readable file: point at the protocol's ``model`` key.
            raise SpecError(f"model {model_ref!r}: {error.message}", file=file, line=line,
                            key_path="model") from None
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
        spec = ProtocolSpec.model_validate(document)
    except ValidationError as error:
        raise _format_validation_error(error, lines or {}, source, ProtocolSpec) from None
    if spec.sweep is not None:
        for _, key, _ in spec.sweep.axes():
            problem = grid_key_problem(spec, key)
            if problem is not None:
                head = next(h for h in spec.sweep.grid if h.rpartition(":")[2].strip() == key)
                file, line = (lines or {}).get(("sweep", "grid", head),
                                               (lines or {}).get(("sweep", "grid"),
                                                                 (source, None)))
                raise SpecError(problem, file=file, line=line, key_path=f"sweep.grid.{key}")
    return spec


#: Top-level keys a sweep grid cannot vary: seeds have their own keys, and the blocks that
#: describe several runs do not describe one member.
NOT_SWEPT = ("seed", "ensemble", "sweep")


def dotted_keys(document, prefix: str = "") -> list[str]:
    """Every dotted key of a document (mappings and list indices), parents before children."""
    keys = []
    items = document.items() if isinstance(document, dict) else \
        enumerate(document) if isinstance(document, list) else []
    for key, value in items:
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        keys += dotted_keys(value, dotted + ".")
    return keys


def grid_key_problem(spec: ProtocolSpec, key: str) -> str | None:
    """Why ``key`` cannot be a sweep grid key of ``spec`` (naming the nearest valid key), or
    None if it can."""
    if key.split(".")[0] in NOT_SWEPT:
        return (f"{key.split('.')[0]} cannot be a grid key (seeds are swept with seeds or "
                "seed_list, --seeds or --seed-list)")
    valid = [k for k in dotted_keys(spec.model_dump(mode="json"))
             if k.split(".")[0] not in NOT_SWEPT]
    if key in valid:
        return None
    nearest = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    return "the protocol has no such key" + (f"; did you mean {nearest[0]}?" if nearest else "")


def spec_to_yaml(spec: ProtocolSpec) -> str:
    """The fully resolved protocol (model inlined, defaults filled) as YAML text."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)

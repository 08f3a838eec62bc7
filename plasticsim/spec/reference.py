"""The YAML reference, generated from the spec classes: ``python -m plasticsim.spec.reference``.

Every key a protocol or model file accepts is a field of a frozen pydantic class
(:mod:`plasticsim.spec` and the component modules of :mod:`plasticsim.model`). This module
walks those classes — the protocol, the model, and every registered neuron model, rule,
constraint, stimulus and probe — and writes one Markdown page: for each key its type, default,
allowed range (from the bounded value types of :mod:`plasticsim.schema`) and description (the
comment on the field's line, else the sentence of the class docstring that names it).

``docs/yaml_reference.md`` is this module's output; ``tests/test_reference.py`` checks that
the committed file equals it, so the page cannot go stale when a spec class changes.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import sys
import tokenize
import types
import typing
from typing import Any, Literal, Union

import annotated_types
from pydantic import AfterValidator, BaseModel, Discriminator, Tag
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .. import schema
from ..model.registry import CONSTRAINTS, NEURONS, PROBES, RULES, STIMULI
from ..schema import Spec
from .model import ModelSpec
from .protocol import ProtocolSpec

#: Registries in the order of the page: (section title, YAML place of ``kind``, registry).
REGISTRIES = (
    ("Neuron models", "model.populations.<name>.kind", NEURONS),
    ("Plasticity rules", "model.projections.<name>.rule.kind", RULES),
    ("Weight constraints", "model.projections.<name>.constraints[i].kind", CONSTRAINTS),
    ("Stimuli", "stimuli.<name>.kind", STIMULI),
    ("Probes", "probes.<name>.kind", PROBES),
)


def _bounded_types() -> dict:
    """The bounded value types of :mod:`plasticsim.schema`: validator function → (name, range)."""
    tiny, huge = f"{schema.TINY:g}", f"{schema.HUGE:g}"
    ranges = {
        "PositiveFinite": f"> 0: [{tiny}, {huge}]",
        "NonNegativeFinite": f"0 or [{tiny}, {huge}]",
        "Finite": f"0 or \\|x\\| in [{tiny}, {huge}]",
        "AveragingRate": f"[{tiny}, 1]",
        "OpenFraction": f"[{tiny}, 1)",
        "Seed": f"integer in [0, {schema.MAX_SEED}]",
        "Size": f"integer in [1, {schema.MAX_SIZE}]",
        "Size0": f"integer in [0, {schema.MAX_SIZE}]",
        "SampleCount": f"integer in [1, {schema.MAX_SAMPLES}]",
        "SampleCount0": f"integer in [0, {schema.MAX_SAMPLES}]",
    }
    table = {}
    for name, allowed in ranges.items():
        validator = typing.get_args(getattr(schema, name))[1]
        table[validator.func] = (name, allowed)
    return table


BOUNDED = _bounded_types()


def _constraint_range(metadata) -> str:
    """'(0, 100000]' from annotated-types constraints (``Field(gt=0, le=100000)``)."""
    low = high = None
    for item in metadata:
        if isinstance(item, FieldInfo):
            return _constraint_range(item.metadata)
        if isinstance(item, annotated_types.Gt):
            low = f"({item.gt:g}"
        elif isinstance(item, annotated_types.Ge):
            low = f"[{item.ge:g}"
        elif isinstance(item, annotated_types.Lt):
            high = f"{item.lt:g})"
        elif isinstance(item, annotated_types.Le):
            high = f"{item.le:g}]"
    if low is None and high is None:
        return ""
    return f"{low or '(−∞'}, {high or '∞)'}"


class _Renderer:
    """Type text, allowed ranges and the Spec classes a field refers to."""

    def __init__(self, registry_sections: dict):
        #: Spec class of a registered component → anchor of its registry's section.
        self.registry_sections = registry_sections

    def render(self, annotation, ranges: list, nested: list) -> str:
        origin = typing.get_origin(annotation)
        arguments = typing.get_args(annotation)
        if origin is typing.Annotated:
            base, metadata = arguments[0], arguments[1:]
            for item in metadata:
                if isinstance(item, AfterValidator) and item.func in BOUNDED:
                    name, allowed = BOUNDED[item.func]
                    if allowed not in ranges:
                        ranges.append(allowed)
                    return name
            if any(isinstance(item, Discriminator) for item in metadata):
                return self.render(base, ranges, nested)
            if any(isinstance(item, Tag) for item in metadata):
                return self.render(base, ranges, nested)
            interval = _constraint_range(metadata)
            text = self.render(base, ranges, nested)
            if interval:
                ranges.append(f"{text} in {interval}")
            return text
        if origin is Literal:
            return " \\| ".join(f"`{json.dumps(value)}`" for value in arguments)
        if origin in (Union, types.UnionType):
            parts = [self.render(argument, ranges, nested) for argument in arguments]
            titles = {self.registry_sections.get(_strip(argument), (None, None))[1]
                      for argument in arguments}
            if len(titles) == 1 and None not in titles:
                title = titles.pop()
                return f"one of the [{title.lower()}](#{_slug(title)}), selected by `kind`"
            return " or ".join(parts)
        if origin is list:
            return "list of " + self.render(arguments[0], ranges, nested)
        if origin is dict:
            return "mapping name → " + self.render(arguments[1], ranges, nested)
        if origin is tuple:
            return "[" + ", ".join(self.render(argument, ranges, nested)
                                   for argument in arguments) + "]"
        if annotation is type(None):
            return "null"
        if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
            if annotation in self.registry_sections:
                section, _ = self.registry_sections[annotation]
                return f"[`{annotation.__name__}`](#{section})"
            if annotation not in nested:
                nested.append(annotation)
            return f"[`{annotation.__name__}`](#{annotation.__name__.lower()})"
        if annotation is Any:
            return "any value"
        return {bool: "boolean", str: "string", int: "integer", float: "number"}.get(
            annotation, getattr(annotation, "__name__", str(annotation)))


def _strip(annotation):
    """The class inside ``Annotated[cls, Tag(...)]`` (or the annotation itself)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def _field_comments(spec_class: type) -> dict:
    """Comments written beside (or just above) each field in the class's source."""
    comments: dict = {}
    for klass in reversed(spec_class.__mro__):
        if not (inspect.isclass(klass) and issubclass(klass, Spec)) or klass is Spec:
            continue
        if "__annotations__" not in vars(klass):
            continue
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        trailing = {}
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                trailing[token.start[0] - 1] = (token.start[1], token.string.lstrip("#").strip())
        for index, line in enumerate(lines):
            match = re.match(r"^    (\w+)\s*:", line)
            if not match or match.group(1) not in vars(klass)["__annotations__"]:
                continue
            parts = []
            above = index - 1
            while above >= 0 and lines[above].strip().startswith("#"):
                parts.insert(0, trailing[above][1])
                above -= 1
            if index in trailing and trailing[index][0] > 0 and lines[index][
                    :trailing[index][0]].strip():
                parts.append(trailing[index][1])
            if parts:
                comments[match.group(1)] = " ".join(parts)
    return comments


def _docstring_clause(spec_class: type, name: str) -> str:
    """The first clause of the class docstring about ``name`` alone.

    Clauses are sentences split at semicolons; one that names another key of the class in
    double backquotes as well is not taken (the class docstring above the table says it).
    """
    text = " ".join(inspect.cleandoc(spec_class.__doc__ or "").split())
    others = [f"``{key}``" for key in spec_class.model_fields if key != name]
    for sentence in re.split(r"(?<=[.;])\s+(?=[A-Za-z`(])", text):
        if f"``{name}``" in sentence and not any(other in sentence for other in others):
            return sentence.rstrip(";").replace("``", "`")
    return ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return f"`{json.dumps(value, ensure_ascii=False, default=str)}`"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("\\\\|", "\\|")


def _docstring(spec_class: type) -> str:
    text = inspect.cleandoc(spec_class.__doc__ or "")
    if spec_class.__doc__ is None or text == inspect.cleandoc(Spec.__doc__ or ""):
        return ""
    return text.replace("``", "`")


class _Writer:
    def __init__(self):
        self.registry_sections = {}
        for title, _place, registry in REGISTRIES:
            for kind, component in registry.items():
                self.registry_sections[component.spec_class] = (_anchor(title, kind), title)
        self.renderer = _Renderer(self.registry_sections)
        self.done: set = set()
        self.out: list[str] = []

    def write_class(self, spec_class: type, heading: str, level: int = 3,
                    notes: list[str] = ()) -> None:
        """One class: heading, docstring, table of keys; then the classes it nests."""
        self.done.add(spec_class)
        anchor = (self.registry_sections[spec_class][0] if spec_class in self.registry_sections
                  else spec_class.__name__.lower())
        self.out += [f'<a id="{anchor}"></a>', "", f"{'#' * level} {heading}", ""]
        module = spec_class.__module__.replace(".", "/") + ".py"
        self.out += [f"`{spec_class.__name__}` in `{module}`.", ""]
        self.out += list(notes)
        doc = _docstring(spec_class)
        if doc:
            self.out += [doc, ""]
        comments = _field_comments(spec_class)
        hints = typing.get_type_hints(spec_class, include_extras=True)
        nested: list = []
        rows = []
        for name, field in spec_class.model_fields.items():
            ranges: list = []
            referred: list = []
            type_text = self.renderer.render(hints.get(name, field.annotation), ranges,
                                             referred)
            nested += [child for child in referred if child not in nested]
            description = comments.get(name) or _docstring_clause(spec_class, name)
            if not description and len(referred) == 1:
                description = _docstring(referred[0]).split("\n\n")[0]
            if not description and name == "kind" and spec_class in self.registry_sections:
                description = f"`{field.default}` selects this component"
            if not description and name == "size" and spec_class.__module__.startswith(
                    "plasticsim.model.neurons"):
                description = "number of units (input sites for an input population)"
            if not description and name == "population":
                description = "the population this component drives or reads"
            if not description and f"``{name}``" in (spec_class.__doc__ or ""):
                description = "see the text above the table"
            rows.append(f"| `{name}` | {_cell(type_text)} | {_cell(_default(field))} | "
                        f"{_cell('; '.join(ranges)) or '—'} | {_cell(description) or '—'} |")
        if rows:
            self.out += ["| key | type | default | allowed | description |",
                         "|---|---|---|---|---|", *rows, ""]
        else:
            self.out += ["No keys.", ""]
        for child in nested:
            if child not in self.done:
                self.write_class(child, f"`{child.__name__}`", level=min(level + 1, 4))

    def write(self) -> str:
        self.out += [
            "# YAML reference",
            "",
            "<!-- Generated by `python -m plasticsim.spec.reference > docs/yaml_reference.md`"
            " from the spec classes; do not edit by hand (tests/test_reference.py checks it)."
            " -->",
            "",
            "Every key of a protocol file (`protocols/*.yaml`) and a model file "
            "(`models/*.yaml`), with its type, default, allowed range and meaning. A protocol's "
            "`model:` is a path to a model file (relative to the protocol) or an inline "
            "mapping; `--set dotted.key=value` overrides any key below. Unknown keys are "
            "errors; values outside the allowed range are refused by `plasticsim validate` "
            "with the range in the message.",
            "",
            "## Value types",
            "",
            "| type | allowed values |",
            "|---|---|",
        ]
        for name, allowed in BOUNDED.values():
            self.out.append(f"| `{name}` | {allowed} |")
        self.out += ["", "Numbers are finite; a magnitude below the smallest bound (other than "
                     "0 where 0 is allowed) or above the largest is refused.", ""]
        self.out += ["## Protocol", ""]
        self.done.add(ModelSpec)
        self.write_class(ProtocolSpec, "Protocol file (top level)")
        self.out += ["## Model", ""]
        self.write_class(ModelSpec, "Model (`model:` in a protocol, or a model file)")
        for title, place, registry in REGISTRIES:
            self.out += [f"## {title}", "", f"Selected by `{place}`.", ""]
            for kind in sorted(registry):
                component = registry[kind]
                notes = []
                if registry is RULES:
                    where = {"feedforward": "feedforward (pre ≠ post)",
                             "recurrent": "recurrent (pre = post)"}
                    accepts = " and ".join(where[a] for a in component.accepts) or "any"
                    post = ", ".join(f"`{k}`" for k in component.post_kinds) or "any"
                    notes = [f"Projections: {accepts}; post population kinds: {post}.", ""]
                self.write_class(component.spec_class, f"`{kind}`", notes=notes)
        return "\n".join(self.out).rstrip() + "\n"


def _slug(title: str) -> str:
    """GitHub's anchor of a Markdown heading made of plain words."""
    return title.lower().replace(" ", "-")


#: Anchor prefix of each registry's kinds (``#neuron-lca``, ``#rule-oja``, …).
ANCHOR_PREFIXES = {"Neuron models": "neuron", "Plasticity rules": "rule",
                   "Weight constraints": "constraint", "Stimuli": "stimulus",
                   "Probes": "probe"}


def _anchor(title: str, kind: str) -> str:
    return f"{ANCHOR_PREFIXES[title]}-{kind}".replace("_", "-")


def reference_markdown() -> str:
    """The YAML reference page (Markdown) for the spec classes as they are now."""
    return _Writer().write()


def registered_kinds() -> dict:
    """Every registered component kind: ``{section title: [kinds]}``."""
    return {title: sorted(registry) for title, _place, registry in REGISTRIES}


def main() -> int:
    """Write the reference to standard output."""
    sys.stdout.write(reference_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The generated YAML reference (plasticsim/spec/reference.py) and docs/yaml_reference.md."""

import subprocess
import sys
from pathlib import Path

from plasticsim.spec.reference import REGISTRIES, reference_markdown, registered_kinds

REPOSITORY = Path(__file__).resolve().parents[1]
COMMITTED = REPOSITORY / "docs" / "yaml_reference.md"


def test_committed_reference_is_the_generators_output():
    """A spec class changed without regenerating the page fails here (run the command below)."""
    assert COMMITTED.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/yaml_reference.md is stale: run "
        "`python -m plasticsim.spec.reference > docs/yaml_reference.md`")


def test_every_registered_kind_has_a_section():
    text = reference_markdown()
    kinds = registered_kinds()
    assert {title for title, _, _ in REGISTRIES} == set(kinds)
    assert sum(len(k) for k in kinds.values()) >= 25
    for title, names in kinds.items():
        assert f"## {title}" in text
        for kind in names:
            assert f"### `{kind}`" in text, f"{title}: kind {kind!r} missing"


def test_bounded_types_carry_their_ranges():
    """Fields typed with schema's bounded types show the bound, not just 'number'."""
    text = reference_markdown()
    # ScheduleSpec.samples is a SampleCount, LcaPopulationSpec.inference_steps a Field(gt, le).
    assert "| `samples` | SampleCount | **required** | integer in [1, 1000000000000] |" in text
    assert "| `inference_steps` | integer | `60` | integer in (0, 100000] |" in text
    assert "| `seed` | Seed | `0` | integer in [0, 9223372036854775807] |" in text
    # A nested class referenced only from a component gets its own section.
    for nested in ("gatespec", "thirdfactorspec", "imagesourcespec", "settlingspec",
                   "homeostasisspec", "neighbourhoodspec"):
        assert f'<a id="{nested}"></a>' in text


def test_every_key_of_a_spec_class_is_listed():
    """Walk the protocol's own fields: each key of each documented class is a table row."""
    from plasticsim.spec.protocol import ProtocolSpec, ScheduleSpec
    text = reference_markdown()
    for spec_class in (ProtocolSpec, ScheduleSpec):
        for key in spec_class.model_fields:
            assert f"| `{key}` |" in text


def test_module_entry_point_writes_the_page():
    result = subprocess.run([sys.executable, "-m", "plasticsim.spec.reference"],
                            capture_output=True, text=True, check=True, cwd=REPOSITORY)
    assert result.stdout == reference_markdown()


def test_every_link_of_the_page_has_its_anchor():
    import re
    text = reference_markdown()
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', text))
    anchors |= {title.lower().replace(" ", "-") for title in re.findall(r"^## (.+)$", text,
                                                                         re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert links and not links - anchors, sorted(links - anchors)

"""The builder (plasticsim.engine.builder): the step order it lays out, the random streams it
assigns, and every graph it must refuse at ``validate`` with the key, file and line."""

from __future__ import annotations

import yaml
import pytest
from conftest import PROTOCOLS

from plasticsim.cli import main
from plasticsim.engine.builder import build_plan, build_plans
from plasticsim.errors import SpecError
from plasticsim.spec.loading import load_protocol, resolve_protocol_document

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"
TWO_LAYER = PROTOCOLS / "linsker_two_layer.yaml"


def test_step_order_follows_the_contract_and_the_graph():
    plan = build_plan(load_protocol(TWO_LAYER))
    order = [(op.slot, op.primitive, op.writes.get("target") or op.writes.get("delta")
              or op.writes.get("weights")) for op in plan.operations]
    assert order[0] == ("stimulus", "load_stream", "input.activity")
    # Layer 2's drive reads layer 1's output of the same step: layer 1 comes first.
    drives = [target for slot, _, target in order if slot == "drive"]
    assert drives.index("layer1.drive") < drives.index("layer2.drive")
    slots = [slot for slot, _, _ in order]
    assert slots.index("plasticity") > max(i for i, s in enumerate(slots) if s == "settle")
    assert slots[-2:] == ["constraint", "constraint"]
    # Layer 2 learns from layer 1's output Z₁ (the drive with noise), not its settled activity.
    hebbian = [op for op in plan.operations if op.primitive == "hebbian"]
    assert hebbian[1].reads == {"post": "layer2.settled", "pre": "layer1.drive"}


def test_streams_have_their_own_seed_keys():
    plan = build_plan(load_protocol(TWO_LAYER))
    keys = {group.name: group.seed_key for group in plan.streams}
    assert keys == {"stimulus.input": (1,), "output_noise.layer1": (2,),
                    "output_noise.layer2": (2, 1)}


def test_members_with_the_same_structure_share_one_plan():
    specs = [load_protocol(REFERENCE, [f"seed={seed}"]) for seed in (1, 2, 3)]
    specs.append(load_protocol(REFERENCE, ["model.projections.lateral.settling.method=exact"]))
    plans = build_plans(specs)
    assert [plan.info["members"] for plan in plans] == [[0, 1, 2], [3]]
    weights = plans[0].states["feedforward.weights"].initial
    assert weights.shape == (3, 8, 32) and not (weights[0] == weights[1]).all()


def _document(protocol=REFERENCE):
    document, _ = resolve_protocol_document(protocol)
    return document


def _edit(document, edit):
    edit(document)
    return document


def _add_population(name, **population):
    def edit(document):
        document["model"]["populations"][name] = {"kind": "linear", "size": 4, **population}
    return edit


def _add_projection(name, **projection):
    def edit(document):
        document["model"]["projections"][name] = projection
        if projection["rule"] != "none":
            document["learning_rates"][name] = {"kind": "constant", "initial": 0.001}
    return edit


BAD_GRAPHS = {
    "cycle": ([_add_population("extra"),
               _add_projection("up", pre="output", post="extra", rule="none"),
               _add_projection("down", pre="extra", post="output", rule="none")],
              "model.projections.", "cycle"),
    "nothing_drives": ([_add_population("orphan")], "model.populations.orphan",
                       "nothing drives it"),
    "input_without_stimulus": ([lambda d: d["model"]["populations"].__setitem__(
        "spare", {"kind": "input", "size": 4})], "model.populations.spare", "no stimulus"),
    "lateral_rule_between_populations": (
        [_add_population("extra"),
         _add_projection("wrong", pre="output", post="extra", rule="anti_hebbian_lateral")],
        "model.projections.wrong.rule", "cannot run on a projection between two"),
    "feedforward_rule_on_itself": (
        [_add_projection("loop", pre="output", post="output", rule="linsker_two_phase")],
        "model.projections.loop.rule", "cannot run on a projection from a population to"),
    "rule_on_wrong_neuron": (
        [lambda d: d["model"]["projections"]["feedforward"].__setitem__(
            "rule", "sparse_coding_dictionary")],
        "model.projections.feedforward.rule", "drives lca populations"),
    "projection_onto_an_input": (
        [_add_projection("back", pre="output", post="input", rule="none")],
        "model.projections.back.post", "input population"),
    "settling_ignored": (
        [lambda d: d["model"]["projections"]["feedforward"].__setitem__(
            "settling", {"method": "exact"})],
        "model.projections.feedforward.settling", "no effect"),
    "gate_from_downstream": (
        [_add_population("downstream"),
         _add_projection("next", pre="output", post="downstream", rule="none"),
         lambda d: d["model"]["populations"]["output"].__setitem__(
             "gate", {"source": "downstream"})],
        "model.populations.output.gate.source", "downstream"),
    "learning_rate_for_fixed_weights": (
        [_add_population("extra"),
         _add_projection("fixed", pre="output", post="extra", rule="none"),
         lambda d: d["learning_rates"].__setitem__("fixed",
                                                   {"kind": "constant", "initial": 0.1})],
        "learning_rates.fixed", "does not learn"),
    "constraint_on_lateral": (
        [lambda d: d["model"]["projections"]["lateral"].__setitem__(
            "constraints", [{"kind": "unit_weight_norm"}])],
        "model.projections.lateral.constraints", "no weight matrix"),
}


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_graphs_the_engine_cannot_run_end_at_validate(case, tmp_path, capsys):
    edits, key, words = BAD_GRAPHS[case]
    document = _document()
    for edit in edits:
        edit(document)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert main(["validate", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert key in error and words in error
    assert f"{path}:" in error          # the file and line of the offending key
    line = int(error.split(f"{path}:")[1].split(":")[0])
    assert key.split(".")[-1] in path.read_text().splitlines()[line - 1] or \
        key.split(".")[-2] in path.read_text().splitlines()[line - 1]


def test_noise_phase_without_input_noise_is_refused():
    with pytest.raises(SpecError, match="noise-unlearning samples are all zero"):
        build_plan(load_protocol(PROTOCOLS / "olshausen_field_image_patches.yaml",
                                 ["phases.noise_unlearning.enabled=true"]))


@pytest.mark.parametrize("override, words", [
    ("model.network={kind: sparse_coding}", "dissolved"),
    ("model.constraints=[{kind: unit_weight_norm, projection: feedforward}]",
     "model.projections.<name>.constraints"),
    ("model.projections.feedforward.metric=input_covariance", "rule.metric"),
    ("model.populations.output.kind=sparse_coding", "is now 'lca'"),
])
def test_moved_keys_say_where_they_went(override, words):
    with pytest.raises(SpecError, match="--set") as error:
        load_protocol(REFERENCE, [override])
    assert words in str(error.value)


def test_unknown_kinds_suggest_the_nearest(capsys):
    assert main(["validate", str(REFERENCE), "--set",
                 "model.projections.feedforward.rule=linsker_two_phse"]) == 2
    error = capsys.readouterr().err
    assert "unknown kind 'linsker_two_phse'" in error and "linsker_two_phase" in error

"""YAML loading: valid files load; every kind of bad input gives one clear SpecError line."""

import shutil

import pytest

from plasticsim.cli import main
from plasticsim.errors import SpecError
from plasticsim.spec.loading import load_protocol

from conftest import MODELS, PROTOCOLS

REFERENCE = PROTOCOLS / "linsker1992_1d.yaml"


@pytest.fixture
def protocol_copy(tmp_path):
    """A copy of the reference protocol and its model, to edit."""
    (tmp_path / "protocols").mkdir()
    (tmp_path / "models").mkdir()
    shutil.copy(MODELS / "linsker_ring.yaml", tmp_path / "models")
    target = tmp_path / "protocols" / "p.yaml"
    shutil.copy(REFERENCE, target)
    return target


def test_shipped_protocols_load():
    for path in PROTOCOLS.glob("linsker1992_*.yaml"):
        spec = load_protocol(path)
        assert spec.model.populations["input"].size == 32


def test_reference_protocol_values():
    spec = load_protocol(REFERENCE)
    assert spec.model.populations["output"].size == 8
    assert spec.model.populations["output"].output_noise_variance == 1.0
    assert spec.stimuli["input"].input_noise.variance == 0.1
    assert spec.learning_rates["feedforward"].kind == "annealed"


def test_override_applies_before_validation():
    spec = load_protocol(REFERENCE, ["stimuli.input.input_noise.variance=0.01",
                                     "model.populations.output.size=16", "seed=9"])
    assert spec.stimuli["input"].input_noise.variance == 0.01
    assert spec.model.populations["output"].size == 16
    assert spec.seed == 9


def test_unknown_key_names_file_line_and_suggestion(protocol_copy):
    text = protocol_copy.read_text().replace("  samples: 200000", "  sampels: 200000")
    protocol_copy.write_text(text)
    line = text.splitlines().index("  sampels: 200000") + 1
    with pytest.raises(SpecError) as caught:
        load_protocol(protocol_copy)
    message = str(caught.value)
    assert f"p.yaml:{line}" in message
    assert "schedule.sampels" in message
    assert "did you mean 'samples'" in message


def test_unknown_key_in_model_file_points_into_model_file(protocol_copy):
    model = protocol_copy.parent.parent / "models" / "linsker_ring.yaml"
    model.write_text(model.read_text().replace("output_noise_variance", "output_noise_varianse"))
    with pytest.raises(SpecError, match=r"linsker_ring\.yaml:\d+: .*did you mean "
                                        r"'output_noise_variance'"):
        load_protocol(protocol_copy)


def test_wrong_type(protocol_copy):
    protocol_copy.write_text(protocol_copy.read_text().replace("samples: 200000",
                                                               "samples: many"))
    with pytest.raises(SpecError, match=r"schedule\.samples: .*integer.*'many'"):
        load_protocol(protocol_copy)


def test_negative_variance_names_range():
    with pytest.raises(SpecError, match=r"input_noise\.variance: .*greater than 0.*-1"):
        load_protocol(REFERENCE, ["stimuli.input.input_noise.variance=-1"])


def test_alpha_that_cannot_converge_is_rejected(tmp_path):
    import plasticsim
    with pytest.raises(SpecError, match=r"settling\.alpha: alpha = 5.0 cannot converge"):
        plasticsim.run(REFERENCE, tmp_path / "out", progress=False,
                       overrides=["model.projections.lateral.settling.alpha=5.0"])
    assert not (tmp_path / "out").exists()  # nothing written for invalid input


def test_missing_model_file(protocol_copy):
    (protocol_copy.parent.parent / "models" / "linsker_ring.yaml").unlink()
    with pytest.raises(SpecError, match=r"p\.yaml:\d+: model: model file not found"):
        load_protocol(protocol_copy)


def test_yaml_syntax_error_has_line(protocol_copy):
    lines = protocol_copy.read_text().splitlines()
    lines[5] = "seed: [1, 2"
    protocol_copy.write_text("\n".join(lines))
    with pytest.raises(SpecError, match=r"p\.yaml:\d+: YAML syntax error"):
        load_protocol(protocol_copy)


def test_missing_protocol_file(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_protocol(tmp_path / "nope.yaml")


def test_block_length_must_hold_whole_batches():
    with pytest.raises(SpecError, match="multiple of batch_size"):
        load_protocol(REFERENCE, ["schedule.block_length=15"])


@pytest.mark.parametrize("arguments", [
    ["validate", str(REFERENCE), "--set", "schedule.sampels=3"],
    ["validate", "does/not/exist.yaml"],
    ["run", str(REFERENCE), "--set", "stimuli.input.input_noise.variance=-1"],
    ["run", str(REFERENCE), "--backend", "no_such_backend"],
])
def test_cli_bad_input_is_one_line_exit_2(arguments, capsys, tmp_path):
    if arguments[0] == "run":
        arguments = arguments + ["--out", str(tmp_path / "out"), "--no-progress"]
    assert main(arguments) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("plasticsim: error: ")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err


def test_cli_validate_ok(capsys):
    assert main(["validate", str(REFERENCE)]) == 0
    assert "valid" in capsys.readouterr().out


def test_zero_initial_weights_cannot_be_scaled_to_unit_rows(capsys):
    """Zero rows have no direction: refused at validation, not a 0/0 in the first step."""
    overrides = ["model.projections.feedforward.init.kind=zeros",
                 "model.projections.feedforward.init.unit_rows=true"]
    with pytest.raises(SpecError, match="unit_rows: zero weights cannot be scaled"):
        load_protocol(REFERENCE, overrides)
    arguments = ["validate", str(REFERENCE)]
    for override in overrides:
        arguments += ["--set", override]
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "unit_rows" in error

"""The image_patches stimulus and the shipped image protocols, including bad input via the CLI."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml

from plasticsim.cli import main
from plasticsim.spec.loading import load_protocol, protocol_from_document
from plasticsim.model.stimuli.image_patches import ImagePatchStimulus

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = sorted((ROOT / "protocols").glob("*images*.yaml")) + sorted(
    (ROOT / "protocols").glob("*patches*.yaml"))


def tiny_protocol(source: dict, patch_size: int = 4, **stimulus) -> dict:
    """A sparse-coding protocol small enough to run in a second."""
    pixels = patch_size**2
    return {
        "name": "tiny",
        "model": {
            "populations": {"input": {"kind": "input", "size": pixels},
                            "coefficients": {"kind": "lca", "size": pixels, "prior": "l1",
                                             "sparsity": 0.1}},
            "projections": {"dictionary": {"pre": "input", "post": "coefficients",
                                           "rule": "sparse_coding_dictionary",
                                           "init": {"unit_rows": True}}},
        },
        "phases": {"noise_unlearning": {"enabled": False, "sign": -1}},
        "stimuli": {"input": {"kind": "image_patches", "source": source,
                              "patch_size": patch_size, "border": 1,
                              "covariance_samples": 200, **stimulus}},
        "schedule": {"samples": 200, "batch_size": 100, "block_length": 100},
        "learning_rates": {"dictionary": {"kind": "constant", "initial": 1.0}},
        "record": {"every": 100, "weights": False},
    }


def write_protocol(tmp_path, document) -> str:
    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def run_cli(tmp_path, document, capsys) -> tuple[int, str]:
    code = main(["run", write_protocol(tmp_path, document), "--out", str(tmp_path / "out"),
                 "--no-progress", "--no-figures"])
    return code, capsys.readouterr().err


# --- the stimulus --------------------------------------------------------------------------

def test_patches_have_the_population_layout_and_requested_statistics():
    spec = protocol_from_document(tiny_protocol({"kind": "skimage"}, patch_size=6,
                                                remove_mean=True, normalize="unit_norm"))
    stimulus = ImagePatchStimulus(spec.stimuli["input"], 36)
    patches = stimulus.sample(np.random.default_rng(0), np.ones(50, dtype=bool))
    assert patches.shape == (50, 36)
    np.testing.assert_allclose(patches.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(patches, axis=1), 1.0)
    assert stimulus.patch_shape == (6, 6)


def test_whitened_builtin_images_have_the_target_variance_and_weaker_correlations():
    def covariance(whiten):
        spec = protocol_from_document(tiny_protocol({"kind": "skimage"}, patch_size=6,
                                                    whiten=whiten, covariance_samples=20000))
        return ImagePatchStimulus(spec.stimuli["input"], 36).signal_covariance

    def neighbour_correlation(matrix):
        return matrix[0, 1] / np.sqrt(matrix[0, 0] * matrix[1, 1])

    whitened, raw = covariance(True), covariance(False)
    assert 0.07 < np.mean(np.diag(whitened)) < 0.13
    # The ramp f flattens the 1/f² power spectrum, so neighbours correlate less (the
    # exp(−(f/f0)⁴) low-pass keeps some correlation: O&F's own images have 0.60).
    assert neighbour_correlation(raw) > 0.78
    assert neighbour_correlation(whitened) < neighbour_correlation(raw) - 0.1


def test_input_noise_is_alone_in_noise_unlearning_samples(tmp_path):
    images = np.zeros((1, 20, 20))
    np.save(tmp_path / "flat.npy", images + 1.0)
    spec = protocol_from_document(tiny_protocol(
        {"kind": "npy", "path": str(tmp_path / "flat.npy")}, whiten=False,
        input_noise={"variance": 0.25}))
    stimulus = ImagePatchStimulus(spec.stimuli["input"], 16)
    sensing = np.array([True] * 4000 + [False] * 4000)
    samples = stimulus.sample(np.random.default_rng(0), sensing)
    assert abs(samples[:4000].mean() - 1.0) < 0.01 and abs(samples[4000:].mean()) < 0.01
    assert abs(samples[4000:].var() - 0.25) < 0.01
    np.testing.assert_allclose(stimulus.noise_covariance, 0.25 * np.eye(16))


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: p.name)
def test_shipped_image_protocols_validate(path):
    spec = load_protocol(path)
    assert spec.stimuli["input"].kind == "image_patches"


def test_v73_mat_source_runs_end_to_end(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    images = np.random.default_rng(0).normal(size=(2, 24, 24))
    with h5py.File(tmp_path / "IMAGES.mat", "w", userblock_size=512) as handle:
        handle["IMAGES"] = images  # h5py sees MATLAB's h×w×n reversed: n×w×h
    code, error = run_cli(tmp_path, tiny_protocol(
        {"kind": "mat", "path": str(tmp_path / "IMAGES.mat")}), capsys)
    assert code == 0, error
    assert (tmp_path / "out" / "results.h5").is_file()


# --- bad input: one line, exit code 2, the file named --------------------------------------

def _bad_cases(tmp_path):
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 5)))
    np.save(tmp_path / "small.npy", np.zeros((1, 5, 5)))
    scipy.io.savemat(tmp_path / "images.mat", {"PICTURES": np.zeros((20, 20, 2))})
    (tmp_path / "short.raw").write_bytes(b"\0" * 100)
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    return {
        "missing folder": ({"kind": "folder", "path": str(tmp_path / "nowhere")},
                           "nowhere"),
        "missing file": ({"kind": "npy", "path": str(tmp_path / "absent.npy")}, "absent.npy"),
        "wrongly shaped array": ({"kind": "npy", "path": str(tmp_path / "cube.npy")},
                                 "cube.npy"),
        "patch larger than image": ({"kind": "npy", "path": str(tmp_path / "small.npy")},
                                    "small.npy"),
        "missing MATLAB key": ({"kind": "mat", "path": str(tmp_path / "images.mat")},
                               "IMAGES"),
        "raw file of the wrong size": ({"kind": "raw", "path": str(tmp_path / "short.raw"),
                                        "dtype": ">f4", "shape": [20, 20]}, "short.raw"),
        "unreadable archive": ({"kind": "npz", "path": str(tmp_path / "broken.npz")},
                               "broken.npz"),
    }


@pytest.mark.parametrize("case", ["missing folder", "missing file", "wrongly shaped array",
                                  "patch larger than image", "missing MATLAB key",
                                  "raw file of the wrong size", "unreadable archive"])
def test_bad_image_input_is_one_line_with_exit_code_2(tmp_path, capsys, case):
    source, named = _bad_cases(tmp_path)[case]
    code, error = run_cli(tmp_path, tiny_protocol(source), capsys)
    assert code == 2
    lines = error.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in error
    assert named in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written before the data loaded


def test_population_size_must_match_the_patch(tmp_path, capsys):
    document = tiny_protocol({"kind": "skimage"}, patch_size=5)  # 25 pixels, population 25
    document["stimuli"]["input"]["patch_size"] = 6
    code, error = run_cli(tmp_path, document, capsys)
    assert code == 2 and "patch_size" in error and len(error.strip().splitlines()) == 1


def test_raw_source_without_dtype_is_a_spec_error(tmp_path, capsys):
    code, error = run_cli(tmp_path, tiny_protocol({"kind": "raw", "path": "x"}), capsys)
    assert code == 2 and "dtype" in error


def test_generator_keys_on_another_source_are_one_spec_error(tmp_path, capsys):
    code, error = run_cli(tmp_path, tiny_protocol({"kind": "skimage", "texture": 0.2}), capsys)
    assert code == 2 and len(error.strip().splitlines()) == 1
    assert "texture" in error and "dead_leaves" in error


def test_small_dead_leaves_source_runs_end_to_end(tmp_path, capsys):
    source = {"kind": "dead_leaves", "count": 1, "size": 48, "seed": 3}
    code, error = run_cli(tmp_path, tiny_protocol(source), capsys)
    assert code == 0, error

"""Tests for plasticsim.model.stimuli.images: loaders, Olshausen–Field whitening and patch sampling."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
import skimage.io

from plasticsim.errors import DataError
from plasticsim.model.stimuli.images import (
    PatchSampler,
    load_images,
    patch_covariance,
    whiten_olshausen_field,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
OLSHAUSEN_IMAGES = SHARED / "data" / "olshausen" / "sparsenet_tcl_trainset"


@pytest.fixture
def stack():
    """Three distinct 6×8 images, n×h×w."""
    return np.random.default_rng(0).normal(size=(3, 6, 8))


# --- loading -------------------------------------------------------------------------------

def test_skimage_default_set_loads_offline():
    images = load_images()
    assert images.shape == (2, 512, 512)
    assert images.dtype == np.float64
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_png_folder_is_sorted_and_grayscale(tmp_path):
    gray = np.full((5, 7), 255, dtype=np.uint8)
    color = np.zeros((5, 7, 3), dtype=np.uint8)
    color[..., 1] = 255  # pure green
    skimage.io.imsave(tmp_path / "image10.png", gray, check_contrast=False)
    skimage.io.imsave(tmp_path / "image2.png", color, check_contrast=False)
    (tmp_path / "notes.txt").write_text("ignored")
    images = load_images(tmp_path)
    assert images.shape == (2, 5, 7)
    # Natural order puts image2 first; green maps to its luminance weight 0.7152.
    np.testing.assert_allclose(images[0], 0.7152, atol=1e-3)
    np.testing.assert_allclose(images[1], 1.0)


def test_mat_v5_is_transposed_from_matlab_layout(tmp_path, stack):
    path = tmp_path / "IMAGES.mat"
    scipy.io.savemat(path, {"IMAGES": stack.transpose(1, 2, 0)})  # MATLAB h×w×n
    np.testing.assert_array_equal(load_images(path), stack)


def test_mat_v73_hdf5_is_read_with_matlab_axis_order(tmp_path, stack):
    path = tmp_path / "IMAGES73.mat"
    with h5py.File(path, "w", userblock_size=512) as mat_file:  # MATLAB's 512-byte header
        # MATLAB stores the h×w×n array column-major, so HDF5 sees it as n×w×h.
        mat_file["IMAGES"] = stack.transpose(1, 2, 0).T
    np.testing.assert_array_equal(load_images(path), stack)


def test_npy_and_npz(tmp_path, stack):
    np.save(tmp_path / "stack.npy", stack)
    np.save(tmp_path / "single.npy", stack[0])
    np.savez(tmp_path / "one.npz", images=stack)
    np.savez(tmp_path / "two.npz", images=stack, other=stack[:1])
    np.testing.assert_array_equal(load_images(tmp_path / "stack.npy"), stack)
    np.testing.assert_array_equal(load_images(tmp_path / "single.npy"), stack[:1])
    np.testing.assert_array_equal(load_images(tmp_path / "one.npz"), stack)
    np.testing.assert_array_equal(load_images(tmp_path / "two.npz", key="other"), stack[:1])


def test_raw_big_endian_files_by_list_glob_and_single_file(tmp_path, stack):
    paths = []
    for index, image in enumerate(stack):
        paths.append(tmp_path / f"image{index}")
        image.astype(">f4").tofile(paths[-1])
    expected = stack.astype(np.float32)
    options = {"dtype": ">f4", "shape": (6, 8)}
    np.testing.assert_array_equal(load_images(paths, **options), expected)
    np.testing.assert_array_equal(load_images(str(tmp_path / "image*"), **options), expected)
    np.testing.assert_array_equal(load_images(paths[1], **options), expected[1:2])


@pytest.mark.skipif(not OLSHAUSEN_IMAGES.is_dir(), reason=f"{OLSHAUSEN_IMAGES} not present")
def test_olshausen_trainset_loads():
    images = load_images(str(OLSHAUSEN_IMAGES / "image*"), dtype=">f4", shape=(512, 512))
    assert images.shape == (10, 512, 512)
    # SOURCE.txt: average variance 0.079 (not O&F's nominal 0.1).
    assert images.var(axis=(1, 2)).mean() == pytest.approx(0.079, abs=0.002)


# --- bad inputs: one DataError naming the file -----------------------------------------------

def _raises_naming(path, match="", **options):
    with pytest.raises(DataError, match=match) as info:
        load_images(path, **options)
    assert Path(path).name in str(info.value)
    return str(info.value)


def test_missing_file_and_folder(tmp_path):
    _raises_naming(tmp_path / "absent.mat", "no such file")
    _raises_naming(tmp_path / "absent_folder", "no such file or folder")
    _raises_naming(str(tmp_path / "nothing*"), "no files match")


def test_folder_without_images(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    _raises_naming(tmp_path, "no image files")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # imageio tries its legacy plugins
def test_unreadable_picture(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"not a png at all")
    _raises_naming(path, "cannot read")


def test_raw_file_of_wrong_size(tmp_path):
    path = tmp_path / "image0"
    np.zeros(10, dtype=">f4").tofile(path)
    message = _raises_naming(path, "40 bytes, expected 192", dtype=">f4", shape=(6, 8))
    assert "6×8" in message


def test_raw_file_needs_dtype_and_shape(tmp_path):
    path = tmp_path / "image0"
    path.write_bytes(bytes(8))
    _raises_naming(path, "cannot tell the format")
    _raises_naming(path, "needs dtype", dtype=">f4")


def test_array_with_wrong_ndim(tmp_path):
    path = tmp_path / "four_d.npy"
    np.save(path, np.zeros((2, 3, 4, 5)))
    _raises_naming(path, r"shape \(2, 3, 4, 5\)")


def test_mat_key_missing_lists_existing_keys(tmp_path, stack):
    path_v5 = tmp_path / "v5.mat"
    scipy.io.savemat(path_v5, {"IMAGESr": stack})
    assert "IMAGESr" in _raises_naming(path_v5, "no array named 'IMAGES'")
    path_v73 = tmp_path / "v73.mat"
    with h5py.File(path_v73, "w") as mat_file:
        mat_file["A"] = stack
    assert "'A'" in _raises_naming(path_v73, "no array named 'IMAGES'")


def test_npz_needs_key_when_ambiguous(tmp_path, stack):
    path = tmp_path / "two.npz"
    np.savez(path, first=stack, second=stack)
    message = _raises_naming(path, "a key is needed")
    assert "first" in message and "second" in message
    _raises_naming(path, "no array named 'third'", key="third")


def test_images_of_different_sizes(tmp_path):
    skimage.io.imsave(tmp_path / "a.png", np.zeros((4, 4), np.uint8), check_contrast=False)
    skimage.io.imsave(tmp_path / "b.png", np.zeros((5, 4), np.uint8), check_contrast=False)
    with pytest.raises(DataError, match=r"b\.png: images are 5×4 pixels, expected 4×4"):
        load_images(tmp_path)


def test_non_finite_values(tmp_path):
    path = tmp_path / "nan.npy"
    np.save(path, np.full((2, 3, 3), np.nan))
    _raises_naming(path, "NaN")


def test_unknown_skimage_name():
    with pytest.raises(DataError, match="astronaut"):
        load_images("skimage", names=["astronaut"])


# --- whitening ----------------------------------------------------------------------------

def _radial_power(images, n_bins):
    """Mean power per integer radial frequency (cycles/picture) over all images."""
    size = images.shape[-1]
    power = (np.abs(np.fft.fft2(images)) ** 2).mean(axis=0)
    frequency = np.fft.fftfreq(size) * size
    radius = np.rint(np.hypot(*np.meshgrid(frequency, frequency))).astype(int)
    total = np.bincount(radius.ravel(), power.ravel(), minlength=n_bins)
    return total[:n_bins] / np.bincount(radius.ravel(), minlength=n_bins)[:n_bins]


def test_whitening_flattens_one_over_f_images():
    size = 128
    rng = np.random.default_rng(1)
    frequency = np.fft.fftfreq(size) * size
    radius = np.hypot(*np.meshgrid(frequency, frequency))
    amplitude = np.where(radius > 0, 1.0 / np.maximum(radius, 1e-9), 0.0)  # 1/f like scenes
    pink = np.fft.ifft2(np.fft.fft2(rng.normal(size=(4, size, size))) * amplitude).real
    whitened = whiten_olshausen_field(pink)

    assert whitened.var(axis=(1, 2)).mean() == pytest.approx(0.1)
    assert np.abs(whitened.mean(axis=(1, 2))).max() < 1e-12  # R(0) = 0
    power = _radial_power(whitened, size // 2)
    mid_band = power[4:int(0.2 * size)]  # f ≪ f0 = 0.4·N: exp(−2(f/f0)⁴) ≥ 0.98
    assert mid_band.max() / mid_band.min() < 1.5
    # At f0 the filtered power is exp(−2) ≈ 0.135 of the flat level.
    f0 = int(0.4 * size)
    assert power[f0] / mid_band.mean() == pytest.approx(np.exp(-2), rel=0.3)


def test_whitening_rejects_constant_images():
    with pytest.raises(DataError, match="constant"):
        whiten_olshausen_field(np.ones((2, 16, 16)))


# --- patches ------------------------------------------------------------------------------

@pytest.fixture
def coordinate_image():
    """One 20×24 image whose pixel values encode their own (row, column)."""
    rows, columns = np.indices((20, 24))
    return (rows * 100 + columns).astype(np.float64)


def test_patches_are_row_major_and_stay_inside_the_border(coordinate_image):
    sampler = PatchSampler(coordinate_image, patch_size=5, border=4)
    patches = sampler.sample(2000, np.random.default_rng(0))
    assert patches.shape == (2000, 25)
    rows, columns = patches // 100, patches % 100
    assert rows.min() == 4 and rows.max() == 20 - 4 - 1  # every allowed row is reached
    assert columns.min() == 4 and columns.max() == 24 - 4 - 1
    np.testing.assert_array_equal(patches[:, 1] - patches[:, 0], 1)  # next column
    np.testing.assert_array_equal(patches[:, 5] - patches[:, 0], 100)  # next row


def test_patches_are_reproducible(coordinate_image):
    sampler = PatchSampler(coordinate_image, patch_size=5)
    first = sampler.sample(50, np.random.default_rng(7))
    np.testing.assert_array_equal(first, sampler.sample(50, np.random.default_rng(7)))
    assert not np.array_equal(first, sampler.sample(50, np.random.default_rng(8)))


@pytest.mark.parametrize("normalize, check", [
    (None, lambda p: np.allclose(p.mean(axis=1), 0)),
    ("unit_norm", lambda p: np.allclose(np.linalg.norm(p, axis=1), 1)),
    ("unit_variance", lambda p: np.allclose(p.std(axis=1), 1)),
])
def test_mean_removal_and_normalization(normalize, check):
    images = np.random.default_rng(2).normal(3.0, 1.0, size=(2, 16, 16))
    sampler = PatchSampler(images, 4, border=1, remove_mean=True, normalize=normalize)
    patches = sampler.sample(100, np.random.default_rng(0))
    assert np.allclose(patches.mean(axis=1), 0)
    assert check(patches)


def test_constant_patch_normalizes_to_zero_not_nan():
    sampler = PatchSampler(np.ones((12, 12)), 4, remove_mean=True, normalize="unit_norm")
    assert np.all(sampler.sample(3, np.random.default_rng(0)) == 0)


def test_whitening_inside_the_sampler():
    images = np.random.default_rng(3).normal(size=(2, 32, 32))
    sampler = PatchSampler(images, 8, whiten=True)
    assert sampler.images.var(axis=(1, 2)).mean() == pytest.approx(0.1)


def test_patch_larger_than_image_minus_border():
    with pytest.raises(DataError, match="at least 20×20"):
        PatchSampler(np.zeros((19, 40)), patch_size=12, border=4)


def test_patch_covariance_of_white_noise_is_diagonal():
    images = np.random.default_rng(4).normal(0.0, 2.0, size=(2, 64, 64))
    covariance = patch_covariance(images, 3, 20000, np.random.default_rng(0))
    assert covariance.shape == (9, 9)
    np.testing.assert_allclose(covariance, 4.0 * np.eye(9), atol=0.25)


def test_sequences_are_one_window_drifting_over_one_image(coordinate_image):
    """Frame t of a sequence is the patch at start + t·speed·(cos α, sin α), rounded: every
    frame of one sequence differs from the first by a whole-pixel shift that grows with t."""
    sampler = PatchSampler(coordinate_image, patch_size=5, border=1)
    frames = sampler.sample_sequences(40, 6, 1.0, np.random.default_rng(3)).reshape(40, 6, 25)
    rows, columns = frames[..., 0] // 100, frames[..., 0] % 100   # top-left pixel of each
    shift = np.hypot(rows - rows[:, :1], columns - columns[:, :1])
    # |rounded path − true path| ≤ √2/2 per frame: the displacement tracks t·speed
    assert np.all(np.abs(shift - np.arange(6)) <= np.sqrt(2) / 2 + 1e-9)
    np.testing.assert_array_equal(frames[..., 1] - frames[..., 0], 1)   # still patches
    assert rows.min() >= 1 and rows.max() <= 20 - 1 - 5
    assert columns.min() >= 1 and columns.max() <= 24 - 1 - 5
    assert len({(r, c) for r, c in zip(rows[:, 0], columns[:, 0])}) > 10   # random starts


def test_a_sequence_path_that_does_not_fit_is_refused(coordinate_image):
    sampler = PatchSampler(coordinate_image, patch_size=5, border=4)
    with pytest.raises(DataError, match="drifting"):
        sampler.sample_sequences(1, 20, 1.0, np.random.default_rng(0))

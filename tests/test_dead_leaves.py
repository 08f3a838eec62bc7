"""Tests for plasticsim.model.stimuli.dead_leaves: determinism, spectrum, sparseness, input checks."""

import numpy as np
import pytest
import scipy.signal
import scipy.stats

from plasticsim.model.stimuli import dead_leaves
from plasticsim.model.stimuli.dead_leaves import dead_leaves_images
from plasticsim.model.stimuli.image_patches import ImageSourceSpec
from plasticsim.model.stimuli.images import whiten_olshausen_field

# The band in which the whitened spectrum of Olshausen & Field's own whitened images is flat
# (4–64 cycles per 512-pixel picture, i.e. 1/128–1/8 cycles/pixel): below it are a few
# picture-sized components, above it the optics' blur and the whitening's cut-off.
BAND_CYCLES_PER_PIXEL = (1 / 128, 1 / 8)


def radial_power(images):
    """Radially averaged power spectrum, in 1-cycle-per-picture bins, averaged over images."""
    _, height, width = images.shape
    power = np.abs(np.fft.fft2(images - images.mean(axis=(1, 2), keepdims=True))) ** 2
    frequency = np.hypot(np.fft.fftfreq(height)[:, None] * width, np.fft.fftfreq(width) * width)
    bins = np.round(frequency).astype(int).ravel()
    return (np.bincount(bins, power.mean(axis=0).ravel())
            / np.maximum(np.bincount(bins), 1)), width


def spectral_exponent(images):
    """α of a least-squares fit log P = c − α log f over BAND_CYCLES_PER_PIXEL."""
    power, width = radial_power(images)
    frequency = np.arange(power.size)
    band = (frequency >= BAND_CYCLES_PER_PIXEL[0] * width) & (
        frequency <= BAND_CYCLES_PER_PIXEL[1] * width)
    return -np.polyfit(np.log(frequency[band]), np.log(power[band]), 1)[0]


@pytest.fixture(scope="module")
def default_images():
    """The generator's defaults: the images of the image protocols (cached for their tests)."""
    return dead_leaves_images()


def test_same_seed_gives_identical_images_and_another_seed_does_not():
    first = dead_leaves_images(2, 96, seed=5)
    dead_leaves._cached.cache_clear()  # regenerate from scratch, not from the cache
    again = dead_leaves_images(2, 96, seed=5)
    other = dead_leaves_images(2, 96, seed=6)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 0.05
    assert not np.array_equal(first[0], first[1])  # the images of one seed differ


def test_the_cache_hands_out_copies():
    images = dead_leaves_images(1, 64, seed=2)
    images[:] = 0.0
    assert dead_leaves_images(1, 64, seed=2).std() > 0.01


def test_power_spectrum_falls_as_f_to_the_minus_two(default_images):
    alpha = spectral_exponent(default_images)
    assert 1.7 <= alpha <= 2.3, f"spectral exponent {alpha:.2f}"
    # The test can fail: without the blur and the small leaves the exponent leaves the range.
    assert spectral_exponent(dead_leaves_images(2, 256, min_radius=8.0, texture=0.0)) > 2.3


def test_whitened_filter_responses_are_heavy_tailed(default_images):
    whitened = whiten_olshausen_field(default_images)
    y, x = np.mgrid[-6:7, -6:7]
    kurtoses = []
    for angle in np.arange(4) * np.pi / 4:  # odd Gabor filters, wavelength 6 px, 4 orientations
        along = x * np.cos(angle) + y * np.sin(angle)
        gabor = np.exp(-(x**2 + y**2) / (2 * 2.0**2)) * np.sin(2 * np.pi * along / 6)
        responses = [scipy.signal.fftconvolve(image, gabor, mode="valid") for image in whitened]
        kurtoses.append(scipy.stats.kurtosis(np.ravel(responses), fisher=False))
    # Gaussian images give 3; Olshausen & Field's whitened images give 7–11 with these filters.
    assert min(kurtoses) > 4.0, kurtoses


def test_pictures_have_luminances_in_range_and_no_holes():
    images = dead_leaves_images(1, 128, seed=3, shading=0.0, texture=0.0, blur=0.0,
                                supersample=1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    # Without shading and blur every pixel is one leaf's luminance: few distinct values.
    assert np.unique(images).size < images.size / 4


@pytest.mark.parametrize("arguments", [
    {"min_radius": 0.0}, {"min_radius": 5.0, "max_radius": 2.0}, {"max_aspect": 0.5},
    {"blur": -1.0}, {"n_images": 0}, {"supersample": 0}])
def test_bad_arguments_raise(arguments):
    with pytest.raises(ValueError):
        dead_leaves_images(**{"n_images": 1, "size": 32, **arguments})


def test_generator_keys_belong_to_the_dead_leaves_source():
    with pytest.raises(ValueError, match="dead_leaves"):
        ImageSourceSpec(kind="skimage", blur=1.0)

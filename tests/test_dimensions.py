"""Named dimensions in results files and the xarray view (plasticsim.io.dimensions)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from conftest import BUILTIN_IMAGES

xarray = pytest.importorskip("xarray")
pytest.importorskip("h5netcdf")

SHORT_1D = ["schedule.samples=10000", "record.every=2000"]
SHORT_IMAGES = BUILTIN_IMAGES[:1] + ["schedule.samples=4000", "schedule.warmup_samples=1000",
                                     "record.every=2000",
                                     "stimuli.input.covariance_samples=5000"]


def _datasets(path) -> dict:
    """Every dataset of the file but the dimension scales: path → value."""
    found = {}
    with h5py.File(path, "r") as file:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and item.attrs.get("CLASS") != b"DIMENSION_SCALE":
                found[name] = item[()]
        file.visititems(visit)
    return found


def _groups(path) -> list:
    groups = [None]
    with h5py.File(path, "r") as file:
        file.visititems(lambda name, item: groups.append(name)
                        if isinstance(item, h5py.Group) else None)
    return groups


@pytest.fixture(scope="module", params=["1d", "images"])
def results(request, run_protocol):
    if request.param == "1d":
        return run_protocol("linsker1992_1d.yaml", *SHORT_1D)
    return run_protocol("linsker_image_patches.yaml", *SHORT_IMAGES)


def test_netcdf_readers_see_named_dimensions(results):
    for group in _groups(results.path):
        with xarray.open_dataset(results.path, engine="h5netcdf", group=group) as dataset:
            phony = [name for name in dataset.sizes if str(name).startswith("phony_dim")]
            assert not phony, (group, phony)
    with xarray.open_dataset(results.path, engine="h5netcdf", group="weights") as weights:
        assert weights["feedforward"].dims == ("output", "input")
        np.testing.assert_array_equal(weights["feedforward"].values,
                                      results.weights["feedforward"])
    with xarray.open_dataset(results.path, engine="h5netcdf", group="metrics") as metrics:
        assert metrics["mutual_information_bits"].dims == ("record",)
        assert metrics["mutual_information_bits"].attrs["units"] == "bit"


def test_to_xarray_round_trips_every_dataset(results):
    dataset = results.to_xarray()
    stored = _datasets(results.path)
    assert stored
    for path, value in stored.items():
        if isinstance(value, np.ndarray) and value.dtype.names:
            for field in value.dtype.names:
                np.testing.assert_array_equal(dataset[f"{path}.{field}"].values, value[field])
        elif isinstance(value, bytes):
            assert dataset[path].values.item() == value.decode()
        else:
            np.testing.assert_array_equal(dataset[path].values, value, err_msg=path)
    names = {f"{p}.{f}" if v.dtype.names else p for p, v in stored.items()
             if isinstance(v, np.ndarray) and v.dtype.names for f in v.dtype.names}
    names |= {p for p, v in stored.items() if not (isinstance(v, np.ndarray) and v.dtype.names)}
    assert set(dataset.data_vars) == names
    assert not [d for d in dataset.sizes if "phony" in str(d) or "_dim" in str(d)]
    np.testing.assert_array_equal(dataset["record"].values, results.steps)
    assert dataset["record"].attrs["units"] == "samples"
    if results.spec.record.weights:
        assert dataset["history/weights/feedforward"].dims == ("record", "output", "input")
    assert dataset["weights/lateral/F_sensing"].dims == ("output", "output_pre")
    assert dataset["analysis/optimum/weights"].dims == ("output", "input")
    assert dataset.attrs["complete"] == 1
    # The labelled view computes like any xarray: the last record of the MI series is the
    # one the summary reports.
    last = dataset["metrics/mutual_information_bits"].isel(record=-1).item()
    assert last == pytest.approx(results.summary["mutual_information_bits"], rel=1e-12)


def test_recorded_activities_are_the_populations_activity(run_protocol):
    results = run_protocol("linsker1992_1d.yaml", "schedule.samples=40000", "record.every=1000",
                           "record.activities=true")
    records = len(results.steps)
    assert results.activities["input"].shape == (records, 10, 32)
    assert results.activities["output"].shape == (records, 10, 8)
    # The input's activity is the stimulus: signal variance 1 plus input noise 0.1 per site
    # in a sensing step, the noise alone in a noise-unlearning step. Every record falls on
    # the same step of the phase cycle, so the pooled power is one of the two.
    power = float((results.activities["input"][1:] ** 2).mean())
    assert power == pytest.approx(1.1, rel=0.1) or power == pytest.approx(0.1, rel=0.1), power
    assert np.isfinite(results.activities["output"]).all()
    assert not np.array_equal(results.activities["output"][1], results.activities["output"][2])
    dataset = results.to_xarray()
    assert dataset["activities/output"].dims == ("record", "sample", "output")

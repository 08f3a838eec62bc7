"""docs/results.md names everything the results reader requires and a reference run writes."""

import json
from pathlib import Path

import h5py
import pytest

import plasticsim
from plasticsim.analysis.gabor import TABLE_COLUMNS
from plasticsim.io import output, results
from plasticsim.sweep import SWEEP_NAME

DOC = (Path(__file__).resolve().parents[1] / "docs" / "results.md").read_text(encoding="utf-8")


def test_every_name_check_contract_requires_is_documented():
    names = (results.REQUIRED_ATTRIBUTES + results.REQUIRED_ENTRIES + results.GROUPS
             + results.REQUIRED_WHEN_COMPLETE)
    missing = [name for name in names if f"`{name}`" not in DOC and f"`/{name}`" not in DOC
               and f"`/{name}/" not in DOC]
    assert not missing, f"docs/results.md does not mention {missing}"


def test_every_run_file_and_gabor_column_is_documented():
    names = output.RUN_FILES + (output.INDEX_NAME, output.STAGING_NAME, output.JOURNAL_NAME,
                                output.FIGURES_MANIFEST, SWEEP_NAME)
    assert not [name for name in names if name not in DOC]
    assert not [column for column in TABLE_COLUMNS if f"`{column}`" not in DOC]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    plasticsim.run("protocols/linsker1992_1d.yaml", out, progress=False, figures=False,
                   overrides=["schedule.samples=2000", "schedule.warmup_samples=0",
                              "record.every=1000"])
    return out


def test_every_metric_summary_key_and_attribute_of_a_run_is_documented(reference_run):
    """A new metric, summary key or root attribute of the 1-D protocol must be documented."""
    with h5py.File(reference_run / "results.h5", "r") as file:
        metrics = list(file["metrics"])
        attributes = list(file.attrs)
        top = [name for name, item in file.items() if isinstance(item, h5py.Group)]
    summary = json.loads((reference_run / "summary.json").read_text())
    undocumented = [name for name in metrics + list(summary) + attributes + top
                    if f"`{name}`" not in DOC and f"`/{name}" not in DOC
                    and f"`/{name}/" not in DOC]
    assert metrics and summary
    assert not undocumented, f"docs/results.md does not mention {undocumented}"

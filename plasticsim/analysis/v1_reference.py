"""Reference receptive-field statistics of macaque V1, for comparison with learned fields.

The (nx, ny) histogram ships with the package (``plasticsim/data/ringach2002_nxny.csv``); it
is a transcription of the binned Ringach (2002) data used by VOneNet, not Ringach's own file.
The literature medians below are quoted with their source and how sure we are of them.
"""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np

from plasticsim.errors import DataError

RINGACH2002_FILE = "ringach2002_nxny.csv"

#: Published population medians. ``status`` says how far each value has been checked.
V1_LITERATURE_MEDIANS = {
    "orientation_halfwidth_deg": {
        "value": 23.5,
        "description": "orientation tuning half-width at half height, 308 cells",
        "source": "Ringach, Shapley & Hawken (2002) J Neurosci 22:5639",
        "status": "as commonly quoted; not re-checked against the paper",
    },
    "sf_bandwidth_octaves": {
        "value": 1.4,
        "description": "spatial-frequency bandwidth, full width at half height",
        "source": "De Valois, Albrecht & Thorell (1982) Vision Res 22:545",
        "status": "from memory, unverified",
    },
    "blob_like_fraction": {
        "value": 0.24,
        "description": "fraction of cells with nx < 0.30 and ny < 0.30",
        "source": "Ringach (2002) J Neurophysiol 88:455, via the VOneNet histogram "
                  "(load_ringach2002)",
        "status": "computed from the transcribed histogram (19 of 79 cells)",
    },
}


def load_ringach2002() -> tuple[np.ndarray, np.ndarray]:
    """Joint (nx, ny) histogram of 79 macaque V1 simple cells (Ringach 2002, via VOneNet).

    Returns
    -------
    edges : numpy.ndarray
        The 6 bin edges shared by nx and ny (log-spaced, 0.1 to 1.585).
    counts : numpy.ndarray
        Integer counts, shape (5, 5); rows are nx bins and columns ny bins, as returned by
        :func:`plasticsim.analysis.gabor.nxny_histogram`.

    Raises
    ------
    DataError
        If the packaged file is missing or malformed (a broken installation).

    Examples
    --------
    >>> edges, counts = load_ringach2002()
    >>> int(counts.sum())
    79
    """
    resource = resources.files("plasticsim") / "data" / RINGACH2002_FILE
    try:
        lines = resource.read_text(encoding="utf-8").splitlines()
        rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
        nx_low = np.array([float(row["nx_lo"]) for row in rows])
        ny_low = np.array([float(row["ny_lo"]) for row in rows])
        edges = np.append(np.unique(nx_low), max(float(row["nx_hi"]) for row in rows))
        counts = np.zeros((len(edges) - 1, len(edges) - 1), dtype=np.int64)
        rows_index = np.searchsorted(edges, nx_low)
        columns_index = np.searchsorted(edges, ny_low)
        counts[rows_index, columns_index] = [int(row["count"]) for row in rows]
    except (OSError, KeyError, ValueError, IndexError) as error:
        raise DataError(f"{resource}: cannot read the packaged Ringach (2002) histogram "
                        f"({error}); expected columns nx_lo,nx_hi,ny_lo,ny_hi,count") from error
    if len(rows) != counts.size or not np.all(np.isin(ny_low, edges[:-1])):
        raise DataError(f"{resource}: expected {counts.size} rows on one shared grid of nx "
                        f"and ny bins; got {len(rows)} rows")
    return edges, counts

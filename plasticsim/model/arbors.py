"""Arbor connectivity: each unit of a 2-D sheet connects only to the inputs near it.

Linsker (1986) gives every cell of layer M synapses on layer M−1 drawn from a Gaussian
density around its own position, A(d) ∝ exp(−d²/r²) (1/e at the arbor radius r), with no
synapse beyond a cutoff. On a grid of presynaptic cells the projection then has a fixed
*arbor matrix*: row i holds A over the presynaptic cells in unit i's arbor (summing to 1, the
part of Linsker's 1/N) and 0 elsewhere. Rules that support arbors
(:mod:`plasticsim.model.rules.linsker1986`) learn only inside it; the same density is
:func:`plasticsim.analysis.mackay_miller.gaussian_arbor`, which the analysis uses.

Both populations are square sheets (size s², row-major); a post unit at (i, j) of an s_post
sheet sits at (i·s, j·s) of the pre sheet, s = s_pre / s_post (an integer). ``periodic``
sheets wrap around (a torus: every cell sees the same surround, as in an infinite layer);
otherwise arbors are cut at the edges.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import model_validator

from ..schema import PositiveFinite, Spec


class ArborSpec(Spec):
    """A Gaussian arbor: density ∝ exp(−d²/``radius``²) for d ≤ ``cutoff``·``radius`` (in
    presynaptic grid units), on ``periodic`` (toroidal) or bounded sheets."""

    radius: PositiveFinite
    cutoff: PositiveFinite = 2.0
    periodic: bool = True

    @model_validator(mode="after")
    def _reaches_a_neighbour(self):
        if self.cutoff * self.radius < 1.0:
            raise ValueError(f"cutoff × radius = {self.cutoff * self.radius:g} < 1: the arbor "
                             "holds only the cell below, which is no arbor")
        return self


def sheet_side(size: int) -> int | None:
    """The side s of a square sheet of ``size`` = s² units, or None."""
    side = math.isqrt(int(size))
    return side if side * side == size else None


def arbor_matrix(spec: ArborSpec, pre_size: int, post_size: int) -> np.ndarray:
    """The arbor density of every post unit over the pre sheet, shape (post, pre).

    Rows sum to 1 (each over the grid points within the cutoff).

    Raises
    ------
    ValueError
        Sizes that are not squares, a post sheet that does not divide the pre sheet, or an
        arbor wider than a periodic sheet (it would reach a cell twice).
    """
    pre_side, post_side = sheet_side(pre_size), sheet_side(post_size)
    if pre_side is None or post_side is None:
        raise ValueError(f"arbors need square sheets; sizes {pre_size} and {post_size} are "
                         "not both squares")
    if pre_side % post_side:
        raise ValueError(f"the post sheet ({post_side}×{post_side}) must divide the pre sheet "
                         f"({pre_side}×{pre_side})")
    stride = pre_side // post_side
    extent = int(np.floor(spec.cutoff * spec.radius))
    if spec.periodic and 2 * extent + 1 > pre_side:
        raise ValueError(f"an arbor of extent {extent} (cutoff × radius) spans "
                         f"{2 * extent + 1} cells, more than the periodic {pre_side}×"
                         f"{pre_side} sheet: it would reach cells twice")
    offsets = np.arange(-extent, extent + 1)
    rows, columns = np.meshgrid(offsets, offsets, indexing="ij")
    distance2 = rows ** 2 + columns ** 2
    inside = distance2 <= (spec.cutoff * spec.radius) ** 2 + 1e-9
    density = np.exp(-distance2 / spec.radius ** 2) * inside
    matrix = np.zeros((post_size, pre_size))
    for post_row in range(post_side):
        for post_column in range(post_side):
            target_rows = post_row * stride + rows
            target_columns = post_column * stride + columns
            keep = inside.copy()
            if spec.periodic:
                target_rows, target_columns = target_rows % pre_side, target_columns % pre_side
            else:
                keep &= ((target_rows >= 0) & (target_rows < pre_side)
                         & (target_columns >= 0) & (target_columns < pre_side))
            row = matrix[post_row * post_side + post_column]
            row[target_rows[keep] * pre_side + target_columns[keep]] = density[keep]
            row /= row.sum()
    return matrix

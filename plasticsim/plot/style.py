"""The house style of plasticsim's figures, applied per figure (never globally)."""

from __future__ import annotations

import functools

import matplotlib
from matplotlib.figure import Figure

#: rcParams applied while a figure is drawn (a context, not a global change).
STYLE = {"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
         "font.size": 9}
LEARNED, OPTIMAL = "#1f5fa8", "#d1495b"


def styled(function):
    """Draw inside ``matplotlib.rc_context(STYLE)``: the style reaches the figure only."""
    @functools.wraps(function)
    def wrapper(*arguments, **keywords):
        with matplotlib.rc_context(STYLE):
            return function(*arguments, **keywords)
    return wrapper


def subplots(rows: int = 1, columns: int = 1, *, figsize=None, layout=None, **keywords):
    """A new :class:`Figure` (no pyplot state) and its axes, like ``pyplot.subplots``."""
    figure = Figure(figsize=figsize, layout=layout, dpi=STYLE["figure.dpi"])
    axes = figure.subplots(rows, columns, **keywords)
    return figure, axes


def save(figure: Figure, path, dpi=None):
    """Write a figure (PNG from the suffix) and return its path."""
    figure.savefig(path, bbox_inches="tight", dpi=dpi)
    return path

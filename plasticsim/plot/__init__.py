"""Figures, rendered from results files (never from a live simulation).

Every plotting function returns a :class:`matplotlib.figure.Figure` built without pyplot and
inside :func:`plasticsim.plot.style.styled`, so importing or calling them never switches
matplotlib's backend or changes global rcParams (inline plots in Jupyter keep working).
"""

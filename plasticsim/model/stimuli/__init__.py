"""Stimuli: sources of per-sample input for one or more input populations.

Each module registers a stimulus spec class (selected by ``kind``) and a builder that
declares its random stream(s), the exact covariances the analysis needs (where known) and
what the results file keeps about it.
"""

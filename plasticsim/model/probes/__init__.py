"""Probes: measurements on a trained network through the engine (no plasticity), declared in
the protocol's ``probes:`` block and stored in the results file for the analysis to read."""

"""Neuron models: what a population computes from its inputs in one step.

Each module registers a population spec class (selected by the population's ``kind``) and a
builder. Projections from another population sum into a population's drive (or feed its
inference); a projection from a population to itself is part of that population's recurrent
dynamics (lateral settling, LCA competition, spiking inhibition).
"""

"""Plasticity rules: one module per rule, each a spec class (selected by ``rule.kind``) plus a
builder that emits the rule's operations into the step plan."""

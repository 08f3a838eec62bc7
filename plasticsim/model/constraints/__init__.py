"""Weight constraints on a projection (one module per family, each registering its kinds)."""

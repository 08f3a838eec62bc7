"""plasticsim: simulation engine for biologically plausible plasticity."""

__version__ = "0.1.0"


def run(*args, **kwargs):
    """Run a protocol; see :func:`plasticsim.run.run`."""
    from .run import run as _run
    return _run(*args, **kwargs)


def load(path):
    """Read a results file; see :func:`plasticsim.results.load`."""
    from .results import load as _load
    return _load(path)


def load_protocol(path, overrides=None):
    """Load and validate a protocol YAML file; see :func:`plasticsim.loading.load_protocol`."""
    from .loading import load_protocol as _load_protocol
    return _load_protocol(path, overrides)

"""plasticsim: simulation engine for biologically plausible plasticity.

>>> import plasticsim
>>> results = plasticsim.run("protocols/linsker1992_1d.yaml", "results/ref")  # doctest: +SKIP
>>> again = plasticsim.load("results/ref/results.h5")                         # doctest: +SKIP
"""

__version__ = "0.1.0"

# Imported eagerly so that the names ``plasticsim.run`` and ``plasticsim.load`` are the
# functions, not the submodules of the same name.
from .loading import load_protocol  # noqa: E402
from .results import load  # noqa: E402
from .run import run  # noqa: E402

__all__ = ["run", "load", "load_protocol", "__version__"]

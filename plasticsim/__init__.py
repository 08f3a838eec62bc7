"""plasticsim: simulation engine for biologically plausible plasticity.

>>> import plasticsim
>>> results = plasticsim.run("protocols/linsker1992_1d.yaml", "results/ref")  # doctest: +SKIP
>>> again = plasticsim.load("results/ref/results.h5")                         # doctest: +SKIP
"""

from .version import __version__  # noqa: E402,F401

# Imported eagerly so that the names ``plasticsim.run`` and ``plasticsim.load`` are the
# functions, not the submodules of the same name.
from .run import resume  # noqa: E402
from .io.results import load  # noqa: E402
from .run import run  # noqa: E402
from .spec.loading import load_protocol  # noqa: E402
from .sweep import load_sweep, sweep  # noqa: E402

__all__ = ["run", "resume", "sweep", "load_sweep", "load", "load_protocol", "__version__"]

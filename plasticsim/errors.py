"""Errors that reach the user as one readable line.

Every error a user can cause (a bad YAML key, a missing file, an unavailable backend, a
diverging simulation) is a :class:`PlasticsimError`. The command line prints ``str(error)``
and exits with ``error.exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class PlasticsimError(Exception):
    """Base class for errors caused by input, data or the simulation itself.

    Attributes
    ----------
    exit_code : int
        Process exit status the command line uses for this error.
    """

    exit_code = 2


class SpecError(PlasticsimError):
    """A model or protocol description is invalid.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    file : str, optional
        The YAML file the offending value came from (or ``"--set"`` for an override).
    line : int, optional
        1-based line number in ``file``.
    key_path : str, optional
        Dotted path of the offending key, e.g. ``"schedule.samples"``.
    """

    def __init__(self, message: str, file: str | None = None, line: int | None = None,
                 key_path: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.key_path = key_path
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file:
            where = str(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        key = f"{self.key_path}: " if self.key_path else ""
        return f"{where}{key}{self.message}"


class DataError(PlasticsimError):
    """An input data file is missing, unreadable or has the wrong shape or content."""


class BackendUnavailable(PlasticsimError):
    """A requested backend cannot run here (package missing, no device, unsupported feature)."""


class OutputExistsError(PlasticsimError):
    """The output directory exists and ``overwrite`` was not requested."""


class ConvergenceError(PlasticsimError):
    """A bounded numerical search (an optimum, a root) stopped without an answer: the figure
    it was to give is not finite, so the run is treated like a divergence."""

    exit_code = 3


class SimulationDiverged(PlasticsimError):
    """The simulation produced a non-finite value or an unstable lateral network.

    Parameters
    ----------
    step : int
        Sample index at which the problem was detected.
    quantity : str
        Name of the offending quantity (e.g. ``"spectral_radius(F)"``).
    value : float
        Its value.
    """

    exit_code = 3

    def __init__(self, step: int, quantity: str, value: float, detail: str = ""):
        self.step = step
        self.quantity = quantity
        self.value = value
        text = f"simulation diverged at step {step}: {quantity} = {value:.6g}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)

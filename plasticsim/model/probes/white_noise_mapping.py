"""White-noise mapping of receptive fields through the whole network.

For a network whose units interact laterally, the feedforward weights are not the receptive
field: what a unit responds to also depends on whom it inhibits. This probe measures it as an
experimenter would: it shows ``samples`` white-noise inputs to the ``input`` population, runs
the network's drive and inference (no plasticity, no output noise) and regresses each unit's
response on the pixels (least squares; for white probes this equals the spike-triggered
average divided by the probe variance). The fields go to ``/receptive_fields/<population>``.

White noise at the training patches' pixel variance drives a learned spiking unit far less
than the natural patches it is tuned to (its power is spread over every orientation and
frequency), so the units barely cross their thresholds and the map is mostly noise. With
``variance: calibrated`` the probe amplitude is therefore set (:func:`calibrate_probe_variance`)
so that the units fire at their homeostatic target rate p on average, as they do on natural
patches.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np


from ...errors import DataError
from ...schema import PositiveFinite, SampleCount, Size, Spec
from ..registry import register_probe


class WhiteNoiseMappingSpec(Spec):
    """Least-squares receptive fields of ``population`` from white-noise inputs.

    ``input``: the population the probes are shown to (default: the one input population
    upstream). ``variance``: pixel variance of the probes, or ``calibrated`` (the population's
    homeostatic target rate, spiking units only).
    """

    kind: Literal["white_noise_mapping"] = "white_noise_mapping"
    population: str
    input: str | None = None
    samples: SampleCount = 20000
    variance: PositiveFinite | Literal["calibrated"] = "calibrated"
    batch_size: Size = 1000


def map_receptive_fields(respond: Callable[[np.ndarray], np.ndarray], n_pixels: int,
                         n_probes: int, rng: np.random.Generator,
                         probe_variance: float = 0.1, batch_size: int = 1000) -> np.ndarray:
    """Least-squares linear receptive fields from white-noise probes.

    Parameters
    ----------
    respond : callable
        Maps probes (batch × pixels) to responses (batch × units), e.g. spike counts; it
        must not learn.
    n_pixels : int
        Pixels per probe.
    n_probes : int
        Number of white-noise probes (at least ``n_pixels + 1``).
    rng : numpy.random.Generator
        Draws the probes.
    probe_variance : float, default 0.1
        Pixel variance of the Gaussian probes.
    batch_size : int, default 1000
        Probes per call of ``respond``.

    Returns
    -------
    numpy.ndarray
        Fields, shape (units, pixels): the regression weights of each unit's response on
        the pixels (mean response removed).

    Examples
    --------
    >>> kernel = np.random.default_rng(1).normal(size=(3, 16))
    >>> fields = map_receptive_fields(lambda x: x @ kernel.T, 16, 400,
    ...                               np.random.default_rng(0))
    >>> bool(np.allclose(fields, kernel))
    True
    """
    if n_probes <= n_pixels:
        raise DataError(f"white-noise mapping needs more probes ({n_probes}) than pixels "
                        f"({n_pixels})")
    probes, responses = [], []
    for start in range(0, n_probes, batch_size):
        batch = rng.normal(0.0, np.sqrt(probe_variance),
                           size=(min(batch_size, n_probes - start), n_pixels))
        probes.append(batch)
        responses.append(np.asarray(respond(batch), dtype=np.float64))
    probes, responses = np.concatenate(probes), np.concatenate(responses)
    probes -= probes.mean(axis=0)
    responses -= responses.mean(axis=0)
    fields, *_ = np.linalg.lstsq(probes, responses, rcond=None)
    return fields.T


def calibrate_probe_variance(respond, n_pixels: int, target_rate: float,
                             rng: np.random.Generator, start_variance: float = 1.0,
                             n_probes: int = 2000, iterations: int = 12) -> float:
    """Pixel variance of white-noise probes at which the units fire ``target_rate`` on average.

    Bisection on the probe standard deviation (doubling from ``start_variance`` until the
    mean spike count per unit and probe reaches the target, then halving the bracket);
    the same ``n_probes`` probes, rescaled, are used throughout, so the rate is monotone in
    the amplitude.

    Returns
    -------
    float
        The probe variance (the largest tried, 2¹⁰·``start_variance``, if even that leaves
        the units below the target).

    Examples
    --------
    >>> threshold_unit = lambda x: (x[:, :1] > 1.645).astype(float)  # P(N(0,1) > 1.645) = 0.05
    >>> variance = calibrate_probe_variance(threshold_unit, 4, 0.05, np.random.default_rng(0))
    >>> bool(0.8 < variance < 1.25)
    True
    """
    noise = rng.standard_normal((n_probes, n_pixels))

    def rate(sd: float) -> float:
        return float(np.mean(respond(noise * sd)))

    low = high = np.sqrt(start_variance)
    if rate(high) >= target_rate:
        while rate(low) >= target_rate and low > 1e-3 * np.sqrt(start_variance):
            low /= 2.0
        high = 2.0 * low
    else:
        while rate(high) < target_rate and high < 2.0**5 * np.sqrt(start_variance):
            low, high = high, 2.0 * high
        if rate(high) < target_rate:
            return float(high**2)
    for _ in range(iterations):
        middle = np.sqrt(low * high)
        if rate(middle) < target_rate:
            low = middle
        else:
            high = middle
    return float(np.sqrt(low * high) ** 2)


@register_probe(WhiteNoiseMappingSpec)
def build_white_noise_mapping(name, spec, ctx) -> dict:
    """Check the probe against the graph; return what :func:`run_white_noise_mapping` needs."""
    key = f"probes.{name}"
    population = ctx.population_named(spec.population, f"{key}.population")
    source = ctx.upstream_input(population, spec.input, f"{key}.input")
    if spec.samples <= source.size:
        ctx.error(f"{key}.samples", f"white-noise mapping needs more probes ({spec.samples}) "
                  f"than input units ({source.size})")
    target_rate = None
    if spec.variance == "calibrated":
        homeostasis = getattr(population.spec, "homeostasis", None)
        if homeostasis is None:
            ctx.error(f"{key}.variance", "variance: calibrated sets the probe amplitude so "
                      "that the units fire at their homeostatic target rate; "
                      f"{population.name!r} has none: give the probe variance as a number")
        target_rate = homeostasis.target_rate
    start = 1.0
    signal = source.exact_signal_covariance
    if signal is not None:
        start = float(np.mean(np.diag(signal)))
    return {"run": run_white_noise_mapping, "population": population.name,
            "input": source.name, "input_size": source.size, "target_rate": target_rate,
            "start_variance": start, "patch_shape": getattr(source, "patch_shape", None)}


def run_white_noise_mapping(spec, plan_entry: dict, respond, rng: np.random.Generator) -> dict:
    """Calibrate (if asked) and map; returns results-file arrays and attributes."""
    population, source = plan_entry["population"], plan_entry["input"]

    def response(probes):
        return respond({source: probes}, population)

    if spec.variance == "calibrated":
        variance = calibrate_probe_variance(response, plan_entry["input_size"],
                                            plan_entry["target_rate"], rng,
                                            start_variance=plan_entry["start_variance"])
    else:
        variance = float(spec.variance)
    fields = map_receptive_fields(response, plan_entry["input_size"], spec.samples, rng,
                                  variance, spec.batch_size)
    shape = plan_entry["patch_shape"]
    if shape is not None:
        fields = fields.reshape((-1,) + tuple(shape))
    return {"path": f"receptive_fields/{population}", "array": fields,
            "attributes": {"method": "white_noise_mapping", "probe_variance": variance,
                           "probes": spec.samples}}

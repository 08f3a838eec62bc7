"""What a gated network sends: alignment with the shared source, information, redundancy.

Used by the shared-latent experiment (E1): the basal stream is
x = √v_s B s + √v_d D d + √σ_n² ξ and the units send z = C x + ν (the basal output, before
the gate: it is what the feedforward weights C determine and what the output-power
constraint fixes, so variants are compared at the same output power).

Estimator
---------
Information is the **Gaussian (second-moment) estimate** in bits,

    I(z; u) = ½ log₂ det Σ_z − ½ log₂ det(Σ_z − Σ_zu Σ_u⁻¹ Σ_uz),

computed in closed form from C and the stimulus's known covariances (no sampling error).
It is the exact mutual information when the sources are Gaussian; for Laplace sources it is
the information available to a linear decoder (−½ log₂ of the fraction of the source's
variance that the best linear readout of z leaves unexplained), not the full MI.
Redundancy about u is Σ_i I(z_i; u) − I(z; u) (bits): zero for outputs that carry
independent parts of u, positive when they repeat each other.

These functions read arrays or results files, never a live simulation.
"""

from __future__ import annotations

import numpy as np

BITS_PER_NAT = 1.0 / np.log(2.0)


def subspace_alignment(C: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """|cos| between each row c_i of C and the subspace spanned by ``basis``'s columns.

    ‖P c_i‖ / ‖c_i‖ with P the orthogonal projector onto the subspace (1: inside it,
    0: orthogonal to it).

    Parameters
    ----------
    C : ndarray, shape (M, N)
    basis : ndarray, shape (N, k)
        Orthonormal columns.

    Returns
    -------
    ndarray, shape (M,)

    Examples
    --------
    >>> subspace_alignment(np.array([[1.0, 1.0]]), np.array([[1.0], [0.0]]))
    array([0.70710678])
    """
    projected = C @ basis
    return np.linalg.norm(projected, axis=1) / np.maximum(np.linalg.norm(C, axis=1), 1e-300)


def gaussian_information_bits(C: np.ndarray, input_covariance: np.ndarray,
                              input_source_covariance: np.ndarray,
                              source_covariance: np.ndarray,
                              output_noise_variance: float) -> float:
    """Gaussian estimate of I(z; u) in bits for z = C x + ν (see the module docstring).

    Parameters
    ----------
    C : ndarray, shape (M, N)
    input_covariance : ndarray, shape (N, N)
        Cov(x).
    input_source_covariance : ndarray, shape (N, k)
        Cov(x, u).
    source_covariance : ndarray, shape (k, k)
        Cov(u).
    output_noise_variance : float
        σ_ν² of the white output noise ν.
    """
    output_covariance = C @ input_covariance @ C.T + output_noise_variance * np.eye(C.shape[0])
    cross = C @ input_source_covariance
    residual = output_covariance - cross @ np.linalg.solve(source_covariance, cross.T)
    _, logdet_output = np.linalg.slogdet(output_covariance)
    _, logdet_residual = np.linalg.slogdet(residual)
    return 0.5 * (logdet_output - logdet_residual) * BITS_PER_NAT


def shared_latent_report(C: np.ndarray, stimulus: dict, output_noise_variance: float) -> dict:
    """Alignment, information and redundancy of weights C on a shared-latent stimulus.

    Parameters
    ----------
    C : ndarray, shape (M, N)
        Feedforward weights on the basal stream.
    stimulus : dict
        What the results file stores under ``/stimulus/<basal population>``:
        ``shared_basis`` B, ``distractor_basis`` D, ``signal_covariance``,
        ``noise_covariance``, and the attributes ``shared_variance``,
        ``distractor_variance`` (the source variances).
    output_noise_variance : float

    Returns
    -------
    dict
        ``alignment_shared`` / ``alignment_distractor`` (mean over units of the |cos| with
        each subspace), ``bits_shared`` / ``bits_distractor`` (Gaussian estimate, all units
        together), ``redundancy_shared_bits``, ``bits_shared_per_unit``,
        ``mean_output_power`` (c_i q_L c_iᵀ averaged over units).
    """
    C = np.asarray(C, dtype=float)
    input_covariance = np.asarray(stimulus["signal_covariance"]) + np.asarray(
        stimulus["noise_covariance"])
    bases = {"shared": np.asarray(stimulus["shared_basis"]),
             "distractor": np.asarray(stimulus["distractor_basis"])}
    sources = {name: (np.sqrt(float(stimulus[f"{name}_variance"])) * basis,
                      np.eye(basis.shape[1])) for name, basis in bases.items()}
    report = {}
    for name, (cross, source_covariance) in sources.items():
        report[f"alignment_{name}"] = float(subspace_alignment(C, bases[name]).mean())
        report[f"bits_{name}"] = gaussian_information_bits(C, input_covariance, cross,
                                                           source_covariance,
                                                           output_noise_variance)
    per_unit = np.array([gaussian_information_bits(C[i:i + 1], input_covariance,
                                                   sources["shared"][0],
                                                   sources["shared"][1],
                                                   output_noise_variance)
                         for i in range(C.shape[0])])
    report["bits_shared_per_unit"] = per_unit
    report["redundancy_shared_bits"] = float(per_unit.sum() - report["bits_shared"])
    report["mean_output_power"] = float(np.mean(np.einsum("ij,jk,ik->i", C, input_covariance,
                                                          C)))
    return report


def shared_latent_results_report(results) -> dict:
    """:func:`shared_latent_report` of a results file's final weights, plus the alignment
    history (``steps``, ``alignment_shared_history``) from its weight snapshots.

    Reads the stimulus's embeddings and covariances from ``/stimulus/<basal population>``.
    """
    basal = next(name for name, attributes in results.stimulus_attributes.items()
                 if attributes.get("kind") == "shared_latent")
    stimulus_spec = next(s for s in results.spec.stimuli.values() if s.kind == "shared_latent")
    stimulus = dict(results.stimulus[basal])
    stimulus["shared_variance"] = stimulus_spec.shared_variance
    stimulus["distractor_variance"] = stimulus_spec.distractor_variance
    projection = next(name for name, p in results.spec.model.projections.items()
                      if p.rule.kind == "linsker_two_phase" and p.pre == basal)
    post = results.spec.model.projections[projection].post
    noise = results.spec.model.populations[post].output_noise_variance
    report = shared_latent_report(results.weights[projection], stimulus, noise)
    history = results.history.get(projection)
    if history is not None and len(history):
        report["steps"] = np.asarray(results.steps)
        report["alignment_shared_history"] = np.array(
            [subspace_alignment(C, stimulus["shared_basis"]).mean() for C in history])
    return report

"""Specs: validated, frozen descriptions of models and protocols, and loading them from YAML.

>>> from plasticsim.spec import load_protocol
>>> spec = load_protocol("protocols/linsker1992_1d.yaml")       # doctest: +SKIP
"""

from .ensemble import EnsembleMember, expand_ensemble
from .loading import apply_overrides, load_protocol, protocol_from_document, spec_to_yaml
from .model import InitSpec, ModelSpec, ProjectionSpec
from .protocol import ProtocolSpec

__all__ = ["EnsembleMember", "InitSpec", "ModelSpec", "ProjectionSpec", "ProtocolSpec",
           "apply_overrides", "expand_ensemble", "load_protocol", "protocol_from_document",
           "spec_to_yaml"]

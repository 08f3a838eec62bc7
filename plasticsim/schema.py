"""The base of every spec class: frozen pure data, unknown keys are errors.

Component modules (:mod:`plasticsim.model`) define their own spec classes on this base;
:mod:`plasticsim.spec` assembles them into the model and protocol schema.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Base for every spec object: unknown keys are errors and objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ value types
# Values the engine can use: finite numbers in a meaningful range. Each type's constraint is
# stated by pydantic in the error message (e.g. "Input should be greater than 0").
from typing import Annotated  # noqa: E402

from pydantic import Field  # noqa: E402

#: A finite number > 0.
PositiveFinite = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
#: A finite number ≥ 0.
NonNegativeFinite = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
#: A finite number.
Finite = Annotated[float, Field(allow_inf_nan=False)]
#: A variance that may be zero (e.g. no output noise).
Variance0 = NonNegativeFinite
#: A rate per sample or per batch, in (0, 1] (running averages).
AveragingRate = Annotated[float, Field(gt=0.0, le=1.0)]

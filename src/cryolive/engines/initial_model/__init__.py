"""De novo initial model(s) from particles without a reference: stochastic gradient descent
on minibatches at an annealed resolution limit, one or several classes, Cn/Dn symmetry."""

from cryolive.engines.initial_model._sgd import (
    InitialModelResult,
    centred_transforms,
    initial_model,
)

__all__ = ["InitialModelResult", "centred_transforms", "initial_model"]

"""Spend families: one module each, registered in :data:`SPEND_FAMILIES`.

* :mod:`~bayesclv.models.spend.gamma_gamma`: Fader, Hardie & Lee's gamma-gamma model;
* :mod:`~bayesclv.models.spend.lognormal`: log revenue normal, customer effects pooled.

:mod:`~bayesclv.models.spend.base` says what a family declares; a new family is a new
module whose class is added to the registry below.
"""

from __future__ import annotations

from bayesclv.models.spend.base import SPEND_DRAWS, SPEND_MEANS, SpendFamily, build_spend_model
from bayesclv.models.spend.gamma_gamma import GammaGammaSpend
from bayesclv.models.spend.lognormal import LognormalSpend

__all__ = [
    "SPEND_DRAWS",
    "SPEND_FAMILIES",
    "SPEND_MEANS",
    "GammaGammaSpend",
    "LognormalSpend",
    "SpendFamily",
    "build_spend_model",
]

SPEND_FAMILIES: dict[str, SpendFamily] = {
    family.name: family for family in (GammaGammaSpend(), LognormalSpend())
}

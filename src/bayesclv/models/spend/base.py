"""What a spend family declares, and the PyMC builder every family shares.

A spend family is one class in its own module of :mod:`bayesclv.models.spend`. It declares

* its pooled coordinates ``coords`` (what the hierarchy of :mod:`bayesclv._hierarchy`
  shrinks across segments) and its natural parameters ``param_names`` (:meth:`natural`);
* the customer columns it conditions on (``inputs``, attributes of
  :class:`bayesclv.data.CustomerData`) and its sufficient statistics
  (:meth:`statistics`), with the log-likelihood on them (:meth:`aggregated_loglik`, numpy
  or PyTensor) and per customer (:meth:`customer_loglik`);
* a customer's posterior mean spend (:meth:`expected_customer_spend`) and, for the
  compiled valuation loops, two ``numba`` functions of the fixed signatures
  :data:`SPEND_DRAWS` and :data:`SPEND_MEANS` (``draw_kernel``, ``mean_kernel``) that take
  the family's parameter rows, never named parameters;
* the draws a path simulation needs (:meth:`sample_customer_latent`,
  :meth:`sample_period_spend`) and its default priors.

Valuation code sees only these: the parameter array of :meth:`parameter_array` and the
customer array of :meth:`customer_inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pymc as pm
from numba import types

from bayesclv._hierarchy import Profiles, profile_effects, segment_effects
from bayesclv._laplace import SegmentLaplace
from bayesclv._math import NP, PT
from bayesclv.exceptions import DataValidationError

__all__ = ["SPEND_DRAWS", "SPEND_MEANS", "SpendFamily", "build_spend_model"]

#: A family's customer-draw function: ``draw(params, inputs, key, out)`` fills ``out[g]``
#: with a draw of the customer's mean per-period spend under posterior sample ``g``,
#: from the random stream keyed by ``key`` (:mod:`bayesclv._streams`). ``params`` is
#: (parameter, sample) for the customer's segment; ``inputs`` the customer's row of
#: :meth:`SpendFamily.customer_inputs`.
SPEND_DRAWS = types.void(types.float64[:, ::1], types.float64[::1], types.uint64,
                         types.float64[::1])
#: A family's posterior mean: ``mean(params, inputs, out)`` sets ``out[g]`` to the
#: customer's expected mean per-period spend under sample ``g``.
SPEND_MEANS = types.void(types.float64[:, ::1], types.float64[::1], types.float64[::1])


class SpendFamily:
    """Base of the spend families: the protocol, and what follows from it."""

    name: ClassVar[str]
    coords: ClassVar[tuple[str, ...]]
    param_names: ClassVar[tuple[str, ...]]
    #: The coordinate customer covariates shift, and the sign: a coefficient is the log of
    #: the factor by which a covariate multiplies the mean spend.
    covariate_coord: ClassVar[str]
    covariate_sign: ClassVar[float] = 1.0
    #: Attributes of :class:`bayesclv.data.CustomerData` a customer's spend posterior
    #: depends on, in the column order of :meth:`customer_inputs`.
    inputs: ClassVar[tuple[str, ...]]
    draw_kernel: ClassVar[Any]
    mean_kernel: ClassVar[Any]

    # -- declared by each family -------------------------------------------------------
    def natural(self, psi: Any, xp: Any = NP) -> dict[str, Any]:
        """The natural parameters from ``psi`` (pooled coordinates on the last axis)."""
        raise NotImplementedError

    def statistics(self, segment_code: np.ndarray, data: Any, n_segments: int
                   ) -> dict[str, Any]:
        """Sufficient statistics of a validated table, per segment code."""
        raise NotImplementedError

    def training_statistics(self, statistics: Any) -> dict[str, Any]:
        """:meth:`statistics` from a :class:`bayesclv.data.TrainingStatistics` (Dask)."""
        raise NotImplementedError

    def loglik_terms(self, psi: Any, stats: Mapping[str, Any], xp: Any = NP
                     ) -> tuple[Any, Any]:
        """The log-likelihood from :meth:`statistics` in two parts; cost does not grow with rows.

        Returns ``(per_pair, per_code)``: the terms of each unique (code, x) pair of
        ``stats["x_seg"]`` times its count, and the terms of each code.
        """
        raise NotImplementedError

    def customer_loglik(self, psi: np.ndarray, data: Any) -> np.ndarray:
        """Each customer's log-likelihood term; ``psi`` broadcasts against customers."""
        raise NotImplementedError

    def expected_customer_spend(self, params: Mapping[str, np.ndarray],
                                inputs: np.ndarray) -> np.ndarray:
        """A customer's posterior mean spend per period, under each parameter draw.

        ``params`` broadcast against the customers of ``inputs`` (customers, inputs).
        """
        raise NotImplementedError

    def sample_customer_latent(self, params: Mapping[str, np.ndarray], inputs: np.ndarray,
                               rng: np.random.Generator, shape: tuple[int, ...]
                               ) -> np.ndarray:
        """Draws of each customer's latent spend level from its conditional posterior."""
        raise NotImplementedError

    def sample_period_spend(self, params: Mapping[str, np.ndarray], latent: np.ndarray,
                            rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        """One period's revenue of each customer given its latent level."""
        raise NotImplementedError

    def segment_mean_spend(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Mean per-period spend of a customer of the segment."""
        raise NotImplementedError

    def default_priors(self, mean_spend: np.ndarray) -> dict[str, Any]:
        """Weakly informative priors, scaled by the table's mean spend."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def aggregated_loglik(self, psi: Any, stats: Mapping[str, Any], xp: Any = NP) -> Any:
        """Total log-likelihood from :meth:`statistics`; its cost does not grow with rows."""
        per_pair, per_code = self.loglik_terms(psi, stats, xp)
        return per_pair.sum() + per_code.sum()

    def code_loglik(self, psi: np.ndarray, stats: Mapping[str, Any]) -> np.ndarray:
        """Each code's log-likelihood (numpy), shape (codes,); they sum to the total."""
        per_pair, per_code = self.loglik_terms(psi, stats, NP)
        return per_code + np.bincount(stats["x_seg"], weights=per_pair,
                                      minlength=len(per_code))

    def check_columns(self, data: Any) -> None:
        """Raise if the validated table lacks a column this family conditions on."""
        for name in self.inputs:
            if getattr(data, name, None) is None:
                raise self.missing_column(name)

    def missing_column(self, name: str) -> DataValidationError:
        """The error for a table without the column ``name`` this family needs."""
        return DataValidationError(
            f"The {self.name!r} spend family needs a {name!r} column; the customer table "
            "has none. bayesclv.data.summarize(..., log_spend=True) adds 'mean_log_spend' "
            "and 'sd_log_spend' from a transaction log."
        )

    def customer_inputs(self, data: Any) -> np.ndarray:
        """The (customers, inputs) float64 array of :attr:`inputs`, C-contiguous."""
        self.check_columns(data)
        return np.ascontiguousarray(np.column_stack(
            [np.asarray(getattr(data, name), dtype=np.float64) for name in self.inputs]))

    def parameter_array(self, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """``params`` (each (samples, segments)) as one (segment, parameter, sample) array.

        The layout of the compiled loops: each segment's parameter rows are contiguous.
        """
        stacked = np.stack([np.asarray(params[name], dtype=np.float64)
                            for name in self.param_names])
        return np.ascontiguousarray(stacked.transpose(2, 0, 1))

    def sample_customer_spend(self, params: Mapping[str, np.ndarray], inputs: np.ndarray,
                              rng: np.random.Generator) -> np.ndarray:
        """Draws of each customer's mean per-period spend, one per parameter draw."""
        shape = np.broadcast_shapes(*(np.shape(v) for v in params.values()),
                                    (len(inputs),))
        latent = self.sample_customer_latent(params, inputs, rng, shape)
        return self.mean_given_latent(params, latent)

    def mean_given_latent(self, params: Mapping[str, np.ndarray], latent: np.ndarray
                          ) -> np.ndarray:
        """A customer's mean per-period spend given its latent level."""
        raise NotImplementedError

    def period_spend_variance(self, params: Mapping[str, np.ndarray], latent: np.ndarray
                              ) -> np.ndarray:
        """The variance of one period's spend of a customer given its latent level."""
        raise NotImplementedError


def build_spend_model(
    family: SpendFamily, stats: Mapping[str, Any], segments: Sequence[str],
    priors: Mapping[str, Any], profiles: Profiles | None = None,
    laplace: SegmentLaplace | None = None,
) -> pm.Model:
    """Build the hierarchical spend model of any family.

    Parameters
    ----------
    family : SpendFamily
    stats : mapping
        Output of ``family.statistics``, on segment codes, or on profile codes when
        ``profiles`` is given.
    segments : sequence of str
    priors : mapping
        A resolved prior set.
    profiles : Profiles, optional
        Customer covariates; the coefficients ``spend_coef`` shift the family's
        ``covariate_coord``.
    laplace : SegmentLaplace, optional
        Each segment's mode and scale given its own data: the origin and unit of its
        centred coordinates (see :func:`bayesclv._hierarchy.segment_effects`).

    Returns
    -------
    pymc.Model
        With deterministics ``spend_psi`` (segment, coord), the family's natural
        parameters per segment and the population ``spend_mu``, ``spend_sigma``,
        ``spend_chol``.
    """
    coords = {
        "segment": list(segments),
        "spend_coord": list(family.coords),
        "spend_coord_": list(family.coords),
    }
    if profiles is not None:
        coords["spend_covariate"] = list(profiles.names)
    with pm.Model(coords=coords) as model:
        psi = segment_effects("spend", family.coords, priors, laplace)
        for name, value in family.natural(psi, PT).items():
            pm.Deterministic(name, value, dims="segment")
        if profiles is not None:
            psi = profile_effects("spend", psi, profiles, priors,
                                  family.coords.index(family.covariate_coord),
                                  family.covariate_sign)
        # Model data, not constants: the compiled model is the same for every table.
        data = {key: (value if np.ndim(value) == 0 and key.endswith("_step")
                      else pm.Data(f"spend_{key}", np.asarray(value)))
                for key, value in stats.items()}
        pm.Potential("spend_loglik", family.aggregated_loglik(psi, data, PT))
    return model


def _get(data: Any, name: str) -> Any:
    """Column ``name`` of a mapping or of a :class:`bayesclv.data.CustomerData`, or None."""
    return data.get(name) if isinstance(data, Mapping) else getattr(data, name, None)

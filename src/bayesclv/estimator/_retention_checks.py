"""Checks of a fitted retention model against data: the methods of :class:`RetentionChecks`.

Posterior predictive checks (churn per segment and period, cohort projections), the
life table they are read against, and the pointwise log-likelihood behind
:func:`bayesclv.compare`. Kept apart from the estimator's fitting and prediction; the
computations are module-level functions of :mod:`bayesclv.checks` and
:mod:`bayesclv.models.retention`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.utils.validation import check_is_fitted

from bayesclv.checks import churn_check, survivor_projection
from bayesclv.data import life_table, risk_set_table, segment_codes, survival_groups
from bayesclv.estimator._common import draw_array, flatten_samples, wanted_segments
from bayesclv.models.retention import grouped_loglik

__all__ = ["RetentionChecks"]


class RetentionChecks:
    """Predictive checks and pointwise log-likelihoods of :class:`bayesclv.RetentionModel`."""

    family_: Any
    segments_: list[str]

    def project_survivors(
        self, cohort_size: int, periods: int, *, segment: str | Sequence[str] | None = None,
        observed: int = 0, hdi_prob: float = 0.9,
    ) -> pd.DataFrame:
        """Project how many of a cohort are still customers after each future period.

        A cohort of ``cohort_size`` customers, all active after ``observed`` periods of
        tenure (0: at acquisition), is projected for periods ``observed + 1`` to
        ``observed + periods``. Two intervals per period: ``expected_*`` is the posterior of
        the expected number of survivors, ``cohort_size * S(t) / S(observed)`` (parameter
        uncertainty only); ``predicted_*`` adds the chance of who actually churns (each
        survivor stays through period ``t`` with probability ``r(t)``, independently given
        the parameters), which is what a count observed later should fall in.

        Parameters
        ----------
        cohort_size : int
            Customers active after ``observed`` periods.
        periods : int
            Number of future periods.
        segment : str or sequence of str, optional
            Defaults to every fitted segment; unseen ones are drawn from the population.
        observed : int, default=0
            Tenure the cohort has already reached.
        hdi_prob : float, default=0.9

        Returns
        -------
        pandas.DataFrame
            Indexed by (segment, period): ``expected_mean``, ``expected_hdi_low``,
            ``expected_hdi_high``, ``predicted_hdi_low``, ``predicted_hdi_high``.

        Examples
        --------
        >>> import bayesclv
        >>> customers = bayesclv.datasets.load_example()
        >>> model = bayesclv.RetentionModel("bdw", method="map", random_seed=0).fit(customers)
        >>> table = model.project_survivors(1000, periods=5, segment="organic", observed=7)
        >>> table.index.get_level_values("period").tolist()
        [8, 9, 10, 11, 12]
        """
        check_is_fitted(self, "idata_")
        for name, value, low in (("cohort_size", cohort_size, 1), ("periods", periods, 1),
                                 ("observed", observed, 0)):
            if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                    and value >= low):
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
        segments = self._segments(segment)
        psi = flatten_samples(self._draws_for(segments))
        t = np.arange(int(observed) + 1, int(observed) + int(periods) + 1, dtype=np.float64)
        projection = survivor_projection(self.family_, psi, t, int(cohort_size), self._rng(1),
                                         hdi_prob)
        index = pd.MultiIndex.from_product([segments, t.astype(np.int64)],
                                           names=["segment", "period"])
        out = pd.DataFrame({name: values.ravel() for name, values in projection.items()},
                           index=index)
        out.attrs.update(period=self.period_, cohort_size=int(cohort_size),
                         observed=int(observed), hdi_prob=float(hdi_prob))
        return out

    def life_table(self, X: pd.DataFrame | None = None) -> pd.DataFrame:
        """Empirical retention per segment: the life-table (Kaplan–Meier) estimate.

        ``S_hat(t) = prod_{u <= t} (1 - d_u / n_u)`` with ``n_u`` customers at risk in period
        ``u`` (entered before it, still active) and ``d_u`` of them churning, so left
        truncation and right censoring are respected. It is the model-free yardstick the
        posterior survival curves are checked against.

        Parameters
        ----------
        X : pandas.DataFrame, optional
            A customer table; defaults to the training data's risk sets.

        Returns
        -------
        pandas.DataFrame
            Indexed by (segment, period): ``at_risk``, ``churned``, ``retention_rate``
            (``1 - d/n``) and ``survival``.
        """
        check_is_fitted(self, "idata_")
        return life_table(*self._risk_set(X))

    def _risk_set(self, X: pd.DataFrame | None) -> tuple[pd.DataFrame, list[str]]:
        if X is None:
            return self.risk_set_, list(self.segments_)
        data = self._validated(X)
        present = set(data.segment)
        segments = [s for s in self.segments_ if s in present]
        segments += [s for s in wanted_segments(data) if s not in set(self.segments_)]
        codes = segment_codes(data.segment, segments)
        return (risk_set_table(codes, data.entry, data.tenure, data.churned, len(segments)),
                segments)

    def posterior_predictive_churn(self, X: pd.DataFrame | None = None, *,
                                   hdi_prob: float = 0.9) -> pd.DataFrame:
        """Posterior predictive check of the number of customers churning per period.

        For every segment and period with customers at risk, each posterior draw
        simulates the churners among the ``n`` customers observed at risk,
        ``Binomial(n, 1 - r(t))``; the observed count is then compared with that
        distribution. This is exact for every family: given the segment's parameters,
        each customer still active after ``t - 1`` periods churns in period ``t`` with
        probability ``1 - r(t)``, independently of the others.

        Parameters
        ----------
        X : pandas.DataFrame, optional
            Defaults to the training data.
        hdi_prob : float, default=0.9

        Returns
        -------
        pandas.DataFrame
            Indexed by (segment, period): ``at_risk``, ``churned`` (observed),
            ``predicted_mean``, ``predicted_hdi_low``, ``predicted_hdi_high``,
            ``inside`` (observed count within the interval) and ``p_value`` (two-sided
            posterior predictive p-value, ``2 min(P(D >= d), P(D <= d))``).
        """
        check_is_fitted(self, "idata_")
        risk_set, segments = self._risk_set(X)
        at_risk = risk_set["at_risk"].to_numpy()
        observed = risk_set["churned"].to_numpy()
        cells, cell_of = self._churn_cells(X, risk_set, segments)
        psi = flatten_samples(self._profile_draws(segments, cells["profiles"]))
        check = churn_check(self.family_, psi, cells, cell_of, at_risk, observed,
                            self._rng(2), hdi_prob)
        out = pd.DataFrame(
            {"at_risk": at_risk, "churned": observed, **check},
            index=pd.MultiIndex.from_arrays(
                [np.asarray(segments, dtype=object)[risk_set["segment"].to_numpy()],
                 risk_set["period"].to_numpy()], names=["segment", "period"]),
        )
        out.attrs.update(period=self.period_, hdi_prob=float(hdi_prob))
        return out

    def _churn_cells(self, X: pd.DataFrame | None, risk_set: pd.DataFrame,
                     segments: list[str]) -> tuple[dict[str, Any], np.ndarray | None]:
        """The cells churn is simulated on: the risk set's, or (profile, period) cells.

        Returns the cells and, with covariates, the risk-set row of each cell.
        """
        if getattr(self, "covariates_", None) is None:
            return {"profiles": None, "profile": risk_set["segment"].to_numpy(),
                    "period": risk_set["period"].to_numpy().astype(np.float64),
                    "at_risk": risk_set["at_risk"].to_numpy()}, None
        if X is None:
            raise ValueError(
                "This model has covariates: pass the customer table, whose covariates say "
                "each customer's churn risk."
            )
        data = self._validated(X)
        profile, profiles = self._profiles(X, data, segments)
        cells = risk_set_table(profile, data.entry, data.tenure, data.churned,
                               len(profiles.segment))
        row = pd.MultiIndex.from_frame(risk_set[["segment", "period"]]).get_indexer(
            pd.MultiIndex.from_arrays([profiles.segment[cells["segment"].to_numpy()],
                                       cells["period"].to_numpy()]))
        return {"profiles": profiles, "profile": cells["segment"].to_numpy(),
                "period": cells["period"].to_numpy().astype(np.float64),
                "at_risk": cells["at_risk"].to_numpy()}, row

    def observed(self, X: pd.DataFrame) -> str:
        """What :meth:`pointwise_loglik` is the density of (every family: the same)."""
        return "each customer's periods survived and churn"

    def pointwise_loglik(self, X: pd.DataFrame) -> tuple[xr.DataArray, np.ndarray]:
        """Log-likelihood per posterior draw of each unique customer row, with row counts.

        Customers sharing ``(segment, entry, tenure, churned)`` have identical
        log-likelihoods, so they are evaluated once; see :func:`bayesclv.compare` for how
        the counts make leave-one-out per customer.

        Returns
        -------
        loglik : xarray.DataArray
            Dims (chain, draw, row).
        counts : numpy.ndarray of int
            Customers per row.

        Raises
        ------
        DataValidationError
            If ``X`` has segments the model was not fitted on.
        """
        data = self._training_like(X)
        profile, profiles = self._profiles(X, data, self.segments_)
        groups = survival_groups(profile, data.entry, data.tenure, data.churned)
        psi = self._profile_draws(self.segments_, profiles)
        values = grouped_loglik(self.family_, psi, groups)
        loglik = draw_array(values, self.posterior_, ("row",), name="retention")
        return loglik, groups["count"].to_numpy()

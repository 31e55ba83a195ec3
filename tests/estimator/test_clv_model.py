import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.base import clone

import bayesclv
from bayesclv import CLVModel, RetentionModel, SpendModel, _base
from bayesclv._nutpie import nutpie_available
from bayesclv.exceptions import DataValidationError, NotFittedError

PREDICT_COLUMNS = ["customer_id", "segment", "clv_mean", "clv_sd", "clv_hdi_low", "clv_hdi_high",
                   "expected_spend", "retention_next", "expected_residual_lifetime"]


def test_init_stores_parameters_as_given_and_clone_works():
    model = CLVModel(retention="geometric", horizon=12, margin=0.25, random_seed=4,
                     priors={"retention": {"centered": True}})
    params = model.get_params()
    assert params["retention"] == "geometric" and params["horizon"] == 12
    assert params["priors"] == {"retention": {"centered": True}}
    cloned = clone(model)
    assert cloned.get_params() == params
    cloned.set_params(margin=0.5)
    assert cloned.margin == 0.5 and model.margin == 0.25


@pytest.mark.parametrize("estimator", [CLVModel, RetentionModel, SpendModel])
def test_docstrings_list_the_shared_parameters(estimator):
    assert "{common_parameters}" not in estimator.__doc__
    assert "random_seed" in estimator.__doc__


@pytest.mark.parametrize("method", ["predict", "predict_posterior", "segment_report"])
def test_unfitted_model_raises_not_fitted(method, small_customers):
    customers, _ = small_customers
    with pytest.raises(NotFittedError):
        getattr(CLVModel(), method)(customers)
    with pytest.raises(NotFittedError):
        CLVModel().retention_curve()


@pytest.mark.parametrize("param,value,message", [
    ("retention", "lognormal", "'retention' parameter"),
    ("draws", 0, "'draws' parameter"),
    ("chains", 2.5, "'chains' parameter"),
    ("discount_rate", -0.1, "'discount_rate' parameter"),
    ("horizon", 0, "'horizon' parameter"),
    ("hdi_prob", 1.0, "'hdi_prob' parameter"),
    ("method", "vi", "'method' parameter"),
    ("random_seed", -1, "'random_seed' parameter"),
    ("tenure_col", 3, "'tenure_col' parameter"),
])
def test_invalid_hyper_parameters_raise_in_fit(param, value, message, small_customers):
    customers, _ = small_customers
    with pytest.raises(ValueError, match=message):
        CLVModel(**{"method": "map", param: value}).fit(customers)


def test_unknown_prior_key_is_rejected(small_customers):
    customers, _ = small_customers
    with pytest.raises(ValueError, match="Unknown prior key 'log_eta_mu'"):
        RetentionModel(method="map", priors={"log_eta_mu": 1.0}).fit(customers)
    with pytest.raises(ValueError, match="priors keys must be"):
        CLVModel(method="map", priors={"churn": {}}).fit(customers)


def test_predict_one_row_per_customer_in_input_order(map_model, small_customers):
    customers, _ = small_customers
    shuffled = customers.sample(frac=1.0, random_state=3)
    shuffled.index = pd.Index([f"row{i}" for i in range(len(shuffled))], name="row")
    predictions = map_model.predict(shuffled)
    assert list(predictions.columns) == PREDICT_COLUMNS
    assert predictions.index.equals(shuffled.index)
    np.testing.assert_array_equal(predictions["customer_id"], shuffled["customer_id"])
    assert predictions.attrs["period"] == "period"
    original = map_model.predict(customers).set_index("customer_id")
    np.testing.assert_allclose(
        predictions.set_index("customer_id").loc[original.index, "clv_mean"],
        original["clv_mean"], rtol=1e-12)


def test_churned_customers_are_worth_nothing(map_model, small_customers):
    customers, _ = small_customers
    predictions = map_model.predict(customers)
    churned = customers["churned"].to_numpy()
    assert (predictions.loc[churned, ["clv_mean", "retention_next",
                                      "expected_residual_lifetime"]] == 0).all().all()
    assert (predictions.loc[~churned, "clv_mean"] > 0).all()
    assert (predictions["expected_spend"] > 0).all()


def test_predict_rejects_bad_input_clearly(map_model, small_customers):
    customers, _ = small_customers
    with pytest.raises(DataValidationError, match="'mean_spend'.*missing"):
        map_model.predict(customers.drop(columns="mean_spend"))
    with pytest.raises(DataValidationError, match="'segment' missing"):
        map_model.predict(customers.drop(columns="segment"))
    bad = customers.copy()
    bad.loc[[3, 8], "tenure"] = -1
    with pytest.raises(DataValidationError, match=r"'tenure'.*2 row\(s\)"):
        map_model.predict(bad)


def test_nuts_predict_summaries_match_posterior_draws(nuts_model, small_customers):
    customers, _ = small_customers
    subset = customers.iloc[:300]
    predictions = nuts_model.predict(subset)
    draws = nuts_model.predict_posterior(subset)
    assert draws.dims == ("chain", "draw", "customer")
    assert draws.sizes == {"chain": 2, "draw": 100, "customer": 300}
    np.testing.assert_array_equal(draws["customer"], subset["customer_id"])
    mc_error = draws.std(("chain", "draw")) / np.sqrt(200)
    difference = np.abs(predictions["clv_mean"].to_numpy() - draws.mean(("chain", "draw")))
    assert bool((difference <= 5 * mc_error + 1e-9).all())
    inside = (predictions["clv_hdi_low"] <= predictions["clv_mean"]) & (
        predictions["clv_mean"] <= predictions["clv_hdi_high"])
    assert inside.all()


def test_chunked_and_zarr_draws_equal_the_in_memory_draws(nuts_model, small_customers,
                                                           tmp_path):
    pytest.importorskip("dask")
    customers = small_customers[0].iloc[:700]
    in_memory = nuts_model.predict_posterior(customers)
    lazy = nuts_model.predict_posterior(customers, chunks=256)
    assert lazy.chunks[-1] == (256, 256, 188)
    xr.testing.assert_identical(lazy.compute(), in_memory)
    stored = nuts_model.predict_posterior(customers, to=tmp_path / "draws.zarr", chunks=300)
    np.testing.assert_array_equal(stored.to_numpy(), in_memory.to_numpy())
    np.testing.assert_array_equal(stored["customer"], in_memory["customer"])
    with pytest.raises(FileExistsError, match="draws.zarr"):
        nuts_model.predict_posterior(customers, to=tmp_path / "draws.zarr")
    with pytest.raises(ValueError, match="chunks"):
        nuts_model.predict_posterior(customers, chunks=0)


def test_identical_customers_get_identical_predictions(nuts_model, small_customers):
    customers = small_customers[0].iloc[:200]
    doubled = pd.concat([customers, customers.assign(
        customer_id=customers["customer_id"] + "_copy")], ignore_index=True)
    predictions = nuts_model.predict(doubled)
    columns = ["clv_mean", "clv_sd", "clv_hdi_low", "clv_hdi_high", "expected_spend"]
    np.testing.assert_array_equal(predictions[columns].iloc[:200].to_numpy(),
                                  predictions[columns].iloc[200:].to_numpy())
    # Valued once, but each copy is its own customer in the segment totals.
    totals = nuts_model.predict_segment_posterior(doubled)
    single = nuts_model.predict_segment_posterior(customers)
    ratio = float(totals.mean() / single.mean())
    assert 1.9 < ratio < 2.1


def test_same_seed_gives_identical_predictions(small_customers):
    customers, _ = small_customers
    first = CLVModel(method="map", random_seed=5).fit(customers).predict(customers)
    second = CLVModel(method="map", random_seed=5).fit(customers).predict(customers)
    pd.testing.assert_frame_equal(first, second)


def test_same_seed_nuts_is_reproducible(small_customers):
    customers, _ = small_customers
    subset = customers.iloc[:400]
    kwargs = dict(draws=30, tune=30, chains=1, random_seed=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        a = CLVModel(**kwargs).fit(subset).predict(subset)
        b = CLVModel(**kwargs).fit(subset).predict(subset)
        c = CLVModel(**{**kwargs, "random_seed": 10}).fit(subset).predict(subset)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["clv_mean"], c["clv_mean"])


@pytest.mark.skipif(not nutpie_available(), reason="needs the fast extra (nutpie)")
def test_spend_model_is_built_while_retention_samples_and_both_draw_as_alone(
        small_customers, monkeypatch):
    customers, _ = small_customers
    subset = customers.iloc[:600]
    order = []

    def recording(cls, name):
        original = getattr(cls, name)

        def call(self, *args, **kwargs):
            order.append(f"{cls.__name__}.{name}")
            return original(self, *args, **kwargs)
        monkeypatch.setattr(cls, name, call)

    for cls in (RetentionModel, SpendModel):
        recording(cls, "_begin_fit")
        recording(cls, "_end_fit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        model = CLVModel(draws=40, tune=40, chains=2, random_seed=2).fit(subset)
        assert order == ["RetentionModel._begin_fit", "SpendModel._begin_fit",
                         "RetentionModel._end_fit", "SpendModel._end_fit"]
        monkeypatch.undo()
        alone = (RetentionModel(**model.retention_model_.get_params()).fit(subset),
                 SpendModel(**model.spend_model_.get_params()).fit(subset))
    for part, single in zip((model.retention_model_, model.spend_model_), alone, strict=True):
        assert part.sampler_ == "nutpie" and part.sampling_seconds_ > 0
        for name, values in single.posterior_.data_vars.items():
            np.testing.assert_array_equal(part.posterior_[name].to_numpy(), values.to_numpy())


@pytest.mark.skipif(not nutpie_available(), reason="needs the fast extra (nutpie)")
def test_a_failure_while_retention_samples_stops_its_chains(small_customers, monkeypatch):
    import bayesclv._nutpie

    customers, _ = small_customers
    cancelled = []
    cancel = bayesclv._nutpie.NutpieRun.cancel

    def recording_cancel(self):
        cancelled.append(self)
        cancel(self)

    def failing_begin(self, *args, **kwargs):
        raise RuntimeError("the spend model failed")

    monkeypatch.setattr(bayesclv._nutpie.NutpieRun, "cancel", recording_cancel)
    monkeypatch.setattr(SpendModel, "_begin_fit", failing_begin)
    with pytest.raises(RuntimeError, match="the spend model failed"):
        CLVModel(draws=2000, tune=2000, chains=2, random_seed=0).fit(customers)
    assert len(cancelled) == 1


def test_unseen_segment_is_valued_with_wider_intervals(nuts_model, small_customers):
    customers, _ = small_customers
    subset = customers[customers["segment"] == "a"].iloc[:200].copy()
    known = nuts_model.predict(subset)
    subset["segment"] = "brand_new"
    with pytest.warns(bayesclv.UnseenSegmentWarning,
                      match=r"200 customer\(s\).*'brand_new' \(200\)"):
        unseen = nuts_model.predict(subset)
    assert np.isfinite(unseen["clv_mean"]).all()
    active = ~subset["churned"].to_numpy()
    known_width = (known["clv_hdi_high"] - known["clv_hdi_low"])[active]
    unseen_width = (unseen["clv_hdi_high"] - unseen["clv_hdi_low"])[active]
    assert unseen_width.median() > 1.5 * known_width.median()
    curve = nuts_model.retention_curve(12, segments=["a", "brand_new"])
    spread = curve.sel(period=12).std(("chain", "draw"))
    assert spread.sel(segment="brand_new") > spread.sel(segment="a")


def test_segment_report_totals_and_shares(nuts_model, small_customers):
    customers, _ = small_customers
    report = nuts_model.segment_report(customers)
    predictions = nuts_model.predict(customers)
    assert list(report.index) == list(pd.unique(customers["segment"]))
    assert report["n_customers"].sum() == len(customers)
    np.testing.assert_allclose(report["share_mean"].sum(), 1.0, rtol=1e-10)
    by_segment = predictions.groupby("segment")["clv_mean"].sum()
    # Totals are sums of draws; clv_mean integrates customer spend exactly: equal up to MC error.
    np.testing.assert_allclose(report["total_mean"], by_segment.loc[report.index], rtol=0.01)
    np.testing.assert_allclose(report["clv_per_customer_mean"],
                               report["total_mean"] / report["n_customers"], rtol=1e-10)
    assert (report["total_hdi_low"] < report["total_mean"]).all()
    assert (report["total_mean"] < report["total_hdi_high"]).all()


def test_retention_curve_dims_and_values(nuts_model):
    curve = nuts_model.retention_curve(periods=24)
    assert curve.dims == ("chain", "draw", "segment", "period")
    assert list(curve["segment"].values) == nuts_model.segments_
    np.testing.assert_array_equal(curve.sel(period=0), 1.0)
    assert bool((curve.diff("period") <= 0).all())


def test_idata_holds_both_posteriors(nuts_model):
    assert isinstance(nuts_model.idata_, xr.DataTree)
    posterior = nuts_model.idata_["posterior"]
    for name in ("eta", "k", "p", "q", "gamma", "retention_psi", "spend_psi"):
        assert name in posterior
    assert "sample_stats_retention" in nuts_model.idata_.children


def test_retention_and_spend_models_alone(small_customers):
    customers, _ = small_customers
    retention = RetentionModel(family="geometric", method="map", random_seed=0).fit(
        customers.drop(columns=["mean_spend", "n_periods_active"]))
    out = retention.predict(customers, horizon=12, discount_rate=0.01)
    assert {"retention_next", "expected_residual_lifetime"} <= set(out.columns)
    assert (out["expected_residual_lifetime"] <= 12).all()
    spend = SpendModel(method="map", random_seed=0).fit(
        customers.drop(columns=["tenure", "churned", "entry"]))
    spend_out = spend.predict(customers)
    assert list(spend_out.columns) == ["customer_id", "expected_spend",
                                       "expected_spend_hdi_low", "expected_spend_hdi_high"]
    assert (spend_out["expected_spend_hdi_low"] <= spend_out["expected_spend_hdi_high"]).all()


def test_single_segment_table_works():
    customers, _ = bayesclv.datasets.simulate_customers(
        300, {"only": {"share": 1.0, "eta": 15.0, "k": 0.9, "p": 3.0, "q": 4.0, "gamma": 30.0}},
        random_seed=2)
    with pytest.warns(UserWarning, match="Only one segment"):
        model = CLVModel(method="map", horizon=12, segment_col=None, random_seed=1).fit(customers)
    assert model.segments_ == ["all"]
    predictions = model.predict(customers)
    assert (predictions["segment"] == "all").all()


def test_sampler_auto_falls_back_to_pymc_and_nutpie_without_it_says_what_to_install(
        small_customers, monkeypatch):
    customers, _ = small_customers
    monkeypatch.setattr(_base, "nutpie_available", lambda: False)
    assert _base.resolve_sampler("auto") == "pymc"
    # The family of the next test's fits: PyMC's compiled density is then compiled once.
    model = RetentionModel("geometric", draws=20, tune=20, chains=1, random_seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        assert model.fit(customers).sampler_ == "pymc"
    with pytest.raises(ImportError, match=r"bayesclv\[fast\]"):
        RetentionModel("geometric", sampler="nutpie", draws=20, tune=20).fit(customers)


def test_nutpie_sampler_agrees_with_pymc(small_customers):
    """``sampler="nutpie"`` (the ``fast`` extra) samples the same posterior as PyMC's NUTS."""
    pytest.importorskip("nutpie")
    customers, _ = small_customers
    settings = dict(draws=300, tune=300, chains=2, random_seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bayesclv.ConvergenceWarning)
        fits = {sampler: CLVModel("geometric", sampler=sampler, **settings).fit(customers)
                for sampler in ("nutpie", "pymc")}
    for part, names in (("retention_model_", ["theta"]), ("spend_model_", ["p", "q", "gamma"])):
        assert {s: getattr(m, part).sampler_ for s, m in fits.items()} == {
            "nutpie": "nutpie", "pymc": "pymc"}
        posteriors = {s: getattr(m, part).posterior_ for s, m in fits.items()}
        for name in names:
            nutpie, pymc = posteriors["nutpie"][name], posteriors["pymc"][name]
            assert nutpie.sizes["draw"] == 300 and nutpie.sizes["chain"] == 2
            difference = np.abs(nutpie.mean(("chain", "draw")) - pymc.mean(("chain", "draw")))
            # Means agree within a few Monte Carlo errors of two 600-draw samples.
            assert (difference < 0.25 * pymc.std(("chain", "draw"))).all(), name


def test_fitted_models_say_which_sampler_ran(map_model, nuts_model):
    # The default "auto" is nutpie when the fast extra is installed, PyMC's NUTS otherwise.
    default = "nutpie" if nutpie_available() else "pymc"
    for model, sampler in ((map_model, "map"), (nuts_model, default)):
        for part in (model.retention_model_, model.spend_model_):
            assert part.sampler_ == sampler
            assert part.sampling_seconds_ > 0


def test_segment_labels_are_the_same_whatever_their_number_type(map_model, small_customers):
    customers, _ = small_customers
    numbered = customers.assign(segment=customers["segment"].map({"a": 1, "b": 2, "c": 3}))
    model = bayesclv.CLVModel(method="map", random_seed=0).fit(numbered)
    assert model.segments_ == ["1", "2", "3"]
    as_floats = numbered.assign(segment=numbered["segment"].astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("error", bayesclv.UnseenSegmentWarning)
        pd.testing.assert_frame_equal(model.predict(as_floats).drop(columns="segment"),
                                      model.predict(numbered).drop(columns="segment"))


def test_a_segment_column_the_model_was_fitted_without_is_ignored(small_customers):
    customers, _ = small_customers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = bayesclv.CLVModel(method="map", random_seed=0).fit(
            customers.drop(columns="segment"))
    with pytest.warns(UserWarning, match="'segment' is ignored"):
        with_column = model.predict(customers)
    without = model.predict(customers.drop(columns="segment"))
    pd.testing.assert_frame_equal(with_column, without)


def test_a_map_fit_gives_intervals_of_the_customers_spend(map_model, small_customers):
    customers, _ = small_customers
    predictions = map_model.predict(customers)
    active = ~customers["churned"].to_numpy()
    low, mean, high = (predictions[c].to_numpy()[active]
                       for c in ("clv_hdi_low", "clv_mean", "clv_hdi_high"))
    # 200 draws of each customer's spend at the MAP point: real intervals around the
    # (exact) mean, not one draw repeated as both bounds.
    assert (high > low).all() and (predictions["clv_sd"].to_numpy()[active] > 0).all()
    assert np.mean((low <= mean) & (mean <= high)) > 0.95
    report = map_model.segment_report(customers)
    assert (report["total_hdi_high"] > report["total_hdi_low"]).all()
    spend = map_model.spend_model_.predict(customers)
    assert (spend["expected_spend_hdi_high"] > spend["expected_spend_hdi_low"]).all()

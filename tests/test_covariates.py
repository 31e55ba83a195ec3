"""Customer covariates: encoding, validation, likelihood and recovery of known effects."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesclv
from bayesclv._hierarchy import profile_psi
from bayesclv.covariates import CovariateEncoder, covariate_profiles
from bayesclv.data.statistics import survival_groups
from bayesclv.datasets import simulate_customers
from bayesclv.datasets.simulate import true_log_survival
from bayesclv.exceptions import CovariateRangeWarning, DataValidationError
from bayesclv.models.retention import RETENTION_FAMILIES, customer_loglik, grouped_loglik

SEGMENTS = {
    "a": {"share": 0.4, "eta": 12.0, "k": 0.8, "p": 4.0, "q": 4.0, "gamma": 40.0},
    "b": {"share": 0.3, "eta": 30.0, "k": 1.1, "p": 3.0, "q": 5.0, "gamma": 80.0},
    "c": {"share": 0.3, "eta": 20.0, "k": 0.9, "p": 5.0, "q": 3.0, "gamma": 20.0},
}
COVARIATES = {
    "age": {"mean": 40.0, "sd": 10.0, "retention": 0.03, "spend": -0.01},
    "channel": {"levels": ["store", "web"], "probs": [0.6, 0.4],
                "retention": {"web": 0.5}, "spend": {"web": 0.4}},
}
# True per-unit coefficients, in the order of CovariateEncoder.feature_names.
TRUTH = {
    "retention": {"age": 0.03, "channel[web]": 0.5},
    "spend": {"age": -0.01, "channel[web]": 0.4},
}


@pytest.fixture(scope="module")
def covariate_customers() -> pd.DataFrame:
    customers, _ = simulate_customers(3000, SEGMENTS, observation_periods=24,
                                      covariates=COVARIATES, random_seed=11)
    return customers


@pytest.fixture(scope="module")
def covariate_map_model(covariate_customers: pd.DataFrame) -> bayesclv.CLVModel:
    return bayesclv.CLVModel(method="map", horizon=24, covariates=["age", "channel"],
                             random_seed=0).fit(covariate_customers)


def _ids(n: int) -> pd.Index:
    return pd.Index([f"c{i}" for i in range(n)], name="customer_id")


# --- the encoder --------------------------------------------------------------------

def test_encoder_standardises_numeric_and_dummy_codes_categorical() -> None:
    table = pd.DataFrame({"age": [20.0, 30.0, 40.0, 50.0],
                          "plan": ["pro", "basic", "team", "basic"]})
    encoder = CovariateEncoder.fit(table, ["age", "plan"], _ids(4))
    assert encoder.feature_names == ["age", "plan[pro]", "plan[team]"]
    design = encoder.transform(table, _ids(4))
    age = table["age"].to_numpy()
    np.testing.assert_allclose(design[:, 0], (age - age.mean()) / age.std())
    # Indicators are centred on the training shares (pro 1/4, team 1/4), so a column of
    # zeros is the training mix of plans rather than the baseline level.
    indicators = np.array([[1, 0], [0, 0], [0, 1], [0, 0]])
    np.testing.assert_allclose(design[:, 1:], indicators - [0.25, 0.25])
    # Per unit: numeric coefficients divided by the training sd, indicators unchanged.
    np.testing.assert_allclose(encoder.per_unit(np.array([1.0, 2.0, 3.0])),
                               [1.0 / age.std(), 2.0, 3.0])
    again = CovariateEncoder.from_dict(encoder.to_dict())
    np.testing.assert_array_equal(again.transform(table, _ids(4)), design)


def test_encoder_treats_booleans_and_categories_as_levels() -> None:
    table = pd.DataFrame({"promo": [True, False, True],
                          "region": pd.Categorical(["n", "s", "n"])})
    encoder = CovariateEncoder.fit(table, ["promo", "region"], _ids(3))
    assert encoder.feature_names == ["promo[True]", "region[s]"]
    np.testing.assert_allclose(encoder.transform(table, _ids(3)),
                               np.array([[1, 0], [0, 1], [1, 0]]) - [2 / 3, 1 / 3])


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("age", [20.0, np.nan, 30.0, np.nan], r"Column 'age': missing \(NaN\) values in 2 row"),
        ("age", [20.0, np.inf, 30.0, 40.0], r"Column 'age': infinite values in 1 row"),
        ("plan", ["a", None, "b", "a"], r"Column 'plan': missing \(NaN\) covariate values in 1"),
        ("plan", ["a", 1, "b", "a"], r"Column 'plan': values of another type"),
        ("age", [5.0, 5.0, 5.0, 5.0], r"Column 'age': every customer has the same value"),
        ("plan", ["x", "x", "x", "x"], r"Column 'plan': every customer has the same value"),
    ],
)
def test_bad_covariates_fail_with_the_column_and_rows(column: str, values: list,
                                                      message: str) -> None:
    table = pd.DataFrame({column: values})
    with pytest.raises(DataValidationError, match=message):
        CovariateEncoder.fit(table, [column], _ids(4))


def test_missing_and_reserved_covariate_columns_are_named() -> None:
    table = pd.DataFrame({"age": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"\['income'\] missing"):
        CovariateEncoder.fit(table, ["income"], _ids(2))
    with pytest.raises(DataValidationError, match=r"\['age'\] are already used"):
        CovariateEncoder.fit(table, ["age"], _ids(2), reserved=["age"])


def test_unseen_level_fails_and_out_of_range_value_warns() -> None:
    train = pd.DataFrame({"age": [20.0, 60.0, 40.0], "plan": ["a", "b", "a"]})
    encoder = CovariateEncoder.fit(train, ["age", "plan"], _ids(3))
    with pytest.raises(DataValidationError,
                       match=r"Column 'plan': levels not seen in training \(\['z'\]\) in 1 row"):
        encoder.transform(pd.DataFrame({"age": [30.0], "plan": ["z"]}), _ids(1))
    with pytest.raises(DataValidationError, match="fitted as numeric"):
        encoder.transform(pd.DataFrame({"age": ["old"], "plan": ["a"]}), _ids(1))
    with pytest.warns(CovariateRangeWarning,
                      match=r"Column 'age': 2 row\(s\) \(customer ids: 'c0', 'c2'\) lie outside"):
        design = encoder.transform(pd.DataFrame({"age": [90.0, 30.0, 10.0],
                                                 "plan": ["a", "b", "b"]}), _ids(3))
    assert np.isfinite(design).all()


def test_profiles_are_distinct_segment_and_covariate_rows() -> None:
    codes = np.array([0, 1, 0, 0, 1])
    design = np.array([[1.0], [1.0], [2.0], [1.0], [1.0]])
    profile, segment, rows = covariate_profiles(codes, design, 2)
    assert len(segment) == 3
    assert profile[0] == profile[3] and profile[1] == profile[4]
    np.testing.assert_array_equal(segment[profile], codes)
    np.testing.assert_array_equal(rows[profile], design)
    same, seg, _ = covariate_profiles(codes, np.empty((5, 0)), 2)
    np.testing.assert_array_equal(same, codes)
    np.testing.assert_array_equal(seg, [0, 1])


# --- the simulator --------------------------------------------------------------------

def test_simulator_shifts_scales_by_the_stated_effects() -> None:
    customers, truth = simulate_customers(400, SEGMENTS, covariates=COVARIATES,
                                          random_seed=2)
    shift = truth.customers["retention_shift"].to_numpy()
    expected = 0.03 * (customers["age"].to_numpy() - 40.0) + 0.5 * (
        customers["channel"].to_numpy() == "web")
    np.testing.assert_allclose(shift, expected)
    # With the shift, true survival is the segment's at a scaled eta.
    t = np.array([[6.0]])
    row = 0
    segment = customers["segment"].to_numpy()[[row]]
    eta = SEGMENTS[segment[0]]["eta"] * np.exp(shift[row])
    np.testing.assert_allclose(
        true_log_survival(truth.segments, segment, t, shift[[row]]),
        -((6.0 / eta) ** SEGMENTS[segment[0]]["k"]))
    plain, _ = simulate_customers(50, SEGMENTS, random_seed=2)
    assert "age" not in plain.columns


# --- the models ------------------------------------------------------------------------

def _per_customer_loglik(family, psi: np.ndarray, coef: np.ndarray, design: np.ndarray,
                         codes: np.ndarray, table: pd.DataFrame) -> float:
    """The retention log-likelihood summed over customers, each with its own parameters:
    its segment's ``psi`` with the covariate coordinate shifted by its ``design @ coef``."""
    row_psi = psi[codes].copy()
    row_psi[:, family.coords.index(family.covariate_coord)] += (
        family.covariate_sign * (design @ coef))
    return customer_loglik(family, row_psi, table["entry"].to_numpy(),
                           table["tenure"].to_numpy(), table["churned"].to_numpy()).sum()


@pytest.mark.parametrize("family", ["weibull", "geometric", "sbg", "bdw"])
def test_grouped_profile_loglik_equals_per_customer_sum(
        family: str, covariate_customers: pd.DataFrame) -> None:
    """The profile-grouped likelihood is the per-customer one with shifted parameters.

    At arbitrary segment parameters and coefficients, for every family: customers grouped
    by (segment, covariate values) profile and by (entry, tenure, churned), each row's
    parameters shifted once per profile, against each customer's own shifted parameters.
    """
    # Ages to the decade, so that customers share profiles.
    table = covariate_customers.head(400).assign(
        age=lambda frame: (frame["age"] / 10.0).round() * 10.0)
    family_ = RETENTION_FAMILIES[family]
    n_coords = len(family_.coords)
    coord = family_.coords.index(family_.covariate_coord)
    segments = sorted(table["segment"].unique())
    codes = pd.Index(segments).get_indexer(table["segment"])
    ids = _ids(len(table))
    design = CovariateEncoder.fit(table, ["age", "channel"], ids).transform(table, ids)
    rng = np.random.default_rng(5)
    psi = rng.normal(0.5, 0.5, (len(segments), n_coords))
    coef = rng.normal(0.0, 0.3, design.shape[1])
    profile, profile_segment, profile_design = covariate_profiles(codes, design, len(segments))
    assert len(profile_segment) < len(table)  # customers do share profiles
    offset = family_.covariate_sign * (profile_design @ coef)
    groups = survival_groups(profile, table["entry"].to_numpy(), table["tenure"].to_numpy(),
                             table["churned"].to_numpy())
    grouped = grouped_loglik(family_, profile_psi(psi, profile_segment, offset, coord,
                                                  n_coords), groups)
    total = float((grouped * groups["count"].to_numpy()).sum())
    expected = _per_customer_loglik(family_, psi, coef, design, codes, table)
    assert total == pytest.approx(expected, rel=1e-10)


@pytest.mark.filterwarnings("ignore:The optimizer did not converge")
def test_pointwise_loglik_with_covariates_is_the_per_customer_loglik(
        covariate_customers: pd.DataFrame) -> None:
    """A fitted model's pointwise log-likelihood: its profiles, its coefficients.

    The estimator's profile code is the same for every family (the family only names the
    shifted coordinate and its sign, covered above); Weibull shares its compiled structure
    with the covariate model of this module.
    """
    table = covariate_customers.head(400)
    model = bayesclv.RetentionModel(method="map", covariates=["age", "channel"],
                                    random_seed=0).fit(table)
    loglik, counts = model.pointwise_loglik(table)
    total = float((loglik.to_numpy()[0, 0] * counts).sum())
    psi = model.posterior_["retention_psi"].to_numpy()[0, 0]
    coef = model.posterior_["retention_coef"].to_numpy()[0, 0]
    design = model.covariates_.transform(table, pd.Index(table["customer_id"]))
    codes = pd.Index(model.segments_).get_indexer(table["segment"])
    expected = _per_customer_loglik(model.family_, psi, coef, design, codes, table)
    assert total == pytest.approx(expected, rel=1e-10)


def test_map_fit_finds_the_covariate_effects(covariate_map_model: bayesclv.CLVModel) -> None:
    for part, model in (("retention", covariate_map_model.retention_model_),
                        ("spend", covariate_map_model.spend_model_)):
        effects = model.covariate_effects()
        assert list(effects.index) == ["age", "channel[web]"]
        for feature, truth in TRUTH[part].items():
            # Within 20% of each effect: a dropped covariate (0) or a sign error fails.
            assert effects.loc[feature, "mean"] == pytest.approx(truth, rel=0.2), part


def test_predict_with_covariates_keeps_rows_and_order(
        covariate_map_model: bayesclv.CLVModel, covariate_customers: pd.DataFrame) -> None:
    shuffled = covariate_customers.sample(frac=1.0, random_state=3).head(500)
    predictions = covariate_map_model.predict(shuffled)
    assert list(predictions["customer_id"]) == list(shuffled["customer_id"])
    assert predictions.index.equals(shuffled.index)
    assert np.isfinite(predictions["clv_mean"]).all()
    # A web customer is worth more than the same customer from the store.
    active = shuffled[~shuffled["churned"]].head(1)
    web, store = active.assign(channel="web"), active.assign(channel="store")
    assert (covariate_map_model.predict(web)["clv_mean"].iloc[0]
            > covariate_map_model.predict(store)["clv_mean"].iloc[0])
    # Segment totals add up the customers, whatever their profiles.
    report = covariate_map_model.segment_report(shuffled)
    assert report["n_customers"].sum() == len(shuffled)
    assert report["total_mean"].sum() == pytest.approx(predictions["clv_mean"].sum(), rel=0.05)


def test_predict_needs_the_covariate_columns(covariate_map_model: bayesclv.CLVModel,
                                            covariate_customers: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match=r"\['channel'\] missing"):
        covariate_map_model.predict(covariate_customers.drop(columns="channel"))
    with pytest.raises(DataValidationError, match="levels not seen in training"):
        covariate_map_model.predict(covariate_customers.head(3).assign(channel="phone"))
    with pytest.warns(CovariateRangeWarning, match="'age'"):
        covariate_map_model.predict(covariate_customers.head(3).assign(age=150.0))


def test_posterior_predictive_churn_with_covariates(
        covariate_map_model: bayesclv.CLVModel, covariate_customers: pd.DataFrame) -> None:
    retention = covariate_map_model.retention_model_
    with pytest.raises(ValueError, match="pass the customer table"):
        retention.posterior_predictive_churn()
    check = retention.posterior_predictive_churn(covariate_customers)
    assert check["at_risk"].sum() == retention.risk_set_["at_risk"].sum()
    assert check["inside"].mean() > 0.8


def test_covariate_model_saves_and_loads(covariate_map_model: bayesclv.CLVModel,
                                         covariate_customers: pd.DataFrame,
                                         tmp_path) -> None:
    loaded = bayesclv.load(covariate_map_model.save(tmp_path / "model.nc"))
    assert loaded.retention_model_.covariates_.to_dict() == \
        covariate_map_model.retention_model_.covariates_.to_dict()
    head = covariate_customers.head(200)
    pd.testing.assert_frame_equal(loaded.predict(head), covariate_map_model.predict(head))


def test_covariate_effects_without_covariates_is_an_error() -> None:
    customers = bayesclv.datasets.load_example()
    model = bayesclv.SpendModel(method="map", random_seed=0).fit(customers)
    with pytest.raises(ValueError, match="without covariates"):
        model.covariate_effects()


@pytest.mark.parametrize("bad", ["age", [], ["age", "age"], [1]])
def test_covariates_parameter_is_checked(bad: object) -> None:
    customers = bayesclv.datasets.load_example()
    with pytest.raises(ValueError, match="'covariates' parameter"):
        bayesclv.RetentionModel(method="map", covariates=bad).fit(customers)


def test_customer_columns_cannot_be_covariates() -> None:
    customers = bayesclv.datasets.load_example()
    with pytest.raises(DataValidationError, match="already used by the model"):
        bayesclv.RetentionModel(method="map", covariates=["tenure"]).fit(customers)


@pytest.mark.slow
def test_nuts_recovers_covariate_effects_with_calibrated_intervals() -> None:
    """Known effects on retention and spend: 94% intervals cover every true coefficient."""
    customers, _ = simulate_customers(5000, SEGMENTS, observation_periods=24,
                                      covariates=COVARIATES, random_seed=21)
    # Whole years, as recorded in practice: customers then share likelihood rows.
    customers["age"] = customers["age"].round()
    model = bayesclv.CLVModel(covariates=["age", "channel"], chains=2, draws=300, tune=300,
                              random_seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(customers)
    for part, sub in (("retention", model.retention_model_), ("spend", model.spend_model_)):
        effects = sub.covariate_effects(hdi_prob=0.94)
        for feature, truth in TRUTH[part].items():
            row = effects.loc[feature]
            assert row["hdi_low"] <= truth <= row["hdi_high"], (part, feature, row.to_dict())
            assert row["sd"] < (0.006 if feature == "age" else 0.1), (part, feature)


def test_forecasts_and_programmes_with_covariates_add_up_to_the_segment_report(
        covariate_map_model, covariate_customers, assert_forecast_adds_up):
    model, customers = covariate_map_model, covariate_customers
    _, report = assert_forecast_adds_up(model, customers, predictive_draws=100)
    programme = model.scenario(customers, churn_reduction=0.1)
    np.testing.assert_allclose(programme.loc[report.index, "baseline_mean"].to_numpy(),
                               report["total_mean"].to_numpy(), rtol=1e-10)
    assert (programme["delta_mean"] > 0).all()
    active = model.retention_model_.forecast_active(customers, periods=24,
                                                    predictive_draws=100)
    np.testing.assert_allclose(
        active["active_mean"].to_numpy(),
        model.forecast(customers, periods=24, predictive_draws=100)["active_mean"].to_numpy(),
        rtol=1e-12)

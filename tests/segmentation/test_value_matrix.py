"""The value matrix, segment strategies and the CLV plots, on a MAP fit and a mocked posterior."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from _simulated import MODEL_ARGS, N_SEGMENTS, customer_table  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

import bayesclv  # noqa: E402
from bayesclv import CLVModel, DataValidationError, NotFittedError, value_matrix  # noqa: E402
from bayesclv.data import validate_customers  # noqa: E402
from bayesclv.models.spend import GammaGammaSpend  # noqa: E402
from bayesclv.plotting import plot_clv_distribution, plot_value_matrix  # noqa: E402
from bayesclv.segmentation import (  # noqa: E402
    SEGMENT_STRATEGIES,
    VALUE_QUADRANTS,
    KMeansSegmenter,
    default_segment_strategy,
    segment_strategies,
)
from bayesclv.valuation.customers import BLOCK, CustomerValuation  # noqa: E402

QUADRANT_PROBS = [f"prob_{name}" for name in VALUE_QUADRANTS]


@pytest.fixture(scope="module")
def segmented():
    return KMeansSegmenter(n_segments=N_SEGMENTS, random_state=0).fit_transform(customer_table())


@pytest.fixture(scope="module")
def model(segmented):
    return CLVModel(**MODEL_ARGS).fit(segmented)


@pytest.fixture(scope="module")
def matrix(model, segmented):
    return value_matrix(model, segmented)


# --- value_matrix on a fitted model --------------------------------------------------------


def test_one_row_per_customer_in_input_order_with_input_index(model, segmented):
    shuffled = segmented.sample(frac=1.0, random_state=1)
    shuffled.index = pd.Index([f"row{i}" for i in range(len(shuffled))])
    out = value_matrix(model, shuffled)
    assert list(out.index) == list(shuffled.index)
    assert list(out["customer_id"]) == list(shuffled["customer_id"])
    assert list(out.columns) == ["customer_id", "segment", "current_value", "future_value",
                                 "prob_high_future", *QUADRANT_PROBS, "quadrant",
                                 "quadrant_prob"]


def test_probabilities_quadrants_and_values(model, segmented, matrix):
    probs = matrix[QUADRANT_PROBS].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert ((probs >= 0) & (probs <= 1)).all()
    names = np.asarray(list(VALUE_QUADRANTS))
    assert (matrix["quadrant"].astype(str).to_numpy() == names[probs.argmax(axis=1)]).all()
    np.testing.assert_allclose(matrix["quadrant_prob"], probs.max(axis=1))
    assert (matrix["quadrant_prob"] >= 0.5).all()
    # Future value is the posterior mean CLV of predict; current value the historical margin.
    np.testing.assert_allclose(matrix["future_value"], model.predict(segmented)["clv_mean"])
    np.testing.assert_allclose(matrix["current_value"],
                               0.3 * segmented["mean_spend"] * segmented["n_periods_active"])
    # Thresholds are the medians; the current value is known, so one axis is certain.
    assert matrix.attrs["current_threshold"] == np.median(matrix["current_value"])
    assert matrix.attrs["future_threshold"] == np.median(matrix["future_value"])
    high_current = matrix["current_value"] > matrix.attrs["current_threshold"]
    assert (matrix.loc[high_current, ["prob_rising", "prob_low"]] == 0).all().all()
    assert (matrix.loc[~high_current, ["prob_star", "prob_fading"]] == 0).all().all()
    # Churned customers are worth nothing in the future: surely not high future value.
    churned = segmented["churned"].to_numpy()
    assert (matrix.loc[churned, "prob_high_future"] == 0).all()
    # A MAP fit draws each customer's spend map_draws times: real probabilities in between.
    assert matrix.attrs["n_draws"] == 200
    assert ((matrix["prob_high_future"] > 0) & (matrix["prob_high_future"] < 1)).any()
    assert set(matrix["quadrant"]) == set(VALUE_QUADRANTS)


def test_given_thresholds_and_current_column(model, segmented):
    everyone_high = value_matrix(model, segmented, threshold=(-1.0, 1e12))
    assert (everyone_high["quadrant"] == "fading").all()
    assert everyone_high.attrs["current_threshold"] == -1.0
    table = segmented.assign(revenue=np.arange(len(segmented), dtype=float))
    out = value_matrix(model, table, current_col="revenue", threshold=(100.0, "median"))
    np.testing.assert_array_equal(out["current_value"], table["revenue"])
    assert out.attrs["current_threshold"] == 100.0
    assert (out["current_value"] > 100).sum() == (out[["prob_star", "prob_fading"]].sum(axis=1)
                                                  == 1).sum()


def test_single_draw_gives_certain_quadrants(model, segmented):
    out = value_matrix(model, segmented, map_draws=1)
    assert out.attrs["n_draws"] == 1
    assert set(np.unique(out["quadrant_prob"])) == {1.0}


def test_pipeline_is_accepted(model, segmented):
    pipe = Pipeline([("segment", KMeansSegmenter(n_segments=N_SEGMENTS, random_state=0)),
                     ("value", model)])
    pipe.steps[0][1].fit(customer_table())
    raw = customer_table()
    pd.testing.assert_frame_equal(value_matrix(pipe, raw), value_matrix(model, segmented))


@pytest.mark.parametrize("kwargs,error,match", [
    ({"threshold": 5.0}, ValueError, "threshold must be 'median' or a pair"),
    ({"threshold": ("mean", 1.0)}, ValueError, "threshold must be"),
    ({"threshold": (1.0, np.nan)}, ValueError, "threshold must be"),
    ({"map_draws": 0}, ValueError, "map_draws must be an int >= 1"),
    ({"current_col": "nope"}, DataValidationError, "'nope' \\(current_col\\) missing"),
])
def test_invalid_arguments(model, segmented, kwargs, error, match):
    with pytest.raises(error, match=match):
        value_matrix(model, segmented, **kwargs)


def test_invalid_current_values_name_the_rows(model, segmented):
    table = segmented.assign(revenue=1.0)
    table.loc[[3, 7], "revenue"] = np.nan
    ids = table["customer_id"]
    with pytest.raises(DataValidationError, match=f"'revenue'.*2 row.*{ids[3]}.*{ids[7]}"):
        value_matrix(model, table, current_col="revenue")


def test_not_a_model_and_unfitted(segmented):
    with pytest.raises(TypeError, match="fitted bayesclv.CLVModel"):
        value_matrix(KMeansSegmenter(), segmented)
    with pytest.raises(NotFittedError):
        value_matrix(CLVModel(), segmented)


def test_exported_at_top_level():
    assert bayesclv.value_matrix is value_matrix
    assert "value_matrix" in bayesclv.__all__


# --- value_matrix on a mocked posterior: chunked probabilities are the draws' shares ----------


class _StubModel:
    """Quacks like a fitted CLVModel whose valuation is a synthetic many-draw posterior."""

    margin, cost_per_period, customer_col, period_ = 0.3, 1.0, "customer_id", "month"

    def __init__(self, valuation):
        self.valuation = valuation

    def predict(self, X):  # pragma: no cover - only its presence is checked
        raise NotImplementedError

    def customer_valuation(self, X):
        return validate_customers(X), ["s0", "s1", "s2"], self.valuation


def _mock(n_customers, n_samples=60):
    rng = np.random.default_rng(4)
    spend = GammaGammaSpend()
    psi = np.stack([np.log(rng.uniform(1, 5, (n_samples, 3))),
                    np.log(rng.uniform(1.5, 4, (n_samples, 3))),
                    np.log(rng.uniform(10, 90, (n_samples, 3)))], axis=-1)
    x = rng.integers(1, 10, n_customers)
    tenure = x + rng.integers(0, 5, n_customers)
    valuation = CustomerValuation(
        sums={"discounted": rng.uniform(5, 30, (n_samples, 10))},
        pair=rng.integers(0, 10, n_customers), segment=rng.integers(0, 3, n_customers),
        active=rng.uniform(size=n_customers) < 0.7, spend_family=spend,
        spend_params=spend.natural(psi),
        inputs=np.c_[x.astype(float), rng.gamma(2.0, 20.0, n_customers)],
        margin=0.3, cost_per_period=1.0, seed=9,
    )
    table = pd.DataFrame({"customer_id": np.arange(n_customers), "tenure": tenure,
                          "churned": ~valuation.active, "n_periods_active": x,
                          "mean_spend": valuation.inputs[:, 1]})
    return _StubModel(valuation), table


def test_probabilities_are_shares_of_draws_and_do_not_depend_on_chunks(monkeypatch):
    stub, table = _mock(2 * BLOCK + 37)
    full = np.concatenate([v for _, v in stub.valuation.iter_values()], axis=1)
    out = value_matrix(stub, table)
    threshold = out.attrs["future_threshold"]
    np.testing.assert_array_equal(out["prob_high_future"], (full > threshold).mean(axis=0))
    assert out.attrs["n_draws"] == 60
    expected_current = 0.3 * table["mean_spend"] * table["n_periods_active"] - table["tenure"]
    np.testing.assert_allclose(out["current_value"], expected_current)

    widths = []
    original = CustomerValuation.iter_values

    def recording(self):
        for sl, values in original(self):
            widths.append(values.shape[1])
            yield sl, values

    monkeypatch.setattr(CustomerValuation, "chunk_size", lambda self: BLOCK)
    monkeypatch.setattr(CustomerValuation, "iter_values", recording)
    chunked = value_matrix(stub, table)
    pd.testing.assert_frame_equal(chunked, out)
    assert max(widths) == BLOCK and len(widths) == 3  # never draws x all customers


# --- segment strategies ----------------------------------------------------------------------


def test_segment_report_keeps_columns_and_adds_rank_and_strategy(model, segmented):
    report = model.segment_report(segmented)
    assert list(report.columns[:11]) == [
        "n_customers", "n_active", "clv_per_customer_mean", "clv_per_customer_hdi_low",
        "clv_per_customer_hdi_high", "total_mean", "total_hdi_low", "total_hdi_high",
        "share_mean", "share_hdi_low", "share_hdi_high"]
    assert list(report.columns[11:]) == ["value_rank", "strategy"]
    assert sorted(report["value_rank"]) == list(range(1, N_SEGMENTS + 1))
    best = report["clv_per_customer_mean"].idxmax()
    assert report.loc[best, "value_rank"] == 1
    assert report.loc[best, "strategy"] in ("retain", "develop")
    assert set(report["strategy"]) <= set(SEGMENT_STRATEGIES)
    pd.testing.assert_series_equal(report["strategy"], default_segment_strategy(report))


def test_segment_report_strategy_mapping_and_callable(model, segmented):
    segments = model.segment_report(segmented).index
    mapping = {s: f"plan-{s}" for s in segments}
    report = model.segment_report(segmented, strategy=mapping)
    assert report["strategy"].to_dict() == mapping
    report = model.segment_report(
        segmented, strategy=lambda row: "top" if row["value_rank"] == 1 else row.name)
    assert sorted(report["strategy"]) == sorted(["top", *[s for s in segments if
                                                          report.loc[s, "value_rank"] != 1]])
    with pytest.raises(ValueError, match="no entry for segment"):
        model.segment_report(segmented, strategy={segments[0]: "retain"})
    with pytest.raises(TypeError, match="strategy must be None, a mapping"):
        model.segment_report(segmented, strategy="retain")


def test_default_strategy_covers_the_four_cells():
    report = pd.DataFrame({
        "n_customers": [5, 20, 30, 140],
        "clv_per_customer_mean": [100.0, 60.0, 10.0, 7.0],
        "total_mean": [500.0, 1200.0, 300.0, 980.0],
    }, index=pd.Index(["a", "b", "c", "d"], name="segment"))
    report["share_mean"] = report["total_mean"] / report["total_mean"].sum()
    assert default_segment_strategy(report).to_dict() == {
        "a": "develop", "b": "retain", "c": "maintain", "d": "upgrade"}
    one = report.iloc[:1].assign(share_mean=1.0)
    assert default_segment_strategy(one).tolist() == ["retain"]
    with pytest.raises(ValueError, match="lacks column"):
        default_segment_strategy(report.drop(columns="share_mean"))
    assert segment_strategies(report, {"a": "x", "b": "y", "c": "z", "d": "w"}).tolist() == [
        "x", "y", "z", "w"]


# --- plots -------------------------------------------------------------------------------------


def test_plot_clv_distribution(model, segmented):
    import matplotlib.pyplot as plt

    figure = plot_clv_distribution(model, segmented)
    left, right = figure.axes
    assert left.get_title() == "CLV per customer (posterior mean)"
    assert right.get_title() == "Segment total (posterior)"
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert len(labels) == N_SEGMENTS
    report = model.segment_report(segmented)
    top = report["clv_per_customer_mean"].idxmax()
    assert labels[-1].startswith(f"{top} (n=")  # highest value at the top
    plt.close(figure)
    _, axes = plt.subplots(1, 2)
    assert plot_clv_distribution(model, segmented, axes=axes) is axes[0].figure
    with pytest.raises(ValueError, match="Need 2 axes"):
        plot_clv_distribution(model, segmented, axes=axes[:1])
    plt.close("all")


def test_plot_value_matrix(model, segmented, matrix):
    import matplotlib.pyplot as plt

    figure = plot_value_matrix(model, segmented, matrix=matrix)
    ax = figure.axes[0]
    lines = ax.get_lines()
    assert [line.get_xdata()[0] for line in lines[:1]] == [matrix.attrs["current_threshold"]]
    assert lines[1].get_ydata()[0] == matrix.attrs["future_threshold"]
    counts = matrix["quadrant"].value_counts()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == [f"{q} ({counts[q]:,})" for q in VALUE_QUADRANTS]
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(offsets) == len(matrix)
    plt.close(figure)
    # Without a precomputed matrix it computes one, passing keyword arguments on.
    figure = plot_value_matrix(model, segmented, threshold=(0.0, "median"))
    assert figure.axes[0].get_lines()[0].get_xdata()[0] == 0.0
    plt.close(figure)

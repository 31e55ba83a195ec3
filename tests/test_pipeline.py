"""End to end: a scikit-learn Pipeline segments a summarised transaction log and values it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _simulated import MODEL_ARGS, N_SEGMENTS, customer_table
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from bayesclv import CLVModel
from bayesclv.cli import _format_report
from bayesclv.segmentation import SEGMENT_STRATEGIES, KMeansSegmenter, value_segment_names


def test_pipeline_segments_and_values_a_transaction_log():
    customers = customer_table()
    customers.index = pd.RangeIndex(100, 100 + len(customers))
    pipe = Pipeline([
        ("segment", KMeansSegmenter(n_segments=N_SEGMENTS, random_state=0)),
        ("value", CLVModel(**MODEL_ARGS)),
    ])
    assert pipe.fit(customers) is pipe
    assert clone(pipe).get_params()["value__horizon"] == MODEL_ARGS["horizon"]

    predictions = pipe.predict(customers)
    assert list(predictions.index) == list(customers.index)
    assert list(predictions["customer_id"]) == list(customers["customer_id"])
    assert set(predictions["segment"]) == set(value_segment_names(N_SEGMENTS))
    assert predictions.attrs["period"] == "month"
    assert np.isfinite(predictions["clv_mean"]).all()
    assert (predictions.loc[customers["churned"].to_numpy(), "clv_mean"] == 0).all()
    # The pipeline predicts exactly what its steps do one after the other.
    segmented = pipe[:-1].transform(customers)
    pd.testing.assert_frame_equal(predictions, pipe[-1].predict(segmented))

    report = pipe[-1].segment_report(segmented)
    assert report["n_customers"].sum() == len(customers)
    np.testing.assert_allclose(report["share_mean"].sum(), 1.0)
    assert set(report["strategy"]) <= set(SEGMENT_STRATEGIES)
    print(f"\n{len(customers):,} customers; total residual value "
          f"{report['total_mean'].sum():,.0f}\n{_format_report(report)}")

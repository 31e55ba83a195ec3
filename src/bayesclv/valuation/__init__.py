"""Valuation: arrays in, arrays out; no estimator, no PyMC.

* :mod:`~bayesclv.valuation.survival`: survival sums over the future per (segment,
  tenure) pair;
* :mod:`~bayesclv.valuation.customers`: each customer's value, streamed in chunks
  (:class:`~bayesclv.valuation.customers.CustomerValuation`), and spend summaries;
* :mod:`~bayesclv.valuation.kernels`: the compiled loops, which take a spend family's
  arrays and compiled functions;
* :mod:`~bayesclv.valuation.segments`: value per customer, total and share per segment;
* :mod:`~bayesclv.valuation.decisions`: prospects, realised value, comparisons.
"""

"""The saved-model format: writing a fitted estimator and reading its parts, without pickle.

A saved model is an :class:`xarray.DataTree` written with the ``h5netcdf`` engine (a
file) or as a Zarr store (a directory, or a path ending in ``.zarr``):

* ``posterior`` and, for NUTS fits, ``sample_stats``: the fitted draws, as ArviZ groups
  (a :class:`CLVModel` has one subtree per sub-model, ``retention_model/`` and
  ``spend_model/``);
* ``risk_set`` and ``groups`` (retention models): the sufficient statistics that
  :meth:`RetentionModel.life_table` and :meth:`RetentionModel.posterior_predictive_churn`
  read; their size is bounded by segments x periods, not by customers;
* ``data``: the customer table, only when ``include_data`` is given;
* root attributes: ``format`` (``"bayesclv-model"``), ``format_version`` (an int),
  ``library_version``, ``config`` (a JSON string: the estimator's class name, its
  ``get_params()`` and its fitted non-array state) and ``config_sha256`` (the SHA-256 of
  ``config``).

A segmenter (``RFMSegmenter``, ``KMeansSegmenter``) has no arrays: its config holds its
fitted state as plain JSON. A :class:`~sklearn.pipeline.Pipeline` of segmenters ending in
an estimator has the config ``{"estimator": "Pipeline", "params": {"verbose": ...},
"steps": [[name, step config], ...]}`` and the estimator's groups under ``steps/<i>/``
(``i`` its position, not its name).

This module knows no estimator class: each estimator declares what it saves
(``_saved_state``, ``_saved_children``, ``_requirements``), each segmenter gives its
fitted state (``_fitted_state``), and :func:`bayesclv.io.load`, above the estimators,
looks the class a file names up in a fixed table and rebuilds it. Nothing in a file is
unpickled, evaluated or imported. See ``docs/security.md``.
"""

from bayesclv.storage.layout import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MAX_ELEMENTS,
    READABLE_VERSIONS,
    SAVED_SEGMENTERS,
    array_digest,
)
from bayesclv.storage.reading import checksums_of, load_data
from bayesclv.storage.writing import params_json, save

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MAX_ELEMENTS", "READABLE_VERSIONS",
           "SAVED_SEGMENTERS", "array_digest", "checksums_of", "load_data", "params_json",
           "save"]

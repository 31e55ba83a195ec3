"""What a saved model holds: the format's name and versions, its groups, its bounds.

Shared by :mod:`bayesclv.storage.writing` and :mod:`bayesclv.storage.reading`, with the
digest both compute of every saved array.
"""

from __future__ import annotations

import hashlib

import numpy as np

from bayesclv.segmentation import KMeansSegmenter, RFMSegmenter

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MAX_ELEMENTS", "READABLE_VERSIONS",
           "SAVED_SEGMENTERS", "array_digest"]

FORMAT_NAME = "bayesclv-model"
#: Version of the layout written by :func:`save`.
#: Version 3: the config holds a SHA-256 of every saved array (``checksums``), checked on
#: load. Version 2: the spend posterior's pooled coordinates are ``(log mean spend,
#: log p, log(q - 1))`` and ``priors_["centered"]`` is ``"auto"`` or a mask per segment and
#: coordinate;
#: version 1 files pooled ``(log p, log(q - 1), log gamma)`` and cannot be read as 2.
FORMAT_VERSION = 3
#: The versions :func:`load` reads: 3, and 2 (the same layout without checksums).
READABLE_VERSIONS = (2, 3)
#: The most elements one saved array may declare (4 GB of float64). Shapes are checked
#: against it before anything is read, so a small file cannot make ``load`` allocate a
#: huge array.
MAX_ELEMENTS = 500_000_000

_TABLES = {
    "risk_set_": ("risk_set", {"segment": "int64", "period": "int64", "at_risk": "int64",
                               "churned": "int64"}),
    "groups_": ("groups", {"segment": "int64", "entry": "int64", "tenure": "int64",
                           "churned": "bool", "count": "int64"}),
}
_SAMPLE_GROUPS = ("posterior", "sample_stats")
#: The segmenters that can be saved, alone or as the steps of a Pipeline before its model.
SAVED_SEGMENTERS = (RFMSegmenter, KMeansSegmenter)
_TABLE_GROUPS = tuple(group for group, _ in _TABLES.values())


def array_digest(values: np.ndarray) -> str:
    """SHA-256 of an array's values, shape and kind, the same after a save and a load.

    Values are put in one canonical form first (little-endian int64, float64 or uint8,
    UTF-8 text), because a reader may give back another width or string type than was
    written.
    """
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind in "OUST":
        data = "\x1f".join(str(v) for v in values.ravel()).encode("utf-8")
        kind = "text"
    elif kind == "b":
        data = np.ascontiguousarray(values, dtype=np.uint8).tobytes()
    elif kind in "iu":
        data = np.ascontiguousarray(values, dtype="<i8").tobytes()
        kind = "int"
    elif kind == "f":
        data = np.ascontiguousarray(values, dtype="<f8").tobytes()
    elif kind in "mM":
        data = np.ascontiguousarray(values.astype(f"{values.dtype.str[1:2]}8[ns]")
                                    .view("<i8")).tobytes()
    else:
        raise ValueError(f"cannot save an array of dtype {values.dtype}.")
    header = f"{kind}:{values.shape}:".encode()
    return hashlib.sha256(header + data).hexdigest()

"""The compiled structure a fit would sample, read without compiling it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bayesclv import _flat
from bayesclv._callbacks import fingerprint


class _Stop(Exception):
    pass


def structure_of(fit: Callable[[], object], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The fingerprint of the first log density ``fit()`` would compile; nothing is compiled."""
    keys = []

    def record(point, logp, gradient, n_dim, compile_fn):
        keys.append(fingerprint(point, [logp]))
        raise _Stop

    monkeypatch.setattr(_flat, "compile_callbacks", record)
    with pytest.raises(_Stop):
        fit()
    return keys[0]

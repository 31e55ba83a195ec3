"""The C callbacks handed to nutpie: same numbers as PyTensor, compiled once per structure."""

import ctypes

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from bayesclv import _callbacks
from bayesclv._callbacks import before_compiling, compile_callbacks, fingerprint

pytest.importorskip("numba")

DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _graph(data, scale=2.0, reduce=pt.sum, name="y"):
    """A toy log density of a flat point against shared data, and its gradient."""
    point = pt.vector("point", dtype="float64")
    observed = pytensor.shared(np.asarray(data), name=name)
    logp = -reduce((point[: observed.shape[0]] - observed) ** 2) / scale
    return point, logp, lambda: pt.grad(logp, point)


def _compile_numba(inputs, outputs):
    return pytensor.function(inputs, outputs, mode="NUMBA")


def _refuse(*args):
    raise AssertionError("compiled although the structure was in the index")


@pytest.fixture
def index(tmp_path, monkeypatch):
    monkeypatch.setattr(_callbacks, "_index_path", lambda key: tmp_path / f"{key}.json")
    return tmp_path


def _logp(callbacks, x):
    gradient, value = np.zeros(x.size), np.zeros(1)
    code = callbacks.logp.ctypes(x.size, x.ctypes.data_as(DOUBLE_P),
                                 gradient.ctypes.data_as(DOUBLE_P),
                                 value.ctypes.data_as(DOUBLE_P), callbacks.meta.ctypes.data)
    assert code == 0
    return value[0], gradient


def _expand(callbacks, x, size):
    out = np.zeros(size)
    code = callbacks.expand.ctypes(x.size, size, x.ctypes.data_as(DOUBLE_P),
                                   out.ctypes.data_as(DOUBLE_P), callbacks.meta.ctypes.data)
    return code, out


def test_fingerprint_follows_structure_and_constants_not_data_values():
    base = fingerprint(*_flat(_graph([1.0, 2.0, 3.0])))
    assert base is not None
    # Other values and another length of the same data: the same compiled code.
    assert fingerprint(*_flat(_graph([5.0, 6.0]))) == base
    # A constant, an op, the data's type or name: another structure.
    assert fingerprint(*_flat(_graph([1.0, 2.0, 3.0], scale=3.0))) != base
    assert fingerprint(*_flat(_graph([1.0, 2.0, 3.0], reduce=pt.prod))) != base
    assert fingerprint(*_flat(_graph(np.array([1, 2, 3], dtype="int64")))) != base
    assert fingerprint(*_flat(_graph([1.0, 2.0, 3.0], name="z"))) != base


def _flat(graph):
    point, logp, gradient = graph
    return point, [logp]


class _Opaque(Op):
    """An op whose equality the fingerprint cannot see (no ``__props__``)."""

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0]


def test_fingerprint_refuses_what_it_cannot_describe():
    point, logp, gradient = _graph([1.0, 2.0])
    assert fingerprint(point, [_Opaque()(logp)]) is None
    unnamed = pytensor.shared(np.ones(2))
    assert fingerprint(point, [(point[:2] * unnamed).sum()]) is None


def test_callbacks_compute_what_pytensor_computes_and_read_new_data(index):
    point, logp, gradient = _graph([1.0, 2.0, 3.0])
    x = np.array([0.5, -1.0, 2.0, 0.25])
    callbacks = compile_callbacks(point, logp, gradient, x.size, _compile_numba)
    reference = pytensor.function([point], [logp, gradient()])(x)
    value, grad = _logp(callbacks, x)
    assert value == pytest.approx(float(reference[0]), rel=1e-15)
    np.testing.assert_allclose(grad, reference[1], rtol=1e-15)

    # Another table of the same structure: loaded from the index, no compiling at all,
    # not even building the gradient, and the callbacks read the new data (another
    # length) through their pointers.
    point, logp, _ = _graph([4.0, -2.0])
    again = compile_callbacks(point, logp, _refuse, x.size, _refuse)
    value, grad = _logp(again, x)
    expected = -((x[:2] - [4.0, -2.0]) ** 2).sum() / 2.0
    assert value == pytest.approx(expected, rel=1e-15)
    np.testing.assert_allclose(grad, np.r_[-(x[:2] - [4.0, -2.0]), 0.0, 0.0], rtol=1e-15)


def test_the_expansion_is_the_point_and_refuses_another_length(index):
    point, logp, gradient = _graph([1.0, 2.0])
    x = np.array([0.5, -1.0, 2.0])
    callbacks = compile_callbacks(point, logp, gradient, x.size, _compile_numba)
    code, out = _expand(callbacks, x, x.size)
    assert code == 0
    np.testing.assert_array_equal(out, x)
    code, out = _expand(callbacks, x, x.size + 1)
    assert code != 0 and not out.any()


def test_a_damaged_index_entry_means_compiling_again(index):
    point, logp, gradient = _graph([1.0, 2.0, 3.0])
    x = np.zeros(3)
    compile_callbacks(point, logp, gradient, x.size, _compile_numba)
    [entry] = index.glob("*.json")
    entry.write_text(entry.read_text().replace('"logp_key": "', '"logp_key": "0'))
    calls = []

    def counting(inputs, outputs):
        calls.append(outputs)
        return _compile_numba(inputs, outputs)

    callbacks = compile_callbacks(point, logp, gradient, x.size, counting)
    assert len(calls) == 1  # the log density, compiled the ordinary way
    assert _logp(callbacks, x)[0] == pytest.approx(-(1.0 + 4.0 + 9.0) / 2.0)


def test_before_compiling_is_told_of_a_structure_missing_from_the_cache_only(index):
    told = []
    point, logp, gradient = _graph([1.0, 2.0, 3.0], name="told")
    with before_compiling(lambda: told.append("compiling")):
        compile_callbacks(point, logp, gradient, 4, _compile_numba)
        assert told == ["compiling"]
        point, logp, _ = _graph([4.0, -2.0], name="told")
        compile_callbacks(point, logp, _refuse, 4, _refuse)  # loaded: nothing to tell
    assert told == ["compiling"]
    point, logp, gradient = _graph([1.0], scale=3.0, name="told")
    compile_callbacks(point, logp, gradient, 4, _compile_numba)  # outside the block
    assert told == ["compiling"]


def test_before_compiling_is_not_told_when_the_cache_cannot_keep_the_result(index,
                                                                             monkeypatch):
    told = []
    point = pt.vector("point", dtype="float64")
    unnamed = pytensor.shared(np.ones(2))  # no fingerprint: compiled, but never indexed
    logp = (point[:2] * unnamed).sum()
    with before_compiling(lambda: told.append("compiling")):
        compile_callbacks(point, logp, lambda: pt.grad(logp, point), 3, _compile_numba)
        monkeypatch.setattr(_callbacks, "_index_writable", lambda key: False)
        point, logp, gradient = _graph([1.0, 2.0], scale=5.0, name="read_only")
        compile_callbacks(point, logp, gradient, 3, _compile_numba)
    assert told == []

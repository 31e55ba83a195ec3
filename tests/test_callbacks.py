"""The C callbacks handed to nutpie: same numbers as PyTensor, compiled once per structure."""

import ctypes

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.traversal import toposort

from bayesclv import _callbacks
from bayesclv._callbacks import (
    FOLDED_PREFIX,
    before_compiling,
    compile_callbacks,
    fingerprint,
    fold_data,
)

pytest.importorskip("numba")

DOUBLE_P = ctypes.POINTER(ctypes.c_double)


def _graph(data, scale=2.0, reduce=pt.sum, name="y"):
    """A toy log density of a flat point against shared data, and what its gradient is of."""
    point = pt.vector("point", dtype="float64")
    observed = pytensor.shared(np.asarray(data), name=name)
    logp = -reduce((point[: observed.shape[0]] - observed) ** 2) / scale
    return point, logp, [point]


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


def _assert_matches_pytensor(callbacks, point, logp, x, rtol):
    """The callbacks' value and gradient at ``x`` are PyTensor's own, to ``rtol``."""
    reference = pytensor.function([point], [logp, pt.grad(logp, point)])(x)
    value, grad = _logp(callbacks, x)
    assert value == pytest.approx(float(reference[0]), rel=rtol)
    np.testing.assert_allclose(grad, reference[1], rtol=rtol)


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
    point, logp, _ = graph
    return point, [logp]


class _Opaque(Op):
    """An op whose equality the fingerprint cannot see (no ``__props__``)."""

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = inputs[0]


def test_fingerprint_refuses_what_it_cannot_describe():
    point, logp, wrt = _graph([1.0, 2.0])
    assert fingerprint(point, [_Opaque()(logp)]) is None
    unnamed = pytensor.shared(np.ones(2))
    assert fingerprint(point, [(point[:2] * unnamed).sum()]) is None


def test_callbacks_compute_what_pytensor_computes_and_read_new_data(index):
    point, logp, wrt = _graph([1.0, 2.0, 3.0])
    x = np.array([0.5, -1.0, 2.0, 0.25])
    callbacks = compile_callbacks(point, logp, wrt, x.size, _compile_numba)
    _assert_matches_pytensor(callbacks, point, logp, x, rtol=1e-15)

    # Another table of the same structure: loaded from the index, no compiling at all,
    # and the callbacks read the new data (another length) through their pointers.
    point, logp, wrt = _graph([4.0, -2.0])
    again = compile_callbacks(point, logp, wrt, x.size, _refuse)
    value, grad = _logp(again, x)
    expected = -((x[:2] - [4.0, -2.0]) ** 2).sum() / 2.0
    assert value == pytest.approx(expected, rel=1e-15)
    np.testing.assert_allclose(grad, np.r_[-(x[:2] - [4.0, -2.0]), 0.0, 0.0], rtol=1e-15)


def test_the_expansion_is_the_point_and_refuses_another_length(index):
    point, logp, wrt = _graph([1.0, 2.0])
    x = np.array([0.5, -1.0, 2.0])
    callbacks = compile_callbacks(point, logp, wrt, x.size, _compile_numba)
    code, out = _expand(callbacks, x, x.size)
    assert code == 0
    np.testing.assert_array_equal(out, x)
    code, out = _expand(callbacks, x, x.size + 1)
    assert code != 0 and not out.any()


def test_a_damaged_index_entry_means_compiling_again(index):
    point, logp, wrt = _graph([1.0, 2.0, 3.0])
    x = np.zeros(3)
    compile_callbacks(point, logp, wrt, x.size, _compile_numba)
    [entry] = index.glob("*.json")
    entry.write_text(entry.read_text().replace('"logp_key": "', '"logp_key": "0'))
    calls = []

    def counting(inputs, outputs):
        calls.append(outputs)
        return _compile_numba(inputs, outputs)

    callbacks = compile_callbacks(point, logp, wrt, x.size, counting)
    assert len(calls) == 1  # the log density, compiled the ordinary way
    assert _logp(callbacks, x)[0] == pytest.approx(-(1.0 + 4.0 + 9.0) / 2.0)


def test_before_compiling_is_told_of_a_structure_missing_from_the_cache_only(index):
    told = []
    point, logp, wrt = _graph([1.0, 2.0, 3.0], name="told")
    with before_compiling(lambda: told.append("compiling")):
        compile_callbacks(point, logp, wrt, 4, _compile_numba)
        assert told == ["compiling"]
        point, logp, wrt = _graph([4.0, -2.0], name="told")
        compile_callbacks(point, logp, [point], 4, _refuse)  # loaded: nothing to tell
    assert told == ["compiling"]
    point, logp, wrt = _graph([1.0], scale=3.0, name="told")
    compile_callbacks(point, logp, wrt, 4, _compile_numba)  # outside the block
    assert told == ["compiling"]


def test_before_compiling_is_not_told_when_the_cache_cannot_keep_the_result(index,
                                                                             monkeypatch):
    told = []
    point = pt.vector("point", dtype="float64")
    unnamed = pytensor.shared(np.ones(2))  # no fingerprint: compiled, but never indexed
    logp = (point[:2] * unnamed).sum()
    with before_compiling(lambda: told.append("compiling")):
        compile_callbacks(point, logp, [point], 3, _compile_numba)
        monkeypatch.setattr(_callbacks, "_index_writable", lambda key: False)
        point, logp, wrt = _graph([1.0, 2.0], scale=5.0, name="read_only")
        compile_callbacks(point, logp, wrt, 3, _compile_numba)
    assert told == []


def _periods_graph(periods, counts):
    """A toy density reading ``log t`` and float counts of integer data, as a family does.

    Written on slices of the point, as a model's variables are, one of them as long as
    the data (a parameter per period); returns the slices too.
    """
    point = pt.vector("point", dtype="float64")
    period = pytensor.shared(np.asarray(periods, dtype="float64"), name="period")
    count = pytensor.shared(np.asarray(counts, dtype="int64"), name="count")
    n = period.shape[0]
    shape, rate = point[0:1].reshape((1,)), point[1:1 + n].reshape((n,))
    log_t = pt.log(pt.maximum(period, 1.0))
    logp = (count.astype("float64") * (shape * log_t - pt.exp(rate) * period)).sum()
    return point, logp - (shape ** 2).sum() - (rate ** 2).sum(), [shape, rate]


def test_arrays_of_the_data_alone_are_folded_once_and_nothing_else():
    point, logp, wrt = _periods_graph([1.0, 2.0, 5.0], [3, 0, 2])
    folded_logp, folded = fold_data(point, logp, keep=wrt)
    values = sorted(tuple(np.round(f.get_value(), 12)) for f in folded)
    # log max(t, 1) and the float counts; not the integer length (a shape), not the point.
    assert values == sorted([tuple(np.round(np.log([1.0, 2.0, 5.0]), 12)), (3.0, 0.0, 2.0)])
    assert all(f.name.startswith(FOLDED_PREFIX) for f in folded)
    x = np.array([0.3, -0.2, 0.1, 0.4])
    reference = pytensor.function([point], logp)(x)
    assert pytensor.function([point], folded_logp)(x) == pytest.approx(reference, rel=1e-15)
    # Nothing of the data alone left: no log and no cast of the data in the folded graph.
    ops = {type(node.op.scalar_op).__name__ for node in toposort([folded_logp])
           if hasattr(node.op, "scalar_op")}
    assert "Log" not in ops and "Maximum" not in ops
    # Negative control: the graph before folding has them.
    assert "Log" in {type(node.op.scalar_op).__name__ for node in toposort([logp])
                     if hasattr(node.op, "scalar_op")}


def test_folded_callbacks_compute_what_pytensor_computes_for_each_table(index):
    point, logp, wrt = _periods_graph([1.0, 2.0, 5.0], [3, 0, 2])
    x = np.array([0.3, -0.2, 0.1, 0.4])
    # The gradient is taken with respect to the slices, which folding must keep as they
    # are: with copies of them in the graph, part of the gradient would be left out.
    callbacks = compile_callbacks(point, logp, wrt, x.size, _compile_numba)
    _assert_matches_pytensor(callbacks, point, logp, x, rtol=1e-14)
    # Another table, loaded from the index: its own arrays are folded, not the first's.
    point, logp, wrt = _periods_graph([4.0, 1.0, 3.0, 7.0], [1, 5, 0, 2])
    x = np.array([0.3, -0.2, 0.1, 0.4, -0.5])
    again = compile_callbacks(point, logp, wrt, x.size, _refuse)
    _assert_matches_pytensor(again, point, logp, x, rtol=1e-14)

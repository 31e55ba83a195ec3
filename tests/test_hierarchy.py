import numpy as np

from bayesclv._hierarchy import draw_new_segments


def test_new_segment_draws_follow_the_population():
    rng = np.random.default_rng(0)
    mu = np.broadcast_to(np.array([1.0, -0.5]), (2, 5000, 2)).copy()
    chol = np.broadcast_to(np.array([[0.5, 0.0], [0.3, 0.2]]), (2, 5000, 2, 2)).copy()
    draws = draw_new_segments(mu, chol, ["new"], seed=3, stream="retention")[:, :, 0, :]
    flat = draws.reshape(-1, 2)
    np.testing.assert_allclose(flat.mean(axis=0), [1.0, -0.5], atol=0.03)
    np.testing.assert_allclose(np.cov(flat.T), chol[0, 0] @ chol[0, 0].T, atol=0.02)
    del rng


def test_new_segment_draws_depend_on_label_not_on_company():
    mu = np.zeros((1, 50, 2))
    chol = np.broadcast_to(np.eye(2), (1, 50, 2, 2)).copy()
    alone = draw_new_segments(mu, chol, ["x"], seed=1, stream="spend")[:, :, 0]
    together = draw_new_segments(mu, chol, ["y", "x"], seed=1, stream="spend")[:, :, 1]
    np.testing.assert_array_equal(alone, together)
    other_stream = draw_new_segments(mu, chol, ["x"], seed=1, stream="retention")[:, :, 0]
    assert not np.allclose(alone, other_stream)

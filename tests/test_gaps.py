"""Gap filling along time (ltlib.gaps), shared by clustering and classification."""
import numpy as np
import pytest

from ltlib.gaps import fill_gaps

nan = np.nan


def test_fill_gaps_hand_case():
    X = np.array([[nan, 1.0, nan, 3.0, nan, nan],
                  [0.0, nan, nan, nan, 4.0, 5.0],
                  [2.0, 2.5, 3.0, 3.5, 4.0, 4.5],
                  [nan, nan, nan, 7.0, nan, nan],
                  [nan, nan, nan, nan, nan, nan]], dtype=np.float32)
    before = X.copy()
    F, n_valid = fill_gaps(X)
    np.testing.assert_allclose(F[:4], [[1, 1, 2, 3, 3, 3],
                                       [0, 1, 2, 3, 4, 5],
                                       [2.0, 2.5, 3.0, 3.5, 4.0, 4.5],
                                       [7, 7, 7, 7, 7, 7]], rtol=0, atol=1e-12)
    assert np.isnan(F[4]).all()  # nothing observed: stays NaN
    assert F.dtype == np.float64 and n_valid.tolist() == [[2], [3], [6], [1], [0]]
    np.testing.assert_array_equal(X, before)  # input untouched
    F32, _ = fill_gaps(X, dtype=np.float32)
    assert F32.dtype == np.float32
    np.testing.assert_allclose(F32, F, atol=1e-6)


def test_fill_gaps_multivariate_and_inf():
    X = np.ones((2, 5, 2))
    X[0, 1:3, 0] = nan
    X[0, :, 1] = nan  # one variable never observed
    X[1, 4, 1] = np.inf  # infinities are missing values too
    F, n_valid = fill_gaps(X)
    assert n_valid.tolist() == [[3, 0], [5, 4]]
    np.testing.assert_array_equal(F[0, :, 0], 1.0)
    assert np.isnan(F[0, :, 1]).all() and (F[1] == 1.0).all()


def test_fill_gaps_matches_np_interp():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 51))
    X[rng.random(X.shape) < 0.4] = nan
    X[:, 0] = np.where(rng.random(300) < 0.5, nan, X[:, 0])
    X[np.isnan(X).all(1), 10] = 1.0
    F, _ = fill_gaps(X, chunk=64)  # several chunks
    t = np.arange(51)
    for i in range(300):
        ok = ~np.isnan(X[i])
        np.testing.assert_allclose(F[i], np.interp(t, t[ok], X[i, ok]), atol=1e-12)


def test_fill_gaps_shapes():
    with pytest.raises(ValueError, match=r"\(n, T\) or \(n, T, d\)"):
        fill_gaps(np.ones(5))
    F, n_valid = fill_gaps(np.empty((0, 51)))
    assert F.shape == (0, 51) and n_valid.shape == (0, 1)

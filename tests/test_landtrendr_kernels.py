"""The LandTrendr kernel's shortcuts give the numbers the plain computation gives, bit for bit.

The model ladder retraces a model only from the segment before the removed vertex and keeps the
bridges of ``_weakest`` between models; each test below checks one shortcut against the
computation it replaces. The F test's closed form is checked against scipy's F distribution.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ltlib.landtrendr import kernels as K


def _series(rng, n=33):
    """A disturbance-positive series: noise, an abrupt loss, a recovery."""
    x = np.arange(n, dtype=np.float64)
    y = 500 + rng.normal(0, 15, n)
    k = int(rng.integers(5, n - 8))
    y[k:] += rng.uniform(100, 400) - np.minimum(x[k:] - k, 12) * rng.uniform(5, 25)
    return x, y


def _trace(x, y, v, s0=0, state=None):
    n, nv = len(y), len(v)
    yfit, slopes, vv, pre = (np.zeros(n) for _ in range(4)) if state is None else (a.copy() for a in state)
    ssr = K._best_trace(x, y, v, yfit, slopes[:nv], vv, s0, pre)
    return ssr, yfit, slopes, vv, pre


@pytest.mark.parametrize("seed", range(20))
def test_retrace_from_the_removed_vertex_equals_a_full_trace(seed):
    rng = np.random.default_rng(seed)
    x, y = _series(rng)
    v = np.sort(rng.choice(np.arange(1, len(y) - 1), 6, replace=False))
    v = np.concatenate([[0], v, [len(y) - 1]]).astype(np.int64)
    ssr0, *state = _trace(x, y, v)
    r = int(rng.integers(1, len(v) - 1))  # the removed vertex
    v2 = np.delete(v, r)
    full = _trace(x, y, v2)
    short = _trace(x, y, v2, s0=r - 1, state=state)
    assert full[0] == short[0]  # the residual sum of squares, exactly
    np.testing.assert_array_equal(full[1], short[1])  # the fit
    np.testing.assert_array_equal(full[2][:len(v2) - 1], short[2][:len(v2) - 1])  # slopes
    np.testing.assert_array_equal(full[3][:len(v2)], short[3][:len(v2)])  # vertex values
    # and the shortcut is a shortcut: a wrong starting state gives a different fit
    if r > 1:
        bad = [a.copy() for a in state]
        bad[2][r - 1] += 1.0
        assert not np.array_equal(full[1], _trace(x, y, v2, s0=r - 1, state=bad)[1])


@pytest.mark.parametrize("seed", range(20))
def test_weakest_with_kept_bridges_equals_a_fresh_search(seed):
    rng = np.random.default_rng(seed)
    x, y = _series(rng)
    n = len(y)
    v = np.concatenate([[0], np.sort(rng.choice(np.arange(1, n - 1), 5, replace=False)), [n - 1]]).astype(np.int64)
    vv = y[v] + rng.normal(0, 5, len(v))
    cache = np.full((4, n), -1.0)
    K._weakest(x, y, v, vv, len(v), cache)  # fills the cache with this model's bridges
    # the next model: new values after a vertex (as a retrace gives), one vertex fewer
    r = int(rng.integers(1, len(v) - 1))
    v2 = np.delete(v, r)
    vv2 = np.delete(vv, r)
    vv2[r - 1:] += rng.normal(0, 5, len(vv2) - r + 1)
    fresh = K._weakest(x, y, v2, vv2, len(v2), np.full((4, n), -1.0))
    assert K._weakest(x, y, v2, vv2, len(v2), cache) == fresh
    # the brute-force definition: the vertex whose bridge has the least MSE
    mse = []
    for i in range(1, len(v2) - 1):
        a, c = v2[i - 1], v2[i + 1]
        line = vv2[i - 1] + (x[a:c + 1] - x[a]) * (vv2[i + 1] - vv2[i - 1]) / (x[c] - x[a])
        mse.append(((line - y[a:c + 1]) ** 2).sum() / (x[c] - x[a]))
    assert fresh == 1 + int(np.argmin(mse))


def test_f_pvalue_closed_form_is_the_f_distribution():
    for n in (6, 20, 33, 51, 80):
        for nv in range(2, 8):
            df1, df2 = 2 * (nv - 1), n - 2 * (nv - 1) - 1
            if df2 <= 0:
                continue
            for f in (1e-5, 0.3, 1.0, 2.5, 7.0, 40.0, 300.0):
                p = K._f_pvalue(f, float(df1), float(df2))
                sf = stats.f.sf(f, df1, df2)
                # one minus the CDF in double precision: within an ulp of 1 of the exact value
                assert p == pytest.approx(sf, abs=2.3e-16, rel=1e-13), (n, nv, f)
    # as IDL/GEE: a model so strong that the CDF rounds to 1 has p = 0 (ties go to the most complex)
    assert stats.f.sf(200.0, 10, 22) < 2 ** -54 and K._f_pvalue(200.0, 10.0, 22.0) == 0.0
    assert K._f_pvalue(0.0, 4.0, 20.0) == 1.0 and K._f_pvalue(1e30, 12.0, 20.0) == 0.0

"""Gap filling of time series along time: one implementation for clustering and classification.

Functions
---------
fill_gaps
    Linear interpolation over missing values, nearest value at the ends.

Callers that need stricter input (e.g. no all-missing series, no infinities) check for it
themselves: :func:`ltlib.trainingset.with_synthetic` and :func:`ltlib.classify.fill_stack`
only pass series with observations; :func:`ltlib.cluster.prepare` sets series with too few
observations aside.
"""
from __future__ import annotations

import numpy as np


def fill_gaps(X, *, dtype=np.float64, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing values of every series by linear interpolation in time.

    Parameters
    ----------
    X : array_like, (n, T) or (n, T, d)
        n series of T time steps (d variables); NaN and +/-inf are missing.
    dtype : numpy dtype, default float64
        Type of the output and of the arithmetic (float32 keeps float32 stacks small).
    chunk : int, default 16384
        Series processed at a time, so the temporaries stay bounded for whole scenes.

    Returns
    -------
    filled : ndarray of ``dtype``, the shape of ``X``
        Gaps between observations interpolated linearly, leading/trailing gaps take the
        first/last observation; a series (variable) without any observation stays NaN.
        Series without gaps are copied as they are; ``X`` is not modified.
    n_valid : ndarray, (n, d) int
        Observations per series and variable (d = 1 for (n, T) input).

    Raises
    ------
    ValueError
        When ``X`` is not (n, T) or (n, T, d).
    """
    X = np.asarray(X)
    X3 = X[:, :, None] if X.ndim == 2 else X
    if X3.ndim != 3:
        raise ValueError(f"X must be (n, T) or (n, T, d), got shape {X.shape}")
    n, T, d = X3.shape
    dtype = np.dtype(dtype)
    out = np.array(X3, dtype=dtype)
    valid_all = np.isfinite(out)
    n_valid = valid_all.sum(axis=1)
    rows = np.flatnonzero(~valid_all.all(axis=(1, 2)))
    t = np.arange(T, dtype=np.int32)[None, :, None]
    for c0 in range(0, len(rows), int(chunk)):
        r = rows[c0:c0 + int(chunk)]
        V, valid = out[r], valid_all[r]
        # index of the previous / next observation at every step (-1 / T when there is none)
        prev = np.maximum.accumulate(np.where(valid, t, -1), axis=1)
        nxt = np.minimum.accumulate(np.where(valid, t, T)[:, ::-1], axis=1)[:, ::-1]
        has_prev, has_next = prev >= 0, nxt < T
        V0 = np.where(valid, V, dtype.type(0))
        vp = np.take_along_axis(V0, np.maximum(prev, 0), axis=1)
        vn = np.take_along_axis(V0, np.minimum(nxt, T - 1), axis=1)
        # the weight in the output type, so float32 input is interpolated in float32
        w = ((t - prev) / np.maximum(nxt - prev, 1)).astype(dtype)
        filled = np.where(has_prev & has_next, vp + (vn - vp) * w,
                          np.where(has_prev, vp, np.where(has_next, vn, dtype.type(np.nan))))
        out[r] = np.where(valid, V, filled)
    return (out[:, :, 0] if X.ndim == 2 else out), n_valid

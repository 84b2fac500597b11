"""Reference implementation of the sequential omnibus test, for tests and the benchmark.

Kept out of the package on purpose: it is the oracle that :func:`ltlib.sar.omnibus` is
compared with (``tests/test_sar.py``) and the baseline that ``benchmarks/bench_sar.py`` times.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ltlib import config
from ltlib.sar import box_sf, q_constants, r_constants


def omnibus_reference(bands, *, enl=config.S1_ENL, alpha=config.S1_ALPHA, median_filter=False):
    """The textbook sequential omnibus test, written the way one would first write it.

    One loop over the start image ell, one over j, numpy over all pixels, a scipy chi2
    p-value for every pixel and test. Slow (O(k^2) full-image tests): it is the reference
    the tests compare :func:`ltlib.sar.omnibus` with and the baseline the benchmark times.

    Parameters
    ----------
    bands : sequence of (k, H, W) array_like
        Linear intensities, one array per polarisation.
    enl, alpha : float
        Equivalent number of looks and significance level.
    median_filter : bool
        3x3 median filter of every p-value image, as :func:`ltlib.sar.omnibus` offers.

    Returns
    -------
    tuple
        ``(cmap, smap, fmap, bmap, valid)`` as in :class:`ltlib.sar.OmnibusResult`.
    """
    X = np.stack([np.asarray(b, np.float64) for b in bands])  # (p, k, H, W)
    p, k, H, W = X.shape
    valid = (np.isfinite(X) & (X > 0)).all((0, 1))
    X = np.where(valid, X, 1.0)
    logdet = np.log(X).sum(0)
    cmap, smap, fmap = (np.zeros((H, W), int) for _ in range(3))
    flags = np.zeros((k - 1, H, W), bool)

    def filt(a):
        return ndimage.median_filter(a, size=3, mode="nearest") if median_filter else a

    for ell in range(1, k):
        s, K = ell - 1, k - ell + 1
        seq = X[:, s:]
        lnq = enl * (p * K * np.log(K) + logdet[s:].sum(0) - K * np.log(seq.sum(1)).sum(0))
        f, rho, om = q_constants(K, enl, p)
        pq = filt(np.where(valid, box_sf(-2 * rho * lnq, f, om), 1.0))
        S = seq[:, 0].copy()
        for j in range(2, K + 1):
            ln_prev = np.log(S).sum(0)
            S = S + seq[:, j - 1]
            lnr = enl * (p * (j * np.log(j) - (j - 1) * np.log(j - 1)) + (j - 1) * ln_prev
                         + logdet[s + j - 1] - j * np.log(S).sum(0))
            f, rho, om = r_constants(j, enl, p)
            pr = filt(np.where(valid, box_sf(-2 * rho * lnr, f, om), 1.0))
            interval = ell + j - 2
            tst = (pr <= alpha) & (pq <= alpha) & (cmap == ell - 1) & valid
            cmap[tst] = interval
            fmap[tst] += 1
            if ell == 1:
                smap[tst] = interval
            flags[interval - 1][tst] = True
    bmap = np.zeros((k - 1, H, W), np.uint8)
    avg, cnt = X[:, 0].copy(), np.ones((H, W))
    for i in range(1, k):
        d = X[:, i] - avg
        cls = np.where((d > 0).all(0), 1, np.where((d < 0).all(0), 2, 3))
        bmap[i - 1] = np.where(flags[i - 1], cls, 0)
        cnt += 1
        avg += (X[:, i] - avg) / cnt
        avg = np.where(flags[i - 1], X[:, i], avg)
        cnt = np.where(flags[i - 1], 1, cnt)
    return cmap, smap, fmap, bmap, valid

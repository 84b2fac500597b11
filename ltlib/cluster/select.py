"""Choosing k: SBD silhouette, the elbow table over k and its knee.

:func:`silhouette` is exact up to ``SILHOUETTE_EXACT_MAX`` series and subsamples above;
:func:`elbow` fits :class:`~ltlib.cluster.KShape` for every k and tabulates inertia,
silhouette and fit time; :func:`knee` is the Kneedle knee (Satopaa et al. 2011) of the
inertia curve, computed by yellowbrick's ``KneeLocator``.
"""
from __future__ import annotations

import warnings

import numpy as np

from .kshape import KShape
from .sbd import _check_clean, as_dataset, sbd, znormalize

#: ``silhouette`` is exact up to this many series and subsamples above it by default.
SILHOUETTE_EXACT_MAX = 5000


def silhouette_from_distances(D, labels) -> float:
    """Mean silhouette from a precomputed (n, n) distance matrix (sklearn's definition:
    a series alone in its cluster scores 0)."""
    D = np.asarray(D, dtype=np.float64)
    labels = np.asarray(labels)
    n = len(labels)
    if D.shape != (n, n):
        raise ValueError(f"distance matrix is {D.shape}, expected ({n}, {n})")
    uniq, lab = np.unique(labels, return_inverse=True)
    if not 2 <= len(uniq) <= n - 1:
        raise ValueError(f"silhouette needs 2 <= number of clusters <= n - 1, got {len(uniq)} clusters for {n} series")
    onehot = np.zeros((n, len(uniq)))
    onehot[np.arange(n), lab] = 1.0
    sums = D @ onehot  # (n, c): sum of distances to each cluster
    counts = onehot.sum(axis=0)
    own = counts[lab]
    a = sums[np.arange(n), lab] / np.maximum(own - 1, 1)
    mean_other = sums / counts[None, :]
    mean_other[np.arange(n), lab] = np.inf
    b = mean_other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where((own > 1) & (denom > 0), (b - a) / np.where(denom > 0, denom, 1), 0.0)
    return float(s.mean())


def _subsample(n, sample_size, random_state):
    if sample_size is None:
        sample_size = n if n <= SILHOUETTE_EXACT_MAX else SILHOUETTE_EXACT_MAX
    if sample_size >= n:
        return np.arange(n)
    if sample_size < 2:
        raise ValueError(f"sample_size must be >= 2, got {sample_size}")
    return np.sort(np.random.default_rng(random_state).choice(n, int(sample_size), replace=False))


def silhouette(X, labels, *, sample_size=None, random_state=0, znorm=True) -> float:
    """SBD silhouette of a clustering, in [-1, 1].

    ``X`` (n, T) or (n, T, d), ``labels`` (n,). Exact (all n^2 SBDs) when n <= 5000 or
    ``sample_size >= n``; otherwise on a random subsample of ``sample_size`` series (default
    5000; the standard error is ~0.001 at 5000). ``znorm`` z-normalises like :class:`KShape`.
    """
    X3 = as_dataset(X)
    labels = np.asarray(labels)
    if labels.shape != (len(X3),):
        raise ValueError(f"labels must be ({len(X3)},), got shape {labels.shape}")
    idx = _subsample(len(X3), sample_size, random_state)
    D = sbd(X3[idx], znorm=znorm)
    return silhouette_from_distances(D, labels[idx])


def knee(x, y) -> int | None:
    """Kneedle knee (Satopaa et al. 2011) of a curve such as SBD inertia against k.

    Parameters
    ----------
    x, y : array_like, (m,) with m >= 3
        The curve, in any order of ``x`` (it is sorted by ``x`` first).

    Returns
    -------
    int or None
        The ``x`` of the knee (yellowbrick's ``KneeLocator``, sensitivity 1, offline: the
        first knee): of a convex curve when ``y`` decreases (inertia), of a concave one
        when it increases; None when the curve has no knee (a straight line, a flat one).

    Raises
    ------
    ValueError
        When ``x`` and ``y`` are not 1-D of the same length >= 3.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError("knee needs x and y of the same length >= 3")
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.ptp(y) == 0 or np.ptp(x) == 0:
        return None  # KneeLocator would divide by zero when normalising
    with warnings.catch_warnings():
        # yellowbrick warns on import (distutils versions) and when there is no knee,
        # which is an answer here (None), not a problem
        warnings.simplefilter("ignore")
        from yellowbrick.utils.kneed import KneeLocator

        if y[0] >= y[-1]:
            loc = KneeLocator(x, y, curve_nature="convex", curve_direction="decreasing")
        else:
            loc = KneeLocator(x, y, curve_nature="concave", curve_direction="increasing")
    return None if loc.knee is None else int(loc.knee)


def elbow(X, ks, *, n_init=1, random_state=0, sample_size=5000, max_iter=100, init="k-shape++",
          progress=True):
    """Fit k-Shape for every k and tabulate SBD inertia, SBD silhouette and fit time.

    ``X`` (n, T) or (n, T, d) without NaN/flat series; ``ks`` iterable of k >= 2.
    Returns a ``pandas.DataFrame`` with columns ``k``, ``inertia`` (sum of SBD to own
    centroid), ``silhouette`` (on one random subsample of ``sample_size`` series shared by
    all k, exact if n <= sample_size), ``n_iter``, ``fit_time_s`` and ``knee`` (bool); the
    chosen k is also in ``df.attrs["knee"]`` (None if the inertia curve has no knee).
    """
    import pandas as pd

    ks = [int(k) for k in ks]
    if len(ks) < 1 or min(ks) < 2:
        raise ValueError(f"ks must be integers >= 2, got {ks}")
    X3 = as_dataset(X)
    _check_clean(X3)
    Z = znormalize(X3)
    idx = _subsample(len(Z), sample_size, random_state)
    D = sbd(Z[idx])  # shared by all k
    rows = []
    it = ks
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(ks, desc="k-Shape elbow")
    for k in it:
        model = KShape(k, n_init=n_init, max_iter=max_iter, random_state=random_state, init=init).fit(Z)
        lab = model.labels_[idx]
        sil = silhouette_from_distances(D, lab) if len(np.unique(lab)) >= 2 else np.nan
        rows.append(dict(k=k, inertia=model.inertia_, silhouette=sil, n_iter=model.n_iter_,
                         fit_time_s=model.fit_time_))
    df = pd.DataFrame(rows)
    kn = knee(df["k"], df["inertia"]) if len(df) >= 3 else None
    df["knee"] = df["k"] == kn if kn is not None else False
    df.attrs["knee"] = None if kn is None else int(kn)
    df.attrs["silhouette_sample_size"] = int(len(idx))
    return df

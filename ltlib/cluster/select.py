"""Choosing k: SBD silhouette, the elbow table over k and its knee.

:func:`silhouette` is exact up to ``SILHOUETTE_EXACT_MAX`` series and subsamples above;
:func:`elbow` fits :class:`~ltlib.cluster.KShape` for every k and tabulates inertia,
silhouette and fit time; :func:`knee` is the Kneedle knee (Satopaa et al. 2011) of the
inertia curve, computed by yellowbrick's ``KneeLocator``; :func:`euclidean_elbow` is the
seed's view for comparison (yellowbrick's ``KElbowVisualizer``: k-means, Euclidean
distortion).
"""
from __future__ import annotations

import warnings

import numpy as np

from .kshape import KShape
from .sbd import _check_clean, as_dataset, sbd, znormalize

#: ``silhouette`` is exact up to this many series and subsamples above it by default.
SILHOUETTE_EXACT_MAX = 5000


def yellowbrick(module: str, name: str):
    """``yellowbrick.<module>.<name>``, imported without its side effects on the session.

    Importing yellowbrick restyles matplotlib for the whole session (``set_aesthetic``
    changes ``rcParams``: fonts, colours) and warns about its own dependencies; both are
    undone here, so the notebooks' other figures keep their look.
    """
    import importlib

    import matplotlib as mpl

    with warnings.catch_warnings(), mpl.rc_context():
        warnings.simplefilter("ignore")
        return getattr(importlib.import_module(f"yellowbrick.{module}"), name)


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
        # yellowbrick warns when there is no knee, which is an answer here (None), not a problem
        warnings.simplefilter("ignore")
        KneeLocator = yellowbrick("utils.kneed", "KneeLocator")
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


def euclidean_elbow(X, ks, *, n_init=2, random_state=0):
    """The seed's elbow: scikit-learn k-means on the z-normalised series, Euclidean distortion.

    The seed chose k with yellowbrick's ``KElbowVisualizer(KMeans(), k=...)``, which scores
    each k by the *distortion* (sum of squared Euclidean distances of the series to their
    k-means centre). This runs the same visualizer (yellowbrick 1.5 works with scikit-learn
    1.7) on an off-screen axis and tabulates what it measured, so the view can be drawn
    beside the SBD elbow (:func:`ltlib.plots.plot_elbow_views`).

    Parameters
    ----------
    X : array_like, (n, T) or (n, T, d)
        Series without NaN or flat series (as :func:`elbow` takes them); z-normalised per
        variable here, then flattened to (n, T * d).
    ks : iterable of int >= 2
    n_init : int
        k-means restarts per k.
    random_state : int

    Returns
    -------
    pandas.DataFrame
        Columns ``k``, ``distortion`` (sum of squared Euclidean distances, z-score^2),
        ``fit_time_s`` and ``knee`` (bool); ``attrs["knee"]``: the visualizer's elbow
        (Kneedle on the distortion, as yellowbrick locates it; None without one or with
        fewer than three k).
    """
    import pandas as pd
    from matplotlib.figure import Figure
    from sklearn.cluster import KMeans

    ks = [int(k) for k in ks]
    if len(ks) < 1 or min(ks) < 2:
        raise ValueError(f"ks must be integers >= 2, got {ks}")
    X3 = as_dataset(X)
    _check_clean(X3)
    if max(ks) >= len(X3):
        raise ValueError(f"k up to {max(ks)} needs more than {len(X3)} series")
    Z = znormalize(X3).reshape(len(X3), -1)
    KElbowVisualizer = yellowbrick("cluster", "KElbowVisualizer")
    with warnings.catch_warnings():
        # yellowbrick warns when there is no elbow, which is an answer here (None)
        warnings.simplefilter("ignore")
        ax = Figure().add_subplot()  # off-screen: the drawing is redone by plot_elbow_views
        viz = KElbowVisualizer(KMeans(n_init=int(n_init), random_state=random_state), ax=ax, k=ks,
                               metric="distortion", timings=True, locate_elbow=len(ks) >= 3)
        viz.fit(Z)
    kn = None if viz.elbow_value_ is None else int(viz.elbow_value_)
    df = pd.DataFrame({"k": viz.k_values_, "distortion": np.asarray(viz.k_scores_, dtype=float),
                       "fit_time_s": np.asarray(viz.k_timers_, dtype=float)})
    df["knee"] = df["k"] == kn if kn is not None else False
    df.attrs["knee"] = kn
    return df

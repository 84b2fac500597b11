"""The k-Shape estimator (Paparrizos & Gravano, SIGMOD 2015; TODS 2017), scikit-learn style.

The algorithm is the same as tslearn's ``KShape`` (BSD-2) and the ``kshape`` package (MIT);
what changes is how it is computed (the SBD kernels of :mod:`ltlib.cluster.sbd`) and a few
fixes:

- z-normalisation (per variable, population std) happens once, the same way in ``fit`` and
  ``predict`` (tslearn normalises in ``predict`` only);
- NaN and flat (std 0) series raise a ``ValueError``; :func:`ltlib.cluster.prepare` fills
  gaps and sets flat series aside with their own label;
- multivariate centroids: the sign of each variable's eigenvector is the one closer to that
  variable of the members (tslearn compares each variable's vector with all the variables:
  on BasicMotions and JapaneseVowels its rule costs 0.08-0.11 of Rand index).

As tslearn (and chosen on the evaluation of ``benchmarks/bench_kshape.py``, 13 UCR/UEA sets):
the default initialisation is k distinct random series ("random"; for an int seed the same
series tslearn draws, so the two are compared run by run); a run whose cluster empties is
restarted from a new draw (after 10 x n_init failed draws, or with explicit initial centroids or
labels, the empty cluster gets the series farthest from its centroid instead); a run goes on
while its mean squared SBD (tslearn's objective) falls by ``tol``, not until no label changes. Of the
``n_init`` runs, the one with the lowest ``inertia_`` (sum of SBD) is kept: on the evaluation
it picks better partitions than the squared sum (tslearn). k-means++ seeding with SBD
("k-shape++") finds lower inertia but partitions further from the classes there; it and the
paper's random labels are options.

``engine="tslearn"`` and ``engine="kshape"`` run those packages on the same z-normalised
data for comparisons. Centroids are ``(k, T, d)``.
"""
from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin

from .sbd import _best_ncc, _blas_threads, _check_clean, _flat_rows, as_array, as_dataset, sbd, znormalize

#: Implementations :class:`KShape` can run: its own, tslearn's, the ``kshape`` package's.
ENGINES = ("ltlib", "tslearn", "kshape")


# ----------------------------------------------------------------------------- k-Shape steps
def _assign(Xw, xnorm, centers):
    """Series to the centroid of least SBD: labels (n,), SBD (n,), lag s (n,) of the match."""
    C = np.ascontiguousarray(centers, dtype=Xw.dtype)
    cn = np.linalg.norm(centers.reshape(len(centers), -1), axis=1)
    ncc, sh = _best_ncc(Xw, C, xnorm, cn, want_shift=True)
    labels = ncc.argmax(axis=1)
    rows = np.arange(len(labels))
    return labels, np.clip(1.0 - ncc[rows, labels], 0.0, 2.0), sh[rows, labels].astype(np.int64)


def _align(Xb, shifts):
    """Shift each series by its lag: out[i, t] = X[i, t + s_i] (zero outside): (n, T, d)."""
    T = Xb.shape[1]
    idx = np.arange(T)[None, :] + shifts[:, None]
    ok = (idx >= 0) & (idx < T)
    out = np.take_along_axis(Xb, np.clip(idx, 0, T - 1)[:, :, None], axis=1)
    out *= ok[:, :, None]
    return out


def _extract_shapes(groups) -> np.ndarray:
    """Shape extraction (paper Alg. 2) of k groups of aligned members [(m_j, T, d)] -> (k, T, d).

    Per group and variable: first eigenvector of Q^T S Q, S = sum x x^T, Q = I - 1/T; the
    sign is the one closer to the members (sum of Euclidean distances, as tslearn); then
    z-normalised. One batched ``eigh`` for all k*d matrices (many small LAPACK calls are
    slow when BLAS threads compete for the cores).
    """
    k = len(groups)
    T, d = groups[0].shape[1:]
    Ms = np.empty((k, d, T, T))
    for j, Xa in enumerate(groups):
        for v in range(d):
            A = np.ascontiguousarray(Xa[:, :, v], dtype=np.float64)
            S = A.T @ A
            # Q S Q with Q = I - 11^T / T: subtract row and column means, add the grand mean
            Ms[j, v] = S - S.mean(axis=0, keepdims=True) - S.mean(axis=1, keepdims=True) + S.mean()
    _, vecs = np.linalg.eigh(Ms)  # ascending eigenvalues
    mu = np.ascontiguousarray(vecs[..., -1].transpose(0, 2, 1))  # (k, T, d)
    for j, Xa in enumerate(groups):
        for v in range(d):
            A = Xa[:, :, v]
            c = mu[j, :, v]
            sq = np.einsum("ij,ij->i", A, A, dtype=np.float64)
            proj = A @ c.astype(A.dtype)
            d_plus = np.sqrt(np.maximum(sq - 2 * proj + 1.0, 0)).sum()
            d_minus = np.sqrt(np.maximum(sq + 2 * proj + 1.0, 0)).sum()
            if d_minus < d_plus:
                mu[j, :, v] = -c
    mu -= mu.mean(axis=1, keepdims=True)
    mu /= mu.std(axis=1, keepdims=True)
    return mu


def _refine(Xw, labels, shifts, k):
    """New centroids (k, T, d) float64 from members aligned by ``shifts`` (lags to old centroids)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    groups = []
    for j in range(k):
        rows = order[bounds[j]:bounds[j + 1]]
        groups.append(_align(Xw[rows], shifts[rows]))
    return _extract_shapes(groups)


def _reseed_empty(Xw, xnorm, centers, labels, dist, shifts, k, max_rounds=5):
    """Give every empty cluster the series farthest from its centroid, then reassign."""
    for _ in range(max_rounds):
        counts = np.bincount(labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if empty.size == 0:
            return labels, dist, shifts, centers
        centers = centers.copy()
        for j in empty:
            for i in np.argsort(-dist, kind="stable"):
                if counts[labels[i]] > 1:
                    counts[labels[i]] -= 1
                    counts[j] = 1
                    labels[i], dist[i] = j, 0.0
                    centers[j] = Xw[i]
                    break
            else:
                raise ValueError(f"cannot form {k} non-empty clusters from {len(labels)} series")
        labels, dist, shifts = _assign(Xw, xnorm, centers)
    if (np.bincount(labels, minlength=k) == 0).any():
        raise ValueError(f"cannot form {k} non-empty clusters: too few distinct shapes in X")
    return labels, dist, shifts, centers


def _fill_empty_labels(labels, k, rng):
    """Initial labels: move random series from clusters with > 1 member into empty ones."""
    labels = labels.copy()
    for j in np.flatnonzero(np.bincount(labels, minlength=k) == 0):
        counts = np.bincount(labels, minlength=k)
        donors = np.flatnonzero(counts[labels] > 1)
        labels[rng.choice(donors)] = j
    return labels


def _kshape_plusplus(Xw, xnorm, k, rng):
    """k-means++ seeding with SBD: next centre drawn with probability ~ SBD^2 to the nearest."""
    n = len(Xw)
    idx = [int(rng.integers(n))]
    best = None
    for _ in range(1, k):
        C = Xw[idx[-1:]].astype(np.float64)
        _, dist, _ = _assign(Xw, xnorm, C)
        best = dist if best is None else np.minimum(best, dist)
        p = best ** 2
        p[idx] = 0
        if p.sum() <= 0:
            p = np.ones(n)
            p[idx] = 0
        idx.append(int(rng.choice(n, p=p / p.sum())))
    return Xw[idx].astype(np.float64)


class _EmptyCluster(Exception):
    """A cluster lost all its members (the run is restarted from a new initialisation)."""


def _kshape_run(Xw, xnorm, k, *, init_centers=None, init_labels=None, max_iter=100, tol=1e-6, rng=None,
                on_empty="reseed"):
    """One k-Shape run: returns (centers (k,T,d), labels (n,), inertia, n_iter).

    Stopping rule (tslearn's): the run goes on while its objective, the mean squared SBD of
    the series to their centroids, falls by at least ``tol`` (absolute: SBD is in [0, 2]);
    the update that falls by less, or rises, is undone. A label-free update still moves the
    centroids (the members' alignment lags change), so "no label changed" is no stopping
    rule. ``inertia`` is the sum of SBD of the kept state. ``on_empty="restart"`` raises
    :class:`_EmptyCluster` when a cluster empties (the caller draws a new initialisation, as
    tslearn does); ``"reseed"`` gives it the series farthest from its centroid.
    """
    def handle_empty(centers, labels, dist, shifts):
        if (np.bincount(labels, minlength=k) == 0).any():
            if on_empty == "restart":
                raise _EmptyCluster
            return _reseed_empty(Xw, xnorm, centers, labels, dist, shifts, k)
        return labels, dist, shifts, centers

    n = len(Xw)
    if init_labels is not None:
        labels = _fill_empty_labels(np.asarray(init_labels, dtype=np.int64), k, rng)
        shifts = np.zeros(n, np.int64)  # no centroid yet: members used unaligned
    else:
        centers = np.asarray(init_centers, dtype=np.float64)
        labels, dist, shifts = _assign(Xw, xnorm, centers)
        labels, dist, shifts, centers = handle_empty(centers, labels, dist, shifts)
    prev, best, n_iter = np.inf, None, 0
    for it in range(max_iter):
        centers = _refine(Xw, labels, shifts, k)
        labels, dist, shifts = _assign(Xw, xnorm, centers)
        labels, dist, shifts, centers = handle_empty(centers, labels, dist, shifts)
        objective = float(np.dot(dist, dist)) / n
        n_iter = it + 1
        if prev - objective < tol:  # converged or worse: keep the state before this update
            break
        best = (centers, labels, float(dist.sum()))
        prev = objective
    return best[0], best[1], best[2], n_iter


def _check_orientation(X) -> None:
    """Catch series handed over with swapped axes, which would be clustered without error.

    (n, d, T) for (n, T, d): more variables than time steps is refused. (T, n) for (n, T):
    a handful of very long series (T >= 50 n) is what a stack passed as years x pixels looks
    like; it is clustered, with a warning.
    """
    shape = as_array(X).shape  # series of unequal lengths: a clear error, not numpy's
    if len(shape) == 3 and shape[2] > shape[1]:
        raise ValueError(f"X has shape {shape}: k-Shape takes (n series, T time steps, d variables), and "
                         f"d = {shape[2]} > T = {shape[1]} looks like (n, d, T); pass X.transpose(0, 2, 1), or "
                         f"for a (T, H, W) stack use ltlib.io.stack_to_series")
    if len(shape) == 2 and 2 <= shape[0] and shape[1] >= 50 * shape[0]:
        warnings.warn(f"X has shape {shape}: {shape[0]} series of {shape[1]} time steps. If these are "
                      f"{shape[1]} pixels of {shape[0]} years, pass X.T (k-Shape takes (n series, T))",
                      stacklevel=3)


# ----------------------------------------------------------------------------- estimator
class KShape(ClusterMixin, BaseEstimator):
    """k-Shape clustering (Paparrizos & Gravano 2015), scikit-learn style.

    Parameters
    ----------
    n_clusters : number of clusters k.
    max_iter : maximum refinement/assignment iterations per run.
    n_init : independent runs; the one with the lowest ``inertia_`` (sum of SBD) is kept.
    tol : a run stops when its mean squared SBD decreases by less than ``tol`` (absolute)
        or increases, and that last update is undone (as tslearn). A run whose cluster
        empties is restarted from a new initialisation (string ``init``), as tslearn does.
    random_state : int, ``numpy.random.Generator``/``RandomState`` or None.
    init : ``"random"`` (default: k distinct series as centroids, like tslearn; with an int
        ``random_state`` the same series as tslearn's), ``"k-shape++"`` (k-means++ seeding
        with SBD: lower inertia, but on UCR/UEA sets partitions no closer to the classes),
        ``"random-labels"``
        (random assignment, like the paper and the ``kshape`` package), an array of
        initial centroids (k, T[, d]) or of initial labels (n,).
    engine : ``"ltlib"`` (this implementation), ``"tslearn"`` (``tslearn.clustering.KShape``
        on the same z-normalised data) or ``"kshape"`` (``kshape.core.KShapeClusteringCPU``):
        for comparisons. ``predict``, ``labels_`` consistency and ``inertia_`` (SBD, computed
        here) are the same for all engines.
    dtype : ``"float32"`` (default, ~2x faster) or ``"float64"`` for the cross-correlations.

    Attributes
    ----------
    labels_ : (n,) int; cluster_centers_ : (k, T, d) float64, z-normalised;
    inertia_ : sum over series of SBD to their own centroid; n_iter_ : iterations of the
    kept run (None for engine "kshape", which does not report it); fit_time_ : seconds;
    n_restarts_ : runs restarted because a cluster emptied (engine "ltlib").
    """

    def __init__(self, n_clusters, *, max_iter=100, n_init=1, tol=1e-6, random_state=None,
                 init="random", engine="ltlib", dtype="float32"):
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.n_init = n_init
        self.tol = tol
        self.random_state = random_state
        self.init = init
        self.engine = engine
        self.dtype = dtype

    # -- helpers
    def _validate(self, n):
        k = self.n_clusters
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"n_clusters must be a positive integer, got {k!r}")
        if k > n:
            raise ValueError(f"n_clusters={k} is larger than the number of series ({n})")
        if int(self.max_iter) < 1 or int(self.n_init) < 1:
            raise ValueError("max_iter and n_init must be >= 1")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")

    def _prepare_X(self, X):
        X3 = as_dataset(X)
        _check_clean(X3)
        Z = (X3 - X3.mean(axis=1, keepdims=True)) / X3.std(axis=1, keepdims=True)
        Xw = np.ascontiguousarray(Z, dtype=np.dtype(self.dtype))
        xnorm = np.linalg.norm(Z.reshape(len(Z), -1), axis=1)
        return Z, Xw, xnorm

    def _initial(self, Xw, xnorm, rng, rs):
        k, n = self.n_clusters, len(Xw)
        init = self.init
        if isinstance(init, str):
            if init == "random":
                return dict(init_centers=Xw[rs.choice(n, k, replace=False)].astype(np.float64))
            if init == "random-labels":
                return dict(init_labels=rng.integers(0, k, n))
            if init == "k-shape++":
                return dict(init_centers=_kshape_plusplus(Xw, xnorm, k, rng))
            raise ValueError(f"init must be 'random', 'random-labels', 'k-shape++' or an array, got {init!r}")
        arr = np.asarray(init)
        if arr.ndim == 1:
            if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= k:
                raise ValueError(f"initial labels must be (n,) = ({n},) integers in [0, {k}), got {arr.shape} {arr.dtype}")
            return dict(init_labels=arr)
        C = as_dataset(arr, name="init")
        if C.shape != (k,) + Xw.shape[1:]:
            raise ValueError(f"initial centroids must be (k, T, d) = {(k,) + Xw.shape[1:]}, got {C.shape}")
        return dict(init_centers=znormalize(C))

    # -- API
    def fit(self, X, y=None):
        """Cluster ``X`` (n, T) or (n, T, d); returns self."""
        t0 = time.perf_counter()
        _check_orientation(X)
        Z, Xw, xnorm = self._prepare_X(X)
        self._validate(len(Z))
        if self.engine == "ltlib":
            with _blas_threads(Z.size):
                self._fit_ltlib(Xw, xnorm)
        elif self.engine == "tslearn":
            self._fit_tslearn(Z)
        else:
            self._fit_kshape(Z)
        if self.engine != "ltlib":
            # labels and inertia from the engine's centroids, measured the same way as ltlib
            self.cluster_centers_ = znormalize(self.cluster_centers_)
            with _blas_threads(Z.size):
                self.labels_, dist, _ = _assign(Xw, xnorm, self.cluster_centers_)
            self.inertia_ = float(dist.sum())
        self.fit_time_ = time.perf_counter() - t0
        self.n_features_in_ = Z.shape[1]
        return self

    def _fit_ltlib(self, Xw, xnorm):
        seed = _seed_from(self.random_state)
        rng = np.random.default_rng(seed)
        rs = np.random.RandomState(seed)  # "random": the same series as tslearn draws for this seed
        drawn = isinstance(self.init, str)
        runs = int(self.n_init) if drawn else 1
        best, done, failed = None, 0, 0
        while done < runs:
            # an emptied cluster restarts the run from a new draw (tslearn); explicit initial
            # centroids or labels, or too many failed draws, re-seed the empty cluster instead
            on_empty = "restart" if drawn and failed < 10 * runs else "reseed"
            try:
                res = _kshape_run(Xw, xnorm, self.n_clusters, max_iter=int(self.max_iter), tol=float(self.tol),
                                  rng=rng, on_empty=on_empty, **self._initial(Xw, xnorm, rng, rs))
            except _EmptyCluster:
                failed += 1
                continue
            done += 1
            if best is None or res[2] < best[2]:
                best = res
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best
        self.n_restarts_ = failed

    def _fit_tslearn(self, Z):
        import warnings

        with warnings.catch_warnings():  # tslearn warns that h5py (model files) is missing
            warnings.filterwarnings("ignore", message="h5py not installed")
            from tslearn.clustering import KShape as TsKShape

        # tslearn draws random series as centroids; ltlib's string inits map to that
        init = "random"
        if not isinstance(self.init, str):
            if np.ndim(self.init) == 1:
                raise ValueError("engine 'tslearn' takes initial centroids (k, T, d), not labels")
            init = znormalize(np.asarray(self.init))
        ks = TsKShape(n_clusters=self.n_clusters, max_iter=int(self.max_iter), tol=float(self.tol),
                      n_init=int(self.n_init), random_state=_seed_from(self.random_state), init=init)
        ks.fit(Z)
        if ks.cluster_centers_ is None or not np.isfinite(ks.inertia_):
            raise RuntimeError("tslearn KShape found no solution without empty clusters")
        self.cluster_centers_ = np.asarray(ks.cluster_centers_, dtype=np.float64)
        self.n_iter_ = int(ks.n_iter_)

    def _fit_kshape(self, Z):
        from kshape.core import KShapeClusteringCPU

        if not isinstance(self.init, str):
            raise ValueError("engine 'kshape' supports only its own random inits")
        state = np.random.get_state()  # the package draws from numpy's global generator
        try:
            np.random.seed(_seed_from(self.random_state) % 2**32)
            best = None
            for _ in range(int(self.n_init)):
                ks = KShapeClusteringCPU(self.n_clusters, centroid_init="random" if self.init == "random" else "zero",
                                         max_iter=int(self.max_iter), n_jobs=1).fit(Z)
                C = np.asarray(ks.centroids_, dtype=np.float64)
                flat = _flat_rows(C)
                if flat.any():  # an empty cluster left its zero centroid: replace by a series
                    C[flat] = Z[np.random.choice(len(Z), int(flat.sum()), replace=False)]
                cz = znormalize(C)
                _, dist, _ = _assign(Z, np.linalg.norm(Z.reshape(len(Z), -1), axis=1), cz)
                if best is None or dist.sum() < best[1]:
                    best = (cz, dist.sum())
        finally:
            np.random.set_state(state)
        self.cluster_centers_ = best[0]
        self.n_iter_ = None

    def predict(self, X):
        """Label of the nearest centroid (SBD) for each series of X: (n,) int."""
        if not hasattr(self, "cluster_centers_"):
            raise ValueError("this KShape is not fitted yet: call fit(X) first")
        _, Xw, xnorm = self._prepare_X(X)
        if Xw.shape[1:] != self.cluster_centers_.shape[1:]:
            raise ValueError(f"X series are (T, d) = {Xw.shape[1:]}, the model was fitted on "
                             f"{self.cluster_centers_.shape[1:]}")
        with _blas_threads(Xw.size):
            return _assign(Xw, xnorm, self.cluster_centers_)[0]

    def fit_predict(self, X, y=None):
        """``fit(X).labels_``."""
        return self.fit(X).labels_

    def transform(self, X):
        """SBD of each series to each centroid: (n, k) float64."""
        if not hasattr(self, "cluster_centers_"):
            raise ValueError("this KShape is not fitted yet: call fit(X) first")
        Z = znormalize(X)
        return sbd(Z, self.cluster_centers_, dtype=self.dtype)


def _seed_from(random_state) -> int:
    """An int seed from None/int/Generator/RandomState (None draws a fresh one)."""
    if random_state is None:
        return int(np.random.default_rng().integers(2**31))
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    raise ValueError(f"random_state must be None, an int or a numpy generator, got {random_state!r}")

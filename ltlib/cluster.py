"""k-Shape clustering of pixel trajectories: SBD, k-Shape, SBD silhouette, elbow.

Written from Paparrizos & Gravano, "k-Shape: Efficient and Accurate Clustering of Time
Series" (SIGMOD 2015; TODS 2017) and the project's k-Shape spec.
The algorithm is the same as tslearn's ``KShape`` (BSD-2) and the ``kshape`` package (MIT);
what changes is how it is computed and a few fixes:

- z-normalisation (per variable, population std) happens once, the same way in ``fit`` and
  ``predict`` (tslearn normalises in ``predict`` only);
- cross-correlations of many series against many references are one matrix product with a
  bank of shifted copies of the references (``T * d`` x ``k * (2T - 1)``), chunked so the
  memory stays bounded; for long series (``T > 256``) a batched real FFT does the same
  (both give the full linear cross-correlation, the NCC_c of the paper);
- empty clusters are re-seeded from the series farthest from their centroid instead of
  raising (tslearn) or silently returning fewer clusters;
- NaN and flat (std 0) series raise a ``ValueError``; :func:`prepare` fills gaps and sets
  flat series aside with their own label;
- the default initialisation is k-means++ seeding with SBD ("k-shape++"); tslearn's random
  centroids and the paper's random labels are options.

Shapes: a dataset ``X`` is ``(n, T)`` (univariate) or ``(n, T, d)`` (d variables), like
tslearn; centroids are ``(k, T, d)``. SBD(x, y) = 1 - max_w NCC_w(x, y) in [0, 2], where
NCC_w = sum over time and variables of x[t] y[t - w] / (||x|| ||y||) (Frobenius norms: the
multivariate NCC sums the variables, as tslearn and ``kshape`` do).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

#: Bytes a single block of cross-correlations may take (float32 or float64 values).
BLOCK_BYTES = 64 * 2**20
#: Series longer than this use the FFT path (the matrix product costs T^2 per pair).
FFT_MIN_LENGTH = 256
#: ``silhouette`` is exact up to this many series and subsamples above it by default.
SILHOUETTE_EXACT_MAX = 5000
ENGINES = ("ltlib", "tslearn", "kshape")


#: Datasets with fewer values (n * T * d) run with single-threaded BLAS: on a busy machine
#: waking BLAS threads for many small products costs more than it saves.
SINGLE_THREAD_MAX_VALUES = 1_000_000
_CONTROLLER = None


def _blas_threads(n_values: int):
    """Context manager: one BLAS thread for small problems (``n_values`` <=
    ``SINGLE_THREAD_MAX_VALUES``: values of a dataset, or pairs of an SBD matrix), the
    default otherwise."""
    global _CONTROLLER
    from contextlib import nullcontext

    if n_values > SINGLE_THREAD_MAX_VALUES:
        return nullcontext()
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


# ----------------------------------------------------------------------------- input checks
def as_dataset(X, *, name="X") -> np.ndarray:
    """(n, T) or (n, T, d) array-like -> float64 (n, T, d); raises ValueError on bad shapes."""
    X = np.asarray(X)
    if X.dtype == object or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{name} must be a numeric array, got dtype {X.dtype}")
    if X.ndim == 2:
        X = X[:, :, None]
    if X.ndim != 3:
        raise ValueError(f"{name} must be (n, T) or (n, T, d) time series, got shape {X.shape}")
    n, t, d = X.shape
    if n < 1 or t < 2 or d < 1:
        raise ValueError(f"{name} needs at least 1 series of length >= 2, got shape {X.shape}")
    return np.asarray(X, dtype=np.float64)


def _check_clean(X3: np.ndarray, name="X") -> None:
    """Raise a ValueError naming NaN/inf or flat series (what :func:`prepare` fixes)."""
    bad = ~np.isfinite(X3).all(axis=(1, 2))
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} series with NaN or inf values (first at row "
            f"{int(np.argmax(bad))}); fill the gaps first with ltlib.cluster.prepare(X)")
    flat = _flat_rows(X3)
    if flat.any():
        raise ValueError(
            f"{name} has {int(flat.sum())} flat series (a variable with std 0, first at row "
            f"{int(np.argmax(flat))}): they have no shape and SBD is undefined; set them aside "
            "with ltlib.cluster.prepare(X)")


def _flat_rows(X3: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
    """(n,) bool: some variable of the series is constant (std <= rtol * max |value|)."""
    std = X3.std(axis=1)  # (n, d)
    scale = np.maximum(np.abs(X3).max(axis=1), 1e-300)
    return (std <= rtol * scale).any(axis=1)


def znormalize(X, *, dtype=np.float64) -> np.ndarray:
    """z-normalise every series and variable over time (mean 0, population std 1).

    ``X`` (n, T) or (n, T, d) without NaN or flat series -> (n, T, d) of ``dtype``.
    """
    X3 = as_dataset(X)
    _check_clean(X3)
    Z = (X3 - X3.mean(axis=1, keepdims=True)) / X3.std(axis=1, keepdims=True)
    return np.ascontiguousarray(Z, dtype=dtype)


# ----------------------------------------------------------------------------- prepare
@dataclass
class Prepared:
    """Series ready for k-Shape and the way back to all input rows.

    ``X``: the usable series, gaps filled, (m, T) or (m, T, d) like the input, float64;
    ``keep``: (n,) bool, rows of the input in ``X``; ``flat``: (n,) bool, rows set aside
    (a variable constant or with fewer than 2 observations); ``n_filled``: number of values
    filled by interpolation in ``X``.
    """

    X: np.ndarray
    keep: np.ndarray
    flat: np.ndarray
    n_filled: int

    def expand(self, labels, flat_label=None) -> np.ndarray:
        """Labels of ``X`` (m,) -> labels of every input row (n,) int.

        Set-aside rows get ``flat_label`` (default: ``labels.max() + 1``, a label of their own).
        """
        labels = np.asarray(labels)
        if labels.shape != (int(self.keep.sum()),):
            raise ValueError(f"expected {int(self.keep.sum())} labels (one per kept series), "
                             f"got shape {labels.shape}")
        if flat_label is None:
            flat_label = int(labels.max()) + 1 if labels.size else 0
        out = np.full(self.keep.shape, flat_label, dtype=np.int64)
        out[self.keep] = labels
        return out


def fill_gaps(X, *, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation over NaN in time, nearest value at the ends.

    ``X`` (n, T) or (n, T, d) -> (filled float64 of the same shape, n_valid (n, d) int):
    series/variables with no observation stay NaN. Rows are processed in chunks (bounded
    temporaries); rows without gaps are copied as they are.
    """
    X = np.asarray(X)
    X3 = X[:, :, None] if X.ndim == 2 else X
    if X3.ndim != 3:
        raise ValueError(f"X must be (n, T) or (n, T, d), got shape {X.shape}")
    n, T, d = X3.shape
    out = np.array(X3, dtype=np.float64)
    valid_all = np.isfinite(out)
    n_valid = valid_all.sum(axis=1)
    rows = np.flatnonzero(~valid_all.all(axis=(1, 2)))
    t = np.arange(T, dtype=np.int32)[None, :, None]
    for c0 in range(0, len(rows), chunk):
        r = rows[c0:c0 + chunk]
        V, valid = out[r], valid_all[r]
        prev = np.maximum.accumulate(np.where(valid, t, -1), axis=1)
        nxt = np.minimum.accumulate(np.where(valid, t, T)[:, ::-1], axis=1)[:, ::-1]
        has_prev, has_next = prev >= 0, nxt < T
        V0 = np.where(valid, V, 0.0)
        vp = np.take_along_axis(V0, np.maximum(prev, 0), axis=1)
        vn = np.take_along_axis(V0, np.minimum(nxt, T - 1), axis=1)
        w = (t - prev) / np.maximum(nxt - prev, 1)
        filled = np.where(has_prev & has_next, vp + (vn - vp) * w,
                          np.where(has_prev, vp, np.where(has_next, vn, np.nan)))
        out[r] = np.where(valid, V, filled)
    return (out[:, :, 0] if X.ndim == 2 else out), n_valid


def prepare(X, *, min_observations: int = 2) -> Prepared:
    """Fill gaps and set aside series that have no shape, so k-Shape can run.

    ``X`` (n, T) or (n, T, d), NaN for missing values (e.g. from
    :func:`ltlib.io.stack_to_series`). A series is set aside (``flat``) when a variable has
    fewer than ``min_observations`` values or is constant after filling (bare rock, water,
    a LandTrendr fit with a single flat segment). See :meth:`Prepared.expand`.
    """
    X = np.asarray(X)
    if X.dtype == object or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be a numeric array, got dtype {X.dtype}")
    if X.ndim not in (2, 3) or X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"X must be (n, T) or (n, T, d) time series, got shape {X.shape}")
    filled, n_valid = fill_gaps(X)
    F3 = filled[:, :, None] if filled.ndim == 2 else filled
    few = (n_valid < max(int(min_observations), 1)).any(axis=1)
    flat = few.copy()
    ok = ~few
    flat[ok] = _flat_rows(F3[ok])
    keep = ~flat
    n_filled = int(n_valid[keep].size * X.shape[1] - n_valid[keep].sum())
    return Prepared(X=filled[keep], keep=keep, flat=flat, n_filled=n_filled)


# ----------------------------------------------------------------------------- NCC kernels
def _shift_bank(Y: np.ndarray) -> np.ndarray:
    """(m, T, d) references -> (T*d, m*(2T-1)) matrix whose column (j, w) is y_j shifted.

    Column (j, w) holds y_j[t - s] with s = w - (T - 1), so ``x.ravel() @ bank`` gives the
    cross-correlation cc_s = sum_t x[t] y_j[t - s] for every lag s in -(T-1)..T-1.
    """
    m, T, d = Y.shape
    W = 2 * T - 1
    B = np.zeros((m, W, T, d), dtype=Y.dtype)
    for w in range(W):
        s = w - (T - 1)
        if s >= 0:
            B[:, w, s:, :] = Y[:, : T - s, :]
        else:
            B[:, w, : T + s, :] = Y[:, -s:, :]
    return np.ascontiguousarray(B.reshape(m * W, T * d).T)


def _cc_blocks_gemm(Xb: np.ndarray, Yb: np.ndarray, bank=None):
    """Cross-correlations of a block: (nx, T, d) x (ny, T, d) -> (nx, ny, 2T-1), lag order -(T-1)..T-1."""
    nx, T, d = Xb.shape
    if bank is None:
        bank = _shift_bank(Yb)
    return (Xb.reshape(nx, T * d) @ bank).reshape(nx, -1, 2 * T - 1)


def _cc_blocks_fft(Xb: np.ndarray, Yb: np.ndarray, workers=None):
    """Same as :func:`_cc_blocks_gemm` by batched real FFT (zero-padded, so linear, not circular)."""
    import scipy.fft as sfft

    nx, T, d = Xb.shape
    L = sfft.next_fast_len(2 * T - 1, real=True)
    cplx = np.complex64 if Xb.dtype == np.float32 else np.complex128
    Xf = sfft.rfft(Xb, L, axis=1, workers=workers).astype(cplx, copy=False)  # (nx, F, d)
    Yf = np.conj(sfft.rfft(Yb, L, axis=1, workers=workers)).astype(cplx, copy=False)  # (ny, F, d)
    # cross-spectrum summed over variables: one small matmul per frequency
    P = np.matmul(Xf.transpose(1, 0, 2), Yf.transpose(1, 2, 0))  # (F, nx, ny)
    cc = sfft.irfft(P, L, axis=0, workers=workers)  # (L, nx, ny); cc[s] = sum_t x[t+s] y[t]
    # sum_t x[t] y[t - s] = sum_u x[u + s] y[u] = cc[s]; negative lags wrap to the end
    lags = np.arange(-(T - 1), T)
    out = cc[lags % L]  # (W, nx, ny)
    return np.ascontiguousarray(out.transpose(1, 2, 0)).astype(Xb.dtype, copy=False)


def _max_lag(cc: np.ndarray, want_shift: bool):
    """(nx, ny, W) -> max over lags (nx, ny) and, if asked, the lag s of the max (int16)."""
    if not want_shift:
        return cc.max(axis=-1), None
    am = cc.argmax(axis=-1)
    mx = np.take_along_axis(cc, am[..., None], axis=-1)[..., 0]
    T = (cc.shape[-1] + 1) // 2
    return mx, (am - (T - 1)).astype(np.int16)


def _best_ncc(X: np.ndarray, Y: np.ndarray, xnorm=None, ynorm=None, *, want_shift=False,
              method="auto", symmetric=False):
    """max_w NCC_w of every pair (x_i, y_j), chunked: (n, T, d), (m, T, d) -> (n, m) float64.

    With ``want_shift`` also returns the lag s (n, m) int16 of the maximum: x_i[t] best
    matches y_j[t - s], so x_i shifted by -s (x[t + s]) is aligned to y_j.
    ``symmetric=True`` (Y is X) computes only the upper triangle of blocks.
    """
    n, T, d = X.shape
    m = Y.shape[0]
    if Y.shape[1:] != (T, d):
        raise ValueError(f"series lengths/variables differ: {X.shape[1:]} vs {Y.shape[1:]}")
    if method == "auto":
        method = "fft" if T > FFT_MIN_LENGTH else "gemm"
    if method not in ("gemm", "fft"):
        raise ValueError(f"method must be 'auto', 'gemm' or 'fft', got {method!r}")
    xnorm = np.linalg.norm(X.reshape(n, -1).astype(np.float64), axis=1) if xnorm is None else xnorm
    ynorm = np.linalg.norm(Y.reshape(m, -1).astype(np.float64), axis=1) if ynorm is None else ynorm
    if (xnorm <= 0).any() or (ynorm <= 0).any():
        raise ValueError("SBD is undefined for all-zero series")
    W = 2 * T - 1
    item = X.dtype.itemsize
    ny_blk = max(1, min(m, BLOCK_BYTES // (4 * item * W * T * d)))  # bank <= BLOCK_BYTES / 4
    if symmetric:
        ny_blk = max(1, min(ny_blk, int(np.sqrt(BLOCK_BYTES / (item * W)))))
    nx_blk = max(1, BLOCK_BYTES // (item * W * ny_blk))
    if symmetric:
        nx_blk = ny_blk
    out = np.empty((n, m), dtype=np.float64)
    shifts = np.empty((n, m), dtype=np.int16) if want_shift else None
    for j0 in range(0, m, ny_blk):
        Yb = Y[j0:j0 + ny_blk]
        bank = _shift_bank(Yb) if method == "gemm" else None
        i_stop = min(n, j0 + ny_blk) if symmetric else n
        for i0 in range(0, i_stop, nx_blk):
            Xb = X[i0:i0 + nx_blk]
            cc = _cc_blocks_gemm(Xb, Yb, bank) if method == "gemm" else _cc_blocks_fft(Xb, Yb)
            mx, sh = _max_lag(cc, want_shift)
            out[i0:i0 + len(Xb), j0:j0 + len(Yb)] = mx
            if want_shift:
                shifts[i0:i0 + len(Xb), j0:j0 + len(Yb)] = sh
            if symmetric and i0 != j0:  # mirror: max NCC is symmetric, the lag changes sign
                out[j0:j0 + len(Yb), i0:i0 + len(Xb)] = mx.T
                if want_shift:
                    shifts[j0:j0 + len(Yb), i0:i0 + len(Xb)] = -sh.T
    out /= xnorm[:, None] * ynorm[None, :]
    return (out, shifts) if want_shift else out


def sbd(X, Y=None, *, znorm=False, dtype="float32", method="auto") -> np.ndarray:
    """Shape-based distance matrix: (n, m) float64 in [0, 2] (``Y=None``: (n, n), zero diagonal).

    ``X`` (n, T) or (n, T, d), ``Y`` (m, T) or (m, T, d) with the same T and d.
    SBD(x, y) = 1 - max_w NCC_w(x, y) (Paparrizos & Gravano 2015, eq. 8); with ``znorm=True``
    the series are z-normalised per variable first (as :class:`KShape` does). Computed in
    blocks (memory bounded by ``BLOCK_BYTES`` per block) by a matrix product with shifted
    copies (``method="gemm"``) or a batched FFT (``"fft"``; ``"auto"`` uses the FFT for
    T > 256). ``dtype="float32"`` is ~2x faster than ``"float64"``, with errors ~1e-6.
    """
    X3 = as_dataset(X)
    Y3 = None if Y is None else as_dataset(Y, name="Y")
    if Y3 is not None and Y3.shape[1:] != X3.shape[1:]:
        raise ValueError(f"X series are {X3.shape[1:]} (T, d) but Y series are {Y3.shape[1:]}")
    for A, nm in ((X3, "X"), (Y3, "Y")):
        if A is not None and not np.isfinite(A).all():
            raise ValueError(f"{nm} has NaN or inf values; fill the gaps first (ltlib.cluster.prepare)")
    if znorm:
        X3 = znormalize(X3)
        Y3 = None if Y3 is None else znormalize(Y3)
    dt = np.dtype(dtype)
    xn = np.linalg.norm(X3.reshape(len(X3), -1), axis=1)
    if (xn == 0).any():
        raise ValueError(f"X has {int((xn == 0).sum())} all-zero series: SBD is undefined for them")
    Xd = np.ascontiguousarray(X3, dtype=dt)
    if Y3 is None:
        with _blas_threads(len(X3) ** 2):  # pairs: large products are worth the threads
            ncc = _best_ncc(Xd, Xd, xn, xn, method=method, symmetric=True)
    else:
        yn = np.linalg.norm(Y3.reshape(len(Y3), -1), axis=1)
        if (yn == 0).any():
            raise ValueError(f"Y has {int((yn == 0).sum())} all-zero series: SBD is undefined for them")
        with _blas_threads(len(X3) * max(len(Y3), X3[0].size)):
            ncc = _best_ncc(Xd, np.ascontiguousarray(Y3, dtype=dt), xn, yn, method=method)
    D = np.clip(1.0 - ncc, 0.0, 2.0)
    if Y3 is None:
        np.fill_diagonal(D, 0.0)
    return D


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


def _kshape_run(Xw, xnorm, k, *, init_centers=None, init_labels=None, max_iter=100, tol=1e-6, rng=None):
    """One k-Shape run: returns (centers (k,T,d), labels (n,), inertia, n_iter)."""
    best = None
    if init_labels is not None:
        labels = _fill_empty_labels(np.asarray(init_labels, dtype=np.int64), k, rng)
        shifts = np.zeros(len(labels), np.int64)  # no centroid yet: members used unaligned
        prev = np.inf
    else:
        centers = np.asarray(init_centers, dtype=np.float64)
        labels, dist, shifts = _assign(Xw, xnorm, centers)
        labels, dist, shifts, centers = _reseed_empty(Xw, xnorm, centers, labels, dist, shifts, k)
        prev = float(dist.sum())
        best = (centers, labels, prev)
    n_iter = 0
    for it in range(max_iter):
        centers = _refine(Xw, labels, shifts, k)
        new, dist, shifts = _assign(Xw, xnorm, centers)
        new, dist, shifts, centers = _reseed_empty(Xw, xnorm, centers, new, dist, shifts, k)
        inertia = float(dist.sum())
        n_iter = it + 1
        changed = bool((new != labels).any())
        labels = new
        if best is None or inertia < best[2]:
            best = (centers, labels, inertia)
        if not changed or (np.isfinite(prev) and prev - inertia <= tol * prev):
            break
        prev = inertia
    return best[0], best[1], best[2], n_iter


# ----------------------------------------------------------------------------- estimator
try:  # scikit-learn is a core dependency; keep the module importable for docs without it
    from sklearn.base import BaseEstimator, ClusterMixin
except ImportError:  # pragma: no cover
    BaseEstimator, ClusterMixin = object, object


class KShape(ClusterMixin, BaseEstimator):
    """k-Shape clustering (Paparrizos & Gravano 2015), scikit-learn style.

    Parameters
    ----------
    n_clusters : number of clusters k.
    max_iter : maximum refinement/assignment iterations per run.
    n_init : independent runs; the one with the lowest inertia is kept.
    tol : stop when the inertia decreases by less than ``tol`` x inertia (relative), or
        when no label changes. The lowest-inertia state of a run is kept.
    random_state : int, ``numpy.random.Generator``/``RandomState`` or None.
    init : ``"k-shape++"`` (default: k-means++ seeding with SBD, fewer poor local optima),
        ``"random"`` (k distinct series as centroids, like tslearn), ``"random-labels"``
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
    kept run (None for engine "kshape", which does not report it); fit_time_ : seconds.
    """

    def __init__(self, n_clusters, *, max_iter=100, n_init=1, tol=1e-6, random_state=None,
                 init="k-shape++", engine="ltlib", dtype="float32"):
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

    def _initial(self, Xw, xnorm, rng):
        k, n = self.n_clusters, len(Xw)
        init = self.init
        if isinstance(init, str):
            if init == "random":
                return dict(init_centers=Xw[rng.choice(n, k, replace=False)].astype(np.float64))
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
        rng = np.random.default_rng(_seed_from(self.random_state))
        runs = 1 if not isinstance(self.init, str) else int(self.n_init)
        best = None
        for _ in range(runs):
            res = _kshape_run(Xw, xnorm, self.n_clusters, max_iter=int(self.max_iter), tol=float(self.tol),
                              rng=rng, **self._initial(Xw, xnorm, rng))
            if best is None or res[2] < best[2]:
                best = res
        self.cluster_centers_, self.labels_, self.inertia_, self.n_iter_ = best

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


# ----------------------------------------------------------------------------- quality
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


def knee(x, y) -> float | None:
    """Kneedle knee (Satopaa et al. 2011) of a decreasing convex curve such as inertia vs k.

    Returns the x of the largest gap between the normalised curve (flipped) and the
    diagonal, or None when the curve has no knee (straight or concave).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 3:
        raise ValueError("knee needs x and y of the same length >= 3")
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.ptp(y) == 0 or np.ptp(x) == 0:
        return None
    xn = (x - x.min()) / np.ptp(x)
    yn = (y - y.min()) / np.ptp(y)
    if y[0] >= y[-1]:  # decreasing: flip to increasing concave
        diff = (1 - yn) - xn
    else:
        diff = yn - xn
    i = int(np.argmax(diff))
    return float(x[i]) if diff[i] > 1e-12 else None


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


# ----------------------------------------------------------------------------- scene helpers
@dataclass
class SceneClusters:
    """k-Shape result on an image: ``labels`` (H, W) int16 (-1 no data, k = flat/set
    aside), the fitted ``model``, the ``prepared`` series and the pixel ``mask`` (H, W)."""

    labels: np.ndarray
    model: KShape
    prepared: Prepared
    mask: np.ndarray
    n_clusters: int

    @property
    def flat_label(self) -> int:
        return self.n_clusters


def cluster_stacks(stacks, n_clusters, **kshape_kw) -> SceneClusters:
    """Cluster the pixel trajectories of one or more (T, H, W) stacks on the same grid.

    One stack: univariate; several: multivariate (one variable per stack, each z-normalised).
    Pixels with no observation get -1; flat pixels get ``n_clusters``. ``kshape_kw`` go to
    :class:`KShape`.
    """
    from .io import series_to_image, stack_to_series, stacks_to_series

    if isinstance(stacks, (list, tuple)):
        series, mask = stacks_to_series(list(stacks)) if len(stacks) > 1 else stack_to_series(stacks[0])
    else:
        series, mask = stack_to_series(stacks)
    prep = prepare(series)
    model = KShape(n_clusters, **kshape_kw).fit(prep.X)
    full = prep.expand(model.labels_, flat_label=n_clusters)
    image = series_to_image(full.astype(np.int16), mask, fill=-1).astype(np.int16)
    return SceneClusters(labels=image, model=model, prepared=prep, mask=mask, n_clusters=int(n_clusters))


# ----------------------------------------------------------------------------- figures
def plot_elbow(table, *, axes=None, title="k-Shape elbow (SBD)"):
    """SBD inertia and SBD silhouette against k from :func:`elbow`, knee marked. Returns the figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, ax1 = plt.subplots(figsize=(7, 4))
    else:
        ax1 = axes
        fig = ax1.figure
    ax1.plot(table["k"], table["inertia"], "o-", color="C0", label="SBD inertia")
    ax1.set_xlabel("Number of clusters k")
    ax1.set_ylabel("SBD inertia (sum of SBD to own centroid)", color="C0")
    ax2 = ax1.twinx()
    ax2.plot(table["k"], table["silhouette"], "s--", color="C1", label="SBD silhouette")
    ax2.set_ylabel("SBD silhouette (unitless)", color="C1")
    kn = table.attrs.get("knee")
    if kn is not None:
        ax1.axvline(kn, color="k", ls=":", lw=1)
        ax1.annotate(f"knee k={kn}", (kn, table["inertia"].max()), xytext=(5, -10),
                     textcoords="offset points", fontsize=9)
    ax1.set_title(title)
    ax1.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_centroids(X, labels, centers, *, years=None, var_names=None, colors=None, q=(10, 90)):
    """One panel per cluster (rows: variables): centroid over the ``q`` percentile band of
    its members (z-normalised series). ``X`` (n, T[, d]) clean, ``labels`` (n,), ``centers``
    (k, T, d). Returns the figure."""
    import matplotlib.pyplot as plt

    Z = znormalize(X)
    centers = np.asarray(centers)
    k, T, d = centers.shape
    years = np.arange(T) if years is None else np.asarray(years)
    var_names = var_names or [f"var {v}" for v in range(d)]
    ncol = min(k, 4)
    nrow = int(np.ceil(k / ncol)) * d
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.4 * nrow), squeeze=False)
    for j in range(k):
        members = Z[labels == j]
        for v in range(d):
            ax = axes[(j // ncol) * d + v, j % ncol]
            color = (colors or {}).get(j, f"C{j % 10}")
            if len(members):
                lo, med, hi = np.percentile(members[:, :, v], [q[0], 50, q[1]], axis=0)
                ax.fill_between(years, lo, hi, color=color, alpha=0.25, label=f"members {q[0]}-{q[1]}%")
                ax.plot(years, med, color=color, lw=0.8, ls="--", label="members median")
            ax.plot(years, centers[j, :, v], color="k", lw=1.6, label="centroid")
            ax.set_title(f"cluster {j} (n={len(members)}) {var_names[v]}", fontsize=9)
            ax.set_ylabel("z-score")
            ax.grid(alpha=0.3)
    for j in range(k, nrow // d * ncol):
        for v in range(d):
            axes[(j // ncol) * d + v, j % ncol].set_visible(False)
    for col in range(ncol):  # "Year" under the lowest panel of each column
        visible = [r for r in range(nrow) if axes[r, col].get_visible()]
        if visible:
            axes[visible[-1], col].set_xlabel("Year")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig

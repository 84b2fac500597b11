"""Shape-based distance (SBD) of Paparrizos & Gravano 2015: z-normalisation and NCC kernels.

SBD(x, y) = 1 - max_w NCC_w(x, y) in [0, 2], where NCC_w = sum over time and variables of
x[t] y[t - w] / (||x|| ||y||) (Frobenius norms: the multivariate NCC sums the variables, as
tslearn and ``kshape`` do). A dataset ``X`` is ``(n, T)`` (univariate) or ``(n, T, d)``
(d variables), like tslearn.

Cross-correlations of many series against many references are one matrix product with a
bank of shifted copies of the references (``T * d`` x ``k * (2T - 1)``), chunked so the
memory stays bounded; for long series (``T > FFT_MIN_LENGTH``) a batched real FFT does the
same (both give the full linear cross-correlation, the NCC_c of the paper). The estimator
that uses these kernels is :class:`ltlib.cluster.KShape` (as tslearn keeps
``tslearn/metrics/cycc.py`` apart from its ``KShape``).
"""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
from threadpoolctl import ThreadpoolController  # a dependency of scikit-learn

#: Bytes a single block of cross-correlations may take (float32 or float64 values).
BLOCK_BYTES = 64 * 2**20
#: Series longer than this use the FFT path (the matrix product costs T^2 per pair).
FFT_MIN_LENGTH = 256
#: Datasets with fewer values (n * T * d) run with single-threaded BLAS: on a busy machine
#: waking BLAS threads for many small products costs more than it saves.
SINGLE_THREAD_MAX_VALUES = 1_000_000
_CONTROLLER = None

def _blas_threads(n_values: int):
    """Context manager: one BLAS thread for small problems (``n_values`` <=
    ``SINGLE_THREAD_MAX_VALUES``: values of a dataset, or pairs of an SBD matrix), the
    default otherwise."""
    global _CONTROLLER
    if n_values > SINGLE_THREAD_MAX_VALUES:
        return nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


# ----------------------------------------------------------------------------- input checks
def as_array(X, name="X") -> np.ndarray:
    """``np.asarray(X)``; series of unequal lengths raise a ValueError saying so (not numpy's
    "inhomogeneous shape")."""
    try:
        return np.asarray(X)
    except ValueError:
        lengths = sorted({len(x) for x in X if hasattr(x, "__len__")})
        raise ValueError(f"{name}: the series have unequal lengths ({', '.join(map(str, lengths[:5]))} values); "
                         "k-Shape needs every series of the same length (the same years, NaN for missing "
                         "ones)") from None


def as_dataset(X, *, name="X") -> np.ndarray:
    """(n, T) or (n, T, d) array-like -> float64 (n, T, d); raises ValueError on bad shapes."""
    X = as_array(X, name)
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

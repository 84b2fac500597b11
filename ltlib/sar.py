"""Sentinel-1 change detection with the sequential omnibus (complex Wishart) test.

Written from Conradsen, Nielsen and Skriver 2016 (IEEE TGRS 54(5):3007), Nielsen et al.
2020 (IEEE GRSL 17(2):242), Canty, Nielsen, Conradsen and Skriver 2020 (Remote Sensing
12(1):46) and the Earth Engine community tutorial "Detecting Changes in Sentinel-1
Imagery" (parts 1-4), for the diagonal (intensity-only) case: each pixel at time i is the
p x p diagonal matrix diag(band_1, ..., band_p) of linear intensities times the ENL m.
Dual-pol VV+VH gives p = 2, VV alone p = 1.

For a sequence of K images starting at image ``ell`` (1-based) the statistics are, with
``S_j`` the sum of the first j images of the sequence and ``|.|`` the product over bands,

    ln R_j = m [p (j ln j - (j-1) ln(j-1)) + (j-1) ln|S_{j-1}| + ln|X_j| - j ln|S_j|]
    ln Q   = m [p K ln K + sum_i ln|X_i| - K ln|S_K|]  = sum_j ln R_j

and P(-2 rho ln T <= z) ~ (1 - omega2) chi2_f(z) + omega2 chi2_{f+4}(z) (Box), with
f = p for R_j and f = p (K-1) for Q (constants in :func:`r_constants`, :func:`q_constants`).

The sequential procedure (Canty et al. 2020): for ell = 1..k-1 a pixel whose last change
is at interval ell-1 (0 = none) is tested with the sequence ell..k; a change is flagged at
the first interval ell+j-1 (between images ell+j-1 and ell+j) where p(R_j) <= alpha and
p(Q_ell) <= alpha. Intervals are 1-based: interval j lies between image j and j+1.

How it is fast (same maps as the textbook loops over ell and j for every pixel):

- A p-value is only compared with alpha, so ``p <= alpha`` is replaced by
  ``ln T <= threshold``, the threshold being the (1 - alpha) quantile of the Box mixture,
  root-found once per (f, rho, omega2). No chi2 call per pixel.
- A pixel only needs the row ``ell = cmap + 1``. If its Q test fails in that row it can
  never change again (cmap stays ell-1 forever), so it is dropped; inside a row it leaves
  the j loop at its first flag. Each pixel therefore costs O(k) work instead of O(k^2).
- ln|X_i| is computed once per image, ln Q of any row comes from suffix sums, and the
  running sums S_j are updated incrementally on the shrinking set of pixels still tested. Pixels are processed in chunks, so the
  memory is bounded for long series (no (k, k, H, W) array).
- With the optional 3x3 median filter the p-value images of a row are needed around every
  tested pixel: R_j is then computed on the tested pixels' 3x3 neighbourhood and the
  median is taken on the statistic (the p-value is a monotone function of it within a
  row, so median and p-value commute).

Pure numpy/scipy (no numba). Scenes too large for memory (dask (k, H, W) arrays, e.g. from
``scene.load(..., chunks=...)``) run block by block with the same kernels
(:func:`omnibus_blocks`): every pixel's maps depend only on its own series, or with the
median filter on its 3 x 3 neighbourhood, so blocks with a 1 px halo give the in-memory maps
exactly.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import optimize, stats

from . import config

#: Value written to GeoTIFFs for pixels without data (the arrays themselves hold 0 there
#: and ``valid`` is False).
NODATA = 255
#: bmap classes.
BMAP_NAMES = {0: "no change", 1: "positive definite (brighter)", 2: "negative definite (darker)", 3: "indefinite"}
BMAP_COLORS = {0: "#ffffff", 1: "#d7191c", 2: "#2c7bb6", 3: "#fdae61"}

_CHUNK = 16384  # pixels per chunk (a chunk holds about (2 p + 2) * k * 8 bytes per pixel)


# ----------------------------------------------------------------------------- constants
def r_constants(j: int, enl: float, p: int = 2) -> tuple[int, float, float]:
    """``(f, rho, omega2)`` of the Box approximation for ln R_j, diagonal case with p bands.

    Each band is a 1 x 1 complex Wishart; the constants of the p independent bands add up
    in f and omega2 (rho is the same for every band).
    """
    if j < 2:
        raise ValueError(f"R_j is defined for j >= 2, got j={j}")
    m = float(enl)
    rho = 1.0 - (1.0 + 1.0 / (j * (j - 1))) / (6.0 * m)
    omega2 = -p * 0.25 * (1.0 - 1.0 / rho) ** 2
    return p, rho, omega2


def q_constants(k: int, enl: float, p: int = 2) -> tuple[int, float, float]:
    """``(f, rho, omega2)`` of the Box approximation for the omnibus ln Q over k images."""
    if k < 2:
        raise ValueError(f"the omnibus test needs k >= 2 images, got k={k}")
    m = float(enl)
    rho = 1.0 - (k / m - 1.0 / (k * m)) / (6.0 * (k - 1))
    omega2 = -p * (k - 1) * 0.25 * (1.0 - 1.0 / rho) ** 2
    return p * (k - 1), rho, omega2


def box_sf(z, f: int, omega2: float) -> np.ndarray:
    """p-value P(Z > z) of the Box mixture (1-omega2) chi2_f + omega2 chi2_{f+4}, clipped to [0, 1].

    ``z`` is -2 rho ln T (dimensionless, >= 0 up to rounding).
    """
    z = np.asarray(z, dtype=np.float64)
    p = (1.0 - omega2) * stats.chi2.sf(z, f) + omega2 * stats.chi2.sf(z, f + 4)
    return np.clip(p, 0.0, 1.0)


@lru_cache(maxsize=4096)
def _box_quantile(f: int, omega2: float, alpha: float) -> float:
    """z* with box_sf(z*) = alpha (the mixture is decreasing until it drops below 0)."""
    sf = lambda z: (1.0 - omega2) * stats.chi2.sf(z, f) + omega2 * stats.chi2.sf(z, f + 4) - alpha  # noqa: E731
    hi = max(1.0, float(stats.chi2.isf(alpha, f + 4)))
    while sf(hi) > 0:
        hi *= 2.0
    return float(optimize.brentq(sf, 0.0, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500))


def _ln_threshold(f: int, rho: float, omega2: float, alpha: float) -> float:
    """The test rejects (p <= alpha) exactly when ln T <= this value."""
    return -_box_quantile(f, omega2, alpha) / (2.0 * rho)


# ----------------------------------------------------------------------------- checks
def _check_bands(bands, names) -> list[np.ndarray]:
    arrs = []
    for a, name in zip(bands, names):
        if np.ma.isMaskedArray(a):  # masked pixels become no-data, not their fill values
            a = np.ma.filled(a.astype(np.float64), np.nan)
        arrs.append(np.asarray(a))
    _check_shapes(arrs, names)
    _refuse_db(arrs, names)
    return arrs


def _check_shapes(arrs, names) -> None:
    """Shape and type checks that need no pass over the data (numpy or dask bands)."""
    for a, name in zip(arrs, names):
        if a.ndim != 3:
            raise ValueError(f"{name} must be a (k, H, W) array of linear intensities, got shape {a.shape}")
        if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
            raise ValueError(f"{name} must hold real numbers, got dtype {a.dtype}")
    shape = arrs[0].shape
    for a, name in zip(arrs[1:], names[1:]):
        if a.shape != shape:
            raise ValueError(f"{names[0]} has shape {shape} but {name} has shape {a.shape}; they must match")
    if shape[0] < 2:
        raise ValueError(f"the omnibus test needs at least 2 images, got k={shape[0]}")
    if shape[0] > 256:
        raise ValueError(f"at most 256 images (255 intervals fit the uint8 maps), got k={shape[0]}")


def _check_params(enl, alpha):
    if isinstance(enl, bool) or not isinstance(enl, numbers.Real) or not np.isfinite(enl) or enl < 1.0:
        raise ValueError(f"enl (equivalent number of looks) must be a finite number >= 1, got {enl!r}")
    enl = float(enl)
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (0.0 < alpha < 0.5):
            raise ValueError(f"alpha (significance level) must be a number in (0, 0.5), got {alpha!r}")
        alpha = float(alpha)
    return enl, alpha


#: :func:`_omnibus` refuses an ``enl`` more than this factor away from the data's estimate.
ENL_TOLERANCE = 2.5


def estimate_enl(intensity, *, valid=None, max_pixels: int = 20000, seed: int = 0):
    """Equivalent number of looks of a (k, H, W) intensity series, from the data.

    Between two dates the log-ratio ``ln(I_t+1 / I_t)`` of an unchanged pixel is free of
    texture and, for gamma speckle with L looks, has variance ``2 * trigamma(L)``; its
    variance is taken robustly (1.4826 x MAD), so changed pixels hardly count. Up to
    ``max_pixels`` random valid pixels are used (``valid`` (H, W) bool, e.g. from the omnibus'
    own no-data mask; default: finite and positive on every date). Returns None when fewer than 1000
    log-ratios are available or they do not vary (noise-free data). Simulated speckle with
    1-30 looks gives estimates 0-16% high; amplitudes (the square root of intensity) give
    about 3.7x the true looks, so the estimate also exposes amplitude input.
    """
    from scipy.special import polygamma

    from .blocks import is_lazy

    if is_lazy(intensity):  # a fixed sample of whole chunks, never the whole scene
        if intensity.ndim != 3 or intensity.shape[0] < 2:
            return None
        intensity = _sample_blocks([intensity.rechunk({0: -1})], max_pixels, seed)[0]
        valid = None
    a = np.asarray(intensity)
    if a.ndim != 3 or a.shape[0] < 2:
        return None
    if valid is None:
        valid = _valid_mask([a])
    ok = np.flatnonzero(np.asarray(valid).ravel())
    if ok.size > max_pixels:
        ok = np.sort(np.random.default_rng(seed).choice(ok, max_pixels, replace=False))
    logs = np.log(a.reshape(a.shape[0], -1)[:, ok].astype(np.float64))  # the sampled pixels only
    r = np.diff(logs, axis=0).ravel()
    if r.size < 1000:
        return None
    sigma2 = (1.4826 * np.median(np.abs(r - np.median(r)))) ** 2
    if not sigma2 > 0:
        return None
    f = lambda L: 2.0 * polygamma(1, L) - sigma2  # noqa: E731  (decreasing in L)
    lo, hi = 0.05, 1e5
    if f(lo) < 0:
        return lo
    if f(hi) > 0:
        return hi
    return float(optimize.brentq(f, lo, hi))


def _check_enl_against_data(arrs, names, enl, valid) -> float | None:
    """Refuse an ``enl`` far from what the first band's speckle shows (confident wrong maps).

    Lazy bands: estimated on a fixed sample of whole chunks (:func:`_sample_blocks`), which is
    also checked for dB first."""
    from .blocks import is_lazy

    if is_lazy(arrs[0]):
        arrs = _sample_blocks(arrs)
        _refuse_db(arrs, names, " in a sample of the scene")
        valid = _valid_mask(arrs)
    est = estimate_enl(arrs[0], valid=valid)
    if est is None:
        return None
    if est > ENL_TOLERANCE * enl:
        raise ValueError(
            f"{names[0]}: the speckle looks like {est:.1f} looks, far more than enl={enl:g}. Amplitudes instead of "
            f"intensities? (square them: the omnibus test needs linear intensity, e.g. COPERNICUS/S1_GRD_FLOAT). "
            f"Otherwise the images were averaged: pass enl={est:.1f}. With too few looks assumed, changes are missed")
    if est * ENL_TOLERANCE < enl:
        raise ValueError(
            f"{names[0]}: the speckle looks like {est:.1f} looks, far fewer than enl={enl:g}: with too many looks "
            f"assumed, speckle is taken for change everywhere. Pass enl={est:.1f} (Sentinel-1 GRD IW 10 m: 4.4)")
    return est


def _valid_mask(arrs) -> np.ndarray:
    """(H, W) bool: pixels with a finite, positive intensity in every image and band.

    Zeros (S1 border noise) and NaN (masks) cannot enter the log-determinants, so such a
    pixel is no-data for the whole series.
    """
    valid = np.ones(arrs[0].shape[1:], bool)
    for a in arrs:
        with np.errstate(invalid="ignore"):
            valid &= (np.isfinite(a) & (a > 0)).all(axis=0)
    return valid


# ----------------------------------------------------------------------------- result
@dataclass
class OmnibusResult:
    """Change maps of the sequential omnibus test (uint8, intervals 1-based).

    - ``cmap`` (H, W): interval of the most recent change, 0 = none.
    - ``smap`` (H, W): interval of the first change, 0 = none.
    - ``fmap`` (H, W): number of changes.
    - ``bmap`` (k-1, H, W): per interval 0 none, 1 positive definite (brighter),
      2 negative definite (darker), 3 indefinite.
    - ``valid`` (H, W) bool: False for no-data pixels (NaN or <= 0 in some image); the maps
      hold 0 there; :meth:`with_nodata` gives copies with :data:`NODATA`, :meth:`nan_masked`
      float copies with NaN (for ``ltlib.io.write_raster(..., nodata=NODATA)``).
    - ``q_pvalue`` (H, W) float32: p-value of "no change in all k images" (NaN = no data).
    - ``enl_estimate``: the looks the first band's speckle shows (None on tiny or noise-free
      input); an ``enl`` more than 2.5x away from it is refused before the test runs.
    """

    cmap: np.ndarray
    smap: np.ndarray
    fmap: np.ndarray
    bmap: np.ndarray
    valid: np.ndarray
    q_pvalue: np.ndarray
    enl: float
    alpha: float
    median_filter: bool
    n_bands: int
    timings: dict = field(default_factory=dict)
    enl_estimate: float | None = None  # looks estimated from the data (:func:`estimate_enl`)
    #: Block by block: ``counts`` (:meth:`counts`) and ``proportions`` (:func:`change_proportions`)
    #: streamed while the maps were written (the maps are then lazy, read from the files).
    stats: dict | None = None

    @property
    def is_lazy(self) -> bool:
        """True when the maps are dask arrays (a scene run block by block)."""
        from .blocks import is_lazy

        return is_lazy(self.bmap)

    @property
    def k(self) -> int:
        return self.bmap.shape[0] + 1

    def with_nodata(self, name: str, nodata: int = NODATA) -> np.ndarray:
        """Copy of map ``name`` ('cmap', 'smap', 'fmap' or 'bmap') with ``nodata`` on invalid pixels."""
        if name not in ("cmap", "smap", "fmap", "bmap"):
            raise ValueError(f"unknown map {name!r}; expected cmap, smap, fmap or bmap")
        out = getattr(self, name).copy()
        if name == "bmap":
            out[:, ~self.valid] = nodata
        else:
            out[~self.valid] = nodata
        return out

    def nan_masked(self, name: str) -> np.ndarray:
        """Map ``name`` as float32 with NaN on invalid pixels (what ``io.write_raster`` turns into nodata)."""
        if name not in ("cmap", "smap", "fmap", "bmap"):
            raise ValueError(f"unknown map {name!r}; expected cmap, smap, fmap or bmap")
        return np.where(self.valid, getattr(self, name), np.nan).astype(np.float32)

    def max_changes(self) -> int:
        """The largest ``fmap`` (changes of one pixel; 0 on no-data pixels): streamed with the
        counts of a block-by-block run, else one pass over ``fmap``."""
        if self.stats is not None:
            return int(self.stats["counts"]["max_changes_per_pixel"])
        if self.is_lazy:
            from .blocks import compute

            return int(compute(self.fmap.max(), progress=False)[0])
        return int(self.fmap.max())

    def counts(self) -> dict:
        """Pixel counts a reader checks: valid, changed, and changes per bmap class."""
        if self.stats is not None:
            return dict(self.stats["counts"])
        if self.is_lazy:
            raise ValueError("the maps of a block-by-block run are lazy: their counts are streamed while they are "
                             "written (sar_run.detect_changes(..., output_dir=...))")
        v = self.valid
        return {
            "n_pixels": int(v.size),
            "n_valid": int(v.sum()),
            "n_changed": int((self.fmap[v] > 0).sum()),
            "n_changes": int(self.fmap[v].sum(dtype=np.int64)),
            "n_brighter": int((self.bmap == 1).sum()),
            "n_darker": int((self.bmap == 2).sum()),
            "n_indefinite": int((self.bmap == 3).sum()),
            "max_changes_per_pixel": int(self.fmap[v].max()) if v.any() else 0,
        }


# ----------------------------------------------------------------------------- core
def _row_constants(k: int, enl: float, alpha: float, p: int):
    """Thresholds on ln R_j (index j) and ln Q_K (index K) plus the ln R_j offsets."""
    thr_r = np.full(k + 1, np.nan)
    off_r = np.zeros(k + 1)
    thr_q = np.full(k + 1, np.nan)
    for j in range(2, k + 1):
        f, rho, om = r_constants(j, enl, p)
        thr_r[j] = _ln_threshold(f, rho, om, alpha)
        off_r[j] = p * (j * np.log(j) - (j - 1) * np.log(j - 1))
        f, rho, om = q_constants(j, enl, p)
        thr_q[j] = _ln_threshold(f, rho, om, alpha)
    return thr_r, off_r, thr_q


def _ln_q(x: np.ndarray, logdet: np.ndarray, enl: float) -> np.ndarray:
    """ln Q of the whole sequence: x (p, K, n) intensities, logdet (K, n) = sum_b ln x."""
    p, K, _ = x.shape
    return enl * (p * K * np.log(K) + logdet.sum(0) - K * np.log(x.sum(1)).sum(0))


def _flags_chunk(x: np.ndarray, logdet: np.ndarray, enl: float, consts) -> np.ndarray:
    """Sequential test for independent pixels: x (p, k, n) float64 > 0, logdet (k, n).

    Returns flags (k-1, n) bool, True where a change is flagged at interval i+1 (0-based i).
    """
    thr_r, off_r, thr_q = consts
    p, k, n = x.shape
    # suffix sums make ln Q of any row O(1) per pixel (pixels that change often visit many rows)
    sx = np.cumsum(x[:, ::-1], axis=1)[:, ::-1]
    sl = np.cumsum(logdet[::-1], axis=0)[::-1]
    flags = np.zeros((k - 1, n), bool)
    pending: list[list[np.ndarray]] = [[] for _ in range(k)]
    pending[0].append(np.arange(n))
    for s in range(k - 1):  # s = ell - 1: pixels whose last change is at interval s
        if not pending[s]:
            continue
        idx = np.concatenate(pending[s])
        pending[s] = []
        K = k - s
        lnq = enl * (p * K * np.log(K) + sl[s, idx] - K * np.log(sx[:, s, idx]).sum(0))
        idx = idx[lnq <= thr_q[K]]  # Q not significant: this pixel can never change again
        if idx.size == 0:
            continue
        S = x[:, s, idx].copy()
        ln_prev = logdet[s, idx]
        for j in range(2, K + 1):
            i = s + j - 1  # 0-based image index of X_j
            S += x[:, i, idx]
            ln_s = np.log(S).sum(0)
            ln_r = enl * (off_r[j] + (j - 1) * ln_prev + logdet[i, idx] - j * ln_s)
            hit = ln_r <= thr_r[j]
            if hit.any():
                got = idx[hit]
                flags[i - 1, got] = True  # interval i (1-based) = ell + j - 2, between images i and i+1
                if i < k - 1:
                    pending[i].append(got)
                keep = ~hit
                idx, S, ln_prev = idx[keep], S[:, keep], ln_s[keep]
                if idx.size == 0:
                    break
            else:
                ln_prev = ln_s
    return flags


def _directions(x: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """bmap (k-1, n) uint8 from x (p, k, n) and flags (k-1, n): Loewner order of the
    difference between image i and the running mean of the images since the last change."""
    p, k, n = x.shape
    bmap = np.zeros((k - 1, n), np.uint8)
    avg = x[:, 0].copy()
    cnt = np.ones(n)
    for i in range(1, k):
        xi = x[:, i]
        diff = xi - avg
        posd = (diff > 0).all(0)
        negd = (diff < 0).all(0)
        fl = flags[i - 1]
        bmap[i - 1] = np.where(fl, np.where(posd, 1, np.where(negd, 2, 3)), 0)
        cnt += 1.0
        avg += (xi - avg) / cnt
        if fl.any():  # the running mean restarts at the changed image
            avg[:, fl] = xi[:, fl]
            cnt[fl] = 1.0
    return bmap


def _maps_from_flags(flags: np.ndarray):
    """cmap, smap, fmap (n,) uint8 from flags (k-1, n) (argmax on bool: no (k-1, n) int temporaries)."""
    km1 = flags.shape[0]
    fmap = flags.sum(0, dtype=np.int64).astype(np.uint8)
    any_ = fmap > 0
    smap = np.where(any_, flags.argmax(0) + 1, 0).astype(np.uint8)
    cmap = np.where(any_, km1 - flags[::-1].argmax(0), 0).astype(np.uint8)
    return cmap, smap, fmap


def _chunk_data(arrs, cols):
    """(p, k, n) float64 intensities and (k, n) ln-determinants of flat pixel columns."""
    x = np.stack([a[:, cols] for a in arrs]).astype(np.float64, copy=False)
    return x, np.log(x).sum(0)


def _neighbours(pix: np.ndarray, shape) -> np.ndarray:
    """(9, n) flat indices of the 3x3 neighbourhoods of flat pixels ``pix`` (edges repeat)."""
    H, W = shape
    r, c = np.divmod(pix, W)
    out = np.empty((9, pix.size), np.int64)
    t = 0
    for dr in (-1, 0, 1):
        rr = np.clip(r + dr, 0, H - 1) * W
        for dc in (-1, 0, 1):
            out[t] = rr + np.clip(c + dc, 0, W - 1)
            t += 1
    return out


def _flags_median(arrs, valid_flat, shape, enl, consts) -> np.ndarray:
    """Sequential test with a 3x3 median filter on the p-value images of every row.

    Invalid pixels count as p = 1 (statistic 0) in the neighbourhoods; image edges repeat
    (scipy.ndimage 'nearest'). Returns flags (k-1, N) bool over all N pixels.
    """
    thr_r, off_r, thr_q = consts
    k = arrs[0].shape[0]
    N = valid_flat.size
    vidx = np.flatnonzero(valid_flat)
    # ln Q of every row for every valid pixel, chunked; float64 (k-1, N) would be large,
    # the statistic relative to its threshold is kept in float32 instead.
    lnq_rel = np.zeros((k - 1, N), np.float32)
    lnq_rel[:] = -thr_q[k - np.arange(k - 1)][:, None]  # invalid pixels: ln Q = 0
    for c0 in range(0, vidx.size, _CHUNK):
        cols = vidx[c0:c0 + _CHUNK]
        x, logdet = _chunk_data(arrs, cols)
        p = x.shape[0]
        sx = np.cumsum(x[:, ::-1], axis=1)[:, ::-1]  # suffix sums (p, k, n)
        sl = np.cumsum(logdet[::-1], axis=0)[::-1]
        for s in range(k - 1):
            K = k - s
            lnq = enl * (p * K * np.log(K) + sl[s] - K * np.log(sx[:, s]).sum(0))
            lnq_rel[s, cols] = lnq - thr_q[K]
    flags = np.zeros((k - 1, N), bool)
    last = np.zeros(N, np.int64)  # cmap while running
    alive = valid_flat.copy()  # may still change
    ln_r_img = np.zeros(N)
    for s in range(k - 1):
        cand = np.flatnonzero(alive & (last == s))
        if cand.size == 0:
            continue
        qmed = np.median(lnq_rel[s][_neighbours(cand, shape)], axis=0)
        alive[cand[qmed > 0]] = False
        act = cand[qmed <= 0]
        if act.size == 0:
            continue
        nb_act = _neighbours(act, shape)
        mark = np.zeros(N, bool)
        mark[nb_act.ravel()] = True
        need = np.flatnonzero(mark & valid_flat)  # pixels whose R_j the medians read

        def image(i):  # (p, n_need) float64 intensities of image i, read only when needed
            return np.stack([a[i, need] for a in arrs]).astype(np.float64, copy=False)

        K = k - s
        S = image(s)
        ln_prev = np.log(S).sum(0)
        act_alive = np.ones(act.size, bool)
        for j in range(2, K + 1):
            i = s + j - 1
            xi = image(i)
            S += xi
            ln_s = np.log(S).sum(0)
            ln_r_img[need] = enl * (off_r[j] + (j - 1) * ln_prev + np.log(xi).sum(0) - j * ln_s)
            ln_prev = ln_s
            sel = np.flatnonzero(act_alive)
            med = np.median(ln_r_img[nb_act[:, sel]], axis=0)
            hit = sel[med <= thr_r[j]]
            if hit.size:
                got = act[hit]
                flags[i - 1, got] = True
                last[got] = i
                act_alive[hit] = False
                if not act_alive.any():
                    break
        ln_r_img[need] = 0.0
        # active pixels that found no change in their row can never change again
        alive[act[act_alive]] = False
    return flags


def _omnibus_core(flat, valid_flat, shape, enl, consts, median_filter):
    """The maps of pixels in memory: ``flat`` p arrays (k, N), ``valid_flat`` (N,) bool, ``shape``
    (H, W) with H * W = N. Returns cmap, smap, fmap (N,) uint8, bmap (k-1, N) uint8, pq (N,) float32."""
    k, N = flat[0].shape
    p = len(flat)
    vidx = np.flatnonzero(valid_flat)
    flags = np.zeros((k - 1, N), bool)
    if median_filter:
        flags = _flags_median(flat, valid_flat, shape, enl, consts)
    bmap = np.zeros((k - 1, N), np.uint8)
    pq = np.full(N, np.nan, np.float32)
    fq, rhoq, omq = q_constants(k, enl, p)
    for c0 in range(0, vidx.size, _CHUNK):
        cols = vidx[c0:c0 + _CHUNK]
        x, logdet = _chunk_data(flat, cols)
        if not median_filter:
            flags[:, cols] = _flags_chunk(x, logdet, enl, consts)
        bmap[:, cols] = _directions(x, flags[:, cols])
        pq[cols] = box_sf(-2.0 * rhoq * _ln_q(x, logdet, enl), fq, omq)
    cmap, smap, fmap = _maps_from_flags(flags)
    return cmap, smap, fmap, bmap, pq


def _omnibus(arrs, names, enl, alpha, median_filter) -> OmnibusResult:
    import time

    from .blocks import is_lazy

    if any(is_lazy(a) for a in arrs):
        return _omnibus_lazy(arrs, names, enl, alpha, median_filter)
    t0 = time.perf_counter()
    arrs = _check_bands(arrs, names)
    enl, alpha = _check_params(enl, alpha)
    k, H, W = arrs[0].shape
    p = len(arrs)
    valid = _valid_mask(arrs)
    enl_estimate = _check_enl_against_data(arrs, names, enl, valid)
    flat = [a.reshape(k, H * W) for a in arrs]
    consts = _row_constants(k, enl, alpha, p)
    t1 = time.perf_counter()
    cmap, smap, fmap, bmap, pq = _omnibus_core(flat, valid.ravel(), (H, W), enl, consts, median_filter)
    t2 = time.perf_counter()
    return OmnibusResult(
        cmap=cmap.reshape(H, W), smap=smap.reshape(H, W), fmap=fmap.reshape(H, W),
        bmap=bmap.reshape(k - 1, H, W), valid=valid, q_pvalue=pq.reshape(H, W),
        enl=enl, alpha=alpha, median_filter=bool(median_filter), n_bands=p,
        timings={"checks_s": t1 - t0, "test_s": t2 - t1}, enl_estimate=enl_estimate,
    )


# ----------------------------------------------------------------------------- block by block
#: Layout of the float32 planes one block task returns (uint8 maps and bool are exact in float32).
_PLANES = {"cmap": 0, "smap": 1, "fmap": 2, "valid": 3, "q_pvalue": 4}
_BMAP0 = 5  # bmap's k-1 planes follow
#: The ENL check of a lazy scene reads at most this many whole chunks (chosen with a fixed seed).
ENL_SAMPLE_BLOCKS = 8


def _check_lazy_bands(bands, names) -> list:
    """The checks of :func:`_check_bands` that need no pass over the data, for dask (k, H, W)
    arrays (numpy bands are wrapped); every band gets the first lazy band's spatial chunks
    and all k images in each chunk. Negative values (dB) are refused block by block."""
    import dask.array as da

    from .blocks import is_lazy

    for a, name in zip(bands, names):
        if a is None or not hasattr(a, "ndim"):
            raise ValueError(f"{name} must be a (k, H, W) array of linear intensities, got {type(a).__name__}")
    _check_shapes(bands, names)
    shape = bands[0].shape
    ref = next(a for a in bands if is_lazy(a))
    chunks = ((shape[0],),) + ref.chunks[1:]
    return [a.rechunk(chunks) if is_lazy(a) else da.from_array(np.asarray(a), chunks=chunks) for a in bands]


def _refuse_db(arrs, names, where: str = "") -> None:
    """ValueError when a band holds negative values (dB instead of linear intensity)."""
    for a, name in zip(arrs, names):
        with np.errstate(invalid="ignore"):
            neg = np.nanmin(a) if np.isfinite(a).any() else 0.0
        if neg < 0:
            n_neg = int(np.count_nonzero(a < 0))
            raise ValueError(
                f"{name} has {n_neg} negative values{where} (min {float(neg):.3g}): it looks like dB. The omnibus "
                "test needs linear intensities (e.g. COPERNICUS/S1_GRD_FLOAT); convert with 10 ** (dB / 10)")


def _sample_blocks(arrs, max_pixels: int = 20000, seed: int = 0) -> list[np.ndarray]:
    """Whole chunks of dask (k, H, W) bands, chosen with a fixed seed, until they hold
    ``max_pixels`` valid pixels (at most :data:`ENL_SAMPLE_BLOCKS` chunks): p arrays (k, 1, n).

    A fixed random sample instead of the whole scene: reading it costs a few chunks."""
    from . import blocks

    nby, nbx = len(arrs[0].chunks[1]), len(arrs[0].chunks[2])
    order = np.random.default_rng(seed).permutation(nby * nbx)[:ENL_SAMPLE_BLOCKS]
    parts: list[list[np.ndarray]] = [[] for _ in arrs]
    n_valid = 0
    for b in order:
        iy, ix = divmod(int(b), nbx)
        got = blocks.compute(*[a.blocks[0, iy, ix] for a in arrs], progress=False)
        for part, g in zip(parts, got):
            part.append(g.reshape(g.shape[0], 1, -1))
        n_valid += int(_valid_mask(got).sum())
        if n_valid >= max_pixels:
            break
    return [np.concatenate(part, axis=2) for part in parts]


def _omnibus_block(*bands, names, enl, consts, median_filter) -> np.ndarray:
    """One block task: the maps of (k, h, w) blocks (with their halo when ``median_filter``),
    packed as float32 planes (:data:`_PLANES`, then bmap)."""
    arrs = [np.asarray(b) for b in bands]
    _refuse_db(arrs, names, " in one block")
    k, h, w = arrs[0].shape
    valid = _valid_mask(arrs)
    flat = [a.reshape(k, h * w) for a in arrs]
    cmap, smap, fmap, bmap, pq = _omnibus_core(flat, valid.ravel(), (h, w), enl, consts, median_filter)
    out = np.empty((_BMAP0 + k - 1, h, w), np.float32)
    for name, plane in (("cmap", cmap), ("smap", smap), ("fmap", fmap), ("valid", valid), ("q_pvalue", pq)):
        out[_PLANES[name]] = plane.reshape(h, w)
    out[_BMAP0:] = bmap.reshape(k - 1, h, w)
    return out


def _q_block(*bands, names, enl, out_dtype) -> np.ndarray:
    """(h, w) p-value of the omnibus Q of (k, h, w) blocks (NaN: no data), as :func:`q_pvalue`."""
    arrs = [np.asarray(b) for b in bands]
    _refuse_db(arrs, names, " in one block")
    k, h, w = arrs[0].shape
    valid = _valid_mask(arrs).ravel()
    vidx = np.flatnonzero(valid)
    flat = [a.reshape(k, h * w) for a in arrs]
    f, rho, om = q_constants(k, enl, len(arrs))
    out = np.full(h * w, np.nan, out_dtype)
    for c0 in range(0, vidx.size, _CHUNK):
        cols = vidx[c0:c0 + _CHUNK]
        x, logdet = _chunk_data(flat, cols)
        out[cols] = box_sf(-2.0 * rho * _ln_q(x, logdet, enl), f, om)
    return out.reshape(h, w)


def _q_lazy(arrs, names, enl, dtype):
    import dask.array as da

    return da.map_blocks(_q_block, *arrs, names=list(names), enl=enl, out_dtype=dtype, dtype=np.dtype(dtype),
                         drop_axis=0,
                         chunks=arrs[0].chunks[1:], meta=np.empty((0, 0), dtype))


def _omnibus_lazy(bands, names, enl, alpha, median_filter) -> OmnibusResult:
    """:func:`omnibus` on dask (k, H, W) bands: a lazy :class:`OmnibusResult` (nothing computed
    but the ENL check's few chunks). Write its maps with ``sar_run.detect_changes(..., output_dir)``."""
    import time

    import dask.array as da

    t0 = time.perf_counter()
    arrs = _check_lazy_bands(bands, names)
    enl, alpha = _check_params(enl, alpha)
    k = arrs[0].shape[0]
    p = len(arrs)
    enl_estimate = _check_enl_against_data(arrs, names, enl, None)
    consts = _row_constants(k, enl, alpha, p)
    n_out = _BMAP0 + k - 1
    kw = dict(names=list(names), enl=enl, consts=consts, median_filter=bool(median_filter))
    if median_filter:
        # the 3x3 median reads one neighbour on each side: a 1 px halo, none beyond the image's
        # edges (there the block's own edge repeats, as the whole image's does in memory)
        depth = {0: 0, 1: 1, 2: 1}
        ins = [da.overlap.overlap(a, depth=depth, boundary="none") for a in arrs]
        packed = da.map_blocks(_omnibus_block, *ins, dtype=np.float32, chunks=((n_out,),) + ins[0].chunks[1:],
                               meta=np.empty((0, 0, 0), np.float32), **kw)
        packed = da.overlap.trim_internal(packed, depth, boundary="none")
    else:
        packed = da.map_blocks(_omnibus_block, *arrs, dtype=np.float32, chunks=((n_out,),) + arrs[0].chunks[1:],
                               meta=np.empty((0, 0, 0), np.float32), **kw)
    u8 = lambda name: packed[_PLANES[name]].astype(np.uint8)  # noqa: E731
    return OmnibusResult(
        cmap=u8("cmap"), smap=u8("smap"), fmap=u8("fmap"), bmap=packed[_BMAP0:].astype(np.uint8),
        # q_pvalue from its own cheap graph: reading it later does not rerun the test
        valid=packed[_PLANES["valid"]] > 0, q_pvalue=_q_lazy(arrs, names, enl, np.float32),
        enl=enl, alpha=alpha, median_filter=bool(median_filter), n_bands=p,
        timings={"checks_s": time.perf_counter() - t0}, enl_estimate=enl_estimate,
    )


def count_graph(result: OmnibusResult) -> dict:
    """Dask reductions of a lazy result: ``counts`` (the keys of :meth:`OmnibusResult.counts`)
    and ``class_counts`` (k-1, 3) int64 per interval (brighter, darker, indefinite), to be
    computed in the pass that writes the maps (``blocks.write_rasters(..., also=...)``)."""
    import dask.array as da

    v, f, b = result.valid, result.fmap, result.bmap
    fv = da.where(v, f, 0)
    per_class = [(b == c).sum(axis=(1, 2), dtype=np.int64) for c in (1, 2, 3)]
    counts = {
        "n_valid": v.sum(dtype=np.int64),
        "n_changed": (fv > 0).sum(dtype=np.int64),
        "n_changes": fv.sum(dtype=np.int64),
        "n_brighter": per_class[0].sum(),
        "n_darker": per_class[1].sum(),
        "n_indefinite": per_class[2].sum(),
        "max_changes_per_pixel": fv.max(),
    }
    return {"counts": counts, "class_counts": da.stack(per_class, axis=1)}


def stats_from_counts(counts: dict, class_counts, n_pixels: int) -> dict:
    """``stats`` of a lazy :class:`OmnibusResult` from the computed :func:`count_graph`: the
    counts as :meth:`OmnibusResult.counts` gives them and ``proportions`` as
    :func:`change_proportions` (the same divisions)."""
    c = {"n_pixels": int(n_pixels), **{k: int(v) for k, v in counts.items()}}
    c = {k: c[k] for k in ("n_pixels", "n_valid", "n_changed", "n_changes", "n_brighter", "n_darker", "n_indefinite",
                           "max_changes_per_pixel")}
    n = max(c["n_valid"], 1)
    return {"counts": c, "proportions": np.asarray(class_counts) / n}


# ----------------------------------------------------------------------------- public API
def omnibus(vv, vh, *, enl: float = config.S1_ENL, alpha: float = config.S1_ALPHA,
            median_filter: bool = False) -> OmnibusResult:
    """Sequential omnibus change detection on a dual-pol (VV, VH) Sentinel-1 series.

    ``vv``, ``vh``: (k, H, W) linear intensities (k >= 2, same shape; dB is refused).
    ``enl``: equivalent number of looks (4.4 for GRD IW 10 m). ``alpha``: significance
    level of every test. ``median_filter``: 3x3 median over the p-value images (R_j and Q)
    before thresholding. Pass ``vh=None`` for VV only (same as :func:`omnibus_single`).
    Returns an :class:`OmnibusResult` (cmap, smap, fmap (H, W) uint8, bmap (k-1, H, W)
    uint8, valid (H, W) bool). Pixels with NaN or zero in some image are no-data.

    Dask bands (a scene opened in chunks) give a lazy result computed block by block with
    the same kernels (a 1 px halo for the median filter): write it with
    ``ltlib.sar_run.detect_changes(..., output_dir=...)``; its maps equal the in-memory ones.
    """
    if vh is None:
        return _omnibus([vv], ["vv"], enl, alpha, median_filter)
    return _omnibus([vv, vh], ["vv", "vh"], enl, alpha, median_filter)


def omnibus_single(intensity, *, enl: float = config.S1_ENL, alpha: float = config.S1_ALPHA,
                   median_filter: bool = False) -> OmnibusResult:
    """Single-polarisation variant of :func:`omnibus`: ``intensity`` (k, H, W) linear (e.g. VV).

    Same test with p = 1 band (f = 1 per R_j); bmap is 1 (brighter) or 2 (darker).
    """
    return _omnibus([intensity], ["intensity"], enl, alpha, median_filter)


def q_pvalue(vv, vh=None, *, enl: float = config.S1_ENL) -> np.ndarray:
    """(H, W) float64 p-value of the omnibus test that all k images are equal.

    ``vv``, ``vh``: (k, H, W) linear intensities (``vh=None``: VV only). NaN where a pixel
    has NaN or zero in some image. Dask bands give a lazy (H, W) array, computed block by block.
    """
    from .blocks import is_lazy

    names = ["vv"] if vh is None else ["vv", "vh"]
    if is_lazy(vv) or is_lazy(vh):
        arrs = _check_lazy_bands([vv] if vh is None else [vv, vh], names)
        enl, _ = _check_params(enl, None)
        return _q_lazy(arrs, names, enl, np.float64)
    arrs = _check_bands([vv] if vh is None else [vv, vh], names)
    enl, _ = _check_params(enl, None)
    k, H, W = arrs[0].shape
    p = len(arrs)
    valid = _valid_mask(arrs).ravel()
    vidx = np.flatnonzero(valid)
    flat = [a.reshape(k, H * W) for a in arrs]
    f, rho, om = q_constants(k, enl, p)
    out = np.full(H * W, np.nan)
    for c0 in range(0, vidx.size, _CHUNK):
        cols = vidx[c0:c0 + _CHUNK]
        x, logdet = _chunk_data(flat, cols)
        out[cols] = box_sf(-2.0 * rho * _ln_q(x, logdet, enl), f, om)
    return out.reshape(H, W)


# ----------------------------------------------------------------------------- summaries
def _count_mask(valid, shape) -> np.ndarray:
    """(H, W) bool mask of pixels to count (all when None); its shape must match the maps'."""
    if valid is None:
        return np.ones(shape, bool)
    valid = np.asarray(valid, bool)
    if valid.shape != tuple(shape):
        raise ValueError(f"valid has shape {valid.shape}, bmap pixels {tuple(shape)}")
    return valid


def change_proportions(bmap, valid=None) -> np.ndarray:
    """(k-1, 3) fraction of valid pixels flagged per interval as brighter, darker, indefinite.

    ``bmap`` (k-1, H, W) uint8; ``valid`` (H, W) bool (default: all pixels).
    """
    bmap = np.asarray(bmap)
    if bmap.ndim != 3:
        raise ValueError(f"bmap must be (k-1, H, W), got shape {bmap.shape}")
    valid = _count_mask(valid, bmap.shape[1:])
    n = max(int(valid.sum()), 1)
    b = bmap[:, valid]
    return np.stack([(b == c).sum(1) / n for c in (1, 2, 3)], axis=1)


def composite(cmap, smap, fmap, k: int, *, fmax=None) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1]: red = cmap, green = smap (both / (k-1)), blue = fmap / max.

    ``fmax``: the largest fmap when already known (:meth:`OmnibusResult.max_changes`), else
    computed. Dask maps give a lazy composite (nothing computed but ``fmax``)."""
    from .blocks import compute, is_lazy

    if any(is_lazy(a) for a in (cmap, smap, fmap)):
        import dask.array as da

        cmap, smap, fmap = (da.asarray(a).astype(np.float64) for a in (cmap, smap, fmap))
        xp = da
    else:
        cmap, smap, fmap = (np.asarray(a, np.float64) for a in (cmap, smap, fmap))
        xp = np
    if not (cmap.shape == smap.shape == fmap.shape) or cmap.ndim != 2:
        raise ValueError(f"cmap, smap, fmap must be (H, W) of one shape, got {cmap.shape}, {smap.shape}, {fmap.shape}")
    if fmax is None:
        fmax = compute(fmap.max(), progress=False)[0] if xp is not np else fmap.max()
    fmax = max(float(fmax), 1.0)
    return xp.clip(xp.stack([cmap / (k - 1), smap / (k - 1), fmap / fmax], axis=-1), 0.0, 1.0)


#: The pixel counts :func:`detection_accuracy` is computed from, in this order.
ACCURACY_COUNTS = ("n_pixels", "n_true_changes", "n_detected_changes", "n_right_interval",
                   "n_right_interval_and_direction", "n_false_alarms", "n_no_true_change", "n_near_true_changes",
                   "n_false_alarms_before_first_true_change", "n_cmap_same", "n_smap_same", "n_fmap_same")


def _accuracy_counts(pred: np.ndarray, true: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(len(ACCURACY_COUNTS),) int64 counts of the (pixel, interval) pairs and pixels of
    ``valid`` that :func:`detection_accuracy` divides; each is a sum over pixels, so the
    counts of blocks add up to the counts of the scene."""
    p, t = pred[:, valid], true[:, valid]
    tc, pc = t > 0, p > 0
    hit = tc & pc
    near = pc.copy()  # flagged at the same or a neighbouring interval
    near[1:] |= pc[:-1]
    near[:-1] |= pc[1:]
    fa = pc & ~tc
    first_true = np.where(tc.any(0), tc.argmax(0), tc.shape[0])
    before = (fa & (np.arange(tc.shape[0])[:, None] < first_true) & tc.any(0)).sum()
    maps_p, maps_t = _maps_from_flags(pc), _maps_from_flags(tc)
    same = [(a == b).sum() for a, b in zip(maps_p, maps_t)]
    return np.array([p.shape[1], tc.sum(), pc.sum(), hit.sum(), (hit & (p == t)).sum(), fa.sum(), (~tc).sum(),
                     (tc & near).sum(), before, *same], dtype=np.int64)


def _accuracy_block(packed: np.ndarray) -> np.ndarray:
    """One block of (2 (k-1) + 1, h, w) uint8: predicted bmap, true bmap, valid -> counts (n, 1, 1)."""
    km1 = (packed.shape[0] - 1) // 2
    c = _accuracy_counts(packed[:km1], packed[km1:2 * km1], packed[-1] > 0)
    return c[:, None, None]


def _lazy_accuracy_counts(pred, true, valid) -> np.ndarray:
    """:func:`_accuracy_counts` of dask (or numpy) maps, block by block (every interval of a
    pixel in one block)."""
    import dask.array as da

    from .blocks import compute, is_lazy

    first = next(a for a in (pred, true, valid) if is_lazy(a))
    chunks = first.chunks[-2:]
    as_da = [a if is_lazy(a) else da.from_array(np.asarray(a), chunks=np.shape(a)[:-2] + chunks)
             for a in (pred, true, valid)]
    pred, true, valid = (a.rechunk(a.shape[:-2] + chunks) for a in as_da)
    packed = da.concatenate([pred.astype(np.uint8), true.astype(np.uint8), valid[None].astype(np.uint8)], axis=0)
    packed = packed.rechunk({0: -1})
    n = len(ACCURACY_COUNTS)
    out = packed.map_blocks(_accuracy_block, dtype=np.int64,
                            chunks=((n,), (1,) * len(packed.chunks[1]), (1,) * len(packed.chunks[2])))
    return np.asarray(compute(out.sum(axis=(1, 2), dtype=np.int64), progress=False)[0], dtype=np.int64)


def accuracy_from_counts(counts) -> dict:
    """:func:`detection_accuracy`'s scores from its pixel counts (``ACCURACY_COUNTS`` order, or a
    dict with those keys); the same divisions whether the counts came from memory or blocks."""
    c = dict(counts) if isinstance(counts, dict) else dict(zip(ACCURACY_COUNTS, (int(v) for v in counts)))
    nt, npd, nh = c["n_true_changes"], c["n_detected_changes"], c["n_right_interval"]
    nd = c["n_right_interval_and_direction"]
    out = {
        "n_true_changes": nt,
        "n_detected_changes": npd,
        "n_right_interval": nh,
        "n_right_interval_and_direction": nd,
        "recall": nh / nt if nt else float("nan"),
        "precision": nh / npd if npd else float("nan"),
        "direction_accuracy": float(np.float64(nd) / nh) if nh else float("nan"),
        "false_alarm_rate": float(np.int64(c["n_false_alarms"]) / max(c["n_no_true_change"], 1)),
    }
    out["recall_within_1_interval"] = float(np.int64(c["n_near_true_changes"]) / nt) if nt else float("nan")
    out["n_false_alarms"] = int(c["n_false_alarms"])
    out["n_false_alarms_before_first_true_change"] = int(c["n_false_alarms_before_first_true_change"])
    n = c["n_pixels"]
    for name in ("cmap", "smap", "fmap"):
        out[f"pixel_{name}_agreement"] = float(np.float64(c[f"n_{name}_same"]) / n) if n else float("nan")
    return out


def detection_accuracy(bmap_pred, bmap_true, valid=None) -> dict:
    """Compare detected with true changes, both (k-1, H, W) uint8 bmaps (0 none, 1/2/3 class).

    - ``recall``: true changes (pixel, interval) flagged at the same interval;
    - ``direction_accuracy``: of those, fraction with the right bmap class;
    - ``precision``: flagged (pixel, interval) that are true changes;
    - ``false_alarm_rate``: flagged among (pixel, interval) without a true change;
    - ``recall_within_1_interval``: true changes flagged at the same or a neighbouring interval;
    - ``n_false_alarms`` and ``n_false_alarms_before_first_true_change`` (in pixels that do
      change later: the sequential test scans those intervals once Q is significant);
    - ``pixel_*_agreement``: fraction of valid pixels with the same cmap / smap / fmap.

    Dask maps (a run block by block) are counted block by block (:data:`ACCURACY_COUNTS`,
    every score is a ratio of two of them), giving the in-memory scores exactly.
    """
    from .blocks import is_lazy

    if any(is_lazy(a) for a in (bmap_pred, bmap_true, valid)):
        if np.shape(bmap_pred) != np.shape(bmap_true) or len(np.shape(bmap_pred)) != 3:
            raise ValueError(f"bmap_pred {np.shape(bmap_pred)} and bmap_true {np.shape(bmap_true)} must be equal "
                             "(k-1, H, W) shapes")
        if valid is None:
            valid = np.ones(np.shape(bmap_pred)[1:], bool)
        if tuple(np.shape(valid)) != tuple(np.shape(bmap_pred)[1:]):
            raise ValueError(f"valid has shape {np.shape(valid)}, bmap pixels {tuple(np.shape(bmap_pred)[1:])}")
        return accuracy_from_counts(_lazy_accuracy_counts(bmap_pred, bmap_true, valid))
    pred, true = np.asarray(bmap_pred), np.asarray(bmap_true)
    if pred.shape != true.shape or pred.ndim != 3:
        raise ValueError(f"bmap_pred {pred.shape} and bmap_true {true.shape} must be equal (k-1, H, W) shapes")
    valid = _count_mask(valid, pred.shape[1:])
    return accuracy_from_counts(_accuracy_counts(pred, true, valid))


# ----------------------------------------------------------------------------- period choice
#: Years whose April..October-next-year window has both Sentinel-1 A and B (B: Sept 2016
#: to Dec 2021), as in the seed's 2019-04-02..2020-10-19 choice.
S1_AB_YEARS = config.S1_AB_YEARS


def disturbance_year_counts(yod) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of disturbance years: ``yod`` (H, W) (0, negative or NaN = none) ->
    ``(years (n,), counts (n,))`` for the years that occur, ascending. A dask ``yod`` is
    counted block by block (each block's histogram, added up)."""
    from .blocks import compute, is_lazy

    if is_lazy(yod):
        import dask
        import pandas as pd

        parts = compute(*[dask.delayed(disturbance_year_counts)(b) for b in yod.to_delayed().ravel()],
                        progress=False)
        total = pd.concat([pd.Series(c, index=y, dtype=np.int64) for y, c in parts]).groupby(level=0).sum()
        return total.index.to_numpy(np.int64), total.to_numpy(np.int64)
    yod = np.asarray(yod, dtype=np.float64)
    ok = np.isfinite(yod) & (yod > 0)
    years, counts = np.unique(yod[ok].astype(np.int64), return_counts=True)
    return years, counts


def pick_s1_period(years, counts, *, s1_years=S1_AB_YEARS, start=config.S1_START, end=config.S1_END) -> dict:
    """Choose the Sentinel-1 window from a disturbance-year histogram (seed step 5).

    The most frequent year is used when it lies in ``s1_years`` (inclusive); otherwise (the
    seed's case: most disturbance before Sentinel-1) the most frequent year inside
    ``s1_years``, or the last of them if none occurs. The window is the seed's
    (``start``..``end``, 2019-04-02..2020-10-19) moved to start in the chosen year.
    Returns ``most_frequent_year``, ``year``, ``start``, ``end`` (ISO dates) and ``reason``.
    """
    years = np.asarray(years, np.int64)
    counts = np.asarray(counts)
    if years.shape != counts.shape or years.ndim != 1:
        raise ValueError(f"years {years.shape} and counts {counts.shape} must be 1-D of one length")
    lo, hi = s1_years
    top = int(years[np.argmax(counts)]) if years.size else None
    inside = (years >= lo) & (years <= hi)
    if top is not None and lo <= top <= hi:
        year, reason = top, f"most frequent disturbance year {top} is in the Sentinel-1 A+B era {lo}-{hi}"
    elif inside.any():
        year = int(years[inside][np.argmax(counts[inside])])
        reason = (f"most frequent disturbance year {top} is outside the Sentinel-1 A+B era {lo}-{hi}; "
                  f"{year} is the most frequent year inside it")
    else:
        year, reason = hi, f"no disturbance year in the Sentinel-1 A+B era {lo}-{hi}; using {hi}"
    y0 = int(start[:4])
    shift = year - y0
    return {"most_frequent_year": top, "year": year,
            "start": f"{int(start[:4]) + shift}{start[4:]}", "end": f"{int(end[:4]) + shift}{end[4:]}",
            "reason": reason}


def interval_labels(dates) -> list[str]:
    """``k`` dates -> ``k-1`` interval names 'YYYY-MM-DD/YYYY-MM-DD' (GeoTIFF band names of bmap)."""
    dates = [str(d) for d in dates]
    return [f"{a}/{b}" for a, b in zip(dates[:-1], dates[1:])]


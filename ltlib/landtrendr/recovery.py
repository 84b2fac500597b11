"""Spectral recovery after the greatest loss: d-index, RRI, R80P, YrYr and Y2R per pixel.

The metrics read one index's annual series around the disturbance found by LandTrendr. For
each pixel with a greatest-loss segment (the loss map of :func:`ltlib.landtrendr.fit_scene`):

- ``t`` = the year of the segment's END vertex (``yod - 1 + dur``): the low point, where
  recovery can start (for a one-year loss, ``t = yod``);
- ``pre`` = the pre-disturbance value. ``pre="vertex"`` (default): the series at the
  segment's START vertex (``yod - 1``), LandTrendr's ``preval`` on the fitted series.
  ``pre="median"``: the median of the ``pre_years`` years before ``yod`` (``yod - pre_years``
  .. ``yod - 1``), spectral-recovery's per-pixel historic ``MedianTarget(scale="pixel")``;
  ``pre="mean"``: their mean (White et al. 2017 use the mean of the two years before);
- ``x_k`` = the series in year ``t + k``.

With W = ``window`` (5, the papers' five years) and P = ``percent`` (80):

=========  ===============================================  ======================================
band       definition                                       reference
=========  ===============================================  ======================================
dindex     pre - x_0 (dNBR for NBR), index x 1000           Key & Benson 2006; Kennedy et al. 2012
rri        (max(x_{W-1}, x_W) - x_0) / (pre - x_0)          Kennedy et al. 2012, RSE 122:117-133
r80p       max(x_{W-1}, x_W) / (P/100 * pre)                Pickell et al. 2016, IJRS 37:138-149
yryr       (x_W - x_0) / W, index x 1000 per year           Frazier et al. 2018, RSE 205:32-45
y2r        first k >= 0 with x_k >= P/100 * pre, years      White et al. 2017, RSE 194:303-321;
                                                            White et al. 2022, RSE 271:112904
=========  ===============================================  ======================================

The 4th-or-5th-year maximum in RRI and R80P is the papers' guard against one noisy year
(Frazier et al. 2018, Table 1) and spectral-recovery's RRI; spectral-recovery's R80P takes
year W alone (the two agree on a series that does not fall between years W-1 and W). Its
``dnbr`` is a different quantity (the change from t to t + W), so ``dindex`` is the
disturbance's magnitude, as in the papers.

NaN, never a silent number, and every case counted in :meth:`Recovery.summary`:

- no greatest loss (``yod`` NaN): every band NaN, status 0;
- window incomplete (``t + W`` after the last year): rri, r80p and yryr NaN; y2r is still
  computed when the threshold is reached within the record;
- not yet recovered: y2r NaN (censored at the last year: the pixel has not reached the
  threshold in the ``last year - t`` years observed), status 2;
- ``pre <= x_0`` (no loss on this index, e.g. an FTV index that did not drop) or a NaN at t or
  pre (a gap in the source series): every band NaN, status 3;
- ``pre <= 0`` (the index is not positive before the loss, e.g. bare rock): r80p and y2r NaN
  (a share of a non-positive value has no meaning), status 3;
- an index whose disturbance is an increase (``distdir = +1``, TCB): the series is turned
  round for dindex, rri and yryr (positive = recovery); r80p and y2r are NaN (status 3).

Status band (``status``): 0 no loss, 1 recovered (y2r finite), 2 not yet recovered, 3 undefined.

The kernel :func:`recovery_metrics` works on numpy arrays (T, ...); :func:`recovery_blocks`
runs it block by block on dask arrays (results identical, tests/test_recovery.py) and
:func:`scene_recovery` on a :class:`~ltlib.landtrendr.run.LandTrendrRun`.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config

#: Bands of ``recovery_map.tif``, in order.
RECOVERY_BANDS = ("dindex", "rri", "r80p", "yryr", "y2r", "status")
#: Metric bands (the status band aside).
METRICS = RECOVERY_BANDS[:5]
#: Status codes of the ``status`` band.
STATUS = {0: "no_loss", 1: "recovered", 2: "not_yet_recovered", 3: "undefined"}
PRE_CHOICES = ("vertex", "median", "mean")
SERIES_CHOICES = ("fitted", "source")
RECOVERY_FILE = "recovery_map.tif"


def _check_options(pre, pre_years, window, percent):
    if pre not in PRE_CHOICES:
        raise ValueError(f"pre must be one of {PRE_CHOICES}, got {pre!r}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer number of years >= 2 (the papers' 5), got {window!r}")
    if isinstance(pre_years, bool) or not isinstance(pre_years, (int, np.integer)) or pre_years < 1:
        raise ValueError(f"pre_years must be an integer >= 1, got {pre_years!r}")
    if not (0 < float(percent) <= 100):
        raise ValueError(f"percent must be in (0, 100], got {percent!r}")


def _take(values, k):
    """values[k] along axis 0 per pixel; NaN where k is -1 (year not in the record)."""
    ok = k >= 0
    out = np.take_along_axis(values, np.where(ok, k, 0)[None], 0)[0]
    return np.where(ok, out, np.nan)


def _year_index(years, y):
    """Position of year ``y`` (float array, NaN allowed) in ``years``; -1 where absent."""
    yi = np.where(np.isfinite(y), y, -1).astype(np.int64)
    pos = np.clip(np.searchsorted(years, yi), 0, len(years) - 1)
    return np.where(years[pos] == yi, pos, -1)


def recovery_metrics(values, years, yod, dur, *, distdir: int = -1, pre: str = "vertex", pre_years: int = 2,
                     window: int = 5, percent: float = 80.0) -> dict:
    """Recovery metrics of every pixel after its greatest loss (see the module docstring).

    Parameters
    ----------
    values : float (T, ...)
        The index series (index x 1000): fitted (LandTrendr-consistent, noise-free) or source
        (NaN gaps allowed).
    years : int (T,), increasing (gaps in the record allowed: a year not in it reads as NaN).
    yod, dur : float (...)
        Year of detection and duration of the greatest-loss segment (the loss map's bands),
        NaN = no loss.
    distdir : -1 or 1
        The index's direction of disturbance (``config.INDICES[name].distdir``).
    pre : {"vertex", "median", "mean"}
        Pre-disturbance value: the start vertex, or the median / mean of ``pre_years`` years
        before ``yod`` (spectral-recovery's per-pixel historic median target).
    pre_years : int, years before the disturbance for ``pre="median"``/``"mean"``.
    window : int, post-disturbance window W in years (5).
    percent : float, recovery threshold in percent of ``pre`` for R80P and Y2R (80).

    Returns
    -------
    dict {band: float32 (...)} for :data:`RECOVERY_BANDS` (status as float 0..3), plus
    ``window_incomplete`` bool (...): the pixels with a loss whose window passes the last year.

    References
    ----------
    Kennedy, Yang, Cohen et al. (2012) RSE 122:117-133; Pickell, Hermosilla, Frazier, Coops &
    Wulder (2016) IJRS 37:138-149; Frazier, Coops, Wulder, Hermosilla & White (2018) RSE
    205:32-45; White, Wulder, Hermosilla, Coops & Hobart (2017) RSE 194:303-321; White et al.
    (2022) RSE 271:112904.
    """
    _check_options(pre, pre_years, window, percent)
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")
    values = np.asarray(values, dtype=np.float64)
    years = np.asarray(years).astype(np.int64)
    yod = np.asarray(yod, dtype=np.float64)
    dur = np.asarray(dur, dtype=np.float64)
    if values.shape[0] != len(years):
        raise ValueError(f"values has {values.shape[0]} years along axis 0 but years has {len(years)}")
    if yod.shape != values.shape[1:] or dur.shape != yod.shape:
        raise ValueError(f"yod {yod.shape} and dur {dur.shape} must have the pixel shape {values.shape[1:]}")
    v = values if distdir == -1 else -values  # loss = a decrease, recovery = an increase
    has_loss = np.isfinite(yod) & np.isfinite(dur)
    t = np.where(has_loss, yod - 1 + dur, np.nan)
    x0 = _take(v, _year_index(years, t))
    if pre == "vertex":
        pre_v = _take(v, _year_index(years, yod - 1))
    else:
        before = [_take(v, _year_index(years, yod - k)) for k in range(1, pre_years + 1)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: NaN, counted as undefined
            pre_v = (np.nanmedian if pre == "median" else np.nanmean)(np.stack(before), axis=0)
    xk = {k: _take(v, _year_index(years, t + k)) for k in (window - 1, window)}
    ok = has_loss & np.isfinite(x0) & np.isfinite(pre_v) & (pre_v > x0)
    dindex = np.where(ok, pre_v - x0, np.nan)
    late = np.fmax(xk[window - 1], xk[window])  # the max of years W-1 and W (one may be a gap)
    complete = ok & (t + window <= years[-1])
    rri = np.where(complete, (late - x0) / np.where(ok, dindex, 1.0), np.nan)
    yryr = np.where(complete, (xk[window] - x0) / window, np.nan)
    ratio_ok = ok & (pre_v > 0) & (distdir == -1)
    target = percent / 100.0 * pre_v
    r80p = np.where(complete & ratio_ok, late / np.where(ratio_ok, target, 1.0), np.nan)
    # Y2R: the first year from t on whose value reaches the target (NaN values never do)
    after = years.reshape((-1,) + (1,) * t.ndim) >= t[None]
    with np.errstate(invalid="ignore"):
        reached = after & (v >= target[None])
    first = np.argmax(reached, axis=0)
    hit = reached.any(axis=0) & ratio_ok
    y2r = np.where(hit, years[first] - t, np.nan)
    status = np.where(~has_loss, 0, np.where(~ratio_ok, 3, np.where(hit, 1, 2)))
    out = {"dindex": dindex, "rri": rri, "r80p": r80p, "yryr": yryr, "y2r": y2r, "status": status}
    out = {k: a.astype(np.float32) for k, a in out.items()}
    out["window_incomplete"] = ok & (t + window > years[-1])
    return out


def _block(values, yod, dur, *, years, distdir, options):
    """One block: values (T, h, w), yod and dur (h, w) -> float32 (7, h, w), the last layer the
    window-incomplete flag."""
    m = recovery_metrics(values, years, yod, dur, distdir=distdir, **options)
    return np.stack([m[b] for b in RECOVERY_BANDS] + [m["window_incomplete"].astype(np.float32)])


def recovery_blocks(values, yod, dur, years, *, distdir: int = -1, **options):
    """:func:`recovery_metrics` block by block on dask arrays.

    Parameters
    ----------
    values : dask float32 (T, H, W), every year in each chunk.
    yod, dur : dask or numpy float (H, W), rechunked to ``values``' spatial chunks.
    years, distdir, options : as :func:`recovery_metrics`.

    Returns
    -------
    dask float32 (7, H, W): :data:`RECOVERY_BANDS` then the window-incomplete flag (0/1).
    Nothing is computed yet.
    """
    import dask.array as da

    _check_options(options.get("pre", "vertex"), options.get("pre_years", 2), options.get("window", 5),
                   options.get("percent", 80.0))
    if len(values.chunks[0]) != 1:
        raise ValueError(f"every year must be in each chunk; the series is chunked {values.chunks[0]} along time")
    spatial = values.chunks[1:]
    yod, dur = (da.asarray(a, chunks=spatial).rechunk(spatial) for a in (yod, dur))
    # the (H, W) maps line up with the last two axes of the (T, H, W) series, as in numpy
    return da.map_blocks(_block, values, yod, dur, dtype=np.float32, chunks=((len(RECOVERY_BANDS) + 1,),) + spatial,
                         years=np.asarray(years), distdir=distdir, options=options)


@dataclass
class Recovery:
    """Recovery metrics of a scene (:func:`scene_recovery`).

    Attributes
    ----------
    index, series, pre : str, what was measured (see :func:`recovery_metrics`).
    bands : {band: float32 (H, W)} :data:`RECOVERY_BANDS` (numpy, or dask read from the file).
    counts : {name: pixels}: no_loss, recovered, not_yet_recovered, undefined, window_incomplete.
    medians : {metric: median over the pixels where it is defined, or None}.
    path : Path of ``recovery_map.tif`` once written.
    """

    index: str
    series: str
    pre: str
    window: int
    percent: float
    grid: object
    years: np.ndarray
    bands: dict
    counts: dict
    medians: dict
    seconds: float = 0.0
    path: Path | None = None
    notes: list = field(default_factory=list)

    def summary(self) -> dict:
        return {"index": self.index, "series": self.series, "pre": self.pre, "window": self.window,
                "percent": self.percent, "medians": self.medians, "counts": self.counts,
                "seconds": round(self.seconds, 3), "notes": list(self.notes)}

    def write(self, output_dir) -> dict:
        """``recovery_map.tif`` (float32, bands :data:`RECOVERY_BANDS`, NaN = undefined) on the
        scene's grid; already written for a scene opened in chunks. Returns {"recovery_map": path}."""
        from ..io import copy_file, write_raster

        out = Path(output_dir) / RECOVERY_FILE
        if self.path is not None:
            return {"recovery_map": copy_file(self.path, out)}
        self.path = write_raster(out, np.stack([self.bands[b] for b in RECOVERY_BANDS]), self.grid,
                                 band_names=list(RECOVERY_BANDS), dtype="float32", nodata=np.nan, tags=self._tags())
        return {"recovery_map": self.path}

    def _tags(self) -> dict:
        return {"index": self.index, "series": self.series, "pre": self.pre, "window": self.window,
                "percent": self.percent, "status": STATUS}


def _is_lazy(a) -> bool:
    from ..blocks import is_lazy

    return is_lazy(a)


def _counts(status_counts, incomplete: int) -> dict:
    out = {name: int(status_counts[code]) if code < len(status_counts) else 0 for code, name in STATUS.items()}
    out["window_incomplete"] = int(incomplete)
    return out


def _medians(bands) -> dict:
    out = {}
    for b in METRICS:
        a = np.asarray(bands[b])
        out[b] = round(float(np.nanmedian(a)), 4) if np.isfinite(a).any() else None
    return out


def scene_recovery(run, scene=None, *, index: str | None = None, series: str = "fitted", pre: str = "vertex",
                   pre_years: int = 2, window: int = 5, percent: float = 80.0, output_dir=None) -> Recovery:
    """Recovery metrics of every pixel of a LandTrendr run (its greatest-loss map).

    Parameters
    ----------
    run : ltlib.landtrendr.LandTrendrRun
    scene : ltlib.scene.Scene, needed for ``series="source"``.
    index : str or None
        The index measured: the segmented one or one fitted to its vertices (FTV); None: NBR
        when the run has it (the papers' index), else the segmented index.
    series : {"fitted", "source"}
        The fitted series (LandTrendr-consistent, noise-free; default), as stored in
        ``<index>_fit.tif`` (rounded to whole index x 1000 units), or the source composites
        (noisy, with gaps: a gap at t or at the pre years gives NaN).
    pre, pre_years, window, percent : see :func:`recovery_metrics`.
    output_dir : path, where a run on a scene opened in chunks has ``recovery_map.tif``
        written block by block (required then).

    Returns
    -------
    Recovery
    """
    t0 = time.perf_counter()
    index = index or ("NBR" if "NBR" in run.fitted else run.index)
    if index not in run.fitted:
        raise ValueError(f"recovery index {index!r} was not fitted: the run has {sorted(run.fitted)} "
                         f"(segmented {run.index}; add it to ftv_indices)")
    if series not in SERIES_CHOICES:
        raise ValueError(f"series must be one of {SERIES_CHOICES}, got {series!r}")
    if series == "source":
        if scene is None:
            raise ValueError("series='source' needs the scene (scene_recovery(run, scene, ...))")
        values = scene.stack(index).data
    else:
        values = run.fitted[index]
        if not _is_lazy(values):
            # the values as stored in <index>_fit.tif (int16, whole index x 1000 units), which a
            # run on a scene opened in chunks reads back: both give the same metrics
            values = np.rint(np.asarray(values, dtype=np.float64))
    distdir = config.INDICES[index].distdir if index in config.INDICES else -1
    options = dict(pre=pre, pre_years=pre_years, window=window, percent=percent)
    notes = []
    if distdir == 1:
        notes.append(f"{index} rises with disturbance: r80p and y2r (shares of the pre-disturbance value) are NaN")
    from .. import blocks

    if blocks.is_lazy(values):
        import dask.array as da

        if output_dir is None:
            raise ValueError("the run's scene is opened in chunks: scene_recovery needs output_dir, where "
                             f"{RECOVERY_FILE} is written block by block")
        out = recovery_blocks(values, run.loss["yod"], run.loss["dur"], run.years, distdir=distdir, **options)
        status = out[len(RECOVERY_BANDS) - 1].astype(np.int64).ravel()
        spec = dict(path=Path(output_dir) / RECOVERY_FILE, data=out[:len(RECOVERY_BANDS)], grid=run.grid,
                    band_names=list(RECOVERY_BANDS), dtype="float32", nodata=np.nan)
        rec = Recovery(index, series, pre, window, float(percent), run.grid, run.years, {}, {}, {}, notes=notes)
        spec["tags"] = rec._tags()
        (path,), (sc, inc) = blocks.write_rasters([spec], also=[da.bincount(status, minlength=4), out[-1].sum()])
        data, _, names = blocks.open_raster(path, chunks=values.chunksize[-1])
        rec.bands = {b: data[names.index(b)] for b in RECOVERY_BANDS}
        rec.path, rec.counts = path, _counts(np.asarray(sc), int(inc))
    else:
        m = recovery_metrics(np.asarray(values), run.years, np.asarray(run.loss["yod"]), np.asarray(run.loss["dur"]),
                             distdir=distdir, **options)
        inc = int(m.pop("window_incomplete").sum())
        rec = Recovery(index, series, pre, window, float(percent), run.grid, run.years, m,
                       _counts(np.bincount(m["status"].astype(np.int64).ravel(), minlength=4), inc), {}, notes=notes)
    rec.medians = _medians(rec.bands)
    rec.seconds = time.perf_counter() - t0
    return rec


def truth_agreement(rec: Recovery, truth_metrics: dict, detected_yod, truth_year, *, tolerance: int = 1) -> dict:
    """Agreement of detected recovery metrics with those of a known (noise-free) series.

    Parameters
    ----------
    rec : Recovery (detected, from the LandTrendr run).
    truth_metrics : {band: (H, W)} from :func:`recovery_metrics` on the noise-free series with
        the true disturbance (e.g. :func:`ltlib.sample.noise_free_index`).
    detected_yod, truth_year : (H, W): the loss map's yod and the true disturbance year (0 = none).
    tolerance : int, years between detected yod and the true year for a pixel to be compared.

    Returns
    -------
    dict: ``n_compared`` (true losses detected within ``tolerance`` years with a truth status 1
    or 2), ``status_agreement`` (share with the same recovered / not-yet-recovered status),
    per metric ``n``, ``median_abs_diff``, ``pearson_r`` (None below 3 pixels), and for y2r
    ``within_2_years`` (share of pixels recovered in both).
    """
    yod = np.asarray(detected_yod, dtype=float)
    ty = np.asarray(truth_year, dtype=float)
    ts = np.asarray(truth_metrics["status"])
    ds = np.asarray(rec.bands["status"])
    cmp_ = (ty > 0) & np.isfinite(yod) & (np.abs(yod - ty) <= tolerance) & np.isin(ts, (1, 2))
    out = {"n_compared": int(cmp_.sum()), "tolerance_years": tolerance,
           "status_agreement": round(float((ds[cmp_] == ts[cmp_]).mean()), 4) if cmp_.any() else None}
    for b in METRICS:
        d, tv = np.asarray(rec.bands[b], dtype=float), np.asarray(truth_metrics[b], dtype=float)
        both = cmp_ & np.isfinite(d) & np.isfinite(tv)
        diff = np.abs(d[both] - tv[both])
        entry = {"n": int(both.sum()), "median_abs_diff": round(float(np.median(diff)), 4) if both.any() else None,
                 "pearson_r": None}
        if both.sum() >= 3 and np.std(d[both]) > 0 and np.std(tv[both]) > 0:
            entry["pearson_r"] = round(float(np.corrcoef(d[both], tv[both])[0, 1]), 4)
        if b == "y2r":
            entry["within_2_years"] = round(float((diff <= 2).mean()), 4) if both.any() else None
        out[b] = entry
    return out


def has_noise_free(scene, run) -> bool:
    """True when the scene is the whole bundled sample, whose noise-free series is known."""
    from .. import sample

    return scene.source == "sample" and tuple(run.grid.shape) == tuple(sample.SHAPE)


def sample_agreement(rec: Recovery, run, scene, *, tolerance: int = 1) -> dict:
    """:func:`truth_agreement` on the bundled (simulated) sample: the metrics of the noise-free
    series (:func:`ltlib.sample.noise_free_index`) after the truth's ``dist_year`` (t = that
    year, pre = the year before) against the detected ones. ValueError for another scene."""
    from .. import sample

    if not has_noise_free(scene, run):
        raise ValueError(f"the noise-free series is known only for the whole simulated sample, not {scene.folder}")
    all_years = np.asarray(config.YEARS)
    keep = np.isin(all_years, run.years)
    clean = sample.noise_free_index(rec.index)[keep]
    ty = np.asarray(scene.truth["dist_year"], dtype=float)
    known = np.where(ty > 0, ty, np.nan)
    tm = recovery_metrics(clean, run.years, known, np.where(ty > 0, 1.0, np.nan),
                          distdir=config.INDICES[rec.index].distdir, pre=rec.pre, window=rec.window,
                          percent=rec.percent)
    out = truth_agreement(rec, tm, run.loss["yod"], ty, tolerance=tolerance)
    out["truth_counts"] = {name: int((tm["status"] == code).sum()) for code, name in STATUS.items()}
    return out

"""Change maps from a LandTrendr result: one change segment per pixel (LT-GEE ``getChangeMap``).

:func:`change_map` picks, for every pixel, one segment between consecutive vertices of the
fitted series by direction, filters and sort order, and returns its year of detection,
magnitude, duration, pre-change value, rate and signal-to-noise; a minimum mapping unit
(:func:`_apply_mmu`) drops small patches (LT-GEE's: connected pixels of any change). The server-side equivalent on Earth Engine is
:func:`ltlib.gee.change_map_image`.
"""
from __future__ import annotations

import numpy as np

from ..params import MMU_MODES
from .kernels import _change_all, _change_all_serial
from .segment import LandTrendrResult

#: Sort orders of :func:`change_map` (their index is the kernel's sort code).
SORTS = ("greatest", "least", "newest", "oldest", "fastest", "slowest")
#: Bands of a change map, in the order of the kernel's output columns.
CHANGE_BANDS = ("yod", "mag", "dur", "preval", "rate", "dsnr")


def _filter(value, op, default_op, name):
    """(threshold, sign) of a kernel filter: None -> no filter; op '<'/'>' per LT-GEE."""
    if op not in ("<", ">"):
        raise ValueError(f"{name} must be '<' or '>', got {op!r}")
    sign = 1.0 if op == default_op else -1.0
    if value is None:  # a threshold that every value passes, whatever the sign
        return (-np.inf if default_op == ">" else np.inf), 1.0
    return float(value), sign


def change_map(result: LandTrendrResult, years=None, *, delta="loss", sort="greatest", year_range=None,
               mag_min=None, dur_max=None, preval_min=None, mmu=None, mmu_mode="any", mag_op=">", dur_op="<",
               preval_op=">", dsnr_min=None, parallel: bool = True) -> dict:
    """One change segment per pixel, as LT-GEE ``getChangeMap`` and the seed's change_map.js.

    For every segment between consecutive vertices of the fitted series: ``yod`` = start
    year + 1, ``mag`` = |end - start| (input units, e.g. NDVI x 1000), ``dur`` (years),
    ``preval`` = fitted value at the start, ``rate`` = mag / dur, ``dsnr`` = mag / rmse.
    ``delta`` selects loss (the index moves in the disturbance direction, ``distdir``) or
    gain segments; filters: ``year_range`` (first, last yod), ``mag_min`` (mag > x),
    ``dur_max`` (dur < x), ``preval_min`` (preval > x), each turned around by ``mag_op``,
    ``dur_op``, ``preval_op`` = '<' or '>' (LT-GEE's operators), and ``dsnr_min`` (dsnr >
    x); ``sort`` picks one segment. ``mmu`` drops 8-connected patches smaller than ``mmu``
    pixels (image results only): with ``mmu_mode='any'`` (LT-GEE) a patch is connected
    changed pixels of any year, with ``'same_year'`` of the same yod. ``parallel=False`` runs
    on the calling thread without the GIL (dask block tasks). Returns {band: float32
    array (n,) or (H, W)}, NaN where no segment passes.
    """
    if delta not in ("loss", "gain"):
        raise ValueError(f"delta must be 'loss' or 'gain', got {delta!r}")
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    if mmu_mode not in MMU_MODES:
        raise ValueError(f"mmu_mode must be one of {MMU_MODES}, got {mmu_mode!r}")
    years = result.years if years is None else np.asarray(years)
    if len(years) != len(result.years) or np.any(years != result.years):
        raise ValueError("years do not match the LandTrendr result's years")
    T = len(years)
    # the kernel reads (T, n): image results reshape without a copy, (n, T) ones transpose
    if result.image_shape is not None:
        fit = result.fitted.reshape(T, -1)
        isv = result.is_vertex.reshape(T, -1)
        rmse = result.rmse.ravel()
    else:
        fit, isv, rmse = result.fitted.T, result.is_vertex.T, result.rmse
    # loss: the index moves in the disturbance direction (distdir), gain: the other way
    sign = float(result.distdir if delta == "loss" else -result.distdir)
    y0, y1 = (-np.inf, np.inf) if year_range is None else (float(year_range[0]), float(year_range[1]))
    mag, mag_s = _filter(mag_min, mag_op, ">", "mag_op")
    dur, dur_s = _filter(dur_max, dur_op, "<", "dur_op")
    pre, pre_s = _filter(preval_min, preval_op, ">", "preval_op")
    kernel = _change_all if parallel else _change_all_serial
    out = kernel(fit, isv, years.astype(np.float64), np.nan_to_num(rmse, nan=0.0), sign, SORTS.index(sort),
                      y0, y1, mag, dur, pre, mag_s, dur_s, pre_s, -np.inf if dsnr_min is None else float(dsnr_min))
    bands = {b: out[:, k].astype(np.float32) for k, b in enumerate(CHANGE_BANDS)}
    if result.image_shape is not None:
        bands = {b: a.reshape(result.image_shape) for b, a in bands.items()}
        if mmu is not None and mmu > 1:
            bands = _apply_mmu(bands, int(mmu), mmu_mode)
    elif mmu is not None:
        raise ValueError("mmu needs an image-shaped result (segment a (T, H, W) stack)")
    return bands


def _apply_mmu(bands: dict, mmu: int, mode: str = "any") -> dict:
    """Keep pixels whose 8-connected patch has at least ``mmu`` pixels: a patch of changed
    pixels of any year (``mode='any'``, LT-GEE's ``yod.gte(1)`` patches) or of one yod."""
    from scipy import ndimage

    yod = bands["yod"]
    keep = np.zeros(yod.shape, bool)
    structure = np.ones((3, 3), bool)
    groups = [np.isfinite(yod)] if mode == "any" else [yod == y for y in np.unique(yod[np.isfinite(yod)])]
    for group in groups:
        lab, n = ndimage.label(group, structure=structure)
        sizes = np.bincount(lab.ravel())
        big = sizes >= mmu
        big[0] = False
        keep |= big[lab]
    return {b: np.where(keep, a, np.nan).astype(np.float32) for b, a in bands.items()}

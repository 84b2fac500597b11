"""Sentinel-1 RTC (gamma0, linear power, VV and VH) from STAC, as daily mosaics on the Landsat grid.

Planetary Computer's ``sentinel-1-rtc`` (radiometrically terrain corrected, 10 m, from GRD IW)
for notebook 05: the scenes of one orbit direction and one relative orbit (the most frequent
over the area, so every image has the same viewing geometry, as the omnibus test needs), one
mosaic per acquisition day (odc-stac ``groupby="solar_day"``) averaged onto the Landsat grid
(30 m: each pixel averages ~9 RTC pixels, which raises the equivalent number of looks). The
ENL of the result is estimated from the data (:func:`estimate_enl`), stated, and checked
against the ENL the omnibus test will assume: a test that assumes more looks than the data
have flags too many changes.

References
----------
Conradsen, K., Nielsen, A.A., Skriver, H. 2016. Determining the points of change in time series
of polarimetric SAR data. IEEE TGRS 54(5), 3007-3024.
"""
from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from .. import config
from ..areas import area_bounds
from ..io import Grid, write_raster
from .search import PC_STAC_URL, S1_COLLECTION, StacError, check_assets, default_signer, find_items, with_retries

S1_ASSETS = ("vv", "vh")


def _orbit(item) -> tuple[str, int]:
    p = item.properties
    return str(p.get("sat:orbit_state", "")).upper(), int(p.get("sat:relative_orbit", -1))


def choose_orbit(items, orbit_pass=None, relative_orbit=None) -> tuple[str, int, list]:
    """(direction, relative orbit, items of it): the given ones, else the most frequent
    (ties: the lower orbit number). Only IW scenes with VV and VH are counted."""
    ok = [it for it in items if str(it.properties.get("sar:instrument_mode", "IW")).upper() == "IW"
          and {"VV", "VH"} <= {str(x).upper() for x in it.properties.get("sar:polarizations", ["VV", "VH"])}]
    if orbit_pass is not None:
        ok = [it for it in ok if _orbit(it)[0] == str(orbit_pass).upper()]
    if relative_orbit is not None:
        ok = [it for it in ok if _orbit(it)[1] == int(relative_orbit)]
    if not ok:
        return str(orbit_pass or ""), relative_orbit, []
    counts = Counter(_orbit(it) for it in ok)
    best = sorted(counts, key=lambda k: (-counts[k], k[1], k[0]))[0]
    return best[0], best[1], [it for it in ok if _orbit(it) == best]


def estimate_enl(stack: np.ndarray, window: int = 5, quantile: float = 0.9) -> float:
    """Equivalent number of looks of linear intensity images (K, H, W): mean^2 / variance in
    ``window`` x ``window`` windows, the ``quantile`` of the windows of every image (the most
    homogeneous ones: texture lowers the estimate elsewhere). NaN when no window is complete."""
    k, h, w = stack.shape
    vals = []
    for i in range(0, h - window + 1, window):
        for j in range(0, w - window + 1, window):
            win = stack[:, i:i + window, j:j + window].reshape(k, -1)
            good = np.isfinite(win).all(axis=1)
            if good.any():
                m, v = win[good].mean(axis=1), win[good].var(axis=1, ddof=1)
                vals.append(m[v > 0] ** 2 / v[v > 0])
    vals = np.concatenate(vals) if vals else np.array([])
    return float(np.quantile(vals, quantile)) if vals.size else float("nan")


def collect_s1_to_dir(out_dir, grid: Grid, *, aoi=None, start=config.S1_START, end=config.S1_END,
                      stac_url=PC_STAC_URL, orbit_pass=config.S1_ORBIT_PASS, relative_orbit=None,
                      enl: float | None = None, collection: str = S1_COLLECTION, signer="default",
                      chunk_px: int = 512, retries: int = 4, backoff: float = 2.0, sleep=time.sleep) -> dict:
    """Write Sentinel-1 RTC daily mosaics on ``grid`` as ``s1_vv.tif`` and ``s1_vh.tif``.

    Parameters
    ----------
    out_dir : path (a scene's ``sentinel1/``)
    grid : ltlib.io.Grid
        The Landsat scene's grid: the mosaics are averaged onto it.
    aoi : bbox/GeoJSON or None (the grid's bounds)
    start, end : 'YYYY-MM-DD', both inclusive (the period notebook 05 chose).
    orbit_pass : 'ASCENDING', 'DESCENDING' or None (the most frequent direction).
    relative_orbit : int or None (the most frequent over the area, said in one line).
    enl : the ENL the omnibus test will assume, or None (the estimate, recorded in the files'
        tag ``enl_estimate``, which :func:`ltlib.sar_run.detect_changes` uses by default); a
        warning when the estimate is lower.

    Returns
    -------
    dict
        ``vv``, ``vh`` paths, ``dates``, ``orbit_pass``, ``relative_orbit``, ``enl_estimate``.
        Files: float32 linear gamma0, NaN gaps, one band per day (YYYY-MM-DD).
    """
    import datetime as _dt

    import odc.stac
    from odc.geo.geobox import GeoBox

    bounds = area_bounds(aoi) if aoi is not None else grid.bounds_lonlat()
    d0, d1 = _dt.date.fromisoformat(str(start)), _dt.date.fromisoformat(str(end))
    items = find_items(stac_url, collection, bounds, d0, d1 + _dt.timedelta(days=1), retries=retries,
                       backoff=backoff, sleep=sleep)
    if not items:
        raise StacError(f"no items of {collection} at {stac_url} for the area {tuple(round(v, 5) for v in bounds)} "
                        f"in {start}..{end}")
    direction, orbit, items = choose_orbit(items, orbit_pass, relative_orbit)
    if not items:
        raise StacError(f"no IW VV+VH items of {collection} at {stac_url} for {start}..{end} with orbit pass "
                        f"{orbit_pass} and relative orbit {relative_orbit}")
    print(f"Sentinel-1 RTC: {direction.lower()} relative orbit {orbit} ({len(items)} scenes, the most frequent over "
          "the area)" if relative_orbit is None else f"Sentinel-1 RTC: relative orbit {orbit}, {len(items)} scenes")
    check_assets(items, list(S1_ASSETS), collection, stac_url)
    sign = default_signer(stac_url) if signer == "default" else signer
    gbox = GeoBox((grid.height, grid.width), grid.transform, grid.crs.to_wkt())

    def load():
        ds = odc.stac.load(items, bands=list(S1_ASSETS), geobox=gbox, groupby="solar_day",
                           chunks={"x": chunk_px, "y": chunk_px}, resampling="average", dtype="float32",
                           patch_url=sign, fail_on_error=True)
        out = {}
        for a in S1_ASSETS:
            nodata = (items[0].assets[a].extra_fields.get("raster:bands") or [{}])[0].get("nodata")
            v = ds[a].data
            bad = ~np.isfinite(v) if nodata is None or np.isnan(nodata) else (v == nodata) | ~np.isfinite(v)
            out[a] = np.asarray(np.where(bad, np.nan, v).compute() if hasattr(v, "compute") else np.where(bad, np.nan, v),
                                np.float32)
        dates = [str(np.datetime_as_string(t, unit="D")) for t in ds.time.values]
        return out, dates

    def renew(err):
        if sign is not None and hasattr(sign, "renew"):
            sign.renew()

    with warnings.catch_warnings():  # reader threads leave a global 'ignore' filter behind: restored on exit
        data, dates = with_retries(f"reading {collection} from {stac_url}", load, retries=retries, backoff=backoff,
                                   sleep=sleep, on_failure=renew)
    if len(dates) < 2:
        raise StacError(f"Sentinel-1 RTC: {len(dates)} acquisition day(s) in {start}..{end} on {direction.lower()} "
                        f"orbit {orbit}; the omnibus test needs at least 2")
    enl_est = estimate_enl(data["vv"])
    print(f"equivalent number of looks of the 30 m mosaics: {enl_est:.1f} (estimated from VV, 5 x 5 px windows; "
          f"the 10 m RTC pixels have ~4.4)" + ("" if enl is None else f"; the omnibus test is to assume enl={enl:g}"))
    if enl is not None and np.isfinite(enl_est) and enl_est < enl:
        warnings.warn(f"the Sentinel-1 mosaics have an estimated ENL of {enl_est:.1f}, below the enl={enl:g} the "
                      f"omnibus test assumes: it would flag too many changes; set enl={enl_est:.1f} or lower",
                      stacklevel=2)
    out_dir = Path(out_dir)
    tags = {"units": "linear gamma0 (RTC)", "relative_orbit": orbit, "orbit_pass": direction,
            "enl_estimate": round(enl_est, 2), "source": f"{stac_url} {collection}"}
    paths = {a: write_raster(out_dir / f"s1_{a}.tif", data[a], grid, band_names=dates, dtype="float32",
                             nodata=float("nan"), tags=tags | {"name": f"s1_{a}"}) for a in S1_ASSETS}
    return paths | {"dates": dates, "orbit_pass": direction, "relative_orbit": orbit, "enl_estimate": enl_est}

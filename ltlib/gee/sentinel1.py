"""Sentinel-1 GRD on Earth Engine: the collection, daily mosaics, the main orbit, and reading
the downloaded stacks back. Values are linear intensity (not dB)."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import ee
import numpy as np

from .. import config
from ..io import check_same_grid, read_raster
from .aoi import aoi_geometry


def _check_date(d) -> _dt.date:
    try:
        return _dt.date.fromisoformat(str(d))
    except ValueError:
        raise ValueError(f"dates must be 'YYYY-MM-DD', got {d!r}") from None


def s1_collection(aoi, start, end, *, orbit_pass=config.S1_ORBIT_PASS, relative_orbit=None) -> ee.ImageCollection:
    """Sentinel-1 GRD (``COPERNICUS/S1_GRD_FLOAT``, linear intensity), IW mode, scenes with
    both VV and VH, one pass direction and optionally one relative orbit, ``start`` ..
    ``end`` inclusive ('YYYY-MM-DD'), bands VV, VH."""
    d0, d1 = _check_date(start), _check_date(end)
    if d1 < d0:
        raise ValueError(f"Sentinel-1 end {end} is before start {start}")
    if orbit_pass not in ("ASCENDING", "DESCENDING"):
        raise ValueError(f"orbit_pass must be 'ASCENDING' or 'DESCENDING', got {orbit_pass!r}")
    col = (ee.ImageCollection(config.EE_S1)
           .filterBounds(aoi_geometry(aoi))
           .filterDate(d0.isoformat(), (d1 + _dt.timedelta(days=1)).isoformat())
           .filter(ee.Filter.eq("instrumentMode", "IW"))
           .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VV"))
           .filter(ee.Filter.listContains("transmitterReceiverPolarisation", "VH"))
           .filter(ee.Filter.eq("orbitProperties_pass", orbit_pass)))
    if relative_orbit is not None:
        if int(relative_orbit) != relative_orbit or not 1 <= relative_orbit <= 175:
            raise ValueError(f"relative_orbit must be an integer 1..175, got {relative_orbit!r}")
        col = col.filter(ee.Filter.eq("relativeOrbitNumber_start", int(relative_orbit)))
    return col.select(["VV", "VH"])


def s1_daily_mosaics(collection, dates) -> ee.ImageCollection:
    """One mosaic per acquisition day (adjacent slices of one pass), in ``dates`` order."""
    col = ee.ImageCollection(collection)
    imgs = []
    for d in dates:
        d0 = _check_date(d)
        day = col.filterDate(d0.isoformat(), (d0 + _dt.timedelta(days=1)).isoformat())
        imgs.append(day.mosaic().set("date", d0.isoformat()))
    return ee.ImageCollection.fromImages(imgs)


def most_frequent_orbit(collection) -> int:
    """The relative orbit with most scenes in the collection (server call); ties -> lowest."""
    hist = ee.ImageCollection(collection).aggregate_histogram("relativeOrbitNumber_start").getInfo()
    if not hist:
        raise ValueError("no Sentinel-1 scene matches the AOI, dates and pass direction")
    counts = {int(float(k)): int(v) for k, v in hist.items()}
    return min(counts, key=lambda k: (-counts[k], k))


def read_s1_dir(out_dir):
    """``(data (k, 2, H, W) linear float32 [VV, VH], dates list[str], grid)`` from the
    files written by :func:`ltlib.gee.collect_s1_to_dir`."""
    out_dir = Path(out_dir)
    vv, grid, dates = read_raster(out_dir / "s1_vv.tif")
    vh, grid_vh, dates_vh = read_raster(out_dir / "s1_vh.tif")
    check_same_grid(grid, grid_vh, "s1_vv.tif and s1_vh.tif")
    if dates != dates_vh:
        raise ValueError(f"{out_dir}: s1_vv.tif and s1_vh.tif have different dates")
    return np.stack([vv, vh], axis=1), dates, grid

"""Scenes that are not the sample, built at test time as a user would lay out their own data.

- :func:`forest_scene`: the real Earth Engine NBR composites of an Oregon forest (LT-rs
  reference, MIT; shipped in ``ltlib/data/reference/gee_landtrendr``): one index, 1984-2016,
  float32 NBR x 1000 with -32768 gaps and no nodata tag, no band names (a ``years`` tag),
  54 x 53 px in EPSG:32610, no truth, no Sentinel-1.
- :func:`reprojected_sample`: the sample warped to another UTM zone (EPSG:32611), cropped to a
  non-square size, years 1984-2020 only, band names ``yr_YYYY`` (LT-GEE style), truth
  removed; Sentinel-1 warped the same way (dates kept, no truth).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject, transform_bounds

from ltlib import config, resources
from ltlib.io import Grid, read_raster, read_stack

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"

FOREST_YEARS = (1984, 2016)
WARP_CRS = "EPSG:32611"
WARP_YEARS = (1984, 2020)
WARP_SHAPE = (150, 170)  # rows, cols: not square, smaller than the sample's 200 x 200


def forest_scene(root) -> Path:
    """Lay out the forest NBR stack as ``<root>/landsat/nbr.tif``; returns ``root``."""
    root = Path(root)
    src_path = resources.gee_reference("forest_or_source.tif")
    with rasterio.open(src_path) as src:
        profile = src.profile
        data = src.read()
    out = root / "landsat" / "nbr.tif"
    out.parent.mkdir(parents=True, exist_ok=True)
    profile.update(driver="GTiff", compress="deflate")
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.update_tags(years=f"{FOREST_YEARS[0]}-{FOREST_YEARS[1]}")
    return root


def _target_grid(grid: Grid, crs: str, shape) -> Grid:
    """A 30 m grid in ``crs`` centred on ``grid``'s centre, ``shape`` px."""
    left, bottom, right, top = transform_bounds(grid.crs, crs, *grid.bounds)
    cx, cy = (left + right) / 2, (bottom + top) / 2
    h, w = shape
    px = abs(grid.transform.a)
    x0 = np.floor((cx - w / 2 * px) / px) * px
    y0 = np.floor((cy + h / 2 * px) / px) * px
    return Grid(crs, from_origin(x0, y0, px, px), h, w)


def _warp(data: np.ndarray, src: Grid, dst: Grid) -> np.ndarray:
    out = np.full((data.shape[0],) + dst.shape, np.nan, dtype=np.float32)
    reproject(data.astype(np.float32), out, src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
              dst_transform=dst.transform, dst_crs=dst.crs, dst_nodata=np.nan, resampling=Resampling.nearest)
    return out


def _write(path: Path, data: np.ndarray, grid: Grid, names, dtype, nodata, tags=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = data.copy()
    if np.dtype(dtype).kind in "iu":
        arr = np.where(np.isfinite(arr), np.rint(arr), nodata)
    with rasterio.open(path, "w", driver="GTiff", height=grid.height, width=grid.width, count=len(names),
                       dtype=dtype, crs=grid.crs, transform=grid.transform, nodata=nodata,
                       compress="deflate") as dst:
        dst.write(arr.astype(dtype))
        for i, n in enumerate(names, start=1):
            dst.set_band_description(i, n)
        if tags:
            dst.update_tags(**tags)


def reprojected_sample(root, *, crs=WARP_CRS, years=WARP_YEARS, shape=WARP_SHAPE, sentinel1=True) -> Path:
    """The sample warped to ``crs``, cropped to ``shape``, ``years`` only, without truth."""
    root = Path(root)
    grid = None
    for name in config.SAMPLE_INDICES:
        s = read_stack(SAMPLE / "landsat" / f"{name.lower()}.tif")
        sel = (s.years >= years[0]) & (s.years <= years[1])
        grid = grid or _target_grid(s.grid, crs, shape)
        warped = _warp(s.data[sel], s.grid, grid)
        _write(root / "landsat" / f"{name.lower()}.tif", warped, grid, [f"yr_{y}" for y in s.years[sel]],
               "int16", config.NODATA_INT16, {"scale": s.scale, "name": name})
    if sentinel1:
        for pol in ("vv", "vh"):
            data, sgrid, dates = read_raster(SAMPLE / "sentinel1" / f"s1_{pol}.tif")
            tgrid = _target_grid(sgrid, crs, (110, 120))
            _write(root / "sentinel1" / f"s1_{pol}.tif", _warp(data, sgrid, tgrid), tgrid, dates, "float32",
                   np.nan, {"units": "linear intensity"})
    return root


def outputs_equal(files_a: dict, files_b: dict) -> None:
    """Two runs' written rasters ({key: path}) hold the same keys, grids, band names and values."""
    assert set(files_a) == set(files_b)
    for key in files_a:
        a, ga, na = read_raster(files_a[key])
        b, gb, nb = read_raster(files_b[key])
        assert na == nb and ga.same_as(gb), key
        np.testing.assert_array_equal(a, b, err_msg=key)

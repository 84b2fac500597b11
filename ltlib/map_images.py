"""Rasters as map images: an (H, W) raster reprojected to a north-up lon/lat grid and RGBA
pixels as a PNG data URL. Shared by :mod:`ltlib.maps` and :mod:`ltlib.map_detail`, so neither
imports the other for them."""
from __future__ import annotations

import base64
import io as _io

import numpy as np

from . import config
from .io import Grid


def _to_lonlat(data: np.ndarray, grid: Grid, categorical: bool):
    """Reproject an (H, W) raster to a north-up EPSG:4326 grid; returns (array, bounds).

    The lon/lat grid is at most ``config.MAX_OVERLAY_PX`` px a side (the reprojection of a
    raster at that limit can be a little wider; it is then resampled a little coarser)."""
    import math

    from affine import Affine
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    west, south, east, north = grid.bounds
    dst_t, w, h = calculate_default_transform(grid.crs, "EPSG:4326", grid.width, grid.height,
                                              west, south, east, north)
    if max(w, h) > config.MAX_OVERLAY_PX:
        f = max(w, h) / config.MAX_OVERLAY_PX
        dst_t, w, h = dst_t * Affine.scale(f), min(math.ceil(w / f), config.MAX_OVERLAY_PX), \
            min(math.ceil(h / f), config.MAX_OVERLAY_PX)
    src = np.asarray(data, dtype=np.float32)
    dst = np.full((h, w), np.nan, np.float32)
    reproject(src, dst, src_transform=grid.transform, src_crs=grid.crs, dst_transform=dst_t,
              dst_crs="EPSG:4326", src_nodata=np.nan, dst_nodata=np.nan,
              resampling=Resampling.nearest if categorical else Resampling.bilinear)
    lon0, lat0 = dst_t @ (0, 0)
    lon1, lat1 = dst_t @ (w, h)
    return dst, ((min(lat0, lat1), min(lon0, lon1)), (max(lat0, lat1), max(lon0, lon1)))


def _png_data_url(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = _io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

"""Areas of interest for Earth Engine and the pixel grid that covers them.

An AOI is an ``ee.Geometry`` (or Feature/FeatureCollection), a (west, south, east, north)
box in degrees, a GeoJSON dict or a GeoJSON file path. :func:`grid_for_aoi` gives the UTM
grid, snapped to the pixel size, that downloads are made on.
"""
from __future__ import annotations

import json
from pathlib import Path

import ee
import numpy as np

from .. import config
from ..io import Grid


def _geojson_geometry(obj: dict) -> dict:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        geoms = [_geojson_geometry(f) for f in obj.get("features", [])]
        if not geoms:
            raise ValueError("GeoJSON FeatureCollection has no features")
        if len(geoms) == 1:
            return geoms[0]
        return {"type": "GeometryCollection", "geometries": geoms}
    if kind == "Feature":
        if not obj.get("geometry"):
            raise ValueError("GeoJSON Feature has no geometry")
        return obj["geometry"]
    if kind in ("Polygon", "MultiPolygon", "Point", "MultiPoint", "LineString", "MultiLineString",
                "GeometryCollection"):
        return obj
    raise ValueError(f"not a GeoJSON geometry/Feature/FeatureCollection: type {kind!r}")


def _check_bbox(bbox) -> tuple[float, float, float, float]:
    if len(bbox) != 4:
        raise ValueError(f"AOI bbox must be (west, south, east, north), got {bbox!r}")
    w, s, e, n = (float(v) for v in bbox)
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValueError(f"AOI bbox (west, south, east, north) in degrees is invalid: {bbox!r}")
    return w, s, e, n


def _load_aoi(aoi):
    """None/tuple/GeoJSON dict/path/ee.Geometry -> tuple, dict or ee object."""
    if aoi is None:
        return config.AOI_BBOX
    if isinstance(aoi, (str, Path)):
        path = Path(aoi)
        if not path.exists():
            raise FileNotFoundError(f"AOI GeoJSON file not found: {path}")
        return _geojson_geometry(json.loads(path.read_text()))
    if isinstance(aoi, dict):
        return _geojson_geometry(aoi)
    if isinstance(aoi, (ee.Geometry, ee.Feature, ee.FeatureCollection)):
        return aoi
    if isinstance(aoi, (tuple, list, np.ndarray)):
        return _check_bbox(aoi)
    raise ValueError(f"AOI must be an ee.Geometry, a (west, south, east, north) tuple, a GeoJSON dict "
                     f"or a GeoJSON file path, got {type(aoi).__name__}")


def aoi_geometry(aoi) -> ee.Geometry:
    """The AOI as an ``ee.Geometry`` (geodesic=False rectangle for a bbox)."""
    a = _load_aoi(aoi)
    if isinstance(a, tuple):
        return ee.Geometry.Rectangle(list(a), proj="EPSG:4326", geodesic=False)
    if isinstance(a, dict):
        return ee.Geometry(a)
    if isinstance(a, (ee.Feature, ee.FeatureCollection)):
        return a.geometry()
    return a


def _coords(geom: dict):
    if geom["type"] == "GeometryCollection":
        for g in geom["geometries"]:
            yield from _coords(g)
        return
    stack = [geom["coordinates"]]
    while stack:
        c = stack.pop()
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            yield float(c[0]), float(c[1])
        else:
            stack.extend(c)


def aoi_bounds(aoi) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees. An ``ee.Geometry`` needs the server."""
    a = _load_aoi(aoi)
    if isinstance(a, tuple):
        return a
    if not isinstance(a, dict):  # ee object: ask the server for its bounds
        a = aoi_geometry(a).bounds(1, "EPSG:4326").getInfo()
    xy = np.array(list(_coords(a)))
    if xy.size == 0:
        raise ValueError("AOI geometry has no coordinates")
    return _check_bbox((xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()))


def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 UTM zone of a point, e.g. Bingham Canyon -> 'EPSG:32612'."""
    zone = min(60, int((lon + 180) // 6) + 1)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def grid_for_aoi(aoi, *, scale: float = config.PIXEL_SIZE, crs: str | None = None) -> Grid:
    """The pixel grid covering the AOI's bounding box in ``crs`` (default: its UTM zone),
    with ``scale``-metre pixels snapped to multiples of ``scale`` (so grids of different
    downloads line up)."""
    from affine import Affine
    from rasterio.warp import transform_bounds

    if scale <= 0:
        raise ValueError(f"scale must be positive metres, got {scale}")
    w, s, e, n = aoi_bounds(aoi)
    crs = crs or utm_crs((w + e) / 2, (s + n) / 2)
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, w, s, e, n, densify_pts=21)
    left, bottom = np.floor(left / scale) * scale, np.floor(bottom / scale) * scale
    right, top = np.ceil(right / scale) * scale, np.ceil(top / scale) * scale
    width, height = int(round((right - left) / scale)), int(round((top - bottom) / scale))
    return Grid(crs, Affine(scale, 0.0, float(left), 0.0, -scale, float(top)), height, width)

"""Areas of interest without Earth Engine: a (west, south, east, north) box in degrees, a
GeoJSON dict or a GeoJSON file, its bounds, its UTM zone and the 30 m pixel grid that covers it.

Every data path (Earth Engine in :mod:`ltlib.gee.aoi`, STAC in :mod:`ltlib.stac`) builds its
grid with :func:`grid_for_bounds`, so one area gives one grid whichever path loads it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import config
from .io import Grid


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


def check_bbox(bbox) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` as floats, west < east and south < north within
    longitude -180..180 and latitude -90..90 (NaN and infinities fail); ValueError otherwise."""
    if len(bbox) != 4:
        raise ValueError(f"AOI bbox must be (west, south, east, north), got {bbox!r}")
    w, s, e, n = (float(v) for v in bbox)
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ValueError(f"AOI bbox (west, south, east, north) in degrees is invalid: {bbox!r}")
    return w, s, e, n


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


def load_area(aoi):
    """None (the seed's box), a (west, south, east, north) tuple, a GeoJSON dict or a GeoJSON
    file path -> the bbox tuple or the GeoJSON geometry dict."""
    if aoi is None:
        return config.AOI_BBOX
    if isinstance(aoi, (str, Path)):
        path = Path(aoi)
        if not path.exists():
            raise FileNotFoundError(f"AOI GeoJSON file not found: {path}")
        return _geojson_geometry(json.loads(path.read_text()))
    if isinstance(aoi, dict):
        return _geojson_geometry(aoi)
    if isinstance(aoi, (tuple, list, np.ndarray)):
        return check_bbox(aoi)
    raise ValueError(f"AOI must be a (west, south, east, north) tuple, a GeoJSON dict or a GeoJSON file path, "
                     f"got {type(aoi).__name__}")


def area_bounds(aoi) -> tuple[float, float, float, float]:
    """(west, south, east, north) degrees of a box, GeoJSON dict or GeoJSON file."""
    a = load_area(aoi)
    if isinstance(a, tuple):
        return a
    xy = np.array(list(_coords(a)))
    if xy.size == 0:
        raise ValueError("AOI geometry has no coordinates")
    return check_bbox((xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max()))


def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 UTM zone of a point, e.g. Bingham Canyon -> 'EPSG:32612'."""
    zone = min(60, int((lon + 180) // 6) + 1)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def utm_zones(bounds) -> list[str]:
    """The UTM zones (EPSG codes) a (west, south, east, north) box touches, west to east."""
    w, s, e, n = bounds
    lat = (s + n) / 2
    return list(dict.fromkeys(utm_crs(x, lat) for x in np.linspace(w, e, 13)))


def grid_for_bounds(bounds, *, scale: float = config.PIXEL_SIZE, crs: str | None = None) -> Grid:
    """The pixel grid covering a (west, south, east, north) box in ``crs`` (default: the UTM
    zone of its centre), with ``scale``-metre pixels snapped to multiples of ``scale`` (so
    grids of different downloads line up)."""
    from affine import Affine
    from rasterio.warp import transform_bounds

    if scale <= 0:
        raise ValueError(f"scale must be positive metres, got {scale}")
    w, s, e, n = bounds
    crs = crs or utm_crs((w + e) / 2, (s + n) / 2)
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, w, s, e, n, densify_pts=21)
    left, bottom = np.floor(left / scale) * scale, np.floor(bottom / scale) * scale
    right, top = np.ceil(right / scale) * scale, np.ceil(top / scale) * scale
    width, height = int(round((right - left) / scale)), int(round((top - bottom) / scale))
    return Grid(crs, Affine(scale, 0.0, float(left), 0.0, -scale, float(top)), height, width)

"""Areas of interest for Earth Engine and the pixel grid that covers them.

An AOI is an ``ee.Geometry`` (or Feature/FeatureCollection), a (west, south, east, north)
box in degrees, a GeoJSON dict or a GeoJSON file path. :func:`grid_for_aoi` gives the UTM
grid, snapped to the pixel size, that downloads are made on.
"""
from __future__ import annotations

import ee

from .. import config
from ..areas import area_bounds, grid_for_bounds, load_area, utm_crs  # noqa: F401 - utm_crs re-exported
from ..io import Grid


def _load_aoi(aoi):
    """None/tuple/GeoJSON dict/path/ee.Geometry -> tuple, dict or ee object."""
    if isinstance(aoi, (ee.Geometry, ee.Feature, ee.FeatureCollection)):
        return aoi
    return load_area(aoi)


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


def aoi_bounds(aoi) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees. An ``ee.Geometry`` needs the server."""
    a = _load_aoi(aoi)
    if isinstance(a, (tuple, dict)):
        return area_bounds(a)
    # ee object: ask the server for its bounds
    return area_bounds(aoi_geometry(a).bounds(1, "EPSG:4326").getInfo())


def grid_for_aoi(aoi, *, scale: float = config.PIXEL_SIZE, crs: str | None = None) -> Grid:
    """The pixel grid covering the AOI's bounding box in ``crs`` (default: its UTM zone),
    with ``scale``-metre pixels snapped to multiples of ``scale`` (so grids of different
    downloads line up): :func:`ltlib.areas.grid_for_bounds` of :func:`aoi_bounds`."""
    return grid_for_bounds(aoi_bounds(aoi), scale=scale, crs=crs)

"""Earth Engine "served" offline: ``computePixels`` and ``computeValue`` answered from a fake world.

:func:`install` makes any Python process (a test, or the Jupyter kernel papermill starts for
a notebook) behave as if it had an Earth Engine account and a network:

- earthengine-api is initialised offline as the ``ee_offline`` fixture does (algorithm
  signatures from the wheel's ``algorithms.json``, no discovery document, no data
  catalogue), and ``ee.Initialize(...)`` is replaced by that offline initialisation, so
  ``ltlib.gee.initialize(project)`` succeeds;
- a fake Application Default Credentials file is made visible through ``CLOUDSDK_CONFIG``
  (where ``ltlib.gee``'s credential check looks), so no ltlib function is patched;
- ``ee.data.computePixels`` evaluates ``request["expression"]`` with the numpy
  :class:`~tests.ee_offline.Evaluator` on the request's grid and returns what the service
  returns for the requested ``fileFormat`` (``GEO_TIFF`` bytes, ``NPY`` bytes of a
  structured array, or ``NUMPY_NDARRAY``); ``ee.data.computeValue`` (what ``getInfo``
  calls) evaluates the object on a one-pixel grid and returns JSON-like data; other
  server calls raise ``NotImplementedError`` naming the call. Algorithms the Evaluator
  lacks raise ``NotImplementedError`` naming the algorithm.

The data come from a :class:`World`: deterministic Collection 2 Level-2 scenes
(``LANDSAT/LT05|LE07|LC08|LC09/C02/T1_L2``) and Sentinel-1 GRD scenes
(``COPERNICUS/S1_GRD_FLOAT``), computed per requested tile from each pixel's geographic
position, so two tiles of one grid agree and values vary across space. See
:class:`World` for what it contains.

Fixtures: :func:`served_ee` (an IPython startup file in a temporary ``IPYTHONDIR``, so a
papermill-launched kernel serves Earth Engine; the test process itself is not changed) and
:func:`served_ee_in_process` (installed in the test process, undone afterwards). Every
served request is appended to ``log_path`` as one JSON line (kind, grid shape, band ids,
algorithms, seconds).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import io as _io
import json
import os
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pytest

from .ee_offline import Evaluator, Img, _algorithms, graph

__all__ = ["World", "install", "installed", "served_ee", "served_ee_in_process", "ServedEE", "Installation"]

ROOT = Path(__file__).resolve().parents[1]
STARTUP_NAME = "00-ltlib-served-ee.py"

# Collection 2 Level-2 surface reflectance scaling (USGS): reflectance = DN * scale + offset.
C2_SCALE = 2.75e-05
C2_OFFSET = -0.2
_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
_SR = {
    "LT05": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LE07": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LC08": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
    "LC09": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
}
LANDSAT_IDS = {s: f"LANDSAT/{s}/C02/T1_L2" for s in _SR}
S1_ID = "COPERNICUS/S1_GRD_FLOAT"
# OLI = ETM+ * slope + intercept (the inverse of Roy et al. 2016 as ltlib applies it)
_OLI_SLOPE = (0.9785, 0.9542, 0.9825, 1.0073, 1.0171, 0.9949)
_OLI_INTERCEPT = (-0.0095, -0.0016, -0.0022, -0.0021, -0.0030, 0.0029)
# Endmember reflectances (ETM+ bands blue..swir2): green vegetation, bare mine soil, cloud
_VEG = np.array([0.03, 0.06, 0.04, 0.40, 0.18, 0.08])
_SOIL = np.array([0.12, 0.16, 0.20, 0.26, 0.32, 0.28])
_CLOUD = np.array([0.45, 0.46, 0.47, 0.50, 0.38, 0.30])
# QA_PIXEL values (Collection 2 bit layout: 1 dilated cloud, 3 cloud, 4 shadow, 6 clear,
# 8-9 cloud confidence, 10-11 shadow confidence, 12-13 snow confidence, 14-15 cirrus conf.)
QA_CLEAR = (1 << 6) | (1 << 8) | (1 << 10) | (1 << 12) | (1 << 14)  # 21824
QA_CLOUD = (1 << 1) | (1 << 3) | (3 << 8) | (1 << 10) | (1 << 12) | (1 << 14)
QA_SHADOW = (1 << 4) | (1 << 8) | (3 << 10) | (1 << 12) | (1 << 14)
# First and last year of each sensor's (summer) scenes in the world
SENSOR_YEARS = {"LT05": (1984, 2011), "LE07": (1999, 2023), "LC08": (2013, 2024), "LC09": (2022, 2024)}
SCENE_DATE = {"LT05": (7, 10), "LE07": (7, 18), "LC08": (7, 26), "LC09": (8, 3)}  # inside 06-20..09-20
SLC_OFF = _dt.date(2003, 5, 31)


def _millis(d: _dt.datetime) -> int:
    return int(d.replace(tzinfo=_dt.timezone.utc).timestamp() * 1000)


# --- deterministic position hash ----------------------------------------------------------
def _mix(x):
    """splitmix64 finaliser on uint64 arrays."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _uniform(lon, lat, *salt) -> np.ndarray:
    """A uniform [0, 1) number per position (lon/lat quantised to 1e-6 degree) and salt."""
    ix = np.round(np.asarray(lon, float) * 1e6).astype(np.int64).astype(np.uint64)
    iy = np.round(np.asarray(lat, float) * 1e6).astype(np.int64).astype(np.uint64)
    h = _mix(_mix(ix) ^ iy)
    for s in salt:
        h = _mix(h ^ np.uint64(int(s) & 0xFFFFFFFFFFFFFFFF))
    return (h >> np.uint64(11)).astype(np.float64) / float(2**53)


# --- grids ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Grid:
    crs: str
    transform: tuple  # (a, b, c, d, e, f) of the affine pixel -> CRS transform
    height: int
    width: int

    @property
    def shape(self):
        return (self.height, self.width)

    def key(self):
        return (self.crs, tuple(round(v, 9) for v in self.transform), self.height, self.width)


def as_grid(grid) -> _Grid:
    """A request grid (``{"dimensions", "affineTransform", "crsCode"}``), an ``ltlib.io.Grid``
    or any object with ``crs``, ``transform``, ``height``, ``width``."""
    if isinstance(grid, _Grid):
        return grid
    if isinstance(grid, dict):
        a = grid["affineTransform"]
        crs = grid.get("crsCode") or grid.get("crsWkt")
        if not crs:
            raise ValueError("served computePixels: the grid needs crsCode (or crsWkt)")
        t = (a["scaleX"], a.get("shearX", 0.0), a["translateX"], a.get("shearY", 0.0), a["scaleY"], a["translateY"])
        return _Grid(str(crs), tuple(float(v) for v in t), int(grid["dimensions"]["height"]),
                     int(grid["dimensions"]["width"]))
    crs = grid.crs.to_string() if hasattr(grid.crs, "to_string") else str(grid.crs)
    t = tuple(grid.transform)[:6]
    return _Grid(crs, tuple(float(v) for v in t), int(grid.height), int(grid.width))


_LONLAT_CACHE: dict = {}


def grid_lonlat(grid) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (H, W) of the pixel centres of a grid."""
    g = as_grid(grid)
    key = g.key()
    if key not in _LONLAT_CACHE:
        from rasterio.warp import transform as _transform

        a, b, c, d, e, f = g.transform
        rows, cols = np.mgrid[0:g.height, 0:g.width]
        x = c + (cols + 0.5) * a + (rows + 0.5) * b
        y = f + (cols + 0.5) * d + (rows + 0.5) * e
        if g.crs.upper() in ("EPSG:4326", "WGS84"):
            lon, lat = x, y
        else:
            lon, lat = _transform(g.crs, "EPSG:4326", x.ravel().tolist(), y.ravel().tolist())
            lon, lat = np.asarray(lon).reshape(g.shape), np.asarray(lat).reshape(g.shape)
        if len(_LONLAT_CACHE) > 64:
            _LONLAT_CACHE.clear()
        _LONLAT_CACHE[key] = (lon, lat)
    return _LONLAT_CACHE[key]


def grid_for_bbox(bbox, scale: float, crs: str = "EPSG:32612") -> _Grid:
    """The grid ltlib's ``grid_for_aoi`` makes for a bbox (used for computeValue requests)."""
    from rasterio.warp import transform_bounds

    w, s, e, n = bbox
    left, bottom, right, top = transform_bounds("EPSG:4326", crs, w, s, e, n, densify_pts=21)
    left, bottom = np.floor(left / scale) * scale, np.floor(bottom / scale) * scale
    right, top = np.ceil(right / scale) * scale, np.ceil(top / scale) * scale
    return _Grid(crs, (scale, 0.0, float(left), 0.0, -scale, float(top)), int(round((top - bottom) / scale)),
                 int(round((right - left) / scale)))


# --- lazily generated scenes -------------------------------------------------------------
class _LazyImg(Img):
    """An Img whose bands are made on first access (filters only read properties)."""

    def __init__(self, make, props):  # noqa: D107 - no Img.__init__: bands come later
        self._make = make
        self._bands = None
        self.props = dict(props)

    @property
    def bands(self):
        if self._bands is None:
            self._bands = list(self._make())
        return self._bands


def _band(values: np.ndarray, mask: np.ndarray):
    vals = np.empty(values.shape, dtype=object)
    vals[...] = 0.0
    m = np.asarray(mask, bool)
    vals[m] = values[m].astype(float).tolist() if m.any() else []
    return vals, m.copy()


# --- the world ---------------------------------------------------------------------------
@dataclass(frozen=True)
class World:
    """A small deterministic fake Earth (JSON-serialisable parameters).

    Landsat (Collection 2 Level-2, DN = (reflectance + 0.2) / 0.0000275, rounded): one
    summer scene per year and sensor active that year (LT05 1984-2011 on 07-10, LE07
    1999-2023 on 07-18 with SLC-off gaps masked from 2003, LC08 2013-2024 on 07-26, LC09
    2022-2024 on 08-03; OLI stores ETM+-equivalent reflectance through the inverse of
    Roy et al. 2016, so harmonised values agree across sensors), plus an out-of-season
    LT05 scene on 01-15 of every year divisible by 5 (leaves off: lower NDVI; the season
    window must drop it). Reflectance mixes vegetation and bare soil by a vegetation
    fraction that varies smoothly in space (0.2-0.7) with a little year-to-year and
    per-pixel noise. Inside ``patch`` (lon/lat box) the fraction is 0.85 until
    ``disturbance_year``, 0.05 in that year (NDVI x 1000 drops from ~710 to ~165), then
    recovers by 0.07 a year up to 0.6 (NDVI ~535: a gain above the seed's 300 by the 8th
    year). A cloud (QA_PIXEL cloud + dilated bits, bright) of radius ``cloud_radius_m``
    around ``cloud_center`` and its shadow (QA shadow bit, dark) ~60 m to the south-west
    are in the first scene of every year with ``year % 4 == 1``.

    Sentinel-1 (``COPERNICUS/S1_GRD_FLOAT``, linear VV, VH, angle, IW, ASCENDING): relative
    orbit ``s1_orbit`` every 12 days through ``s1_anchor`` (01:12 UTC), each acquisition
    as two slices (south and north of ``s1_slice_lat``) that the daily mosaic joins;
    relative orbit 100 ascending every 24 days (fewer scenes), orbit 56 descending every 12
    days, and on orbit ``s1_orbit`` one VV-only scene and one EW-mode scene (to be
    filtered out). Backscatter varies in space, with multiplicative gamma speckle of
    ENL ``s1_enl``; inside ``patch`` VV x4 and VH x3 from ``s1_change_date`` on.
    """

    bbox: tuple = (-112.16, 40.52, -112.155, 40.524)
    start_year: int = 1984
    end_year: int = 1995
    disturbance_year: int = 1990
    patch: tuple = (-112.1585, 40.5212, -112.1565, 40.5228)
    cloud_center: tuple = (-112.1557, 40.5234)
    cloud_radius_m: float = 40.0
    s1_anchor: str = "2019-04-02"
    s1_orbit: int = 20
    s1_start: str = "2019-04-02"
    s1_end: str = "2019-06-13"
    s1_change_date: str = "2019-05-10"
    s1_slice_lat: float = 40.5222
    s1_enl: float = 4.4
    s1_range: tuple = ("2014-10-01", "2024-12-31")

    @classmethod
    def from_json(cls, text: str) -> "World":
        d = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    # -- geometry helpers
    def _local_m(self, lon, lat):
        lon0, lat0 = self.bbox[0], self.bbox[1]
        return (lon - lon0) * 111320.0 * np.cos(np.radians(lat0)), (lat - lat0) * 110540.0

    def in_patch(self, grid) -> np.ndarray:
        """bool (H, W): pixel centres inside the disturbed patch."""
        lon, lat = grid_lonlat(grid)
        w, s, e, n = self.patch
        return (lon >= w) & (lon <= e) & (lat >= s) & (lat <= n)

    def _cloud_masks(self, lon, lat):
        x, y = self._local_m(lon, lat)
        cx, cy = self._local_m(np.asarray(self.cloud_center[0]), np.asarray(self.cloud_center[1]))
        cloud = np.hypot(x - cx, y - cy) <= self.cloud_radius_m
        shadow = (np.hypot(x - (cx - 45.0), y - (cy - 45.0)) <= self.cloud_radius_m * 0.8) & ~cloud
        return cloud, shadow

    def cloudy(self, sensor: str, year: int, grid):
        """(cloud, shadow) bool (H, W) of the sensor's summer scene of ``year``."""
        lon, lat = grid_lonlat(grid)
        if year % 4 != 1 or sensor != self._first_sensor(year):
            z = np.zeros(lon.shape, bool)
            return z, z.copy()
        return self._cloud_masks(lon, lat)

    @staticmethod
    def _sensors(year: int):
        return [s for s in ("LT05", "LE07", "LC08", "LC09") if SENSOR_YEARS[s][0] <= year <= SENSOR_YEARS[s][1]]

    def _first_sensor(self, year):
        s = self._sensors(year)
        return s[0] if s else None

    # -- Landsat
    def vegetation(self, year: int, grid, winter: bool = False) -> np.ndarray:
        """Vegetation fraction (H, W) in ``year``."""
        lon, lat = grid_lonlat(grid)
        x, y = self._local_m(lon, lat)
        v = 0.45 + 0.25 * np.sin(2 * np.pi * x / 380.0) * np.cos(2 * np.pi * y / 460.0)
        v = v + 0.02 * np.sin(1.7 * year) + 0.03 * (_uniform(lon, lat, year, 7) - 0.5)
        patch = self.in_patch(grid)
        d = self.disturbance_year
        if year < d:
            pv = 0.85 + 0.02 * (_uniform(lon, lat, year, 11) - 0.5)
        else:
            pv = min(0.05 + 0.07 * (year - d), 0.6) + 0.02 * (_uniform(lon, lat, year, 11) - 0.5)
        v = np.where(patch, pv, v)
        if winter:
            v = 0.3 * v
        return np.clip(v, 0.0, 1.0)

    def etm_reflectance(self, year: int, grid, winter: bool = False) -> np.ndarray:
        """True ETM+-equivalent surface reflectance (6, H, W), bands blue..swir2."""
        v = self.vegetation(year, grid, winter)[None]
        return v * _VEG[:, None, None] + (1 - v) * _SOIL[:, None, None]

    def scene_date(self, sensor: str, year: int, winter: bool = False) -> _dt.datetime:
        m, d = (1, 15) if winter else SCENE_DATE[sensor]
        return _dt.datetime(year, m, d, 17, 50, 0)

    def landsat_dn(self, sensor: str, year: int, grid, winter: bool = False) -> dict:
        """The scene's arrays (H, W): ``SR_B*`` DN (float, NaN = masked, e.g. SLC-off),
        ``QA_PIXEL``, and ``mask`` (bool, unmasked pixels)."""
        refl = self.etm_reflectance(year, grid, winter)
        if sensor in ("LC08", "LC09"):
            refl = refl * np.array(_OLI_SLOPE)[:, None, None] + np.array(_OLI_INTERCEPT)[:, None, None]
        cloud, shadow = (np.zeros(refl.shape[1:], bool),) * 2 if winter else self.cloudy(sensor, year, grid)
        refl = np.where(cloud[None], _CLOUD[:, None, None], refl)
        refl = np.where(shadow[None], refl * 0.35, refl)
        dn = np.clip(np.round((refl - C2_OFFSET) / C2_SCALE), 1, 65535)
        qa = np.where(cloud, QA_CLOUD, np.where(shadow, QA_SHADOW, QA_CLEAR)).astype(float)
        mask = np.ones(dn.shape[1:], bool)
        if sensor == "LE07" and self.scene_date(sensor, year, winter).date() > SLC_OFF:
            lon, lat = grid_lonlat(grid)
            x, y = self._local_m(lon, lat)
            mask = np.floor(y / 30.0 + x / 400.0) % 9 != 0  # scan-line gaps: masked stripes
        out = {b: np.where(mask, dn[i], np.nan) for i, b in enumerate(_SR[sensor])}
        out["QA_PIXEL"] = np.where(mask, qa, np.nan)
        out["mask"] = mask
        return out

    def landsat_scenes(self, sensor: str, grid) -> list:
        """All scenes of one Collection 2 Level-2 collection, bands made on demand."""
        out = []
        y0, y1 = SENSOR_YEARS[sensor]
        for year in range(y0, y1 + 1):
            for winter in ((False, True) if sensor == "LT05" and year % 5 == 0 else (False,)):
                date = self.scene_date(sensor, year, winter)
                props = {"system:time_start": _millis(date), "SPACECRAFT_ID": sensor,
                         "system:index": f"{sensor}_038032_{date:%Y%m%d}", "CLOUD_COVER": 1.0}

                def make(sensor=sensor, year=year, winter=winter):
                    arrs = self.landsat_dn(sensor, year, grid, winter)
                    m = arrs["mask"]
                    return [(b, *_band(np.nan_to_num(arrs[b]), m)) for b in (*_SR[sensor], "QA_PIXEL")]

                out.append(_LazyImg(make, props))
        return out

    # -- Sentinel-1
    def _s1_acquisitions(self):
        """(datetime, orbit, pass, mode, polarisations, slice) of every S1 scene."""
        anchor = _dt.datetime.fromisoformat(self.s1_anchor).replace(hour=1, minute=12, second=30)
        lo = _dt.datetime.fromisoformat(self.s1_range[0])
        hi = _dt.datetime.fromisoformat(self.s1_range[1]) + _dt.timedelta(days=1)
        out = []

        def cycle(start, step_days):
            k0 = -((start - lo).days // step_days) - 1
            k = k0
            while True:
                t = start + _dt.timedelta(days=k * step_days)
                if t >= hi:
                    return
                if t >= lo:
                    yield t
                k += 1

        for t in cycle(anchor, 12):
            for sl in ("south", "north"):
                out.append((t + _dt.timedelta(seconds=0 if sl == "south" else 24), self.s1_orbit, "ASCENDING",
                            "IW", ["VV", "VH"], sl))
        for t in cycle(anchor + _dt.timedelta(days=7, minutes=-14), 24):
            out.append((t, 100, "ASCENDING", "IW", ["VV", "VH"], None))
        for t in cycle(anchor + _dt.timedelta(days=3, hours=12), 12):
            out.append((t, 56, "DESCENDING", "IW", ["VV", "VH"], None))
        out.append((anchor + _dt.timedelta(days=18), self.s1_orbit, "ASCENDING", "IW", ["VV"], None))
        out.append((anchor + _dt.timedelta(days=21), self.s1_orbit, "ASCENDING", "EW", ["HH", "HV"], None))
        return sorted(out, key=lambda a: a[0])

    def s1_dates(self, start=None, end=None, orbit=None) -> list[str]:
        """Acquisition days (YYYY-MM-DD) that ltlib's filters keep: IW, VV+VH, ASCENDING,
        relative orbit ``orbit`` (default ``s1_orbit``), ``start``..``end`` inclusive."""
        d0 = _dt.date.fromisoformat(start or self.s1_start)
        d1 = _dt.date.fromisoformat(end or self.s1_end)
        orbit = self.s1_orbit if orbit is None else orbit
        return sorted({t.date().isoformat() for t, o, p, mode, pol, _ in self._s1_acquisitions()
                       if o == orbit and p == "ASCENDING" and mode == "IW" and {"VV", "VH"} <= set(pol)
                       and d0 <= t.date() <= d1})

    def s1_mean(self, date, grid) -> tuple[np.ndarray, np.ndarray]:
        """Speckle-free VV and VH (H, W) on ``date`` (linear intensity)."""
        lon, lat = grid_lonlat(grid)
        x, y = self._local_m(lon, lat)
        vv = 0.10 * (1 + 0.5 * np.sin(2 * np.pi * x / 260.0) * np.cos(2 * np.pi * y / 330.0))
        vh = 0.22 * vv
        if _dt.date.fromisoformat(str(date)[:10]) >= _dt.date.fromisoformat(self.s1_change_date):
            patch = self.in_patch(grid)
            vv, vh = np.where(patch, 4 * vv, vv), np.where(patch, 3 * vh, vh)
        return vv, vh

    def s1_scene(self, t: _dt.datetime, orbit: int, slice_: str | None, grid) -> dict:
        """VV, VH, angle (H, W) and mask of one scene."""
        from scipy.stats import gamma

        lon, lat = grid_lonlat(grid)
        vv, vh = self.s1_mean(t.date().isoformat(), grid)
        day = t.date().toordinal()
        speckle = [gamma.ppf(np.clip(_uniform(lon, lat, day, orbit, pol), 1e-9, 1 - 1e-9), self.s1_enl,
                             scale=1.0 / self.s1_enl) for pol in (1, 2)]
        if slice_ is None:
            mask = np.ones(lon.shape, bool)
        else:
            mask = (lat < self.s1_slice_lat) if slice_ == "south" else (lat >= self.s1_slice_lat - 0.0002)
        x, _ = self._local_m(lon, lat)
        angle = 38.0 + x / 250000.0 * 8.0
        return {"VV": vv * speckle[0], "VH": vh * speckle[1], "angle": angle, "mask": mask}

    def s1_scenes(self, grid) -> list:
        out = []
        for t, orbit, pas, mode, pol, sl in self._s1_acquisitions():
            props = {"system:time_start": _millis(t), "relativeOrbitNumber_start": orbit,
                     "orbitProperties_pass": pas, "instrumentMode": mode,
                     "transmitterReceiverPolarisation": list(pol), "platform_number": "A",
                     "system:index": f"S1A_{mode}_GRDH_{t:%Y%m%dT%H%M%S}_{orbit:03d}"}

            def make(t=t, orbit=orbit, sl=sl, pol=tuple(pol)):
                arrs = self.s1_scene(t, orbit, sl, grid)
                names = [p for p in ("VV", "VH") if p in pol] + ["angle"]
                return [(n, *_band(arrs[n], arrs["mask"])) for n in names]

            out.append(_LazyImg(make, props))
        return out

    def collections(self, grid) -> dict:
        """``{collection id: callable(shape) -> [Img]}`` for an Evaluator on ``grid``."""
        g = as_grid(grid)
        out = {cid: (lambda shape, s=s: self.landsat_scenes(s, g)) for s, cid in LANDSAT_IDS.items()}
        out[S1_ID] = lambda shape: self.s1_scenes(g)
        return out


# --- serving -----------------------------------------------------------------------------
_CASTS = {"Image.toInt16": "int16", "Image.toShort": "int16", "Image.toFloat": "float32",
          "Image.toDouble": "float64", "Image.toInt32": "int32", "Image.toInt": "int32",
          "Image.toUint16": "uint16", "Image.toUint8": "uint8", "Image.toByte": "uint8", "Image.toInt8": "int8"}
_PASS_THROUGH = {"Image.unmask": "input", "Image.select": "input", "Image.rename": "input",
                 "Image.clamp": "input", "Image.updateMask": "image", "Element.set": "object",
                 "Element.setMulti": "object", "Image.copyProperties": "destination", "Image.clip": "input",
                 "Image.reproject": "image"}
_BLOCKED = ("computeImages", "computeFeatures", "getDownloadId", "getThumbId", "getMapId", "getTileUrl",
            "getInfo", "getList", "listAssets", "listImages", "getAsset", "getAssetRoots", "exportImage",
            "exportTable", "exportVideo", "startProcessing", "getTaskStatus", "getTaskList", "listOperations",
            "getOperation", "createAsset", "deleteAsset", "copyAsset", "renameAsset", "getFilmstripThumbId",
            "getVideoThumbId", "getTableDownloadId", "computeValues", "getPixels")


def output_dtype(g: dict) -> str:
    """The pixel type Earth Engine would give the image a graph computes (the last cast on
    the path from the result through band selection / unmask / set; default float64)."""
    values = g["values"]
    node = values[g["result"]]
    for _ in range(1000):
        if "valueReference" in node:
            node = values[node["valueReference"]]
            continue
        f = node.get("functionInvocationValue")
        if f is None:
            break
        name = f["functionName"]
        if name in _CASTS:
            return _CASTS[name]
        arg = _PASS_THROUGH.get(name)
        if arg is None or arg not in f.get("arguments", {}):
            break
        node = f["arguments"][arg]
    return "float64"


def _algorithm_names(g: dict) -> list[str]:
    names = set()

    def walk(node):
        if isinstance(node, dict):
            f = node.get("functionInvocationValue")
            if f is not None:
                names.add(f["functionName"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(g["values"])
    return sorted(names)


def _jsonable(value):
    """What the service returns for a computed value."""
    if isinstance(value, Img):
        return {"type": "Image", "bands": [{"id": n} for n in value.names], "properties": _jsonable(value.props)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, Img) for v in value):
            return {"type": "ImageCollection", "features": [_jsonable(v) for v in value]}
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if callable(value):
        raise NotImplementedError("served computeValue: the value is a function or filter, not data")
    return value


class Installation:
    """What :func:`install` changed; :meth:`uninstall` puts it back (in-process use)."""

    def __init__(self, world: World, log_path=None):
        self.world = world
        self.log_path = Path(log_path) if log_path else None
        self._saved: list = []  # (object, attribute, old value or _MISSING)
        self._env: dict = {}
        self._states: list = []
        self._memos: dict = {}
        self._lock = threading.RLock()
        self.requests: list[dict] = []
        self.tmpdir = None

    # -- bookkeeping
    _MISSING = object()

    def _patch(self, obj, name, value):
        self._saved.append((obj, name, getattr(obj, name, self._MISSING)))
        setattr(obj, name, value)

    def _setenv(self, name, value):
        if name not in self._env:
            self._env[name] = os.environ.get(name)
        os.environ[name] = value

    def _log(self, entry: dict):
        entry = {"pid": os.getpid(), **entry}
        self.requests.append(entry)
        if self.log_path is not None:
            with self._lock, open(self.log_path, "a") as f:
                f.write(json.dumps(entry, default=str) + "\n")

    def _memo(self, grid: _Grid) -> dict:
        key = grid.key()
        if key not in self._memos:
            if len(self._memos) >= 8:
                self._memos.pop(next(iter(self._memos)))
            self._memos[key] = {}
        return self._memos[key]

    def uninstall(self):
        import ee

        for obj, name, old in reversed(self._saved):
            if old is self._MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(obj, name)
            else:
                setattr(obj, name, old)
        self._saved.clear()
        for name, old in self._env.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self._env.clear()
        for state, old in self._states:
            state.clear()
            state.update(old)
        # ltlib.gee modules imported while installed were initialised against the fake
        # service: their "initialised" state must not outlive it
        for name, mod in list(sys.modules.items()):
            state = getattr(mod, "_STATE", None) if name.startswith("ltlib.gee") else None
            if isinstance(state, dict) and "initialized" in state and all(state is not s for s, _ in self._states):
                state.update(initialized=False, project=None)
        self._states.clear()
        ee.Reset()
        if self.tmpdir is not None:
            self.tmpdir.cleanup()
            self.tmpdir = None

    # -- served calls
    def compute_pixels(self, params: dict):
        import ee

        t0 = time.perf_counter()
        entry = {"kind": "computePixels"}
        try:
            expr = params["expression"]
            g = expr if isinstance(expr, dict) and "result" in expr else graph(expr)
            fmt = params.get("fileFormat", "AUTO_JPEG_PNG")
            if "grid" not in params:
                raise NotImplementedError("served computePixels needs an explicit grid (dimensions, affineTransform, "
                                          "crsCode); the native grid of the data is not served")
            grid = as_grid(params["grid"])
            band_ids = params.get("bandIds")
            entry.update(shape=list(grid.shape), bands=band_ids, fileFormat=fmt, crs=grid.crs,
                         translate=[grid.transform[2], grid.transform[5]], scale=[grid.transform[0], grid.transform[4]],
                         algorithms=_algorithm_names(g))
            if fmt not in ("GEO_TIFF", "NPY", "NUMPY_NDARRAY"):
                raise NotImplementedError(f"served computePixels: fileFormat {fmt!r} is not served "
                                          "(GEO_TIFF, NPY, NUMPY_NDARRAY are)")
            if max(grid.shape) > 32768:
                raise ee.EEException(f"Grid dimensions {grid.width}x{grid.height} exceed the 32768 limit.")
            dtype = np.dtype(output_dtype(g))
            self._check_size(grid, len(band_ids) if band_ids else 1, dtype)
            with self._lock:
                ev = Evaluator(grid.shape, collections=self.world.collections(grid), memo=self._memo(grid))
                try:
                    img = ev.run_graph(g)
                except LookupError as err:
                    raise ee.EEException(str(err)) from None
            if not isinstance(img, Img):
                raise ee.EEException(f"computePixels: the expression is a {type(img).__name__}, not an Image")
            names = list(band_ids) if band_ids else img.names
            for n in names:
                if n not in img.names:
                    raise ee.EEException(f"Image.select: Pattern '{n}' did not match any bands. "
                                         f"Available bands: {img.names}")
            self._check_size(grid, len(names), dtype)
            data = np.stack([np.nan_to_num(img.values(n), nan=0.0) for n in names])  # masked -> 0
            entry["dtype"] = dtype.name
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                data = np.clip(np.trunc(data), info.min, info.max)
            data = data.astype(dtype)
            if fmt == "GEO_TIFF":
                out = self._geotiff(data, grid, names)
            else:
                arr = np.zeros(grid.shape, dtype=[(n, dtype) for n in names])
                for i, n in enumerate(names):
                    arr[n] = data[i]
                if fmt == "NUMPY_NDARRAY":
                    out = arr
                else:
                    buf = _io.BytesIO()
                    np.save(buf, arr, allow_pickle=False)
                    out = buf.getvalue()
            return out
        except Exception as err:
            entry["error"] = f"{type(err).__name__}: {err}"
            raise
        finally:
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            self._log(entry)

    @staticmethod
    def _check_size(grid: _Grid, n_bands: int, dtype):
        import ee

        n_bytes = grid.height * grid.width * n_bands * np.dtype(dtype).itemsize
        if n_bytes > 48 * 2**20:
            raise ee.EEException(f"Total request size ({n_bytes} bytes) must be less than or equal to "
                                 f"{48 * 2**20} bytes.")

    @staticmethod
    def _geotiff(data, grid: _Grid, names) -> bytes:
        from affine import Affine
        from rasterio.io import MemoryFile

        a, b, c, d, e, f = grid.transform
        with MemoryFile() as mem:
            with mem.open(driver="GTiff", height=grid.height, width=grid.width, count=len(names),
                          dtype=data.dtype.name, crs=grid.crs, transform=Affine(a, b, c, d, e, f)) as dst:
                dst.write(data)
                for i, n in enumerate(names, start=1):
                    dst.set_band_description(i, n)
            return mem.read()

    def compute_value(self, obj):
        import ee

        t0 = time.perf_counter()
        entry = {"kind": "computeValue"}
        try:
            g = graph(obj)
            entry["algorithms"] = _algorithm_names(g)
            c = self.world.bbox
            centre = ((c[0] + c[2]) / 2, (c[1] + c[3]) / 2)
            grid = _Grid("EPSG:4326", (1e-5, 0.0, centre[0], 0.0, -1e-5, centre[1]), 1, 1)
            with self._lock:
                ev = Evaluator(grid.shape, collections=self.world.collections(grid))
                try:
                    value = ev.run_graph(g)
                except LookupError as err:
                    raise ee.EEException(str(err)) from None
            out = _jsonable(value)
            entry["result_type"] = type(out).__name__
            return out
        except Exception as err:
            entry["error"] = f"{type(err).__name__}: {err}"
            raise
        finally:
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            self._log(entry)


def _write_fake_credentials(directory: Path) -> Path:
    """An Application Default Credentials file that only says what it is (never used)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "application_default_credentials.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "offline-served-ee-test",
                                "client_secret": "not-a-secret", "refresh_token": "not-a-token",
                                "note": "fake credentials written by tests/ee_served.py; nothing reads them"}))
    return path


def install(world: World | None = None, *, log_path=None, credentials_dir=None, project: str = "test") -> Installation:
    """Serve Earth Engine offline in this process from ``world``; returns an
    :class:`Installation` (``.uninstall()`` undoes everything, for in-process tests).

    ``credentials_dir``: where the fake ``application_default_credentials.json`` is (made
    if missing) and ``CLOUDSDK_CONFIG`` points; default a new temporary directory.
    """
    import ee

    world = world or World()
    inst = Installation(world, log_path)
    original_initialize = ee.Initialize

    def stubs():
        ee.data._install_cloud_api_resource = lambda: None
        ee.data.getAlgorithms = _algorithms
        ee.deprecation._FetchDataCatalogStac = lambda: {}

    def offline_initialize(credentials=None, url=None, cloud_api_key=None, http_transport=None, project=None,
                           **_):
        """ee.Initialize, served offline: no credentials are read and no server is asked."""
        stubs()
        original_initialize(None, "", project=project or inst.project)

    inst.project = project
    for name in ("_install_cloud_api_resource", "getAlgorithms"):
        inst._patch(ee.data, name, getattr(ee.data, name))
    inst._patch(ee.deprecation, "_FetchDataCatalogStac", ee.deprecation._FetchDataCatalogStac)
    inst._patch(ee, "Initialize", offline_initialize)
    inst._patch(ee.data, "computePixels", inst.compute_pixels)
    inst._patch(ee.data, "computeValue", inst.compute_value)
    for name in _BLOCKED:
        if hasattr(ee.data, name):
            def blocked(*args, _name=name, **kwargs):
                raise NotImplementedError(f"served Earth Engine (offline): ee.data.{_name} is not served; "
                                          "only computePixels and computeValue are")
            inst._patch(ee.data, name, blocked)
    # credentials: a fake ADC file where ltlib.gee looks (CLOUDSDK_CONFIG)
    if credentials_dir is None:
        inst.tmpdir = tempfile.TemporaryDirectory(prefix="ltlib-served-ee-")
        credentials_dir = Path(inst.tmpdir.name) / "gcloud"
    credentials_dir = Path(credentials_dir)
    if not (credentials_dir / "application_default_credentials.json").is_file():
        _write_fake_credentials(credentials_dir)
    inst._setenv("CLOUDSDK_CONFIG", str(credentials_dir))
    # ltlib.gee's "already initialised" state, restored by uninstall (module or package)
    for name, mod in list(sys.modules.items()):
        state = getattr(mod, "_STATE", None) if name.startswith("ltlib.gee") else None
        if isinstance(state, dict) and all(state is not s for s, _ in inst._states):
            inst._states.append((state, dict(state)))
    ee.Reset()
    offline_initialize(project=project)
    return inst


@contextlib.contextmanager
def installed(world: World | None = None, **kw):
    """``with installed(world) as inst: ...`` serves Earth Engine in this process."""
    inst = install(world, **kw)
    try:
        yield inst
    finally:
        inst.uninstall()


# --- fixtures ------------------------------------------------------------------------------
STARTUP_TEMPLATE = '''\
# Written by tests/ee_served.py (fixture served_ee): serve Earth Engine offline in this kernel.
import json as _json
import sys as _sys
if {root!r} not in _sys.path:
    _sys.path.insert(0, {root!r})
try:
    from tests import ee_served as _ee_served
    _LTLIB_SERVED_EE = _ee_served.install(_ee_served.World.from_json({world!r}), log_path={log!r},
                                          credentials_dir={cred!r})
except Exception:
    import traceback as _tb
    with open({log!r}, "a") as _f:
        _f.write(_json.dumps({{"kind": "install_error", "error": _tb.format_exc()}}) + "\\n")
    raise
'''


@dataclass
class ServedEE:
    """What the :func:`served_ee` fixtures give a test."""

    world: World
    log_path: Path
    ipython_dir: Path | None = None
    startup_file: Path | None = None
    credentials_dir: Path | None = None
    env: dict = field(default_factory=dict)
    installation: Installation | None = None

    @property
    def bbox(self):
        return self.world.bbox

    @property
    def start_year(self):
        return self.world.start_year

    @property
    def end_year(self):
        return self.world.end_year

    @property
    def years(self):
        return list(range(self.world.start_year, self.world.end_year + 1))

    @property
    def disturbance_year(self):
        return self.world.disturbance_year

    @property
    def s1_start(self):
        return self.world.s1_start

    @property
    def s1_end(self):
        return self.world.s1_end

    @property
    def s1_dates(self):
        return self.world.s1_dates()

    def requests(self, kind=None) -> list[dict]:
        """The served requests logged so far (optionally of one kind)."""
        if not self.log_path.exists():
            return []
        out = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [r for r in out if kind is None or r.get("kind") == kind]


def write_startup(ipython_dir: Path, world: World, log_path: Path, credentials_dir: Path) -> Path:
    startup = Path(ipython_dir) / "profile_default" / "startup" / STARTUP_NAME
    startup.parent.mkdir(parents=True, exist_ok=True)
    startup.write_text(STARTUP_TEMPLATE.format(root=str(ROOT), world=world.to_json(), log=str(log_path),
                                               cred=str(credentials_dir)))
    return startup


@pytest.fixture
def served_ee(tmp_path_factory):
    """Earth Engine served offline in Jupyter kernels started during the test (papermill).

    Writes ``<IPYTHONDIR>/profile_default/startup/00-ltlib-served-ee.py`` (puts the repo on
    ``sys.path``, calls :func:`install`) into a temporary ``IPYTHONDIR`` and sets
    ``IPYTHONDIR`` and ``CLOUDSDK_CONFIG`` (fake credentials) in ``os.environ`` for the
    test; kernels inherit them. This process is not changed otherwise. Returns a
    :class:`ServedEE` (``bbox``, ``start_year``, ``end_year``, ``disturbance_year``,
    ``s1_start``/``s1_end``/``s1_dates``, ``world``, ``log_path``, ``requests()``).
    """
    base = tmp_path_factory.mktemp("served_ee")
    world = World()
    log_path = base / "requests.jsonl"
    cred = base / "gcloud"
    _write_fake_credentials(cred)
    ipython_dir = base / "ipython"
    startup = write_startup(ipython_dir, world, log_path, cred)
    env = {"IPYTHONDIR": str(ipython_dir), "CLOUDSDK_CONFIG": str(cred)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield ServedEE(world, log_path, ipython_dir, startup, cred, env)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def served_ee_in_process(tmp_path):
    """Earth Engine served offline in the test process itself (undone afterwards)."""
    with contextlib.suppress(ImportError):
        import ltlib.gee  # noqa: F401 - so that its "initialised" state is saved and restored
    world = World()
    log_path = tmp_path / "requests.jsonl"
    with installed(world, log_path=log_path, credentials_dir=tmp_path / "gcloud") as inst:
        yield ServedEE(world, log_path, credentials_dir=tmp_path / "gcloud",
                       env={"CLOUDSDK_CONFIG": str(tmp_path / "gcloud")}, installation=inst)


def _main():  # pragma: no cover - manual smoke run: python -m tests.ee_served
    with installed(World()) as inst:
        from ltlib import gee

        print("initialize:", gee.initialize("test"))
        out = Path(tempfile.mkdtemp())
        gee.collect_landsat_to_dir(out, aoi=inst.world.bbox, start_year=1984, end_year=1995, indices=("NDVI",),
                                   progress=False)
        for r in inst.requests:
            print(r)


if __name__ == "__main__":  # pragma: no cover
    try:
        _main()
    except Exception:
        traceback.print_exc()
        raise

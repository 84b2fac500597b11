"""Earth Engine data path: annual Landsat composites, LandsatLinkr assets, LandTrendr on
Earth Engine, Sentinel-1, and direct download to GeoTIFF stacks readable by :mod:`ltlib.io`.

Layers
------
- :func:`initialize` is the only place that authenticates / initialises Earth Engine.
- Graph builders (no server call, testable offline): :func:`annual_composites`,
  :func:`llr_fitted_stack`, :func:`landtrendr`, :func:`fitted_stack`, :func:`change_map`,
  :func:`s1_collection`, :func:`collection_to_stack`.
- Download: :func:`download_image` (tiled ``ee.data.computePixels``, see
  :mod:`ltlib.download` for why not geemap/geedim/xee) and :func:`export_to_drive`.
- What notebooks call: :func:`collect_landsat_to_dir`, :func:`fit_landtrendr_to_dir`,
  :func:`collect_s1_to_dir`, :func:`add_year_slider`.

Units: composite and fitted index values are index x 1000 (``config.INDICES[...].scale``
0.001), as LT-GEE and the sample stacks; Sentinel-1 is linear intensity (not dB).

The compositing (Collection 2 scaling, QA_PIXEL masking, OLI->ETM+ harmonisation of Roy et
al. 2016, medoid) and the change-map logic follow the documented behaviour of LT-GEE's
``LandTrendr.js`` (Kennedy et al. 2018; https://github.com/eMapR/LT-GEE, Apache-2.0,
by J. Braaten, Z. Yang, R. Kennedy), re-implemented here for Collection 2 in Python.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys
import threading
import warnings
from pathlib import Path

import ee
import numpy as np

from . import config
from .download import download_to_geotiff, estimate_bytes, format_bytes, wait_for_task
from .io import Grid

# --- Constants ----------------------------------------------------------------------------
#: Harmonised reflectance band names of the composites (ETM+ band semantics).
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
#: Collection 2 Level-2 surface reflectance bands, in the order of BANDS.
SR_BANDS = {
    "LT05": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LE07": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LC08": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
    "LC09": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
}
SENSORS = ("LT05", "LE07", "LC08", "LC09")
#: OLI -> ETM+ reflectance: etm = (oli - intercept) / slope, reduced-major-axis coefficients of
#: Roy et al. 2016 (RSE 185:57, Table 2), bands blue..swir2 (as used by LT-GEE).
OLI_TO_ETM_SLOPE = (0.9785, 0.9542, 0.9825, 1.0073, 1.0171, 0.9949)
OLI_TO_ETM_INTERCEPT = (-0.0095, -0.0016, -0.0022, -0.0021, -0.0030, 0.0029)
#: QA_PIXEL bits (Landsat Collection 2): what each mask name removes.
QA_BITS = {
    "cloud": (1, 2, 3),  # dilated cloud, cirrus (OLI only; 0 elsewhere), cloud
    "shadow": (4,),
    "snow": (5,),
    "water": (7,),
}
#: First year of Collection 2 Level-2 TM data; earlier years need a LandsatLinkr asset.
FIRST_TM_YEAR = 1984
METHODS = ("medoid", "median")
#: Value masked pixels are unmasked to before download (int16 stacks).
INT16_FILL = config.NODATA_INT16
FLOAT_FILL = -9999.0
#: Composite date stamp (month, day): mid-season, like LT-GEE.
COMPOSITE_DATE = (8, 1)

SAMPLE_FALLBACK_MESSAGE = "Earth Engine not available: using the sample (set use_gee=True and ee_project=...)"

_STATE: dict = {"initialized": False, "project": None}


# --- Authentication -------------------------------------------------------------------------
def _in_colab() -> bool:
    return "google.colab" in sys.modules


def _credential_files() -> list[Path]:
    """Files that can hold Earth Engine / Google credentials on this machine."""
    paths = []
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        paths.append(Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]))
    try:
        paths.append(Path(ee.oauth.get_credentials_path()))
    except Exception:  # noqa: BLE001 - a broken ee.oauth must not break the fallback
        pass
    cfg = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    paths.append(Path(cfg) / "application_default_credentials.json")
    return paths


def has_credentials() -> bool:
    """True when a credentials file exists (does not contact any server)."""
    return any(p.is_file() for p in _credential_files())


def initialize(project=None, *, timeout: float = 60.0) -> bool:
    """Authenticate (Colab only) and initialise Earth Engine; return True when usable.

    ``project`` is the Google Cloud project; default ``EE_PROJECT`` from the environment.
    Without credentials (run ``earthengine authenticate`` once, or ``ee.Authenticate()``),
    prints one line saying so and returns False without touching the network, so notebooks
    fall back to the sample. ``ee.Initialize`` runs in a thread and is given ``timeout``
    seconds, so an unreachable server cannot hang a notebook.
    """
    project = project or os.environ.get("EE_PROJECT") or None
    if _STATE["initialized"] and (project is None or project == _STATE["project"]):
        return True
    if _in_colab():
        try:
            ee.Authenticate()  # the Colab flow: a pop-up in the notebook
        except Exception as err:  # noqa: BLE001
            print(f"Earth Engine authentication failed: {_first_line(err)}")
            return False
    elif not has_credentials():
        print("Earth Engine: no credentials found; run `earthengine authenticate` once "
              "(see docs/earth_engine.md)")
        return False
    result: dict = {}

    def _init():
        try:
            ee.Initialize(project=project)
            result["ok"] = True
        except Exception as err:  # noqa: BLE001
            result["error"] = err

    thread = threading.Thread(target=_init, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        print(f"Earth Engine did not answer within {timeout:.0f} s (no network?); not using it")
        return False
    if "error" in result:
        hint = "" if project else " (no Cloud project: pass ee_project=... or set EE_PROJECT)"
        print(f"Earth Engine initialisation failed: {_first_line(result['error'])}{hint}")
        return False
    _STATE.update(initialized=True, project=project)
    return True


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- Area of interest and grid --------------------------------------------------------------
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


# --- Landsat Collection 2 composites --------------------------------------------------------
_MMDD = re.compile(r"^(\d{2})-(\d{2})$")


def _parse_season(season) -> tuple[tuple[int, int], tuple[int, int]]:
    if len(season) != 2:
        raise ValueError(f"season must be (start 'MM-DD', end 'MM-DD'), got {season!r}")
    out = []
    for s in season:
        m = _MMDD.match(str(s))
        if not m:
            raise ValueError(f"season dates must be 'MM-DD', got {s!r}")
        month, day = int(m.group(1)), int(m.group(2))
        _dt.date(2000, month, day)  # raises ValueError for 02-30 etc.
        out.append((month, day))
    if out[0] == out[1]:
        raise ValueError(f"season start and end are the same day: {season!r}")
    return out[0], out[1]


def _check_years(start_year, end_year):
    if int(start_year) != start_year or int(end_year) != end_year:
        raise ValueError(f"years must be integers, got {start_year!r}, {end_year!r}")
    if not 1972 <= start_year <= end_year:
        raise ValueError(f"need 1972 <= start_year <= end_year, got {start_year}..{end_year}")


def _qa_mask_value(mask) -> int:
    mask = tuple(mask or ())
    unknown = [m for m in mask if m not in QA_BITS]
    if unknown:
        raise ValueError(f"unknown mask name(s) {unknown}; choose from {sorted(QA_BITS)}")
    value = 0
    for name in mask:
        for bit in QA_BITS[name]:
            value |= 1 << bit
    return value


def _indices(index) -> tuple[str, ...]:
    names = (index,) if isinstance(index, str) else tuple(index)
    if not names:
        raise ValueError("index: give at least one index name")
    out = []
    for n in names:
        n = str(n).upper()
        if n not in config.INDICES:
            raise ValueError(f"unknown index {n!r}; choose from {sorted(config.INDICES)}")
        out.append(n)
    return tuple(out)


def prepare_c2_image(img, sensor: str, qa_bits: int) -> ee.Image:
    """One Collection 2 Level-2 scene -> harmonised surface reflectance, bands BANDS.

    Scaling DN * 0.0000275 - 0.2; pixels with any of ``qa_bits`` set in QA_PIXEL masked;
    OLI/OLI-2 converted to ETM+ reflectance (Roy et al. 2016). Keeps ``system:time_start``.
    """
    img = ee.Image(img)
    sr = img.select(list(SR_BANDS[sensor]), list(BANDS)).multiply(config.C2_SR_SCALE).add(config.C2_SR_OFFSET)
    if sensor in ("LC08", "LC09"):
        sr = sr.subtract(ee.Image.constant(list(OLI_TO_ETM_INTERCEPT))).divide(
            ee.Image.constant(list(OLI_TO_ETM_SLOPE)))
    if qa_bits:
        sr = sr.updateMask(img.select("QA_PIXEL").bitwiseAnd(qa_bits).eq(0))
    return ee.Image(sr.copyProperties(img, ["system:time_start"]))


def landsat_sr_collection(aoi, start_year: int, end_year: int, *, mask=("cloud", "shadow", "snow"),
                          sensors=SENSORS, season=config.SEASON) -> ee.ImageCollection:
    """All TM/ETM+/OLI scenes over the AOI in the years (and the season's previous year when
    the season crosses New Year), as harmonised masked reflectance (bands BANDS)."""
    _check_years(start_year, end_year)
    (m0, _), (m1, _) = _parse_season(season)
    qa_bits = _qa_mask_value(mask)
    geom = aoi_geometry(aoi)
    first = start_year - 1 if (m0, 0) > (m1, 0) else start_year
    merged = None
    for sensor in sensors:
        if sensor not in SR_BANDS:
            raise ValueError(f"unknown sensor {sensor!r}; choose from {SENSORS}")
        col = (ee.ImageCollection(config.EE_LANDSAT_C2_L2[sensor])
               .filterBounds(geom)
               .filterDate(f"{first}-01-01", f"{end_year + 1}-01-01")
               .map(lambda img, s=sensor: prepare_c2_image(img, s, qa_bits)))
        merged = col if merged is None else merged.merge(col)
    if merged is None:
        raise ValueError("sensors: give at least one of " + ", ".join(SENSORS))
    return merged


def _empty_image() -> ee.Image:
    # A fully masked image: keeps a year with no scene in the series (masked, not missing).
    return ee.Image.constant([0.0] * len(BANDS)).rename(list(BANDS)).toFloat().updateMask(ee.Image.constant(0))


def medoid(collection) -> ee.Image:
    """Per pixel, the observation closest (sum of squared differences over BANDS) to the
    per-band median: a real observation, robust to residual clouds (LT-GEE's default)."""
    collection = ee.ImageCollection(collection)
    median = collection.median()

    def _dist(img):
        img = ee.Image(img)
        return img.subtract(median).pow(2).reduce(ee.Reducer.sum()).rename("dist").addBands(img)

    n = len(BANDS) + 1
    return (ee.ImageCollection(collection.map(_dist)).reduce(ee.Reducer.min(n))
            .rename(["dist", *BANDS]).select(list(BANDS)))


def index_image(img, index: str) -> ee.Image:
    """Index x 1000 (float) from a harmonised reflectance image (bands BANDS)."""
    img = ee.Image(img)
    index = _indices(index)[0]
    if index == "NDVI":
        out = img.normalizedDifference(["nir", "red"])
    elif index == "NBR":
        out = img.normalizedDifference(["nir", "swir2"])
    elif index == "NDMI":
        out = img.normalizedDifference(["nir", "swir1"])
    else:  # Tasseled Cap, Crist 1985 reflectance coefficients
        out = img.select(list(BANDS)).multiply(ee.Image.constant(list(config.TC_COEFFS[index]))).reduce(
            ee.Reducer.sum())
    return out.multiply(1000).rename(index)


def annual_composites(aoi, start_year: int, end_year: int, *, season=config.SEASON, index="NDVI",
                      method="medoid", mask=("cloud", "shadow", "snow"), sensors=SENSORS) -> ee.ImageCollection:
    """One composite per year of Landsat Collection 2 Level-2 TM/ETM+/OLI over ``aoi``.

    Parameters
    ----------
    aoi : ``ee.Geometry``, (west, south, east, north) degrees, GeoJSON dict or file path.
    start_year, end_year : inclusive. Years with no scene give a fully masked image.
    season : ('MM-DD', 'MM-DD') window each year, end exclusive (LT-GEE); a window that
        crosses New Year starts in the previous year.
    index : index name or several (one band each, named after the index), x 1000.
    method : 'medoid' (LT-GEE default) or 'median' (per band).
    mask : QA_PIXEL classes to remove: any of 'cloud', 'shadow', 'snow', 'water'.

    Returns an ``ee.ImageCollection`` ordered by year with ``system:time_start`` (Aug 1 of
    the year) and ``year`` set.
    """
    _check_years(start_year, end_year)
    (m0, d0), (m1, d1) = _parse_season(season)
    indices = _indices(index)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    scenes = landsat_sr_collection(aoi, start_year, end_year, mask=mask, sensors=sensors, season=season)
    crosses = (m0, d0) > (m1, d1)
    empty = ee.ImageCollection([_empty_image()])

    def _year(y):
        y = ee.Number(y)
        start = ee.Date.fromYMD(y.subtract(1) if crosses else y, m0, d0)
        end = ee.Date.fromYMD(y, m1, d1)
        window = scenes.filterDate(start, end).merge(empty)
        refl = medoid(window) if method == "medoid" else window.median().select(list(BANDS))
        out = index_image(refl, indices[0])
        for name in indices[1:]:
            out = out.addBands(index_image(refl, name))
        return out.set({"system:time_start": ee.Date.fromYMD(y, *COMPOSITE_DATE).millis(), "year": y})

    return ee.ImageCollection.fromImages(ee.List.sequence(start_year, end_year).map(_year))


def collection_to_stack(collection, start_year: int, end_year: int, band: str | None = None) -> ee.Image:
    """An annual collection (one image per year, in order) -> one image with bands yrYYYY."""
    col = ee.ImageCollection(collection)
    if band is not None:
        col = col.select([band])
    return col.toBands().rename(config.year_band_names(range(start_year, end_year + 1)))


def llr_fitted_stack(asset, index: str, start_year: int, end_year: int, *, asset_start_year: int = 1972,
                     asset_end_year: int = 2022) -> ee.Image:
    """A LandsatLinkr ``landtrendr`` asset's ``<index>_fit`` array flattened to bands yrYYYY
    (the seed's ``select('ndvi_fit').arrayFlatten([years])``), then the requested years.

    ``asset_start_year``/``asset_end_year`` are the years the asset was run for (the array
    length); the asset stores index x 1000 like LT-GEE.
    """
    index = _indices(index)[0]
    _check_years(start_year, end_year)
    if not asset_start_year <= start_year <= end_year <= asset_end_year:
        raise ValueError(f"years {start_year}-{end_year} are outside the asset's "
                         f"{asset_start_year}-{asset_end_year}")
    img = ee.Image(asset)
    all_names = config.year_band_names(range(asset_start_year, asset_end_year + 1))
    flat = img.select(f"{index.lower()}_fit").arrayFlatten([all_names])
    return flat.select(config.year_band_names(range(start_year, end_year + 1)))


# --- LandTrendr on Earth Engine -------------------------------------------------------------
LT_DEFAULTS = dict(max_segments=6, spike_threshold=0.9, vertex_count_overshoot=3, prevent_one_year_recovery=False,
                   recovery_threshold=0.25, pval_threshold=0.1, best_model_proportion=0.75,
                   min_observations_needed=6)
_LT_EE_NAMES = dict(max_segments="maxSegments", spike_threshold="spikeThreshold",
                    vertex_count_overshoot="vertexCountOvershoot",
                    prevent_one_year_recovery="preventOneYearRecovery", recovery_threshold="recoveryThreshold",
                    pval_threshold="pvalThreshold", best_model_proportion="bestModelProportion",
                    min_observations_needed="minObservationsNeeded")


def _lt_args(params: dict) -> dict:
    p = dict(params)
    if int(p["max_segments"]) != p["max_segments"] or p["max_segments"] < 1:
        raise ValueError(f"max_segments must be a positive integer, got {p['max_segments']!r}")
    if not 0 < p["spike_threshold"] <= 1:
        raise ValueError(f"spike_threshold must be in (0, 1], got {p['spike_threshold']}")
    if int(p["vertex_count_overshoot"]) != p["vertex_count_overshoot"] or p["vertex_count_overshoot"] < 0:
        raise ValueError(f"vertex_count_overshoot must be a non-negative integer, got {p['vertex_count_overshoot']}")
    for k in ("recovery_threshold", "pval_threshold", "best_model_proportion"):
        if not 0 < p[k] <= 1:
            raise ValueError(f"{k} must be in (0, 1], got {p[k]}")
    if int(p["min_observations_needed"]) != p["min_observations_needed"] or p["min_observations_needed"] < 1:
        raise ValueError(f"min_observations_needed must be a positive integer, got {p['min_observations_needed']}")
    out = {}
    for k, v in p.items():
        if k in ("max_segments", "vertex_count_overshoot", "min_observations_needed"):
            v = int(v)
        elif k == "prevent_one_year_recovery":
            v = bool(v)
        else:
            v = float(v)
        out[_LT_EE_NAMES[k]] = v
    return out


def landtrendr(collection, *, max_segments=6, spike_threshold=0.9, vertex_count_overshoot=3,
               prevent_one_year_recovery=False, recovery_threshold=0.25, pval_threshold=0.1,
               best_model_proportion=0.75, min_observations_needed=6, distdir=-1) -> ee.Image:
    """Run ``ee.Algorithms.TemporalSegmentation.LandTrendr`` on an annual collection.

    The collection's first band is segmented after multiplying by ``distdir`` (LandTrendr
    expects disturbance to increase the value; -1 for NDVI/NBR/TCG/TCW, +1 for TCB). Every
    band (the first included, in its original orientation) is also fitted on the same
    vertices and returned as ``<band lower>_fit``, the layout of LandsatLinkr assets.

    Parameters are those of :func:`ltlib.landtrendr.segment` (GEE defaults).

    Returns the LandTrendr image: ``LandTrendr`` array (4 x years: year, source x distdir,
    fitted x distdir, is-vertex), ``rmse``, and ``<band>_fit`` arrays.
    """
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")
    args = _lt_args(dict(max_segments=max_segments, spike_threshold=spike_threshold,
                         vertex_count_overshoot=vertex_count_overshoot,
                         prevent_one_year_recovery=prevent_one_year_recovery, recovery_threshold=recovery_threshold,
                         pval_threshold=pval_threshold, best_model_proportion=best_model_proportion,
                         min_observations_needed=min_observations_needed))

    series = landtrendr_input(collection, distdir)
    lt = ee.Algorithms.TemporalSegmentation.LandTrendr(timeSeries=series, **args)
    return ee.Image(lt).set("ltlib_distdir", distdir)


def landtrendr_input(collection, distdir: int = -1) -> ee.ImageCollection:
    """The collection LandTrendr gets: band ``lt_input`` = first band x ``distdir``
    (disturbance up), then every band of the input renamed to lower case (fitted as FTV)."""
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")

    def _prep(img):
        img = ee.Image(img)
        lower = img.bandNames().map(lambda b: ee.String(b).toLowerCase())
        seg = img.select([0]).multiply(distdir).rename("lt_input")
        return seg.addBands(img.rename(lower)).set("system:time_start", img.get("system:time_start"))

    return ee.ImageCollection(collection).map(_prep)


def fitted_stack(lt_image, band: str, start_year: int, end_year: int) -> ee.Image:
    """The ``<band>_fit`` array of a LandTrendr image flattened to bands yrYYYY."""
    return ee.Image(lt_image).select(f"{band.lower()}_fit").arrayFlatten(
        [config.year_band_names(range(start_year, end_year + 1))])


_SORTS = ("greatest", "least", "newest", "oldest", "fastest", "slowest")
# Rows of the segment table built in change_map.
_SEG_ROWS = ("start_year", "end_year", "preval", "mag", "dur", "rate", "dsnr")


def change_map(lt_image, start_year: int, end_year: int, *, delta="loss", sort="greatest", year_range=None,
               mag_min=None, dur_max=None, preval_min=None, mmu=None, distdir=-1) -> ee.Image:
    """LT-GEE ``getChangeMap`` computed on the server, with the options of the local
    :func:`ltlib.landtrendr.change_map`.

    For every segment between consecutive vertices: start/end year, ``preval`` (fitted value
    at the start, original orientation), ``mag`` = |end - start|, ``dur`` years, ``rate`` =
    mag / dur, ``dsnr`` = mag / rmse. Keep loss (``delta='loss'``: the index moves in the
    disturbance direction) or gain segments, then those with ``year_range[0] <= yod <=
    year_range[1]``, ``mag > mag_min``, ``dur < dur_max``, ``preval > preval_min``; sort
    (greatest/least magnitude, newest/oldest start, fastest/slowest = shortest/longest
    duration) and take the first. ``yod`` = start year + 1. Pixels with no such segment are
    masked; ``mmu`` masks patches of the same yod (8-connected) smaller than ``mmu`` pixels.

    ``start_year``/``end_year`` are the years of the LandTrendr series (they bound
    ``year_range``). Returns bands yod (int16), mag, dur, preval, rate, dsnr, in the units
    of the fitted index (x 1000 for indices).
    """
    _check_years(start_year, end_year)
    if delta not in ("loss", "gain"):
        raise ValueError(f"delta must be 'loss' or 'gain', got {delta!r}")
    if sort not in _SORTS:
        raise ValueError(f"sort must be one of {_SORTS}, got {sort!r}")
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")
    if year_range is not None:
        y0, y1 = (int(v) for v in year_range)
        if y0 > y1:
            raise ValueError(f"year_range must be (first, last), got {year_range!r}")
        if y1 < start_year + 1 or y0 > end_year:
            raise ValueError(f"year_range {year_range!r} does not overlap the series {start_year}-{end_year}")
    if mmu is not None and (int(mmu) != mmu or mmu < 1):
        raise ValueError(f"mmu must be a positive integer number of pixels, got {mmu!r}")
    if dur_max is not None and dur_max <= 0:
        raise ValueError(f"dur_max must be positive years, got {dur_max}")

    lt_image = ee.Image(lt_image)
    lt = lt_image.select("LandTrendr")
    vertices = lt.arrayMask(lt.arraySlice(0, 3, 4))  # keep the vertex columns
    left = vertices.arraySlice(1, 0, -1)  # segment starts
    right = vertices.arraySlice(1, 1)  # segment ends
    seg_start = left.arraySlice(0, 0, 1)
    seg_end = right.arraySlice(0, 0, 1)
    val0, val1 = left.arraySlice(0, 2, 3), right.arraySlice(0, 2, 3)  # LT orientation: disturbance up
    step = val1.subtract(val0)
    keep = step.gt(0) if delta == "loss" else step.lt(0)
    mag = step.abs()
    dur = seg_end.subtract(seg_start)
    table = ee.Image.cat([seg_start, seg_end, val0.multiply(distdir), mag, dur, mag.divide(dur),
                          mag.divide(lt_image.select("rmse"))]).toArray(0)  # (7, n_segments)
    table = table.arrayMask(keep)

    def row(name):
        i = _SEG_ROWS.index(name)
        return table.arraySlice(0, i, i + 1)

    if year_range is not None:
        yod = row("start_year").add(1)
        table = table.arrayMask(yod.gte(y0).And(yod.lte(y1)))
    if mag_min is not None:
        table = table.arrayMask(row("mag").gt(float(mag_min)))
    if dur_max is not None:
        table = table.arrayMask(row("dur").lt(float(dur_max)))
    if preval_min is not None:
        table = table.arrayMask(row("preval").gt(float(preval_min)))
    key = {"greatest": row("mag").multiply(-1), "least": row("mag"), "newest": row("start_year").multiply(-1),
           "oldest": row("start_year"), "fastest": row("dur"), "slowest": row("dur").multiply(-1)}[sort]
    # A sentinel column (mag 0, sorted last) keeps the array non-empty where no segment is
    # left, so the pixel comes out masked instead of failing arrayFlatten.
    sentinel = ee.Image(ee.Array([[0.0]] * len(_SEG_ROWS)))
    table = table.arrayCat(sentinel, 1)
    key = key.arrayCat(ee.Image(ee.Array([[1e30]])), 1)
    first = table.arraySort(key).arraySlice(1, 0, 1).arrayProject([0]).arrayFlatten([list(_SEG_ROWS)])
    out = ee.Image.cat([first.select("start_year").add(1).toInt16().rename("yod"),
                        first.select(["mag", "dur", "preval", "rate", "dsnr"])])
    out = out.updateMask(out.select("mag").gt(0))
    if mmu is not None and mmu > 1:
        out = out.updateMask(out.select("yod").connectedPixelCount(int(mmu), True).gte(int(mmu)))
    return out


# --- Sentinel-1 -----------------------------------------------------------------------------
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
    files written by :func:`collect_s1_to_dir`."""
    from .io import check_same_grid, read_raster

    out_dir = Path(out_dir)
    vv, grid, dates = read_raster(out_dir / "s1_vv.tif")
    vh, grid_vh, dates_vh = read_raster(out_dir / "s1_vh.tif")
    check_same_grid(grid, grid_vh, "s1_vv.tif and s1_vh.tif")
    if dates != dates_vh:
        raise ValueError(f"{out_dir}: s1_vv.tif and s1_vh.tif have different dates")
    return np.stack([vv, vh], axis=1), dates, grid


# --- Download -------------------------------------------------------------------------------
def computepixels_fetch(image, grid: Grid, band_ids):
    """A ``fetch(tile)`` for :func:`ltlib.download.download_to_geotiff` that asks Earth
    Engine's ``computePixels`` for one tile as GeoTIFF and checks its georeferencing."""
    from rasterio.io import MemoryFile

    band_ids = list(band_ids)
    t = grid.transform
    crs = grid.crs.to_string()

    def fetch(tile):
        tt = tile.transform(grid)
        request = {
            "expression": image,
            "fileFormat": "GEO_TIFF",
            "bandIds": band_ids,
            "grid": {
                "dimensions": {"width": tile.width, "height": tile.height},
                "affineTransform": {"scaleX": t.a, "shearX": t.b, "translateX": tt.c,
                                    "shearY": t.d, "scaleY": t.e, "translateY": tt.f},
                "crsCode": crs,
            },
        }
        data = ee.data.computePixels(request)
        with MemoryFile(data) as mem, mem.open() as src:
            if abs(src.transform.c - tt.c) > 1e-6 * abs(t.a) or abs(src.transform.f - tt.f) > 1e-6 * abs(t.a):
                raise ValueError(f"{tile}: Earth Engine returned origin {src.transform.c, src.transform.f}, "
                                 f"expected {tt.c, tt.f}")
            return src.read()

    return fetch


def download_image(image, grid: Grid, out_path, *, band_names=None, descriptions=None, dtype="int16", tags=None,
                   max_bytes: int = 16 * 2**20, max_direct_bytes: float = 4 * 2**30, overwrite: bool = True,
                   fetch=None, **kw) -> Path:
    """Download an ``ee.Image`` on ``grid`` to a GeoTIFF, directly (no Drive).

    Masked pixels, and pixels outside the image footprint (``unmask(..., sameFootprint=False)``;
    computePixels would return 0 there), become nodata (-32768 for int16, NaN for float32). ``band_names`` are the
    image's bands (default ``descriptions``), ``descriptions`` the GeoTIFF band descriptions.
    Areas above ``max_direct_bytes`` (uncompressed) raise ValueError pointing to
    :func:`export_to_drive`. ``fetch`` replaces the Earth Engine call (tests).
    """
    descriptions = list(descriptions if descriptions is not None else band_names)
    band_names = list(band_names if band_names is not None else descriptions)
    if len(band_names) != len(descriptions):
        raise ValueError(f"{len(band_names)} band names but {len(descriptions)} descriptions")
    size = estimate_bytes(grid.shape, len(band_names), dtype)
    if size > max_direct_bytes:
        raise ValueError(f"{Path(out_path).name}: {format_bytes(size)} is above the direct-download limit "
                         f"{format_bytes(max_direct_bytes)}; use ltlib.gee.export_to_drive for areas this large")
    if np.dtype(dtype) == np.int16:
        nodata, fill = INT16_FILL, INT16_FILL
        # index x 1000 stays far inside int16; the clamp only guards the nodata value
        prepared = (ee.Image(image).select(band_names).round().clamp(-32767, 32767)
                    .unmask(INT16_FILL, False).toInt16())
    elif np.dtype(dtype) == np.float32:
        nodata, fill = float("nan"), FLOAT_FILL
        prepared = ee.Image(image).select(band_names).toFloat().unmask(FLOAT_FILL, False)
    else:
        raise ValueError(f"dtype must be 'int16' or 'float32', got {dtype!r}")
    if fetch is None:
        fetch = computepixels_fetch(prepared, grid, band_names)
    if np.dtype(dtype) == np.float32:
        raw_fetch = fetch

        def fetch(tile):  # float: turn the unmask fill into NaN before the tile is stored
            arr = np.asarray(raw_fetch(tile), dtype=np.float32)
            return np.where(arr == np.float32(FLOAT_FILL), np.float32(np.nan), arr)

        fill = None
    return download_to_geotiff(fetch, grid, out_path, band_names=descriptions, dtype=dtype, nodata=nodata,
                               fill_value=fill, tags=tags, max_bytes=max_bytes, overwrite=overwrite, **kw)


def export_to_drive(image, grid: Grid, description: str, *, folder: str = "ltlib", file_prefix: str | None = None,
                    wait: bool = True, poll_seconds: float = 30.0, timeout: float | None = None):
    """Export an image on ``grid`` to Google Drive (``ee.batch.Export.image.toDrive``) for
    areas too large to download directly; with ``wait`` poll the task until it finishes.
    Returns the task."""
    task = ee.batch.Export.image.toDrive(
        image=ee.Image(image), description=description, folder=folder, fileNamePrefix=file_prefix or description,
        crs=grid.crs.to_string(), crsTransform=list(grid.transform)[:6], dimensions=f"{grid.width}x{grid.height}",
        maxPixels=int(1e13), fileFormat="GeoTIFF")
    task.start()
    if wait:
        wait_for_task(task, poll_seconds=poll_seconds, timeout=timeout)
    return task


# --- What notebooks call --------------------------------------------------------------------
def _warn_mss_gap(start_year, end_year, llr_asset):
    if start_year < FIRST_TM_YEAR and llr_asset is None:
        last = min(end_year, FIRST_TM_YEAR - 1)
        warnings.warn(f"years {start_year}-{last} (MSS era) have no Collection 2 Level-2 data and are written as "
                      "nodata; pass llr_asset='projects/<you>/assets/LandsatLinkr/<granule>/landtrendr' to fill "
                      "them from LandsatLinkr", stacklevel=3)


def collect_landsat_to_dir(out_dir, *, aoi=None, start_year=config.START_YEAR, end_year=config.END_YEAR,
                           indices=config.SAMPLE_INDICES, llr_asset=None, season=config.SEASON, method="medoid",
                           mask=("cloud", "shadow", "snow"), scale=config.PIXEL_SIZE, crs=None,
                           llr_years=(1972, 2022), **download_kw) -> dict[str, Path]:
    """Build annual composites on Earth Engine and download one stack per index.

    Writes ``<out_dir>/<index lower>.tif`` (int16, index x 1000, nodata -32768, bands
    yrYYYY, tag scale 0.001) on the UTM grid of ``aoi`` (default the seed's Bingham Canyon
    box). MSS years (before 1984) come from the LandsatLinkr asset ``llr_asset`` when given
    (its ``<index>_fit`` for those years, run for ``llr_years``), otherwise they are nodata
    with a warning. Returns {index: path}.
    """
    indices = _indices(indices)
    _check_years(start_year, end_year)
    _warn_mss_gap(start_year, end_year, llr_asset)
    aoi = config.AOI_BBOX if aoi is None else aoi
    grid = grid_for_aoi(aoi, scale=scale, crs=crs)
    out_dir = Path(out_dir)
    tm_start = max(start_year, FIRST_TM_YEAR) if llr_asset is not None else start_year
    composites = None
    if tm_start <= end_year:
        composites = annual_composites(aoi, tm_start, end_year, season=season, index=indices, method=method,
                                       mask=mask)
    paths = {}
    for name in indices:
        parts = []
        if llr_asset is not None and start_year < FIRST_TM_YEAR:
            parts.append(llr_fitted_stack(llr_asset, name, start_year, min(end_year, FIRST_TM_YEAR - 1),
                                          asset_start_year=llr_years[0], asset_end_year=llr_years[1]))
        if composites is not None:
            parts.append(collection_to_stack(composites, tm_start, end_year, band=name))
        image = ee.Image.cat(parts) if len(parts) > 1 else parts[0]
        names = config.year_band_names(range(start_year, end_year + 1))
        paths[name] = download_image(image, grid, out_dir / f"{name.lower()}.tif", band_names=names, dtype="int16",
                                     tags={"name": name, "scale": config.INDICES[name].scale,
                                           "source": "Earth Engine Landsat C2 L2 " + method
                                           + (f" + {llr_asset}" if llr_asset else "")}, **download_kw)
    return paths


def fit_landtrendr_to_dir(out_dir, *, aoi=None, start_year=config.START_YEAR, end_year=config.END_YEAR,
                          index="NDVI", ftv=("NBR", "TCG", "TCW"), change_params=None, season=config.SEASON,
                          method="medoid", mask=("cloud", "shadow", "snow"), scale=config.PIXEL_SIZE, crs=None,
                          llr_asset=None, download_kw=None, **lt_params) -> dict[str, Path]:
    """Run LandTrendr on Earth Engine and download the fitted stacks and the change map.

    Segments ``index`` (distdir from ``config.INDICES``), fits ``index`` and ``ftv`` on its
    vertices, and writes ``<out_dir>/<index lower>_fit.tif`` for each (int16 x 1000, bands
    yrYYYY) and ``change_map.tif`` (float32 bands yod, mag, dur, preval, rate, dsnr; NaN =
    no change). ``lt_params`` override the seed's ``config.LANDTRENDR_PARAMS``;
    ``change_params`` default to the seed's ``config.CHANGE_MAP_PARAMS``. With
    ``llr_asset``, the asset's own LandTrendr result is used instead of a new run (the
    seed's path; it must have been run for ``start_year``..``end_year``). Returns
    {"<INDEX>_fit": path, ..., "change_map": path}.
    """
    index = _indices(index)[0]
    ftv = tuple(n for n in _indices(ftv or (index,)) if n != index)
    _check_years(start_year, end_year)
    params = {**config.LANDTRENDR_PARAMS, **lt_params}
    unknown = set(params) - set(LT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown LandTrendr parameter(s) {sorted(unknown)}; known: {sorted(LT_DEFAULTS)}")
    change = dict(config.CHANGE_MAP_PARAMS if change_params is None else change_params)
    distdir = config.INDICES[index].distdir
    aoi = config.AOI_BBOX if aoi is None else aoi
    grid = grid_for_aoi(aoi, scale=scale, crs=crs)
    if llr_asset is not None:
        lt = ee.Image(llr_asset)
    else:
        _warn_mss_gap(start_year, end_year, None)
        composites = annual_composites(aoi, start_year, end_year, season=season, index=(index, *ftv),
                                       method=method, mask=mask)
        lt = landtrendr(composites, distdir=distdir, **params)
    out_dir = Path(out_dir)
    names = config.year_band_names(range(start_year, end_year + 1))
    kw = dict(download_kw or {})
    paths = {}
    for name in (index, *ftv):
        paths[f"{name}_fit"] = download_image(
            fitted_stack(lt, name, start_year, end_year), grid, out_dir / f"{name.lower()}_fit.tif",
            band_names=names, dtype="int16", tags={"name": f"{name}_fit", "scale": config.INDICES[name].scale}, **kw)
    cmap = change_map(lt, start_year, end_year, distdir=distdir, **change)
    bands = ["yod", "mag", "dur", "preval", "rate", "dsnr"]
    paths["change_map"] = download_image(cmap, grid, out_dir / "change_map.tif", band_names=bands,
                                         dtype="float32", tags={"name": "change_map", "index": index,
                                                                "params": json.dumps(change, default=str)}, **kw)
    return paths


def collect_s1_to_dir(out_dir, *, aoi=None, start=config.S1_START, end=config.S1_END,
                      orbit_pass=config.S1_ORBIT_PASS, relative_orbit=None, scale: float = 10.0, crs=None,
                      **download_kw) -> dict[str, Path]:
    """Download a Sentinel-1 VV/VH time series as ``s1_vv.tif`` and ``s1_vh.tif``.

    float32 linear intensity, one band per acquisition day (band description YYYY-MM-DD),
    NaN = no data, on the UTM grid of ``aoi`` at ``scale`` m. One relative orbit (the
    most frequent over the AOI when ``relative_orbit`` is None), so every image has the
    same viewing geometry, as the omnibus test needs. Returns {"vv": path, "vh": path}.
    """
    aoi = config.AOI_BBOX if aoi is None else aoi
    col = s1_collection(aoi, start, end, orbit_pass=orbit_pass, relative_orbit=relative_orbit)
    if relative_orbit is None:
        relative_orbit = most_frequent_orbit(col)
        print(f"Sentinel-1: relative orbit {relative_orbit} (most scenes over the AOI)")
        col = s1_collection(aoi, start, end, orbit_pass=orbit_pass, relative_orbit=relative_orbit)
    millis = col.aggregate_array("system:time_start").getInfo()
    dates = sorted({_dt.datetime.fromtimestamp(m / 1000, _dt.timezone.utc).date().isoformat() for m in millis})
    if len(dates) < 2:
        raise ValueError(f"Sentinel-1: {len(dates)} acquisition(s) for {start}..{end}, {orbit_pass}, "
                         f"orbit {relative_orbit}; the omnibus test needs at least 2")
    grid = grid_for_aoi(aoi, scale=scale, crs=crs)
    mosaics = s1_daily_mosaics(col, dates)
    band_ids = ["d" + d.replace("-", "") for d in dates]
    out_dir = Path(out_dir)
    paths = {}
    for pol in ("VV", "VH"):
        stack = mosaics.select([pol]).toBands().rename(band_ids)
        paths[pol.lower()] = download_image(stack, grid, out_dir / f"s1_{pol.lower()}.tif", band_names=band_ids,
                                            descriptions=dates, dtype="float32",
                                            tags={"name": f"s1_{pol.lower()}", "units": "linear intensity",
                                                  "relative_orbit": relative_orbit, "orbit_pass": orbit_pass},
                                            **download_kw)
    return paths


def add_year_slider(m, collection, vis: dict, *, start_year: int, end_year: int, name: str = "composite",
                    time_interval: float = 1.0):
    """Show an annual ``ee.ImageCollection`` on a geemap map with a year slider (needs an
    initialised Earth Engine session). Returns the map."""
    labels = [str(y) for y in range(start_year, end_year + 1)]
    m.add_time_slider(ee.ImageCollection(collection), vis, labels=labels, layer_name=name,
                      time_interval=time_interval)
    return m

"""Annual Landsat Collection 2 Level-2 composites on Earth Engine (graph builders, no server call).

Collection 2 scaling, QA_PIXEL masking, OLI->ETM+ harmonisation of Roy et al. 2016 and the
medoid follow the documented behaviour of LT-GEE's ``LandTrendr.js`` (Kennedy et al. 2018;
https://github.com/eMapR/LT-GEE, Apache-2.0, by J. Braaten, Z. Yang, R. Kennedy),
re-implemented here for Collection 2 in Python. Index values are index x 1000
(``config.INDICES[...].scale`` 0.001), as LT-GEE and the sample stacks.

The year and index checks (``_check_years``, ``_indices``) are shared by the other
:mod:`ltlib.gee` modules.
"""
from __future__ import annotations

import datetime as _dt
import re

import ee

from .. import config
from .aoi import aoi_geometry

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
#: Compositing methods of :func:`annual_composites`.
METHODS = ("medoid", "median")
#: Composite date stamp (month, day): mid-season, like LT-GEE.
COMPOSITE_DATE = (8, 1)

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

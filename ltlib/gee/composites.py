"""Annual Landsat Collection 2 Level-2 composites on Earth Engine (graph builders, no server call).

The defaults reproduce LT-GEE v0.2.0 ``LandTrendr.js`` (Kennedy et al. 2018;
https://github.com/eMapR/LT-GEE, Apache-2.0, by J. Braaten, Z. Yang, R. Kennedy,
B. Roberts-Pierel), re-implemented in Python from its code:

- surface reflectance x 10000 cast with ``toUint16()`` (``scaleLTdata``: negative
  reflectance becomes 0); ``sr_type='int16'`` is LandsatLinkr's ``round().int16()``
  (gee-community/ee-LandsatLinkr ``landsatlinkr.py`` ``scaleMask``, Apache-2.0), ``'float'``
  keeps the values uncast;
- no OLI -> ETM+ harmonisation (LT-GEE 0.2.0: "does NOT use the Roy et al. coefficients");
  ``harmonize=True`` applies Roy et al. 2016;
- the named QA masks of ``getSRcollection`` (``cloud`` = QA_PIXEL bit 3 only), LandsatLinkr's
  bits 0-4 as ``mask='llr'``;
- the medoid of ``medoidMosaic``, composites stamped Aug 1;
- the index formulas of ``calcIndex`` on reflectance x 10000: normalised differences x 1000,
  Tasseled Cap (``tcTransform``, Crist 1985) in reflectance x 10000 units, TCA in degrees x 100,
  EVI with LT-GEE's expression, NDFI by spectral unmixing with LT-GEE's endmembers, raw bands.

``EE_INDICES`` gives each index's stored scale and disturbance direction (LT-GEE's
``indexFlipper``). The year and index checks (``_check_years``, ``_indices``) are shared by the
other :mod:`ltlib.gee` modules.
"""
from __future__ import annotations

import math

import ee

from .. import config
from .aoi import aoi_geometry

from ..landsat_c2 import (  # noqa: F401 - shared with the STAC path; re-exported here
    BANDS,
    LT_BAND_NAMES,
    SR_BANDS,
    SENSORS,
    OLI_TO_ETM_SLOPE,
    OLI_TO_ETM_INTERCEPT,
    QA_BITS,
    OTHER_MASKS,
    MASK_PRESETS,
    DEFAULT_MASK,
    SR_TYPES,
    FIRST_TM_YEAR,
    LLR_LAST_MSS_YEAR,
    METHODS,
    COMPOSITE_DATE,
    NDFI_ENDMEMBERS,
    EEIndex,
    EE_INDICES,
    _parse_season,
    _season_crosses_new_year,
    _check_years,
    _mask_names,
    _qa_mask_value,
    _indices,
)
#: LT-GEE's JRC water and Proba-V forest data for the 'waterplus' and 'nonforest' masks.
EE_GSW = "JRC/GSW1_1/GlobalSurfaceWater"
EE_PROBAV_LANDCOVER = "COPERNICUS/Landcover/100m/Proba-V/Global"


def _sr_scaled(img, sensor: str, sr_type: str, harmonize: bool) -> ee.Image:
    # reflectance x 10000 as LT-GEE's scaleLTdata: ((DN * 0.0000275) - 0.2) * 10000
    sr = (img.select(list(SR_BANDS[sensor]), list(BANDS)).multiply(config.C2_SR_SCALE).add(config.C2_SR_OFFSET)
          .multiply(10000))
    if harmonize and sensor in ("LC08", "LC09"):
        sr = sr.subtract(ee.Image.constant([v * 10000 for v in OLI_TO_ETM_INTERCEPT])).divide(
            ee.Image.constant(list(OLI_TO_ETM_SLOPE)))
    if sr_type == "uint16":
        return sr.toUint16()  # LT-GEE: negative reflectance becomes 0 (cast clamps), fractions truncated
    if sr_type == "int16":
        return sr.round().toInt16()  # LandsatLinkr scaleMask: rounded, negatives kept
    return sr


def _other_masks(img, scene, names) -> ee.Image:
    """``img`` masked by LT-GEE's waterplus / nonforest data and the scene's QA_RADSAT, as named."""
    if "saturated" in names:
        img = img.updateMask(scene.select("QA_RADSAT").eq(0))
    if "waterplus" in names:
        # LT-GEE: 'recurrence > 99 ? 0 : 1' as a mask; recurrence is masked where water was
        # never seen, which LT-GEE's expression turns into masked (removed) land: ltlib keeps it
        img = img.updateMask(ee.Image(EE_GSW).select("recurrence").unmask(0).lte(99))
    if "nonforest" in names:  # LT-GEE: 'Band >= 0 ? 1 : 0' on the 2015 forest type (masked off forest)
        img = img.updateMask(ee.ImageCollection(EE_PROBAV_LANDCOVER).toBands().select("2015_forest_type").gte(0))
    return img


def prepare_c2_image(img, sensor: str, mask=DEFAULT_MASK, *, sr_type: str = "uint16",
                     harmonize: bool = False) -> ee.Image:
    """One Collection 2 Level-2 scene -> surface reflectance x 10000, bands BANDS.

    Scaling ``(DN * 0.0000275 - 0.2) * 10000`` stored as ``sr_type`` (LT-GEE: ``uint16``,
    negative reflectance -> 0); OLI/OLI-2 converted to ETM+ reflectance (Roy et al. 2016)
    only with ``harmonize``; pixels flagged by ``mask`` (names or a preset, see
    ``MASK_PRESETS``) masked. Keeps ``system:time_start``.
    """
    if sensor not in SR_BANDS:
        raise ValueError(f"unknown sensor {sensor!r}; choose from {SENSORS}")
    if sr_type not in SR_TYPES:
        raise ValueError(f"sr_type must be one of {SR_TYPES}, got {sr_type!r}")
    img = ee.Image(img)
    names = _mask_names(mask)
    sr = _sr_scaled(img, sensor, sr_type, harmonize)
    qa_bits = _qa_mask_value(names)
    if qa_bits:
        sr = sr.updateMask(img.select("QA_PIXEL").bitwiseAnd(qa_bits).eq(0))
    sr = _other_masks(sr, img, names)
    return ee.Image(sr.copyProperties(img, ["system:time_start"]))


def _exclude_filters(exclude):
    """LT-GEE's ``exclude`` ({'imgIds': [...], 'slcOff': bool}) -> a list of ee.Filter."""
    if exclude is None:
        return []
    if not isinstance(exclude, dict) or set(exclude) - {"imgIds", "slcOff"}:
        raise ValueError(f"exclude must be a dict with keys 'imgIds' (scene IDs) and/or 'slcOff' (bool), as "
                         f"LT-GEE's; got {exclude!r}")
    ids = exclude.get("imgIds") or []
    if isinstance(ids, str):
        raise ValueError(f"exclude['imgIds'] must be a list of scene IDs, got the string {ids!r}")
    out = []
    if ids:
        # LT-GEE matches the last path part against system:index (LC08_046028_20170815)
        out.append(ee.Filter.inList("system:index", [str(i).split("/")[-1] for i in ids]).Not())
    if exclude.get("slcOff"):
        out.append(ee.Filter.neq("SPACECRAFT_ID", "LANDSAT_7"))  # LT-GEE drops every Landsat 7 scene
    return out


def landsat_sr_collection(aoi, start_year: int, end_year: int, *, mask=DEFAULT_MASK, sensors=SENSORS,
                          season=config.SEASON, sr_type: str = "uint16", harmonize: bool = False,
                          exclude=None) -> ee.ImageCollection:
    """All TM/ETM+/OLI scenes over the AOI in the years (and the season's previous year when
    the season crosses New Year), as masked reflectance x 10000 (bands BANDS).

    ``exclude``: LT-GEE's option, ``{'imgIds': [scene IDs], 'slcOff': True}`` (slcOff drops
    every Landsat 7 scene, as LT-GEE does).
    """
    _check_years(start_year, end_year)
    first = start_year - 1 if _season_crosses_new_year(season) else start_year
    names = _mask_names(mask)
    filters = _exclude_filters(exclude)
    geom = aoi_geometry(aoi)
    merged = None
    for sensor in sensors:
        if sensor not in SR_BANDS:
            raise ValueError(f"unknown sensor {sensor!r}; choose from {SENSORS}")
        col = (ee.ImageCollection(config.EE_LANDSAT_C2_L2[sensor])
               .filterBounds(geom)
               .filterDate(f"{first}-01-01", f"{end_year + 1}-01-01"))
        for f in filters:
            col = col.filter(f)
        col = col.map(lambda img, s=sensor: prepare_c2_image(img, s, names, sr_type=sr_type, harmonize=harmonize))
        merged = col if merged is None else merged.merge(col)
    if merged is None:
        raise ValueError("sensors: give at least one of " + ", ".join(SENSORS))
    return merged


def _empty_image() -> ee.Image:
    # A fully masked image: keeps a year with no scene in the series (masked, not missing).
    return ee.Image.constant([0.0] * len(BANDS)).rename(list(BANDS)).toFloat().updateMask(ee.Image.constant(0))


def medoid(collection) -> ee.Image:
    """Per pixel, the observation closest (sum of squared differences over BANDS) to the
    per-band median: a real observation, robust to residual clouds (LT-GEE's ``medoidMosaic``)."""
    collection = ee.ImageCollection(collection)
    median = collection.median()

    def _dist(img):
        img = ee.Image(img)
        return img.subtract(median).pow(2).reduce(ee.Reducer.sum()).rename("dist").addBands(img)

    n = len(BANDS) + 1
    return (ee.ImageCollection(collection.map(_dist)).reduce(ee.Reducer.min(n))
            .rename(["dist", *BANDS]).select(list(BANDS)))


def _ndfi(img) -> ee.Image:
    # LT-GEE ndfiTransform (from CODED): unmix into GV, shade, NPV, soil, cloud (sum to one,
    # non-negative), NDFI = (GV/(1 - shade) - (NPV + soil)) / (GV/(1 - shade) + NPV + soil)
    ends = [list(NDFI_ENDMEMBERS[k]) for k in ("gv", "shade", "npv", "soil", "cloud")]
    f = img.select(list(BANDS)).unmix(ends, True, True).rename(["gv", "shade", "npv", "soil", "cloud"])
    gvs = f.select("gv").divide(ee.Image.constant(1).subtract(f.select("shade")))
    other = f.select("npv").add(f.select("soil"))
    return gvs.subtract(other).divide(gvs.add(other))


def index_image(img, index: str) -> ee.Image:
    """One index (float, band named after it) from reflectance x 10000 (bands BANDS), with
    LT-GEE's ``calcIndex`` formulas and units (``EE_INDICES``): normalised differences and
    EVI x 1000, Tasseled Cap in reflectance x 10000 units, TCA degrees x 100, raw bands as
    they are."""
    img = ee.Image(img)
    index = _indices(index)[0]
    nd = {"NDVI": ("nir", "red"), "NBR": ("nir", "swir2"), "NDMI": ("nir", "swir1"), "NBR2": ("swir1", "swir2"),
          "NDSI": ("green", "swir1")}
    if index in nd:
        out = img.normalizedDifference(list(nd[index])).multiply(1000)
    elif index in ("TCB", "TCG", "TCW"):  # tcTransform: coefficients on reflectance x 10000, no rescaling
        out = img.select(list(BANDS)).multiply(ee.Image.constant(list(config.TC_COEFFS[index]))).reduce(
            ee.Reducer.sum())
    elif index == "TCA":
        tcb, tcg = index_image(img, "TCB"), index_image(img, "TCG")
        out = tcg.divide(tcb).atan().multiply(180 / math.pi).multiply(100)
    elif index == "EVI":  # eviTransform, with its '+ 1' on x 10000 bands (see docs/earth_engine.md)
        nir, red, blue = img.select("nir"), img.select("red"), img.select("blue")
        out = (nir.subtract(red).divide(nir.add(red.multiply(6)).subtract(blue.multiply(7.5)).add(1))
               .multiply(2.5).multiply(1000))
    elif index == "NDFI":
        out = _ndfi(img).multiply(1000)
    else:  # raw band (B1..B7), as float like calcIndex
        out = img.select([LT_BAND_NAMES[index]]).toFloat()
    return out.rename(index)


def annual_composites(aoi, start_year: int, end_year: int, *, season=config.SEASON, index="NDVI",
                      method="medoid", mask=DEFAULT_MASK, sensors=SENSORS, sr_type: str = "uint16",
                      harmonize: bool = False, exclude=None) -> ee.ImageCollection:
    """One composite per year of Landsat Collection 2 Level-2 TM/ETM+/OLI over ``aoi``.

    Parameters
    ----------
    aoi : ``ee.Geometry``, (west, south, east, north) degrees, GeoJSON dict or file path.
    start_year, end_year : inclusive. Years with no scene give a fully masked image.
    season : ('MM-DD', 'MM-DD') window each year, end exclusive (LT-GEE); a window that
        crosses New Year (compared as month and day) starts in the previous year.
    index : index name or several (one band each, named after the index), see ``EE_INDICES``.
    method : 'medoid' (LT-GEE) or 'median' (per band).
    mask : mask names (``QA_BITS``, ``OTHER_MASKS``) or a preset of ``MASK_PRESETS``;
        default LT-GEE's ('cloud', 'shadow', 'snow'), cloud = QA_PIXEL bit 3.
    sensors : default ``SENSORS`` (Landsat 4 TM to 9).
    sr_type : 'uint16' (LT-GEE: negative reflectance -> 0), 'int16' (LandsatLinkr: rounded)
        or 'float' (uncast).
    harmonize : OLI -> ETM+ (Roy et al. 2016); off as in LT-GEE 0.2.0 and LandsatLinkr.
    exclude : LT-GEE's ``{'imgIds': [...], 'slcOff': bool}``.

    Returns an ``ee.ImageCollection`` ordered by year with ``system:time_start`` (Aug 1 of
    the year) and ``year`` set.
    """
    _check_years(start_year, end_year)
    (m0, d0), (m1, d1) = _parse_season(season)
    indices = _indices(index)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    scenes = landsat_sr_collection(aoi, start_year, end_year, mask=mask, sensors=sensors, season=season,
                                   sr_type=sr_type, harmonize=harmonize, exclude=exclude)
    crosses = _season_crosses_new_year(season)
    empty = ee.ImageCollection([_empty_image()])

    def _year(y):
        y = ee.Number(y)
        start = ee.Date.fromYMD(y.subtract(1) if crosses else y, m0, d0)
        end = ee.Date.fromYMD(y, m1, d1)
        window = scenes.filterDate(start, end).merge(empty)
        refl = medoid(window) if method == "medoid" else window.median().select(list(BANDS))
        if sr_type == "uint16":
            refl = refl.toUint16()  # as LT-GEE's buildMosaic
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

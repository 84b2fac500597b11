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

import datetime as _dt
import math
import re
from dataclasses import dataclass

import ee

from .. import config
from .aoi import aoi_geometry

#: Reflectance band names of the composites, in LT-GEE's order (B1, B2, B3, B4, B5, B7).
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
#: LT-GEE's names of BANDS (its raw-band "indices").
LT_BAND_NAMES = dict(zip(("B1", "B2", "B3", "B4", "B5", "B7"), BANDS))
#: Collection 2 Level-2 surface reflectance bands, in the order of BANDS.
SR_BANDS = {
    "LT04": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LT05": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LE07": ("SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"),
    "LC08": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
    "LC09": ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"),
}
#: Sensors read by default: Landsat 4 TM (from 1982-08, as LandsatLinkr and geemap) to 9 OLI-2.
SENSORS = ("LT04", "LT05", "LE07", "LC08", "LC09")
#: OLI -> ETM+ reflectance: etm = (oli - intercept) / slope, reduced-major-axis coefficients of
#: Roy et al. 2016 (RSE 185:57, Table 2), bands blue..swir2; only with ``harmonize=True``.
OLI_TO_ETM_SLOPE = (0.9785, 0.9542, 0.9825, 1.0073, 1.0171, 0.9949)
OLI_TO_ETM_INTERCEPT = (-0.0095, -0.0016, -0.0022, -0.0021, -0.0030, 0.0029)
#: QA_PIXEL bits (Landsat Collection 2): what each mask name removes. LT-GEE's names
#: (cloud, shadow, snow, water) use one bit each, as its ``getSRcollection``.
QA_BITS = {
    "fill": (0,),
    "dilated_cloud": (1,),
    "cirrus": (2,),  # OLI only; 0 elsewhere
    "cloud": (3,),
    "shadow": (4,),
    "snow": (5,),
    "water": (7,),
}
#: Masks from other data than QA_PIXEL: LT-GEE's 'waterplus' (JRC Global Surface Water
#: recurrence > 99 %) and 'nonforest' (Copernicus Proba-V 2015 forest type), and
#: 'saturated' (QA_RADSAT != 0, as Earth Engine's Collection 2 example).
OTHER_MASKS = ("waterplus", "nonforest", "saturated")
#: Named mask sets: LT-GEE's runLT default, LandsatLinkr's QA_PIXEL bits 0-4, and Earth
#: Engine's Collection 2 example (bits 0-4 and QA_RADSAT).
MASK_PRESETS = {
    "lt-gee": ("cloud", "shadow", "snow"),
    "llr": ("fill", "dilated_cloud", "cirrus", "cloud", "shadow"),
    "ee-example": ("fill", "dilated_cloud", "cirrus", "cloud", "shadow", "saturated"),
}
#: Default mask (LT-GEE ``runLT``'s maskThese).
DEFAULT_MASK = MASK_PRESETS["lt-gee"]
#: How reflectance x 10000 is stored before indices are computed (see the module docstring).
SR_TYPES = ("uint16", "int16", "float")
#: First year with Collection 2 Level-2 TM data (Landsat 4 from 1982-08); earlier years need a
#: LandsatLinkr asset.
FIRST_TM_YEAR = 1982
#: Last year LandsatLinkr takes from MSS (it runs TM composites from 1984).
LLR_LAST_MSS_YEAR = 1983
#: Compositing methods of :func:`annual_composites`.
METHODS = ("medoid", "median")
#: Composite date stamp (month, day), UTC. LT-GEE's ``new Date(year, 8, 1)`` is 1 September
#: (JavaScript months start at 0), LandsatLinkr's 1 June; LandTrendr uses only the year.
COMPOSITE_DATE = (8, 1)
#: LT-GEE's JRC water and Proba-V forest data for the 'waterplus' and 'nonforest' masks.
EE_GSW = "JRC/GSW1_1/GlobalSurfaceWater"
EE_PROBAV_LANDCOVER = "COPERNICUS/Landcover/100m/Proba-V/Global"
#: NDFI endmembers of LT-GEE's ``ndfiTransform`` (from CODED), reflectance x 10000, bands B1..B7.
NDFI_ENDMEMBERS = {
    "gv": (500, 900, 400, 6100, 3000, 1000),
    "shade": (0, 0, 0, 0, 0, 0),
    "npv": (1400, 1700, 2200, 3000, 5500, 3000),
    "soil": (2000, 3000, 3400, 5800, 6000, 5800),
    "cloud": (9000, 9600, 8000, 7800, 7200, 6500),
}


@dataclass(frozen=True)
class EEIndex:
    """An index of the Earth Engine composites: stored value x ``scale`` = physical value,
    ``distdir`` = LT-GEE's ``indexFlipper`` (-1: disturbance lowers it)."""

    name: str
    scale: float
    distdir: int
    description: str


EE_INDICES = {i.name: i for i in (
    EEIndex("NDVI", 0.001, -1, "(nir - red) / (nir + red) x 1000"),
    EEIndex("NBR", 0.001, -1, "(nir - swir2) / (nir + swir2) x 1000"),
    EEIndex("NDMI", 0.001, -1, "(nir - swir1) / (nir + swir1) x 1000"),
    EEIndex("NBR2", 0.001, -1, "(swir1 - swir2) / (swir1 + swir2) x 1000 (LT-GEE has no flip; -1 here)"),
    EEIndex("NDSI", 0.001, -1, "(green - swir1) / (green + swir1) x 1000"),
    EEIndex("EVI", 0.001, -1, "LT-GEE: 2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1) x 1000, bands x 10000"),
    EEIndex("TCB", 0.0001, 1, "Tasseled Cap brightness, reflectance x 10000 units"),
    EEIndex("TCG", 0.0001, -1, "Tasseled Cap greenness, reflectance x 10000 units"),
    EEIndex("TCW", 0.0001, -1, "Tasseled Cap wetness, reflectance x 10000 units"),
    EEIndex("TCA", 0.01, -1, "Tasseled Cap angle atan(TCG / TCB), degrees x 100"),
    EEIndex("NDFI", 0.001, -1, "normalised difference fraction index (unmixing) x 1000 (LT-GEE has no flip)"),
    *(EEIndex(b, 0.0001, -1 if b == "B4" else 1, f"surface reflectance x 10000 of {n}")
      for b, n in LT_BAND_NAMES.items()),
)}

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


def _season_crosses_new_year(season) -> bool:
    """True when the window runs into the next calendar year (compared as (month, day), so
    ('12-20', '12-10') crosses; LT-GEE compares months only)."""
    start, end = _parse_season(season)
    return start > end


def _check_years(start_year, end_year):
    if int(start_year) != start_year or int(end_year) != end_year:
        raise ValueError(f"years must be integers, got {start_year!r}, {end_year!r}")
    if not 1972 <= start_year <= end_year:
        raise ValueError(f"need 1972 <= start_year <= end_year, got {start_year}..{end_year}")


def _mask_names(mask) -> tuple[str, ...]:
    """A preset name ('lt-gee', 'llr', 'ee-example') or mask names -> validated names."""
    if isinstance(mask, str):
        if mask not in MASK_PRESETS:
            raise ValueError(f"mask {mask!r}: a preset is one of {sorted(MASK_PRESETS)}; or give mask names "
                             f"from {sorted(QA_BITS) + list(OTHER_MASKS)}")
        return MASK_PRESETS[mask]
    names = tuple(str(m).lower() for m in (mask or ()))
    unknown = [m for m in names if m not in QA_BITS and m not in OTHER_MASKS]
    if unknown:
        raise ValueError(f"unknown mask name(s) {unknown}; choose from {sorted(QA_BITS) + list(OTHER_MASKS)} "
                         f"or a preset {sorted(MASK_PRESETS)}")
    return names


def _qa_mask_value(mask) -> int:
    value = 0
    for name in _mask_names(mask):
        for bit in QA_BITS.get(name, ()):
            value |= 1 << bit
    return value


def _indices(index) -> tuple[str, ...]:
    names = (index,) if isinstance(index, str) else tuple(index)
    if not names:
        raise ValueError("index: give at least one index name")
    out = []
    for n in names:
        n = str(n).upper()
        if n not in EE_INDICES:
            raise ValueError(f"unknown index {n!r}; choose from {sorted(EE_INDICES)}")
        out.append(n)
    return tuple(out)


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

"""Landsat Collection 2 Level-2 definitions shared by every path that builds annual composites.

The Earth Engine graphs (:mod:`ltlib.gee.composites`) and the STAC path (:mod:`ltlib.stac`)
import the same band names, QA_PIXEL mask bits and presets, season window, medoid, index
formulas and units from here, so the two cannot drift apart. The names and defaults
reproduce LT-GEE v0.2.0 ``LandTrendr.js`` (Kennedy et al. 2018; https://github.com/eMapR/LT-GEE,
Apache-2.0), see :mod:`ltlib.gee.composites`.

The array functions work on numpy or dask arrays of shape (..., 6, H, W) (bands ``BANDS``)
holding surface reflectance x 10000, NaN where an observation is masked:
:func:`sr_from_dn`, :func:`qa_clear`, :func:`medoid`, :func:`median`, :func:`index_array`,
:func:`round_half_away`.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass

import numpy as np

from . import config

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




def season_window(year: int, season=config.SEASON) -> tuple[_dt.date, _dt.date]:
    """The compositing window of ``year``: (first day, day after the last), end exclusive as
    LT-GEE's ``filterDate``; a season that crosses New Year starts in ``year - 1``."""
    (m0, d0), (m1, d1) = _parse_season(season)
    start = _dt.date(year - 1 if _season_crosses_new_year(season) else year, m0, d0)
    return start, _dt.date(year, m1, d1)


# --------------------------------------------------------------------------- array definitions
def _xp(a):
    if type(a).__module__.startswith("dask"):
        import dask.array as da

        return da
    return np


def qa_clear(qa, mask=DEFAULT_MASK):
    """bool (..., H, W): True where QA_PIXEL ``qa`` has none of the bits of ``mask`` (names or
    a preset of ``MASK_PRESETS``) set, as the Earth Engine path's ``updateMask``. The masks of
    ``OTHER_MASKS`` are not in QA_PIXEL: see :func:`ltlib.stac.landsat.check_mask`."""
    bits = _qa_mask_value(mask)
    return (qa.astype(np.uint32) & np.uint32(bits)) == 0


def sr_from_dn(dn, scale, offset, *, sr_type: str = "uint16", oli_harmonize: bool = False):
    """Collection 2 Level-2 DN (..., 6, H, W) -> surface reflectance x 10000, float64, NaN kept.

    ``((dn * scale) + offset) * 10000`` in that order (the Earth Engine path's ``multiply``,
    ``add``, ``multiply``), ``scale`` and ``offset`` scalars or (6, 1, 1) arrays from the
    assets' ``raster:bands``; ``oli_harmonize`` converts OLI to ETM+ reflectance (Roy et al.
    2016, ``OLI_TO_ETM_*``); then cast as ``sr_type``: 'uint16' truncated and clamped to
    0..65535 (LT-GEE ``toUint16``: negative reflectance becomes 0), 'int16' rounded then
    clamped (LandsatLinkr), 'float' as computed.

    References
    ----------
    Roy, D.P. et al. 2016. Characterization of Landsat-7 to Landsat-8 reflective wavelength and
    normalized difference vegetation index continuity. Remote Sens. Environ. 185, 57-70.
    """
    if sr_type not in SR_TYPES:
        raise ValueError(f"sr_type must be one of {SR_TYPES}, got {sr_type!r}")
    xp = _xp(dn)
    sr = ((dn.astype(np.float64) * scale) + offset) * 10000
    if oli_harmonize:
        shape = (len(BANDS), 1, 1)
        sr = (sr - np.reshape([v * 10000 for v in OLI_TO_ETM_INTERCEPT], shape)) / np.reshape(OLI_TO_ETM_SLOPE, shape)
    if sr_type == "uint16":
        return xp.clip(xp.trunc(sr), 0, 65535)
    if sr_type == "int16":
        return xp.clip(xp.round(sr), -32768, 32767)
    return sr


def medoid(obs: np.ndarray) -> np.ndarray:
    """Per pixel, the observation closest to the per-band median (LT-GEE's ``medoidMosaic``).

    Parameters
    ----------
    obs : numpy array (N, B, H, W)
        N observations in the order the Earth Engine path merges them (sensor by sensor in
        ``SENSORS`` order, each by date); NaN where masked.

    Returns
    -------
    numpy array (B, H, W), float64
        The observation with the smallest sum over bands of squared differences to the
        per-band median of the unmasked observations; of equal distances the first wins;
        only observations with every band unmasked are candidates; NaN where none is.
    """
    obs = np.asarray(obs, dtype=np.float64)
    n, b = obs.shape[:2]
    out = np.full(obs.shape[1:], np.nan)
    if n == 0:
        return out
    with np.errstate(all="ignore"):
        med = _nanmedian0(obs)
        dist = np.zeros((n, *obs.shape[2:]))
        for k in range(b):  # summed band after band, as Earth Engine's Reducer.sum: ties stay ties
            dist = dist + (obs[:, k] - med[k]) ** 2  # NaN where any band is masked
    dist = np.where(np.isnan(dist), np.inf, dist)
    best = np.argmin(dist, axis=0)  # first of equal minima
    chosen = np.take_along_axis(obs, best[None, None], axis=0)[0]
    ok = np.isfinite(np.take_along_axis(dist, best[None], axis=0)[0])
    out[:, ok] = chosen[:, ok]
    return out


def median(obs: np.ndarray) -> np.ndarray:
    """Per band, the median of the unmasked observations (N, B, H, W) -> (B, H, W), NaN where none."""
    return _nanmedian0(np.asarray(obs, dtype=np.float64))


def _nanmedian0(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, axis=0)``, the same values, without its masked-array path (slow for
    the few observations of a year): sort (NaN last), take the middle one or the mean of
    the middle two of the k finite values."""
    s = np.sort(a, axis=0)
    k = np.isfinite(a).sum(axis=0)
    lo = np.take_along_axis(s, np.maximum(k - 1, 0)[None] // 2, axis=0)[0]
    hi = np.take_along_axis(s, (k // 2)[None], axis=0)[0]
    with np.errstate(all="ignore"):
        out = np.where(k % 2 == 1, lo, (lo + hi) / 2)
    return np.where(k > 0, out, np.nan)


#: Normalised differences: index -> (first band, second band).
ND_BANDS = {"NDVI": ("nir", "red"), "NBR": ("nir", "swir2"), "NDMI": ("nir", "swir1"), "NBR2": ("swir1", "swir2"),
            "NDSI": ("green", "swir1")}


def index_array(refl, index: str):
    """One index from a composite's reflectance x 10000 (6, H, W) (bands ``BANDS``), in the
    units of ``EE_INDICES`` (the Earth Engine path's :func:`ltlib.gee.composites.index_image`):
    normalised differences and EVI x 1000, Tasseled Cap in reflectance x 10000 units, TCA
    degrees x 100, raw bands as they are. Float; NaN where the composite is NaN.
    NDFI (spectral unmixing) is only built on Earth Engine."""
    index = _indices(index)[0]
    band = {b: refl[i] for i, b in enumerate(BANDS)}
    with np.errstate(all="ignore"):
        if index in ND_BANDS:
            a, b = (band[k] for k in ND_BANDS[index])
            # Earth Engine's normalizedDifference is a float32 band
            return ((a - b) / (a + b)).astype(np.float32).astype(np.float64) * 1000
        if index in ("TCB", "TCG", "TCW"):
            return sum(c * band[b] for c, b in zip(config.TC_COEFFS[index], BANDS))
        if index == "TCA":
            return np.arctan(index_array(refl, "TCG") / index_array(refl, "TCB")) * (180 / math.pi) * 100
        if index == "EVI":
            nir, red, blue = band["nir"], band["red"], band["blue"]
            return (nir - red) / (nir + red * 6 - blue * 7.5 + 1) * 2.5 * 1000
        if index == "NDFI":
            raise ValueError("index NDFI (spectral unmixing with LT-GEE's endmembers) is built on Earth Engine "
                             "only; choose from " + ", ".join(i for i in EE_INDICES if i != "NDFI"))
        return band[LT_BAND_NAMES[index]] * 1.0

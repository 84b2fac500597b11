"""Annual Landsat composites from a STAC catalog of Collection 2 Level-2 COGs (odc-stac, dask).

The same composites as the Earth Engine path (:mod:`ltlib.gee.composites`), from the same
definitions (:mod:`ltlib.landsat_c2`): the DN of each asset scaled with the ``scale`` and
``offset`` of its ``raster:bands`` (odc-stac returns raw values, odc-stac issue 55) as
``((DN * scale) + offset) * 10000`` cast like LT-GEE (``sr_type``), OLI optionally harmonised
to ETM+ (Roy et al. 2016), QA_PIXEL masks by the same names and presets, observations merged
sensor by sensor in ``SENSORS`` order and by date (the Earth Engine path's merge order, which
decides ties of the medoid), the season window (across New Year as there), the medoid (or
median) and the indices in ``EE_INDICES`` units.

Each year is a lazy odc-stac load (``groupby`` solar day, within a sensor) on one UTM grid at
30 m (:func:`ltlib.areas.grid_for_bounds`, the Earth Engine path's grid), in dask chunks,
computed chunk by chunk; asset URLs are signed when the year is read (Planetary Computer),
and a failed read is retried with a renewed signature.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config
from ..areas import area_bounds, grid_for_bounds, utm_zones
from ..io import Grid, write_json, write_stack
from ..landsat_c2 import (
    BANDS,
    DEFAULT_MASK,
    EE_INDICES,
    FIRST_TM_YEAR,
    METHODS,
    OTHER_MASKS,
    SENSORS,
    _check_years,
    _indices,
    _mask_names,
    _qa_mask_value,
    index_array,
    medoid,
    median,
    season_window,
    sr_from_dn,
)
from .search import LANDSAT_COLLECTION, PC_STAC_URL, StacError, check_assets, default_signer, find_items, with_retries

#: Asset keys of Collection 2 Level-2 items (Planetary Computer, Earth Search, USGS), bands BANDS.
SR_ASSETS = ("blue", "green", "red", "nir08", "swir16", "swir22")
QA_ASSET = "qa_pixel"
RADSAT_ASSET = "qa_radsat"
#: STAC ``platform`` -> the sensor codes of ``SENSORS``.
PLATFORMS = {"landsat-4": "LT04", "landsat-5": "LT05", "landsat-7": "LE07", "landsat-8": "LC08",
             "landsat-9": "LC09"}
#: Chunk side (px) of the lazy loads: a year's N observations x 6 bands x 512^2 px as float64
#: is ~300 MB for N = 24 (a year of two sensors over two overlapping paths), so a few threads
#: stay well below the 3 GB goal while a chunk's reads are large enough to be efficient.
CHUNK_PX = 512


def sensor_of(item) -> str | None:
    """``LT05`` etc. from an item's ``platform`` (None for another platform)."""
    return PLATFORMS.get(str(item.properties.get("platform", "")).lower())


def _scale_offset(item, key) -> tuple[float, float, float | None]:
    """(scale, offset, nodata) of an asset from its ``raster:bands`` (1, 0, None when absent)."""
    rb = (item.assets[key].extra_fields.get("raster:bands") or [{}])[0]
    return float(rb.get("scale", 1.0)), float(rb.get("offset", 0.0)), rb.get("nodata")


@dataclass
class Composites:
    """Annual composites of one area from STAC.

    Attributes
    ----------
    stacks : {index: int16 (T, H, W)}
        Index values in ``EE_INDICES`` units (NDVI x 1000, Tasseled Cap x 10000 ...), rounded
        and clamped to +-32767 as the Earth Engine download; ``config.NODATA_INT16`` where a
        year has no clear observation (:meth:`float_stack` gives float32 with NaN). int16
        halves the memory of a large area (50 x 50 km x 40 years: 222 MB per index).
    years : int (T,)
    grid : ltlib.io.Grid
    info : dict
        ``stac_url``, ``collection``, ``n_items`` per year, ``n_observations`` per year,
        ``clear_fraction`` per year, ``gap_years`` (no clear observation anywhere), ``notes``.
    """

    stacks: dict
    years: np.ndarray
    grid: Grid
    info: dict = field(default_factory=dict)

    def float_stack(self, index: str) -> np.ndarray:
        """float32 (T, H, W) of ``index`` with NaN where there is no value."""
        a = self.stacks[index]
        return np.where(a == config.NODATA_INT16, np.float32(np.nan), a.astype(np.float32))


def check_mask(mask) -> tuple[str, ...]:
    """Mask names of the STAC path: QA_PIXEL names and 'saturated' (QA_RADSAT); LT-GEE's
    'waterplus' and 'nonforest' need Earth Engine data sets and are refused."""
    names = _mask_names(mask)
    ee_only = [m for m in names if m in OTHER_MASKS and m != "saturated"]
    if ee_only:
        raise ValueError(f"mask {', '.join(ee_only)} uses Earth Engine data sets (JRC water, Proba-V forest); on the "
                         "STAC path choose QA_PIXEL masks, 'saturated' or a preset")
    return names


def _group_key(lon: float):
    """odc-stac groupby: (sensor rank, solar day at ``lon``) so a year's observations come
    sensor by sensor (``SENSORS`` order) and by date, as the Earth Engine path merges them."""

    def key(item, parsed, idx):
        return SENSORS.index(sensor_of(item)), parsed.solar_date_at(lon).date()

    return key


def _year_block(*arrays, scale, offset, nodata, oli, mask_bits, saturated, sr_type, harmonize, method, indices):
    """One chunk of one year, in numpy: the assets' DN (N, h, w) each (``SR_ASSETS``, QA_PIXEL,
    QA_RADSAT if ``saturated``) -> indices (len(indices), h, w) float64 in ``EE_INDICES`` units.

    The steps of the Earth Engine path, in its order: scale and cast (``sr_from_dn``, OLI
    harmonised when asked), QA and fill masks, medoid or median, ``toUint16`` of the
    composite, indices. One task per chunk keeps dask's overhead below the reading time."""
    dn = np.stack(arrays[:len(SR_ASSETS)], axis=1)  # (N, 6, h, w)
    qa = arrays[len(SR_ASSETS)]
    sr = sr_from_dn(dn, scale, offset, sr_type=sr_type)
    if harmonize and oli.any():  # OLI slots converted to ETM+ reflectance (Roy et al. 2016)
        sr[oli] = sr_from_dn(dn[oli], scale[oli], offset[oli], sr_type=sr_type, oli_harmonize=True)
    bad = (qa.astype(np.uint32) & np.uint32(mask_bits)) != 0
    if saturated:
        bad |= arrays[len(SR_ASSETS) + 1] != 0
    for b, nd in enumerate(nodata):
        if nd is not None:
            bad |= dn[:, b] == nd
    sr[np.broadcast_to(bad[:, None], sr.shape)] = np.nan
    refl = medoid(sr) if method == "medoid" else median(sr)
    if sr_type == "uint16":  # as the Earth Engine path's buildMosaic: toUint16 after compositing
        refl = np.clip(np.trunc(refl), 0, 65535)
    return np.stack([index_array(refl, i) for i in indices])


def _year_lazy(items, grid: Grid, *, mask, sr_type, harmonize, method, indices, chunk_px, patch_url):
    """Lazy (len(indices), H, W) float64 composite indices of one year's items, and the number
    of observations (solar days, per sensor)."""
    import dask.array as da
    import odc.stac
    from odc.geo.geobox import GeoBox

    lon = (grid.bounds_lonlat()[0] + grid.bounds_lonlat()[2]) / 2
    names = check_mask(mask)
    assets = [*SR_ASSETS, QA_ASSET] + ([RADSAT_ASSET] if "saturated" in names else [])
    gbox = GeoBox((grid.height, grid.width), grid.transform, grid.crs.to_wkt())
    key = _group_key(lon)
    ds = odc.stac.load(items, bands=assets, geobox=gbox, groupby=key,
                       chunks={"time": -1, "x": chunk_px, "y": chunk_px}, resampling="nearest", patch_url=patch_url,
                       fail_on_error=True)
    # the group of each time slot, in odc-stac's order (sorted keys)
    groups: dict = {}
    for it in items:
        groups.setdefault(key(it, _parsed(it), 0), []).append(it)
    slots = [groups[k] for k in sorted(groups)]
    scale = np.empty((len(slots), len(BANDS), 1, 1))
    offset = np.empty_like(scale)
    for i, grp in enumerate(slots):
        so = [[_scale_offset(it, a)[:2] for a in SR_ASSETS] for it in grp]
        if any(s != so[0] for s in so):
            raise StacError(f"items {', '.join(it.id for it in grp)} of one day have different raster:bands scale/"
                            "offset; they cannot be mosaicked as one observation")
        scale[i, :, 0, 0], offset[i, :, 0, 0] = np.array(so[0]).T
    nodata = [_scale_offset(slots[0][0], a)[2] for a in SR_ASSETS]
    oli = np.array([sensor_of(g[0]) in ("LC08", "LC09") for g in slots])
    arrays = [ds[a].data.rechunk({0: -1}) for a in assets]
    out = da.map_blocks(_year_block, *arrays, drop_axis=0, new_axis=0, chunks=((len(indices),), *arrays[0].chunks[1:]),
                        dtype=np.float64, meta=np.array((), np.float64), scale=scale, offset=offset, nodata=nodata,
                        oli=oli, mask_bits=_qa_mask_value(names), saturated="saturated" in names, sr_type=sr_type,
                        harmonize=harmonize, method=method, indices=tuple(indices))
    return out, len(slots)


def _parsed(item):
    from odc.stac import parse_item

    return parse_item(item)


def landsat_composites(aoi, start_year: int, end_year: int, *, stac_url=PC_STAC_URL, indices=config.SAMPLE_INDICES,
                       season=config.SEASON, method: str = "medoid", mask=DEFAULT_MASK, sensors=SENSORS,
                       sr_type: str = "uint16", harmonize: bool = False, scale: float = config.PIXEL_SIZE,
                       crs=None, collection: str = LANDSAT_COLLECTION, signer="default", chunk_px: int = CHUNK_PX,
                       retries: int = 4, backoff: float = 2.0, sleep=time.sleep, progress: bool = True) -> Composites:
    """Annual composites of Landsat Collection 2 Level-2 from a STAC API or static catalog.

    Parameters
    ----------
    aoi : (west, south, east, north) degrees, GeoJSON dict or GeoJSON file.
    start_year, end_year : inclusive. Years before 1982 have no Collection 2 Level-2 data:
        one line says so and the stacks start in 1982.
    stac_url : a STAC API root (default Planetary Computer's) or a local ``catalog.json``.
    indices, season, method, mask, sensors, sr_type, harmonize :
        as :func:`ltlib.gee.composites.annual_composites` (mask: QA_PIXEL names,
        'saturated' or a preset; NDFI is not available here).
    scale, crs : the grid: ``scale`` m on the UTM zone of the area's centre (or ``crs``); an
        area across two zones is put on one, with a line that says which.
    collection : the STAC collection (Planetary Computer: ``landsat-c2-l2``).
    signer : "default" (Planetary Computer's SAS signing for its URL, none elsewhere), None,
        or a callable href -> href, optionally with ``renew()`` (called after a failed read).
    chunk_px : dask chunk side of the lazy loads.
    retries, backoff, sleep : network retries (see :func:`ltlib.stac.search.with_retries`).

    Returns
    -------
    Composites
    """
    _check_years(start_year, end_year)
    indices = _indices(indices)
    if "NDFI" in indices:
        index_array(np.zeros((6, 1, 1)), "NDFI")  # raises the clear error
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    names = check_mask(mask)
    sensors = tuple(sensors)
    unknown = [s for s in sensors if s not in SENSORS]
    if unknown:
        raise ValueError(f"unknown sensor(s) {unknown}; choose from {SENSORS}")
    notes: list[str] = []
    if start_year < FIRST_TM_YEAR:
        line = (f"years {start_year}-{min(end_year, FIRST_TM_YEAR - 1)} have no Collection 2 Level-2 data (Landsat 4 "
                f"TM starts in {FIRST_TM_YEAR}; MSS needs a LandsatLinkr asset on Earth Engine): using "
                f"{FIRST_TM_YEAR}-{end_year}")
        if end_year < FIRST_TM_YEAR:
            raise ValueError(line.split(":")[0] + f": choose years from {FIRST_TM_YEAR}")
        print(line)
        notes.append(line)
        start_year = FIRST_TM_YEAR
    bounds = area_bounds(aoi)
    zones = utm_zones(bounds)
    grid = grid_for_bounds(bounds, scale=scale, crs=crs)
    if crs is None and len(zones) > 1:
        line = (f"the area spans UTM zones {', '.join(zones)}: all of it is put on {grid.crs.to_string()} (the zone of "
                "its centre); pass crs= to choose another")
        print(line)
        notes.append(line)
    sign = default_signer(stac_url) if signer == "default" else signer
    years = np.arange(start_year, end_year + 1)
    first, _ = season_window(int(years[0]), season)
    _, last = season_window(int(years[-1]), season)
    items = find_items(stac_url, collection, bounds, first, last, retries=retries, backoff=backoff, sleep=sleep)
    n_all = len(items)
    other = [it for it in items if sensor_of(it) not in sensors]
    tier2 = [it for it in items if sensor_of(it) in sensors
             and str(it.properties.get("landsat:collection_category", "T1")).upper() != "T1"]
    items = [it for it in items if sensor_of(it) in sensors and it not in tier2]
    if other or tier2:
        line = (f"{len(tier2)} Tier 2 item(s) left out (the Earth Engine path reads Tier 1), {len(other)} item(s) of "
                f"other platforms than {', '.join(sensors)}")
        notes.append(line)
        print(line)
    if not items:
        raise StacError(f"no items of {collection} at {stac_url} for the area {tuple(round(v, 5) for v in bounds)} "
                        f"in {start_year}-{end_year} (season {season[0]}..{season[1]}; {n_all} item(s) before "
                        f"filtering by sensor and tier)")
    check_assets(items, [*SR_ASSETS, QA_ASSET] + ([RADSAT_ASSET] if "saturated" in names else []), collection,
                 stac_url)
    out = {i: np.full((len(years), grid.height, grid.width), config.NODATA_INT16, np.int16) for i in indices}
    info = {"stac_url": str(stac_url), "collection": collection, "n_items": {}, "n_observations": {},
            "clear_fraction": {}, "gap_years": [], "notes": notes}
    for t, year in enumerate(years):
        start, end = season_window(int(year), season)
        start_s, end_s = str(start), str(end)
        year_items = [it for it in items if start_s <= it.datetime.date().isoformat() < end_s]
        info["n_items"][int(year)] = len(year_items)
        if not year_items:
            info["n_observations"][int(year)], info["clear_fraction"][int(year)] = 0, 0.0
            info["gap_years"].append(int(year))
            continue

        def compute(year_items=year_items):
            lazy, n_obs = _year_lazy(year_items, grid, mask=names, sr_type=sr_type, harmonize=harmonize,
                                     method=method, indices=indices, chunk_px=chunk_px, patch_url=sign)
            return lazy.compute(), n_obs

        def renew(err, sign=sign):
            if sign is not None and hasattr(sign, "renew"):
                sign.renew()

        with warnings.catch_warnings():  # reader threads leave a global 'ignore' filter behind: restored on exit
            values, n_obs = with_retries(f"reading the {year} assets of {collection} from {stac_url}", compute,
                                         retries=retries, backoff=backoff, sleep=sleep, on_failure=renew)
        for k, name in enumerate(indices):  # rounded in float64 and clamped as the int16 download is
            v = np.clip(np.round(values[k]), -32767, 32767)
            out[name][t] = np.where(np.isfinite(v), v, config.NODATA_INT16)
        clear = float(np.isfinite(values[0]).mean())
        info["n_observations"][int(year)], info["clear_fraction"][int(year)] = n_obs, round(clear, 6)
        if clear == 0:
            info["gap_years"].append(int(year))
        if progress:
            print(f"{year}: {len(year_items)} item(s), {n_obs} observation(s), {100 * clear:.1f} % of pixels clear")
    if info["gap_years"]:
        line = (f"{len(info['gap_years'])} year(s) with no clear observation over the area, kept as gaps: "
                f"{', '.join(map(str, info['gap_years']))}")
        print(line)
        notes.append(line)
    return Composites(out, years, grid, info)


def collect_landsat_to_dir(out_dir, *, aoi=None, start_year=config.START_YEAR, end_year=config.END_YEAR,
                           indices=config.SAMPLE_INDICES, **kw) -> dict[str, Path]:
    """:func:`landsat_composites`, written as ``<out_dir>/<index lower>.tif`` (int16, nodata
    -32768, bands yrYYYY, tag ``scale`` of ``EE_INDICES``: the files the Earth Engine path
    writes) and ``<out_dir>/stac_summary.json`` (the composites' ``info``). Returns
    {index: path, "summary": path}."""
    aoi = config.AOI_BBOX if aoi is None else aoi
    comp = landsat_composites(aoi, start_year, end_year, indices=indices, **kw)
    out_dir = Path(out_dir)
    paths = {}
    for name in comp.stacks:  # one index at a time in float32 (a large area: block by block from int16)
        target = out_dir / f"{name.lower()}.tif"
        if comp.stacks[name].size * 4 > config.IN_MEMORY_MAX_BYTES:
            import dask.array as da

            from .. import blocks

            lazy = da.from_array(comp.stacks[name], chunks=(-1, blocks.CHUNK_PX, blocks.CHUNK_PX))
            data = da.where(lazy == config.NODATA_INT16, np.float32(np.nan), lazy.astype(np.float32))
            paths[name] = blocks.write_stack(target, data, comp.years, comp.grid, dtype="int16", name=name,
                                             scale=EE_INDICES[name].scale)
        else:
            paths[name] = write_stack(target, comp.float_stack(name), comp.years, comp.grid, dtype="int16",
                                      name=name, scale=EE_INDICES[name].scale)
    paths["summary"] = write_json(out_dir / "stac_summary.json", comp.info | {"years": comp.years.tolist()})
    return paths

"""What the notebooks call: composites, LandTrendr and Sentinel-1 from Earth Engine to a folder.

Each function builds the graph (:mod:`~ltlib.gee.composites`, :mod:`~ltlib.gee.llr`,
:mod:`~ltlib.gee.landtrendr`, :mod:`~ltlib.gee.sentinel1`) and downloads it with
:func:`ltlib.gee.download.download_image` as GeoTIFF stacks that :mod:`ltlib.io` reads.
The download goes through the module (``download.download_image``), so tests can replace
``ltlib.gee.download.download_image`` or ``ltlib.gee.download.computepixels_fetch``.
"""
from __future__ import annotations

import datetime as _dt
import json
import warnings
from pathlib import Path

import ee

from .. import config
from . import download
from .aoi import grid_for_aoi
from .composites import (
    DEFAULT_MASK,
    EE_INDICES,
    FIRST_TM_YEAR,
    LLR_LAST_MSS_YEAR,
    SENSORS,
    _check_years,
    _indices,
    annual_composites,
    collection_to_stack,
)
from .landtrendr import change_map_image, fitted_stack, landtrendr
from .llr import LLR_DEFAULT_FTV, LLR_DISTDIR, LLR_SEGMENT_INDEX, LLR_YEARS, check_llr_indices, llr_fitted_stack
from .sentinel1 import most_frequent_orbit, s1_collection, s1_daily_mosaics


def _warn_mss_gap(start_year, end_year, what):
    if start_year < FIRST_TM_YEAR:
        last = min(end_year, FIRST_TM_YEAR - 1)
        warnings.warn(f"years {start_year}-{last} (MSS era) have no Collection 2 Level-2 data: {what}; pass "
                      "llr_asset='projects/<you>/assets/LandsatLinkr/<granule>/landtrendr' to fill them from "
                      "LandsatLinkr", stacklevel=3)


def _tags(name, **more):
    return {"name": name, "scale": EE_INDICES[name.split("_")[0]].scale, **more}


def collect_landsat_to_dir(out_dir, *, aoi=None, start_year=config.START_YEAR, end_year=config.END_YEAR,
                           indices=config.SAMPLE_INDICES, llr_asset=None, season=config.SEASON, method="medoid",
                           mask=DEFAULT_MASK, scale=config.PIXEL_SIZE, crs=None, llr_years=LLR_YEARS,
                           llr_ftv=LLR_DEFAULT_FTV, sensors=SENSORS, sr_type="uint16", harmonize=False,
                           exclude=None, **download_kw) -> dict[str, Path]:
    """Build annual composites on Earth Engine and download one stack per index.

    Writes ``<out_dir>/<index lower>.tif`` (int16, nodata -32768, bands yrYYYY, tag
    ``scale`` from ``EE_INDICES``: NDVI x 1000, Tasseled Cap reflectance x 10000, as LT-GEE)
    on the UTM grid of ``aoi`` (default the seed's Bingham Canyon box). The composite options
    (``season``, ``method``, ``mask``, ``sensors``, ``sr_type``, ``harmonize``, ``exclude``)
    are those of :func:`annual_composites`, LT-GEE's by default.

    MSS years: with ``llr_asset`` the years up to 1983 come from the LandsatLinkr asset (its
    ``<index>_fit``, run for ``llr_years`` with FTV bands ``llr_ftv``; an index it does not
    hold is a ValueError), as LandsatLinkr splices MSS and TM; without, years before 1982
    have no data and are nodata (with a warning), 1982-1983 come from Landsat 4 TM.
    Returns {index: path}.
    """
    indices = _indices(indices)
    _check_years(start_year, end_year)
    use_llr = llr_asset is not None and start_year <= LLR_LAST_MSS_YEAR
    if use_llr:
        check_llr_indices(indices, llr_ftv)
    else:
        _warn_mss_gap(start_year, end_year, "they are written as nodata")
    aoi = config.AOI_BBOX if aoi is None else aoi
    grid = grid_for_aoi(aoi, scale=scale, crs=crs)
    out_dir = Path(out_dir)
    tm_start = max(start_year, LLR_LAST_MSS_YEAR + 1) if use_llr else start_year
    composites = None
    if tm_start <= end_year:
        composites = annual_composites(aoi, tm_start, end_year, season=season, index=indices, method=method,
                                       mask=mask, sensors=sensors, sr_type=sr_type, harmonize=harmonize,
                                       exclude=exclude)
    paths = {}
    for name in indices:
        parts = []
        if use_llr:
            parts.append(llr_fitted_stack(llr_asset, name, start_year, min(end_year, LLR_LAST_MSS_YEAR),
                                          asset_start_year=llr_years[0], asset_end_year=llr_years[1],
                                          llr_ftv=llr_ftv))
        if composites is not None:
            parts.append(collection_to_stack(composites, tm_start, end_year, band=name))
        image = ee.Image.cat(parts) if len(parts) > 1 else parts[0]
        names = config.year_band_names(range(start_year, end_year + 1))
        tags = _tags(name, source="Earth Engine Landsat C2 L2 " + method + (f" + {llr_asset}" if use_llr else ""))
        paths[name] = download.download_image(image, grid, out_dir / f"{name.lower()}.tif", band_names=names,
                                              dtype="int16", tags=tags, **download_kw)
    return paths


def fit_landtrendr_to_dir(out_dir, *, aoi=None, start_year=config.START_YEAR, end_year=config.END_YEAR,
                          index="NDVI", ftv=None, params=None, loss=None, gain=None,
                          season=config.SEASON, method="medoid", mask=DEFAULT_MASK,
                          scale=config.PIXEL_SIZE, crs=None, llr_asset=None, llr_ftv=LLR_DEFAULT_FTV,
                          extrapolated="nodata", sensors=SENSORS, sr_type="uint16", harmonize=False, exclude=None,
                          download_kw=None) -> dict[str, Path]:
    """Run LandTrendr on Earth Engine and download the fitted stacks and the loss and gain maps.

    Segments ``index`` (distdir from ``EE_INDICES``, LT-GEE's ``indexFlipper``), fits
    ``index`` and ``ftv`` on its vertices, and writes ``<out_dir>/<index lower>_fit.tif`` for
    each (int16, bands yrYYYY, units of ``EE_INDICES``), ``loss_map.tif`` and ``gain_map.tif``
    (float32 bands yod, mag, dur, preval, rate, dsnr; NaN = no change; tag ``delta``), the
    same files as the local :func:`ltlib.landtrendr.fit_scene`. Change-map thresholds are in
    the index's Earth Engine units (e.g. TCB x 10000).

    Parameters
    ----------
    ftv : indices fitted on the vertices; default ('NBR', 'TCG', 'TCW'), with ``llr_asset``
        the asset's ``llr_ftv``.
    params : ltlib.params.LandTrendrParams, optional
        runParams (default: the seed's). Its :meth:`~ltlib.params.LandTrendrParams.to_ee` form
        is what the server receives.
    loss, gain : ltlib.params.ChangeMapParams, optional
        Default ``ChangeMapParams.loss()`` and ``ChangeMapParams.gain()``.
    llr_asset : str, optional
        A LandsatLinkr ``landtrendr`` asset: its own LandTrendr run (NDVI x -1, int16) is used
        instead of a new one. Then ``index`` must be 'NDVI', ``params`` must be None (the run
        is done), ``ftv`` must be among ``llr_ftv`` (the FTV bands it was run with); NDVI's
        own fitted stack is written only if 'NDVI' is among them (LandsatLinkr does not store
        the segmented band's fit), else a warning says it is not.
    extrapolated : 'nodata' (default) masks the years before a pixel's first and after its
        last observation (e.g. 1972-1981 without an asset), 'keep' keeps LandTrendr's flat
        extension (LT-GEE ``getFittedData``).

    Returns
    -------
    dict
        ``{"<INDEX>_fit": path, ..., "loss_map": path, "gain_map": path}``.
    """
    from ..params import ChangeMapParams, LandTrendrParams

    index = _indices(index)[0]
    _check_years(start_year, end_year)
    if params is not None and not isinstance(params, LandTrendrParams):
        raise TypeError(f"params must be a ltlib.params.LandTrendrParams, got {type(params).__name__}")
    maps_ = {"loss": loss or ChangeMapParams.loss(), "gain": gain or ChangeMapParams.gain()}
    for delta, p in maps_.items():
        if not isinstance(p, ChangeMapParams) or p.delta != delta:
            raise ValueError(f"{delta} must be a ChangeMapParams with delta={delta!r}, got {p!r}")
    aoi = config.AOI_BBOX if aoi is None else aoi
    grid = grid_for_aoi(aoi, scale=scale, crs=crs)
    if llr_asset is not None:
        if index != LLR_SEGMENT_INDEX:
            raise ValueError(f"index {index!r}: a LandsatLinkr asset segments NDVI x -1 whatever its FTV bands; "
                             "use index='NDVI' (its ftv bands are fitted on the NDVI vertices)")
        if params is not None:
            raise ValueError(f"params: llr_asset {llr_asset} holds a finished LandTrendr run (its runParams were "
                             "set in LandsatLinkr); pass params=None, or run LandTrendr here without llr_asset")
        ftv = check_llr_indices(ftv if ftv is not None else llr_ftv, llr_ftv, what="ftv")
        fits = tuple(n for n in ftv if n != index)
        if index in ftv:
            fits = (index, *fits)
        else:
            warnings.warn(f"llr_asset {llr_asset} has no ndvi_fit (its FTV bands are {tuple(llr_ftv)}): "
                          f"{index.lower()}_fit.tif is not written; the change maps use its NDVI segmentation",
                          stacklevel=2)
        distdir = LLR_DISTDIR
        lt = ee.Image(llr_asset)
    else:
        ftv = tuple(n for n in _indices(ftv if ftv is not None else ("NBR", "TCG", "TCW")) if n != index)
        fits = (index, *ftv)
        if extrapolated == "nodata":
            _warn_mss_gap(start_year, end_year, "their fitted values (LandTrendr's flat extension) are written "
                                                "as nodata")
        else:
            _warn_mss_gap(start_year, end_year, "their fitted values are LandTrendr's flat extension "
                                                "(extrapolated='keep')")
        distdir = EE_INDICES[index].distdir
        composites = annual_composites(aoi, start_year, end_year, season=season, index=(index, *ftv),
                                       method=method, mask=mask, sensors=sensors, sr_type=sr_type,
                                       harmonize=harmonize, exclude=exclude)
        lt = landtrendr(composites, distdir=distdir, **(params or LandTrendrParams()).as_dict())
    out_dir = Path(out_dir)
    names = config.year_band_names(range(start_year, end_year + 1))
    kw = dict(download_kw or {})
    paths = {}
    for name in fits:
        paths[f"{name}_fit"] = download.download_image(
            fitted_stack(lt, name, start_year, end_year, extrapolated=extrapolated), grid,
            out_dir / f"{name.lower()}_fit.tif", band_names=names, dtype="int16", tags=_tags(name) | {
                "name": f"{name}_fit"}, **kw)
    bands = ["yod", "mag", "dur", "preval", "rate", "dsnr"]
    for delta, p in maps_.items():
        image = change_map_image(lt, start_year, end_year, distdir=distdir, **p.as_dict())
        paths[f"{delta}_map"] = download.download_image(
            image, grid, out_dir / f"{delta}_map.tif", band_names=bands, dtype="float32",
            tags={"name": f"{delta}_map", "delta": delta, "index": index, "engine": "earth_engine",
                  "index_scale": EE_INDICES[index].scale, "params": json.dumps(p.as_dict(), default=str)}, **kw)
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
        paths[pol.lower()] = download.download_image(
            stack, grid, out_dir / f"s1_{pol.lower()}.tif", band_names=band_ids, descriptions=dates, dtype="float32",
            tags={"name": f"s1_{pol.lower()}", "units": "linear intensity", "relative_orbit": relative_orbit,
                  "orbit_pass": orbit_pass}, **download_kw)
    return paths

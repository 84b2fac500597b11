"""LandTrendr on Earth Engine (graph builders): the run, its input, fitted stacks, the change map.

:func:`landtrendr` calls ``ee.Algorithms.TemporalSegmentation.LandTrendr`` with the
parameters of :func:`ltlib.landtrendr.segment`; :func:`change_map_image` is LT-GEE's
``getChangeMap`` on the server with the options of :func:`ltlib.landtrendr.change_map`
(which works on local arrays and returns a dict of bands: another contract, hence the name).
"""
from __future__ import annotations

import ee

from .. import config
from ..params import LandTrendrParams
from .composites import _check_years

#: Keywords of :func:`landtrendr` and their Earth Engine defaults (as :func:`ltlib.landtrendr.segment`).
LT_DEFAULTS = LandTrendrParams.gee_defaults().as_dict()


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
    # one validated definition: the same object the local port is called with
    args = LandTrendrParams(max_segments=max_segments, spike_threshold=spike_threshold,
                            vertex_count_overshoot=vertex_count_overshoot,
                            prevent_one_year_recovery=prevent_one_year_recovery,
                            recovery_threshold=recovery_threshold, pval_threshold=pval_threshold,
                            best_model_proportion=best_model_proportion,
                            min_observations_needed=min_observations_needed).to_ee()

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
# Rows of the segment table built in change_map_image.
_SEG_ROWS = ("start_year", "end_year", "preval", "mag", "dur", "rate", "dsnr")


def change_map_image(lt_image, start_year: int, end_year: int, *, delta="loss", sort="greatest", year_range=None,
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

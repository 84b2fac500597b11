"""LandTrendr on Earth Engine (graph builders): the run, its input, fitted stacks, the change map.

:func:`landtrendr` calls ``ee.Algorithms.TemporalSegmentation.LandTrendr`` with the
parameters of :func:`ltlib.landtrendr.segment`; :func:`change_map_image` is LT-GEE's
``getChangeMap`` on the server with the options of :func:`ltlib.landtrendr.change_map`
(which works on local arrays and returns a dict of bands: another contract, hence the name).
"""
from __future__ import annotations

import ee

from .. import config
from ..params import MMU_MODES, LandTrendrParams, check_distdir
from .composites import EE_INDICES, _check_years

#: Keywords of :func:`landtrendr` and their Earth Engine defaults (as :func:`ltlib.landtrendr.segment`).
LT_DEFAULTS = LandTrendrParams.gee_defaults().as_dict()


def landtrendr(collection, *, max_segments=6, spike_threshold=0.9, vertex_count_overshoot=3,
               prevent_one_year_recovery=False, recovery_threshold=0.25, pval_threshold=0.1,
               best_model_proportion=0.75, min_observations_needed=6, distdir=None, index=None) -> ee.Image:
    """Run ``ee.Algorithms.TemporalSegmentation.LandTrendr`` on an annual collection.

    The collection's first band is segmented after multiplying by ``distdir`` (LandTrendr
    expects disturbance to increase the value; -1 for NDVI/NBR/TCG/TCW, +1 for TCB). Every
    band (the first included, in its original orientation) is also fitted on the same
    vertices and returned as ``<band lower>_fit``, the layout of LandsatLinkr assets.

    Parameters are those of :func:`ltlib.landtrendr.segment` (GEE defaults), validated the
    same way; ``index`` (a name of ``EE_INDICES``) sets ``distdir`` and warns when a given
    ``distdir`` contradicts it; without either, ``distdir`` is -1.

    Returns the LandTrendr image: ``LandTrendr`` array (4 x years: year, source x distdir,
    fitted x distdir, is-vertex), ``rmse``, and ``<band>_fit`` arrays.
    """
    distdir = check_distdir(distdir, index, EE_INDICES)
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


def _fit_band_pattern(band: str) -> str:
    # ltlib/LandsatLinkr name the FTV output '<band>_fit', LT-GEE 'ftv_<band>_fit': select
    # takes a regular expression, so one pattern reads either
    return f"(ftv_)?{band.lower()}_fit"


def observed_years(lt_image) -> ee.Image:
    """Bands ``first`` and ``last``: the first and last year with an observation in a
    LandTrendr image's ``LandTrendr`` array (columns of year 0, LandsatLinkr's padding,
    are skipped)."""
    lt = ee.Image(lt_image).select("LandTrendr")
    yrs = lt.arraySlice(0, 0, 1)
    yrs = yrs.arrayMask(yrs.gt(0))
    first = yrs.arrayReduce(ee.Reducer.min(), [1]).arrayProject([0]).arrayFlatten([["first"]])
    last = yrs.arrayReduce(ee.Reducer.max(), [1]).arrayProject([0]).arrayFlatten([["last"]])
    return first.addBands(last)


#: What :func:`fitted_stack` writes for years LandTrendr had no observation for.
EXTRAPOLATED = ("nodata", "keep")


def fitted_stack(lt_image, band: str, start_year: int, end_year: int, *, extrapolated: str = "keep") -> ee.Image:
    """The ``<band>_fit`` (or LT-GEE's ``ftv_<band>_fit``) array of a LandTrendr image
    flattened to bands yrYYYY (LT-GEE ``getFittedData``).

    ``extrapolated='keep'`` keeps LandTrendr's flat extension before a pixel's first and
    after its last observation (LT-GEE); ``'nodata'`` masks those years (e.g. 1972-1981 of a
    run without MSS data).
    """
    if extrapolated not in EXTRAPOLATED:
        raise ValueError(f"extrapolated must be one of {EXTRAPOLATED}, got {extrapolated!r}")
    names = config.year_band_names(range(start_year, end_year + 1))
    lt_image = ee.Image(lt_image)
    flat = lt_image.select([_fit_band_pattern(band)]).arrayFlatten([names])
    if extrapolated == "keep":
        return flat
    seen = observed_years(lt_image)
    bands = [flat.select([n]).updateMask(seen.select("first").lte(y).And(seen.select("last").gte(y)))
             for n, y in zip(names, range(start_year, end_year + 1))]
    return ee.Image.cat(bands)


_SORTS = ("greatest", "least", "newest", "oldest", "fastest", "slowest")
# Rows of the segment table of LT-GEE's getSegmentData (loss/gain: values in the index's
# orientation, mag/rate/dsnr absolute).
SEGMENT_ROWS = ("start_year", "end_year", "preval", "postval", "mag", "dur", "rate", "dsnr")
_OPS = ("<", ">")


def segment_data(lt_image, delta: str = "all", *, distdir: int = -1) -> ee.Image:
    """LT-GEE ``getSegmentData``: an array image (8 x segments) with rows ``SEGMENT_ROWS``.

    ``delta='all'`` keeps every segment in LandTrendr's orientation (disturbance up, as
    LT-GEE without ``right``); 'loss'/'gain' keep the segments of that direction with
    start/end values in the index's orientation and mag, rate, dsnr absolute.
    """
    if delta not in ("all", "loss", "gain"):
        raise ValueError(f"delta must be 'all', 'loss' or 'gain', got {delta!r}")
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")
    lt_image = ee.Image(lt_image)
    lt = lt_image.select("LandTrendr")
    vertices = lt.arrayMask(lt.arraySlice(0, 3, 4))  # keep the vertex columns
    left, right = vertices.arraySlice(1, 0, -1), vertices.arraySlice(1, 1)
    start_year, end_year = left.arraySlice(0, 0, 1), right.arraySlice(0, 0, 1)
    start_val, end_val = left.arraySlice(0, 2, 3), right.arraySlice(0, 2, 3)
    dur = end_year.subtract(start_year)
    mag = end_val.subtract(start_val)
    rate = mag.divide(dur)
    dsnr = mag.divide(lt_image.select("rmse"))
    if delta == "all":
        return ee.Image.cat([start_year, end_year, start_val, end_val, mag, dur, rate, dsnr]).toArray(0)
    keep = mag.gt(0) if delta == "loss" else mag.lt(0)
    parts = [start_year, end_year, start_val.multiply(distdir), end_val.multiply(distdir), mag.abs(), dur,
             rate.abs(), dsnr.abs()]
    return ee.Image.cat([p.arrayMask(keep) for p in parts]).toArray(0)


def segment_count(segments) -> ee.Image:
    """LT-GEE ``getSegmentCount``: the number of segments (columns) of :func:`segment_data`
    per pixel, band ``segCount`` (uint8)."""
    return ee.Image(segments).arrayLength(1).rename("segCount").toUint8()


def segment_stack(lt_image, delta: str = "loss", *, max_segments: int = 6, distdir: int = -1) -> ee.Image:
    """Every segment of :func:`segment_data` as plain bands, for a download or export:
    ``<row>_<k>`` for ``k`` = 1..``max_segments`` in time order (rows ``SEGMENT_ROWS``;
    missing segments masked) and ``segCount`` (:func:`segment_count`).

    ``max_segments`` should be the run's ``maxSegments`` (a pixel has at most that many);
    a pixel with more segments raises no error, its later ones are not in the stack.
    """
    if int(max_segments) != max_segments or max_segments < 1:
        raise ValueError(f"max_segments must be a positive integer, got {max_segments!r}")
    n = int(max_segments)
    seg = segment_data(lt_image, delta, distdir=distdir)
    labels = [list(SEGMENT_ROWS), [str(k) for k in range(1, n + 1)]]
    flat = seg.arrayPad([len(SEGMENT_ROWS), n], 0).arraySlice(1, 0, n).arrayFlatten(labels)
    count = segment_count(seg)
    bands = []
    for k in range(1, n + 1):  # padded columns (start year 0) are no segment
        names = [f"{r}_{k}" for r in SEGMENT_ROWS]
        bands.append(flat.select(names).updateMask(flat.select(f"start_year_{k}").gt(0)))
    return ee.Image.cat([*bands, count])


def _check_op(name, op):
    if op not in _OPS:
        raise ValueError(f"{name} must be '<' or '>', got {op!r}")


def change_map_image(lt_image, start_year: int, end_year: int, *, delta="loss", sort="greatest", year_range=None,
                     mag_min=None, dur_max=None, preval_min=None, mmu=None, distdir=-1, mmu_mode="any",
                     mag_op=">", dur_op="<", preval_op=">", dsnr_min=None) -> ee.Image:
    """LT-GEE ``getChangeMap`` computed on the server, with the options of the local
    :func:`ltlib.landtrendr.change_map`.

    Segments between consecutive vertices (:func:`segment_data`): start/end year,
    ``preval`` (fitted value at the start, original orientation), ``mag`` = |end - start|,
    ``dur`` years, ``rate`` = mag / dur, ``dsnr`` = mag / rmse. Keep loss (``delta='loss'``:
    the index moves in the disturbance direction) or gain segments, then those with
    ``year_range[0] <= yod <= year_range[1]``, ``mag > mag_min``, ``dur < dur_max``,
    ``preval > preval_min`` (``mag_op``, ``dur_op``, ``preval_op`` turn each into '<' or '>',
    LT-GEE's ``operator``) and ``dsnr > dsnr_min`` (LT-GEE's mag filter with ``dsnr: true``);
    sort (greatest/least magnitude, newest/oldest start, fastest/slowest = shortest/longest
    duration) and take the first. ``yod`` = start year + 1. Pixels with no such segment are
    masked.

    ``mmu`` (pixels, 8-connected): with ``mmu_mode='any'`` (LT-GEE) a pixel is kept when its
    patch of changed pixels of any year has at least ``mmu`` pixels; ``'same_year'`` counts
    patches of one yod. Pixels are counted on the grid the image is computed on (the
    download grid; LT-GEE reprojects to 30 m).

    ``start_year``/``end_year`` are the years of the LandTrendr series (they bound
    ``year_range``). Returns bands yod (int16, as LT-GEE), mag, dur, preval, rate, dsnr
    (float), in the units of the fitted index; cast to one type before exporting
    (:func:`ltlib.gee.export_to_drive` does).
    """
    _check_years(start_year, end_year)
    if delta not in ("loss", "gain"):
        raise ValueError(f"delta must be 'loss' or 'gain', got {delta!r}")
    if sort not in _SORTS:
        raise ValueError(f"sort must be one of {_SORTS}, got {sort!r}")
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")
    if mmu_mode not in MMU_MODES:
        raise ValueError(f"mmu_mode must be one of {MMU_MODES}, got {mmu_mode!r}")
    for name, op in (("mag_op", mag_op), ("dur_op", dur_op), ("preval_op", preval_op)):
        _check_op(name, op)
    if year_range is not None:
        y0, y1 = (int(v) for v in year_range)
        if y0 > y1:
            raise ValueError(f"year_range must be (first, last), got {year_range!r}")
        if y1 < start_year + 1 or y0 > end_year:
            raise ValueError(f"year_range {year_range!r} does not overlap the series {start_year}-{end_year}")
    if mmu is not None and (int(mmu) != mmu or not 1 <= mmu <= 1024):
        raise ValueError(f"mmu must be an integer number of pixels in 1..1024 (connectedPixelCount's limit), "
                         f"got {mmu!r}")
    if dur_max is not None and dur_max <= 0:
        raise ValueError(f"dur_max must be positive years, got {dur_max}")

    table = segment_data(lt_image, delta, distdir=distdir)  # (8, n_segments)

    def row(name):
        i = SEGMENT_ROWS.index(name)
        return table.arraySlice(0, i, i + 1)

    def compare(name, op, value):
        return row(name).gt(float(value)) if op == ">" else row(name).lt(float(value))

    table = table.arrayMask(row("mag").gt(0))
    if year_range is not None:
        yod = row("start_year").add(1)
        table = table.arrayMask(yod.gte(y0).And(yod.lte(y1)))
    if mag_min is not None:
        table = table.arrayMask(compare("mag", mag_op, mag_min))
    if dsnr_min is not None:
        table = table.arrayMask(compare("dsnr", ">", dsnr_min))
    if dur_max is not None:
        table = table.arrayMask(compare("dur", dur_op, dur_max))
    if preval_min is not None:
        table = table.arrayMask(compare("preval", preval_op, preval_min))
    key = {"greatest": row("mag").multiply(-1), "least": row("mag"), "newest": row("start_year").multiply(-1),
           "oldest": row("start_year"), "fastest": row("dur"), "slowest": row("dur").multiply(-1)}[sort]
    # A sentinel column (mag 0, sorted last) keeps the array non-empty where no segment is
    # left, so the pixel comes out masked instead of failing arrayFlatten.
    sentinel = ee.Image(ee.Array([[0.0]] * len(SEGMENT_ROWS)))
    table = table.arrayCat(sentinel, 1)
    key = key.arrayCat(ee.Image(ee.Array([[1e30]])), 1)
    first = table.arraySort(key).arraySlice(1, 0, 1).arrayProject([0]).arrayFlatten([list(SEGMENT_ROWS)])
    out = ee.Image.cat([first.select("start_year").add(1).toInt16().rename("yod"),
                        first.select(["mag", "dur", "preval", "rate", "dsnr"])])
    out = out.updateMask(out.select("mag").gt(0))
    if mmu is not None and mmu > 1:
        # LT-GEE apply_mmu: yod.gte(1).selfMask().connectedPixelCount() >= mmu; maxSize = mmu
        # gives the same test for mmu <= 100 (LT-GEE's default maxSize 100 drops every patch
        # when mmu > 100)
        patches = out.select("yod").gte(1).selfMask() if mmu_mode == "any" else out.select("yod")
        out = out.updateMask(patches.connectedPixelCount(int(mmu), True).gte(int(mmu)))
    return out

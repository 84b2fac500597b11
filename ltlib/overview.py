"""Small views of large rasters: overviews, colour stretches and single pixels, read lazily.

A Landsat scene (7,000 x 7,000 px) opened lazily (:mod:`ltlib.blocks`, dask) cannot be turned
into one PNG: the array alone is 200 MB per band and the PNG would not fit in a notebook.
Maps and figures therefore draw an *overview* of at most ``config.MAX_OVERLAY_PX`` px a side:

- a dask array is reduced block by block (each block read once, only the reduced blocks are
  gathered): a NaN-aware mean of ``f x f`` pixels for continuous values, the pixel nearest
  each ``f x f`` block's centre for classes (a mean of classes is no class);
- a GeoTIFF written by :mod:`ltlib.blocks` already holds overviews (2x .. 64x): with its
  ``path`` the finest level small enough is read directly, no full-resolution pixel at all;
- a numpy array no larger than ``max_px`` is returned unchanged (the sample keeps its exact
  pixels), a larger one is reduced as a dask array would be (same function, same result).

The overview's :class:`~ltlib.io.Grid` has pixels ``f`` times larger with the same origin; its
last row and column cover up to ``f - 1`` px beyond the raster (they are the mean, or the
nearest pixel, of the part that exists). :func:`pixel_series` and :func:`pixel_value` read one
pixel (one chunk of a dask array), for the inspector.
"""
from __future__ import annotations

import math

import numpy as np

from . import config
from .io import Grid


def _max_px(max_px) -> int:
    max_px = config.MAX_OVERLAY_PX if max_px is None else max_px
    if isinstance(max_px, bool) or not isinstance(max_px, (int, np.integer)) or max_px < 1:
        raise ValueError(f"max_px must be a positive whole number of pixels, got {max_px!r}")
    return int(max_px)


def is_lazy(data) -> bool:
    """True for a dask array."""
    from .blocks import is_lazy as _lazy

    return _lazy(data)


def needs_overview(data, max_px=None) -> bool:
    """True when ``data`` (..., H, W) must be drawn as an overview: lazy, or a side over ``max_px``."""
    return is_lazy(data) or max(np.shape(data)[-2:]) > _max_px(max_px)


def factor(shape, max_px=None) -> int:
    """The decimation factor f (>= 1) that brings an (..., H, W) raster to at most ``max_px`` a side."""
    return max(1, math.ceil(max(shape[-2:]) / _max_px(max_px)))


def coarse_grid(grid: Grid, f: int) -> Grid:
    """``grid`` with pixels ``f`` times larger (same origin), ceil(H / f) x ceil(W / f) px."""
    from affine import Affine

    return Grid(grid.crs, grid.transform * Affine.scale(f), math.ceil(grid.height / f), math.ceil(grid.width / f))


def _nearest_index(n: int, f: int) -> np.ndarray:
    """Rows (or columns) nearest the centres of the f-px blocks of n px; the last, partial
    block's centre is clamped to its last existing pixel."""
    return np.minimum(np.arange(math.ceil(n / f)) * f + f // 2, n - 1)


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    """NaN-aware mean of the ``f x f`` blocks of the last two axes of ``a`` (..., H, W): float32
    (..., ceil(H / f), ceil(W / f)), NaN where a block has no finite value. Partial blocks at the
    bottom and right edges are the mean of the pixels they have."""
    a = np.asarray(a, dtype=np.float64)
    *lead, h, w = a.shape
    hp, wp = math.ceil(h / f) * f, math.ceil(w / f) * f
    if (hp, wp) != (h, w):
        a = np.pad(a, [(0, 0)] * len(lead) + [(0, hp - h), (0, wp - w)], constant_values=np.nan)
    a = a.reshape(*lead, hp // f, f, wp // f, f)
    ok = np.isfinite(a)
    n = ok.sum(axis=(-3, -1))
    s = np.where(ok, a, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / n, np.nan).astype(np.float32)


def lazy_overview(data, grid: Grid, max_px=None, categorical: bool = False):
    """:func:`overview` without computing: (numpy or dask array (..., h, w), coarse Grid).

    Lets a caller compute the overview together with other reductions of the same blocks
    (one read of each block), e.g. the classes present in a class map.
    """
    shape = np.shape(data)
    if len(shape) < 2 or tuple(shape[-2:]) != grid.shape:
        raise ValueError(f"data of shape {shape} does not match the grid {grid.shape} (expected (..., H, W))")
    f = factor(shape, max_px)
    if f == 1:
        return data, grid
    h, w = shape[-2:]
    if categorical:
        rows, cols = _nearest_index(h, f), _nearest_index(w, f)
        if is_lazy(data):
            small = data[..., rows, :][..., cols]
        else:
            small = np.asarray(data)[..., rows[:, None], cols]
        return small, coarse_grid(grid, f)
    if not is_lazy(data):
        return block_mean(data, f), coarse_grid(grid, f)
    # chunks that are whole multiples of f (except the last), so every block reduces on its own
    side = f * max(1, 512 // f)
    data = data.rechunk(data.chunks[:-2] + (side, side))
    chunks = data.chunks[:-2] + tuple(tuple(math.ceil(c / f) for c in cs) for cs in data.chunks[-2:])
    small = data.map_blocks(block_mean, f, dtype=np.float32, chunks=chunks)
    return small, coarse_grid(grid, f)


def _compute(*arrays):
    """Compute dask arrays on the active scheduler (numpy arrays pass through)."""
    lazy = [a for a in arrays if is_lazy(a)]
    if not lazy:
        return arrays
    from .blocks import compute

    done = iter(compute(*lazy, progress=False))
    return tuple(next(done) if is_lazy(a) else a for a in arrays)


def overview(data, grid: Grid, max_px=None, categorical: bool = False, *, path=None, band=None):
    """A raster small enough to draw whole: (numpy array (..., h, w), its Grid).

    Parameters
    ----------
    data : numpy or dask array (..., H, W)
        The raster (a year stack (T, H, W) gives (T, h, w)). Ignored when ``path`` is given.
    grid : Grid
        ``data``'s grid (H, W).
    max_px : int, optional
        Largest side of the result in px; default ``config.MAX_OVERLAY_PX`` (2048).
    categorical : bool
        Classes: the pixel nearest each block's centre (values kept as they are) instead of the
        NaN-aware block mean (float32).
    path, band : GeoTIFF file and 1-based band, optional
        Where ``data`` was read from unchanged (e.g. by :func:`ltlib.blocks.open_raster`): the
        file's internal overviews are read instead (:func:`read_overview`); ``band`` None reads
        every band.

    Returns
    -------
    (numpy array, Grid)
        ``data`` itself (as numpy) when it is numpy and no side exceeds ``max_px``.
    """
    if path is not None:
        return read_overview(path, max_px, categorical=categorical, band=band)
    small, g = lazy_overview(data, grid, max_px, categorical)
    return np.asarray(_compute(small)[0]), g


def read_overview(path, max_px=None, *, categorical: bool = False, band=None):
    """Read a GeoTIFF at the finest of its internal overview levels whose side is at most
    ``max_px`` (the full resolution when it is small enough; the coarsest level reduced
    further, as :func:`overview` does, when even that is too large).

    Returns
    -------
    (float32 array (B, h, w), or (h, w) for one ``band``, NaN at the file's nodata; Grid)
    """
    import rasterio

    from .io import open_geotiff

    max_px = _max_px(max_px)
    with open_geotiff(path) as src:
        h, w, count, nodata = src.height, src.width, src.count, src.nodata
        levels = src.overviews(1)
    if band is not None and not (isinstance(band, (int, np.integer)) and 1 <= band <= count):
        raise ValueError(f"band must be a 1-based band number of {path} (1..{count}), got {band!r}")
    need = factor((h, w), max_px)
    level = None  # None: full resolution
    if need > 1:
        fitting = [i for i, f in enumerate(levels) if f >= need]
        level = fitting[0] if fitting else (len(levels) - 1 if levels else None)
    opts = {} if level is None else {"OVERVIEW_LEVEL": level}
    with rasterio.open(path, **opts) as src:
        data = src.read(band, out_dtype=np.float32)
        grid = Grid(src.crs, src.transform, src.height, src.width)
    if nodata is not None and not np.isnan(nodata):
        data[data == np.float32(nodata)] = np.nan
    if max(grid.shape) > max_px:  # too few levels in the file: reduce the coarsest further
        data, grid = lazy_overview(data, grid, max_px, categorical)
    return data, grid


def percentiles(data, q, max_px=None):
    """``np.nanpercentile(data, q)`` for a colour stretch. A numpy array is used whole (exact);
    a lazy raster or stack (..., H, W) from a sample of at most about ``max_px`` ** 2 values in
    all (the pixels nearest the centres of equal blocks of every layer), so a stretch costs one
    read of each block, not a sort of the whole scene.

    Returns a float or an array like ``q``; NaN when no value is finite.
    """
    import warnings

    from affine import Affine

    if is_lazy(data):
        shape = np.shape(data)
        layers = int(np.prod(shape[:-2], dtype=np.int64))
        side = max(1, int(_max_px(max_px) / math.sqrt(max(layers, 1))))
        grid = Grid("EPSG:4326", Affine.identity(), *shape[-2:])  # only the shape matters here
        data = overview(data, grid, side, categorical=True)[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN slice")
        return np.nanpercentile(np.asarray(data), q)


def _check_pixel(shape, row, col):
    h, w = shape[-2:]
    for name, v, n in (("row", row, h), ("col", col, w)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
            raise IndexError(f"{name} must be a whole number in 0..{n - 1} (raster of {h} x {w} px), got {v!r}")


def pixel_series(stack, row: int, col: int) -> np.ndarray:
    """The values (T,) of pixel (row, col) of a (T, H, W) array or :class:`~ltlib.io.Stack`,
    read lazily (one chunk of a dask array). Equals ``stack[:, row, col]`` of the numpy array."""
    from .io import Stack

    data = stack.data if isinstance(stack, Stack) else stack  # (a numpy array's .data is its buffer)
    if np.ndim(data) != 3:
        raise ValueError(f"pixel_series needs a (T, H, W) stack, got shape {np.shape(data)}")
    _check_pixel(np.shape(data), row, col)
    return np.asarray(_compute(data[:, row, col])[0])


def pixel_value(data, row: int, col: int):
    """The value of pixel (row, col) of an (H, W) array, read lazily (one chunk of a dask array)."""
    if np.ndim(data) != 2:
        raise ValueError(f"pixel_value needs an (H, W) raster, got shape {np.shape(data)}")
    _check_pixel(np.shape(data), row, col)
    v = data[row, col]
    return np.asarray(_compute(v)[0])[()] if is_lazy(v) else v

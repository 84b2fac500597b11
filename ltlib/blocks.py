"""Block-wise execution over dask: lazy chunked reads, block-by-block atomic writes, the scheduler.

A Landsat scene (about 7,000 x 7,000 px, 51 years) is 10 GB per index as float32, more than
a laptop holds. Large scenes are therefore opened lazily (:func:`open_raster`: a dask array
chunked in space, every year of a pixel in one chunk), every step runs the same numpy/numba
kernels block by block (``dask.array.map_blocks`` / ``map_overlap``), and results are written
block by block (:func:`write_rasters`) into tiled, compressed GeoTIFFs with internal overviews,
never held whole. Small scenes (the sample) stay numpy and take the in-memory path; the
tests assert that both give identical results.

Where the blocks run is dask's business (:func:`connect`): by default the local threaded
scheduler with one thread per core (the kernels release the GIL); with an address, a
``distributed.Client`` to that scheduler, so the same code runs on a cluster (dask-jobqueue,
Kubernetes, a hosted cluster). On a cluster the output folder must be on a file system every
worker sees: workers write their blocks themselves.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from . import config
from .io import (DEFLATE_LEVEL, NODATA_INT16, Grid, _hex_to_rgba, _to_dtype, atomic_path, geotiff_profile, open_geotiff,
                 year_band_names)

#: Side of the square chunks (px) of lazily opened scenes (:data:`ltlib.config.CHUNK_PX`).
CHUNK_PX = config.CHUNK_PX
#: Tile side (px) of the GeoTIFFs written block by block.
TILE_PX = 256
#: Overview levels built into every GeoTIFF written here (until the smallest is < 256 px).
OVERVIEW_FACTORS = (2, 4, 8, 16, 32, 64)

_write_locks: dict[str, threading.Lock] = {}


def is_lazy(a) -> bool:
    """True for a dask array (a chunked, not yet computed array)."""
    # no dask array exists before dask.array is imported, and importing it takes 1-5 s that an
    # in-memory scene would pay for nothing
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(a, da.Array)


def check_chunks(chunks, name: str = "chunks") -> int:
    """A chunk side in px from ``chunks`` (a positive int); a clear error otherwise."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < 16:
        raise ValueError(f"{name} must be a whole number of pixels >= 16 (the side of square chunks, e.g. "
                         f"{CHUNK_PX}), or 'auto' / None where allowed; got {chunks!r}")
    return int(chunks)


def open_raster(path, *, chunks: int = CHUNK_PX, max_bytes=None):
    """Open a GeoTIFF lazily (rioxarray), chunked in space with every band in each chunk.

    Parameters
    ----------
    path : GeoTIFF file
    chunks : int
        Side of the square chunks in px.
    max_bytes : float or None
        Size limit of the declared raster (:func:`ltlib.io.max_raster_bytes`), checked before
        the chunk graph is made.

    Returns
    -------
    (data, grid, band_names)
        ``data`` a dask array float32 (B, H, W), NaN where the file has its nodata value
        (as :func:`ltlib.io.read_raster`), ``grid`` the file's :class:`~ltlib.io.Grid` and
        ``band_names`` the band descriptions.
    """
    import rioxarray  # noqa: F401  (registers the engine)
    import xarray as xr

    chunks = check_chunks(chunks)
    path = Path(path)
    with open_geotiff(path, max_bytes=max_bytes) as src:  # the same checks and messages as every other read
        grid = Grid(src.crs, src.transform, src.height, src.width)
        names = [d or f"band_{i}" for i, d in enumerate(src.descriptions, start=1)]
        nodata = src.nodata
    # lock=False: every task opens its own handle, so blocks are read in parallel
    with warnings.catch_warnings():  # chunks across the file's tiles are allowed (slower reads only)
        warnings.filterwarnings("ignore", message="The specified chunks separate the stored chunks")
        arr = xr.open_dataarray(path, engine="rasterio", chunks={"band": -1, "y": chunks, "x": chunks}, lock=False,
                                cache=False, mask_and_scale=False)
    data = arr.data.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        data = data.map_blocks(_nodata_to_nan, np.float32(nodata), dtype=np.float32)
    return data, grid, names


def _nodata_to_nan(block, nodata):
    block = block.copy() if not block.flags.writeable else block
    block[block == nodata] = np.nan
    return block


# ------------------------------------------------------------------------------------ scheduler
def active_client():
    """The ``distributed.Client`` in use, or None (dask's local schedulers)."""
    try:
        from distributed import get_client
    except ImportError:  # dask without distributed: local schedulers only
        return None
    try:
        return get_client()
    except ValueError:
        return None


def connect(dask_address=None, *, n_workers: int | None = None, timeout: str = "20s"):
    """Choose where blocks run.

    Parameters
    ----------
    dask_address : str or None
        None: this machine, dask's threaded scheduler with one thread per core
        (``n_workers`` to change it). An address such as ``"tcp://10.0.0.5:8786"``: a
        ``distributed.Client`` to that scheduler (started by dask-jobqueue, dask-kubernetes,
        a hosted service or ``dask scheduler``), which then runs every block.
    timeout : how long to wait for the scheduler to answer.

    Returns
    -------
    distributed.Client or None
    """
    import dask

    if dask_address is None:
        n = n_workers or os.cpu_count() or 1
        dask.config.set(scheduler="threads", num_workers=int(n))
        print(f"dask: local threaded scheduler, {n} threads")
        return None
    if not isinstance(dask_address, str) or not dask_address.strip():
        raise ValueError(f"dask_address must be None (this machine) or a scheduler address such as "
                         f"'tcp://host:8786', got {dask_address!r}")
    from distributed import Client

    try:
        client = Client(dask_address, timeout=timeout)
    except OSError as e:
        raise ConnectionError(f"dask_address {dask_address!r}: no dask scheduler answered ({e}); start one (e.g. "
                              "`dask scheduler` and `dask worker <address>`, or dask-jobqueue) or use None to run "
                              "on this machine") from e
    info = client.scheduler_info()
    workers = info.get("workers", {})
    print(f"dask: scheduler {dask_address}, {len(workers)} workers, "
          f"{sum(w.get('nthreads', 0) for w in workers.values())} threads")
    return client


def compute(*collections, progress: bool = True):
    """``dask.compute`` on the active scheduler, with a progress bar (text, or a widget in a
    notebook on a cluster). Returns the computed values as a tuple."""
    import dask

    client = active_client()
    if client is not None:
        futures = client.compute(list(collections))
        if progress:
            from distributed import progress as show_progress

            show_progress(futures)
        return tuple(client.gather(futures))
    if not progress:
        return dask.compute(*collections)
    from dask.diagnostics import ProgressBar

    with ProgressBar(minimum=2.0, dt=0.1):
        return dask.compute(*collections)


# ------------------------------------------------------------------------------------ writing
def _as_dask(data, chunks: int = CHUNK_PX):
    import dask.array as da

    if not is_lazy(data):
        data = np.asarray(data)
        data = da.from_array(data, chunks=(-1,) * (data.ndim - 2) + (chunks, chunks))
    if data.ndim == 2:
        data = data[None]
    return data


def _lock(path: Path):
    client = active_client()
    if client is not None:
        from distributed import Lock

        return Lock(f"ltlib-write-{path}")
    return _write_locks.setdefault(str(path), threading.Lock())


def _block_to_dtype(block, dtype, nodata, path):
    return _to_dtype(block, dtype, nodata, path, check_rounding=False)


class _OpenWriter:
    """``dask.array.store`` target writing blocks into one dataset kept open from its creation.

    rioxarray's ``RasterioWriter`` reopens the file in update mode for every block, where GDAL
    ignores the creation options (the deflate level, its compression threads): a block written
    so is compressed at level 6 on one thread. On dask's local schedulers every block is written
    by this process, so the dataset stays open (writes to it are serialised by the file's
    lock); a distributed cluster's workers still open the file by its path."""

    def __init__(self, dst):
        self.dst = dst

    def __setitem__(self, key, item):
        bands, rows, cols = key
        window = Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
        self.dst.write(item, window=window, indexes=list(range(bands.start + 1, bands.stop + 1)))


def _prepare(spec: dict, tmp: Path, open_files: contextlib.ExitStack):
    """Create the file ``tmp`` for one output and return the (lazy) store of its blocks; on
    dask's local schedulers the file stays open in ``open_files`` (see :class:`_OpenWriter`)."""
    import dask.array as da
    from rioxarray.raster_writer import RasterioWriter

    path, grid = Path(spec["path"]), spec["grid"]
    data = _as_dask(spec["data"])
    band_names = spec.get("band_names")
    if "years" in spec:  # an annual stack, as io.write_stack
        band_names = year_band_names(np.asarray(spec["years"], dtype=int))
    if data.ndim != 3:
        raise ValueError(f"{path}: write_raster needs (H, W) or (B, H, W) data, got shape {data.shape}")
    if tuple(data.shape[1:]) != tuple(grid.shape):
        raise ValueError(f"{path}: data {tuple(data.shape[1:])} does not match grid {grid.shape}")
    if band_names is not None and len(band_names) != data.shape[0]:
        raise ValueError(f"{path}: {len(band_names)} band names for {data.shape[0]} bands")
    dtype = spec.get("dtype") or str(data.dtype)
    dtype = "uint8" if dtype == "bool" else dtype
    nodata = spec.get("nodata")
    colormap = spec.get("colormap")
    if colormap is not None and (data.shape[0] != 1 or dtype not in ("uint8", "uint16")):
        raise ValueError(f"{path}: a colour table needs a single-band uint8 or uint16 raster")
    profile = geotiff_profile(grid, data.shape[0], dtype, nodata)
    profile.update(tiled=True, blockxsize=TILE_PX, blockysize=TILE_PX, BIGTIFF="IF_SAFER")
    if spec.get("compress", "deflate") != "deflate":
        profile.pop("predictor", None)
        profile.pop("zlevel", None)
        if spec["compress"] is None:
            profile.pop("compress")
        else:
            profile["compress"] = spec["compress"]
    local = active_client() is None
    dst = open_files.enter_context(rasterio.open(tmp, "w", **profile)) if local else rasterio.open(tmp, "w", **profile)
    if band_names is not None:
        for i, n in enumerate(band_names, start=1):
            dst.set_band_description(i, str(n))
    tags = dict(spec.get("tags") or {})
    dst.update_tags(**{k: str(v) for k, v in tags.items()})
    if colormap is not None:
        dst.write_colormap(1, {int(k): _hex_to_rgba(v) for k, v in colormap.items()})
    if not local:
        dst.close()
    converted = data.map_blocks(_block_to_dtype, dtype, nodata, path, dtype=np.dtype(dtype))
    target = _OpenWriter(dst) if local else RasterioWriter(str(tmp))
    return da.store(converted, target, lock=_lock(tmp), compute=False)


def add_overviews(tmp: Path, resampling: str) -> None:
    """Build internal overviews (factors 2, 4, ... down to ~128 px) into the GeoTIFF ``tmp``
    (opened in update mode, before it is renamed into place)."""
    with rasterio.open(tmp) as src:
        # GDAL builds overviews a strip of tiles at a time: the cache must hold a few strips of
        # every band (~750 MB for 7,000 px x 51 int16 bands), or it decompresses each tile many
        # times (the 256 MB cap of ltlib.io made a 7,000 px stack take > 15 min)
        strip = -(-src.width // TILE_PX) * TILE_PX * TILE_PX * src.count * np.dtype(src.dtypes[0]).itemsize
    cache = int(min(max(4 * strip, 256 * 2**20), 4 * 2**30))
    # the overviews get the files' deflate level (GDAL's default for them is 6)
    with rasterio.Env(GDAL_CACHEMAX=cache, GDAL_NUM_THREADS="ALL_CPUS", ZLEVEL_OVERVIEW=DEFLATE_LEVEL), \
            rasterio.open(tmp, "r+") as dst:
        factors = [f for f in OVERVIEW_FACTORS if max(dst.height, dst.width) / f >= TILE_PX / 2]
        if factors:
            dst.build_overviews(factors, Resampling[resampling])
            dst.update_tags(ns="rio_overview", resampling=resampling)


def write_rasters(specs, *, also=(), progress: bool = True):
    """Write several outputs of one dask graph in one pass, block by block.

    Each block of a shared upstream step (e.g. one LandTrendr fit feeding the fitted stacks
    and both change maps) is computed once and written into every output it feeds, so no
    output is ever held whole. Every file is written to a temporary file beside its target,
    given internal overviews, and renamed only when every output is complete: an interrupted
    run leaves the previous files (or none), never a complete-looking partial one.

    Parameters
    ----------
    specs : list of dict
        Keyword arguments of :func:`ltlib.io.write_raster` (``path``, ``data`` numpy or dask
        (H, W) / (B, H, W), ``grid``, ``band_names``, ``nodata``, ``dtype``, ``colormap``,
        ``tags``), plus ``years`` for an annual stack (bands ``yrYYYY``, as
        :func:`ltlib.io.write_stack`), ``overview_resampling`` ("nearest" default, e.g.
        "average" for continuous values), ``overviews`` (default True) and ``compress``
        ("deflate" default, None for none, or another GDAL codec, e.g. for scratch inputs
        where writing speed matters more than size).
    also : sequence of dask collections
        Reductions of the same graph (e.g. a histogram) computed in the same pass.

    Returns
    -------
    list of Path, in the order of ``specs``; with ``also``, (paths, computed values).
    """
    specs = list(specs)
    with contextlib.ExitStack() as stack:
        tmps = [Path(stack.enter_context(atomic_path(s["path"]))) for s in specs]
        with contextlib.ExitStack() as open_files:  # closed before the overviews are built
            stores = [_prepare(s, tmp, open_files) for s, tmp in zip(specs, tmps)]
            values = compute(*stores, *also, progress=progress)[len(stores):]
        for s, tmp in zip(specs, tmps):
            if s.get("overviews", True):
                add_overviews(tmp, s.get("overview_resampling", "nearest"))
    paths = [Path(s["path"]) for s in specs]
    return (paths, values) if also else paths


def write_raster(path, data, grid: Grid, *, band_names=None, nodata=None, dtype=None, colormap=None, tags=None,
                 overview_resampling: str = "nearest", progress: bool = True) -> Path:
    """:func:`ltlib.io.write_raster` for dask (or numpy) data: block by block, tiled, with
    overviews, atomically. See :func:`write_rasters`."""
    return write_rasters([dict(path=path, data=data, grid=grid, band_names=band_names, nodata=nodata, dtype=dtype,
                               colormap=colormap, tags=tags, overview_resampling=overview_resampling)],
                         progress=progress)[0]


def write_stack(path, data, years, grid: Grid, *, dtype="int16", nodata=None, name=None, scale=None,
                overview_resampling: str = "average", progress: bool = True) -> Path:
    """:func:`ltlib.io.write_stack` for dask (or numpy) data (T, H, W): block by block, tiled,
    with overviews, atomically."""
    return write_rasters([stack_spec(path, data, years, grid, dtype=dtype, nodata=nodata, name=name, scale=scale,
                                     overview_resampling=overview_resampling)], progress=progress)[0]


def stack_spec(path, data, years, grid: Grid, *, dtype="int16", nodata=None, name=None, scale=None,
               overview_resampling: str = "average") -> dict:
    """The :func:`write_rasters` spec of an annual stack, with :func:`ltlib.io.write_stack`'s defaults."""
    years = np.asarray(years, dtype=int)
    if data.shape[0] != len(years):
        raise ValueError(f"{path}: {data.shape[0]} bands but {len(years)} years")
    if np.any(np.diff(years) <= 0):
        raise ValueError(f"{path}: years must be strictly increasing, got {years.tolist()}")
    if nodata is None:
        nodata = NODATA_INT16 if dtype == "int16" else (np.nan if np.dtype(dtype).kind == "f" else None)
    return dict(path=path, data=data, years=years, grid=grid, dtype=dtype, nodata=nodata,
                tags={"name": name or Path(path).stem, "scale": scale if scale is not None else 1.0},
                overview_resampling=overview_resampling)

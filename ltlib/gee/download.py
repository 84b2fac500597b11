"""Direct download of Earth Engine images to GeoTIFF: tiled ``computePixels`` with retries and resume.

Earth Engine's ``computePixels`` returns at most 48 MB of uncompressed pixels and at most
32768 pixels along a side per request, so an area is cut into tiles that each fit. Most of
this module does not need Earth Engine: planning the tiles, fetching each one through a
``fetch(tile) -> array (B, h, w)`` with retries and exponential backoff, keeping finished
tiles on disk so an interrupted download resumes, and writing the mosaic as one GeoTIFF in
the :mod:`ltlib.io` conventions (band descriptions, nodata, ``name``/``scale`` tags).
:func:`computepixels_fetch` supplies the Earth Engine fetch function and
:func:`download_image` puts the two together; tests supply fake fetch functions.

Why not geemap/geedim/xee: geemap's direct download (``download_ee_image``) delegates to
geedim, which is not in the pinned environment; xee needs xarray and returns lazy arrays
rather than files; ``getDownloadURL`` is limited to 32 MB per request and hides errors
inside zip files. ``ee.data.computePixels`` is the documented API the others build on, and
a fetch function is the seam that makes retries, resume and tiling testable offline.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import ee
import numpy as np
import rasterio

from .. import config
from ..io import Grid, atomic_path, exclusive_temp, geotiff_profile, write_text

#: computePixels limits (Earth Engine docs, "Usage limits"): bytes and pixels per side.
EE_MAX_REQUEST_BYTES = 48 * 2**20
EE_MAX_SIDE = 32768
EE_MAX_BANDS = 1024
#: Value masked pixels are unmasked to before an int16 download (the stacks' nodata).
INT16_FILL = config.NODATA_INT16
#: Value masked pixels are unmasked to before a float32 download (turned into NaN).
FLOAT_FILL = -9999.0


class DownloadError(RuntimeError):
    """Some tiles could not be fetched; the finished ones are kept for a resume."""


@dataclass(frozen=True)
class Tile:
    """A block of the output grid: ``rows row_off..row_off+height``, same for columns."""

    index: int
    row_off: int
    col_off: int
    height: int
    width: int

    @property
    def window(self):
        return rasterio.windows.Window(self.col_off, self.row_off, self.width, self.height)

    def transform(self, grid: Grid):
        """Affine transform of this tile (the grid's transform shifted to its corner)."""
        return grid.transform @ grid.transform.translation(self.col_off, self.row_off)

    def __str__(self):
        return (f"tile {self.index} (rows {self.row_off}-{self.row_off + self.height - 1}, "
                f"cols {self.col_off}-{self.col_off + self.width - 1})")


def estimate_bytes(shape, n_bands: int, dtype) -> int:
    """Uncompressed size in bytes of ``n_bands`` bands of ``shape`` (H, W) pixels."""
    h, w = shape
    return int(h) * int(w) * int(n_bands) * np.dtype(dtype).itemsize


def format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def plan_tiles(height: int, width: int, n_bands: int, dtype, *, max_bytes: int = 16 * 2**20,
               max_side: int = 2048) -> list[Tile]:
    """Cut an (height, width) grid into tiles whose uncompressed size is <= ``max_bytes``.

    Tiles are full-width strips when a whole row fits (fewest requests), otherwise
    blocks of at most ``max_side`` pixels a side; edge tiles are smaller. Together they
    cover every pixel exactly once. ``max_bytes`` may not exceed computePixels' 48 MB nor
    ``max_side`` its 32768 px.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"plan_tiles: grid must have positive size, got {height} x {width}")
    if not 1 <= n_bands <= EE_MAX_BANDS:
        raise ValueError(f"plan_tiles: {n_bands} bands; one request can carry 1..{EE_MAX_BANDS}")
    if not 0 < max_bytes <= EE_MAX_REQUEST_BYTES:
        raise ValueError(f"plan_tiles: max_bytes {max_bytes} outside 1..{EE_MAX_REQUEST_BYTES} (48 MB limit)")
    if not 0 < max_side <= EE_MAX_SIDE:
        raise ValueError(f"plan_tiles: max_side {max_side} outside 1..{EE_MAX_SIDE}")
    px_bytes = n_bands * np.dtype(dtype).itemsize
    max_px = max_bytes // px_bytes
    if max_px < 1:
        raise ValueError(f"plan_tiles: one pixel of {n_bands} bands ({px_bytes} B) exceeds max_bytes {max_bytes}")
    tile_w = min(width, max_side, max_px)
    if tile_w < width:  # blocks: make them square-ish rather than one-pixel-high strips
        tile_w = min(tile_w, max(1, math.isqrt(max_px)))
    tile_h = min(height, max_side, max(1, max_px // tile_w))
    tiles = []
    for r in range(0, height, tile_h):
        for c in range(0, width, tile_w):
            tiles.append(Tile(len(tiles), r, c, min(tile_h, height - r), min(tile_w, width - c)))
    return tiles


#: The request a tile folder belongs to (its fingerprint), written before the first tile.
REQUEST_FILE = "request.json"


def request_fingerprint(grid: Grid, band_names, dtype, request_key: str = "") -> str:
    """SHA-256 of what a download asks for: the image (``request_key``, e.g. the serialised
    Earth Engine expression), the grid, the bands and the output type. Tiles are reused on a
    resume only when it matches."""
    import hashlib
    import json

    t = grid.transform
    text = json.dumps({"key": request_key, "crs": grid.crs.to_string(), "transform": [t.a, t.b, t.c, t.d, t.e, t.f],
                       "shape": list(grid.shape), "bands": [str(b) for b in band_names],
                       "dtype": np.dtype(dtype).name}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _tile_file(tile_dir: Path, tile: Tile) -> Path:
    return tile_dir / f"tile_{tile.index:05d}_r{tile.row_off}_c{tile.col_off}_{tile.height}x{tile.width}.npy"


def _prepare_tile_dir(tile_dir: Path, fingerprint: str | None) -> None:
    """Create ``tile_dir`` for the request ``fingerprint``; tiles left by another request (or
    by an older ltlib that wrote no fingerprint) are removed, with a message, never reused."""
    import json

    tile_dir.mkdir(parents=True, exist_ok=True)
    if fingerprint is None:
        return
    manifest = tile_dir / REQUEST_FILE
    old = None
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text()).get("fingerprint")
        except ValueError:
            old = None
    tiles = sorted(tile_dir.glob("tile_*.npy"))
    if old != fingerprint:
        if tiles:
            print(f"{tile_dir}: {len(tiles)} tile(s) of another request (image, grid, bands or type differ) "
                  "removed; downloading afresh")
            for f in tiles:
                f.unlink()
        write_text(manifest, json.dumps({"fingerprint": fingerprint}))  # exclusive temporary, then rename


def _tile_ok(path: Path, expected_shape, dtype) -> bool:
    """True for a finished tile of the expected shape and type; False (with a message) when it
    is unreadable, truncated or of another shape/type. Memory-mapped: the header and the
    file's length are checked without reading the pixels, which the mosaic reads once."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        print(f"{path.name}: unreadable ({type(err).__name__}); fetching it again")
        return False
    shape, kind = arr.shape, arr.dtype
    del arr  # release the mapping
    if shape != tuple(expected_shape) or kind != np.dtype(dtype):
        print(f"{path.name}: holds {kind} {shape}, expected {np.dtype(dtype).name} {tuple(expected_shape)}; "
              "fetching it again")
        return False
    return True


def _fetch_with_retries(fetch, tile, expected, retries, backoff, sleep):
    """``(array, None)`` on success, ``(None, last error)`` after ``retries + 1`` failures."""
    for attempt in range(retries + 1):
        try:
            arr = np.asarray(fetch(tile))
            if arr.shape != expected:
                raise ValueError(f"{tile}: fetched array has shape {arr.shape}, expected {expected}")
            return arr, None
        except Exception as err:  # noqa: BLE001 - every fetch error is retried, then reported
            if attempt == retries:
                return None, err
            sleep(backoff * 2**attempt)  # exponential backoff: 2, 4, 8, 16 s by default
    return None, RuntimeError("unreachable")


def fetch_tiles(fetch, tiles, tile_dir, *, n_bands: int, dtype, retries: int = 4, backoff: float = 2.0,
                sleep=time.sleep, progress: bool = True, desc: str = "tiles", fingerprint: str | None = None,
                max_consecutive_failures: int = 3) -> list[Path]:
    """Fetch every tile not already in ``tile_dir``; return the tile files in tile order.

    ``fetch(tile)`` returns an array (n_bands, tile.height, tile.width). A failing fetch
    is retried ``retries`` times, waiting ``backoff * 2**attempt`` seconds; tiles that still
    fail are reported together in one :class:`DownloadError` after the other tiles were
    tried (their finished neighbours stay on disk, so running again resumes). When
    ``max_consecutive_failures`` tiles in a row fail, the service or the network is taken to
    be down and the download stops at once (resumable) instead of waiting out every tile.

    ``fingerprint`` (:func:`request_fingerprint`) ties the folder to one request: tiles of
    another request are removed rather than mixed in. A finished tile that cannot be read, or
    holds another shape or type, is fetched again.
    """
    from tqdm.auto import tqdm

    tile_dir = Path(tile_dir)
    _prepare_tile_dir(tile_dir, fingerprint)
    failed = []
    todo = []
    for t in tiles:
        path = _tile_file(tile_dir, t)
        if path.exists() and _tile_ok(path, (n_bands, t.height, t.width), dtype):
            continue
        path.unlink(missing_ok=True)
        todo.append(t)
    bar = tqdm(total=len(tiles), initial=len(tiles) - len(todo), desc=desc, disable=not progress)
    in_a_row = 0
    for k, tile in enumerate(todo):
        arr, err = _fetch_with_retries(fetch, tile, (n_bands, tile.height, tile.width), retries, backoff, sleep)
        if err is not None:
            failed.append((tile, err))
            in_a_row += 1
            if in_a_row >= max_consecutive_failures and k + 1 < len(todo):
                bar.close()
                done = len(tiles) - len(todo) + k + 1 - len(failed)
                raise DownloadError(
                    f"stopped after {in_a_row} tiles in a row failed ({retries + 1} attempts each; last: {tile}: "
                    f"{type(err).__name__}: {_first_line(err)}): the network or the service looks down. "
                    f"{done} of {len(tiles)} tiles are kept in {tile_dir}; run again to resume.")
            continue
        in_a_row = 0
        path = _tile_file(tile_dir, tile)
        # atomic: a half-written tile never looks finished; the temporary is created exclusively
        # (O_EXCL, random name), so a symlink planted in a shared tile folder is never written through
        tmp = exclusive_temp(path, suffix=".part.npy")
        try:
            np.save(tmp, arr.astype(dtype, copy=False))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        bar.update(1)
    bar.close()
    if failed:
        lines = "; ".join(f"{t}: {type(e).__name__}: {_first_line(e)}" for t, e in failed)
        raise DownloadError(
            f"{len(failed)} of {len(tiles)} tiles failed after {retries + 1} attempts each ({lines}). "
            f"The {len(tiles) - len(failed)} finished tiles are kept in {tile_dir}; run again to resume."
        )
    return [_tile_file(tile_dir, t) for t in tiles]


def _first_line(err) -> str:
    return str(err).splitlines()[0] if str(err) else ""


def download_to_geotiff(fetch, grid: Grid, out_path, *, band_names, dtype="int16", nodata=None, tags=None,
                        fill_value=None, max_bytes: int = 16 * 2**20, max_side: int = 2048, retries: int = 4,
                        backoff: float = 2.0, sleep=time.sleep, progress: bool = True, keep_tiles: bool = False,
                        overwrite: bool = False, request_key: str = "", max_consecutive_failures: int = 3) -> Path:
    """Download ``grid`` tile by tile through ``fetch`` and write one GeoTIFF.

    Parameters
    ----------
    fetch : ``fetch(tile) -> array (B, tile.height, tile.width)`` in the output units.
    band_names : B band descriptions (``yrYYYY`` for annual stacks, dates for Sentinel-1).
    dtype, nodata : output type and nodata value (``NaN`` allowed for floats).
    fill_value : value the source uses for "no data" (e.g. the -9999 an image was unmasked
        with); it is turned into ``nodata``. Default: same as ``nodata``.
    overwrite : an existing ``out_path`` raises FileExistsError unless True.
    request_key : what identifies the image (the serialised Earth Engine expression); with
        the grid, bands and type it makes the fingerprint that a resume must match.
    max_consecutive_failures : stop early when this many tiles in a row fail.

    Prints the size estimate and the tile count before starting. Finished tiles are kept
    in ``<out_path>.tiles/`` until the mosaic is written, so a second call of the same
    request resumes; tiles of a different request are discarded.
    """
    out_path = Path(out_path)
    band_names = [str(b) for b in band_names]
    if out_path.exists():
        if not overwrite:
            raise FileExistsError(f"{out_path} exists; pass overwrite=True to replace it")
        print(f"{out_path.name}: exists, will be replaced")
    n_bands = len(band_names)
    tiles = plan_tiles(grid.height, grid.width, n_bands, dtype, max_bytes=max_bytes, max_side=max_side)
    size = estimate_bytes(grid.shape, n_bands, dtype)
    print(f"{out_path.name}: {n_bands} bands x {grid.height} x {grid.width} px ({np.dtype(dtype).name}) = "
          f"{format_bytes(size)} uncompressed, {len(tiles)} tile(s)")
    tile_dir = out_path.with_name(out_path.name + ".tiles")
    files = fetch_tiles(fetch, tiles, tile_dir, n_bands=n_bands, dtype=dtype, retries=retries, backoff=backoff,
                        sleep=sleep, progress=progress, desc=out_path.name,
                        fingerprint=request_fingerprint(grid, band_names, dtype, request_key),
                        max_consecutive_failures=max_consecutive_failures)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fill = nodata if fill_value is None else fill_value
    with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **geotiff_profile(grid, n_bands, dtype, nodata)) as dst:
        for tile, f in zip(tiles, files):
            arr = np.load(f)
            if fill is not None and nodata is not None and not (isinstance(fill, float) and np.isnan(fill)):
                arr = np.where(arr == np.asarray(fill, dtype=arr.dtype), np.asarray(nodata).astype(arr.dtype), arr)
            dst.write(arr.astype(dtype, copy=False), window=tile.window)
        for i, name in enumerate(band_names, start=1):
            dst.set_band_description(i, name)
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
    if not keep_tiles:
        for f in files:
            f.unlink()
        (tile_dir / REQUEST_FILE).unlink(missing_ok=True)
        try:
            tile_dir.rmdir()
        except OSError:
            pass
    return out_path


def computepixels_fetch(image, grid: Grid, band_ids):
    """A ``fetch(tile)`` for :func:`download_to_geotiff` that asks Earth
    Engine's ``computePixels`` for one tile as GeoTIFF and checks its georeferencing."""
    from rasterio.io import MemoryFile

    band_ids = list(band_ids)
    t = grid.transform
    crs = grid.crs.to_string()

    def fetch(tile):
        tt = tile.transform(grid)
        request = {
            "expression": image,
            "fileFormat": "GEO_TIFF",
            "bandIds": band_ids,
            "grid": {
                "dimensions": {"width": tile.width, "height": tile.height},
                "affineTransform": {"scaleX": t.a, "shearX": t.b, "translateX": tt.c,
                                    "shearY": t.d, "scaleY": t.e, "translateY": tt.f},
                "crsCode": crs,
            },
        }
        data = ee.data.computePixels(request)
        with MemoryFile(data) as mem, mem.open() as src:
            if abs(src.transform.c - tt.c) > 1e-6 * abs(t.a) or abs(src.transform.f - tt.f) > 1e-6 * abs(t.a):
                raise ValueError(f"{tile}: Earth Engine returned origin {src.transform.c, src.transform.f}, "
                                 f"expected {tt.c, tt.f}")
            return src.read()

    return fetch


def _expression_key(image) -> str:
    """The image's serialised expression graph (no server call), for the request fingerprint."""
    try:
        return image.serialize()
    except Exception:  # noqa: BLE001 - a graph that cannot serialise offline falls back to its repr
        return repr(image)


def prepare_bands(image, band_names, dtype):
    """``image``'s ``band_names`` as one pixel type, masked pixels filled: ``(ee.Image, fill)``.

    Earth Engine refuses to write bands of different types into one file ("Exported bands
    must have compatible data types"; e.g. a change map's int16 ``yod`` with float bands),
    so every band is cast: int16 rounded and clamped to -32767..32767 (the fill -32768 is
    nodata), float32 as it is with fill ``FLOAT_FILL``. Masked pixels, and pixels outside the
    image footprint (``unmask(..., sameFootprint=False)``), get the fill.
    """
    if not isinstance(band_names, ee.ComputedObject):  # an ee.List (all bands) passes as it is
        band_names = list(band_names)
    if np.dtype(dtype) == np.int16:
        # index x 1000 stays far inside int16; the clamp only guards the nodata value
        return (ee.Image(image).select(band_names).round().clamp(-32767, 32767)
                .unmask(INT16_FILL, False).toInt16()), INT16_FILL
    if np.dtype(dtype) == np.float32:
        return ee.Image(image).select(band_names).toFloat().unmask(FLOAT_FILL, False), FLOAT_FILL
    raise ValueError(f"dtype must be 'int16' or 'float32', got {dtype!r}")


def download_image(image, grid: Grid, out_path, *, band_names=None, descriptions=None, dtype="int16", tags=None,
                   max_bytes: int = 16 * 2**20, max_direct_bytes: float = 4 * 2**30, overwrite: bool = True,
                   fetch=None, **kw) -> Path:
    """Download an ``ee.Image`` on ``grid`` to a GeoTIFF, directly (no Drive).

    Masked pixels, and pixels outside the image footprint (``unmask(..., sameFootprint=False)``;
    computePixels would return 0 there), become nodata (-32768 for int16, NaN for float32). ``band_names`` are the
    image's bands (default ``descriptions``), ``descriptions`` the GeoTIFF band descriptions.
    Areas above ``max_direct_bytes`` (uncompressed) raise ValueError pointing to
    :func:`export_to_drive`. ``fetch`` replaces the Earth Engine call (tests).
    """
    descriptions = list(descriptions if descriptions is not None else band_names)
    band_names = list(band_names if band_names is not None else descriptions)
    if len(band_names) != len(descriptions):
        raise ValueError(f"{len(band_names)} band names but {len(descriptions)} descriptions")
    size = estimate_bytes(grid.shape, len(band_names), dtype)
    if size > max_direct_bytes:
        raise ValueError(f"{Path(out_path).name}: {format_bytes(size)} is above the direct-download limit "
                         f"{format_bytes(max_direct_bytes)}; use ltlib.gee.export_to_drive for areas this large")
    prepared, fill = prepare_bands(image, band_names, dtype)
    nodata = INT16_FILL if np.dtype(dtype) == np.int16 else float("nan")
    kw.setdefault("request_key", _expression_key(prepared))
    if fetch is None:
        fetch = computepixels_fetch(prepared, grid, band_names)
    if np.dtype(dtype) == np.float32:
        raw_fetch = fetch

        def fetch(tile):  # float: turn the unmask fill into NaN before the tile is stored
            arr = np.asarray(raw_fetch(tile), dtype=np.float32)
            return np.where(arr == np.float32(FLOAT_FILL), np.float32(np.nan), arr)

        fill = None
    return download_to_geotiff(fetch, grid, out_path, band_names=descriptions, dtype=dtype, nodata=nodata,
                               fill_value=fill, tags=tags, max_bytes=max_bytes, overwrite=overwrite, **kw)

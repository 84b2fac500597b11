"""Batch exports for areas too large to download directly: one task (:func:`export_to_drive`)
or a tiled, resumable export (:func:`export_tiled`), task polling, and the mosaic of the
exported tiles once they are on disk (:func:`mosaic_export_tiles`).

Why tiles: a whole-scene export of a heavy computation (LandTrendr over 40 years, medoid
composites) fails with "User memory limit exceeded" or "Computed image too large", and
``computePixels``/``getDownloadURL`` stop at 48 MB per request. Cutting the output grid into
tiles of ``tile_px`` pixels gives tasks small enough to succeed, and a failed one costs one
tile, not the scene. The tiles lie on one pixel grid, so their GeoTIFFs mosaic without
resampling.

Resumability: every tile's task id, state, attempts and Earth Engine error message are kept
in a JSON state file (rewritten atomically after each change). Running the same export again
with the same state file skips completed tiles, polls the tasks still queued or running
rather than starting them twice, and restarts failed ones; a state file of a different
export (image, grid, bands, type, destination or tiling) is refused.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

import ee
import numpy as np

from .. import config
from ..io import Grid, atomic_path
from .download import Tile, _expression_key, format_bytes, prepare_bands


def export_to_drive(image, grid: Grid, description: str, *, folder: str = "ltlib", file_prefix: str | None = None,
                    band_names=None, dtype: str = "float32", wait: bool = True, poll_seconds: float = 30.0,
                    timeout: float | None = None):
    """Export an image on ``grid`` to Google Drive (``ee.batch.Export.image.toDrive``) for
    areas too large to download directly; with ``wait`` poll the task until it finishes.

    Every band is cast to ``dtype`` ('float32' or 'int16') first, as for a download
    (:func:`ltlib.gee.download.prepare_bands`): Earth Engine fails an export of bands of
    different types, e.g. a change map's int16 ``yod`` with its float bands. Masked pixels
    are written as the GeoTIFF's nodata (-32768 for int16, -9999 for float32).
    ``band_names``: the bands to export (default all). Returns the task.
    """
    image = ee.Image(image)
    names = band_names if band_names is not None else image.bandNames()
    prepared, fill = prepare_bands(image, names, dtype)
    task = ee.batch.Export.image.toDrive(
        image=prepared, description=description, folder=folder, fileNamePrefix=file_prefix or description,
        crs=grid.crs.to_string(), crsTransform=list(grid.transform)[:6], dimensions=f"{grid.width}x{grid.height}",
        maxPixels=int(1e13), fileFormat="GeoTIFF", formatOptions={"noData": float(fill)})
    task.start()
    if wait:
        wait_for_task(task, poll_seconds=poll_seconds, timeout=timeout)
    return task


def wait_for_task(task, *, poll_seconds: float = 30.0, timeout: float | None = None, sleep=time.sleep,
                  clock=time.monotonic) -> dict:
    """Poll an Earth Engine batch task until it finishes; return its final status dict.

    Raises RuntimeError naming the task and its error message when it FAILED or was
    CANCELLED, and TimeoutError after ``timeout`` seconds (the task keeps running).
    """
    start = clock()
    last_state = None
    while True:
        status = task.status()
        state = status.get("state")
        if state != last_state:
            print(f"task {status.get('description', status.get('id', '?'))}: {state}")
            last_state = state
        if state == "COMPLETED":
            return status
        if state in ("FAILED", "CANCELLED", "CANCEL_REQUESTED"):
            raise RuntimeError(f"Earth Engine task {status.get('description', status.get('id'))} {state}: "
                               f"{status.get('error_message', 'no error message')}")
        if timeout is not None and clock() - start > timeout:
            raise TimeoutError(f"Earth Engine task {status.get('description', status.get('id'))} still {state} "
                               f"after {timeout:.0f} s; it keeps running (see the Tasks tab)")
        sleep(poll_seconds)


# --- Tiled, resumable export -------------------------------------------------------------
DESTINATIONS = ("drive", "gcs", "asset")
#: Tile side used when neither ``tile_px`` nor ``max_bytes`` is given.
DEFAULT_TILE_PX = 2048
MIN_TILE_PX = 16
#: Version of the state file layout; another version is refused rather than guessed at.
STATE_VERSION = 1
ACTIVE = ("READY", "RUNNING", "CANCEL_REQUESTED")
#: Failed for this run: FAILED and LOST are restarted (up to ``max_retries``), CANCELLED is not
#: (someone cancelled it in the Tasks tab), but a new run restarts it.
FAILED_STATES = ("FAILED", "CANCELLED", "LOST")
_NAME_RE = re.compile(r"[A-Za-z0-9_.,:;-]{1,80}")


class ExportStateError(ValueError):
    """The state file belongs to another export, or cannot be read."""


class TiledExportError(RuntimeError):
    """Some tiles failed; ``failed`` lists ``(tile name, Earth Engine's error message)``."""

    def __init__(self, message, failed):
        super().__init__(message)
        self.failed = list(failed)


def plan_export_tiles(grid: Grid, tile_px: int) -> list[Tile]:
    """Cut ``grid`` into square tiles of ``tile_px`` pixels (edge tiles smaller), row by row.

    Tiles start at multiples of ``tile_px`` from the grid's corner, so together they cover
    every pixel exactly once and lie on the grid's pixels (no resampling when mosaicked).
    """
    if isinstance(tile_px, bool) or not isinstance(tile_px, (int, np.integer)) or tile_px < MIN_TILE_PX:
        raise ValueError(f"tile_px must be an integer >= {MIN_TILE_PX} pixels, got {tile_px!r}")
    tiles = []
    for r in range(0, grid.height, tile_px):
        for c in range(0, grid.width, tile_px):
            tiles.append(Tile(len(tiles), r, c, min(tile_px, grid.height - r), min(tile_px, grid.width - c)))
    return tiles


def _tile_px_for(tile_px, max_bytes, band_names, dtype) -> int:
    if tile_px is not None and max_bytes is not None:
        raise ValueError("give tile_px or max_bytes, not both")
    if max_bytes is None:
        return DEFAULT_TILE_PX if tile_px is None else tile_px
    if band_names is None:
        raise ValueError("max_bytes needs band_names (the number of bands sets the pixels a tile may hold)")
    px_bytes = len(band_names) * np.dtype(dtype).itemsize
    side = int(np.sqrt(max_bytes // px_bytes)) if max_bytes > 0 else 0
    if side < MIN_TILE_PX:
        raise ValueError(f"max_bytes {max_bytes} holds tiles of {side} px a side for {len(band_names)} {dtype} bands; "
                         f"at least {MIN_TILE_PX} px are needed")
    return side


def _region_grid(region, scale, crs) -> Grid:
    if isinstance(region, Grid):
        px = abs(region.transform.a)
        if scale is not None and abs(scale - px) > 1e-9 * px:
            raise ValueError(f"region is a Grid of {px} m pixels but scale={scale}; pass scale=None with a Grid")
        if crs is not None and region.crs != Grid(crs, region.transform, 1, 1).crs:
            raise ValueError(f"region is a Grid in {region.crs.to_string()} but crs={crs!r}; pass crs=None with a Grid")
        return region
    from .aoi import grid_for_aoi

    return grid_for_aoi(region, scale=config.PIXEL_SIZE if scale is None else scale, crs=crs)


def _destination_args(destination, folder, bucket, asset_root) -> dict:
    if destination not in DESTINATIONS:
        raise ValueError(f"destination must be one of {DESTINATIONS}, got {destination!r}")
    if destination == "gcs" and not bucket:
        raise ValueError("destination='gcs' needs bucket (the Cloud Storage bucket name)")
    if destination == "asset":
        if not asset_root:
            raise ValueError("destination='asset' needs asset_root, e.g. 'projects/my-project/assets/ndvi_tiles'")
        if folder or bucket:
            raise ValueError("destination='asset' takes asset_root only, not folder or bucket")
    elif asset_root:
        raise ValueError(f"asset_root is for destination='asset', not {destination!r}")
    if destination == "drive" and bucket:
        raise ValueError("bucket is for destination='gcs', not 'drive'")
    return {"destination": destination, "folder": folder, "bucket": bucket, "asset_root": asset_root}


def _output_of(request: dict, name: str) -> tuple[str, str]:
    """(file name, where it lands) of the tile named ``name``."""
    dest, folder = request["destination"], request["folder"]
    if dest == "asset":
        asset = f"{request['asset_root'].rstrip('/')}/{name}"
        return asset, asset
    file = f"{name}.tif"
    if dest == "gcs":
        path = f"{folder.strip('/')}/{file}" if folder else file
        return file, f"gs://{request['bucket']}/{path}"
    return file, f"Drive:{folder}/{file}" if folder else f"Drive:{file}"


def _differences(old: dict, new: dict) -> list[str]:
    return [f"{k} (state file: {old.get(k)!r}, now: {new.get(k)!r})" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]


class TiledExport:
    """A tiled Earth Engine export and its state file; made by :func:`export_tiled`.

    Attributes
    ----------
    tiles : list of dict
        One record per tile: ``index``, ``name``, ``row_off``, ``col_off``, ``height``,
        ``width`` (pixels of the output grid), ``file`` (the GeoTIFF's name, or the asset id),
        ``output`` (where it lands), ``task_id``, ``operation``, ``state`` (PENDING before its
        task is started, then Earth Engine's READY/RUNNING/COMPLETED/FAILED/CANCELLED, or
        LOST when Earth Engine no longer knows the task), ``attempts`` and ``error``.
    grid : the output :class:`~ltlib.io.Grid` the tiles cut.
    state_path : the JSON state file.
    """

    def __init__(self, image, grid: Grid, state: dict, state_path: Path, *, max_running: int, max_retries: int,
                 poll_seconds: float, sleep, clock, export_kwargs: dict):
        self._image = image
        self.grid = grid
        self.state = state
        self.state_path = Path(state_path)
        self.max_running = max_running
        self.max_retries = max_retries
        self.poll_seconds = poll_seconds
        self._sleep, self._clock = sleep, clock
        self._export_kwargs = export_kwargs
        self._tasks = {}  # tile index -> live ee.batch.Task of this session
        self._restarts = {}  # tile index -> restarts in this run (a new run gets a fresh budget)
        self._last_line = None

    @property
    def tiles(self) -> list[dict]:
        return self.state["tiles"]

    @property
    def request(self) -> dict:
        return self.state["request"]

    @property
    def files(self) -> list[str]:
        """The tiles' file names (``<name>.tif``; asset ids for ``destination='asset'``), in tile order."""
        return [t["file"] for t in self.tiles]

    def counts(self) -> dict:
        """Number of tiles in each state, from the state file (no server call)."""
        out = {}
        for t in self.tiles:
            out[t["state"]] = out.get(t["state"], 0) + 1
        return out

    @property
    def done(self) -> bool:
        """True when every tile's task COMPLETED."""
        return all(t["state"] == "COMPLETED" for t in self.tiles)

    def status(self) -> dict:
        """Poll the running tasks once, start more up to ``max_running`` (restarting failed
        ones within ``max_retries``), save the state file; returns :meth:`counts`."""
        self._step()
        return self.counts()

    def wait(self, timeout: float | None = None) -> TiledExport:
        """Poll every ``poll_seconds`` until every tile finished; returns self.

        Raises :class:`TiledExportError` naming the tiles that failed (after ``max_retries``
        restarts) with Earth Engine's messages, and TimeoutError after ``timeout`` seconds
        (the tasks keep running; calling :func:`export_tiled` again resumes).
        """
        start = self._clock()
        while True:
            self._step()
            if not any(t["state"] in ACTIVE or t["state"] == "PENDING" or self._restartable(t) for t in self.tiles):
                break
            if timeout is not None and self._clock() - start >= timeout:
                raise TimeoutError(f"tiled export {self.request['prefix']}: {self._line()} after {timeout:.0f} s; "
                                   f"the tasks keep running; call export_tiled again with state_path="
                                   f"{str(self.state_path)!r} to resume")
            self._sleep(self.poll_seconds)
        failed = [t for t in self.tiles if t["state"] != "COMPLETED"]
        if failed:
            lines = "; ".join(f"{t['name']} (tile {t['index']}, rows {t['row_off']}-{t['row_off'] + t['height'] - 1}, "
                              f"cols {t['col_off']}-{t['col_off'] + t['width'] - 1}) {t['state']} after "
                              f"{t['attempts']} attempt(s): {t['error'] or 'no error message'}" for t in failed)
            raise TiledExportError(
                f"{len(failed)} of {len(self.tiles)} tiles of export {self.request['prefix']} failed: {lines}. "
                f"The {len(self.tiles) - len(failed)} completed tiles are recorded in {self.state_path}; call "
                "export_tiled again with the same state_path to restart only the failed ones.",
                [(t["name"], t["error"]) for t in failed])
        return self

    def summary(self) -> str:
        """A short report from the state file (no server call)."""
        req = self.request
        h, w = req["shape"]
        where = {"drive": f"Google Drive folder {req['folder'] or '(root)'}",
                 "gcs": f"gs://{req['bucket']}/{(req['folder'] or '').strip('/')}",
                 "asset": req["asset_root"]}[req["destination"]]
        lines = [f"tiled export {req['prefix']}: {h} x {w} px on {req['crs']} in {len(self.tiles)} tiles of "
                 f"<= {req['tile_px']} px to {where}", self._line(), f"state file: {self.state_path}"]
        for t in self.tiles:
            if t["state"] in FAILED_STATES:
                lines.append(f"  {t['name']}: {t['state']} after {t['attempts']} attempt(s): {t['error']}")
        return "\n".join(lines)

    def local_files(self, folder) -> list[Path]:
        """The downloaded GeoTIFFs of every tile in ``folder`` (synced from Drive or Cloud
        Storage), for :func:`mosaic_export_tiles`. A tile Earth Engine split into several
        files (``<name>-0000000000-0000000000.tif``) contributes all of them. Raises
        FileNotFoundError naming the tiles that are missing."""
        if self.request["destination"] == "asset":
            raise ValueError("an asset export has no files; mosaic the assets with "
                             "ee.ImageCollection(export.files).mosaic()")
        folder = Path(folder)
        out, missing = [], []
        for t in self.tiles:
            found = sorted(folder.glob(f"{t['name']}.tif")) or sorted(folder.glob(f"{t['name']}-*.tif"))
            if not found:
                missing.append(t["file"])
            out.extend(found)
        if missing:
            raise FileNotFoundError(f"{folder}: {len(missing)} of {len(self.tiles)} tile files missing: "
                                    f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
        return out

    # -- internals --
    def _line(self) -> str:
        c = self.counts()
        parts = [f"{c.get('COMPLETED', 0)}/{len(self.tiles)} completed"]
        parts += [f"{c[s]} {s.lower()}" for s in ("RUNNING", "READY", "PENDING", *FAILED_STATES) if c.get(s)]
        return ", ".join(parts)

    def _task(self, t: dict):
        task = self._tasks.get(t["index"])
        if task is None:  # started in an earlier session: rebuilt from its id and operation name
            task = ee.batch.Task(t["task_id"], ee.batch.Task.Type.EXPORT_IMAGE, ee.batch.Task.State.UNSUBMITTED,
                                 name=t["operation"])
            self._tasks[t["index"]] = task
        return task

    def _poll(self, t: dict) -> bool:
        status = self._task(t).status()
        state = status.get("state", "UNKNOWN")
        state = str(getattr(state, "value", state))  # Task.State is a str enum
        if state in ("UNSUBMITTED", "UNKNOWN"):
            state, status = "LOST", {"error_message": f"Earth Engine no longer knows task {t['task_id']}"}
        if state == t["state"]:
            return False
        t["state"] = state
        if state in FAILED_STATES:
            t["error"] = status.get("error_message") or f"task {state.lower()} (no error message)"
        return True

    def _start(self, t: dict) -> None:
        tile = Tile(t["index"], t["row_off"], t["col_off"], t["height"], t["width"])
        t["attempts"] += 1
        t["error"] = None
        try:
            task = _make_task(self._image, self.grid, tile, t["name"], self.request, self._export_kwargs)
            task.start()
        except Exception as err:  # noqa: BLE001 - e.g. "Too many tasks": recorded as a failed attempt
            t["state"], t["error"], t["task_id"], t["operation"] = "FAILED", f"{type(err).__name__}: {err}", None, None
            return
        self._tasks[t["index"]] = task
        t["task_id"], t["operation"], t["state"] = task.id, task.name, "READY"

    def _restartable(self, t: dict) -> bool:
        # FAILED/LOST get up to max_retries restarts per run; CANCELLED waits for a new run
        return t["state"] in ("FAILED", "LOST") and self._restarts.get(t["index"], 0) < self.max_retries

    def _step(self) -> None:
        changed = False
        for t in self.tiles:
            if t["state"] in ACTIVE:
                changed |= self._poll(t)
        for t in self.tiles:
            if self._restartable(t):
                self._restarts[t["index"]] = self._restarts.get(t["index"], 0) + 1
                t["state"] = "PENDING"
                changed = True
        running = sum(t["state"] in ACTIVE for t in self.tiles)
        for t in self.tiles:
            if running >= self.max_running:
                break
            if t["state"] == "PENDING":
                self._start(t)
                changed = True
                running += t["state"] in ACTIVE
        if changed:
            _save_state(self.state_path, self.state)
        line = self._line()
        if line != self._last_line:
            print(f"tiled export {self.request['prefix']}: {line}")
            self._last_line = line


def _make_task(image, grid: Grid, tile: Tile, name: str, request: dict, extra: dict):
    """The unstarted Earth Engine task that exports ``tile`` of ``grid``."""
    common = dict(image=image, description=name, crs=request["crs"], crsTransform=list(tile.transform(grid))[:6],
                  dimensions=f"{tile.width}x{tile.height}", maxPixels=int(1e13), **extra)
    if request["destination"] == "asset":
        return ee.batch.Export.image.toAsset(assetId=f"{request['asset_root'].rstrip('/')}/{name}", **common)
    files = dict(fileFormat="GeoTIFF", formatOptions={"noData": float(request["nodata"])})
    if request["destination"] == "gcs":
        folder = (request["folder"] or "").strip("/")
        return ee.batch.Export.image.toCloudStorage(bucket=request["bucket"],
                                                    fileNamePrefix=f"{folder}/{name}" if folder else name,
                                                    **files, **common)
    return ee.batch.Export.image.toDrive(folder=request["folder"], fileNamePrefix=name, **files, **common)


def _save_state(path: Path, state: dict) -> None:
    text = json.dumps(state, indent=1) + "\n"
    with atomic_path(path) as tmp:  # a crash mid-write leaves the previous state file, never half of one
        Path(tmp).write_text(text)


def _load_state(path: Path, request: dict) -> dict | None:
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        old = state["request"]
        tiles = state["tiles"]
        version = state.get("version")
    except (ValueError, KeyError, TypeError) as err:
        raise ExportStateError(f"{path}: not a tiled-export state file ({type(err).__name__}: {err}); "
                               "delete it or pass another state_path") from err
    if version != STATE_VERSION:
        raise ExportStateError(f"{path}: state file version {version!r}, this ltlib writes {STATE_VERSION}; "
                               "delete it or pass another state_path")
    diff = _differences(old, request)
    if diff:
        raise ExportStateError(f"{path} belongs to another export: {'; '.join(diff)}. Resuming would mix tiles of "
                               "two exports; pass another state_path, or delete this one to start afresh "
                               "(its tasks are not cancelled)")
    if not isinstance(tiles, list) or not all(isinstance(t, dict) and "state" in t for t in tiles):
        raise ExportStateError(f"{path}: its tile list is damaged; delete it or pass another state_path")
    return state


def export_tiled(image, region, *, prefix: str, state_path, destination: str = "drive", folder: str | None = None,
                 bucket: str | None = None, asset_root: str | None = None, scale: float | None = config.PIXEL_SIZE,
                 crs: str | None = None, tile_px: int | None = None, max_bytes: int | None = None, band_names=None,
                 dtype: str = "float32", max_running: int = 10, max_retries: int = 2, poll: bool = True,
                 poll_seconds: float = 30.0, timeout: float | None = None, sleep=time.sleep, clock=time.monotonic,
                 **export_kwargs) -> TiledExport:
    """Export an image over a large area as tiles, one Earth Engine batch task per tile, resumably.

    Parameters
    ----------
    image : ee.Image
        The image; every band is cast to ``dtype`` with masked pixels set to the nodata value
        (-9999 for float32, -32768 for int16), as :func:`export_to_drive`. Asset exports keep
        the mask instead.
    region : AOI or Grid
        An AOI (``ee.Geometry``, (west, south, east, north) degrees, GeoJSON dict or file),
        gridded by :func:`ltlib.gee.grid_for_aoi` with ``scale`` m pixels in ``crs`` (default
        its UTM zone), or an :class:`~ltlib.io.Grid` used as it is (then ``scale``/``crs``
        must be None or agree with it).
    prefix : str
        Name of the export; tile ``k`` is named ``<prefix>_<k:04d>`` (the task description and
        the file name). Letters, digits and ``_.,:;-``, at most 80 characters.
    state_path : path
        JSON file recording every tile's task; an existing one is resumed (see below).
    destination : {"drive", "gcs", "asset"}
        Google Drive (``folder``: a Drive folder name), Cloud Storage (``bucket``, ``folder``:
        an object-name prefix inside it) or Earth Engine assets under ``asset_root``
        (``projects/<project>/assets/<folder>``, which must exist).
    tile_px, max_bytes : int, optional
        Tile side in pixels, or the largest uncompressed tile in bytes (needs ``band_names``);
        default ``DEFAULT_TILE_PX`` (2048) pixels. Tiles start at multiples of ``tile_px``
        from the grid's corner; edge tiles are smaller.
    band_names : list of str, optional
        Bands to export (default all).
    dtype : {"float32", "int16"}
    max_running : int
        Most of this export's tasks queued or running at once; more are started as these
        finish. Earth Engine runs a limited number of a project's tasks at a time and queues
        the rest (3000 at most); a modest value keeps the queue free for other work.
    max_retries : int
        Restarts of a FAILED tile in one run (0: none). A new run restarts tiles that failed
        in the previous one with a fresh budget; CANCELLED tiles only in a new run.
    poll : bool
        True: wait (:meth:`TiledExport.wait`) until every tile finished, polling every
        ``poll_seconds``, at most ``timeout`` seconds. False: start the first tasks and
        return; :meth:`TiledExport.status` or ``wait`` continue.
    sleep, clock : replaceable for tests.
    **export_kwargs : passed to every ``ee.batch.Export.image.*`` call (e.g. ``priority``,
        ``shardSize``, ``pyramidingPolicy`` for assets).

    Returns
    -------
    TiledExport
        ``tiles`` (one record per tile), ``files``, ``status()``, ``wait(timeout)``,
        ``summary()``, ``local_files(folder)``.

    Raises
    ------
    ExportStateError
        ``state_path`` belongs to another export (image, grid, bands, type, destination,
        prefix or tiling differ; the message lists which) or is unreadable.
    TiledExportError
        With ``poll``: tiles still failed after ``max_retries`` restarts; names them with
        Earth Engine's error messages (``.failed``).
    TimeoutError
        With ``poll`` and ``timeout``: tasks still running; they keep running.

    Notes
    -----
    Resuming: calling again with the same ``state_path`` (after a crash, a closed notebook or
    a TiledExportError) does not start completed tiles again, polls tasks still queued or
    running instead of starting them twice, and restarts failed ones. Earth Engine keeps
    running started tasks when Python stops. The state file is replaced atomically after
    every change, so an interruption never leaves half of one.
    """
    if not isinstance(prefix, str) or not _NAME_RE.fullmatch(prefix):
        raise ValueError(f"prefix must be 1-80 letters, digits or _.,:;- (Earth Engine task names), got {prefix!r}")
    for name, v, low in (("max_running", max_running, 1), ("max_retries", max_retries, 0)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    dest = _destination_args(destination, folder, bucket, asset_root)
    if band_names is not None:
        band_names = [str(b) for b in band_names]
        if not band_names:
            raise ValueError("band_names is empty; pass None for every band")
    grid = _region_grid(region, scale, crs)
    tile_px = _tile_px_for(tile_px, max_bytes, band_names, dtype)
    tiles = plan_export_tiles(grid, tile_px)
    image = ee.Image(image)
    prepared, fill = prepare_bands(image, band_names if band_names is not None else image.bandNames(), dtype)
    if destination == "asset":  # assets keep Earth Engine's mask rather than a fill value
        prepared = prepared.updateMask(prepared.neq(fill))
    t = grid.transform
    request = {"image_sha256": hashlib.sha256(_expression_key(prepared).encode()).hexdigest(),
               "crs": grid.crs.to_string(), "transform": [t.a, t.b, t.c, t.d, t.e, t.f], "shape": list(grid.shape),
               "tile_px": tile_px, "bands": band_names, "dtype": np.dtype(dtype).name, "nodata": fill,
               "prefix": prefix, **dest, "export_kwargs": json.loads(json.dumps(export_kwargs, default=repr))}
    state_path = Path(state_path)
    state = _load_state(state_path, request)
    if state is None:
        records = []
        for tile in tiles:
            name = f"{prefix}_{tile.index:04d}"
            file, output = _output_of(request, name)
            records.append({"index": tile.index, "name": name, "row_off": tile.row_off, "col_off": tile.col_off,
                            "height": tile.height, "width": tile.width, "file": file, "output": output,
                            "task_id": None, "operation": None, "state": "PENDING", "attempts": 0, "error": None})
        state = {"version": STATE_VERSION, "request": request, "tiles": records}
        _save_state(state_path, state)
        n_bands = len(band_names) if band_names is not None else None
        size = (f", {format_bytes(grid.height * grid.width * n_bands * np.dtype(dtype).itemsize)} uncompressed"
                if n_bands else "")
        print(f"tiled export {prefix}: {grid.height} x {grid.width} px{size} in {len(tiles)} tiles of <= {tile_px} px "
              f"(state: {state_path})")
    else:
        print(f"tiled export {prefix}: resuming from {state_path}")
    export = TiledExport(prepared, grid, state, state_path, max_running=max_running, max_retries=max_retries,
                         poll_seconds=poll_seconds, sleep=sleep, clock=clock, export_kwargs=export_kwargs)
    if poll:
        return export.wait(timeout)
    export.status()
    return export


# --- Mosaic of the exported tiles ----------------------------------------------------------
def _tile_files(files) -> list[Path]:
    if isinstance(files, (str, Path)):
        folder = Path(files)
        if not folder.is_dir():
            raise ValueError(f"files must be a list of GeoTIFFs or a folder holding them; {folder} is not a folder")
        found = sorted(folder.glob("*.tif"))
        if not found:
            raise FileNotFoundError(f"{folder}: no *.tif tiles to mosaic")
        return found
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("files is empty: no tiles to mosaic")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"tile file(s) not found: {', '.join(missing)}")
    return files


def _describe_tiles(files):
    """Each file's grid, checked against the first: the same CRS, pixel size, bands, type and
    nodata, on the same pixel lattice. Returns (reference dict, [(file, row_off, col_off, h, w)])."""
    from ..io import open_geotiff

    ref, placed = None, []
    for f in files:
        with open_geotiff(f, "an exported tile GeoTIFF") as src:
            t = src.transform
            info = {"crs": src.crs, "res": (t.a, t.e), "count": src.count, "dtype": src.dtypes[0],
                    "dtypes": set(src.dtypes), "nodata": src.nodata, "descriptions": src.descriptions}
            if t.b != 0 or t.d != 0:
                raise ValueError(f"{f}: rotated grid (transform {tuple(t)[:6]}); exported tiles are north-up")
            if len(info["dtypes"]) > 1:
                raise ValueError(f"{f}: bands of several types {sorted(info['dtypes'])}; expected one type")
            if ref is None:
                ref = dict(info, file=f, origin=(t.c, t.f))
            else:
                for key, what in (("crs", "CRS"), ("res", "pixel size"), ("count", "band count"),
                                  ("dtype", "data type"), ("nodata", "nodata value"), ("descriptions", "band names")):
                    a, b = info[key], ref[key]
                    same = (a == b) if key != "res" else np.allclose(a, b, rtol=1e-9, atol=0)
                    if key == "nodata" and a is not None and b is not None and np.isnan(a) and np.isnan(b):
                        same = True
                    if key == "descriptions" and (not any(a) or not any(b)):
                        same = True  # a tile without band descriptions does not disagree
                    if not same:
                        raise ValueError(f"{f}: {what} {a!r} differs from {b!r} of {ref['file']}; "
                                         "every tile must come from the same export")
            col = (t.c - ref["origin"][0]) / ref["res"][0]
            row = (t.f - ref["origin"][1]) / ref["res"][1]
            if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
                raise ValueError(f"{f}: its corner is {col - round(col):+.3g} col / {row - round(row):+.3g} row px "
                                 f"off the pixel grid of {ref['file']}; the tiles do not share one grid")
            placed.append((f, int(round(row)), int(round(col)), src.height, src.width))
    return ref, placed


def _check_overlaps(placed) -> None:
    r0 = np.array([p[1] for p in placed])
    c0 = np.array([p[2] for p in placed])
    r1 = r0 + np.array([p[3] for p in placed])
    c1 = c0 + np.array([p[4] for p in placed])
    for i in range(len(placed)):
        hit = (r0[i] < r1[i + 1:]) & (r0[i + 1:] < r1[i]) & (c0[i] < c1[i + 1:]) & (c0[i + 1:] < c1[i])
        if hit.any():
            j = i + 1 + int(np.argmax(hit))
            raise ValueError(f"tiles {placed[i][0]} and {placed[j][0]} overlap; each pixel must come from one tile "
                             "(a file listed twice, or tiles of two exports?)")


def mosaic_export_tiles(files, out_path, *, band_names=None, allow_gaps: bool = False, overwrite: bool = False,
                        block_px: int = 512, overview_resampling: str = "nearest") -> Path:
    """Mosaic exported tiles (downloaded from Drive or Cloud Storage) into one GeoTIFF.

    Parameters
    ----------
    files : list of paths, or a folder (every ``*.tif`` in it)
        The tiles, e.g. ``export.local_files(folder)`` of a :class:`TiledExport`. They must share
        CRS, pixel size, band count, data type, nodata and band names, and lie on one pixel
        grid without overlapping.
    out_path : path
        The mosaic: tiled 256 px, deflate-compressed, with internal overviews
        (``overview_resampling``), the tiles' type, nodata and band descriptions (or
        ``band_names``), on the grid of the tiles' union. Written atomically.
    allow_gaps : bool
        False: pixels of the union covered by no tile raise ValueError (a tile not downloaded).
        True: they are written as nodata.
    block_px : int
        Side of the blocks written at a time (a multiple of 256): memory is one block of
        every band, never the whole mosaic.

    Returns
    -------
    Path of the mosaic.
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from ..blocks import TILE_PX, add_overviews
    from ..io import geotiff_profile

    if isinstance(block_px, bool) or not isinstance(block_px, (int, np.integer)) or block_px < TILE_PX \
            or block_px % TILE_PX:
        raise ValueError(f"block_px must be a multiple of {TILE_PX} (the output's tile size), got {block_px!r}")
    out_path = Path(out_path)
    if out_path.exists() and not overwrite:
        raise FileExistsError(f"{out_path} exists; pass overwrite=True to replace it")
    files = _tile_files(files)
    ref, placed = _describe_tiles(files)
    _check_overlaps(placed)
    top = min(p[1] for p in placed)
    left = min(p[2] for p in placed)
    height = max(p[1] + p[3] for p in placed) - top
    width = max(p[2] + p[4] for p in placed) - left
    covered = sum(p[3] * p[4] for p in placed)
    if covered != height * width and not allow_gaps:
        raise ValueError(f"the {len(files)} tiles cover {covered} of the {height} x {width} px of their union "
                         f"({height * width - covered} px missing): a tile is missing? Pass allow_gaps=True to "
                         "write the gaps as nodata")
    nodata = ref["nodata"]
    if covered != height * width and nodata is None:
        raise ValueError("the tiles leave gaps but have no nodata value to fill them with")
    xres, yres = ref["res"]
    ox, oy = ref["origin"]
    grid = Grid(ref["crs"], Affine(xres, 0.0, ox + left * xres, 0.0, yres, oy + top * yres), height, width)
    names = list(band_names) if band_names is not None else list(ref["descriptions"])
    if len(names) != ref["count"]:
        raise ValueError(f"band_names has {len(names)} names for {ref['count']} bands")
    placed = [(f, r - top, c - left, h, w) for f, r, c, h, w in placed]
    profile = geotiff_profile(grid, ref["count"], ref["dtype"], nodata)
    profile.update(tiled=True, blockxsize=TILE_PX, blockysize=TILE_PX, BIGTIFF="IF_SAFER")
    fill = nodata if nodata is not None else 0
    print(f"{out_path.name}: mosaic of {len(files)} tiles, {ref['count']} bands x {height} x {width} px "
          f"({ref['dtype']})")
    with atomic_path(out_path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            sources = {}
            try:
                # block by block: each output block is assembled from the tiles it meets and written once
                for r in range(0, height, block_px):
                    for c in range(0, width, block_px):
                        bh, bw = min(block_px, height - r), min(block_px, width - c)
                        block = np.full((ref["count"], bh, bw), fill, dtype=ref["dtype"])
                        for f, tr, tc, th, tw in placed:
                            r0, r1 = max(r, tr), min(r + bh, tr + th)
                            c0, c1 = max(c, tc), min(c + bw, tc + tw)
                            if r0 >= r1 or c0 >= c1:
                                continue
                            src = sources.get(f) or sources.setdefault(f, rasterio.open(f))
                            block[:, r0 - r:r1 - r, c0 - c:c1 - c] = src.read(
                                window=Window(c0 - tc, r0 - tr, c1 - c0, r1 - r0))
                        dst.write(block, window=Window(c, r, bw, bh))
            finally:
                for src in sources.values():
                    src.close()
            for i, name in enumerate(names, start=1):
                if name:
                    dst.set_band_description(i, str(name))
        add_overviews(Path(tmp), overview_resampling)
    return out_path

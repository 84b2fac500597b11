"""Export to Google Drive for areas too large to download directly, and batch-task polling."""
from __future__ import annotations

import time

import ee

from ..io import Grid
from .download import prepare_bands


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

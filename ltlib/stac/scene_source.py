"""The STAC source of :func:`ltlib.scene.load`: a scene folder of annual composites, reused only
for the same request.

:func:`collect_scene` writes ``<folder>/landsat/<index>.tif`` (as the Earth Engine path
does), ``<folder>/landsat/stac_summary.json`` and, last, ``<folder>/stac_request.json`` (the
request: area, years, indices, catalog, composite options). A folder whose request file
matches is used as it is; any other request removes the request file first, so a run
interrupted half way leaves a folder that is never taken for a finished one.
"""
from __future__ import annotations

from pathlib import Path

from .. import config
from ..io import read_json, write_json
from ..landsat_c2 import DEFAULT_MASK
from .landsat import collect_landsat_to_dir
from .search import PC_STAC_URL

REQUEST_FILE = "stac_request.json"
#: Composite options a request may set (those of :func:`ltlib.stac.landsat.landsat_composites`).
COMPOSITE_KEYS = ("season", "method", "mask", "sensors", "sr_type", "harmonize")


def request_of(aoi, years, indices, stac_url, composite) -> dict:
    """The JSON-able request that identifies a STAC scene folder."""
    composite = dict(composite or {})
    unknown = set(composite) - set(COMPOSITE_KEYS)
    if unknown:
        raise ValueError(f"composite: unknown option(s) {sorted(unknown)}; choose from {COMPOSITE_KEYS}")
    opts = {"season": list(config.SEASON), "method": "medoid", "mask": list(DEFAULT_MASK), "sr_type": "uint16",
            "harmonize": False}
    opts.update({k: list(v) if isinstance(v, tuple) else v for k, v in composite.items()})
    return {"stac_url": str(stac_url or PC_STAC_URL), "aoi": [float(v) for v in aoi] if not isinstance(aoi, (str, dict))
            else aoi, "years": [int(years[0]), int(years[1])], "indices": list(indices), "composite": opts}


def _finished(folder: Path, request: dict) -> bool:
    path = folder / REQUEST_FILE
    if not path.exists():
        return False
    done = read_json(path, "the request of a STAC scene folder")
    stacks = [folder / "landsat" / f"{i.lower()}.tif" for i in request["indices"]]
    return done == request and all(p.exists() for p in stacks)


def collect_scene(download_dir, *, aoi=None, years=None, indices=None, stac_url=None, composite=None,
                  earlier=None, **kw) -> Path:
    """The scene folder for a STAC request: ``earlier`` (e.g. ``data_dir``) or ``download_dir``
    when it holds the same request, else built in ``download_dir``. Returns the folder."""
    aoi = config.AOI_BBOX if aoi is None else aoi
    y0, y1 = (config.START_YEAR, config.END_YEAR) if years is None else years
    y0 = max(int(config.START_YEAR if y0 is None else y0), 1972)
    y1 = int(config.END_YEAR if y1 is None else y1)
    indices = tuple(i.upper() for i in (indices or config.SAMPLE_INDICES))
    request = request_of(aoi, (y0, y1), indices, stac_url, composite)
    for folder in (earlier, download_dir):
        if folder is not None and _finished(Path(folder), request):
            print(f"using the STAC composites already in {folder} (same request)")
            return Path(folder)
    folder = Path(download_dir)
    for stale in (REQUEST_FILE, "scene.json"):  # from here until the end the folder is unfinished
        (folder / stale).unlink(missing_ok=True)
    opts = dict(request["composite"])
    opts["season"] = tuple(opts["season"])
    collect_landsat_to_dir(folder / "landsat", aoi=aoi, start_year=y0, end_year=y1, indices=indices,
                           stac_url=request["stac_url"], **opts, **kw)
    write_json(folder / REQUEST_FILE, request)
    return folder

"""Regional batches: run the notebooks for every site of a table, resumably, and compare the sites.

Usage::

    python -m ltlib.batch sites.csv --out runs/            # every site, notebooks 01-05
    python -m ltlib.batch sites.geojson --out runs/ --notebooks 01 02 --workers 2

The sites table (CSV, GeoJSON or GeoPackage) has one row per site: ``site_id``, and either
``data_dir`` (a scene folder, see :mod:`ltlib.scene`) or an area for Earth Engine (a polygon
geometry in GeoJSON/GeoPackage, or ``bbox`` = "west,south,east,north" in a CSV); optional
columns are notebook parameters (:data:`SITE_SPECS`), per site. The whole table is checked
before anything runs, against the notebooks' own schema (:data:`ltlib.params.NOTEBOOK_PARAMETERS`):
unknown columns, bad values, invalid polygons and unsafe site names are refused naming the row
and the column (:func:`read_sites`). Every path is made absolute before the notebooks run (the
kernel runs in ``notebooks/``), so a relative ``--out`` is under the current folder; ``--out``
is recorded in ``<out>/batch.json`` and another batch's folder is refused (``--overwrite``).

Each site's notebooks run in order with papermill into ``<out>/<site_id>/<notebook>/``; sites
run in parallel (``workers``, default sized to the machine) or on a dask.distributed cluster
(``dask_address``). A notebook whose ``summary.json`` is complete for the same parameters is
skipped, so an interrupted batch run again only runs what is unfinished; a site's failure is
recorded (notebook and the error's first line) and does not stop the other sites. A notebook
that stops because the scene lacks its input (04 without NDVI, 05 without Sentinel-1) leaves the
site "partial" and the site's other notebooks run.
``<out>/report.csv``, ``<out>/report_by_year.csv`` and ``<out>/report.html`` compare the sites;
they are written for the sites that finished whatever happens to the others.
"""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import hashlib
import json
import math
import multiprocessing
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import io
from .areas import check_bbox
from .params import LANDTRENDR_SPECS, NOTEBOOK_PARAMETERS

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
ALL_NOTEBOOKS = ("01_collect_landsat", "02_fit_landtrendr", "03_cluster_trajectories", "04_classify_trajectories",
                 "05_detect_sar_change")
#: Per-site columns: notebook parameters, typed and ranged by ltlib.params.NOTEBOOK_PARAMETERS (one
#: schema for notebooks and batches). Each goes to every notebook that has a parameter of its name,
#: except the years: notebook 01 cuts the scene to them and the later notebooks read that scene.
SITE_PARAMETERS = ("start_year", "end_year", "indices", "index", "ee_project", "use_gee", *LANDTRENDR_SPECS,
                   "loss_mag_min", "gain_mag_min", "mmu", "n_clusters", "epochs")
SITE_SPECS = {name: next(spec[name] for spec in NOTEBOOK_PARAMETERS.values() if name in spec)
              for name in SITE_PARAMETERS}
_FIRST_ONLY = ("start_year", "end_year")
ID_COLUMNS = ("site_id", "data_dir", "bbox", "geometry")
_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SitesError(ValueError):
    """A sites table that cannot be run (the message names the row and the column)."""


@dataclass
class Site:
    """One row of a sites table: ``site_id``, a ``data_dir`` or an ``aoi`` bbox, and parameters."""

    site_id: str
    data_dir: str | None = None
    aoi: tuple | None = None
    params: dict = field(default_factory=dict)

    def parameters(self, notebook: str, out: Path) -> dict:
        """The papermill parameters of ``notebook`` for this site, batch folder ``out``.

        Every path is absolute (``out`` resolved against the current folder here, once): the
        notebooks run with the kernel in ``notebooks/``, where a relative path means another
        folder. A site with an area gets ``data_dir=None``: without Earth Engine, notebook 01
        stops saying so, never falling back to the notebook's default (the sample)."""
        site_dir = Path(out).resolve() / self.site_id
        p = {"output_dir": str(site_dir / notebook)}
        if notebook == "01_collect_landsat":
            if self.data_dir is not None:
                p["data_dir"] = str(Path(self.data_dir).resolve())
            if self.aoi is not None:
                p.update(aoi=list(self.aoi), use_gee=True, data_dir=None)
        else:
            p["data_dir"] = str(site_dir / "01_collect_landsat")
            if self.aoi is not None:
                p["use_gee"] = True
        for name, value in self.params.items():
            if name in NOTEBOOK_PARAMETERS[notebook] and (name not in _FIRST_ONLY or notebook == ALL_NOTEBOOKS[0]):
                p[name] = value
        return p


# --------------------------------------------------------------------------- reading the table
_LIST_KINDS = ("indices", "models", "ints", "numbers")


def _shown(value) -> str:
    """A value from the table for a message: quoted when short and printable, else only its kind
    and length (a table may be a file linked here by mistake; its content stays out of reports)."""
    text = str(value)
    if len(text) <= 40 and text.isprintable():
        return repr(value) if not isinstance(value, str) else repr(text)
    return f"a {type(value).__name__} of {len(text)} characters"


def _from_text(spec, text: str):
    """A CSV cell (text) as the value of ``spec``'s kind; unparsable text is returned as is and
    refused by the spec's check."""
    from .params import _BAD, _parse_literal

    if spec.kind in ("int", "number"):
        v = _parse_literal(text)
        return text if v is _BAD or isinstance(v, bool) else v
    if spec.kind == "bool":
        low = text.lower()
        return True if low in ("true", "1", "yes") else False if low in ("false", "0", "no") else text
    if spec.kind in _LIST_KINDS:
        return [v for v in re.split(r"[;,\s]+", text) if v]
    return text


def _parameter(path, row, sid, column, value):
    """One per-site parameter checked against the notebooks' schema (params.NOTEBOOK_PARAMETERS)."""
    from .params import ParameterError

    spec = SITE_SPECS[column]
    given = value
    if isinstance(value, str):
        value = given = value.strip()
        if value == "":
            return None
        value = _from_text(spec, value)
    if value is None:
        return None
    try:
        v = spec.strict(column, value, "site")
    except ParameterError:
        shown = _shown(value if isinstance(value, list) else given)  # a cell as written ('inf', not inf)
        raise SitesError(f"{path}: row {row} ({sid}), column {column!r}: {shown} is not valid; it must be "
                         f"{spec.expected}") from None
    if spec.kind == "index":
        v = v.upper()
    if spec.kind == "indices":
        v = [x.upper() for x in v]
    return v


def _bbox(value, path, row, column) -> tuple:
    parts = value if isinstance(value, (list, tuple)) else re.split(r"[;,\s]+", str(value).strip())
    try:
        w, s, e, n = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise SitesError(f"{path}: row {row}, column {column!r}: {_shown(value)} is not 'west,south,east,north' in "
                         "degrees") from None
    try:
        return check_bbox((w, s, e, n))  # also refuses NaN and infinities
    except ValueError:
        raise SitesError(f"{path}: row {row}, column {column!r}: {_shown(value)} is not a west < east, south < north "
                         "box in degrees (longitude within -180..180, latitude within -90..90)") from None


def _check_geometry(geom, path, row) -> tuple:
    """The (west, south, east, north) of a site's polygon, after checking it: a valid, non-empty
    Polygon or MultiPolygon with longitudes in [-180, 180] and latitudes in [-90, 90]."""
    import shapely

    where = f"{path}: row {row}, the geometry"
    if geom is None or shapely.is_empty(geom):
        raise SitesError(f"{where} is empty; expected a polygon of the site (EPSG:4326 lon/lat)")
    if shapely.get_type_id(geom) not in (3, 6):  # Polygon, MultiPolygon
        raise SitesError(f"{where} is a {geom.geom_type}; expected a Polygon or MultiPolygon of the site")
    w, s, e, n = shapely.bounds(geom).tolist()
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise SitesError(f"{where} has coordinates that are not finite numbers")
    if not (-180 <= w and e <= 180 and -90 <= s and n <= 90):
        raise SitesError(f"{where} reaches ({w:g}, {s:g}, {e:g}, {n:g}): outside longitude -180..180 or latitude "
                         "-90..90; the table must be in EPSG:4326 (lon/lat degrees)")
    if not shapely.is_valid(geom):
        raise SitesError(f"{where} is not a valid polygon ({shapely.is_valid_reason(geom).split('[')[0].strip()})")
    if not (w < e and s < n):
        raise SitesError(f"{where} has no area")
    return (w, s, e, n)


def _rows_csv(path: Path) -> list[dict]:
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise SitesError(f"{path} is empty: expected a header with site_id and data_dir or bbox")
            rows = []
            for i, r in enumerate(reader, start=1):
                if None in r or any(v is None for v in r.values()):
                    raise SitesError(f"{path}: row {i} has {'more' if None in r else 'fewer'} cells than the header")
                rows.append(dict(r))
    except (UnicodeDecodeError, csv.Error):
        raise SitesError(f"{path} is not a UTF-8 CSV table (it looks binary or damaged)") from None
    if "geometry" in (reader.fieldnames or []):
        raise SitesError(f"{path}: a CSV gives a site's area in the column 'bbox' (west,south,east,north), not "
                         "'geometry' (use GeoJSON or GeoPackage for polygons)")
    return rows


def _rows_vector(path: Path, driver: str) -> list[dict]:
    """Rows of a GeoJSON or GeoPackage read through GDAL/OGR (pyogrio); geometries checked."""
    try:
        import pyogrio
        import pyogrio.raw
        import shapely
    except ImportError:
        raise ImportError("reading a GeoJSON or GeoPackage sites table needs pyogrio and shapely: "
                          "pip install pyogrio shapely (or use a CSV table with a bbox column)") from None
    kind = {"GeoJSON": "GeoJSON", "GPKG": "GeoPackage"}[driver]
    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # noqa: BLE001 - GDAL's messages may quote the file: say what it is not
        raise SitesError(f"{path} could not be read as {kind} (damaged, empty or another format)") from None
    features = [name for name, gtype in layers if gtype is not None]
    if len(features) != 1:
        raise SitesError(f"{path}: expected one layer of site polygons, found {len(features)} feature layers")
    try:
        info = pyogrio.read_info(path, layer=features[0])
        if info["driver"] != driver:
            raise SitesError(f"{path} is a {info['driver']} file, not {kind}")
        meta, _, geoms, values = pyogrio.raw.read(path, layer=features[0])
    except SitesError:
        raise
    except Exception:  # noqa: BLE001
        raise SitesError(f"{path} could not be read as {kind} (damaged, empty or another format)") from None
    crs = meta.get("crs")
    if crs not in (None, "EPSG:4326", "OGC:CRS84"):
        raise SitesError(f"{path}: geometries must be in EPSG:4326 (lon/lat), the layer is in {crs}")
    names = [str(n) for n in meta["fields"]]
    rows = []
    for i in range(len(geoms)):
        row = {}
        for name, col in zip(names, values):
            v = col[i]
            v = v.item() if hasattr(v, "item") else v
            if isinstance(v, float) and math.isnan(v):
                v = None  # OGR reads a null number as NaN
            row[name] = v
        geom = shapely.from_wkb(geoms[i]) if geoms[i] is not None else None
        row["geometry"] = _check_geometry(geom, path, i + 1)
        rows.append(row)
    return rows


#: Names a site may not have: the batch's own files in ``--out`` and names Windows reserves.
RESERVED_NAMES = {"report.csv", "report_by_year.csv", "report.html", "disturbed_area.png", "sites_map.png",
                  "batch.json", "con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)),
                  *(f"lpt{i}" for i in range(1, 10))}
MAX_SITE_ID = 64


def _site_id(value, path, row, seen: dict) -> str:
    sid = str(value if value is not None else "").strip()
    if not sid or len(sid) > MAX_SITE_ID or not _SITE_ID.match(sid) or sid.endswith("."):
        shown = _shown(sid) if len(sid) <= MAX_SITE_ID else f"a name of {len(sid)} characters"
        raise SitesError(f"{path}: row {row}, column 'site_id': {shown} must be a name of 1 to {MAX_SITE_ID} letters, "
                         "digits, '_', '-' or '.' that starts with a letter or digit and does not end with '.' (it "
                         "names the site's folder)")
    low = sid.lower()
    if low in RESERVED_NAMES or low.split(".")[0] in RESERVED_NAMES:
        raise SitesError(f"{path}: row {row}, column 'site_id': {sid!r} is a reserved name (a file of the batch "
                         "report, or a name Windows reserves); choose another")
    if low in seen:
        raise SitesError(f"{path}: row {row}, column 'site_id': {sid!r} appears twice (as {seen[low]!r} in row "
                         f"{list(seen).index(low) + 1}; names are compared ignoring case, as folders on macOS and "
                         "Windows are)")
    seen[low] = sid
    return sid


def read_sites(path) -> list[Site]:
    """Read and check a sites table (CSV, GeoJSON or GeoPackage) completely, before any site runs.

    Every value is checked against the notebooks' own schema (:data:`SITE_SPECS`, from
    :data:`ltlib.params.NOTEBOOK_PARAMETERS`): types, ranges (NaN and infinities refused), year
    order; ``site_id`` a safe folder name (letters, digits, ``_-.``; at most
    :data:`MAX_SITE_ID` characters; not a reserved name such as ``report.html``), unique ignoring
    case; a polygon valid, in lon/lat degrees; a ``bbox`` west < east, south < north in range.
    GeoJSON and GeoPackage are read through GDAL (pyogrio) and their geometries checked with
    shapely. Messages never quote long values (a table could be a file linked by mistake).

    Raises
    ------
    SitesError
        For an unknown column or a bad value, naming the row (1 = first site) and the column;
        for duplicate ``site_id``; for a row with neither or both of ``data_dir`` and an area.
    """
    from .params import _cross_checks

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sites table {path} does not exist")
    if not path.is_file():
        raise SitesError(f"{path} is a folder, expected a sites table (.csv, .geojson or .gpkg)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _rows_csv(path)
    elif suffix in (".geojson", ".json"):
        rows = _rows_vector(path, "GeoJSON")
    elif suffix == ".gpkg":
        rows = _rows_vector(path, "GPKG")
    else:
        raise SitesError(f"{path}: a sites table is .csv, .geojson or .gpkg, not {suffix or 'no extension'}")
    if not rows:
        raise SitesError(f"{path} has no sites")
    sites, seen = [], {}
    for i, row in enumerate(rows, start=1):
        unknown = [c for c in row if c not in ID_COLUMNS and c not in SITE_SPECS]
        if unknown:
            raise SitesError(f"{path}: row {i}, column {_shown(unknown[0])} is not a site column; known: "
                             f"{', '.join(ID_COLUMNS + tuple(SITE_SPECS))}")
        sid = _site_id(row.get("site_id"), path, i, seen)
        data_dir = row.get("data_dir")
        data_dir = str(data_dir).strip() or None if data_dir is not None else None
        aoi = row.get("geometry")
        if row.get("bbox") not in (None, ""):
            if aoi is not None:
                raise SitesError(f"{path}: row {i} ({sid}): give a polygon or a bbox, not both")
            aoi = _bbox(row["bbox"], path, i, "bbox")
        if (data_dir is None) == (aoi is None):
            raise SitesError(f"{path}: row {i} ({sid}): give either data_dir (a scene folder) or an area "
                             "(bbox / geometry) for Earth Engine")
        if data_dir is not None and not Path(data_dir).is_absolute():
            data_dir = str((path.parent / data_dir).resolve())  # relative to the table, as GIS users expect
        params = {}
        for col in SITE_SPECS:
            if col in row:
                v = _parameter(path, i, sid, col, row[col])
                if v is not None:
                    params[col] = v
        problems = _cross_checks({k: params[k] for k in ("start_year", "end_year") if k in params})
        if problems:
            raise SitesError(f"{path}: row {i} ({sid}): {problems[0]}")
        sites.append(Site(sid, data_dir, aoi, params))
    return sites


# --------------------------------------------------------------------------- running
def _fingerprint(notebook: str, params: dict) -> str:
    nb = (NOTEBOOKS_DIR / f"{notebook}.ipynb").read_bytes()
    blob = json.dumps({"params": params, "notebook": hashlib.sha256(nb).hexdigest()}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _is_done(folder: Path, fingerprint: str) -> bool:
    try:
        summary = json.loads((folder / "summary.json").read_text())
        stamp = json.loads((folder / "batch.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return summary.get("status") == "complete" and stamp.get("fingerprint") == fingerprint


def _stopped_since(folder: Path, started: float) -> bool:
    """True if the notebook in ``folder`` wrote a "stopped" summary.json since ``started``."""
    path = folder / "summary.json"
    if not path.exists() or path.stat().st_mtime < started - 1:
        return False
    try:
        return json.loads(path.read_text()).get("status") == "stopped"
    except ValueError:
        return False


def site_state(status: dict | None) -> str:
    """"failed", "partial" (some notebooks stopped for a missing input), "complete" or "not run"."""
    if not status:
        return "not run"
    if status.get("error"):
        return "failed"
    return "partial" if status.get("stopped") else "complete"


def _first_line(err) -> str:
    text = getattr(err, "evalue", None) or str(err)
    name = getattr(err, "ename", None) or type(err).__name__
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return f"{name}: {lines[0] if lines else ''}".strip()


def run_site(site: Site, out, notebooks=ALL_NOTEBOOKS, *, kernel: str = "python3") -> dict:
    """Run ``notebooks`` for one site, skipping those complete for the same parameters.

    A notebook that *stops* because the scene lacks what it needs (its ``summary.json`` says
    ``"stopped"``, e.g. notebook 04 on a scene without NDVI) does not stop the notebooks after it,
    which do not depend on it; it is recorded under ``"stopped"`` and run again next time (the
    user may have added the input). Any other error, or notebook 01 stopping (no scene), ends
    the site: the notebooks after it are "not run".

    Returns {"site_id", "notebooks": {name: "ran" | "skipped (complete)" | "stopped" | "failed"
    | "not run"}, "stopped": {name: reason}, "error": None or {"notebook", "message"}, "seconds"};
    also written to ``<out>/<site_id>/status.json``.
    """
    import papermill as pm

    out = Path(out).resolve()  # the kernel runs in notebooks/: only absolute paths mean the same there
    t0 = time.perf_counter()
    status = {"site_id": site.site_id, "notebooks": {}, "stopped": {}, "error": None}
    for nb in notebooks:
        if status["error"] is not None:
            status["notebooks"][nb] = "not run"
            continue
        params = site.parameters(nb, out)
        folder = Path(params["output_dir"])
        fp = _fingerprint(nb, params)
        if _is_done(folder, fp):
            status["notebooks"][nb] = "skipped (complete)"
            continue
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "batch.json").unlink(missing_ok=True)
        started = time.time()
        try:
            pm.execute_notebook(str(NOTEBOOKS_DIR / f"{nb}.ipynb"), str(folder / f"{nb}.ipynb"), parameters=params,
                                cwd=str(NOTEBOOKS_DIR), kernel_name=kernel, progress_bar=False)
            io.write_json(folder / "batch.json", {"fingerprint": fp, "parameters": params})
            status["notebooks"][nb] = "ran"
        except Exception as err:  # noqa: BLE001 - one site's failure must not stop the others
            if nb != ALL_NOTEBOOKS[0] and _stopped_since(folder, started):
                status["notebooks"][nb] = "stopped"
                status["stopped"][nb] = _first_line(err)
                continue
            status["notebooks"][nb] = "failed"
            status["error"] = {"notebook": nb, "message": _first_line(err)}
    status["seconds"] = round(time.perf_counter() - t0, 1)
    io.write_json(out / site.site_id / "status.json", status)
    return status


def default_workers() -> int:
    """Sites run at once: one per 2 cores and per 4 GB of memory (each notebook uses both)."""
    cores = os.cpu_count() or 1
    try:
        mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem_gb = 8
    return max(1, min(cores // 2, int(mem_gb // 4)))


BATCH_FILE = "batch.json"
#: Files of a batch in ``--out``: their presence without this batch's batch.json means another batch.
BATCH_OUTPUTS = ("report.csv", "report_by_year.csv", "report.html", BATCH_FILE)


class OutFolderError(ValueError):
    """``--out`` holds another batch's files (pass overwrite / --overwrite to replace them)."""


def claim_out(out, sites, *, table=None, overwrite: bool = False) -> Path:
    """Check that ``out`` is this batch's folder (or new) and record the batch in ``<out>/batch.json``.

    A folder with a batch report or ``batch.json`` of other sites (a different table), or with
    ``<site>/status.json`` files of sites not in this table, belongs to another batch: refused
    with :class:`OutFolderError` naming what was found, unless ``overwrite``. The same table
    (same file, or the same site ids) run again resumes. Returns ``out`` resolved."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise OutFolderError(f"--out {out} is a file, not a folder")
    ids = sorted(s.site_id for s in sites)
    table = str(Path(table).resolve()) if table is not None else None
    record = {"sites_table": table, "site_ids": ids}
    if out.is_dir() and not overwrite:
        found = None
        if (out / BATCH_FILE).exists():
            try:
                old = json.loads((out / BATCH_FILE).read_text())
                same = isinstance(old, dict) and (old.get("site_ids") == ids or
                                                  table is not None and old.get("sites_table") == table)
            except ValueError:
                same = False
            found = None if same else f"{BATCH_FILE} of another batch (other sites or another table)"
        else:
            reports = [n for n in BATCH_OUTPUTS if (out / n).exists()]
            known = {s.site_id for s in sites}
            others = sorted(p.parent.name for p in out.glob("*/status.json") if p.parent.name not in known)
            if reports:
                found = f"a batch report ({', '.join(reports)}) not made by this table"
            elif others:
                found = f"status.json of {len(others)} other site(s) ({', '.join(others[:3])})"
        if found:
            raise OutFolderError(f"--out {out} holds {found}; choose another folder, or pass --overwrite "
                                 "(overwrite=True) to replace that batch's report (its site folders are kept)")
    io.write_json(out / BATCH_FILE, record)
    return out


def run(sites, out, *, notebooks=ALL_NOTEBOOKS, workers: int | None = None, dask_address: str | None = None,
        progress: bool = True, table=None, overwrite: bool = False) -> list[dict]:
    """Run every site (see :func:`run_site`) and write the cross-site report; returns the statuses.

    ``out`` is resolved against the current folder here, once (the notebooks run in
    ``notebooks/``) and checked with :func:`claim_out` before any site runs. The report is
    written for the sites that finished whatever happens to the others (an error outside a
    notebook, a lost worker, Ctrl-C): those are recorded as failed."""
    from tqdm.auto import tqdm

    sites = list(sites)
    out = claim_out(out, sites, table=table, overwrite=overwrite)
    notebooks = tuple(notebooks)
    bar = tqdm(total=len(sites) * len(notebooks), desc="sites x notebooks", unit="notebook", disable=not progress)
    statuses = []

    def done(status):
        statuses.append(status)
        bar.update(len(notebooks))
        bar.set_postfix_str(f"{status['site_id']}: {site_state(status)}")

    def result(site, get):
        try:
            done(get())
        except Exception as err:  # noqa: BLE001 - the site's run itself broke (a lost worker ...): record it
            done(_broken(site, out, notebooks, err))

    try:
        if dask_address:
            try:
                from distributed import Client, as_completed
            except ImportError:
                raise ImportError("dask_address needs dask.distributed: pip install 'dask[distributed]'") from None
            with Client(dask_address) as client:
                futures = {client.submit(run_site, s, out, notebooks, pure=False): s for s in sites}
                for f in as_completed(futures):
                    result(futures[f], f.result)
        else:
            n = workers or default_workers()
            if n == 1:
                for s in sites:
                    result(s, lambda s=s: run_site(s, out, notebooks))
            else:
                # one process per site: papermill clients in threads of one process can stall each other
                ctx = multiprocessing.get_context("spawn")
                with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                    futures = {pool.submit(run_site, s, out, notebooks): s for s in sites}
                    for f in cf.as_completed(futures):
                        result(futures[f], f.result)
    finally:  # the report of what finished, whatever stopped the rest
        bar.close()
        order = {s.site_id: i for i, s in enumerate(sites)}
        statuses.sort(key=lambda s: order[s["site_id"]])
        write_report(sites, out, statuses)
    return statuses


def _broken(site: Site, out: Path, notebooks, err) -> dict:
    """The status of a site whose run broke outside its notebooks, written to its status.json."""
    status = {"site_id": site.site_id, "notebooks": {nb: "not run" for nb in notebooks}, "stopped": {},
              "error": {"notebook": "batch", "message": _first_line(err)}, "seconds": None}
    try:
        io.write_json(out / site.site_id / "status.json", status)
    except OSError:
        pass  # the report still lists it as failed
    return status


# --------------------------------------------------------------------------- the report
def _summary(out: Path, site_id: str, notebook: str) -> dict | None:
    path = out / site_id / notebook / "summary.json"
    if not path.exists():
        return None
    try:
        s = io.read_json(path, "the summary of a notebook run")
    except (OSError, ValueError):
        return None  # a damaged summary: the site's row says what its status.json says
    return s if s.get("status") == "complete" else None


def site_row(out, site: Site, status: dict | None = None) -> tuple[dict, list[dict]]:
    """One site's report row and its per-year rows, from the notebooks' summary.json files."""
    out = Path(out)
    error = (status or {}).get("error")
    stopped = (status or {}).get("stopped") or {}
    row = {"site_id": site.site_id, "status": site_state(status),
           "failed_notebook": error["notebook"] if error else None, "error": error["message"] if error else None,
           "stopped": "; ".join(f"{nb}: {why}" for nb, why in stopped.items()) or None,
           "seconds": (status or {}).get("seconds")}
    by_year = []
    s1 = _summary(out, site.site_id, "01_collect_landsat")
    if s1:
        sc = s1["scene"]
        row.update(source=sc["source"], crs=sc["crs"], height=sc["height"], width=sc["width"],
                   first_year=sc["years"][0], last_year=sc["years"][1],
                   west=sc["bounds_lonlat"][0], south=sc["bounds_lonlat"][1],
                   east=sc["bounds_lonlat"][2], north=sc["bounds_lonlat"][3])
    s2 = _summary(out, site.site_id, "02_fit_landtrendr")
    if s2:
        lt = s2["landtrendr"]
        row.update(index=lt["index"], loss_fraction=lt["loss_fraction"], gain_fraction=lt["gain_fraction"],
                   most_frequent_disturbance_year=lt["most_frequent_disturbance_year"],
                   loss_area_ha=round(sum(lt["loss_area_ha_by_year"].values()), 2),
                   gain_area_ha=round(sum(lt["gain_area_ha_by_year"].values()), 2))
        # sample-based estimates with 95% CI (ltlib.change_area; None where no reference labels)
        ca = s2.get("change_area") or {}
        est, est_year = ca.get("estimates") or {}, ca.get("loss_by_year") or {}
        for d in ("loss", "gain"):
            row[f"{d}_area_estimate_ha"] = (est.get(d) or {}).get("area_ha")
            row[f"{d}_area_ci95_ha"] = (est.get(d) or {}).get("ci_ha")
        years = sorted({int(y) for y in lt["loss_area_ha_by_year"]} | {int(y) for y in lt["gain_area_ha_by_year"]}
                       | {int(y) for y in est_year})
        for y in years:
            by_year.append({"site_id": site.site_id, "year": y,
                            "loss_area_ha": lt["loss_area_ha_by_year"].get(str(y), 0.0),
                            "gain_area_ha": lt["gain_area_ha_by_year"].get(str(y), 0.0),
                            "loss_area_estimate_ha": (est_year.get(str(y)) or {}).get("area_ha"),
                            "loss_area_ci95_ha": (est_year.get(str(y)) or {}).get("ci_ha")})
    s3 = _summary(out, site.site_id, "03_cluster_trajectories")
    if s3 and s3.get("univariate"):
        sizes = s3["univariate"]["cluster_sizes"]
        row["cluster_shares"] = json.dumps([round(v / max(sum(sizes), 1), 4) for v in sizes])
    s4 = _summary(out, site.site_id, "04_classify_trajectories")
    if s4:
        px_ha = None
        if s1:
            px_ha = s1["scene"]["pixel_area_m2"] / 1e4
        for name, n in s4.get("class_pixels", {}).items():
            row[f"class_area_ha_{name}"] = None if px_ha is None else round(n * px_ha, 2)
        olof = s4.get("olofsson")
        if olof and olof.get("area_ha") is not None:
            row["class_area_olofsson_ha"] = json.dumps(olof["area_ha"])
            row["class_area_olofsson_ci_ha"] = json.dumps(olof.get("area_ha_ci"))
    s5 = _summary(out, site.site_id, "05_detect_sar_change")
    if s5:
        c = s5["counts"]
        row.update(s1_changed_pixels=c["n_changed"], s1_changes=c["n_changes"], s1_brighter=c["n_brighter"],
                   s1_darker=c["n_darker"])
    return row, by_year


def write_report(sites, out, statuses=None) -> dict[str, Path]:
    """``report.csv`` (a row per site), ``report_by_year.csv`` (loss and gain area per year and
    site), ``disturbed_area.png`` (all sites on one figure), ``sites_map.png`` and ``report.html``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out).resolve()
    by_status = {s["site_id"]: s for s in (statuses or [])}
    for site in sites:
        if site.site_id not in by_status and (out / site.site_id / "status.json").exists():
            try:
                by_status[site.site_id] = io.read_json(out / site.site_id / "status.json", "a site's status")
            except (OSError, ValueError):
                pass  # reported as "not run"
    rows, years = [], []
    for site in sites:
        try:
            r, y = site_row(out, site, by_status.get(site.site_id))
        except (KeyError, TypeError, ValueError, AttributeError) as err:  # a summary of another layout
            r, y = {"site_id": site.site_id, "status": "failed", "failed_notebook": "report",
                    "error": f"its summary.json files could not be read ({type(err).__name__})"}, []
        rows.append(r)
        years += y
    report = pd.DataFrame(rows)
    per_year = pd.DataFrame(years, columns=["site_id", "year", "loss_area_ha", "gain_area_ha", "loss_area_estimate_ha",
                                            "loss_area_ci95_ha"])
    paths = {}
    with io.atomic_path(out / "report.csv") as tmp:
        report.to_csv(tmp, index=False)
    paths["report"] = out / "report.csv"
    with io.atomic_path(out / "report_by_year.csv") as tmp:
        per_year.to_csv(tmp, index=False)
    paths["report_by_year"] = out / "report_by_year.csv"
    fig, ax = plt.subplots(figsize=(11, 4))
    for sid, grp in per_year.groupby("site_id"):
        ax.plot(grp["year"], grp["loss_area_ha"], marker="o", ms=3, label=sid)
    ax.set_xlabel("Year of detection of the greatest loss")
    ax.set_ylabel("Disturbed area (ha)")
    ax.set_title("Disturbed (loss) area per year, all sites")
    if len(per_year):
        ax.legend()
    with io.atomic_path(out / "disturbed_area.png") as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format="png")
    plt.close(fig)
    paths["disturbed_area"] = out / "disturbed_area.png"
    fig, ax = plt.subplots(figsize=(7, 5))
    colours = {"complete": "tab:blue", "partial": "tab:orange", "failed": "tab:red"}
    for _, r in report.iterrows():
        if pd.notna(r.get("west")):
            ax.add_patch(plt.Rectangle((r["west"], r["south"]), r["east"] - r["west"], r["north"] - r["south"],
                                       fill=False, lw=2, color=colours.get(r["status"], "tab:gray")))
            ax.annotate(r["site_id"], (r["west"], r["north"]), fontsize=8)
    if "west" in report and report["west"].notna().any():
        ax.set_xlim(report["west"].min() - 1, report["east"].max() + 1)
        ax.set_ylim(report["south"].min() - 1, report["north"].max() + 1)
    ax.set_xlabel("Longitude (degrees)")
    ax.set_ylabel("Latitude (degrees)")
    ax.set_title("Sites (blue: complete, orange: partial, red: failed)")
    with io.atomic_path(out / "sites_map.png") as tmp:
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format="png")
    plt.close(fig)
    paths["sites_map"] = out / "sites_map.png"
    html = ("<!doctype html><meta charset='utf-8'><title>ltlib batch report</title>"
            "<h1>Sites compared</h1><img src='disturbed_area.png' alt='disturbed area per year'>"
            "<img src='sites_map.png' alt='sites'>" + report.to_html(index=False, na_rep="") +
            "<h2>Loss and gain area per year</h2>" + per_year.to_html(index=False))
    paths["html"] = io.write_text(out / "report.html", html)
    return paths


# --------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ltlib.batch", description=__doc__.split("\n\n")[0])
    ap.add_argument("sites", help="sites table: .csv, .geojson or .gpkg")
    ap.add_argument("--out", required=True, help="batch folder (<out>/<site_id>/<notebook>/)")
    ap.add_argument("--notebooks", nargs="+", default=None,
                    help="notebooks to run by number or name, e.g. 01 02 (default: 01-05)")
    ap.add_argument("--workers", type=int, default=None, help="sites at once (default: sized to the machine)")
    ap.add_argument("--dask-address", default=None, help="run the sites on this dask.distributed scheduler")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace the report of another batch in --out (its site folders are kept)")
    a = ap.parse_args(argv)
    notebooks = ALL_NOTEBOOKS
    if a.notebooks:
        chosen = [n for n in ALL_NOTEBOOKS if any(n == x or n.startswith(x) for x in a.notebooks)]
        bad = [x for x in a.notebooks if not any(n == x or n.startswith(x) for n in ALL_NOTEBOOKS)]
        if bad:
            print(f"error: unknown notebook {bad[0]!r}; choose from {', '.join(ALL_NOTEBOOKS)}", file=sys.stderr)
            return 2
        notebooks = tuple(chosen)
    try:
        sites = read_sites(a.sites)
        out = claim_out(a.out, sites, table=a.sites, overwrite=a.overwrite)  # before any site runs
    except (SitesError, OutFolderError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    statuses = run(sites, out, notebooks=notebooks, workers=a.workers, dask_address=a.dask_address, table=a.sites,
                   overwrite=True)  # claimed above
    failed = [s for s in statuses if s["error"]]
    for s in statuses:
        state = site_state(s)
        if s["error"]:
            state = f"failed in {s['error']['notebook']}: {s['error']['message']}"
        elif s.get("stopped"):
            state = "partial, " + "; ".join(f"{nb} stopped: {why}" for nb, why in s["stopped"].items())
        print(f"{s['site_id']}: {state} ({s['seconds']} s; " +
              ", ".join(f"{k[:2]} {v}" for k, v in s["notebooks"].items()) + ")")
    print(f"report: {out / 'report.csv'} and {out / 'report.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

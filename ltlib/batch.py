"""Regional batches: run the notebooks for every site of a table, resumably, and compare the sites.

Usage::

    python -m ltlib.batch sites.csv --out runs/            # every site, notebooks 01-05
    python -m ltlib.batch sites.geojson --out runs/ --notebooks 01 02 --workers 2

The sites table (CSV, GeoJSON or GeoPackage) has one row per site: ``site_id``, and either
``data_dir`` (a scene folder, see :mod:`ltlib.scene`) or an area for Earth Engine (a polygon
geometry in GeoJSON/GeoPackage, or ``bbox`` = "west,south,east,north" in a CSV); optional
columns are notebook parameters (:data:`SITE_COLUMNS`), per site. Unknown columns and bad
values are refused before anything runs, naming the row and the column.

Each site's notebooks run in order with papermill into ``<out>/<site_id>/<notebook>/``; sites
run in parallel (``workers``, default sized to the machine) or on a dask.distributed cluster
(``dask_address``). A notebook whose ``summary.json`` is complete for the same parameters is
skipped, so an interrupted batch run again only runs what is unfinished; a site's failure is
recorded (notebook and the error's first line) and does not stop the other sites. A notebook
that stops because the scene lacks its input (04 without NDVI, 05 without Sentinel-1) leaves the
site "partial" and the site's other notebooks run.
``<out>/report.csv``, ``<out>/report_by_year.csv`` and ``<out>/report.html`` compare the sites.
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
import sqlite3
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import io

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
ALL_NOTEBOOKS = ("01_collect_landsat", "02_fit_landtrendr", "03_cluster_trajectories", "04_classify_trajectories",
                 "05_detect_sar_change")
#: Optional per-site columns: parameter name -> (type, which notebooks take it).
SITE_COLUMNS = {
    "start_year": (int, ("01",)),
    "end_year": (int, ("01",)),
    "indices": (list, ("01",)),
    "index": (str, ("02",)),
    "ee_project": (str, ALL_NOTEBOOKS),
    "use_gee": (bool, ALL_NOTEBOOKS),
    "max_segments": (int, ("02",)),
    "spike_threshold": (float, ("02",)),
    "vertex_count_overshoot": (int, ("02",)),
    "prevent_one_year_recovery": (bool, ("02",)),
    "recovery_threshold": (float, ("02",)),
    "pval_threshold": (float, ("02",)),
    "best_model_proportion": (float, ("02",)),
    "min_observations_needed": (int, ("02",)),
    "loss_mag_min": (float, ("02",)),
    "gain_mag_min": (float, ("02",)),
    "mmu": (int, ("02",)),
    "n_clusters": (int, ("03",)),
    "epochs": (int, ("04",)),
}
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
        """The papermill parameters of ``notebook`` for this site, batch folder ``out``."""
        site_dir = out / self.site_id
        p = {"output_dir": str(site_dir / notebook)}
        if notebook == "01_collect_landsat":
            if self.data_dir is not None:
                p["data_dir"] = str(Path(self.data_dir).resolve())
            if self.aoi is not None:
                p.update(aoi=list(self.aoi), use_gee=True)
        else:
            p["data_dir"] = str(site_dir / "01_collect_landsat")
            if self.aoi is not None:
                p["use_gee"] = True
        for name, value in self.params.items():
            if any(notebook.startswith(n) for n in SITE_COLUMNS[name][1]):
                p[name] = value
        return p


# --------------------------------------------------------------------------- reading the table
def _parse(value, kind, row, column):
    if isinstance(value, str):
        value = value.strip()
        if value == "":
            return None
    if value is None:
        return None
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes"):
                return True
            if str(value).lower() in ("false", "0", "no"):
                return False
            raise ValueError
        if kind is int:
            f = float(value)
            if f != int(f):
                raise ValueError
            return int(f)
        if kind is float:
            f = float(value)
            if not math.isfinite(f):
                raise ValueError
            return f
        if kind is list:
            items = value if isinstance(value, list) else re.split(r"[;,\s]+", str(value))
            return [str(v).strip().upper() for v in items if str(v).strip()]
        return str(value)
    except (TypeError, ValueError):
        raise SitesError(f"row {row}, column {column!r}: {value!r} is not a valid {kind.__name__}") from None


def _bbox(value, row, column) -> tuple:
    parts = value if isinstance(value, (list, tuple)) else re.split(r"[;,\s]+", str(value).strip())
    try:
        w, s, e, n = (float(v) for v in parts)
    except (TypeError, ValueError):
        raise SitesError(f"row {row}, column {column!r}: {value!r} is not 'west,south,east,north' in degrees") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise SitesError(f"row {row}, column {column!r}: {value!r} is not a west < east, south < north box in degrees")
    return (w, s, e, n)


def _bbox_of_coords(coords) -> tuple:
    flat = []

    def walk(c):
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            flat.append((float(c[0]), float(c[1])))
        else:
            for x in c:
                walk(x)

    walk(coords)
    xs, ys = [p[0] for p in flat], [p[1] for p in flat]
    return (min(xs), min(ys), max(xs), max(ys))


def _rows_csv(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise SitesError(f"{path} is empty: expected a header with site_id and data_dir or bbox")
        return [dict(r) for r in reader]


def _rows_geojson(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SitesError(f"{path} is not valid GeoJSON: {err}") from None
    if data.get("type") != "FeatureCollection":
        raise SitesError(f"{path}: expected a GeoJSON FeatureCollection, got type {data.get('type')!r}")
    rows = []
    for i, feat in enumerate(data.get("features", []), start=1):
        row = dict(feat.get("properties") or {})
        if feat.get("geometry"):
            row["geometry"] = _bbox_of_coords(feat["geometry"]["coordinates"])
        rows.append(row)
    return rows


def _wkb_points(blob: bytes) -> list[tuple[float, float]]:
    """All (x, y) of a WKB geometry (points, lines, polygons and their multi-forms)."""
    pts, pos = [], 0

    def geom():
        nonlocal pos
        order = "<" if blob[pos] == 1 else ">"
        gtype = struct.unpack_from(order + "I", blob, pos + 1)[0]
        pos += 5
        base, dims = gtype % 1000, 2 + (gtype // 1000 in (1, 2)) + (gtype // 1000 == 3)
        def coords(n):
            nonlocal pos
            for _ in range(n):
                x, y = struct.unpack_from(order + "dd", blob, pos)
                pts.append((x, y))
                pos += 8 * dims
        if base == 1:
            coords(1)
        elif base == 2:
            n = struct.unpack_from(order + "I", blob, pos)[0]; pos += 4; coords(n)  # noqa: E702
        elif base == 3:
            rings = struct.unpack_from(order + "I", blob, pos)[0]; pos += 4  # noqa: E702
            for _ in range(rings):
                n = struct.unpack_from(order + "I", blob, pos)[0]; pos += 4; coords(n)  # noqa: E702
        elif base in (4, 5, 6, 7):
            n = struct.unpack_from(order + "I", blob, pos)[0]; pos += 4  # noqa: E702
            for _ in range(n):
                geom()
        else:
            raise ValueError(f"WKB geometry type {gtype}")

    geom()
    return pts


def _gpkg_geometry_bbox(blob: bytes) -> tuple:
    """The bbox of a GeoPackage geometry blob (header 'GP', flags, srs id, envelope, WKB)."""
    if blob[:2] != b"GP":
        raise ValueError("not a GeoPackage geometry")
    flags = blob[3]
    env = (0, 32, 48, 48, 64)[(flags >> 1) & 0b111]
    pts = _wkb_points(blob[8 + env:])
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs), min(ys), max(xs), max(ys))


def _rows_gpkg(path: Path) -> list[dict]:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        tables = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'").fetchall()
    except sqlite3.DatabaseError as err:
        raise SitesError(f"{path} is not a GeoPackage ({err})") from None
    if len(tables) != 1:
        raise SitesError(f"{path}: expected one feature table, found {len(tables)}")
    table = tables[0][0]
    geom_col, srs = con.execute("SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?",
                                (table,)).fetchone()
    if srs not in (4326, 0, -1):
        raise SitesError(f"{path}: geometries must be in EPSG:4326 (lon/lat), the table has srs_id {srs}")
    cur = con.execute(f'SELECT * FROM "{table}"')
    names = [d[0] for d in cur.description]
    rows = []
    for i, values in enumerate(cur.fetchall(), start=1):
        row = {k: v for k, v in zip(names, values) if k not in (geom_col, "fid")}
        blob = values[names.index(geom_col)]
        if blob is not None:
            try:
                row["geometry"] = _gpkg_geometry_bbox(bytes(blob))
            except (ValueError, struct.error, IndexError) as err:
                raise SitesError(f"{path}: row {i}, column {geom_col!r}: unreadable geometry ({err})") from None
        rows.append(row)
    con.close()
    return rows


def read_sites(path) -> list[Site]:
    """Read and check a sites table (CSV, GeoJSON or GeoPackage); see the module docstring.

    Raises
    ------
    SitesError
        For an unknown column or a bad value, naming the row (1 = first site) and the column;
        for duplicate ``site_id``; for a row with neither or both of ``data_dir`` and an area.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sites table {path} does not exist")
    suffix = path.suffix.lower()
    readers = {".csv": _rows_csv, ".geojson": _rows_geojson, ".json": _rows_geojson, ".gpkg": _rows_gpkg}
    if suffix not in readers:
        raise SitesError(f"{path}: a sites table is .csv, .geojson or .gpkg, not {suffix or 'no extension'}")
    rows = readers[suffix](path)
    if not rows:
        raise SitesError(f"{path} has no sites")
    sites, seen = [], set()
    for i, row in enumerate(rows, start=1):
        unknown = [c for c in row if c not in ID_COLUMNS and c not in SITE_COLUMNS]
        if unknown:
            raise SitesError(f"{path}: row {i}, column {unknown[0]!r} is not a site column; known: "
                             f"{', '.join(ID_COLUMNS + tuple(SITE_COLUMNS))}")
        sid = str(row.get("site_id") or "").strip()
        if not _SITE_ID.match(sid):
            raise SitesError(f"{path}: row {i}, column 'site_id': {sid!r} must be a name of letters, digits, "
                             "'_', '-' or '.' (it names the site's folder)")
        if sid in seen:
            raise SitesError(f"{path}: row {i}, column 'site_id': {sid!r} appears twice")
        seen.add(sid)
        data_dir = (str(row["data_dir"]).strip() or None) if row.get("data_dir") not in (None, "") else None
        aoi = None
        if row.get("geometry") is not None:
            aoi = tuple(row["geometry"])
        if row.get("bbox") not in (None, ""):
            aoi = _bbox(row["bbox"], i, "bbox")
        if (data_dir is None) == (aoi is None):
            raise SitesError(f"{path}: row {i} ({sid}): give either data_dir (a scene folder) or an area "
                             "(bbox / geometry) for Earth Engine")
        if data_dir is not None and not Path(data_dir).is_absolute():
            data_dir = str((path.parent / data_dir).resolve())  # relative to the table, as GIS users expect
        params = {}
        for col, (kind, _) in SITE_COLUMNS.items():
            if col in row:
                v = _parse(row[col], kind, i, col)
                if v is not None:
                    params[col] = v
        if "index" in params:
            params["index"] = params["index"].upper()
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

    out = Path(out)
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


def run(sites, out, *, notebooks=ALL_NOTEBOOKS, workers: int | None = None, dask_address: str | None = None,
        progress: bool = True) -> list[dict]:
    """Run every site (see :func:`run_site`) and write the cross-site report; returns the statuses."""
    from tqdm.auto import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sites = list(sites)
    notebooks = tuple(notebooks)
    bar = tqdm(total=len(sites) * len(notebooks), desc="sites x notebooks", unit="notebook", disable=not progress)
    statuses = []

    def done(status):
        statuses.append(status)
        bar.update(len(notebooks))
        bar.set_postfix_str(f"{status['site_id']}: {site_state(status)}")

    if dask_address:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise ImportError("dask_address needs dask.distributed: pip install 'dask[distributed]'") from None
        with Client(dask_address) as client:
            futures = [client.submit(run_site, s, out, notebooks, pure=False) for s in sites]
            for f in as_completed(futures):
                done(f.result())
    else:
        n = workers or default_workers()
        if n == 1:
            for s in sites:
                done(run_site(s, out, notebooks))
        else:
            # one process per site: papermill clients in threads of one process can stall each other
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
                for f in cf.as_completed([pool.submit(run_site, s, out, notebooks) for s in sites]):
                    done(f.result())
    bar.close()
    order = {s.site_id: i for i, s in enumerate(sites)}
    statuses.sort(key=lambda s: order[s["site_id"]])
    write_report(sites, out, statuses)
    return statuses


# --------------------------------------------------------------------------- the report
def _summary(out: Path, site_id: str, notebook: str) -> dict | None:
    path = out / site_id / notebook / "summary.json"
    if not path.exists():
        return None
    s = json.loads(path.read_text())
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

    out = Path(out)
    by_status = {s["site_id"]: s for s in (statuses or [])}
    for site in sites:
        if site.site_id not in by_status and (out / site.site_id / "status.json").exists():
            by_status[site.site_id] = json.loads((out / site.site_id / "status.json").read_text())
    rows, years = [], []
    for site in sites:
        r, y = site_row(out, site, by_status.get(site.site_id))
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
    a = ap.parse_args(argv)
    try:
        sites = read_sites(a.sites)
    except (SitesError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    notebooks = ALL_NOTEBOOKS
    if a.notebooks:
        chosen = [n for n in ALL_NOTEBOOKS if any(n == x or n.startswith(x) for x in a.notebooks)]
        bad = [x for x in a.notebooks if not any(n == x or n.startswith(x) for n in ALL_NOTEBOOKS)]
        if bad:
            print(f"error: unknown notebook {bad[0]!r}; choose from {', '.join(ALL_NOTEBOOKS)}", file=sys.stderr)
            return 2
        notebooks = tuple(chosen)
    statuses = run(sites, a.out, notebooks=notebooks, workers=a.workers, dask_address=a.dask_address)
    failed = [s for s in statuses if s["error"]]
    for s in statuses:
        state = site_state(s)
        if s["error"]:
            state = f"failed in {s['error']['notebook']}: {s['error']['message']}"
        elif s.get("stopped"):
            state = "partial, " + "; ".join(f"{nb} stopped: {why}" for nb, why in s["stopped"].items())
        print(f"{s['site_id']}: {state} ({s['seconds']} s; " +
              ", ".join(f"{k[:2]} {v}" for k, v in s["notebooks"].items()) + ")")
    print(f"report: {Path(a.out) / 'report.csv'} and {Path(a.out) / 'report.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Faults of issue 30: sites tables, batch folders, scene folders handed over, summary files,
temporary files, raster headers, and the lower-level calls that were silent.

Each case asserts the exact outcome: the error type and the key words of its message, the
files present or absent afterwards, and that no content of a file appears in a message. The
cases and their outcomes are in docs/faults.md (tests/faults.py). The batch cases here run no
notebook (``run_site`` is replaced where a run is needed); tests/test_batch.py runs the
README's batch command with real notebooks.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyogrio.raw
import pytest
from affine import Affine

from ltlib import batch, io, params, scene
from ltlib.io import RasterFileError

from .faults import Fault, cases, expect_error

ROOT = Path(__file__).resolve().parents[1]
GRID = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 8, 9)
YEARS = np.arange(2000, 2008)
#: What a credentials file linked in by mistake holds; no message may show any of it.
SECRET = "1//0gREFRESHtokenSECRETvalue-abcdefghijklmnopqrstuvwxyz0123456789"
CREDENTIALS = json.dumps({"refresh_token": SECRET, "client_secret": "s3cr3t"})


def refused(fault: Fault, tmp_path) -> BaseException:
    """Make ``fault``, trigger it, assert its exact error type and message (one line) and that
    no content of a linked credentials file or long value is in it; returns the error."""
    err = expect_error(fault, tmp_path, one_line=True)
    assert SECRET not in str(err) and "refresh" not in str(err) and LONG_ID not in str(err)
    return err


def _stack(path, years=YEARS, data=None, **kw):
    if data is None:
        data = np.random.default_rng(0).integers(100, 900, (len(years),) + GRID.shape).astype(float)
    return io.write_stack(path, data, years, GRID, scale=0.001, **kw)


def _ring(w, s, e, n):
    return [[w, s], [e, s], [e, n], [w, n], [w, s]]


def _geojson(geometry, props=None, text=None):
    def make(tmp_path):
        p = tmp_path / "sites.geojson"
        p.write_text(text if text is not None else json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": props or {"site_id": "a"}, "geometry": geometry}]}))
        return lambda: batch.read_sites(p)
    return make


def _csv(text, name="sites.csv"):
    def make(tmp_path):
        (tmp_path / "scene").mkdir(exist_ok=True)
        p = tmp_path / name
        p.write_text(text.format(d=tmp_path / "scene"))
        return lambda: batch.read_sites(p)
    return make


def _wkb_polygon(ring):
    return struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", *p) for p in ring)


def _gpkg(path, layer, site_ids, ring=((-1.0, 50.0), (-0.5, 50.0), (-0.5, 50.2), (-1.0, 50.2), (-1.0, 50.0))):
    pyogrio.raw.write(path, np.array([_wkb_polygon(ring)] * len(site_ids), dtype=object),
                      [np.array(site_ids, dtype=object)], fields=["site_id"], geometry_type="Polygon",
                      crs="EPSG:4326", driver="GPKG", layer=layer, append=path.exists())
    return path


def _two_layers(tmp_path):
    p = _gpkg(tmp_path / "sites.gpkg", "sites", ["a"])
    _gpkg(p, "more", ["b"])
    return lambda: batch.read_sites(p)


def _linked_table(tmp_path):
    secret = tmp_path / "credentials.txt"
    secret.write_text(f"refresh_token={SECRET}\nclient=ltlib\n")  # its first line read as the header
    (tmp_path / "sites.csv").symlink_to(secret)
    return lambda: batch.read_sites(tmp_path / "sites.csv")


BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
LONG_ID = "s" * 300
ROW = "site_id,data_dir,{col}\na,{{d}},{val}\n"
CELL = r"sites\.csv: row 1 \(a\), column '{col}': {val} is not valid; it must be {must}"

TABLE_FAULTS = [
    Fault("lon-500", "sites", "GeoJSON polygon reaching longitude 500", "accepted", batch.SitesError,
          r"row 1, the geometry reaches \(-112, 40, 500, 41\): outside longitude -180\.\.180",
          _geojson({"type": "Polygon", "coordinates": [_ring(-112, 40, 500, 41)]})),
    Fault("lat-95", "sites", "CSV bbox with latitude 95", "accepted", batch.SitesError,
          r"row 1, column 'bbox': '10,50,11,95' is not a west < east, south < north box in degrees \(longitude "
          r"within -180\.\.180, latitude within -90\.\.90\)", _csv('site_id,bbox\na,"10,50,11,95"\n')),
    Fault("bbox-inf", "sites", "CSV bbox with an infinite east", "-", batch.SitesError,
          r"row 1, column 'bbox': '10,50,inf,51' is not a west < east", _csv('site_id,bbox\na,"10,50,inf,51"\n')),
    Fault("geojson-empty", "sites", "0-byte sites.geojson", "KeyError / JSONDecodeError", batch.SitesError,
          r"sites\.geojson could not be read as GeoJSON \(damaged, empty or another format\)$",
          _geojson(None, text="")),
    Fault("geojson-cut", "sites", "GeoJSON cut short", "JSONDecodeError", batch.SitesError,
          r"sites\.geojson could not be read as GeoJSON", _geojson(None, text='{"type": "FeatureCollection", "featu')),
    Fault("geojson-deep", "sites", "GeoJSON with coordinates nested 20,000 deep", "RecursionError", batch.SitesError,
          r"sites\.geojson could not be read as GeoJSON",
          _geojson(None, text='{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": '
                   '{"site_id": "a"}, "geometry": {"type": "Polygon", "coordinates": ' + "[" * 20000 + "]" * 20000
                   + "}}]}")),
    Fault("geojson-no-features", "sites", "GeoJSON FeatureCollection with no features", "-", batch.SitesError,
          r"sites\.geojson has no sites", _geojson(None, text='{"type": "FeatureCollection", "features": []}')),
    Fault("geojson-point", "sites", "a site given as a Point", "AttributeError / accepted as a 0-area box",
          batch.SitesError, r"row 1, the geometry is a Point; expected a Polygon or MultiPolygon",
          _geojson({"type": "Point", "coordinates": [0, 0]})),
    Fault("geojson-no-geometry", "sites", "a feature with geometry null and no data_dir", "-", batch.SitesError,
          r"row 1, the geometry is empty", _geojson(None)),
    Fault("polygon-invalid", "sites", "a self-intersecting (bow-tie) polygon", "accepted", batch.SitesError,
          r"row 1, the geometry is not a valid polygon \(Self-intersection", _geojson(BOWTIE)),
    Fault("gpkg-two-layers", "sites", "GeoPackage with two feature tables", "-", batch.SitesError,
          r"sites\.gpkg: expected one layer of site polygons, found 2 feature layers", _two_layers),
    Fault("gpkg-not", "sites", "a CSV renamed sites.gpkg", "sqlite3 error text", batch.SitesError,
          r"sites\.gpkg could not be read as GeoPackage", _csv("site_id,data_dir\na,{d}\n", "sites.gpkg")),
    Fault("start-year-inf", "sites", "start_year=inf", "raw OverflowError", batch.SitesError,
          CELL.format(col="start_year", val="'inf'", must=r"an integer in \[1972, 2100\] or None"),
          _csv(ROW.format(col="start_year", val="inf"))),
    Fault("mag-nan", "sites", "loss_mag_min=nan", "-", batch.SitesError,
          CELL.format(col="loss_mag_min", val="'nan'", must="a number >= 0 or None"),
          _csv(ROW.format(col="loss_mag_min", val="nan"))),
    Fault("epochs-negative", "sites", "epochs=-5", "refused only when notebook 04 ran, after earlier sites' work",
          batch.SitesError, CELL.format(col="epochs", val="'-5'", must="an integer >= 1"),
          _csv(ROW.format(col="epochs", val="-5"))),
    Fault("index-path", "sites", "index=../../x", "refused only when notebook 02 ran", batch.SitesError,
          CELL.format(col="index", val=r"'\.\./\.\./x'", must=r"an index name \(NDVI"),
          _csv(ROW.format(col="index", val="../../x"))),
    Fault("indices-unknown", "sites", "indices=NDVI;EVI2", "refused only when notebook 01 ran", batch.SitesError,
          CELL.format(col="indices", val=r"\['NDVI', 'EVI2'\]", must="a list of index names"),
          _csv(ROW.format(col="indices", val="NDVI;EVI2"))),
    Fault("years-order", "sites", "start_year 2010 after end_year 2000", "refused only when notebook 01 ran",
          batch.SitesError, r"row 1 \(a\): start_year 2010 is after end_year 2000",
          _csv("site_id,data_dir,start_year,end_year\na,{d},2010,2000\n")),
    Fault("id-long", "sites", "a 300-character site_id", "batch stopped after all the compute, no report",
          batch.SitesError, r"column 'site_id': a name of 300 characters must be a name of 1 to 64 letters",
          _csv(f"site_id,data_dir\n{LONG_ID},{{d}}\n")),
    Fault("id-reserved", "sites", "site_id report.html", "batch stopped after all the compute, no report",
          batch.SitesError, r"column 'site_id': 'report\.html' is a reserved name",
          _csv("site_id,data_dir\nreport.html,{d}\n")),
    Fault("id-windows", "sites", "site_id CON", "-", batch.SitesError, r"'CON' is a reserved name",
          _csv("site_id,data_dir\nCON,{d}\n")),
    Fault("id-case", "sites", "site_ids Mine and mine (one folder on macOS/Windows)", "accepted: one folder for two",
          batch.SitesError, r"row 2, column 'site_id': 'mine' appears twice \(as 'Mine' in row 1; names are "
          r"compared ignoring case", _csv("site_id,data_dir\nMine,{d}\nmine,{d}\n")),
    Fault("id-dots", "sites", "site_id ending with '.'", "-", batch.SitesError, r"'a\.' must be a name of 1 to 64",
          _csv("site_id,data_dir\na.,{d}\n")),
    Fault("csv-extra-cell", "sites", "a CSV row with more cells than the header", "cell dropped silently",
          batch.SitesError, r"sites\.csv: row 1 has more cells than the header", _csv("site_id,data_dir\na,{d},5\n")),
    Fault("csv-geometry", "sites", "a CSV with a 'geometry' column", "its text read as coordinates",
          batch.SitesError, r"a CSV gives a site's area in the column 'bbox'", _csv("site_id,geometry\na,POINT\n")),
    Fault("table-linked-secret", "sites", "sites.csv a symlink to a credentials file",
          "column named by the file's first line (its content)", batch.SitesError,
          r"sites\.csv: row 1, column a str of \d+ characters is not a site column", _linked_table),
]

TABLE = [("test_bad_sites_tables_are_refused_before_any_site_runs", TABLE_FAULTS)]


@pytest.mark.parametrize("fault", cases(TABLE_FAULTS))
def test_bad_sites_tables_are_refused_before_any_site_runs(fault, tmp_path):
    refused(fault, tmp_path)  # no message shows a long value of the table (a file linked here could be anything)


GPKG_SQL = Fault("gpkg-sql-name", "sites", "GeoPackage whose table name is SQL (`sites\" UNION SELECT ...`)",
                 "other tables imported as sites", None, "",
                 now="only that layer's site read (GDAL's layer API, no SQL text); the other table ignored")
HASH_NAME = Fault("hash-file-name", "sites", "sites table named `s#1.gpkg`",
                  "another file opened (sqlite URI), a stray file left", None, "",
                  now="that file read, no file created beside it")
TABLE += [("test_geopackage_layer_names_are_not_sql", GPKG_SQL), ("test_file_names_with_hash_are_read_as_named",
                                                                    HASH_NAME)]


def test_geopackage_layer_names_are_not_sql(tmp_path):
    import sqlite3

    p = _gpkg(tmp_path / "sites.gpkg", 'sites" UNION SELECT * FROM other --', ["coast"])
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE other (fid INTEGER PRIMARY KEY, geom BLOB, site_id TEXT)")
    con.execute("INSERT INTO other (site_id) VALUES ('intruder')")
    con.commit()
    con.close()
    assert [s.site_id for s in batch.read_sites(p)] == ["coast"]


def test_file_names_with_hash_are_read_as_named(tmp_path):
    _gpkg(tmp_path / "s.gpkg", "sites", ["decoy"])  # what 's#1.gpkg' opened through a sqlite URI
    p = _gpkg(tmp_path / "s#1.gpkg", "sites", ["coast"])
    before = sorted(f.name for f in tmp_path.iterdir())
    (site,) = batch.read_sites(p)
    assert site.site_id == "coast" and site.aoi == (-1.0, 50.0, -0.5, 50.2)
    assert sorted(f.name for f in tmp_path.iterdir()) == before


BAD_CELL_CLI = Fault("cli-refused-first", "sites", "a good site, then epochs=-5 on the second (command line)",
                     "the first site's notebooks ran, then the batch failed", None, "",
                     now="exit 2, one line `error: ... row 2 (b), column 'epochs'`; --out not created")
TABLE.append(("test_the_command_refuses_a_bad_row_before_running_any_site", BAD_CELL_CLI))


def _command(tmp_path, table_text: str, out) -> subprocess.CompletedProcess:
    """``python -m ltlib.batch sites.csv --out out`` with the table ``table_text`` ({d}: a folder)."""
    (tmp_path / "scene").mkdir()
    table = tmp_path / "sites.csv"
    table.write_text(table_text.format(d=tmp_path / "scene"))
    return subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_command_refuses_a_bad_row_before_running_any_site(tmp_path):
    proc = _command(tmp_path, "site_id,data_dir,epochs\na,{d},\nb,{d},-5\n", tmp_path / "o")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "row 2 (b), column 'epochs': '-5' is not valid; it must be an integer >= 1" in proc.stderr
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- the batch folder
def _sites(*ids):
    return [batch.Site(i, data_dir="/nowhere") for i in ids]


def _other_report(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").write_text("site_id,status\nold,complete\n")
    return lambda: batch.claim_out(out, _sites("a"))


def _other_batch_json(tmp_path):
    out = tmp_path / "out"
    batch.claim_out(out, _sites("old"), table=tmp_path / "old.csv")
    return lambda: batch.claim_out(out, _sites("a"), table=tmp_path / "new.csv")


def _other_status(tmp_path):
    out = tmp_path / "out"
    io.write_json(out / "old" / "status.json", {"site_id": "old"})
    return lambda: batch.claim_out(out, _sites("a"))


OUT_FAULTS = [
    Fault("out-other-report", "batch", "--out holds another batch's report.csv", "overwritten without a word",
          batch.OutFolderError, r"out holds a batch report \(report\.csv\) not made by this table; choose another "
          r"folder, or pass --overwrite", _other_report),
    Fault("out-other-batch", "batch", "--out holds batch.json of another table", "overwritten without a word",
          batch.OutFolderError, r"out holds batch\.json of another batch", _other_batch_json),
    Fault("out-other-status", "batch", "--out holds status.json of other sites", "mixed into one report",
          batch.OutFolderError, r"out holds status\.json of 1 other site\(s\) \(old\)", _other_status),
]
TABLE.append(("test_an_out_folder_of_another_batch_is_refused", OUT_FAULTS))


@pytest.mark.parametrize("fault", cases(OUT_FAULTS))
def test_an_out_folder_of_another_batch_is_refused(fault, tmp_path):
    refused(fault, tmp_path)
    if (tmp_path / "out" / "report.csv").exists():
        assert "old,complete" in (tmp_path / "out" / "report.csv").read_text()  # untouched


def test_the_same_batch_resumes_and_overwrite_replaces(tmp_path):
    out = tmp_path / "out"
    assert batch.claim_out(out, _sites("a", "b"), table=tmp_path / "s.csv") == out.resolve()
    batch.claim_out(out, _sites("a", "b"), table=tmp_path / "s.csv")  # run again: resumes
    batch.claim_out(out, _sites("a", "b", "c"), table=tmp_path / "s.csv")  # a site added to the same table
    with pytest.raises(batch.OutFolderError):
        batch.claim_out(out, _sites("x"), table=tmp_path / "t.csv")
    batch.claim_out(out, _sites("x"), table=tmp_path / "t.csv", overwrite=True)
    assert json.loads((out / "batch.json").read_text())["site_ids"] == ["x"]


OUT_CLI = Fault("out-cli", "batch", "command line into another batch's --out", "report replaced", None, "",
                now="exit 2, `error: --out ... holds a batch report`; report.csv unchanged, nothing added")
TABLE.append(("test_the_command_refuses_another_batchs_folder", OUT_CLI))


def test_the_command_refuses_another_batchs_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.csv").write_text("site_id,status\nold,complete\n")
    proc = _command(tmp_path, "site_id,data_dir\na,{d}\n", out)
    assert proc.returncode == 2 and "holds a batch report (report.csv)" in proc.stderr
    assert (out / "report.csv").read_text() == "site_id,status\nold,complete\n"
    assert sorted(f.name for f in out.iterdir()) == ["report.csv"]


def _fake_run_site(outcomes):
    """A run_site that writes a status like the real one, or raises, per site id."""
    def run_site(site, out, notebooks, **kw):
        what = outcomes[site.site_id]
        if isinstance(what, BaseException):
            raise what
        status = {"site_id": site.site_id, "notebooks": {nb: "ran" for nb in notebooks}, "stopped": {},
                  "error": None, "seconds": 1.0}
        io.write_json(Path(out) / site.site_id / "status.json", status)
        return status
    return run_site


REPORT_ANYWAY = Fault("report-after-break", "batch", "a site's run breaks outside its notebooks (lost worker), or "
                      "Ctrl-C during the last site", "no report for the sites that finished", None, "",
                      now="report.csv/html written: finished sites complete, the broken one failed (`batch: "
                      "RuntimeError`); Ctrl-C still stops the command after the report")
TABLE.append(("test_the_report_is_written_whatever_happens_to_other_sites", REPORT_ANYWAY))


def test_the_report_is_written_whatever_happens_to_other_sites(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setattr(batch, "run_site", _fake_run_site({"a": "ok", "b": RuntimeError("worker lost"),
                                                           "c": "ok"}))
    statuses = batch.run(_sites("a", "b", "c"), tmp_path / "out", notebooks=("01_collect_landsat",), workers=1,
                         progress=False)
    report = pd.read_csv(tmp_path / "out" / "report.csv").set_index("site_id")
    assert report["status"].to_dict() == {"a": "complete", "b": "failed", "c": "complete"}
    assert report.loc["b", "failed_notebook"] == "batch" and report.loc["b", "error"] == "RuntimeError: worker lost"
    assert [s["site_id"] for s in statuses] == ["a", "b", "c"]
    assert json.loads((tmp_path / "out" / "b" / "status.json").read_text())["error"]["notebook"] == "batch"
    # Ctrl-C in the last site: the report of the others is written, then the interrupt goes on
    monkeypatch.setattr(batch, "run_site", _fake_run_site({"a": "ok", "b": "ok", "c": KeyboardInterrupt()}))
    with pytest.raises(KeyboardInterrupt):
        batch.run(_sites("a", "b", "c"), tmp_path / "out2", notebooks=("01_collect_landsat",), workers=1,
                  progress=False)
    report = pd.read_csv(tmp_path / "out2" / "report.csv").set_index("site_id")
    assert report["status"].to_dict() == {"a": "complete", "b": "complete", "c": "not run"}
    assert (tmp_path / "out2" / "report.html").exists()


def test_a_damaged_summary_does_not_stop_the_report(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setattr(batch, "run_site", _fake_run_site({"a": "ok", "b": "ok"}))
    out = tmp_path / "out"
    (out / "a" / "01_collect_landsat").mkdir(parents=True)
    (out / "a" / "01_collect_landsat" / "summary.json").write_text('{"status": "complete", "scene": ')
    io.write_json(out / "b" / "01_collect_landsat" / "summary.json", {"status": "complete", "scene": "abc"})
    batch.run(_sites("a", "b"), out, notebooks=("01_collect_landsat",), workers=1, progress=False)
    report = pd.read_csv(out / "report.csv").set_index("site_id")
    assert report.loc["a", "status"] == "complete" and report.loc["b", "status"] == "failed"
    assert "could not be read" in report.loc["b", "error"]


def test_site_parameters_are_absolute_and_an_area_never_gets_the_sample(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    site = batch.Site("pit", aoi=(-112.2, 40.5, -112.1, 40.6), params={"epochs": 3, "start_year": 1990})
    p1 = site.parameters("01_collect_landsat", Path("outputs/batch"))
    assert p1["output_dir"] == str(tmp_path / "outputs" / "batch" / "pit" / "01_collect_landsat")
    assert p1["data_dir"] is None and p1["use_gee"] is True and p1["start_year"] == 1990 and "epochs" not in p1
    p4 = site.parameters("04_classify_trajectories", Path("outputs/batch"))
    assert p4["data_dir"] == str(tmp_path / "outputs" / "batch" / "pit" / "01_collect_landsat")
    assert p4["epochs"] == 3 and "start_year" not in p4


# --------------------------------------------------------------------------- scene folders and summaries
def _gee_off(monkeypatch):
    from ltlib import gee

    monkeypatch.setattr(gee, "initialize", lambda project=None, **kw: False)


def test_an_area_without_earth_engine_is_an_error_not_the_sample(tmp_path, monkeypatch):
    _gee_off(monkeypatch)
    sample = ROOT / "data" / "sample"
    for data_dir in (None, sample):
        with pytest.raises(scene.EarthEngineUnavailableError,
                           match=r"use_gee=True for the area \(-112\.2, 40\.5, -112\.1, 40\.6\), but Earth Engine is "
                                 r"not available .* not a download of this area, so it is not used in its place"):
            scene.load(data_dir, use_gee=True, aoi=(-112.2, 40.5, -112.1, 40.6), download_dir=tmp_path / "dl")
    assert not (tmp_path / "dl").exists()
    # without an area asked for, the documented fallback to data_dir stays
    sc = scene.load(sample, use_gee=True, download_dir=tmp_path / "dl", quiet=True)
    assert sc.source == "sample"


GEE_FAULT = Fault("bbox-no-ee", "sites", "bbox site (use_gee, aoi) without Earth Engine",
                  "ran on the simulated sample, reported complete, skipped as complete later", None, "",
                  now="EarthEngineUnavailableError: `use_gee=True for the area (...), but Earth Engine is not "
                  "available ...`; nothing downloaded or used in its place; the batch site failed")
TABLE.append(("test_an_area_without_earth_engine_is_an_error_not_the_sample", GEE_FAULT))


def _scene_json(info, raw=None):
    def make(tmp_path):
        _stack(tmp_path / "landsat" / "ndvi.tif")
        (tmp_path / "scene.json").write_text(raw if raw is not None else json.dumps(info))
        return lambda: scene.load(tmp_path, quiet=True)
    return make


def _secret_stack(tmp_path):
    secret = tmp_path / "credentials.json"
    secret.write_text(CREDENTIALS)
    (tmp_path / "landsat").mkdir()
    (tmp_path / "landsat" / "ndvi.tif").symlink_to(secret)
    return lambda: scene.load(tmp_path, quiet=True)


def _output_listed(name):
    def make(tmp_path):
        _stack(tmp_path / "scene" / "landsat" / "ndvi.tif")
        sc = scene.load(tmp_path / "scene", quiet=True)
        secret = tmp_path / "credentials.json"
        secret.write_text(CREDENTIALS)
        step = tmp_path / "runs" / "02"
        step.mkdir(parents=True)
        (step / "link.tif").symlink_to(secret)
        listed = name.format(secret=secret)
        io.write_json(step / "summary.json", {"status": "complete", "files": {"ndvi_fit": listed}})
        return lambda: sc.read_output(step, "ndvi_fit", stack=True)
    return make


SCENE_FAULTS = [
    Fault("scene-json-aoi-text", "scene folders", "scene.json with aoi 'abc'", "accepted and copied on", ValueError,
          r"scene\.json: its 'aoi' is not a \(west, south, east, north\) box in degrees",
          _scene_json({"source": "folder", "aoi": "abc"})),
    Fault("scene-json-nan", "scene folders", "scene.json with aoi [NaN, ...]", "accepted and copied on", ValueError,
          r"scene\.json holds NaN or infinite numbers", _scene_json(None, '{"aoi": [NaN, 40, -112, 41]}')),
    Fault("scene-json-inf", "scene folders", "scene.json with years [Infinity]", "accepted", ValueError,
          r"scene\.json holds NaN or infinite numbers", _scene_json(None, '{"years": [2000, Infinity]}')),
    Fault("scene-json-source", "scene folders", "scene.json with source 'magic'", "-", ValueError,
          r"scene\.json: its 'source' is not one of sample, folder, earth_engine",
          _scene_json({"source": "magic"})),
    Fault("stack-linked-secret", "leaks", "landsat/ndvi.tif a symlink to a credentials file",
          "the error (and the batch report) quoted its first 30 characters", RasterFileError,
          r"landsat/ndvi\.tif is a text file \(\d+ bytes\), expected an annual GeoTIFF stack", _secret_stack),
    Fault("summary-absolute", "leaks", "summary.json lists an absolute file", "file outside the step folder opened "
          "and quoted", ValueError, r"summary\.json: output 'ndvi_fit' names a file outside .*02 \(absolute, '\.\.' or "
          r"a link out of the folder\)", _output_listed("{secret}")),
    Fault("summary-dotdot", "leaks", "summary.json lists ../../credentials.json", "file outside opened", ValueError,
          r"output 'ndvi_fit' names a file outside", _output_listed("../../credentials.json")),
    Fault("summary-link-out", "leaks", "summary.json lists a symlink in the folder that points outside", "-",
          ValueError, r"output 'ndvi_fit' names a file outside", _output_listed("link.tif")),
]
TABLE.append(("test_scene_folders_and_summaries_handed_over", SCENE_FAULTS))


@pytest.mark.parametrize("fault", cases(SCENE_FAULTS))
def test_scene_folders_and_summaries_handed_over(fault, tmp_path):
    refused(fault, tmp_path)


EE_LABEL = Fault("scene-json-ee-label", "scene folders", "scene.json `source: earth_engine` in a folder of one's own "
                 "stacks", "relabelled as Earth Engine composites, reused as a download", None, "",
                 now="UserWarning: `says source 'earth_engine' but is not the record of a download here`; source "
                 "'folder'")
TABLE.append(("test_an_earth_engine_label_in_a_local_folder_is_not_trusted", EE_LABEL))


def test_an_earth_engine_label_in_a_local_folder_is_not_trusted(tmp_path):
    _stack(tmp_path / "landsat" / "ndvi.tif")
    (tmp_path / "scene.json").write_text(json.dumps({"source": "earth_engine", "aoi": [-112.2, 40.5, -112.1, 40.6],
                                                     "years": YEARS.tolist()}))
    with pytest.warns(UserWarning, match=r"says source 'earth_engine' but is not the record of a download here"):
        sc = scene.load(tmp_path, quiet=True)
    assert sc.source == "folder" and sc.provenance.startswith("own stacks")
    # a real download record (notebook 01's Scene.write) keeps its label
    out = tmp_path / "copy"
    sc.source = "earth_engine"
    sc.write(out)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert scene.load(out, quiet=True).source == "earth_engine"


# --------------------------------------------------------------------------- sizes and temporary files
def _declared(limit_env=None, chunks=None, max_bytes=None):
    def make(tmp_path):
        path = _stack(tmp_path / "s.tif")
        if limit_env is not None:
            os.environ[io.MAX_RASTER_BYTES_ENV] = limit_env
        return lambda: io.read_stack(path, chunks=chunks, max_bytes=max_bytes)
    return make


SIZE = r"s\.tif declares 8 bands x 8 x 9 px = 2\.3 kB as float32, over the limit of 1 kB"
SIZE_FAULTS = [
    Fault("size-limit", "sizes", "a raster declaring more than the limit (max_bytes=1000)",
          "17 kB declaring 6 x 1e6 x 1e6 px: lazy graph of 3.8 M chunks, memory exhausted", RasterFileError,
          SIZE + r"; .*raise the limit with max_bytes= or the environment variable LTLIB_MAX_RASTER_BYTES",
          _declared(max_bytes=1000)),
    Fault("size-limit-lazy", "sizes", "the same, opened lazily (chunks=512)", "memory exhausted", RasterFileError,
          SIZE, _declared(chunks=512, max_bytes=1000)),
    Fault("size-limit-env", "sizes", "limit from LTLIB_MAX_RASTER_BYTES=1000", "-", RasterFileError, SIZE,
          _declared(limit_env="1000")),
    Fault("size-limit-env-bad", "sizes", "LTLIB_MAX_RASTER_BYTES=lots", "-", ValueError,
          r"LTLIB_MAX_RASTER_BYTES must be a positive number of bytes, got 'lots'", _declared(limit_env="lots")),
]
TABLE.append(("test_declared_sizes_are_checked_before_any_read", SIZE_FAULTS))


@pytest.mark.parametrize("fault", cases(SIZE_FAULTS))
def test_declared_sizes_are_checked_before_any_read(fault, tmp_path, monkeypatch):
    monkeypatch.delenv(io.MAX_RASTER_BYTES_ENV, raising=False)
    try:
        refused(fault, tmp_path)
    finally:
        os.environ.pop(io.MAX_RASTER_BYTES_ENV, None)
    assert io.read_stack(tmp_path / "s.tif").data.shape == (8, 8, 9)  # the default limit: 1 TiB


PLANTED = Fault("tmp-symlink", "temporary files", "symlink planted at atomic_path's temporary name "
                "(.NAME.PID.part) pointing at a victim file", "the victim overwritten through the link", None, "",
                now="temporary created with O_EXCL under a random name; the victim unchanged, the link untouched")
TILE_PLANTED = Fault("tile-symlink", "temporary files", "symlink planted at a download tile's temporary "
                     "(tile_....part.npy)", "the victim overwritten", None, "",
                     now="tiles written through exclusive temporaries; the victim unchanged; the GeoTIFF complete")
TABLE += [("test_temporaries_are_created_exclusively", PLANTED),
          ("test_download_tiles_never_write_through_a_planted_link", TILE_PLANTED)]


def test_temporaries_are_created_exclusively(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "data" / "summary.json"
    target.parent.mkdir()
    old_name = target.with_name(f".{target.name}.{os.getpid()}.part")
    old_name.symlink_to(victim)
    io.write_json(target, {"a": 1})
    assert victim.read_text() == "keep me" and old_name.is_symlink()
    assert json.loads(target.read_text()) == {"a": 1}
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would have made it, not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([old_name.name, "summary.json"])
    t1, t2 = io.exclusive_temp(target), io.exclusive_temp(target)
    assert t1 != t2 and t1.is_file() and not t1.is_symlink() and t1.parent == target.parent
    # O_EXCL: a name that exists (even as a dangling link) is never opened
    fd_flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY
    with pytest.raises(FileExistsError):
        os.close(os.open(t1, fd_flags))


def test_download_tiles_never_write_through_a_planted_link(tmp_path):
    from ltlib.gee import download as dl

    victim = tmp_path / "victim.npy"
    victim.write_bytes(b"keep me")
    grid = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 40, 50)
    out = tmp_path / "ndvi.tif"
    tiles = dl.plan_tiles(40, 50, 2, "int16", max_bytes=2 * 2 * 20 * 50)
    tile_dir = out.with_name(out.name + ".tiles")
    tile_dir.mkdir()
    for t in tiles:  # every name the old code used
        path = dl._tile_file(tile_dir, t)
        path.with_name(path.stem + ".part.npy").symlink_to(victim)
    out_path = dl.download_to_geotiff(lambda t: np.full((2, t.height, t.width), t.index, np.int16), grid, out,
                                      band_names=["yr2000", "yr2001"], nodata=-32768, progress=False,
                                      keep_tiles=True, max_bytes=2 * 2 * 20 * 50)
    assert victim.read_bytes() == b"keep me" and len(tiles) > 1
    data, _, _ = io.read_raster(out_path)
    assert data[0, 0, 0] == 0 and data[0, -1, -1] == tiles[-1].index


# --------------------------------------------------------------------------- lower-level calls
def _untagged(tmp_path):
    path = tmp_path / "s.tif"
    data = np.random.default_rng(0).integers(100, 900, (8,) + GRID.shape).astype(np.int16)
    data[:, 0, :3] = -32768
    io.write_raster(path, data, GRID, band_names=[f"yr{y}" for y in YEARS], dtype="int16", tags={"scale": 0.001})
    return path


def _cut(fraction):
    def make(tmp_path):
        path = _stack(tmp_path / "landsat" / "ndvi.tif")
        b = path.read_bytes()
        path.write_bytes(b[: int(len(b) * fraction)])
        return lambda: io.read_stack(path)
    return make


def _scale_tag(tmp_path):
    path = tmp_path / "s.tif"
    io.write_raster(path, np.ones((8,) + GRID.shape), GRID, band_names=[f"yr{y}" for y in YEARS], dtype="int16",
                    nodata=-32768, tags={"scale": "abc"})
    return lambda: io.read_stack(path)


def _call(fn):
    return lambda tmp_path: fn


def _segment_no_years():
    from ltlib.landtrendr import segment

    segment(np.zeros((3, 0)), np.arange(0))


def _kshape_unequal():
    from ltlib.cluster import KShape

    KShape(2).fit([[1.0, 2, 3, 4], [1.0, 2, 3]])


def _omnibus_enl_none():
    from ltlib import sar

    x = np.random.default_rng(0).gamma(4.4, 1, (3, 20, 20)).astype("float32")
    sar.omnibus(x, x, enl=None)


def _epochs_word():
    params.check_notebook("04_classify_trajectories", {"epochs": "three", "output_dir": "/tmp/x"})


LOW_FAULTS = [
    Fault("truncated-1pc", "inputs", "GeoTIFF missing its last 1%", "ValueError: `band 1 is named None`",
          RasterFileError, r"landsat/ndvi\.tif is a truncated or damaged TIFF \(\d+ bytes: its directory points past "
          r"the end of the file\), expected an annual GeoTIFF stack", _cut(0.99)),
    Fault("scale-tag-text", "inputs", "a 'scale' tag 'abc'", "ValueError: `could not convert string to float`",
          ValueError, r"s\.tif: its 'scale' tag 'abc' is not a positive number; expected e\.g\. '0\.001'", _scale_tag),
    Fault("segment-no-years", "parameters", "segment with 0 years", "IndexError: `index 0 is out of bounds`",
          ValueError, r"years is empty: segment needs a series of at least one year", _call(_segment_no_years)),
    Fault("kshape-unequal", "k-Shape", "k-Shape on series of 4 and 3 values",
          "ValueError: `... inhomogeneous shape after 1 dimensions`", ValueError,
          r"X: the series have unequal lengths \(3, 4 values\); k-Shape needs every series of the same length",
          _call(_kshape_unequal)),
    Fault("omnibus-enl-none", "SAR", "omnibus(enl=None)", "TypeError: `float() argument must be ...`", ValueError,
          r"enl \(equivalent number of looks\) must be a finite number >= 1, got None", _call(_omnibus_enl_none)),
    Fault("epochs-word", "parameters", "notebook 04 with -r epochs three", "-", params.ParameterError,
          r"parameter epochs must be an integer >= 1, got the string 'three'", _call(_epochs_word)),
]
TABLE.append(("test_lower_level_calls_name_the_parameter_or_file", LOW_FAULTS))


@pytest.mark.parametrize("fault", cases(LOW_FAULTS))
def test_lower_level_calls_name_the_parameter_or_file(fault, tmp_path):
    refused(fault, tmp_path)


UNTAGGED = Fault("read-stack-untagged", "inputs", "io.read_stack of int16 with -32768 gaps and no nodata tag",
                 "read as NDVI -32.768 (only scene.load warned)", None, "",
                 now="UserWarning: `no nodata tag; its 24 values -32768 were read as nodata`; NaN (lazily too)")
INF_WRITE = Fault("write-stack-inf", "writes", "io.write_stack of data with +inf and -inf", "written as nodata "
                  "without a word", None, "", now="UserWarning: `2 values +/-inf (of 144) were written as nodata`")
EPOCHS_TEXT = Fault("epochs-string", "parameters", "notebook 04 with -r epochs 3 (a string)",
                    "issue: ran for minutes instead of refusing", None, "",
                    now="UserWarning: `the string '3' was read as 3` (params' documented policy for strings that spell "
                    "a value); epochs 3 used")
TABLE += [("test_read_stack_warns_of_untagged_fill_values", UNTAGGED),
          ("test_write_stack_says_infinities_become_nodata", INF_WRITE),
          ("test_epochs_given_as_a_string_is_read_with_a_warning", EPOCHS_TEXT)]


def test_read_stack_warns_of_untagged_fill_values(tmp_path):
    path = _untagged(tmp_path)
    with pytest.warns(UserWarning, match=r"s\.tif: no nodata tag; its 24 values -32768 were read as nodata"):
        s = io.read_stack(path)
    assert np.isnan(s.data[:, 0, :3]).all() and np.isfinite(s.data[:, 1:]).all()
    with pytest.warns(UserWarning, match=r"no nodata tag; its values -32768 \(if any\) are read as nodata"):
        lazy = io.read_stack(path, chunks=16)
    np.testing.assert_array_equal(np.isnan(lazy.data.compute()), np.isnan(s.data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = io.read_stack(path, untagged_fill=False)
    assert (raw.data[:, 0, :3] == -32768).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scene.load's reader counts them itself and says it once, as a note
        sc_stack, notes = scene.read_index_stack(path)
    assert np.isnan(sc_stack.data[:, 0, :3]).all()
    assert notes == [f"{path}: no nodata tag; its 24 values -32768 were read as nodata"]


def test_write_stack_says_infinities_become_nodata(tmp_path):
    data = np.full((2,) + GRID.shape, 300.0)
    data[0, 0, 0], data[1, 1, 1] = np.inf, -np.inf
    with pytest.warns(UserWarning, match=r"2 values \+/-inf \(of 144\) were written as nodata; use NaN"):
        path = io.write_stack(tmp_path / "s.tif", data, [2000, 2001], GRID, scale=0.001)
    back = io.read_stack(path).data
    assert np.isnan(back[0, 0, 0]) and np.isnan(back[1, 1, 1]) and np.isfinite(back).sum() == 142


def test_epochs_given_as_a_string_is_read_with_a_warning():
    ns = {"epochs": "3", "output_dir": "/tmp/x"}
    with pytest.warns(UserWarning, match=r"parameter epochs: the string '3' was read as 3"):
        params.check_notebook("04_classify_trajectories", ns)
    assert ns["epochs"] == 3 and type(ns["epochs"]) is int


DISTDIR = Fault("distdir-no-index", "parameters", "segment(values, distdir=+1) on NDVI without index=",
                "recoveries reported as losses, no word", None, "",
                now="decision: taken as given, no warning (the values carry no index name; distdir=1 is right for "
                "TCB and one's own series); with index='NDVI' a UserWarning; ltlib's callers derive it from the index")
TABLE.append(("test_distdir_without_an_index_is_taken_as_given_and_checked_with_one", DISTDIR))


def test_distdir_without_an_index_is_taken_as_given_and_checked_with_one():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert params.check_distdir(1) == 1 and params.check_distdir(None) == -1
        assert params.check_distdir(None, "NDVI") == -1 and params.check_distdir(None, "TCB") == 1
    with pytest.warns(UserWarning, match=r"distdir=1 contradicts index 'NDVI', which drops on disturbance"):
        assert params.check_distdir(1, "ndvi") == 1

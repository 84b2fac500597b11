"""ltlib.batch: a sites table, one command, resumable and isolated runs, a cross-site report."""
from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio.raw
import pytest

from ltlib import batch

from . import scenes

ROOT = Path(__file__).resolve().parents[1]
#: Notebooks 01-02: LandTrendr per site in seconds (the chain tests run 01-05 on these scenes).
NOTEBOOKS = ("01", "02")


@pytest.fixture(scope="module")
def site_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sites")
    return {"forest": scenes.forest_scene(root / "forest"),
            "warped": scenes.reprojected_sample(root / "warped", sentinel1=False)}


def _table(path: Path, site_folders) -> Path:
    path.write_text(
        "site_id,data_dir,max_segments,loss_mag_min\n"
        f"forest,{site_folders['forest']},5,100\n"
        f"warped,{site_folders['warped']},,\n"
        f"broken,{site_folders['forest'].parent / 'does_not_exist'},,\n")
    return path


@pytest.fixture(scope="module")
def finished(site_folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch")
    table = _table(out.parent / "sites.csv", site_folders)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", str(out), "--notebooks",
                           *NOTEBOOKS, "--workers", "2"], capture_output=True, text=True, cwd=ROOT, timeout=900)
    return out, table, proc, time.perf_counter() - t0


def test_batch_runs_every_site_and_isolates_the_failure(finished):
    out, _, proc, seconds = finished
    assert proc.returncode == 1, proc.stderr[-2000:]  # one site failed on purpose
    assert "forest: complete" in proc.stdout and "warped: complete" in proc.stdout
    assert "broken: failed in 01_collect_landsat: " in proc.stdout and "does_not_exist" in proc.stdout
    status = json.loads((out / "broken" / "status.json").read_text())
    assert status["error"]["notebook"] == "01_collect_landsat"
    assert status["notebooks"] == {"01_collect_landsat": "failed", "02_fit_landtrendr": "not run"}
    for sid in ("forest", "warped"):
        for nb in ("01_collect_landsat", "02_fit_landtrendr"):
            s = json.loads((out / sid / nb / "summary.json").read_text())
            assert s["status"] == "complete", (sid, nb)
    print(f"batch of 3 sites, notebooks 01-02: {seconds:.0f} s")


def test_per_site_parameters_reach_the_notebooks(finished):
    out = finished[0]
    lt = json.loads((out / "forest" / "02_fit_landtrendr" / "summary.json").read_text())["landtrendr"]
    assert lt["params"]["max_segments"] == 5 and lt["loss_params"]["mag_min"] == 100
    lt = json.loads((out / "warped" / "02_fit_landtrendr" / "summary.json").read_text())["landtrendr"]
    assert lt["params"]["max_segments"] == 6 and lt["loss_params"]["mag_min"] == 150


def test_report_matches_the_site_summaries(finished):
    out = finished[0]
    report = pd.read_csv(out / "report.csv").set_index("site_id")
    per_year = pd.read_csv(out / "report_by_year.csv")
    for sid in ("forest", "warped"):
        lt = json.loads((out / sid / "02_fit_landtrendr" / "summary.json").read_text())["landtrendr"]
        sc = json.loads((out / sid / "01_collect_landsat" / "summary.json").read_text())["scene"]
        r = report.loc[sid]
        assert r["status"] == "complete" and r["index"] == lt["index"]
        assert r["most_frequent_disturbance_year"] == lt["most_frequent_disturbance_year"]
        assert r["loss_fraction"] == lt["loss_fraction"] and r["crs"] == sc["crs"]
        assert r["loss_area_ha"] == pytest.approx(sum(lt["loss_area_ha_by_year"].values()), abs=0.01)
        years = per_year[per_year["site_id"] == sid].set_index("year")
        for y, ha in lt["loss_area_ha_by_year"].items():
            assert years.loc[int(y), "loss_area_ha"] == pytest.approx(ha)
    assert report.loc["broken", "status"] == "failed" and report.loc["broken", "failed_notebook"] == "01_collect_landsat"
    for name in ("report.html", "disturbed_area.png", "sites_map.png"):
        assert (out / name).stat().st_size > 1000
    assert "forest" in (out / "report.html").read_text()


def test_second_run_skips_what_is_complete(finished):
    out, table, _, _ = finished
    proc = subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", str(out), "--notebooks",
                           *NOTEBOOKS], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert "forest: complete" in proc.stdout and "01 skipped (complete), 02 skipped (complete)" in proc.stdout
    assert "broken: failed in 01_collect_landsat" in proc.stdout  # failures are retried, and fail again


def test_killed_batch_resumes_with_the_unfinished_notebooks_only(site_folders, tmp_path):
    table = tmp_path / "sites.csv"
    table.write_text(f"site_id,data_dir\nwarped,{site_folders['warped']}\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ltlib.batch", str(table), "--out", str(out), "--notebooks", *NOTEBOOKS]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    first = out / "warped" / "01_collect_landsat" / "batch.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert first.exists(), "notebook 01 did not finish"

    os.killpg(proc.pid, signal.SIGKILL)  # the batch and the kernel it started, mid notebook 02
    proc.wait(timeout=60)
    assert not (out / "warped" / "02_fit_landtrendr" / "batch.json").exists()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "01 skipped (complete), 02 ran" in again.stdout


def test_malformed_tables_give_one_clear_error(tmp_path, site_folders):
    cases = {
        "unknown.csv": ("site_id,data_dir,colour\na,{d},red\n", "row 1, column 'colour' is not a site column"),
        "badint.csv": ("site_id,data_dir,max_segments\na,{d},six\n", "row 1 \\(a\\), column 'max_segments': 'six' is not valid; it must be an integer >= 1"),
        "dup.csv": ("site_id,data_dir\na,{d}\na,{d}\n", "row 2, column 'site_id': 'a' appears twice"),
        "none.csv": ("site_id,max_segments\na,4\n", "row 1 \\(a\\): give either data_dir"),
        "bbox.csv": ("site_id,bbox\na,\"10,50,9,51\"\n", "row 1, column 'bbox'"),
        "id.csv": ("site_id,data_dir\nmy site,{d}\n", "row 1, column 'site_id': 'my site'"),
    }
    for name, (text, match) in cases.items():
        p = tmp_path / name
        p.write_text(text.format(d=site_folders["forest"]))
        with pytest.raises(batch.SitesError, match=match):
            batch.read_sites(p)
    p = tmp_path / "unknown.csv"
    proc = subprocess.run([sys.executable, "-m", "ltlib.batch", str(p), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # refused before anything ran


def test_geojson_and_geopackage_tables(tmp_path):
    gj = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"site_id": "pit", "start_year": 1990, "ee_project": "me"},
         "geometry": {"type": "Polygon", "coordinates": [[[-112.2, 40.5], [-112.1, 40.5], [-112.1, 40.6],
                                                          [-112.2, 40.6], [-112.2, 40.5]]]}}]}
    (tmp_path / "s.geojson").write_text(json.dumps(gj))
    (site,) = batch.read_sites(tmp_path / "s.geojson")
    assert site.aoi == (-112.2, 40.5, -112.1, 40.6) and site.params == {"start_year": 1990, "ee_project": "me"}
    p = site.parameters("01_collect_landsat", tmp_path / "out")
    assert p["use_gee"] is True and p["aoi"] == [-112.2, 40.5, -112.1, 40.6] and p["start_year"] == 1990
    p2 = site.parameters("02_fit_landtrendr", tmp_path / "out")
    assert p2["data_dir"].endswith("pit/01_collect_landsat") and "start_year" not in p2 and p2["use_gee"] is True
    # a GeoPackage written by GDAL (pyogrio), read back through GDAL
    path = tmp_path / "s.gpkg"
    ring = [(-1.0, 50.0), (-0.5, 50.0), (-0.5, 50.2), (-1.0, 50.2), (-1.0, 50.0)]
    wkb = struct.pack("<BII", 1, 3, 1) + struct.pack("<I", len(ring)) + b"".join(struct.pack("<dd", *p) for p in ring)
    pyogrio.raw.write(path, np.array([wkb], dtype=object), [np.array(["coast"], dtype=object), np.array([4])],
                      fields=["site_id", "max_segments"], geometry_type="Polygon", crs="EPSG:4326", driver="GPKG",
                      layer="sites")
    (site,) = batch.read_sites(path)
    assert site.site_id == "coast" and site.aoi == (-1.0, 50.0, -0.5, 50.2) and site.params == {"max_segments": 4}


def test_a_stopped_notebook_leaves_the_site_partial_and_the_next_notebook_runs(site_folders, tmp_path):
    """The forest has NBR only: 04 stops (the classes are defined on NDVI), 05 still runs and stops
    for its own reason (no Sentinel-1); the site is "partial", not failed, and the exit code is 0."""
    table = tmp_path / "sites.csv"
    table.write_text(f"site_id,data_dir\nforest,{site_folders['forest']}\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", str(out), "--notebooks",
                           "01", "04", "05"], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "forest: partial, 04_classify_trajectories stopped: MissingInputError: " in proc.stdout
    status = json.loads((out / "forest" / "status.json").read_text())
    assert status["notebooks"] == {"01_collect_landsat": "ran", "04_classify_trajectories": "stopped",
                                   "05_detect_sar_change": "stopped"}
    assert "NDVI" in status["stopped"]["04_classify_trajectories"]
    assert "Sentinel-1" in status["stopped"]["05_detect_sar_change"] and status["error"] is None
    row = pd.read_csv(out / "report.csv").iloc[0]
    assert row["status"] == "partial" and "04_classify_trajectories: MissingInputError" in row["stopped"]


def test_sites_run_on_a_dask_distributed_cluster(site_folders, tmp_path):
    """--dask-address: the same command, the sites run on a dask.distributed scheduler's workers
    (here a LocalCluster; on HPC dask-jobqueue or Kubernetes give the address the same way)."""
    distributed = pytest.importorskip("distributed")
    table = tmp_path / "sites.csv"
    table.write_text(f"site_id,data_dir\nforest,{site_folders['forest']}\nbroken,{tmp_path / 'nowhere'}\n")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        proc = subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", str(tmp_path / "out"),
                               "--notebooks", "01", "--dask-address", cluster.scheduler_address],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "forest: complete" in proc.stdout and "broken: failed in 01_collect_landsat" in proc.stdout
    s = json.loads((tmp_path / "out" / "forest" / "01_collect_landsat" / "summary.json").read_text())
    assert s["status"] == "complete" and s["scene"]["indices"] == ["NBR"]
    assert pd.read_csv(tmp_path / "out" / "report.csv").set_index("site_id").loc["forest", "crs"] == "EPSG:32610"


def test_the_readme_command_with_a_relative_out_writes_under_it(site_folders, tmp_path):
    """The README's command as written, `python -m ltlib.batch sites.csv --out outputs/batch`, run
    from the repository root: every file lands under ./outputs/<name> (not notebooks/outputs, where
    the kernel runs). In the same batch a bbox site without Earth Engine fails (never the sample),
    and a site whose ndvi.tif is a link to a credentials file fails without its content in any
    report."""
    secret = "1//0gREFRESHtokenSECRETvalue-abcdefghijklmnopqrstuvwxyz"
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"refresh_token": secret}))
    leaky = tmp_path / "leaky"
    (leaky / "landsat").mkdir(parents=True)
    (leaky / "landsat" / "ndvi.tif").symlink_to(creds)
    table = tmp_path / "sites.csv"
    table.write_text(f"site_id,data_dir,bbox\nforest,{site_folders['forest']},\n"
                     f"area,,\"-112.16,40.52,-112.155,40.524\"\nleaky,{leaky},\n")
    name = f"batch_readme_test_{os.getpid()}"
    out = ROOT / "outputs" / name
    try:
        proc = subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", f"outputs/{name}",
                               "--notebooks", "01", "--workers", "2"], capture_output=True, text=True, cwd=ROOT,
                              timeout=600, env={**os.environ, "EE_PROJECT": ""})
        assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
        assert not (ROOT / "notebooks" / "outputs" / name).exists()
        s = json.loads((out / "forest" / "01_collect_landsat" / "summary.json").read_text())
        assert s["status"] == "complete" and s["scene"]["indices"] == ["NBR"]
        assert (out / "forest" / "01_collect_landsat" / "landsat" / "nbr.tif").exists()
        assert "forest: complete" in proc.stdout and f"report: {out / 'report.csv'}" in proc.stdout
        report = pd.read_csv(out / "report.csv").set_index("site_id")
        assert report.loc["forest", "status"] == "complete" and report.loc["forest", "crs"] == "EPSG:32610"
        # the area: Earth Engine is not available here, so it fails; the sample is never used in its place
        area = json.loads((out / "area" / "status.json").read_text())
        assert area["error"]["notebook"] == "01_collect_landsat"
        assert area["error"]["message"].startswith("EarthEngineUnavailableError: use_gee=True for the area "
                                                    "(-112.16, 40.52, -112.155, 40.524)")
        assert report.loc["area", "status"] == "failed" and pd.isna(report.loc["area", "west"])
        assert not (out / "area" / "01_collect_landsat" / "landsat").exists()
        # the linked credentials: named as a text file, never quoted
        leak = json.loads((out / "leaky" / "status.json").read_text())["error"]["message"]
        assert "landsat/ndvi.tif is a text file (" in leak
        for f in ("report.csv", "report.html", "leaky/status.json", "leaky/01_collect_landsat/summary.json"):
            if (out / f).exists():
                assert "REFRESH" not in (out / f).read_text() and "refresh_token" not in (out / f).read_text(), f
        assert "REFRESH" not in proc.stdout + proc.stderr
        # run again: the complete site is skipped, the others are retried
        again = subprocess.run([sys.executable, "-m", "ltlib.batch", str(table), "--out", f"outputs/{name}",
                                "--notebooks", "01"], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert "forest: complete" in again.stdout and "01 skipped (complete)" in again.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_report_row_carries_the_area_estimates(tmp_path):
    """02's change_area estimates (ltlib.change_area) reach the report row and the per-year rows;
    a site without reference labels gets empty columns."""
    from types import SimpleNamespace

    from ltlib.batch import site_row

    lt = {"index": "NDVI", "loss_fraction": 0.5, "gain_fraction": 0.1, "most_frequent_disturbance_year": 2001,
          "loss_area_ha_by_year": {"2001": 10.0, "2002": 5.0}, "gain_area_ha_by_year": {"2003": 2.0}}
    est = {"estimates": {"loss": {"area_ha": 14.2, "ci_ha": 1.5}, "gain": {"area_ha": 3.1, "ci_ha": 0.7}},
           "loss_by_year": {"2001": {"area_ha": 9.0, "ci_ha": 1.0}, "2004": {"area_ha": 0.5, "ci_ha": 0.4}}}
    for sid, extra in (("labelled", {"change_area": est}), ("unlabelled", {})):
        folder = tmp_path / sid / "02_fit_landtrendr"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(json.dumps({"status": "complete", "landtrendr": lt, **extra}))
    row, by_year = site_row(tmp_path, SimpleNamespace(site_id="labelled"))
    assert (row["loss_area_estimate_ha"], row["loss_area_ci95_ha"]) == (14.2, 1.5)
    assert (row["gain_area_estimate_ha"], row["gain_area_ci95_ha"]) == (3.1, 0.7)
    years = {r["year"]: r for r in by_year}
    assert sorted(years) == [2001, 2002, 2003, 2004]
    assert years[2001]["loss_area_estimate_ha"] == 9.0 and years[2004]["loss_area_ha"] == 0.0
    assert years[2002]["loss_area_estimate_ha"] is None
    row, _ = site_row(tmp_path, SimpleNamespace(site_id="unlabelled"))
    assert row["loss_area_estimate_ha"] is None and row["gain_area_ci95_ha"] is None

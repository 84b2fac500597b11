"""Every notebook's ``use_gee=True`` branch, executed by papermill against served Earth Engine.

The kernels papermill starts run an IPython startup file (``tests/ee_served.py``) that answers
``computePixels`` / ``computeValue`` by evaluating ltlib's own graphs on a small fake world
(16 x 15 px near Bingham Canyon, 1984-1995, a patch disturbed in 1990, Sentinel-1 every 12
days with a patch that brightens). Chained as a user would: 02-05 read 01's output folder.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from ltlib import io

from . import ee_served
from .conftest import run_notebook

pytest.importorskip("ee")

FAST = {
    "03_cluster_trajectories": dict(k_range=[2, 3], elbow_max_series=300, silhouette_sample=200, elbow_n_init=1,
                                    n_init=1, max_iter=20, engine_sample=100, engine_max_iter=3),
    "04_classify_trajectories": dict(models=["TSF"], epochs=1, n_synthetic_per_class=30, n_reference_per_class=5),
}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("served_ee_notebooks")
    world = ee_served.World()
    cred = base / "gcloud"
    ee_served._write_fake_credentials(cred)
    ee_served.write_startup(base / "ipython", world, base / "requests.jsonl", cred)
    env = {"IPYTHONDIR": str(base / "ipython"), "CLOUDSDK_CONFIG": str(cred)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield ee_served.ServedEE(world, base / "requests.jsonl", base / "ipython", None, cred, env)
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def ee_chain(served, tmp_path_factory):
    root = tmp_path_factory.mktemp("ee_chain")
    # as in the README: the area and years go to notebook 01 only; 02-05 take them from its scene.json
    common = dict(use_gee=True, ee_project="served-test")
    out = {}
    first = root / "01_collect_landsat"
    out["01"] = run_notebook("01_collect_landsat", first, aoi=list(served.bbox), start_year=served.start_year,
                             end_year=served.end_year, **common)
    out["02"] = run_notebook("02_fit_landtrendr", root / "02_fit_landtrendr", data_dir=str(first), **common)
    out["03"] = run_notebook("03_cluster_trajectories", root / "03_cluster_trajectories", data_dir=str(first),
                             **common, **FAST["03_cluster_trajectories"])
    out["04"] = run_notebook("04_classify_trajectories", root / "04_classify_trajectories", data_dir=str(first),
                             **common, **FAST["04_classify_trajectories"])
    out["05"] = run_notebook("05_detect_sar_change", root / "05_detect_sar_change", data_dir=str(first),
                             s1_start=served.s1_start, s1_end=served.s1_end, **common)
    return out


def _requests(served, kind):
    lines = [json.loads(l) for l in Path(served.log_path).read_text().splitlines()]
    return [r for r in lines if r.get("kind") == kind]


def test_01_downloads_the_aoi_composites_into_a_scene_folder(ee_chain, served):
    s = ee_chain["01"]
    assert s["scene"]["source"] == "earth_engine"
    assert s["scene"]["years"] == [served.start_year, served.end_year]
    assert (s["scene"]["height"], s["scene"]["width"]) == (16, 15) and s["scene"]["crs"] == "EPSG:32612"
    assert s["scene"]["indices"] == ["NDVI", "NBR", "TCB", "TCG", "TCW"]
    assert s["sections"]["trajectories_by_class"].startswith("skipped")
    info = json.loads((Path(s["_output_dir"]) / "scene.json").read_text())
    assert info["source"] == "earth_engine" and np.allclose(info["aoi"], served.bbox)


def test_02_runs_landtrendr_on_earth_engine_and_maps_loss_not_gain(ee_chain, served):
    s = ee_chain["02"]
    lt = s["landtrendr"]
    assert lt["engine"] == "earth_engine" and lt["index"] == "NDVI"
    assert lt["years"] == [served.start_year, served.end_year]
    out = Path(s["_output_dir"])
    loss, grid, names = io.read_raster(out / s["files"]["loss_map"])
    gain, _, _ = io.read_raster(out / s["files"]["gain_map"])
    first = io.read_stack(Path(ee_chain["01"]["_output_dir"]) / "landsat" / "ndvi.tif")
    assert grid.same_as(first.grid)  # Earth Engine's outputs sit on the scene's grid
    yod = loss[names.index("yod")]
    # the world's patch lost vegetation in 1990: the loss map says 1990 there, the gain map later
    assert np.nanmedian(yod) == served.disturbance_year
    gain_yod = gain[names.index("yod")]
    assert np.isfinite(yod).sum() > 5 * np.isfinite(gain_yod).sum()  # a recovery of < 0.35 NDVI by 1995
    assert (gain_yod[np.isfinite(gain_yod)] > served.disturbance_year).all()
    # 02-05 reused 01's composites: every composite request came from 01's kernel
    requests = _requests(served, "computePixels")
    composites = [r for r in requests if "TemporalSegmentation.LandTrendr" not in r["algorithms"]
                  and any(b.startswith("yr") for b in r["bands"])]
    lt_requests = [r for r in requests if "TemporalSegmentation.LandTrendr" in r["algorithms"]]
    assert len(composites) == 5 and len({r["pid"] for r in composites}) == 1
    assert len(lt_requests) == 7  # NDVI + 4 FTV stacks, loss and gain maps
    assert {r["pid"] for r in lt_requests}.isdisjoint({r["pid"] for r in composites})


def test_03_clusters_the_earth_engine_fits(ee_chain):
    s = ee_chain["03"]
    assert s["status"] == "complete" and s["univariate"]["k"] >= 2
    assert "02_fit_landtrendr" in s["trajectories"]


def test_04_classifies_the_earth_engine_ndvi(ee_chain, served):
    s = ee_chain["04"]
    assert s["status"] == "complete" and s["n_years"] == len(served.years)
    assert sum(s["class_pixels"].values()) + s["unclassified_pixels"] == 16 * 15


def test_05_downloads_sentinel1_and_detects_the_brightening(ee_chain, served):
    s = ee_chain["05"]
    assert s["status"] == "complete" and s["n_images"] == len(served.s1_dates)
    assert s["counts"]["n_brighter"] > 0

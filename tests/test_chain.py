"""The whole chain 01 -> 05 on scenes that are not the sample, as a user runs it.

(a) the real Earth Engine NBR composites of an Oregon forest laid out as an own-data folder
    (one index, 1984-2016, no truth, no Sentinel-1);
(b) the sample warped to another UTM zone, cropped to 150 x 170 px, 1984-2020, truth removed.

Notebooks 02-05 read notebook 01's output folder (``data_dir = <01 output_dir>``); 03-05 find
notebook 02's outputs beside their own output folder. Every notebook either runs or stops with
one sentence naming what is missing, and its summary.json says which sections ran.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ltlib import io

from . import scenes
from .conftest import run_notebook

#: Small settings so each notebook takes seconds (the defaults are exercised on the sample).
FAST = {
    "03_cluster_trajectories": dict(k_range=[2, 3, 4], elbow_max_series=1500, silhouette_sample=500, elbow_n_init=1,
                                    n_init=1, max_iter=30, engine_sample=300, engine_max_iter=3),
    "04_classify_trajectories": dict(models=["TSF"], epochs=1, n_synthetic_per_class=40, n_reference_per_class=10),
    "05_detect_sar_change": {},
    "02_fit_landtrendr": {},
    "01_collect_landsat": {},
}
NAMES = sorted(FAST)


def _chain(root: Path, data_dir: Path, **extra) -> dict:
    """Run 01..05; returns {name: summary or the stopping error message}."""
    out = {}
    for name in NAMES:
        folder = root / name
        src = data_dir if name == "01_collect_landsat" else root / "01_collect_landsat"
        try:
            out[name] = run_notebook(name, folder, data_dir=str(src), **FAST[name], **extra)
        except Exception as err:  # papermill's execution error carries the notebook's message
            summary = folder / "summary.json"
            out[name] = {"_error": f"{getattr(err, 'ename', type(err).__name__)}: {getattr(err, 'evalue', err)}",
                         **(json.loads(summary.read_text()) if summary.exists() else {})}
    return out


@pytest.fixture(scope="module")
def forest_chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("forest_chain")
    return _chain(root, scenes.forest_scene(root / "input"))


@pytest.fixture(scope="module")
def warped_chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("warped_chain")
    return _chain(root, scenes.reprojected_sample(root / "input"))


def _grid_of(summary, key):
    _, grid, _ = io.read_raster(Path(summary["_output_dir"]) / summary["files"][key])
    return grid


# --------------------------------------------------------------------------- (a) the forest NBR scene
def test_forest_01_leaves_a_scene_folder(forest_chain):
    s = forest_chain["01_collect_landsat"]
    assert "_error" not in s, s.get("_error")
    assert s["scene"]["indices"] == ["NBR"] and s["scene"]["years"] == [1984, 2016]
    assert s["scene"]["crs"] == "EPSG:32610" and (s["scene"]["height"], s["scene"]["width"]) == (54, 53)
    assert s["sections"]["trajectories_by_class"].startswith("skipped: no truth")
    assert s["completeness"]["index"] == "NBR"
    assert "landsat_nbr" in s["files"] and "scene" in s["files"]


def test_forest_02_fits_nbr_with_loss_and_gain_maps(forest_chain):
    s = forest_chain["02_fit_landtrendr"]
    assert "_error" not in s, s.get("_error")
    lt = s["landtrendr"]
    assert lt["index"] == "NBR" and lt["ftv_indices"] == [] and lt["years"] == [1984, 2016]
    assert s["sections"]["agreement_with_truth"].startswith("skipped: no truth")
    for key in ("nbr_fit", "loss_map", "gain_map"):
        assert _grid_of(s, key).shape == (54, 53)
    loss, _, names = io.read_raster(Path(s["_output_dir"]) / s["files"]["loss_map"])
    gain, _, _ = io.read_raster(Path(s["_output_dir"]) / s["files"]["gain_map"])
    yod = loss[names.index("yod")]
    assert np.isfinite(yod).any() and 1985 <= np.nanmin(yod) and np.nanmax(yod) <= 2016
    # a loss and a gain are different segments: no pixel has the same year and magnitude in both
    both = np.isfinite(yod) & np.isfinite(gain[0])
    assert not np.any((loss[0] == gain[0]) & (loss[1] == gain[1]) & both)
    _check_recovery_and_labelling_kit(s, yod)


def test_forest_03_clusters_univariate_and_says_why_not_multivariate(forest_chain):
    s = forest_chain["03_cluster_trajectories"]
    assert "_error" not in s, s.get("_error")
    assert s["univariate"]["indices"] == ["NBR"] and s["univariate"]["k"] >= 2
    assert s["sections"]["multivariate"].startswith("skipped:") and "two indices" in s["sections"]["multivariate"]
    assert "LandTrendr" in s["trajectories"]


def test_forest_04_stops_because_classes_are_defined_on_ndvi(forest_chain):
    s = forest_chain["04_classify_trajectories"]
    assert "_error" in s and "NDVI" in s["_error"]
    assert s["status"] == "stopped" and "NDVI" in s["sections"]["stopped"]


def test_forest_05_stops_without_sentinel1(forest_chain):
    s = forest_chain["05_detect_sar_change"]
    assert "_error" in s and "Sentinel-1" in s["_error"]
    assert s["status"] == "stopped"


# --------------------------------------------------------------------------- (b) the warped sample
def test_warped_every_notebook_runs_on_its_grid(warped_chain):
    for name, s in warped_chain.items():
        assert "_error" not in s, (name, s.get("_error"))
        assert s["status"] == "complete"
        out = Path(s["_output_dir"])
        for rel in s["files"].values():
            assert (out / rel).exists(), (name, rel)
            if rel.endswith(".tif") and not rel.startswith(("sentinel1/", "truth/")) and name != "05_detect_sar_change":
                _, grid, _ = io.read_raster(out / rel)
                assert grid.crs.to_epsg() == 32611 and grid.shape == (150, 170), (name, rel)


def _check_recovery_and_labelling_kit(s, yod):
    """02 without truth: the recovery map on the scene's grid (NaN where no loss), and the
    reference sample written for labelling, with a series plot per point; no area estimate."""
    out = Path(s["_output_dir"])
    rec, grid, names = io.read_raster(out / s["files"]["recovery_map"])
    assert grid.shape == yod.shape and names[:5] == ["dindex", "rri", "r80p", "yryr", "y2r"]
    assert np.all(np.isnan(rec[:5, np.isnan(yod)])) and np.isfinite(rec[0]).any()
    assert s["recovery"]["counts"]["no_loss"] == int(np.isnan(yod).sum())
    assert s["sections"]["recovery_vs_truth"].startswith("skipped")
    area = s["change_area"]
    assert area["reference"] == "none" and area["estimates"] is None and "label" in area["notes"][0]
    points = (out / s["files"]["reference_points_csv"]).read_text().splitlines()
    n = len(points) - 1
    assert n == sum(area["design"]["n_per_stratum"].values()) > 0
    assert len(list((out / "reference_sample" / "plots").glob("point_*.png"))) == min(n, 100)  # label_plots_max


def test_warped_02_recovery_and_labelling_kit(warped_chain):
    s = warped_chain["02_fit_landtrendr"]
    loss, _, names = io.read_raster(Path(s["_output_dir"]) / s["files"]["loss_map"])
    _check_recovery_and_labelling_kit(s, loss[names.index("yod")])


def test_warped_sections_without_truth_are_skipped(warped_chain):
    assert warped_chain["01_collect_landsat"]["scene"]["years"] == [1984, 2020]
    assert warped_chain["02_fit_landtrendr"]["sections"]["agreement_with_truth"].startswith("skipped")
    assert warped_chain["04_classify_trajectories"]["sections"]["accuracy_against_truth"].startswith("skipped")
    assert warped_chain["05_detect_sar_change"]["sections"]["accuracy"].startswith("skipped")


def test_warped_loss_years_drive_the_sentinel1_period(warped_chain):
    lt = warped_chain["02_fit_landtrendr"]["landtrendr"]
    period = warped_chain["05_detect_sar_change"]["period"]
    assert lt["years"] == [1984, 2020] and period["most_frequent_year"] == lt["most_frequent_disturbance_year"]
    assert "loss_map" in warped_chain["05_detect_sar_change"]["disturbance_years_source"]


def test_warped_classification_uses_the_scene_years(warped_chain):
    s = warped_chain["04_classify_trajectories"]
    assert s["n_years"] == 37 and sum(s["class_pixels"].values()) + s["unclassified_pixels"] == 150 * 170


def test_mismatched_earlier_output_is_refused(warped_chain, forest_chain, tmp_path):
    """Notebook 05 given the forest's LandTrendr outputs for the warped scene: a clear refusal."""
    with pytest.raises(Exception) as err:
        run_notebook("05_detect_sar_change", tmp_path / "05", data_dir=warped_chain["01_collect_landsat"]["_output_dir"],
                     landtrendr_dir=forest_chain["02_fit_landtrendr"]["_output_dir"])
    assert "is on another grid" in str(err.value) and "loss_map.tif" in str(err.value)

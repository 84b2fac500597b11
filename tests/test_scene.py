"""ltlib.scene: one loader for the sample, own folders and notebook outputs."""
import json
import warnings

import numpy as np
import pytest
import rasterio

from ltlib import config, io, scene

from . import scenes


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    return scenes.forest_scene(tmp_path_factory.mktemp("forest"))


@pytest.fixture(scope="module")
def warped(tmp_path_factory):
    return scenes.reprojected_sample(tmp_path_factory.mktemp("warped"))


def test_sample_loads_with_truth_and_s1(data_dir):
    sc = scene.load(data_dir, quiet=True)
    assert sc.source == "sample" and sc.indices == list(config.SAMPLE_INDICES)
    assert sc.years[0] == 1972 and len(sc.years) == 51 and sc.grid.shape == (200, 200)
    assert sc.has_truth and sc.truth["class"].shape == (200, 200)
    assert sc.s1 is not None and sc.s1.vv.shape == (49, 128, 128) and sc.s1.truth is not None
    assert "SIMULATED" in sc.provenance and "1972-2022" in sc.provenance


def test_forest_folder_reads_years_tag_gaps_and_units(forest):
    with pytest.warns(UserWarning) as rec:
        sc = scene.load(forest, quiet=True)
    msgs = " ".join(str(w.message) for w in rec)
    assert "124 values -32768 were read as nodata" in msgs and "read as NBR x 1000" in msgs
    assert sc.indices == ["NBR"] and sc.source == "folder"
    assert sc.years.tolist() == list(range(1984, 2017))
    assert sc.grid.crs.to_epsg() == 32610 and sc.grid.shape == (54, 53)
    assert not sc.has_truth and sc.s1 is None
    assert int(np.isnan(sc.stack("NBR").data).sum()) == 124
    # the real values are NBR x 1000 (a forest: mostly 500-900)
    assert 400 < np.nanmedian(sc.stack("NBR").data) < 950
    assert sc.pick_index() == "NBR"


def test_warped_sample_keeps_values_on_a_new_grid(warped, data_dir):
    sc = scene.load(warped, quiet=True)
    assert sc.grid.crs.to_epsg() == 32611 and sc.grid.shape == (150, 170)
    assert sc.years.tolist() == list(range(1984, 2021)) and not sc.has_truth
    assert sc.s1 is not None and sc.s1.truth is None and len(sc.s1.dates) == 49
    # nearest-neighbour warp: the values are the sample's values of those years
    orig = scene.load(data_dir, quiet=True).stack("NDVI")
    sel = (orig.years >= 1984) & (orig.years <= 2020)
    vals = set(np.unique(orig.data[sel][np.isfinite(orig.data[sel])]).tolist())
    new = sc.stack("NDVI").data
    assert set(np.unique(new[np.isfinite(new)]).tolist()) <= vals


def test_wanted_index_missing_is_reported_not_fatal(forest, capsys):
    sc = scene.load(forest, indices=["NDVI", "NBR"])
    assert sc.indices == ["NBR"]
    assert "not in this scene: NDVI" in capsys.readouterr().out
    with pytest.raises(scene.MissingInputError, match="has no NDVI stack.*this scene has NBR"):
        sc.stack("NDVI")
    with pytest.raises(scene.MissingInputError, match="multivariate clustering needs TCG, TCW"):
        sc.require("NBR", "TCG", "TCW", why="multivariate clustering")


def test_unknown_index_and_bad_folders(tmp_path, forest):
    with pytest.raises(ValueError, match="unknown index XYZ"):
        scene.load(forest, indices=["XYZ"], quiet=True)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        scene.load(tmp_path / "nope", quiet=True)
    with pytest.raises(FileNotFoundError, match="landsat.*does not exist"):
        scene.load(tmp_path, quiet=True)
    # papermill's -p gives strings: a clear error, not "unknown index N, D, V, I"
    with pytest.raises(ValueError, match=r"indices must be a list .* got the string 'NDVI' .*-y \"indices: \[NDVI\]\""):
        scene.load(forest, indices="NDVI", quiet=True)
    with pytest.raises(ValueError, match=r"years must be \(first, last\).* got 1990"):
        scene.load(forest, years=1990, quiet=True)


def test_years_subset_and_too_few_years(data_dir):
    sc = scene.load(data_dir, years=(1990, None), quiet=True)
    assert sc.years[0] == 1990 and sc.years[-1] == 2022
    assert sc.stack("NDVI").data.shape[0] == 33
    with pytest.raises(ValueError, match="at least 6"):
        scene.load(data_dir, years=(2019, 2022), quiet=True)


def _stack_file(path, data, names, dtype, tags=None, nodata=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2], count=data.shape[0],
                       dtype=dtype, crs="EPSG:32633", transform=rasterio.transform.from_origin(500000, 5e6, 20, 20),
                       nodata=nodata) as dst:
        dst.write(data.astype(dtype))
        for i, n in enumerate(names, 1):
            dst.set_band_description(i, n)
        if tags:
            dst.update_tags(**tags)


def test_float_physical_ndvi_is_scaled_with_a_warning(tmp_path):
    rng = np.random.default_rng(0)
    phys = rng.uniform(0.1, 0.8, (8, 5, 4)).astype("float32")
    _stack_file(tmp_path / "landsat" / "ndvi.tif", phys, [f"yr_{y}" for y in range(2000, 2008)], "float32")
    with pytest.warns(UserWarning, match="multiplied by 1000"):
        sc = scene.load(tmp_path, quiet=True)
    np.testing.assert_allclose(sc.stack("NDVI").data, phys * 1000, rtol=1e-6)
    assert sc.stack("NDVI").scale == 0.001 and sc.grid.transform.a == 20
    # a converted stack is written in stored units, and reads back identical without warnings
    sc.write(tmp_path / "copy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = scene.load(tmp_path / "copy", quiet=True)
    np.testing.assert_allclose(back.stack("NDVI").data, np.rint(phys * 1000))


def test_stacks_on_different_grids_or_years_are_refused(tmp_path):
    a = np.zeros((7, 4, 4))
    _stack_file(tmp_path / "landsat" / "ndvi.tif", a, [f"yr{y}" for y in range(2000, 2007)], "int16",
                {"scale": "0.001"}, nodata=-32768)
    _stack_file(tmp_path / "landsat" / "nbr.tif", a, [f"yr{y}" for y in range(2001, 2008)], "int16",
                {"scale": "0.001"}, nodata=-32768)
    with pytest.raises(ValueError, match="need the same years"):
        scene.load(tmp_path, quiet=True)


def test_band_names_without_years_need_a_tag(tmp_path):
    _stack_file(tmp_path / "landsat" / "ndvi.tif", np.zeros((7, 3, 3)), [f"b{i}" for i in range(7)], "int16",
                {"scale": "0.001"}, nodata=-32768)
    with pytest.raises(ValueError, match="band 1 is named 'b0'.*yr_YYYY.*'years'"):
        scene.load(tmp_path, quiet=True)


def test_write_then_load_round_trip_and_provenance(tmp_path, data_dir):
    sc = scene.load(data_dir, quiet=True)
    written = sc.write(tmp_path)
    assert (tmp_path / "landsat" / "ndvi.tif").read_bytes() == (data_dir / "landsat" / "ndvi.tif").read_bytes()
    info = json.loads(written["scene"].read_text())
    assert info["source"] == "sample" and info["years"][0] == 1972
    back = scene.load(tmp_path, quiet=True)
    assert back.source == "sample" and back.has_truth and back.s1 is not None
    assert f"from {data_dir}, copied to {tmp_path}" in back.provenance
    assert not list(tmp_path.rglob(".*.part"))  # atomic writes leave no temporary files


def test_read_output_checks_grid_and_years(tmp_path, data_dir, warped):
    sc = scene.load(data_dir, quiet=True)
    step = tmp_path / "02"
    path = io.write_stack(step / "ndvi_fit.tif", sc.stack("NDVI").data, sc.years, sc.grid)
    other = scene.load(warped, quiet=True)
    io.write_raster(step / "loss_map.tif", np.zeros((6,) + other.grid.shape), other.grid,
                    band_names=["yod", "mag", "dur", "preval", "rate", "dsnr"], dtype="float32")
    io.write_json(step / "summary.json", {"files": {"ndvi_fit": "ndvi_fit.tif", "loss_map": "loss_map.tif"}})
    s = sc.read_output(step, "ndvi_fit", stack=True)
    assert s.path == path and s.grid.same_as(sc.grid)
    with pytest.raises(ValueError, match="loss_map.tif \\(loss_map\\) is on another grid.*150 x 170 px, EPSG:32611"):
        sc.read_output(step, "loss_map")
    with pytest.raises(scene.MissingInputError, match="lists no output 'gain_map'"):
        sc.read_output(step, "gain_map")
    short = scene.load(data_dir, years=(1990, 2022), quiet=True)
    with pytest.raises(ValueError, match="has years 1972-2022 \\(51\\).*1990-2022 \\(33\\)"):
        short.read_output(step, "ndvi_fit", stack=True)


def test_sentinel1_outside_the_landsat_scene_is_refused(tmp_path, data_dir, forest):
    import shutil

    shutil.copytree(forest / "landsat", tmp_path / "landsat")
    shutil.copytree(data_dir / "sentinel1", tmp_path / "sentinel1")
    with pytest.raises(ValueError, match="outside the Landsat scene"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scene.load(tmp_path, quiet=True)

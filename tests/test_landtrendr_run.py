"""ltlib.landtrendr.run: LandTrendr on a whole scene, loss and gain maps, and their files."""
import numpy as np
import pytest
import rasterio

from ltlib import config, io, landtrendr, params, scene


@pytest.fixture(scope="module")
def sc(data_dir):
    return scene.load(data_dir, years=(1984, 2022), quiet=True)


@pytest.fixture(scope="module")
def run(sc):
    return landtrendr.fit_scene(sc, ftv=["NBR", "TCB"])


def test_same_as_calling_the_port_directly(sc, run):
    p = params.LandTrendrParams()
    ndvi = sc.stack("NDVI")
    direct = landtrendr.segment(ndvi.data, ndvi.years, distdir=-1, **p.as_dict())
    np.testing.assert_array_equal(run.fitted["NDVI"], direct.fitted)
    ftv = landtrendr.fit_to_vertices(sc.stack("TCB").data, ndvi.years, direct.is_vertex)
    np.testing.assert_array_equal(run.fitted["TCB"], ftv)
    loss = landtrendr.change_map(direct, delta="loss", sort="greatest", mag_min=150)
    gain = landtrendr.change_map(direct, delta="gain", sort="greatest", mag_min=300)
    for band in landtrendr.CHANGE_BANDS:
        np.testing.assert_array_equal(run.loss[band], loss[band])
        np.testing.assert_array_equal(run.gain[band], gain[band])


def test_loss_and_gain_are_different_maps(sc, run):
    truth = sc.truth
    pit = truth["class"] == 0  # downward: the pit, lost and never recovered
    assert np.isfinite(run.loss["yod"][pit]).mean() > 0.7  # the rest was dug before 1984
    assert np.isfinite(run.gain["yod"][pit]).mean() < 0.05
    # where both exist, the gain follows the loss on down-then-up pixels
    dtu = (truth["class"] == 1) & np.isfinite(run.loss["yod"]) & np.isfinite(run.gain["yod"])
    assert (run.gain["yod"][dtu] > run.loss["yod"][dtu]).mean() > 0.9


def test_summary_and_areas(run):
    s = run.summary()
    assert s["engine"] == "local" and s["index"] == "NDVI" and s["ftv_indices"] == ["NBR", "TCB"]
    assert s["years"] == [1984, 2022] and s["params"] == config.LANDTRENDR_PARAMS
    assert s["loss_params"]["delta"] == "loss" and s["gain_params"]["mag_min"] == 300
    loss_px = np.isfinite(run.loss["yod"]).sum()
    assert sum(s["loss_area_ha_by_year"].values()) == pytest.approx(loss_px * 0.09, abs=0.05)
    assert s["loss_fraction"] == pytest.approx(loss_px / run.n_pixels, abs=1e-4)
    assert s["most_frequent_disturbance_year"] == max(s["loss_area_ha_by_year"], key=s["loss_area_ha_by_year"].get)
    assert sum(s["vertex_count_distribution"].values()) == run.n_pixels
    r, c = run.example_pixel()
    assert run.loss["mag"][r, c] == np.nanmax(run.loss["mag"])


def test_write_names_loss_and_gain_files(tmp_path, sc, run):
    written = run.write(tmp_path)
    assert set(written) == {"ndvi_fit", "nbr_fit", "tcb_fit", "loss_map", "gain_map"}
    for delta in ("loss", "gain"):
        with rasterio.open(written[f"{delta}_map"]) as src:
            assert src.tags()["delta"] == delta and list(src.descriptions) == list(landtrendr.CHANGE_BANDS)
        data, grid, _ = io.read_raster(written[f"{delta}_map"])
        assert grid.same_as(sc.grid)
        np.testing.assert_array_equal(data[0], getattr(run, delta)["yod"])
    fit = io.read_stack(written["ndvi_fit"])
    assert fit.years.tolist() == sc.years.tolist() and fit.scale == 0.001


def _step_at_yod(r, name):
    """Fitted value in the year of detection minus the pre-change value, where a loss is mapped."""
    yod = r.loss["yod"]
    rows, cols = np.nonzero(np.isfinite(yod))
    t = np.searchsorted(r.years, yod[rows, cols].astype(int))
    return r.fitted[name][t, rows, cols] - r.loss["preval"][rows, cols]


def test_loss_follows_the_disturbance_direction_of_the_index(sc, run):
    # NDVI drops on a loss (distdir -1); TCB, brightness, rises (distdir +1)
    assert (_step_at_yod(run, "NDVI") < 0).all()
    tcb = landtrendr.fit_scene(sc, index="TCB", ftv=[], loss=params.ChangeMapParams.loss(mag_min=None))
    assert tcb.index == "TCB" and tcb.fitted.keys() == {"TCB"}
    step = _step_at_yod(tcb, "TCB")
    assert step.size > 1000 and (step > 0).all()


def test_bad_requests(sc):
    with pytest.raises(scene.MissingInputError, match="no NDMI stack"):
        landtrendr.fit_scene(sc, index="NDMI")
    with pytest.raises(ValueError, match="delta 'loss' and 'gain'"):
        landtrendr.fit_scene(sc, loss=params.ChangeMapParams.gain())


def test_areas_on_a_geographic_grid_are_in_hectares_not_square_degrees(tmp_path):
    """Own data in EPSG:4326 (float NDVI): loss areas come from metric pixel areas (about 846 m^2
    per 0.0003 deg pixel at 40.6 N), not from the degrees of the transform (which gave 0.0 ha)."""
    from rasterio.transform import from_origin

    years = list(range(2000, 2011))
    rng = np.random.default_rng(0)
    ndvi = (0.6 + rng.normal(0, 0.02, (len(years), 30, 40))).astype(np.float32)
    ndvi[5:, 5:20, 5:25] -= 0.4  # 15 x 20 px lost in 2005
    (tmp_path / "landsat").mkdir()
    prof = dict(driver="GTiff", height=30, width=40, count=len(years), dtype="float32", crs="EPSG:4326",
                transform=from_origin(-112.2, 40.6, 0.0003, 0.0003), nodata=np.nan)
    with rasterio.open(tmp_path / "landsat" / "ndvi.tif", "w", **prof) as dst:
        dst.write(ndvi)
        for i, y in enumerate(years):
            dst.set_band_description(i + 1, f"yr_{y}")
    with pytest.warns(UserWarning, match="multiplied by 1000"):
        sc = scene.load(tmp_path, quiet=True)
    assert sc.summary()["pixel_area_m2"] == pytest.approx(846, abs=3)
    assert "0.0003 deg (about 25 x 33 m)" in sc.provenance
    run = landtrendr.fit_scene(sc)
    by_year = run.area_by_year("loss")
    assert by_year[2005] == pytest.approx(sc.grid.area_ha(run.loss["yod"] == 2005), abs=0.01)
    assert by_year[2005] == pytest.approx(300 * 846 / 1e4, rel=0.02)  # the 300 lost pixels: 25.4 ha

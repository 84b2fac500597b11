"""Tests for ltlib.sar_run: notebook 05's step (period, Sentinel-1 stack, omnibus run, outputs)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ltlib import io, sar, sar_run, scene
from ltlib.io import Grid


@pytest.fixture(scope="module")
def sample_scene(data_dir):
    return scene.load(data_dir, quiet=True)


@pytest.fixture(scope="module")
def small_s1(sample_scene):
    """The sample's Sentinel-1 stack cut to its first 12 images (truth cut the same way)."""
    s1 = sample_scene.s1
    truth = dict(s1.truth, bmap=s1.truth["bmap"][:11])
    return dataclasses.replace(s1, vv=s1.vv[:12], vh=s1.vh[:12], dates=s1.dates[:12], truth=truth)


def _no_truth(sc, **kw):
    return dataclasses.replace(sc, truth=None, s1=None, **kw)


def _fake_landtrendr_dir(folder, grid: Grid, yod: np.ndarray):
    """A notebook-02 output folder with a loss_map.tif (bands yod, mag) and its summary.json."""
    io.write_raster(folder / "loss_map.tif", np.stack([yod, np.where(np.isfinite(yod), 300.0, np.nan)]), grid,
                    band_names=["yod", "mag"], dtype="float32", nodata=np.nan)
    io.write_json(folder / "summary.json", {"status": "complete", "files": {"loss_map": "loss_map.tif"}})
    return folder


# ----------------------------------------------------------------------------- the period
def test_period_from_truth_without_landtrendr(sample_scene):
    p = sar_run.choose_period(sample_scene)
    expected = sar.pick_s1_period(*sar.disturbance_year_counts(sample_scene.truth["dist_year"]))
    assert p.window == expected and "truth dist_year" in p.source
    assert p.summary() == {"disturbance_years_source": p.source, "period": expected}
    assert (p.start, p.end) == (expected["start"], expected["end"]) and p.start in str(p)


def test_period_from_the_loss_map(sample_scene, tmp_path, capsys):
    yod = np.full(sample_scene.grid.shape, np.nan, np.float32)
    yod[:50] = 2019
    yod[50:60] = 1990
    folder = _fake_landtrendr_dir(tmp_path, sample_scene.grid, yod)
    p = sar_run.choose_period(sample_scene, folder)
    assert p.source == f"LandTrendr loss_map of {folder}" and "loss_map" in p.source
    assert p.years.tolist() == [1990, 2019] and p.counts.tolist() == [10 * 200, 50 * 200]
    assert p.window["most_frequent_year"] == 2019 and p.start == "2019-04-02"
    assert "loss_map.tif" in capsys.readouterr().out  # names the file it used


def test_loss_map_of_another_grid_is_refused(sample_scene, tmp_path):
    g = sample_scene.grid
    other = Grid(g.crs, g.transform @ g.transform.translation(7, 0), g.height, g.width)
    folder = _fake_landtrendr_dir(tmp_path, other, np.full(g.shape, 2019, np.float32))
    with pytest.raises(ValueError) as err:
        sar_run.choose_period(sample_scene, folder)
    assert "is on another grid" in str(err.value) and "loss_map.tif" in str(err.value)


def test_period_without_any_disturbance_years(sample_scene):
    p = sar_run.choose_period(_no_truth(sample_scene))
    assert p.source.startswith("none") and p.years.size == 0
    assert p.window["most_frequent_year"] is None and p.window["year"] == sar.S1_AB_YEARS[1]


def test_period_set_by_the_user(sample_scene):
    p = sar_run.choose_period(sample_scene, start="2021-01-05", end="2021-06-30")
    assert (p.start, p.end) == ("2021-01-05", "2021-06-30") and "s1_start" in p.window["reason"]
    with pytest.raises(ValueError, match="both s1_start and s1_end"):
        sar_run.choose_period(sample_scene, start="2021-01-05")
    with pytest.raises(ValueError, match="s1_end"):
        sar_run.choose_period(sample_scene, start="2021-01-05", end="2021-13-01")
    with pytest.raises(ValueError, match="after"):
        sar_run.choose_period(sample_scene, start="2021-06-30", end="2021-01-05")


# ----------------------------------------------------------------------------- the stack
def test_no_sentinel1_stack(sample_scene):
    sc = _no_truth(sample_scene)
    assert sar_run.sentinel1_stack(sc, sar_run.choose_period(sc)) is None
    reason = sar_run.no_sentinel1_reason(sc)
    assert "Sentinel-1" in reason and str(sc.folder / "sentinel1") in reason and "use_gee=True" in reason


def test_the_scene_stack_is_used(sample_scene, capsys):
    s1 = sar_run.sentinel1_stack(sample_scene, sar_run.choose_period(sample_scene))
    assert s1 is sample_scene.s1
    assert "49 images 2019-04-02 .. 2020-10-29" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the run
def test_run_summary_write_and_scores(sample_scene, small_s1, tmp_path):
    period = sar_run.choose_period(sample_scene)
    run = sar_run.detect_changes(small_s1, period)
    direct = sar.omnibus(small_s1.vv, small_s1.vh)
    np.testing.assert_array_equal(run.result.bmap, direct.bmap)
    s = run.summary()
    for key in ("n_images", "counts", "period", "disturbance_years_source", "accuracy", "sensitivity", "params",
                "dates", "busiest_interval"):
        assert key in s, key
    assert s["n_images"] == 12 and s["dates"] == [small_s1.dates[0], small_s1.dates[11]]
    assert s["params"] == {"enl": 4.4, "alpha": 0.01, "median_filter": False, "orbit_pass": "ASCENDING"}
    assert s["accuracy"] is None and s["sensitivity"] is None and s["counts"] == direct.counts()
    prop = run.proportions().sum(1)
    b = s["busiest_interval"]
    assert b["interval"] == int(np.argmax(prop)) + 1 and b["percent_changed"] == pytest.approx(100 * prop.max(), abs=1e-3)
    assert "valid pixels" in str(run)

    acc = run.score()
    assert acc == sar.detection_accuracy(direct.bmap, small_s1.truth["bmap"], direct.valid) and run.accuracy is acc
    table = run.sensitivity_table(alphas=(0.01, 0.001), median_filters=(False,))
    assert list(table["alpha"]) == [0.01, 0.001]
    assert table["recall"][0] == pytest.approx(acc["recall"], abs=1e-4)  # the run's own setting is reused
    assert run.summary()["sensitivity"] == table.to_dict(orient="records")

    written = run.write(tmp_path)
    assert set(written) == {"cmap", "smap", "fmap", "bmap"}  # the stack was not downloaded here
    bmap, grid, names = io.read_raster(written["bmap"])
    assert grid.same_as(small_s1.grid) and names == sar.interval_labels(small_s1.dates)
    fmap, _, _ = io.read_raster(written["fmap"])
    assert int(np.isfinite(fmap).sum()) == s["counts"]["n_valid"] and int(np.nansum(fmap)) == s["counts"]["n_changes"]


def test_downloaded_stack_is_listed_with_the_outputs(small_s1, sample_scene, tmp_path):
    folder = tmp_path / "sentinel1"
    for pol in ("vv", "vh"):
        io.write_raster(folder / f"s1_{pol}.tif", getattr(small_s1, pol), small_s1.grid, band_names=small_s1.dates,
                        dtype="float32")
    s1 = scene.load_sentinel1(folder, landsat_grid=sample_scene.grid)
    assert s1.truth is None
    run = sar_run.detect_changes(s1, sar_run.choose_period(sample_scene))
    assert not run.has_truth
    with pytest.raises(ValueError, match="no truth"):
        run.score()
    written = run.write(tmp_path)
    assert written["s1_vv"] == folder / "s1_vv.tif" and written["s1_vh"] == folder / "s1_vh.tif"


def test_detect_changes_needs_a_stack(sample_scene):
    with pytest.raises(ValueError, match="Sentinel-1 stack"):
        sar_run.detect_changes(None, sar_run.choose_period(sample_scene))


# ----------------------------------------------------------------------------- figures and map
def test_figures_and_map(sample_scene, small_s1):
    from ltlib import maps, plots

    period = sar_run.choose_period(sample_scene)
    run = sar_run.detect_changes(small_s1, period)
    figs = [plots.plot_s1_period(period.years, period.counts, period.window, title="t"),
            plots.plot_s1_period([], [], sar.pick_s1_period([], [])),
            plots.plot_s1_mean(small_s1.vv, small_s1.vh, small_s1.grid),
            plots.plot_sar_change_maps(run.result, run.grid),
            plots.plot_change_proportions(run.proportions(), run.dates, title="t"),
            plots.plot_detections_per_interval(run.result.bmap, small_s1.truth["bmap"], run.result.valid, run.dates)]
    assert all(f.axes for f in figs)
    m = maps.sar_change_map(run.result, run.grid, run.dates, basemaps=False)
    names = [layer.name for layer in m.layers]
    assert names[-1] == "cmap/smap/fmap composite"  # the seed's view on top
    assert {"smap: first change", "cmap: last change", "fmap: number of changes"} <= set(names)
    on_view = [layer.name for layer in m.layers if layer.visible]
    assert on_view == ["cmap/smap/fmap composite"]  # the single maps wait in the layer panel
    # the smap and cmap colour bars have their own title, meaning and colour map
    bars = {e.title: e for e in m.ltlib_legends if e.cmap is not None}
    assert set(bars) == {"smap: first change", "cmap: last change"}
    assert bars["smap: first change"].label.startswith("interval of the first change (1 = ")
    assert bars["cmap: last change"].label.startswith("interval of the last change (1 = ")
    assert bars["smap: first change"].cmap != bars["cmap: last change"].cmap

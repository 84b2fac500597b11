"""Tests for ltlib.sar: the sequential omnibus test (spec: sar_omnibus.md)."""
from __future__ import annotations

import numpy as np
import pytest

from ltlib import sample, sar

from .sar_reference import omnibus_reference

ENL = 4.4


def speckle(rng, shape, enl=ENL):
    return rng.gamma(enl, 1.0 / enl, size=shape)


def constant_series(values, vh=None):
    """(k, 1, 1) arrays of a constant (noise-free) series; vh defaults to vv."""
    vv = np.asarray(values, float)[:, None, None]
    return vv, (vv.copy() if vh is None else np.asarray(vh, float)[:, None, None])


@pytest.fixture(scope="module")
def changing_scene():
    """12 images of 36 x 44 px with random step changes, zeros and a NaN."""
    rng = np.random.default_rng(1)
    k, H, W = 12, 36, 44
    mean = rng.uniform(0.05, 0.3, (H, W))
    fac = np.ones((k, H, W))
    for _ in range(50):
        r, c, j = rng.integers(0, H - 8), rng.integers(0, W - 8), rng.integers(1, k)
        fac[j:, r:r + 8, c:c + 8] *= rng.choice([0.25, 0.4, 2.5, 4.0])
    vv = mean * fac * speckle(rng, (k, H, W))
    vh = 0.3 * mean * fac * speckle(rng, (k, H, W))
    vh[:, :, :5] *= np.where(rng.random((k, H, 5)) < 0.5, 1.0, 2.5)  # some indefinite changes
    vv[:, :, :2] = 0.0  # border noise
    vv[3, 5, 7] = np.nan  # one masked observation
    return vv, vh


# ----------------------------------------------------------------------------- constants
def test_unit_constants_r2():
    f, rho, omega2 = sar.r_constants(2, 4.4, p=2)
    assert f == 2
    assert rho == pytest.approx(0.943182, abs=1e-6)
    assert omega2 == pytest.approx(-1.814487e-3, rel=1e-6)


def test_unit_constants_q10():
    f, rho, omega2 = sar.q_constants(10, 4.4, p=2)
    assert f == 18
    assert rho == pytest.approx(0.958333, abs=1e-6)
    assert omega2 == pytest.approx(-8.506616e-3, rel=1e-6)


def test_single_band_constants_halve_f_and_omega2():
    f1, rho1, om1 = sar.q_constants(10, 4.4, p=1)
    f2, rho2, om2 = sar.q_constants(10, 4.4, p=2)
    assert (f1, rho1) == (9, rho2) and om1 == pytest.approx(om2 / 2)


def test_threshold_is_the_alpha_quantile_of_the_box_mixture():
    for f, rho, om in (sar.r_constants(2, 4.4), sar.q_constants(49, 4.4), sar.q_constants(3, 4.4, p=1)):
        thr = sar._ln_threshold(f, rho, om, 0.01)
        assert sar.box_sf(-2 * rho * thr, f, om) == pytest.approx(0.01, rel=1e-9)
        assert sar.box_sf(-2 * rho * thr * 1.001, f, om) < 0.01 < sar.box_sf(-2 * rho * thr * 0.999, f, om)


def test_box_sf_is_one_at_zero_and_clipped():
    assert sar.box_sf(0.0, 2, -2e-3) == 1.0
    assert sar.box_sf(1e4, 2, -2e-3) == 0.0  # raw mixture is negative far in the tail


# ----------------------------------------------------------------------------- worked series
def test_worked_series_q_gate_holds_back_1_1_4():
    res = sar.omnibus(*constant_series([1, 1, 4]), enl=4.4, alpha=0.01)
    assert (res.cmap, res.smap, res.fmap) == (0, 0, 0)
    assert not res.bmap.any()
    # R_3 alone would fire: the omnibus Q is what holds it back
    p_q = sar.q_pvalue(*constant_series([1, 1, 4]))[0, 0]
    assert 0.01 < p_q < 0.05


def test_worked_series_1_10_10_1():
    res = sar.omnibus(*constant_series([1, 10, 10, 1]), enl=4.4, alpha=0.01)
    assert int(res.cmap[0, 0]) == 3
    assert int(res.smap[0, 0]) == 1
    assert int(res.fmap[0, 0]) == 2
    assert res.bmap[:, 0, 0].tolist() == [1, 0, 2]
    assert res.cmap.dtype == res.smap.dtype == res.fmap.dtype == res.bmap.dtype == np.uint8


def test_single_band_variant_worked_series():
    vv, _ = constant_series([1, 10, 10, 1])
    res = sar.omnibus_single(vv)
    assert (int(res.cmap[0, 0]), int(res.smap[0, 0]), int(res.fmap[0, 0])) == (3, 1, 2)
    assert res.bmap[:, 0, 0].tolist() == [1, 0, 2]
    via_none = sar.omnibus(vv, None)
    assert np.array_equal(via_none.bmap, res.bmap) and via_none.n_bands == 1


def test_direction_uses_running_mean_since_last_change():
    # 40 x 1, 3 x 1000, 4 x 100: the drop to 100 is darker than the mean since the last
    # change (1000) although brighter than the mean of the whole series so far (~71).
    vv, vh = constant_series([1] * 40 + [1000] * 3 + [100] * 4)
    res = sar.omnibus(vv, vh)
    assert np.flatnonzero(res.bmap[:, 0, 0]).tolist() == [39, 42]  # intervals 40 and 43
    assert res.bmap[[39, 42], 0, 0].tolist() == [1, 2]
    assert (int(res.smap[0, 0]), int(res.cmap[0, 0])) == (40, 43)


def test_indefinite_change():
    vv, vh = constant_series([1] * 4 + [6] * 4, vh=[1] * 4 + [1 / 6] * 4)
    res = sar.omnibus(vv, vh)
    assert res.bmap[:, 0, 0].tolist() == [0, 0, 0, 3, 0, 0, 0]


# ----------------------------------------------------------------------------- statistics
def test_null_false_alarm_rate_of_q():
    rng = np.random.default_rng(0)
    vv, vh = speckle(rng, (10, 256, 256)), speckle(rng, (10, 256, 256))
    pq = sar.q_pvalue(vv, vh, enl=ENL)
    assert pq.shape == (256, 256) and np.isfinite(pq).all()
    assert 0.0085 <= (pq < 0.01).mean() <= 0.0115
    # and under the null p(Q) is uniform: its deciles are close to 0.1 each
    hist = np.histogram(pq, bins=10, range=(0, 1))[0] / pq.size
    assert np.abs(hist - 0.1).max() < 0.006
    # the sequential maps cannot alarm more often than the Q gate
    res = sar.omnibus(vv[:, :128], vh[:, :128])
    assert (res.fmap > 0).mean() <= (res.q_pvalue <= 0.01).mean() + 1e-12
    assert (res.fmap > 0).mean() < 0.0115


def test_detection_power_step_x6():
    rng = np.random.default_rng(3)
    vv, vh = speckle(rng, (10, 128, 128)), speckle(rng, (10, 128, 128))
    vv[5:] *= 6.0  # step between image 5 and 6 -> interval 5
    vh[5:] *= 6.0
    res = sar.omnibus(vv, vh, enl=ENL, alpha=0.01)
    assert (res.smap == 5).mean() >= 0.92
    assert (res.fmap > 0).mean() > 0.999
    assert (res.bmap[4] == 1).mean() >= 0.9  # brighter: positive definite
    assert (res.bmap[4] == 2).sum() == 0


def test_single_band_has_less_power_than_dual():
    rng = np.random.default_rng(4)
    vv, vh = speckle(rng, (10, 96, 96)), speckle(rng, (10, 96, 96))
    vv[5:] /= 6.0
    vh[5:] /= 6.0
    dual = (sar.omnibus(vv, vh).smap == 5).mean()
    single_res = sar.omnibus_single(vv)
    single = (single_res.smap == 5).mean()
    # one band carries half the evidence: about 0.6 of the pixels vs 0.9 with VV+VH
    assert 0.5 < single < dual - 0.2 and dual > 0.85
    assert set(np.unique(single_res.bmap)) <= {0, 1, 2}
    assert (single_res.bmap[4] == 2).sum() > 0.9 * (single_res.bmap[4] > 0).sum()


def test_two_images_change_exactly_where_q_rejects():
    # with k = 2, R_2 is Q: the maps must flag interval 1 exactly where p(Q) <= alpha
    rng = np.random.default_rng(8)
    vv, vh = speckle(rng, (2, 64, 64)), speckle(rng, (2, 64, 64))
    vv[1, :32] *= 3.0
    vh[1, :32] *= 3.0
    res = sar.omnibus(vv, vh, alpha=0.05)
    pq = sar.q_pvalue(vv, vh)
    np.testing.assert_array_equal(res.fmap == 1, pq <= 0.05)
    np.testing.assert_array_equal(res.cmap, res.smap)
    assert 0.35 < (res.fmap[:32] == 1).mean() and (res.fmap[32:] == 1).mean() < 0.08


def test_median_filter_reduces_isolated_false_alarms():
    rng = np.random.default_rng(9)
    vv, vh = speckle(rng, (10, 128, 128)), speckle(rng, (10, 128, 128))
    vv[5:, 32:96, 32:96] *= 6.0  # a 64 x 64 field brightens between image 5 and 6
    vh[5:, 32:96, 32:96] *= 6.0
    plain = sar.omnibus(vv, vh)
    filt = sar.omnibus(vv, vh, median_filter=True)
    inside = np.zeros((128, 128), bool)
    inside[34:94, 34:94] = True  # away from the field's edge
    outside = np.ones((128, 128), bool)
    outside[30:98, 30:98] = False
    assert (filt.fmap[outside] > 0).mean() < (plain.fmap[outside] > 0).mean()
    assert (filt.fmap[outside] > 0).mean() < 0.002
    assert (filt.smap[inside] == 5).mean() > 0.99


# ----------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("median_filter", [False, True])
@pytest.mark.parametrize("n_bands", [1, 2])
def test_same_maps_as_textbook_loops(changing_scene, median_filter, n_bands):
    vv, vh = changing_scene
    bands = [vv, vh][:n_bands]
    res = sar.omnibus(vv, vh if n_bands == 2 else None, median_filter=median_filter)
    cmap, smap, fmap, bmap, valid = omnibus_reference(bands, enl=ENL, median_filter=median_filter)
    assert fmap.sum() > 300  # the scene really has changes to find
    np.testing.assert_array_equal(res.valid, valid)
    np.testing.assert_array_equal(res.cmap, cmap)
    np.testing.assert_array_equal(res.smap, smap)
    np.testing.assert_array_equal(res.fmap, fmap)
    np.testing.assert_array_equal(res.bmap, bmap)


def test_chunking_does_not_change_results(changing_scene, monkeypatch):
    vv, vh = changing_scene
    whole = sar.omnibus(vv, vh)
    monkeypatch.setattr(sar, "_CHUNK", 97)
    parts = sar.omnibus(vv, vh)
    for name in ("cmap", "smap", "fmap", "bmap"):
        np.testing.assert_array_equal(getattr(parts, name), getattr(whole, name))
    np.testing.assert_allclose(parts.q_pvalue, whole.q_pvalue, equal_nan=True)


def test_q_pvalue_matches_result_and_formula():
    rng = np.random.default_rng(5)
    vv, vh = speckle(rng, (5, 4, 3)), speckle(rng, (5, 4, 3))
    pq = sar.q_pvalue(vv, vh)
    assert np.allclose(sar.omnibus(vv, vh).q_pvalue, pq, rtol=1e-6)
    # direct formula for one pixel
    x = np.stack([vv[:, 1, 2], vh[:, 1, 2]])
    lnq = ENL * (2 * 5 * np.log(5) + np.log(x).sum() - 5 * np.log(x.sum(1)).sum())
    f, rho, om = sar.q_constants(5, ENL, 2)
    assert pq[1, 2] == pytest.approx(sar.box_sf(-2 * rho * lnq, f, om), rel=1e-12)


# ----------------------------------------------------------------------------- no-data & errors
def test_nan_and_zero_pixels_are_nodata_not_change(changing_scene):
    vv, vh = changing_scene
    res = sar.omnibus(vv, vh)
    assert not res.valid[:, :2].any() and not res.valid[5, 7]
    assert res.valid.sum() == vv.shape[1] * vv.shape[2] - vv.shape[1] * 2 - 1
    for m in (res.cmap, res.smap, res.fmap):
        assert not m[~res.valid].any()
    assert not res.bmap[:, ~res.valid].any()
    assert np.isnan(res.q_pvalue[~res.valid]).all() and np.isfinite(res.q_pvalue[res.valid]).all()
    assert (res.with_nodata("cmap")[~res.valid] == sar.NODATA).all()
    assert (res.with_nodata("bmap")[:, ~res.valid] == sar.NODATA).all()
    assert np.array_equal(res.with_nodata("fmap")[res.valid], res.fmap[res.valid])
    nm = res.nan_masked("bmap")
    assert np.isnan(nm[:, ~res.valid]).all() and np.array_equal(nm[:, res.valid], res.bmap[:, res.valid])
    assert np.isnan(sar.q_pvalue(vv, vh)[5, 7])


def test_masked_array_pixels_are_nodata():
    rng = np.random.default_rng(7)
    vv, vh = speckle(rng, (4, 6, 6)), speckle(rng, (4, 6, 6))
    mask = np.zeros(vv.shape, bool)
    mask[2, 1, 1] = True
    res = sar.omnibus(np.ma.array(vv, mask=mask), vh)
    assert not res.valid[1, 1] and res.valid.sum() == 35


def test_db_input_is_refused():
    rng = np.random.default_rng(6)
    vv, vh = speckle(rng, (4, 5, 5)), speckle(rng, (4, 5, 5))
    with pytest.raises(ValueError, match="dB"):
        sar.omnibus(10 * np.log10(vv), vh)
    with pytest.raises(ValueError, match="dB"):
        sar.q_pvalue(vv, 10 * np.log10(vh))
    with pytest.raises(ValueError, match="dB"):
        sar.omnibus_single(10 * np.log10(vv))


@pytest.mark.parametrize("kwargs, match", [
    (dict(vv=np.ones((4, 5, 5)), vh=np.ones((4, 5, 6))), "shape"),
    (dict(vv=np.ones((1, 5, 5)), vh=np.ones((1, 5, 5))), "at least 2 images"),
    (dict(vv=np.ones((5, 5)), vh=np.ones((5, 5))), r"\(k, H, W\)"),
    (dict(vv=np.ones((3, 2, 2)), vh=np.ones((3, 2, 2)), enl=0.0), "enl"),
    (dict(vv=np.ones((3, 2, 2)), vh=np.ones((3, 2, 2)), alpha=1.5), "alpha"),
])
def test_bad_input_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sar.omnibus(**kwargs)


@pytest.mark.parametrize("looks", [1.0, 4.4, 12.0])
def test_enl_is_estimated_from_the_data_despite_texture_and_changes(looks, changing_scene):
    rng = np.random.default_rng(3)
    texture = rng.uniform(0.02, 0.5, (1, 60, 60))
    steps = np.ones((10, 60, 60))
    steps[5:, :20] = 4.0  # a third of the pixels change once
    est = sar.estimate_enl(texture * steps * speckle(rng, (10, 60, 60), looks))
    assert 0.85 * looks <= est <= 1.2 * looks
    assert sar.estimate_enl(np.ones((3, 2, 2))) is None  # too few log-ratios
    assert sar.estimate_enl(np.ones((5, 40, 40))) is None  # no speckle: nothing to estimate


def test_wrong_enl_or_amplitudes_are_refused_not_mapped():
    """ENL 44 on ENL-4.4 speckle flagged every unchanged pixel; amplitudes for a 4x change hid
    it. Both are refused with the looks the data show; the right call runs and reports them."""
    rng = np.random.default_rng(4)
    k, H, W = 8, 50, 50
    fac = np.ones((k, H, W))
    fac[4:, 10:30, 10:30] = 4.0
    vv = 0.1 * fac * speckle(rng, (k, H, W))
    vh = 0.03 * fac * speckle(rng, (k, H, W))
    with pytest.raises(ValueError, match=r"vv: the speckle looks like 4\.\d looks, far fewer than enl=44"):
        sar.omnibus(vv, vh, enl=44)
    with pytest.raises(ValueError, match=r"vv: the speckle looks like 1\d\.\d looks, far more than enl=4.4\. "
                                         r"Amplitudes instead of intensities\?"):
        sar.omnibus(np.sqrt(vv), np.sqrt(vh), enl=4.4)
    res = sar.omnibus(vv, vh, enl=4.4, alpha=0.01)
    assert 3.8 <= res.enl_estimate <= 5.3
    changed = np.zeros((H, W), bool)
    changed[10:30, 10:30] = True
    assert (res.bmap[3][changed] == 1).mean() > 0.6 and (res.bmap[3][~changed] > 0).mean() < 0.05


# ----------------------------------------------------------------------------- summaries
def test_change_proportions_and_accuracy():
    true = np.zeros((3, 2, 2), np.uint8)
    true[0, 0, 0] = 1
    true[2, 1, 1] = 2
    pred = true.copy()
    pred[2, 1, 1] = 3  # right interval, wrong direction
    pred[1, 0, 1] = 1  # false alarm
    valid = np.ones((2, 2), bool)
    acc = sar.detection_accuracy(pred, true, valid)
    assert acc["recall"] == 1.0 and acc["precision"] == pytest.approx(2 / 3)
    assert acc["direction_accuracy"] == 0.5
    assert acc["false_alarm_rate"] == pytest.approx(1 / 10)
    assert acc["pixel_fmap_agreement"] == 0.75
    assert acc["n_false_alarms"] == 1 and acc["n_false_alarms_before_first_true_change"] == 0
    late = np.zeros_like(true)
    late[1, 0, 0] = 1  # one interval late, and a false alarm before pixel (1, 1)'s change
    late[0, 1, 1] = 2
    acc2 = sar.detection_accuracy(late, true)
    assert acc2["recall"] == 0 and acc2["recall_within_1_interval"] == 0.5
    assert acc2["n_false_alarms"] == 2 and acc2["n_false_alarms_before_first_true_change"] == 1
    prop = sar.change_proportions(pred, valid)
    assert prop.shape == (3, 3)
    assert prop[0].tolist() == [0.25, 0, 0] and prop[1].tolist() == [0.25, 0, 0] and prop[2].tolist() == [0, 0, 0.25]
    with pytest.raises(ValueError, match="shape"):
        sar.detection_accuracy(pred, true[:2])


def test_sample_scene_against_truth(data_dir):
    vv, vh, dates, grid = sample.load_s1(data_dir)
    truth = sample.load_s1_truth(data_dir)
    res = sar.omnibus(vv, vh)
    assert res.bmap.shape == (len(dates) - 1,) + grid.shape
    np.testing.assert_array_equal(res.valid, truth["valid"].astype(bool))
    acc = sar.detection_accuracy(res.bmap, truth["bmap"], res.valid)
    assert acc["recall"] > 0.75
    assert acc["direction_accuracy"] > 0.95
    assert acc["false_alarm_rate"] < 0.01
    assert acc["pixel_fmap_agreement"] > 0.9


# ----------------------------------------------------------------------------- notebook
def test_notebook_05_summary(executed_notebook):
    from pathlib import Path

    from ltlib.io import read_raster

    summary = executed_notebook("05_detect_sar_change")
    out = Path(summary["_output_dir"])
    assert summary["status"] == "complete"
    assert summary["sections"] == {"accuracy": "ran", "sensitivity": "ran"}
    for key in ("cmap", "smap", "fmap", "bmap"):
        assert summary["files"][key] == f"{key}.tif" and (out / f"{key}.tif").exists(), key
    assert (out / "summary.json").exists()
    # the period comes from notebook 02's loss map (run before in this session)
    assert "loss_map" in summary["disturbance_years_source"]
    period = summary["period"]
    assert set(period) == {"most_frequent_year", "year", "start", "end", "reason"}
    assert sar.S1_AB_YEARS[0] <= period["year"] <= sar.S1_AB_YEARS[1]
    assert summary["dates"] == ["2019-04-02", "2020-10-29"]
    acc = summary["accuracy"]
    assert acc["recall"] > 0.75 and acc["direction_accuracy"] > 0.95
    assert summary["counts"]["n_changed"] > 0
    assert summary["params"] == {"enl": 4.4, "alpha": 0.01, "median_filter": False, "orbit_pass": "ASCENDING"}
    rows = {(r["alpha"], r["median_filter"]): r for r in summary["sensitivity"]}
    assert rows[(0.01, False)]["recall"] == pytest.approx(acc["recall"], abs=1e-4)
    # what the notebook's narrative says: the median filter cuts false alarms on the sample
    assert rows[(0.01, True)]["precision"] > rows[(0.01, False)]["precision"] + 0.1
    assert rows[(0.01, True)]["recall"] >= rows[(0.01, False)]["recall"] - 0.02
    assert rows[(0.001, False)]["recall"] < rows[(0.01, False)]["recall"]
    assert summary["n_images"] == 49
    bmap, grid, names = read_raster(out / "bmap.tif")
    assert bmap.shape[0] == 48 and len(names) == 48
    assert names[0] == "2019-04-02/2019-04-14"
    cmap, cmap_grid, _ = read_raster(out / "cmap.tif")  # nodata (255) comes back as NaN
    assert cmap_grid.same_as(grid) and cmap.shape == (1,) + grid.shape
    assert int(np.isfinite(cmap[0]).sum()) == summary["counts"]["n_valid"]
    fmap, _, _ = read_raster(out / "fmap.tif")
    assert int(np.nansum(fmap)) == summary["counts"]["n_changes"] == int((np.nan_to_num(bmap) > 0).sum())
    assert summary["counts"]["n_changed"] == int((fmap[0] > 0).sum())
    busiest = summary["busiest_interval"]
    assert 1 <= busiest["interval"] <= 48 and busiest["dates"] == names[busiest["interval"] - 1].split("/")


# ----------------------------------------------------------------------------- period, labels, map
def test_disturbance_year_counts_ignores_no_change():
    yod = np.array([[0, 1985, 1985], [np.nan, 2019, -1]])
    years, counts = sar.disturbance_year_counts(yod)
    assert years.tolist() == [1985, 2019] and counts.tolist() == [2, 1]


def test_pick_s1_period():
    inside = sar.pick_s1_period([1985, 2019, 2020], [10, 50, 5])
    assert (inside["year"], inside["start"], inside["end"]) == (2019, "2019-04-02", "2020-10-19")
    # the seed's situation: most disturbance long before Sentinel-1
    before = sar.pick_s1_period([1985, 2017, 2018, 2022], [900, 3, 7, 40])
    assert before["most_frequent_year"] == 1985 and before["year"] == 2018
    assert (before["start"], before["end"]) == ("2018-04-02", "2019-10-19")
    none = sar.pick_s1_period([1990], [4])
    assert none["year"] == sar.S1_AB_YEARS[1]
    with pytest.raises(ValueError, match="1-D"):
        sar.pick_s1_period([2019, 2020], [1])


def test_interval_labels():
    assert sar.interval_labels(["2019-04-02", "2019-04-14", "2019-04-26"]) == [
        "2019-04-02/2019-04-14", "2019-04-14/2019-04-26"]


def test_add_composite_layer_on_map(data_dir):
    from ltlib import maps

    vv, vh, _, grid = sample.load_s1(data_dir)
    res = sar.omnibus(vv[:12], vh[:12])
    m = maps.make_map(grid)
    n_before = len(m.layers)
    layer = maps.add_sar_composite(m, res, grid)
    assert len(m.layers) == n_before + 1 and layer.url.startswith("data:image/png;base64,")
    (south, west), (north, east) = layer.bounds
    w, s, e, n = grid.bounds_lonlat()
    assert south == pytest.approx(s, abs=1e-3) and east == pytest.approx(e, abs=1e-3)
    rgb = sar.composite(res.cmap, res.smap, res.fmap, res.k)
    assert rgb.shape == grid.shape + (3,) and rgb.min() >= 0 and rgb.max() <= 1
    one = (res.fmap == 1)
    assert np.allclose(rgb[one, 0], rgb[one, 1])  # one change: cmap == smap, red == green
    with pytest.raises(ValueError, match="grid"):
        maps.add_sar_composite(m, sar.omnibus(vv[:3, :10, :10], vh[:3, :10, :10]), grid)

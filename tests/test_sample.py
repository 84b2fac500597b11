"""The simulated sample scene: regenerable, consistent with its truth, with realistic gaps."""
import hashlib

import numpy as np
import pytest

from ltlib import config, resources, sample


def test_committed_sample_is_regenerated_exactly(tmp_path, data_dir):
    sample.generate(tmp_path)
    for index in config.SAMPLE_INDICES:
        a = sample.load_landsat(data_dir, index)
        b = sample.load_landsat(tmp_path, index)
        np.testing.assert_array_equal(np.nan_to_num(a.data, nan=-1e9), np.nan_to_num(b.data, nan=-1e9))
        assert a.grid.same_as(b.grid)
    ta, tb = sample.load_truth(data_dir), sample.load_truth(tmp_path)
    for k in sample.TRUTH_BANDS:
        np.testing.assert_array_equal(ta[k], tb[k])
    va, _, _, _ = sample.load_s1(data_dir)
    vb, _, _, _ = sample.load_s1(tmp_path)
    assert hashlib.sha1(va.tobytes()).hexdigest() == hashlib.sha1(vb.tobytes()).hexdigest()


def test_landsat_stack_shape_grid_and_gaps(data_dir):
    s = sample.load_landsat(data_dir, "NDVI")
    assert s.data.shape == (51, 200, 200)
    assert s.years[0] == 1972 and s.years[-1] == 2022
    assert s.grid.crs.to_epsg() == 32612 and s.grid.transform.a == 30
    west, south, east, north = s.grid.bounds_lonlat()
    # inside the seed's AOI and around the pit
    aw, as_, ae, an = config.AOI_BBOX
    assert aw < west < config.PIT_CENTER[0] < east < ae and as_ < south < config.PIT_CENTER[1] < north < an
    missing = np.isnan(s.data).mean(axis=(1, 2))
    mss = s.years < 1984
    assert (missing[mss] == 1).sum() == 3  # three whole MSS years missing
    assert missing[mss].mean() > 2 * missing[~mss].mean()  # MSS era patchier
    y2012 = missing[s.years == 2012][0]
    assert y2012 > 0.2  # SLC-off stripes when ETM+ flew alone
    assert 0.02 < missing[s.years == 1995][0] < 0.1  # clouds only


def test_indices_are_consistent_with_each_other(data_dir):
    ndvi = sample.load_landsat(data_dir, "NDVI").physical()
    tcg = sample.load_landsat(data_dir, "TCG").physical()
    ok = np.isfinite(ndvi) & np.isfinite(tcg)
    r = np.corrcoef(ndvi[ok], tcg[ok])[0, 1]
    assert r > 0.8  # greenness and NDVI both follow vegetation cover
    assert np.nanmax(ndvi) <= 1 and np.nanmin(ndvi) >= -1


def test_truth_matches_the_simulated_trajectories(data_dir):
    s = sample.load_landsat(data_dir, "NDVI")
    t = sample.load_truth(data_dir)
    counts = np.bincount(t["class"].ravel(), minlength=6)
    assert (counts[:6] > 1000).all(), counts
    yrs = s.years
    # downward pixels: mean NDVI before the truth year is well above the mean after it
    rows, cols = np.nonzero((t["class"] == 0) & (t["dist_year"] > 1976) & (t["dist_year"] < 2018))
    drops = []
    for r, c in zip(rows[::50], cols[::50]):
        y = t["dist_year"][r, c]
        before = np.nanmean(s.data[(yrs >= y - 4) & (yrs < y), r, c])
        after = np.nanmean(s.data[(yrs >= y) & (yrs < y + 4), r, c])
        drops.append(before - after)
    assert np.median(drops) > 300
    # stable hills outside the pit vary little around their mean
    stable = (t["class"] == 4) & (s.data[-1] > 300)
    sd = np.nanstd(s.data[20:, stable], axis=0)
    assert np.median(sd) < 60
    # loss magnitudes are recorded where (and only where) there is a loss year
    assert ((t["dist_year"] > 0) == (t["dist_mag"] > 0)).mean() > 0.99
    assert (t["dist_year"][t["class"] == 2] == 0).all() and (t["gain_year"][t["class"] == 2] > 0).all()


def test_s1_sample_is_linear_with_truth(data_dir):
    vv, vh, dates, grid = sample.load_s1(data_dir)
    assert vv.shape == vh.shape == (49, 128, 128)
    assert dates[0] == "2019-04-02" and len(dates) == 49
    valid = vv[0] > 0
    assert 0 < np.median(vv[:, valid]) < 1  # linear intensity, not dB
    t = sample.load_s1_truth(data_dir)
    assert t["bmap"].shape == (48, 128, 128)
    assert (t["fmap"] == (t["bmap"] > 0).sum(0)).all()
    assert ((t["fmap"] > 0) == (t["cmap"] > 0)).all() and (t["smap"] <= t["cmap"]).all()
    assert set(np.unique(t["bmap"])) == {0, 1, 2, 3}
    assert (t["valid"][:, :4] == 0).all() and (vv[:, :, :4] == 0).all()
    # a brightening event really multiplies the mean backscatter
    j = 20
    m = t["bmap"][j - 1] == 1
    if m.sum() > 50:
        ratio = vv[j:j + 5, m].mean() / vv[j - 5:j, m].mean()
        assert ratio > 2


def test_loader_errors(tmp_path, data_dir):
    with pytest.raises(ValueError, match="not 'NDMI'"):
        sample.load_landsat(data_dir, "NDMI")
    with pytest.raises(FileNotFoundError, match="ndvi.tif"):
        sample.load_landsat(tmp_path, "NDVI")
    assert resources.seed_training_csv().name == "dataset_update3_bkup.csv"
    assert not (data_dir / "reference").exists()  # package reference data is not under data_dir

"""ltlib.accuracy: Olofsson et al. (2014) estimators against the published worked example,
sampling design, census accuracy and the documented errors/warnings."""
import json
import warnings

import numpy as np
import pytest

from ltlib import accuracy as acc
from ltlib.accuracy import AccuracyWarning

# Normal quantile used by the sources of the expected values below (R qnorm(0.975),
# scipy norm.ppf(0.975)); the module default is the rounded 1.96.
Z975 = 1.959963984540054


def _labels_from_matrix(counts):
    """Expand an error matrix of counts (rows = map, cols = reference) into sample labels."""
    counts = np.asarray(counts)
    m, r = [], []
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            m += [i] * int(counts[i, j])
            r += [j] * int(counts[i, j])
    rng = np.random.default_rng(1)  # order of sample units must not matter
    perm = rng.permutation(len(m))
    return np.array(m)[perm], np.array(r)[perm]


# --- The worked example of Olofsson et al. (2014) ---------------------------------------------
# Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014), RSE 148:42-57, numerical example:
# classes deforestation (0), forest gain (1), stable forest (2), stable non-forest (3); Landsat
# 30 m pixels. Sample error matrix (rows = map, cols = reference) and mapped pixel counts as
# laid out in the example of hagc/mapaccuracy (MIT), man/olofsson.Rd, "Example of table 8 in
# olofsson et al. (2014)": r <- c(rep(1,69),rep(2,56),rep(3,175),rep(4,340)), m <- ...,
# Nh = c(200000, 150000, 3200000, 6450000) * 30^2.
OLOFSSON2014_COUNTS = np.array(
    [
        [66, 0, 5, 4],
        [0, 55, 8, 12],
        [1, 0, 153, 11],
        [2, 1, 9, 313],
    ]
)
OLOFSSON2014_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
# Published results (paper p. 54, left: accuracies, right: areas in ha), at full precision as
# asserted by agcopenhaver/PyMapAccuracy tests/test_olofsson.py::test_olofsson_table8_2014
# ("Compare accuracies (left-hand side p. 54)" / "area estimates in hectares (right-hand side
# p. 54)"). CI values are 95 % half-widths with z = qnorm(0.975).
PUB_OVERALL, PUB_OVERALL_CI = 0.9465119, 0.01848328
PUB_USERS = [0.8800000, 0.7333333, 0.9272727, 0.9630769921]
PUB_USERS_CI = [0.07403962, 0.10075516, 0.03974464, 0.02053312]
PUB_PRODUCERS = [0.7486614, 0.8471564, 0.9345089, 0.9616090]
PUB_PRODUCERS_CI = [0.21330593, 0.25440369, 0.03432379, 0.01836120]
PUB_AREA_HA = [21157.76, 11686.15, 285769.9, 581386.2]
PUB_AREA_HA_CI = [6157.521, 3755.757, 15509.55, 16281.36]


@pytest.fixture
def olofsson2014():
    m, r = _labels_from_matrix(OLOFSSON2014_COUNTS)
    return acc.area_adjusted(m, r, OLOFSSON2014_PIXELS, [0, 1, 2, 3], pixel_area=900.0, z=Z975)


def test_olofsson2014_accuracies_match_published(olofsson2014):
    rep = olofsson2014
    np.testing.assert_array_equal(rep.error_matrix_counts, OLOFSSON2014_COUNTS)
    np.testing.assert_array_equal(rep.sample_counts, [75, 75, 165, 325])
    assert rep.overall == pytest.approx(PUB_OVERALL, abs=1e-6)
    assert rep.overall_ci == pytest.approx(PUB_OVERALL_CI, rel=1e-5)
    np.testing.assert_allclose(rep.users, PUB_USERS, rtol=1e-6)
    np.testing.assert_allclose(rep.users_ci, PUB_USERS_CI, rtol=1e-5)
    np.testing.assert_allclose(rep.producers, PUB_PRODUCERS, rtol=1e-6)
    np.testing.assert_allclose(rep.producers_ci, PUB_PRODUCERS_CI, rtol=1e-5)


def test_olofsson2014_areas_match_published(olofsson2014):
    rep = olofsson2014
    np.testing.assert_allclose(rep.area_ha, PUB_AREA_HA, atol=0.1)
    np.testing.assert_allclose(rep.area_ha_ci, PUB_AREA_HA_CI, atol=0.1)
    np.testing.assert_allclose(rep.area_m2, rep.area_ha * 1e4)
    # mapped areas: pixels * 0.09 ha
    np.testing.assert_allclose(rep.map_area_ha, [18_000, 13_500, 288_000, 580_500])
    # the estimator redistributes the mapped total: 10^7 pixels = 900,000 ha
    assert rep.area_ha.sum() == pytest.approx(900_000.0)
    assert rep.area_proportion.sum() == pytest.approx(1.0)
    # Card (1982) cell by hand: p_00 = W_0 n_00 / n_0. = 0.02 * 66 / 75 = 0.0176
    assert rep.error_matrix_proportions[0, 0] == pytest.approx(0.0176)
    # rows of p_ij sum to the map weights W_i
    np.testing.assert_allclose(rep.error_matrix_proportions.sum(axis=1), OLOFSSON2014_PIXELS / 1e7)
    assert rep.notes == []


def test_default_z_is_1_96(olofsson2014):
    m, r = _labels_from_matrix(OLOFSSON2014_COUNTS)
    rep = acc.area_adjusted(m, r, dict(zip(range(4), OLOFSSON2014_PIXELS)), [0, 1, 2, 3])
    assert rep.z == 1.96
    np.testing.assert_allclose(rep.area_ha_ci, olofsson2014.area_ha_ci * 1.96 / Z975)
    np.testing.assert_allclose(rep.area_ha, olofsson2014.area_ha)


def test_report_frame_and_json(olofsson2014):
    df = olofsson2014.to_frame(names={0: "deforestation", 1: "gain", 2: "forest", 3: "non-forest"})
    assert list(df.index) == [0, 1, 2, 3]
    assert df.loc[0, "name"] == "deforestation"
    assert df.loc[0, "area_ha"] == pytest.approx(PUB_AREA_HA[0], abs=0.1)
    assert df.loc[1, "users_ci"] == pytest.approx(PUB_USERS_CI[1], rel=1e-5)
    assert df.loc[3, "map_area_ha"] == pytest.approx(580_500)
    d = json.loads(json.dumps(olofsson2014.as_dict(), allow_nan=False))
    assert d["classes"] == [0, 1, 2, 3]
    assert d["overall"] == pytest.approx(PUB_OVERALL, abs=1e-6)
    assert d["error_matrix_counts"][3] == [2, 1, 9, 313]
    assert d["area_ha"][2] == pytest.approx(PUB_AREA_HA[2], abs=1)


# Olofsson, Foody, Stehman & Woodcock (2013), RSE 129:122-131, Example 1 (3 classes), as laid
# out in hagc/mapaccuracy man/olofsson.Rd and with expected values (eq. 9-16 of that paper)
# from PyMapAccuracy tests/test_olofsson.py::test_olofsson_example1_2013.
def test_olofsson2013_example1():
    counts = np.array([[97, 0, 3], [3, 279, 18], [2, 1, 97]])
    nh = np.array([22353, 1122543, 610228])
    m, r = _labels_from_matrix(counts)
    rep = acc.area_adjusted(m, r, nh, [0, 1, 2], pixel_area=1.0, z=Z975)
    assert rep.area_proportion[0] == pytest.approx(0.02570326, abs=1e-7)
    assert rep.area_m2[0] == pytest.approx(45112.4, abs=1)  # pixels, since pixel_area = 1
    assert rep.area_proportion_se[0] * nh.sum() == pytest.approx(10751.88, abs=1)
    assert rep.area_m2_ci[0] == pytest.approx(21072.37, abs=2)
    np.testing.assert_allclose(rep.users, [0.97, 0.93, 0.97])
    np.testing.assert_allclose(rep.producers, [0.4806308, 0.9941887, 0.8969259], rtol=1e-6)
    assert rep.overall == pytest.approx(0.9444168, abs=1e-7)
    np.testing.assert_allclose(rep.users_ci, [0.03360292, 0.02892031, 0.03360292], rtol=1e-5)
    np.testing.assert_allclose(rep.producers_ci, [0.22453045, 0.01132522, 0.04120541], rtol=1e-5)


def test_full_census_sample_recovers_true_areas_exactly():
    # Sampling every pixel makes the stratified estimator exact: p_.k = true share of class k.
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, size=(30, 40))
    pred = truth.copy()
    flip = rng.random(truth.shape) < 0.25
    pred[flip] = (truth[flip] + 1) % 4
    classes = [0, 1, 2, 3]
    counts = acc.class_pixel_counts(pred, classes)
    rep = acc.area_adjusted(pred.ravel(), truth.ravel(), counts, classes, pixel_area=900.0)
    true_pixels = np.bincount(truth.ravel(), minlength=4)
    np.testing.assert_allclose(rep.area_m2, true_pixels * 900.0)
    cen = acc.census_accuracy(pred, truth, classes)
    assert rep.overall == pytest.approx(cen["overall"])
    np.testing.assert_allclose(rep.producers, cen["producers"])
    np.testing.assert_allclose(rep.users, cen["users"])


def test_stratified_estimate_corrects_a_biased_map():
    # Map that puts 30 % of class 1 into class 0: pixel counting overstates class 0 by ~36 %.
    # Over 20 independent stratified samples the adjusted area is unbiased and its 95 % CI
    # covers the true area most of the time.
    rng = np.random.default_rng(0)
    truth = np.where(rng.random((200, 200)) < 0.3, 1, 2)
    truth[:, :40] = 0
    pred = truth.copy()
    pred[(truth == 1) & (rng.random(truth.shape) < 0.3)] = 0
    classes = [0, 1, 2]
    true_ha = np.bincount(truth.ravel(), minlength=3) * 0.09
    counts = acc.class_pixel_counts(pred, classes)
    est, covered = [], 0
    for seed in range(20):
        rows, cols = acc.stratified_sample(pred, 60, seed=seed)
        rep = acc.area_adjusted(pred[rows, cols], truth[rows, cols], counts, classes)
        est.append(rep.area_ha)
        covered += np.all(np.abs(rep.area_ha - true_ha) <= rep.area_ha_ci)
    est = np.mean(est, axis=0)
    map_ha = counts * 0.09
    assert abs(map_ha[0] - true_ha[0]) / true_ha[0] > 0.3  # the map is badly biased (+36 %)
    np.testing.assert_allclose(est, true_ha, rtol=0.05)  # the estimator is not
    assert covered >= 15


# --- NaN reasons and warnings -----------------------------------------------------------------

def test_reference_class_never_observed_gives_nan_producers_with_warning():
    counts = np.array([[10, 0, 0], [2, 8, 0], [0, 3, 0]])  # reference class 2 never observed
    m, r = _labels_from_matrix(counts)
    with pytest.warns(AccuracyWarning, match="producer's accuracy of classes \\[2\\]"):
        rep = acc.area_adjusted(m, r, [100, 100, 100], [0, 1, 2])
    assert np.isnan(rep.producers[2]) and np.isnan(rep.producers_se[2])
    assert rep.area_proportion[2] == 0 and rep.area_proportion_se[2] == 0
    assert rep.users[2] == 0.0
    assert np.isfinite(rep.overall) and np.all(np.isfinite(rep.producers[:2]))
    assert any("never occurs" in n for n in rep.notes)
    assert rep.as_dict()["producers"][2] is None


def test_class_absent_from_map_and_sample_only_blanks_its_users():
    counts = np.array([[10, 1, 0], [2, 8, 0], [0, 0, 0]])
    m, r = _labels_from_matrix(counts)
    with pytest.warns(AccuracyWarning, match="user's accuracy of classes \\[2\\]"):
        rep = acc.area_adjusted(m, r, {0: 500, 1: 300}, [0, 1, 2])  # class 2 missing = 0 pixels
    assert np.isnan(rep.users[2])
    assert np.isfinite(rep.overall) and np.isfinite(rep.overall_se)
    np.testing.assert_allclose(rep.area_proportion.sum(), 1.0)
    # hand: p_.0 = 0.625 * 10/11 + 0.375 * 2/10 = 0.643182
    assert rep.area_proportion[0] == pytest.approx(0.625 * 10 / 11 + 0.375 * 0.2)


def test_mapped_stratum_without_sample_is_nan_with_warning():
    counts = np.array([[10, 1, 0], [2, 8, 0], [0, 0, 0]])
    m, r = _labels_from_matrix(counts)
    with pytest.warns(AccuracyWarning, match="no sample unit"):
        rep = acc.area_adjusted(m, r, [500, 300, 200], [0, 1, 2])
    assert np.isnan(rep.overall)
    assert np.all(np.isnan(rep.area_proportion))
    assert rep.users[0] == pytest.approx(10 / 11)  # still defined per stratum


def test_single_sample_stratum_makes_standard_errors_nan():
    counts = np.array([[10, 1], [0, 1]])
    m, r = _labels_from_matrix(counts)
    with pytest.warns(AccuracyWarning, match="single sample unit"):
        rep = acc.area_adjusted(m, r, [900, 100], [0, 1])
    assert rep.users[1] == 1.0 and np.isfinite(rep.overall)
    assert np.isnan(rep.overall_se) and np.all(np.isnan(rep.area_proportion_se))


def test_area_adjusted_errors():
    m, r = _labels_from_matrix(OLOFSSON2014_COUNTS)
    cls = [0, 1, 2, 3]
    with pytest.raises(ValueError, match="640 values but ref_labels_at_samples has 639"):
        acc.area_adjusted(m, r[:-1], OLOFSSON2014_PIXELS, cls)
    with pytest.raises(ValueError, match="must be 1-D"):
        acc.area_adjusted(m.reshape(32, 20), r.reshape(32, 20), OLOFSSON2014_PIXELS, cls)
    with pytest.raises(ValueError, match="negative"):
        acc.area_adjusted(m, r, [200_000, -1, 3_200_000, 6_450_000], cls)
    with pytest.raises(ValueError, match="map_pixel_counts contains NaN"):
        acc.area_adjusted(m, r, [200_000, np.nan, 3_200_000, 6_450_000], cls)
    with pytest.raises(ValueError, match="one value per class"):
        acc.area_adjusted(m, r, [1, 2, 3], cls)
    with pytest.raises(ValueError, match=r"map_labels_at_samples has label\(s\) \[3\] not in classes"):
        acc.area_adjusted(m, r, OLOFSSON2014_PIXELS[:3], [0, 1, 2])
    with pytest.raises(ValueError, match=r"class\(es\) \[1\] but map_pixel_counts gives them 0"):
        acc.area_adjusted(m, r, [200_000, 0, 3_200_000, 6_450_000], cls)
    with pytest.raises(ValueError, match="not in classes"):
        acc.area_adjusted(m, r, {0: 1, 1: 1, 2: 1, 3: 1, 7: 1}, cls)
    mf = m.astype(float)
    mf[5] = np.nan
    with pytest.raises(ValueError, match="map_labels_at_samples contains 1 NaN"):
        acc.area_adjusted(mf, r, OLOFSSON2014_PIXELS, cls)
    with pytest.raises(ValueError, match="empty"):
        acc.area_adjusted([], [], OLOFSSON2014_PIXELS, cls)
    with pytest.raises(ValueError, match="pixel_area"):
        acc.area_adjusted(m, r, OLOFSSON2014_PIXELS, cls, pixel_area=0)


# --- confusion matrix and census --------------------------------------------------------------

def test_confusion_matrix_rows_are_map_in_given_class_order():
    mapped = np.array([5, 5, 0, 0, 0, 2])
    ref = np.array([5, 0, 0, 0, 2, 2])
    cm = acc.confusion_matrix(mapped, ref, [5, 0, 2])
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 1], [0, 0, 1]])
    assert cm.dtype == np.int64
    with pytest.raises(ValueError, match="does not match"):
        acc.confusion_matrix(mapped, ref[:5], [5, 0, 2])
    with pytest.raises(ValueError, match=r"map_labels has label\(s\) \[5\] not in classes"):
        acc.confusion_matrix(mapped, ref, [0, 2])
    with pytest.raises(ValueError, match="unique"):
        acc.confusion_matrix(mapped, ref, [0, 2, 2, 5])
    with pytest.raises(ValueError, match="non-integer"):
        acc.confusion_matrix(mapped + 0.5, ref, [5, 0, 2])


def test_census_accuracy_hand_example():
    truth = np.array([[0, 0, 1], [1, 1, 2], [2, 2, 2]])
    pred = np.array([[0, 1, 1], [1, 0, 2], [2, 2, 1]])
    valid = np.ones_like(truth, dtype=bool)
    valid[2, 2] = False  # the 1-for-2 error at (2, 2) is outside the assessed area
    out = acc.census_accuracy(pred, truth, [0, 1, 2], valid=valid)
    # valid pixels: (pred, truth) = (0,0) (1,0) (1,1) (1,1) (0,1) (2,2) (2,2) (2,2)
    np.testing.assert_array_equal(out["confusion"], [[1, 1, 0], [1, 2, 0], [0, 0, 3]])
    assert out["n_pixels"] == 8
    assert out["overall"] == pytest.approx(6 / 8)
    np.testing.assert_allclose(out["users"], [1 / 2, 2 / 3, 1.0])
    np.testing.assert_allclose(out["producers"], [1 / 2, 2 / 3, 1.0])
    full = acc.census_accuracy(pred, truth, [0, 1, 2])
    assert full["overall"] == pytest.approx(6 / 9)
    assert full["producers"][2] == pytest.approx(3 / 4)


def test_census_accuracy_absent_class_and_errors():
    truth = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    with pytest.warns(AccuracyWarning, match=r"never predicted: \[2\]"):
        out = acc.census_accuracy(pred, truth, [0, 1, 2])
    assert np.isnan(out["users"][2]) and np.isnan(out["producers"][2])
    with pytest.raises(ValueError, match="pred shape"):
        acc.census_accuracy(pred, truth[:1], [0, 1])
    with pytest.raises(ValueError, match=r"label\(s\) \[1\]"):
        acc.census_accuracy(pred, truth, [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        acc.census_accuracy(np.array([[0.0, np.nan], [1, 1]]), truth, [0, 1])
    # NaN outside the valid mask is fine
    ok = acc.census_accuracy(np.array([[0.0, np.nan], [1, 1]]), truth, [0, 1],
                             valid=np.array([[True, False], [True, True]]))
    assert ok["overall"] == 1.0
    with pytest.raises(ValueError, match="valid shape"):
        acc.census_accuracy(pred, truth, [0, 1], valid=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="no valid pixels"):
        acc.census_accuracy(pred, truth, [0, 1], valid=np.zeros((2, 2), bool))


# --- sampling design --------------------------------------------------------------------------

@pytest.fixture
def class_map():
    cm = np.full((50, 60), 4, dtype=np.int16)
    cm[:10, :] = 0  # 600 px
    cm[10:20, :30] = 1  # 300 px
    cm[40:, 50:] = 5  # 100 px
    cm[45:, :3] = 3  # 15 px
    return cm


def test_stratified_sample_counts_classes_and_seed(class_map):
    rows, cols = acc.stratified_sample(class_map, 12, seed=7)
    labels = class_map[rows, cols]
    np.testing.assert_array_equal(np.unique(labels, return_counts=True)[1], [12, 12, 12, 12, 12])
    assert len(set(zip(rows.tolist(), cols.tolist()))) == rows.size  # without replacement
    assert np.all(np.diff(labels) >= 0)  # grouped by class
    r2, c2 = acc.stratified_sample(class_map, 12, seed=7)
    np.testing.assert_array_equal(rows, r2)
    np.testing.assert_array_equal(cols, c2)
    r3, c3 = acc.stratified_sample(class_map, 12, seed=8)
    assert not (np.array_equal(rows, r3) and np.array_equal(cols, c3))


def test_stratified_sample_dict_short_stratum_and_masks(class_map):
    valid = np.ones(class_map.shape, bool)
    valid[:5, :] = False  # half of class 0 unusable
    want = {0: 400, 1: 20, 3: 50, 4: 30, 5: 0}
    with pytest.warns(AccuracyWarning, match=r"class 0: 300 pixel\(s\) < 400 asked.*class 3: 15"):
        rows, cols = acc.stratified_sample(class_map, want, seed=1, valid=valid)
    labels = class_map[rows, cols]
    counts = {int(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
    assert counts == {0: 300, 1: 20, 3: 15, 4: 30}
    assert valid[rows, cols].all()
    # nodata and NaN pixels are never drawn
    rows, cols = acc.stratified_sample(class_map, 5, nodata=4)
    assert 4 not in class_map[rows, cols]
    f = class_map.astype(float)
    f[10:20, :30] = np.nan
    rows, cols = acc.stratified_sample(f, 5, seed=2)
    assert np.isfinite(f[rows, cols]).all() and rows.size == 20


def test_stratified_sample_errors(class_map):
    with pytest.raises(ValueError, match="2-D"):
        acc.stratified_sample(class_map.ravel(), 5)
    with pytest.raises(ValueError, match="empty"):
        acc.stratified_sample(np.zeros((0, 4), int), 5)
    with pytest.raises(ValueError, match="no valid pixels"):
        acc.stratified_sample(class_map, 5, valid=np.zeros(class_map.shape, bool))
    with pytest.raises(ValueError, match="no valid pixels"):
        acc.stratified_sample(np.full((3, 3), np.nan), 5)
    with pytest.raises(ValueError, match=">= 0"):
        acc.stratified_sample(class_map, -1)
    with pytest.raises(ValueError, match=r"n_per_class\[1\] must be >= 0"):
        acc.stratified_sample(class_map, {0: 1, 1: -2, 3: 1, 4: 1, 5: 1})
    with pytest.raises(ValueError, match="whole number"):
        acc.stratified_sample(class_map, 2.5)
    with pytest.raises(ValueError, match=r"no entry for map class\(es\) \[3, 5\]"):
        acc.stratified_sample(class_map, {0: 1, 1: 1, 4: 1})
    with pytest.raises(ValueError, match="valid mask shape"):
        acc.stratified_sample(class_map, 5, valid=np.ones((2, 2), bool))
    with pytest.raises(ValueError, match="non-integer"):
        acc.stratified_sample(class_map + 0.5, 5)


def test_class_pixel_counts(class_map):
    np.testing.assert_array_equal(
        acc.class_pixel_counts(class_map, [0, 1, 2, 3, 4, 5]), [600, 300, 0, 15, 3000 - 1015, 100]
    )
    np.testing.assert_array_equal(acc.class_pixel_counts(class_map, [0, 1, 3, 5], nodata=4), [600, 300, 15, 100])
    with pytest.raises(ValueError, match=r"label\(s\) \[5\]"):
        acc.class_pixel_counts(class_map, [0, 1, 3, 4])


def test_sample_allocation_proportional_with_minimum():
    # By hand: proportional shares of 640 are 12.8, 9.6, 204.8, 412.8. Classes 0 and 1 are
    # raised to the minimum 75; the remaining 490 are split 3.2:6.45 -> 162.49 and 327.51,
    # rounded by largest remainder to 162 and 328 (total 640).
    alloc = acc.sample_allocation(OLOFSSON2014_PIXELS, 640, min_per_class=75)
    np.testing.assert_array_equal(alloc, [75, 75, 162, 328])
    # With anticipated user's accuracies (0.7, 0.6, 0.9, 0.95) the rest goes in proportion to
    # W_i sqrt(U(1-U)): 0.32*0.3 = 0.096 vs 0.645*0.217945 = 0.140575 -> 198.84 and 291.16.
    d = acc.sample_allocation(dict(zip(range(4), OLOFSSON2014_PIXELS)), 640, min_per_class=75,
                              target_ua={0: 0.7, 1: 0.6, 2: 0.9, 3: 0.95})
    assert d == {0: 75, 1: 75, 2: 199, 3: 291}
    # a stratum smaller than the minimum gives all its pixels
    np.testing.assert_array_equal(acc.sample_allocation([10, 990], 100, min_per_class=50), [10, 90])
    with pytest.raises(ValueError, match="smaller than the minimum allocation 150"):
        acc.sample_allocation(OLOFSSON2014_PIXELS[:3], 100, min_per_class=50)
    with pytest.raises(ValueError, match="negative"):
        acc.sample_allocation([10, -5], 10)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        acc.sample_allocation([10, 20], 10, target_ua=[0.5, 1.5])


def test_required_sample_size_by_hand():
    # sum_i W_i sqrt(U_i (1 - U_i)) with W = (0.02, 0.015, 0.32, 0.645), U = (0.7, 0.6, 0.9, 0.95):
    # 0.02*0.458258 + 0.015*0.489898 + 0.32*0.3 + 0.645*0.217945 = 0.253087;
    # n = (0.253087 / 0.01)^2 = 640.53 -> 641.
    n = acc.required_sample_size(OLOFSSON2014_PIXELS, [0.7, 0.6, 0.9, 0.95], target_se_overall=0.01)
    assert n == 641
    assert acc.required_sample_size(OLOFSSON2014_PIXELS, [0.7, 0.6, 0.9, 0.95], target_se_overall=0.02) == 161


def test_jsonable_replaces_nan():
    out = acc.jsonable({"a": np.array([1.0, np.nan]), "b": np.int64(3), "c": (np.float32(0.5),)})
    assert out == {"a": [1.0, None], "b": 3, "c": [0.5]}
    json.dumps(out, allow_nan=False)


def test_no_warning_for_a_clean_report():
    m, r = _labels_from_matrix(OLOFSSON2014_COUNTS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc.area_adjusted(m, r, OLOFSSON2014_PIXELS, [0, 1, 2, 3])


# -- reference points ------------------------------------------------------------------------
def test_reference_points_are_pixel_centres_with_lonlat():
    from rasterio.warp import transform

    from ltlib import sample

    grid = sample.make_grid((20, 30))
    cmap = np.arange(600).reshape(20, 30) % 6
    truth = (cmap + 1) % 6
    rows, cols = np.array([0, 5, 19]), np.array([0, 7, 29])
    t = acc.reference_points(cmap, rows, cols, grid, reference=truth, names={c: f"c{c}" for c in range(6)})
    a = grid.transform
    np.testing.assert_allclose(t["x"], a.c + (cols + 0.5) * a.a)
    np.testing.assert_allclose(t["y"], a.f + (rows + 0.5) * a.e)
    back = transform("EPSG:4326", grid.crs, t["lon"].tolist(), t["lat"].tolist())
    np.testing.assert_allclose(back, (t["x"], t["y"]), atol=1e-3)  # metres
    assert t["map_class"].tolist() == cmap[rows, cols].tolist()
    assert t["reference"].tolist() == truth[rows, cols].tolist()
    assert t["map_name"].tolist() == [f"c{c}" for c in cmap[rows, cols]]
    w, s, e, n = grid.bounds_lonlat()
    assert ((t["lon"] > w) & (t["lon"] < e) & (t["lat"] > s) & (t["lat"] < n)).all()


def test_reference_points_without_truth_leave_reference_empty_and_check_input():
    from ltlib import sample

    grid = sample.make_grid((10, 10))
    cmap = np.zeros((10, 10), dtype=int)
    t = acc.reference_points(cmap, [1, 2], [3, 4], grid)
    assert t["reference"].isna().all() and len(t) == 2
    with pytest.raises(ValueError, match="outside"):
        acc.reference_points(cmap, [10], [0], grid)
    with pytest.raises(ValueError, match="grid"):
        acc.reference_points(np.zeros((9, 10)), [1], [1], grid)


# --- change maps against a truth year ---------------------------------------------------------
def test_change_agreement():
    yod = np.array([[2000, np.nan], [2003, 2010]])
    truth = np.array([[2000, 1999], [2002, 0]])
    a = acc.change_agreement(yod, truth, truth > 0)
    assert a["recall"] == pytest.approx(2 / 3) and a["same_year"] == 0.5 and a["within_1_year"] == 1.0
    assert a["false_alarm_rate"] == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        acc.change_agreement(yod, truth[:1], truth > 0)

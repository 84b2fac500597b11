"""Accuracy of maps too large for memory: pixel counts, census confusion and the stratified sample
streamed block by block (dask, odd chunks smaller than the map) equal the numpy results exactly."""
from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest

from ltlib import accuracy as A
from ltlib import blocks

CLASSES = range(6)


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


@pytest.fixture(scope="module")
def class_map():
    rng = np.random.default_rng(1)
    m = rng.integers(0, 6, (150, 131)).astype(np.uint8)
    m[rng.random(m.shape) < 0.1] = 255
    rare = m == 5
    m[rare] = np.where(rng.random(rare.sum()) < 0.9, 4, 5)  # a small stratum (~300 px)
    return m


@pytest.mark.parametrize("chunks", [37, 61])
def test_counts_and_census_equal_in_memory(class_map, chunks):
    d = da.from_array(class_map, chunks=chunks)
    ref = A.class_pixel_counts(class_map, CLASSES, nodata=255)
    np.testing.assert_array_equal(A.class_pixel_counts(d, CLASSES, nodata=255), ref)
    assert ref.sum() == (class_map != 255).sum() and ref[5] < 400
    valid = np.ones(class_map.shape, bool)
    valid[:20] = False
    np.testing.assert_array_equal(A.class_pixel_counts(d, CLASSES, nodata=255, valid=valid),
                                  A.class_pixel_counts(class_map, CLASSES, nodata=255, valid=valid))
    truth = np.random.default_rng(2).integers(0, 6, class_map.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", A.AccuracyWarning)
        c_ref = A.census_accuracy(class_map, truth, CLASSES, valid=class_map != 255)
        c_lazy = A.census_accuracy(d, truth, CLASSES, valid=d != 255)
    np.testing.assert_array_equal(c_lazy["confusion"], c_ref["confusion"])
    assert c_lazy["overall"] == c_ref["overall"] and c_lazy["n_pixels"] == c_ref["n_pixels"]


@pytest.mark.parametrize("n_per_class", [10, {0: 3, 1: 0, 2: 5, 3: 7, 4: 2, 5: 500}])
def test_stratified_sample_is_the_same_points(class_map, n_per_class):
    d = da.from_array(class_map, chunks=37)
    with warnings.catch_warnings(record=True) as w_ref:
        warnings.simplefilter("always")
        ref = A.stratified_sample(class_map, n_per_class, seed=5, nodata=255)
    with warnings.catch_warnings(record=True) as w_lazy:
        warnings.simplefilter("always")
        out = A.stratified_sample(d, n_per_class, seed=5, nodata=255)
    np.testing.assert_array_equal(out[0], ref[0])
    np.testing.assert_array_equal(out[1], ref[1])
    assert [str(w.message) for w in w_lazy] == [str(w.message) for w in w_ref]
    assert (class_map[ref] != 255).all() and len(ref[0]) == (60 if n_per_class == 10 else 17 + 305 - 0)
    other = A.stratified_sample(d, n_per_class, seed=6, nodata=255)
    assert not np.array_equal(other[0] * 1000 + other[1], ref[0] * 1000 + ref[1])


def test_lazy_errors_name_the_problem(class_map):
    d = da.from_array(class_map, chunks=37)
    with pytest.raises(ValueError, match="not in classes"):
        A.class_pixel_counts(d, range(3), nodata=255)
    with pytest.raises(ValueError, match="no valid pixels"):
        A.class_pixel_counts(da.full((40, 40), 255, dtype=np.uint8, chunks=37), CLASSES, nodata=255)
    with pytest.raises(ValueError, match="n_per_class has no entry"):
        A.stratified_sample(d, {0: 1}, nodata=255)

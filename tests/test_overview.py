"""ltlib.overview: overviews of dask arrays equal those of the numpy arrays (and an independent
block mean), classes are kept, single pixels read lazily, GeoTIFF overviews read at the right level."""
import math

import dask.array as da
import numpy as np
import pytest
import rasterio
from affine import Affine

from ltlib import blocks, io
from ltlib import overview as ov

GRID = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 301, 277)


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


@pytest.fixture(scope="module")
def stack():
    rng = np.random.default_rng(4)
    a = (rng.random((3, 301, 277)) * 1000).astype(np.float32)
    a[a < 80] = np.nan  # scattered gaps
    a[:, 8:16, 4:12] = np.nan  # two whole 4 x 4 blocks with no value
    return a


def _expected_mean(a, f):
    """An independent NaN-aware block mean: pad with NaN to whole blocks, np.nanmean of each."""
    t, h, w = a.shape
    hb, wb = math.ceil(h / f), math.ceil(w / f)
    out = np.full((t, hb, wb), np.nan)
    for i in range(hb):
        for j in range(wb):
            block = a[:, i * f:(i + 1) * f, j * f:(j + 1) * f].astype(np.float64).reshape(t, -1)
            ok = np.isfinite(block).any(axis=1)
            out[ok, i, j] = np.nanmean(block[ok], axis=1)
    return out


def test_dask_overview_equals_numpy_and_an_independent_block_mean(stack):
    lazy = da.from_array(stack, chunks=(-1, 61, 37))  # odd chunks, not multiples of the factor
    small, grid = ov.overview(lazy, GRID, max_px=100)
    assert isinstance(small, np.ndarray) and small.dtype == np.float32
    f = 4  # ceil(301 / 100)
    assert small.shape == (3, 76, 70) and grid.shape == (76, 70)
    assert grid.transform == GRID.transform * Affine.scale(f)
    mem, mem_grid = ov.overview(stack, GRID, max_px=100)
    np.testing.assert_array_equal(small, mem)  # chunked == in memory, exactly
    assert mem_grid == grid
    np.testing.assert_allclose(small, _expected_mean(stack, f), rtol=1e-6)
    assert np.isnan(small[:, 2:4, 1:3]).all() and np.isfinite(small[:, 0, 0]).all()


def test_categorical_overview_keeps_classes_and_dtype():
    rng = np.random.default_rng(1)
    classes = np.kron(rng.integers(0, 6, (31, 28)), np.ones((10, 10), int))[:301, :277].astype(np.uint8)
    lazy = da.from_array(classes, chunks=61)
    small, grid = ov.overview(lazy, GRID, max_px=100, categorical=True)
    rows = np.minimum(np.arange(76) * 4 + 2, 300)  # the pixel nearest each block's centre
    cols = np.minimum(np.arange(70) * 4 + 2, 276)
    assert small.dtype == np.uint8
    np.testing.assert_array_equal(small, classes[np.ix_(rows, cols)])
    assert set(np.unique(small)) == set(np.unique(classes))
    assert grid.shape == (76, 70)


def test_small_numpy_is_returned_unchanged(stack):
    small, grid = ov.overview(stack, GRID)  # 301 px < 2048
    assert small is stack and grid is GRID
    assert not ov.needs_overview(stack) and ov.needs_overview(da.from_array(stack))


def test_bad_shapes_and_sizes_are_named(stack):
    with pytest.raises(ValueError, match="does not match the grid"):
        ov.overview(stack[:, :300], GRID)
    with pytest.raises(ValueError, match="max_px"):
        ov.overview(stack, GRID, max_px=0)


def test_pixel_series_and_value_read_one_pixel(stack):
    lazy = da.from_array(stack, chunks=(-1, 61, 37))
    for r, c in ((0, 0), (300, 276), (122, 37), (61, 36)):
        np.testing.assert_array_equal(ov.pixel_series(lazy, r, c), stack[:, r, c])
        np.testing.assert_array_equal(ov.pixel_series(io.Stack(lazy, [2000, 2001, 2002], GRID), r, c),
                                      stack[:, r, c])
        np.testing.assert_array_equal(ov.pixel_value(lazy[1], r, c), stack[1, r, c])
    np.testing.assert_array_equal(ov.pixel_series(stack, 5, 6), stack[:, 5, 6])
    with pytest.raises(IndexError, match="row must be .* 0..300"):
        ov.pixel_series(lazy, 301, 0)
    with pytest.raises(IndexError, match="col"):
        ov.pixel_value(lazy[0], 0, -1)
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        ov.pixel_series(lazy[0], 0, 0)


def test_percentiles_exact_in_memory_and_from_a_sample_when_lazy(stack):
    np.testing.assert_array_equal(ov.percentiles(stack, [2, 98]), np.nanpercentile(stack, [2, 98]))
    lazy = da.from_array(stack, chunks=(-1, 61, 37))
    got = ov.percentiles(lazy, [2, 98], max_px=100)
    side = int(100 / math.sqrt(3))  # 57 px a side for 3 layers: f = ceil(301 / 57) = 6
    rows, cols = np.minimum(np.arange(51) * 6 + 3, 300), np.minimum(np.arange(47) * 6 + 3, 276)
    assert side == 57
    np.testing.assert_array_equal(got, np.nanpercentile(stack[:, rows][:, :, cols], [2, 98]))
    np.testing.assert_allclose(got, np.nanpercentile(stack, [2, 98]), rtol=0.05)  # a fair sample


def test_file_overviews_are_read_at_the_right_level(tmp_path):
    grid = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), 600, 600)
    yy, xx = np.mgrid[0:600, 0:600]
    data = (np.sin(yy / 37.0) * 300 + np.cos(xx / 23.0) * 200 + (yy * xx) % 97).astype(np.float32)
    path = blocks.write_raster(tmp_path / "f.tif", data, grid, dtype="float32", overview_resampling="average",
                               progress=False)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
    full, g = ov.read_overview(path, 600, band=1)
    np.testing.assert_array_equal(full, data)
    assert g == grid
    for max_px, f, level in ((300, 2, 0), (299, 4, 1), (150, 4, 1)):
        small, g = ov.read_overview(path, max_px, band=1)
        assert small.shape == (600 // f, 600 // f) and g.transform == grid.transform * Affine.scale(f)
        with rasterio.open(path, OVERVIEW_LEVEL=level) as src:
            np.testing.assert_array_equal(small, src.read(1))  # that level, as stored
        np.testing.assert_allclose(small, ov.block_mean(data, f), rtol=1e-5, atol=1e-3)
    # coarser than the coarsest level (4x, 150 px): that level reduced further, 8x in all
    small, g = ov.read_overview(path, 100, band=1)
    assert small.shape == (75, 75) and g.transform == grid.transform * Affine.scale(8)
    np.testing.assert_allclose(small, ov.block_mean(data, 8), rtol=1e-5, atol=1e-3)
    # overview(path=...) reads the file, every band as (B, h, w)
    small, g = ov.overview(None, grid, 300, path=path)
    assert small.shape == (1, 300, 300)
    with pytest.raises(ValueError, match="band must be"):
        ov.read_overview(path, 300, band=2)

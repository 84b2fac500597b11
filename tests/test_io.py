"""ltlib.io: GeoTIFF stacks round-trip, reshapes, and the documented errors."""
import numpy as np
import pytest
import rasterio
from affine import Affine

from ltlib import io
from ltlib.config import NODATA_INT16


@pytest.fixture
def grid():
    return io.Grid("EPSG:32612", Affine(30, 0, 405000, 0, -30, 4487000), 7, 5)


@pytest.fixture
def cube(grid):
    rng = np.random.default_rng(0)
    data = rng.uniform(-900, 900, size=(4,) + grid.shape).round().astype(np.float32)
    data[1, 2, 3] = np.nan
    data[:, 0, 0] = np.nan  # a pixel with no observation at all
    return data


def test_stack_round_trip_keeps_grid_names_and_values(tmp_path, grid, cube):
    years = [1990, 1991, 1995, 2000]
    path = io.write_stack(tmp_path / "ndvi.tif", cube, years, grid, name="NDVI", scale=0.001)
    with rasterio.open(path) as src:
        assert src.descriptions == ("yr1990", "yr1991", "yr1995", "yr2000")
        assert src.nodata == NODATA_INT16
        assert src.dtypes[0] == "int16"
    s = io.read_stack(path, expected_years=years)
    assert s.grid.same_as(grid)
    assert s.grid.crs.to_epsg() == 32612
    assert tuple(s.grid.transform) == tuple(grid.transform)
    assert s.years.tolist() == years
    assert s.name == "NDVI" and s.scale == pytest.approx(0.001)
    np.testing.assert_array_equal(np.isnan(s.data), np.isnan(cube))
    np.testing.assert_array_equal(s.data[np.isfinite(cube)], cube[np.isfinite(cube)])
    np.testing.assert_allclose(s.physical()[0, 1, 1], cube[0, 1, 1] * 0.001, rtol=1e-6)
    assert s.band(1995).shape == grid.shape
    with pytest.raises(KeyError, match="1996"):
        s.band(1996)


def test_float_stack_round_trip_is_exact(tmp_path, grid, cube):
    data = cube / 1000.0
    io.write_stack(tmp_path / "f.tif", data, [2001, 2002, 2003, 2004], grid, dtype="float32")
    s = io.read_stack(tmp_path / "f.tif")
    np.testing.assert_array_equal(s.data, data.astype(np.float32))


def test_write_refuses_values_that_do_not_fit(tmp_path, grid, cube):
    cube[0, 1, 1] = 40000
    with pytest.raises(ValueError, match="do not fit int16"):
        io.write_stack(tmp_path / "x.tif", cube, [1, 2, 3, 4], grid)
    cube[0, 1, 1] = NODATA_INT16  # a real value equal to nodata would be lost on read
    with pytest.raises(ValueError, match="do not fit int16"):
        io.write_stack(tmp_path / "x.tif", cube, [1, 2, 3, 4], grid)


def test_physical_floats_are_not_rounded_away(tmp_path, grid, cube):
    """0..1 NDVI written with the default int16 would be stored as 0 or 1: refused, naming the
    file and the remedy; the same values x 1000 (stored units), or float32, are written."""
    ndvi = np.clip(cube / 1000 + 0.2, -1, 1)  # physical units, with the NaN gaps
    with pytest.raises(ValueError, match=r"x\.tif: values .* are not whole numbers and would be rounded to int16 \(3 distinct values left.*x 1000"):
        io.write_stack(tmp_path / "x.tif", ndvi, [2001, 2002, 2003, 2004], grid)
    assert not (tmp_path / "x.tif").exists()
    io.write_stack(tmp_path / "x.tif", ndvi * 1000, [2001, 2002, 2003, 2004], grid, scale=0.001)
    back = io.read_stack(tmp_path / "x.tif")
    np.testing.assert_allclose(back.data, np.rint(ndvi * 1000), equal_nan=True)
    io.write_stack(tmp_path / "f.tif", ndvi, [2001, 2002, 2003, 2004], grid, dtype="float32")
    np.testing.assert_allclose(io.read_stack(tmp_path / "f.tif").data, ndvi.astype(np.float32), equal_nan=True)
    # whole numbers in a small range (class maps, counts) are written as they are
    io.write_raster(tmp_path / "c.tif", np.arange(35.0).reshape(grid.shape) % 6, grid, dtype="uint8")


def test_errors_name_the_problem(tmp_path, grid, cube):
    with pytest.raises(FileNotFoundError, match="missing.tif"):
        io.read_stack(tmp_path / "missing.tif")
    with pytest.raises(ValueError, match="4 bands but 3 years"):
        io.write_stack(tmp_path / "a.tif", cube, [1, 2, 3], grid)
    with pytest.raises(ValueError, match="strictly increasing"):
        io.write_stack(tmp_path / "a.tif", cube, [1, 3, 2, 4], grid)
    with pytest.raises(ValueError, match="does not match grid"):
        io.write_stack(tmp_path / "a.tif", cube[:, :3], [1, 2, 3, 4], grid)
    # wrong band count against what the caller expects
    io.write_stack(tmp_path / "s.tif", cube, [2000, 2001, 2002, 2003], grid)
    with pytest.raises(ValueError, match=r"s.tif: expected 5 bands .*found 4 bands"):
        io.read_stack(tmp_path / "s.tif", expected_years=range(2000, 2005))
    # bands that are not years
    io.write_raster(tmp_path / "m.tif", cube[:2], grid, band_names=["yod", "mag"], nodata=-9999, dtype="int16")
    with pytest.raises(ValueError, match=r"m.tif: band 1 is named 'yod'"):
        io.read_stack(tmp_path / "m.tif")


def test_series_round_trip_and_mask(grid, cube):
    series, mask = io.stack_to_series(cube)
    assert series.shape == (grid.height * grid.width - 1, 4)
    assert not mask[0, 0] and mask.sum() == series.shape[0]
    assert np.isnan(series).sum() == 1  # the single missing year stays missing
    back = io.series_to_image(series, mask)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(cube))
    np.testing.assert_array_equal(back[np.isfinite(back)], cube[np.isfinite(cube)])
    scalar = io.series_to_image(np.arange(mask.sum()), mask, fill=-1)
    assert scalar.shape == grid.shape and scalar[0, 0] == -1 and scalar[0, 1] == 0
    with pytest.raises(ValueError, match="values for a mask with"):
        io.series_to_image(series[:-1], mask)


def test_multivariate_series(tmp_path, grid, cube):
    a = io.Stack(cube, [1, 2, 3, 4], grid, name="a")
    other = cube * 2
    other[:, 6, 4] = np.nan  # missing everywhere in the second variable only
    b = io.Stack(other, [1, 2, 3, 4], grid, name="b")
    x, mask = io.stacks_to_series([a, b])
    assert x.shape == (mask.sum(), 4, 2)
    assert not mask[6, 4] and not mask[0, 0]
    np.testing.assert_array_equal(x[..., 1][np.isfinite(x[..., 1])], 2 * x[..., 0][np.isfinite(x[..., 1])])
    shifted = io.Grid(grid.crs, grid.transform @ Affine.translation(1, 0), *grid.shape)
    c = io.Stack(cube, [1, 2, 3, 4], shifted, name="c")
    with pytest.raises(ValueError, match="different grids"):
        io.stacks_to_series([a, c])


def test_raster_with_colour_table(tmp_path, grid):
    classes = np.arange(35, dtype=np.uint8).reshape(grid.shape) % 6
    colors = {0: "#d7191c", 1: "#fdae61", 2: "#1a9641", 3: "#7b3294", 4: "#bababa", 5: "#2c7bb6"}
    path = io.write_raster(tmp_path / "cls.tif", classes, grid, band_names=["class"], dtype="uint8", colormap=colors)
    with rasterio.open(path) as src:
        assert src.colormap(1)[2] == (0x1A, 0x96, 0x41, 255)
    data, g, names = io.read_raster(path)
    assert names == ["class"] and g.same_as(grid)
    np.testing.assert_array_equal(data[0], classes)


def test_failed_overwrite_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    """write_raster writes a temporary file and renames it: a failure mid-write loses nothing."""
    import rasterio.io

    grid = io.Grid("EPSG:32612", rasterio.transform.from_origin(400000, 4500000, 30, 30), 4, 5)
    path = io.write_raster(tmp_path / "map.tif", np.ones((4, 5)), grid, dtype="float32")
    before = path.read_bytes()

    def broken_write(self, *a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(rasterio.io.DatasetWriter, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        io.write_raster(path, np.zeros((4, 5)), grid, dtype="float32")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["map.tif"]


def test_killed_writer_process_leaves_the_old_stack(tmp_path):
    """A process killed while overwriting a stack leaves the previous stack readable."""
    import signal
    import subprocess
    import sys
    import time

    grid = io.Grid("EPSG:32612", rasterio.transform.from_origin(400000, 4500000, 30, 30), 600, 600)
    old = np.full((3, 600, 600), 7.0, np.float32)
    path = io.write_stack(tmp_path / "ndvi.tif", old, [2000, 2001, 2002], grid)
    code = (
        "import numpy as np, rasterio, time\n"
        "from ltlib import io\n"
        "import rasterio.io\n"
        "real = rasterio.io.DatasetWriter.write\n"
        "def slow(self, *a, **k):\n"
        "    print('writing', flush=True); time.sleep(30); return real(self, *a, **k)\n"
        "rasterio.io.DatasetWriter.write = slow\n"
        f"g = io.Grid('EPSG:32612', rasterio.transform.from_origin(400000, 4500000, 30, 30), 600, 600)\n"
        f"io.write_stack({str(path)!r}, np.zeros((3, 600, 600), np.float32), [2000, 2001, 2002], g)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    back = io.read_stack(path)
    np.testing.assert_array_equal(back.data, old)


def test_pixel_sizes_and_areas_in_metres_on_projected_and_geographic_grids():
    """Areas in ha must not come out of degrees: a geographic grid is measured at each row's latitude."""
    from affine import Affine

    utm = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4490000), 4, 5)
    assert utm.pixel_size_m == (30.0, 30.0) and utm.pixel_text() == "30 m"
    assert utm.area_ha(np.ones((4, 5), bool)) == pytest.approx(20 * 900 / 1e4)
    feet = io.Grid("EPSG:2227", Affine(100, 0, 6e6, 0, -100, 2e6), 2, 2)  # California zone 3, US survey feet
    assert feet.pixel_size_m[0] == pytest.approx(30.48006, rel=1e-5)
    # 0.0003 deg at 40.59 N, checked against the same steps measured in UTM 12N (scale ~1 there)
    from rasterio.warp import transform as warp

    geo = io.Grid("EPSG:4326", Affine(0.0003, 0, -112.2, 0, -0.0003, 40.6), 40, 55)
    px, py = geo.pixel_size_m
    lat = 40.6 - 20 * 0.0003
    (x0, x1, x2), (y0, y1, y2) = warp("EPSG:4326", "EPSG:32612", [-112.2, -112.1997, -112.2], [lat, lat, lat + 0.0003])
    assert px == pytest.approx(np.hypot(x1 - x0, y1 - y0), rel=2e-3)
    assert py == pytest.approx(np.hypot(x2 - x0, y2 - y0), rel=2e-3)
    assert "deg (about 25 x 33 m)" in geo.pixel_text()
    areas = geo.pixel_areas_m2()
    assert areas.shape == (40, 1) and areas[0, 0] < areas[-1, 0]  # further north, smaller
    assert geo.area_ha(np.ones((40, 55), bool)) == pytest.approx(40 * 55 * px * py / 1e4, rel=1e-3)
    polar = io.Grid("EPSG:4326", Affine(0.0003, 0, 0, 0, -0.0003, 80.0), 2, 2)
    assert polar.pixel_size_m[0] == pytest.approx(px * np.cos(np.radians(80)) / np.cos(np.radians(lat)), rel=5e-3)
    with pytest.raises(ValueError, match="does not match the grid"):
        geo.area_ha(np.ones((3, 3), bool))

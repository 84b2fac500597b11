"""Maps of large lazy rasters: layers are overviews of at most config.MAX_OVERLAY_PX px, each
block is computed once, the lazy layer equals the in-memory one, and the detail layer draws the
visible window at full resolution from the chunks it touches only."""
import base64
import io as _io
import threading

import dask.array as da
import numpy as np
import pytest
from affine import Affine
from PIL import Image

from ltlib import blocks, config, io, maps, timelapse
from ltlib import map_detail
from ltlib.inspector import Inspector

SIZE = 3000
CHUNK = 512
GRID = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), SIZE, SIZE)


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


class Counted:
    """A lazy raster whose blocks are made on demand and counted: (row0, col0) of each block made."""

    def __init__(self, fn, shape, dtype, chunks):
        self.made = []
        self._lock = threading.Lock()
        self.fn = fn

        def block(block_info=None):
            (r0, r1), (c0, c1) = block_info[None]["array-location"][-2:]
            with self._lock:
                self.made.append((r0, c0))
            lead = block_info[None]["chunk-shape"][:-2]
            yy, xx = np.mgrid[r0:r1, c0:c1]
            return np.broadcast_to(fn(yy, xx), tuple(lead) + (r1 - r0, c1 - c0)).astype(dtype)

        self.data = da.map_blocks(block, dtype=dtype, chunks=chunks)
        rows, cols = np.mgrid[0:shape[-2], 0:shape[-1]]
        self.numpy = np.broadcast_to(fn(rows, cols), shape).astype(dtype)

    def reset(self):
        self.made.clear()


def _field(yy, xx):
    v = np.sin(yy / 97.0) * 400 + np.cos(xx / 61.0) * 300 + (yy * 7 + xx * 3) % 50
    return np.where((yy // 300 + xx // 300) % 7 == 3, np.nan, v)  # some gaps


def _classes(yy, xx):
    return ((yy // 250) * 3 + (xx // 170)) % 6


def _chunks(n, c=CHUNK):
    return (c,) * (n // c) + ((n % c,) if n % c else ())


def _png(layer):
    return np.asarray(Image.open(_io.BytesIO(base64.b64decode(layer.url.split(",", 1)[1]))))


N_BLOCKS = len(_chunks(SIZE)) ** 2  # 36


@pytest.fixture(scope="module")
def field():
    return Counted(_field, (SIZE, SIZE), np.float32, (_chunks(SIZE), _chunks(SIZE)))


def test_lazy_continuous_layer_is_an_overview_computed_once_per_block(field):
    field.reset()
    m = maps.make_map(GRID, basemaps=False)
    layer = maps.add_continuous(m, field.data, GRID, "field", cmap="viridis")
    assert sorted(field.made) == sorted(set(field.made)) and len(field.made) == N_BLOCKS  # each block once
    png = _png(layer)
    assert max(png.shape[:2]) <= config.MAX_OVERLAY_PX and min(png.shape[:2]) > 1000
    # the lazy layer is exactly the layer of the same raster in memory
    m2 = maps.make_map(GRID, basemaps=False)
    mem = maps.add_continuous(m2, field.numpy, GRID, "field", cmap="viridis")
    assert layer.url == mem.url and layer.bounds == mem.bounds
    assert m.ltlib_legends[0].vmin == m2.ltlib_legends[0].vmin
    # zoomed out, the detail layer stays hidden and reads nothing
    assert layer.ltlib_detail.window is None and not layer.ltlib_detail.overlay.visible
    maps.finish(m)  # the detail layer is not a layer panel entry
    assert len(field.made) == N_BLOCKS


def _view_of(grid, window, inset=1e-6):
    """ipyleaflet bounds ((s, w), (n, e)) of a pixel window, a hair inside it."""
    west, south, east, north = map_detail.window_grid(grid, window).bounds_lonlat()
    return ((south + inset, west + inset), (north - inset, east - inset))


def test_detail_layer_draws_the_visible_window_at_full_resolution(field):
    m = maps.make_map(GRID, basemaps=False)
    layer = maps.add_continuous(m, field.data, GRID, "field", cmap="magma", vmin=-500, vmax=700)
    detail = layer.ltlib_detail
    field.reset()
    m.set_trait("bounds", _view_of(GRID, (1000, 1200, 500, 800)))  # what a zoom in sends
    r0, r1, c0, c1 = detail.window
    # the lon/lat view holds the window (and a few pixels of its rotated corners)
    assert r0 <= 1000 and r1 >= 1200 and c0 <= 500 and c1 >= 800
    assert (r1 - r0) - 200 <= 12 and (c1 - c0) - 300 <= 12
    assert detail.overlay.visible
    touched = {(r, c) for r in range(0, SIZE, CHUNK) for c in range(0, SIZE, CHUNK)
               if r < r1 and r + CHUNK > r0 and c < c1 and c + CHUNK > c0}
    assert sorted(field.made) == sorted(touched) and len(touched) == 4  # only the window's chunks
    # its pixels are those of the full-resolution window, coloured as the overview is
    ll, bounds = maps._to_lonlat(field.numpy[r0:r1, c0:c1], map_detail.window_grid(GRID, detail.window), False)
    expected, _, _ = maps.continuous_rgba(ll, cmap="magma", vmin=-500, vmax=700)
    np.testing.assert_array_equal(_png(detail.overlay), expected)
    assert np.asarray(detail.overlay.bounds) == pytest.approx(np.asarray(bounds))
    # the overview has ~100 rows over these ~205 px (2 px per overview pixel): the detail has more
    assert expected.shape[0] > 150
    # the detail follows its layer's visibility and opacity
    layer.visible = False
    assert not detail.overlay.visible
    layer.visible = True
    layer.opacity = 0.4
    assert detail.overlay.visible and detail.overlay.opacity == 0.4
    # zoomed out past MAX_OVERLAY_PX px: hidden, nothing read
    field.reset()
    m.set_trait("bounds", _view_of(GRID, (0, SIZE, 0, SIZE)))
    assert detail.window is None and not detail.overlay.visible and field.made == []
    # a view outside the scene: hidden
    (s, w), (n, e) = _view_of(GRID, (0, 10, 0, 10))
    m.set_trait("bounds", ((s + 1, w), (n + 1, e)))
    assert detail.window is None


SMALLER = 2100  # still over MAX_OVERLAY_PX, less to draw
GRID2 = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), SMALLER, SMALLER)


def test_lazy_categorical_layer_checks_every_pixel_in_the_same_pass():
    classes = Counted(_classes, (SMALLER, SMALLER), np.float32, (_chunks(SMALLER), _chunks(SMALLER)))
    colors = {k: config.CLASS_COLORS[k] for k in range(6)}
    m = maps.make_map(GRID2, basemaps=False)
    layer = maps.add_categorical(m, classes.data, GRID2, "classes", names=config.CLASS_NAMES, colors=colors)
    assert len(classes.made) == len(_chunks(SMALLER)) ** 2  # overview and classes: one read of each block
    mem = maps.add_categorical(maps.make_map(GRID2, basemaps=False), classes.numpy, GRID2, "classes",
                               names=config.CLASS_NAMES, colors=colors)
    assert layer.url == mem.url
    png = _png(layer)
    assert max(png.shape[:2]) <= config.MAX_OVERLAY_PX
    shown = {tuple(c) for c in png[png[..., 3] == 255][:, :3]}
    assert shown == {tuple(int(config.CLASS_COLORS[k][i:i + 2], 16) for i in (1, 3, 5)) for k in range(6)}
    # one pixel of a class with no colour, which no overview pixel samples, is still refused
    odd = classes.data.copy()
    odd[1, 1] = 9
    with pytest.raises(ValueError, match=r"values \[9\] with no colour"):
        maps.add_categorical(m, odd, GRID2, "odd", names=config.CLASS_NAMES, colors=colors)


@pytest.fixture(scope="module")
def stack():
    size = SMALLER  # an overview of 1050 px
    chunks = ((4,), _chunks(size), _chunks(size))

    def fn(yy, xx):
        return _field(yy, xx)[None] + np.arange(4)[:, None, None] * 100.0

    counted = Counted(fn, (4, size, size), np.float32, chunks)
    grid = io.Grid("EPSG:32612", Affine(30, 0, 400000, 0, -30, 4500000), size, size)
    counted.stack = io.Stack(counted.data, [2000, 2001, 2002, 2003], grid, name="NDVI", scale=0.001)
    counted.blocks = len(_chunks(size)) ** 2
    return counted


def test_year_slider_reads_a_lazy_stack_once(stack):
    stack.reset()
    m = maps.make_map(stack.stack.grid, basemaps=False)
    slider = maps.add_year_slider(m, stack.stack, "NDVI", year=2001)
    assert len(stack.made) == stack.blocks
    layer = next(la for la in m.layers if getattr(la, "name", "") == "NDVI")
    first = layer.url
    assert max(_png(layer).shape[:2]) <= config.MAX_OVERLAY_PX
    slider.value = 2003
    assert layer.url != first and len(stack.made) == stack.blocks  # moving the slider reads nothing
    # the year's overview equals the in-memory stack's layer of that year (same colour range)
    entry = next(e for e in m.ltlib_legends if e.layer is layer)
    m2 = maps.make_map(stack.stack.grid, basemaps=False)
    mem = maps.add_continuous(m2, stack.numpy[3], stack.stack.grid, "x", cmap="viridis", vmin=entry.vmin,
                              vmax=entry.vmax)
    assert layer.url == mem.url
    # zoomed in, the detail shows the slider's year; a new year redraws it
    detail = layer.ltlib_detail
    m.set_trait("bounds", _view_of(stack.stack.grid, (100, 180, 1900, 2000)))
    r0, r1, c0, c1 = detail.window
    win = map_detail.window_grid(stack.stack.grid, detail.window)
    for year in (2003, 2000):
        slider.value = year
        ll, _ = maps._to_lonlat(stack.numpy[year - 2000, r0:r1, c0:c1], win, False)
        expected, _, _ = maps.continuous_rgba(ll, vmin=entry.vmin, vmax=entry.vmax)
        np.testing.assert_array_equal(detail.rgba, expected)


def test_inspector_and_timelapse_of_a_lazy_stack(stack):
    grid = stack.stack.grid
    stack.reset()
    ins = Inspector(grid, {"NDVI": stack.stack}, values={"v": (stack.data[0], None)})
    line = ins.select(1500, 20)
    assert set(stack.made) == {(1024, 0)}  # the clicked pixel's chunk only (series and value)
    assert f"v: {float(stack.numpy[0, 1500, 20]):g}" in line
    stack.reset()
    frames = timelapse.frames(stack.stack, years=[2000, 2003])
    assert len(stack.made) == stack.blocks  # every year's overview in one pass
    assert max(frames[0][1].size) <= config.TIMELAPSE_MAX_PX + timelapse.HEADER_PX
    assert frames[0][1].size == (700, 700 + timelapse.HEADER_PX)  # 2100 px / 3

"""ltlib.inspector: a click on a map becomes the right pixel, and its plot shows that pixel's values."""
import base64
import io as _io

import numpy as np
import pytest
from PIL import Image

from ltlib import config, inspector, io, landtrendr, maps, scene


def _crop(sc, n):
    """The top-left n x n pixels of a scene (all its stacks and truth), for a quick fit."""
    g = io.Grid(sc.grid.crs, sc.grid.transform, n, n)
    stacks = {k: io.Stack(s.data[:, :n, :n].copy(), s.years, g, name=s.name, scale=s.scale) for k, s in sc.stacks.items()}
    truth = {k: (v[:n, :n] if k != "grid" else g) for k, v in sc.truth.items()}
    return scene.Scene(stacks, truth, None, sc.source, sc.folder, "cropped test scene")


@pytest.fixture(scope="module")
def sc(data_dir):
    return scene.load(data_dir, quiet=True)


def _click(m, row, col):
    """What a browser click on the centre of pixel (row, col) sends to ipyleaflet's handlers."""
    lon, lat = inspector.lonlat(m.inspector.grid, row, col)
    return m.inspector.handle(type="click", coordinates=[lat, lon])


def test_lonlat_and_rowcol_are_inverse_and_outside_is_none(sc):
    g = sc.grid
    for r, c in [(0, 0), (17, 150), (199, 199), (120, 3)]:
        lon, lat = inspector.lonlat(g, r, c)
        assert inspector.rowcol(g, lat, lon) == (r, c)
    west, south, east, north = g.bounds_lonlat()
    assert inspector.rowcol(g, north + 0.01, west) is None
    assert inspector.rowcol(g, (south + north) / 2, east + 0.01) is None


def test_click_on_the_stack_map_plots_that_pixel(sc):
    m = maps.stack_map(sc, "NDVI", basemaps=False)
    assert "ltlib-map" in m._dom_classes and "ltlib-inspector" in m.inspector.out._dom_classes
    assert m.inspector.out.outputs[0]["text"].startswith("Click a pixel")
    row, col = 120, 45
    assert _click(m, row, col) == (row, col)
    text, image = m.inspector.out.outputs
    lon, lat = inspector.lonlat(sc.grid, row, col)
    truth = int(sc.truth["class"][row, col])
    assert text["text"].startswith(f"row 120, col 45 (lon {lon:.5f}, lat {lat:.5f})")
    assert f"truth class: {truth} {config.CLASS_NAMES[truth]}" in text["text"]
    png = Image.open(_io.BytesIO(base64.b64decode(image["data"]["image/png"])))
    assert png.size[0] > 300 and png.size[1] > 150
    # the plotted points are this pixel's NDVI, not a neighbour's
    fig = m.inspector.figure(row, col)
    (points,) = fig.axes[0].lines
    np.testing.assert_array_equal(points.get_ydata(), sc.stack("NDVI").data[:, row, col])
    assert not np.array_equal(points.get_ydata(), sc.stack("NDVI").data[:, row, col + 1])
    assert fig.axes[0].get_ylabel() == "NDVI x 1000"
    # the clicked pixel is marked on the map; a click outside the scene says so and keeps the mark
    marker = m.layers[-1]
    assert marker.name == "Inspected pixel" and marker.location == pytest.approx((lat, lon))
    west, south, east, north = sc.grid.bounds_lonlat()
    assert m.inspector.handle(type="click", coordinates=[north + 0.01, west]) is None
    assert "outside the scene" in m.inspector.out.outputs[0]["text"]
    assert m.inspector.handle(type="mousemove", coordinates=[lat, lon]) is None  # only clicks count


def test_landtrendr_map_inspector_shows_fit_and_vertices(sc):
    small = _crop(sc, 12)
    run = landtrendr.fit_scene(small, ftv=[])
    m = maps.landtrendr_map(run, small.stack("NDVI"), basemaps=False)
    r, c = run.example_pixel()
    assert _click(m, r, c) == (r, c)
    line = m.inspector.out.outputs[0]["text"]
    assert f"loss year: {run.loss['yod'][r, c]:g}" in line
    ax = m.inspector.figure(r, c).axes[0]
    source, fit, vertices = ax.lines
    np.testing.assert_array_equal(source.get_ydata(), small.stack("NDVI").data[:, r, c])
    np.testing.assert_allclose(fit.get_ydata(), run.fitted["NDVI"][:, r, c])
    isv = run.result.is_vertex[:, r, c]
    np.testing.assert_array_equal(vertices.get_xdata(), run.years[isv])
    assert vertices.get_label() == f"{isv.sum()} vertices" and isv.sum() >= 2


def test_class_and_cluster_values_and_bad_input(sc):
    g = sc.grid
    cls = sc.truth["class"].astype(np.uint8).copy()
    cls[0, :] = 255  # unclassified
    m = maps.trajectory_class_map(cls, g, name="classes", truth=sc.truth["class"], series=sc.stack("NDVI"),
                                  basemaps=False)
    _click(m, 0, 5)
    assert "class: none" in m.inspector.out.outputs[0]["text"]
    _click(m, 50, 60)
    k = int(cls[50, 60])
    assert f"class: {k} {config.CLASS_NAMES[k]}" in m.inspector.out.outputs[0]["text"]
    with pytest.raises(ValueError, match="value 'x' has shape"):
        inspector.Inspector(g, {"NDVI": sc.stack("NDVI")}, values={"x": (np.zeros((3, 3)), None)})
    with pytest.raises(ValueError, match="fit 'NDVI' must have the shape"):
        inspector.Inspector(g, {"NDVI": sc.stack("NDVI")}, fits={"NDVI": np.zeros((2, 3, 3))})
    with pytest.raises(ValueError, match="at least one series"):
        inspector.Inspector(g, {})

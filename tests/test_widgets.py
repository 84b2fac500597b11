"""Notebook panels (ltlib.widgets)."""
import numpy as np

from ltlib import inspector, landtrendr, maps, params, sample, scene, widgets


def test_landtrendr_panel_refits(data_dir):
    s = sample.load_landsat(data_dir, "NDVI")
    panel = widgets.landtrendr_panel(s, row=100, col=100)
    assert len(panel.children) == 3
    first = panel.fit.fitted[0].copy()
    np.testing.assert_allclose(first, landtrendr.segment(s.data[:, 100, 100], s.years, distdir=-1,
                                                         **params.LandTrendrParams().as_dict()).fitted[0])
    panel.controls["max_segments"].value = 1  # one segment: a straight line through the series
    assert np.allclose(np.diff(panel.fit.fitted[0], 2), 0, atol=1e-3) and not np.array_equal(first,
                                                                                              panel.fit.fitted[0])


def test_landtrendr_panel_labels_are_readable():
    """Every parameter label fits its label width (ipywidgets cuts longer ones: "maxSegm...")."""
    width = int(widgets.LABEL_WIDTH.rstrip("px"))
    s = _tiny_stack()
    panel = widgets.landtrendr_panel(s)
    for name, c in panel.controls.items():
        if name in ("row", "col"):
            continue
        assert c.style.description_width == widgets.LABEL_WIDTH
        assert len(c.description) * 8 <= width, c.description  # about 8 px a character at 13 px font


def test_a_click_on_the_map_refits_that_pixel(data_dir):
    sc = scene.load(data_dir, quiet=True)
    m = maps.stack_map(sc, "NDVI", basemaps=False)
    s = sc.stack("NDVI")
    panel = widgets.landtrendr_panel(s, row=0, col=0, inspector=m.inspector)
    lon, lat = inspector.lonlat(s.grid, 150, 20)
    m.inspector.handle(type="click", coordinates=[lat, lon])
    assert (panel.controls["row"].value, panel.controls["col"].value) == (150, 20)
    np.testing.assert_array_equal(panel.fit.source[0], s.data[:, 150, 20])


def _tiny_stack():
    from ltlib import io

    grid = io.Grid("EPSG:32612", io.Affine(30, 0, 400000, 0, -30, 4500000), 2, 2)
    years = np.arange(2000, 2020)
    data = np.tile(np.linspace(800, 200, 20, dtype=np.float32)[:, None, None], (1, 2, 2))
    return io.Stack(data, years, grid, name="NDVI", scale=0.001)

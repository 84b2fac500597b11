"""Notebook panels (ltlib.widgets)."""
from ltlib import sample, widgets


def test_landtrendr_panel_refits(data_dir):
    s = sample.load_landsat(data_dir, "NDVI")
    panel = widgets.landtrendr_panel(s, row=100, col=100)
    assert len(panel.children) == 3

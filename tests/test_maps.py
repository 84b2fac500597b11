"""ltlib.maps: rasters land at their real place, colours and legends are right, bad input fails."""
import base64
import io as _io

import numpy as np
import pytest
from PIL import Image

from ltlib import config, maps, plots, sample


@pytest.fixture(scope="module")
def truth(data_dir):
    return sample.load_truth(data_dir)


def _png(layer):
    return np.asarray(Image.open(_io.BytesIO(base64.b64decode(layer.url.split(",", 1)[1]))))


def test_categorical_overlay_keeps_classes_and_location(truth):
    grid = truth["grid"]
    m = maps.make_map(grid)
    layer = maps.add_categorical(m, truth["class"], grid, "classes", names=config.CLASS_NAMES,
                                 colors=config.CLASS_COLORS)
    (s, w), (n, e) = layer.bounds
    west, south, east, north = grid.bounds_lonlat()
    assert (w, s, e, n) == pytest.approx((west, south, east, north), abs=2e-4)
    assert s < config.PIT_CENTER[1] < n and w < config.PIT_CENTER[0] < e
    rgba = _png(layer)
    # nearest-neighbour reprojection keeps the share of each class within 2 points
    opaque = rgba[..., 3] == 255
    for k, color in config.CLASS_COLORS.items():
        c = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        share_png = np.all(rgba[..., :3] == c, axis=-1)[opaque].mean()
        share_truth = (truth["class"] == k).mean()
        assert share_png == pytest.approx(share_truth, abs=0.02), k
    # north is up: the pit (classes 0/4 ring) is in the middle, urban class 3 on the east side
    east_half = rgba[:, rgba.shape[1] * 3 // 4:, :3]
    purple = tuple(int(config.CLASS_COLORS[3][i:i + 2], 16) for i in (1, 3, 5))
    assert np.all(east_half == purple, axis=-1).mean() > 0.5


def test_continuous_overlay_nan_is_transparent(data_dir):
    s = sample.load_landsat(data_dir)
    m = maps.make_map(s.grid)
    layer = maps.add_continuous(m, s.band(2012), s.grid, "ndvi", vmin=0, vmax=800)
    alpha = _png(layer)[..., 3]
    frac_transparent = (alpha == 0).mean()
    # SLC-off stripes (about a quarter of 2012) stay see-through, plus the corners of the
    # reprojected frame
    assert 0.2 < frac_transparent < 0.5
    slider = maps.add_year_slider(m, s, "ndvi by year", year=1990)
    url_1990 = m.layers[-1].url
    slider.value = 2020
    assert m.layers[-1].url != url_1990
    maps.finish(m)


def test_bad_layers_are_refused(truth):
    grid = truth["grid"]
    m = maps.make_map(grid)
    with pytest.raises(ValueError, match="does not match grid"):
        maps.add_continuous(m, np.zeros((10, 10)), grid, "x")
    with pytest.raises(ValueError, match="must be \\(H, W\\)"):
        maps.add_continuous(m, np.zeros((2,) + grid.shape), grid, "x")
    with pytest.raises(ValueError, match=r"values \[5\] with no colour"):
        maps.add_categorical(m, truth["class"], grid, "x", names={}, colors={k: "#000000" for k in range(5)})


def test_static_figures(truth, data_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    maps.plot_categorical(ax, truth["class"], truth["grid"], names=config.CLASS_NAMES, colors=config.CLASS_COLORS)
    assert len(ax.get_legend().get_texts()) == 6
    left, right, bottom, top = ax.images[0].get_extent()
    assert right - left == pytest.approx(6.0)  # 200 px x 30 m = 6 km
    picks = plots.pick_pixels_per_class(truth["class"], 3, seed=1)
    assert sorted(picks) == list(range(6))
    for k, rc in picks.items():
        assert (truth["class"][rc[:, 0], rc[:, 1]] == k).all()
    fig = plots.plot_trajectories_by_class(sample.load_landsat(data_dir), truth["class"], n_per_class=2)
    assert len([a for a in fig.axes if a.get_visible()]) == 6
    plt.close("all")


# ----------------------------------------------------------------------------- layout (issue 17)
def _controls(m):
    """{position: [kind]} of the map's controls; a WidgetControl is named by its widget's DOM class."""
    from ipyleaflet import WidgetControl

    out = {}
    for c in m.controls:
        kind = type(c).__name__
        if isinstance(c, WidgetControl):
            classes = getattr(c.widget, "_dom_classes", ())
            kind = classes[0] if classes else type(c.widget).__name__
        out.setdefault(c.position, []).append(kind)
    return out


def test_legends_sit_where_no_control_is_and_follow_their_layer(data_dir, monkeypatch):
    from ltlib import map_controls, scene

    monkeypatch.setattr(map_controls, "tiles_reachable", lambda: False)  # offline: no basemap, no error
    sc = scene.load(data_dir, quiet=True)
    m = maps.stack_map(sc, "NDVI", year=1990)
    where = _controls(m)
    assert where["bottomright"] == ["AttributionControl", "ltlib-legend"]
    assert "ltlib-layers" in where["topright"] and "ltlib-legend" not in where["topright"]
    assert "SelectionSlider" in where["bottomleft"]
    assert not any("Toolbar" in k or k == "GridBox" for ks in where.values() for k in ks)  # geemap's EE toolbar
    assert [la.name for la in m.layers] == ["Truth trajectory class", "NDVI"]  # offline: no tile layer
    truth, ndvi = m.layers
    assert ndvi.visible and not truth.visible  # the layer the slider changes is on top and on view
    # one legend entry per layer, shown only while its layer is visible
    panel = next(c.widget for c in m.controls if "ltlib-legend" in getattr(getattr(c, "widget", None),
                                                                        "_dom_classes", ()))
    toggle, body = panel.children
    ndvi_box, truth_box = body.children  # top layer first
    assert "NDVI: 1990" in ndvi_box.children[0].value and "Truth trajectory class" in truth_box.children[0].value
    assert truth_box.layout.display == "none" and ndvi_box.layout.display is None
    layers_panel = next(c.widget for c in m.controls if "ltlib-layers" in getattr(getattr(c, "widget", None),
                                                                               "_dom_classes", ()))
    ltoggle, lbody = layers_panel.children
    assert lbody.layout.display == "none"  # closed until clicked
    ltoggle.value = True
    assert lbody.layout.display is None
    ndvi_check, truth_check = lbody.children
    truth_check.value = True  # the reader switches the truth on in the layer panel
    assert truth.visible and truth_box.layout.display is None
    ndvi_check.value = False
    assert ndvi_box.layout.display == "none"
    m.slider.value = 2000
    assert "NDVI: 2000" in ndvi_box.children[0].value
    toggle.value = False  # the legend collapses
    assert body.layout.display == "none" and toggle.description == "Legend ▸"


def test_basemaps_when_online(truth):
    from ipyleaflet import TileLayer

    from ltlib import map_controls

    grid = truth["grid"]
    m = maps.finish(maps.make_map(grid, basemaps=True))
    tiles = [la for la in m.layers if isinstance(la, TileLayer)]
    assert [t.name for t in tiles] == [name for name, _ in map_controls.BASEMAPS]
    assert all(t.base for t in tiles) and [t.visible for t in tiles] == [True, False]
    assert "arcgisonline" in tiles[0].url and "openstreetmap" in tiles[1].url
    panel = next(c.widget for c in m.controls if "ltlib-layers" in getattr(getattr(c, "widget", None),
                                                                        "_dom_classes", ()))
    radio = panel.children[1].children[-1]
    radio.value = "OpenStreetMap"
    assert [t.visible for t in tiles] == [False, True]
    radio.value = map_controls.NO_BASEMAP
    assert not any(t.visible for t in tiles)


def test_snapshot_draws_the_visible_layers_with_their_legends(truth, data_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = sample.load_landsat(data_dir)
    grid = truth["grid"]
    m = maps.make_map(grid, basemaps=False)
    classes = maps.add_categorical(m, truth["class"], grid, "classes", names=config.CLASS_NAMES,
                                   colors=config.CLASS_COLORS)
    maps.add_continuous(m, s.band(2012), grid, "ndvi 2012", vmin=0, vmax=800, label="NDVI x 1000")
    maps.finish(m)
    fig = maps.snapshot(m)
    ax = fig.axes[0]
    assert ax.get_title() == "ndvi 2012" and len(ax.images) == 2
    assert np.array_equal(ax.images[1].get_array(), m.layers[-1].ltlib_rgba)  # the map's own pixels, on top
    (s_, w), (n, e) = m.layers[-1].bounds
    assert ax.images[1].get_extent() == pytest.approx([w, e, s_, n])
    labels = [a.get_xlabel() for a in fig.axes]
    assert "ndvi 2012: NDVI x 1000" in labels
    assert [t.get_text() for t in fig.axes[1].artists[0].get_texts()][0] == "0 downward"
    classes.visible = False
    fig = maps.snapshot(m)
    assert len(fig.axes[0].images) == 1 and len(fig.axes) == 2  # hidden layer, no legend column: map + colour bar
    plt.close("all")


def test_show_displays_the_map_its_inspector_and_the_static_image(data_dir, tmp_path, monkeypatch):
    import IPython.display

    from ltlib import scene

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    sc = scene.load(data_dir, quiet=True)
    m = maps.stack_map(sc, "NDVI", basemaps=False)
    png = tmp_path / "map.png"
    maps.snapshot(m).savefig(png)
    assert maps.show(m, png) is None
    view, image = shown
    assert view.children == (m, m.inspector.out)
    assert isinstance(image, IPython.display.Image) and image.data == png.read_bytes()

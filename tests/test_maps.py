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

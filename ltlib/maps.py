"""Show numpy rasters at their real location: geemap maps (offline) and matplotlib figures.

The interactive maps need no tile server and no Earth Engine account: an array is
reprojected to EPSG:4326, rendered to a PNG with its colour map, and laid on a
``geemap.Map`` as an ``ipyleaflet.ImageOverlay`` with a layer control and a colorbar or
legend. (Basemap tiles load only where the browser has internet; the overlays do not need
them.) ``plot_*`` draw the same rasters on a matplotlib axis in map coordinates (km of the
raster's CRS) for static output, papers and the README.
"""
from __future__ import annotations

import base64
import io as _io

import numpy as np

from .io import Grid


def _to_lonlat(data: np.ndarray, grid: Grid, categorical: bool):
    """Reproject an (H, W) raster to a north-up EPSG:4326 grid; returns (array, bounds)."""
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    west, south, east, north = grid.bounds
    dst_t, w, h = calculate_default_transform(grid.crs, "EPSG:4326", grid.width, grid.height,
                                              west, south, east, north)
    src = np.asarray(data, dtype=np.float32)
    dst = np.full((h, w), np.nan, np.float32)
    reproject(src, dst, src_transform=grid.transform, src_crs=grid.crs, dst_transform=dst_t,
              dst_crs="EPSG:4326", src_nodata=np.nan, dst_nodata=np.nan,
              resampling=Resampling.nearest if categorical else Resampling.bilinear)
    lon0, lat0 = dst_t @ (0, 0)
    lon1, lat1 = dst_t @ (w, h)
    return dst, ((min(lat0, lat1), min(lon0, lon1)), (max(lat0, lat1), max(lon0, lon1)))


def _png_data_url(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = _io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _check_2d(data, grid: Grid):
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"a map layer must be (H, W), got shape {data.shape}")
    if data.shape != grid.shape:
        raise ValueError(f"layer shape {data.shape} does not match grid {grid.shape}")
    return data


def continuous_rgba(data, *, cmap="viridis", vmin=None, vmax=None) -> tuple[np.ndarray, float, float]:
    """Colour an (H, W) array; NaN transparent. Returns (rgba uint8 (H, W, 4), vmin, vmax)."""
    import matplotlib

    data = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(data)
    if vmin is None:
        vmin = float(np.nanpercentile(data, 2)) if finite.any() else 0.0
    if vmax is None:
        vmax = float(np.nanpercentile(data, 98)) if finite.any() else 1.0
    if vmax <= vmin:
        vmax = vmin + 1.0
    norm = np.clip((data - vmin) / (vmax - vmin), 0, 1)
    rgba = (matplotlib.colormaps[cmap](np.where(finite, norm, 0)) * 255).astype(np.uint8)
    rgba[~finite, 3] = 0
    return rgba, vmin, vmax


def categorical_rgba(data, colors: dict) -> np.ndarray:
    """Colour an integer (H, W) array with {value: "#rrggbb"}; other values transparent."""
    data = np.asarray(data)
    rgba = np.zeros(data.shape + (4,), np.uint8)
    for value, color in colors.items():
        c = color.lstrip("#")
        m = data == value
        rgba[m] = (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16), 255)
    return rgba


def make_map(grid: Grid, *, zoom=13, height="550px", **kw):
    """A ``geemap.Map`` centred on the raster, with no Earth Engine initialisation."""
    import geemap

    west, south, east, north = grid.bounds_lonlat()
    m = geemap.Map(center=((south + north) / 2, (west + east) / 2), zoom=zoom, height=height,
                   ee_initialize=False, **kw)
    return m


def _add_overlay(m, rgba, bounds, name, opacity):
    from ipyleaflet import ImageOverlay

    layer = ImageOverlay(url=_png_data_url(rgba), bounds=bounds, name=name, opacity=opacity)
    m.add(layer)
    return layer


def add_continuous(m, data, grid: Grid, name: str, *, cmap="viridis", vmin=None, vmax=None, label="",
                   opacity=0.9, colorbar=True):
    """Add an (H, W) continuous raster (NaN transparent) with a colorbar; returns the layer."""
    data = _check_2d(data, grid)
    ll, bounds = _to_lonlat(data, grid, categorical=False)
    _, vmin, vmax = continuous_rgba(data, cmap=cmap, vmin=vmin, vmax=vmax)
    rgba, _, _ = continuous_rgba(ll, cmap=cmap, vmin=vmin, vmax=vmax)
    layer = _add_overlay(m, rgba, bounds, name, opacity)
    if colorbar:
        m.add_colorbar(vis_params={"min": vmin, "max": vmax}, cmap=cmap, label=label or name, layer_name=name)
    return layer


def add_categorical(m, data, grid: Grid, name: str, *, names: dict, colors: dict, opacity=0.9, legend=True):
    """Add an integer (H, W) class raster with a legend ({value: name}, {value: colour})."""
    data = _check_2d(data, grid)
    missing = {int(v) for v in np.unique(data[np.isfinite(data)])} - {int(k) for k in colors}
    if missing:
        raise ValueError(f"layer {name!r} has values {sorted(missing)} with no colour")
    ll, bounds = _to_lonlat(data.astype(np.float32), grid, categorical=True)
    rgba = categorical_rgba(ll, colors)
    layer = _add_overlay(m, rgba, bounds, name, opacity)
    if legend:
        m.add_legend(title=name, legend_dict={f"{k} {names.get(k, '')}".strip(): colors[k] for k in colors},
                     layer_name=name)
    return layer


def add_rgb(m, rgb, grid: Grid, name: str, *, opacity=0.9):
    """Add an (H, W, 3) colour composite with channels in 0..1; NaN in any channel is transparent."""
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"an RGB layer must be (H, W, 3), got shape {rgb.shape}")
    _check_2d(rgb[..., 0], grid)
    chans, bounds = [], None
    for c in range(3):
        ll, bounds = _to_lonlat(rgb[..., c], grid, categorical=True)
        chans.append(ll)
    ll = np.dstack(chans)
    rgba = np.zeros(ll.shape[:2] + (4,), np.uint8)
    rgba[..., :3] = (np.clip(np.nan_to_num(ll), 0, 1) * 255).round().astype(np.uint8)
    rgba[..., 3] = np.where(np.isfinite(ll).all(-1), 255, 0)
    return _add_overlay(m, rgba, bounds, name, opacity)


def finish(m):
    """Add the layer control (call once after adding layers); returns the map."""
    m.add_layer_control()
    return m


# ----------------------------------------------------------------------------- matplotlib
def _extent_km(grid: Grid):
    """imshow extent: km of a projected CRS, degrees of a geographic one (see _label_axes)."""
    left, bottom, right, top = grid.bounds
    f = 1.0 if grid.crs.is_geographic else 1000 / grid.metres_per_unit()[0]
    return (left / f, right / f, bottom / f, top / f)


def _label_axes(ax, grid: Grid, title):
    if grid.crs.is_geographic:
        ax.set_xlabel(f"Longitude (degrees, {grid.crs.to_string()})")
        ax.set_ylabel("Latitude (degrees)")
    else:
        ax.set_xlabel(f"Easting (km, {grid.crs.to_string()})")
        ax.set_ylabel("Northing (km)")
    if title:
        ax.set_title(title)


def plot_continuous(ax, data, grid: Grid, *, cmap="viridis", vmin=None, vmax=None, label="", title=""):
    """Draw an (H, W) raster in map coordinates with a colorbar; returns the image."""
    data = _check_2d(data, grid)
    if vmin is None or vmax is None:
        _, lo, hi = continuous_rgba(data, vmin=vmin, vmax=vmax)
        vmin, vmax = lo, hi
    im = ax.imshow(data, extent=_extent_km(grid), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label=label, shrink=0.8)
    _label_axes(ax, grid, title)
    return im


def plot_categorical(ax, data, grid: Grid, *, names: dict, colors: dict, title="", legend_loc="lower left"):
    """Draw an integer (H, W) class raster with a legend; returns the image."""
    from matplotlib.patches import Patch

    data = _check_2d(data, grid)
    rgba = categorical_rgba(data, colors)
    im = ax.imshow(rgba, extent=_extent_km(grid), interpolation="nearest")
    present = [k for k in colors if np.any(data == k)]
    ax.legend(handles=[Patch(color=colors[k], label=f"{k} {names.get(k, '')}") for k in present],
              loc=legend_loc, fontsize=8, framealpha=0.8)
    _label_axes(ax, grid, title)
    return im


def add_year_slider(m, stack, name: str, *, cmap="viridis", vmin=None, vmax=None, label="", year=None):
    """Show one year of an annual :class:`~ltlib.io.Stack` with a slider to step through years.

    The colour range is fixed over all years (2-98th percentile of the whole stack unless
    given), so brightness changes on the map are real changes. Returns the slider widget
    (displayed on the map as a control).
    """
    import ipywidgets as widgets
    from ipyleaflet import WidgetControl

    data = stack.data
    if vmin is None or vmax is None:
        lo, hi = np.nanpercentile(data, [2, 98])
        vmin = float(lo) if vmin is None else vmin
        vmax = float(hi) if vmax is None else vmax
    years = [int(y) for y in stack.years]
    year = years[len(years) // 2] if year is None else int(year)
    layer = add_continuous(m, stack.band(year), stack.grid, name, cmap=cmap, vmin=vmin, vmax=vmax,
                           label=label or name)
    slider = widgets.SelectionSlider(options=years, value=year, description="Year",
                                     continuous_update=False, layout=widgets.Layout(width="320px"))

    def _update(change):
        ll, _ = _to_lonlat(stack.band(change["new"]), stack.grid, categorical=False)
        rgba, _, _ = continuous_rgba(ll, cmap=cmap, vmin=vmin, vmax=vmax)
        layer.url = _png_data_url(rgba)
        layer.name = f"{name}"

    slider.observe(_update, names="value")
    m.add(WidgetControl(widget=slider, position="topright"))
    return slider


def stack_map(scene, index: str, *, year=None, cmap: str = "YlGn"):
    """A map of one index of a :class:`~ltlib.scene.Scene` with a year slider.

    The scene's truth classes, when it has them, are a layer *below* the index and hidden
    at first (switch them on in the layer control), so the layer the slider changes is the
    one on view. Returns the finished map (``m.slider`` is the year slider).
    """
    from . import config

    stack = scene.stack(index)
    m = make_map(stack.grid)
    if scene.truth is not None:
        layer = add_categorical(m, scene.truth["class"], scene.truth["grid"], "Truth trajectory class",
                                names=config.CLASS_NAMES, colors=config.CLASS_COLORS, legend=False)
        layer.visible = False
    unit = f"{stack.name} x {1 / stack.scale:g}" if stack.scale != 1 else stack.name
    m.slider = add_year_slider(m, stack, f"{stack.name} (year on the slider)", cmap=cmap, year=year, label=unit)
    return finish(m)


def landtrendr_map(run, *, start_year=None, end_year=None):
    """A map of a :class:`~ltlib.landtrendr.run.LandTrendrRun`: loss year and magnitude, gain year.

    The loss year of detection is on top (the layer the notebook discusses); each layer has its
    own colour bar. Returns the finished map.
    """
    y0 = int(run.years[0]) if start_year is None else start_year
    y1 = int(run.years[-1]) if end_year is None else end_year
    m = make_map(run.grid)
    add_continuous(m, run.gain["yod"], run.grid, "Gain: year of detection", cmap="viridis", vmin=y0, vmax=y1,
                   label="year of detection (gain)")
    add_continuous(m, run.loss["mag"], run.grid, "Loss: magnitude", cmap="magma_r",
                   label=f"{run.index} x 1000 lost")
    add_continuous(m, run.loss["yod"], run.grid, "Loss: year of detection", cmap="plasma", vmin=y0, vmax=y1,
                   label="year of detection (loss)")
    return finish(m)


def add_ee_time_slider(m, collection, vis: dict, *, start_year: int, end_year: int, name: str = "composite",
                       time_interval: float = 1.0):
    """Show an annual ``ee.ImageCollection`` on a geemap map with a year slider.

    Unlike :func:`add_year_slider` (a local stack, rendered here), the images are rendered by
    Earth Engine, so this needs an initialised Earth Engine session.

    Parameters
    ----------
    m : geemap.Map
    collection : ee.ImageCollection
        One image per year, ``start_year`` .. ``end_year`` in order.
    vis : dict
        Earth Engine visualisation parameters (``min``, ``max``, ``palette``...).
    start_year, end_year : int
        Years of the first and last image: the slider's labels.
    name : str
        Layer name.
    time_interval : float
        Seconds per year when the slider plays.

    Returns
    -------
    geemap.Map
        ``m``, with the time slider added.
    """
    import ee  # only here: the rest of this module works without Earth Engine

    labels = [str(y) for y in range(start_year, end_year + 1)]
    m.add_time_slider(ee.ImageCollection(collection), vis, labels=labels, layer_name=name,
                      time_interval=time_interval)
    return m


def sar_change_map(result, grid: Grid, dates):
    """A map of the omnibus change maps (:class:`ltlib.sar.OmnibusResult` on ``grid``; ``dates``
    the K image dates): smap, cmap and fmap layers, each with its own colour bar or legend, and
    the seed's composite (R = cmap, G = smap, B = fmap) on top. Unchanged pixels are
    transparent. Returns the finished map."""
    from . import plots, sar

    k = result.k
    first = f"1 = {dates[0]}/{dates[1]}"
    m = make_map(grid)
    for name, what in (("smap", "first"), ("cmap", "last")):
        a = getattr(result, name)
        add_continuous(m, np.where(result.valid & (a > 0), a, np.nan).astype(float), grid, f"{name}: {what} change",
                       cmap="viridis", vmin=1, vmax=max(k - 1, 2),
                       label=f"{name}: interval of the {what} change ({first})")
    colors = plots.fmap_colors(max(int(result.fmap.max()), 1))
    add_categorical(m, np.where(result.valid & (result.fmap > 0), result.fmap, np.nan), grid,
                    "fmap: number of changes", names={n: f"change{'s' if n > 1 else ''}" for n in colors},
                    colors=colors)
    sar.add_composite(m, result, grid)
    return finish(m)


def cluster_map(runs, truth=None):
    """A map of :class:`ltlib.cluster.ClusterRun` label images, one layer each with its legend.

    The last run is on top; the scene's truth classes (``scene.truth``), when given, are a
    layer below the clusters and hidden at first (switch them on in the layer control).
    Label -1 (no data) is transparent; label k (flat pixels, set aside) is black. Returns the
    finished map.
    """
    from . import config

    runs = [r for r in runs if r is not None]
    if not runs:
        raise ValueError("cluster_map needs at least one ClusterRun")
    m = make_map(runs[0].grid)
    if truth is not None:
        layer = add_categorical(m, truth["class"], truth["grid"], "Truth trajectory class",
                                names=config.CLASS_NAMES, colors=config.CLASS_COLORS, legend=False)
        layer.visible = False
    for run in runs:
        img = run.label_image()
        names, colors = run.legend()
        present = {int(v) for v in np.unique(img) if v >= 0}
        add_categorical(m, np.where(img >= 0, img, np.nan), run.grid, f"k-Shape {run.title}",
                        names={v: names[v] for v in present}, colors={v: colors[v] for v in present})
    return finish(m)


def trajectory_class_map(class_map, grid: Grid, *, name: str = "Trajectory class", truth=None):
    """A map of a trajectory class map (uint8 (H, W), 255 = unclassified, transparent) with its
    legend; truth classes (H, W), when given, are a hidden layer below it (switch it on in the
    layer control). Returns the finished map."""
    from . import config

    names, colors = config.CLASS_NAMES, config.CLASS_COLORS
    m = make_map(grid)
    if truth is not None:
        layer = add_categorical(m, np.asarray(truth, np.float32), grid, "Truth trajectory class", names=names,
                                colors=colors, legend=False)
        layer.visible = False
    shown = np.where(np.asarray(class_map) == 255, np.nan, class_map).astype(np.float32)
    add_categorical(m, shown, grid, name, names=names, colors=colors)
    return finish(m)

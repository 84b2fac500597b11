"""Show numpy rasters at their real location: geemap maps (offline) and matplotlib figures.

The interactive maps need no tile server and no Earth Engine account: an array is
reprojected to EPSG:4326, rendered to a PNG with its colour map, and laid on a
``geemap.Map`` as an ``ipyleaflet.ImageOverlay``. Layout (see :mod:`ltlib.map_controls`):
zoom and full screen top left, the layer panel (overlays and basemaps) top right, one
collapsible legend panel bottom right whose entries show only while their layer is
visible, sliders bottom left. The layer the notebook discusses is on top; truth and
secondary layers are below and hidden at first. Satellite imagery and OpenStreetMap are
offered as basemaps when the tile servers can be reached; offline the background is grey.

:func:`show` puts a map and its pixel inspector (:mod:`ltlib.inspector`: click a pixel to
plot its trajectory) in one widget; :func:`snapshot` draws the visible layers and their
legends as a matplotlib figure, the static view that HTML renders of a notebook show.
``plot_*`` draw rasters on a matplotlib axis in map coordinates (km of the raster's CRS) for
static output, papers and the README.

Large or lazy (dask) rasters are never rendered whole: a layer shows their overview
(:mod:`ltlib.overview`, at most ``config.MAX_OVERLAY_PX`` px a side, each block read once) and,
on an interactive map, a detail layer (:mod:`ltlib.map_detail`) redraws the visible window at
full resolution once the view covers fewer pixels than that. Small numpy rasters (the sample)
are drawn exactly as they are.
"""
from __future__ import annotations

import textwrap

import numpy as np

from . import config, map_controls
from . import overview as _ov
from .io import Grid
from .map_images import _png_data_url, _to_lonlat  # shared with map_detail (no maps <-> map_detail cycle)


def _check_2d(data, grid: Grid):
    if not _ov.is_lazy(data):  # a dask array stays lazy: only its overview is computed
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


def make_map(grid: Grid, *, zoom=13, height="550px", basemaps: bool | None = None, **kw):
    """A ``geemap.Map`` centred on the raster, with no Earth Engine initialisation.

    Only the controls that work without Earth Engine are kept (zoom, full screen, scale,
    attribution); :func:`finish` adds the layer and legend panels. ``basemaps``: satellite
    imagery and OpenStreetMap (True), none, a grey background (False), or None: both when the
    tile server can be reached from here. The map has DOM class ``ltlib-map``.
    """
    import geemap
    from ipyleaflet import TileLayer
    from ipywidgets import GridBox

    west, south, east, north = grid.bounds_lonlat()
    kw = {"toolbar_ctrl": False, "draw_ctrl": False, "search_ctrl": False, "measure_ctrl": False, **kw}
    m = geemap.Map(center=((south + north) / 2, (west + east) / 2), zoom=zoom, height=height,
                   ee_initialize=False, **kw)
    for c in [c for c in m.controls if isinstance(getattr(c, "widget", None), GridBox) and not c.widget.children]:
        m.remove(c)  # geemap's empty toolbar box (top right), where the layer panel goes
    for layer in [la for la in m.layers if isinstance(la, TileLayer)]:
        m.remove(layer)  # geemap's default OpenStreetMap: replaced by the basemaps below, or none offline
    if basemaps is None:
        basemaps = map_controls.tiles_reachable()
    m.ltlib_basemaps = map_controls.basemap_layers() if basemaps else []
    for layer in m.ltlib_basemaps:
        m.add(layer)
    m.ltlib_legends = []
    m.inspector = None
    m.add_class("ltlib-map")
    return m


def _add_overlay(m, rgba, bounds, name, opacity):
    from ipyleaflet import ImageOverlay

    layer = ImageOverlay(url=_png_data_url(rgba), bounds=bounds, name=name, opacity=opacity)
    layer.ltlib_rgba = rgba  # kept for snapshot()
    m.add(layer)
    return layer


def add_legend(m, layer, title: str, items: dict):
    """Give ``layer`` a class legend ({label: "#rrggbb"}) in the map's legend panel, shown while
    the layer is visible; returns the entry."""
    entry = map_controls.LegendEntry(layer, title, items=dict(items))
    m.ltlib_legends.append(entry)
    return entry


def add_continuous(m, data, grid: Grid, name: str, *, cmap="viridis", vmin=None, vmax=None, label="",
                   opacity=0.9, colorbar=True, path=None, band=None):
    """Add an (H, W) continuous raster (NaN transparent) with a colorbar; returns the layer.

    ``data`` numpy or dask. A lazy raster, or one over ``config.MAX_OVERLAY_PX`` px a side, is
    shown as its overview (NaN-aware block means; the default colour range is then the 2-98th
    percentile of the overview) with a full-resolution detail layer for close views
    (``layer.ltlib_detail``). ``path`` and ``band`` (1-based): the GeoTIFF ``data`` was read
    from unchanged, whose internal overviews are then read instead of reducing ``data``.
    """
    data = _check_2d(data, grid)
    reduced = _ov.needs_overview(data) or path is not None
    small, sgrid = _ov.overview(data, grid, path=path, band=band) if reduced else (data, grid)
    ll, bounds = _to_lonlat(small, sgrid, categorical=False)
    _, vmin, vmax = continuous_rgba(small, cmap=cmap, vmin=vmin, vmax=vmax)
    rgba, _, _ = continuous_rgba(ll, cmap=cmap, vmin=vmin, vmax=vmax)
    layer = _add_overlay(m, rgba, bounds, name, opacity)
    if sgrid.shape != grid.shape:  # a coarser overview: full resolution when zoomed in
        from .map_detail import DetailLayer

        layer.ltlib_detail = DetailLayer(m, layer, data, grid, categorical=False,
                                         colorize=lambda a: continuous_rgba(a, cmap=cmap, vmin=vmin, vmax=vmax)[0])
    if colorbar:
        m.ltlib_legends.append(map_controls.LegendEntry(layer, name, label=label, cmap=cmap, vmin=vmin, vmax=vmax))
    return layer


def add_categorical(m, data, grid: Grid, name: str, *, names: dict, colors: dict, opacity=0.9, legend=True):
    """Add an integer (H, W) class raster with a legend ({value: name}, {value: colour}).

    ``data`` numpy or dask. A lazy raster, or one over ``config.MAX_OVERLAY_PX`` px a side, is
    shown as its overview (the pixel nearest each block's centre) with a full-resolution detail
    layer for close views (``layer.ltlib_detail``); the classes of every pixel are checked in
    the same pass that reads the blocks for the overview.
    """
    data = _check_2d(data, grid)
    reduced = _ov.needs_overview(data)
    if reduced:
        small, sgrid = _ov.lazy_overview(data, grid, categorical=True)
        values = data.ravel()
        if _ov.is_lazy(data):
            import dask.array as da

            values = da.unique(data[da.isfinite(data)]) if data.dtype.kind == "f" else da.unique(data)
        small, values = _ov._compute(small, values)  # one read of every block for both
        small = np.asarray(small)
    else:
        small, sgrid, values = data, grid, data
    values = np.asarray(values)
    missing = {int(v) for v in np.unique(values[np.isfinite(values)])} - {int(k) for k in colors}
    if missing:
        raise ValueError(f"layer {name!r} has values {sorted(missing)} with no colour")
    ll, bounds = _to_lonlat(small.astype(np.float32), sgrid, categorical=True)
    rgba = categorical_rgba(ll, colors)
    layer = _add_overlay(m, rgba, bounds, name, opacity)
    if sgrid.shape != grid.shape:  # a coarser overview: full resolution when zoomed in
        from .map_detail import DetailLayer

        layer.ltlib_detail = DetailLayer(m, layer, data, grid, categorical=True,
                                         colorize=lambda a: categorical_rgba(a, colors))
    if legend:
        add_legend(m, layer, name, {f"{k} {names.get(k, '')}".strip(): colors[k] for k in colors})
    return layer


def add_rgb(m, rgb, grid: Grid, name: str, *, opacity=0.9):
    """Add an (H, W, 3) colour composite with channels in 0..1; NaN in any channel is transparent."""
    if not _ov.is_lazy(rgb):
        rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"an RGB layer must be (H, W, 3), got shape {rgb.shape}")
    _check_2d(rgb[..., 0], grid)
    if _ov.needs_overview(rgb[..., 0]):  # the pixel nearest each block's centre, as the reprojection
        small, grid = _ov.overview(rgb.transpose(2, 0, 1), grid, categorical=True)
        rgb = np.moveaxis(small, 0, -1).astype(np.float32)
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
    """Add the layer panel (top right) and the legend panel (bottom right); call once after
    adding the layers. Returns the map."""
    from ipyleaflet import ImageOverlay, WidgetControl

    # a layer's full-resolution detail (ltlib.map_detail) follows its layer: not a panel entry
    overlays = [la for la in m.layers if isinstance(la, ImageOverlay) and not hasattr(la, "ltlib_detail_of")]
    m.add(WidgetControl(widget=map_controls.layer_panel(overlays, m.ltlib_basemaps), position="topright"))
    if m.ltlib_legends:
        order = {id(la): i for i, la in enumerate(m.layers)}
        entries = sorted(m.ltlib_legends, key=lambda e: -order.get(id(e.layer), -1))  # top layer first
        m.add(WidgetControl(widget=map_controls.legend_panel(entries), position="bottomright"))
    return m


def show(m, static=None):
    """Display the map with its pixel inspector's output below it (when it has one) and, when
    ``static`` (a PNG file, e.g. the saved :func:`snapshot`) is given, that image below: the view
    an HTML render of the notebook shows, where widgets are blank. Returns None (it displays)."""
    import ipywidgets as w
    from IPython.display import Image, display

    view = m if m.inspector is None else w.VBox([m, m.inspector.out])
    display(view)
    if static is not None:
        display(Image(filename=str(static)))


def snapshot(m, *, title: str | None = None, width_in: float = 7.0):
    """A matplotlib figure of the map's visible overlays (bottom to top, lon/lat axes) and the
    legends of the visible layers: the static view of an interactive map, for HTML renders
    and reports (save it, then :func:`show` the map with it). ``title``: default the top visible
    layer's legend title or name."""
    from ipyleaflet import ImageOverlay
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    shown = [la for la in m.layers if isinstance(la, ImageOverlay) and la.visible and hasattr(la, "ltlib_rgba")]
    entries = [e for e in m.ltlib_legends if e.layer.visible]
    bars = [e for e in entries if e.cmap is not None]
    # a Figure outside pyplot: the notebook shows it once, through show(), not again at the cell's end
    fig = Figure(figsize=(width_in, width_in * 0.7 + 0.45 * len(bars)), layout="constrained")
    FigureCanvasAgg(fig)
    classes = [e for e in entries if e.cmap is None]
    if classes:  # a column for the class legends
        ax, lax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.25]})
        lax.axis("off")
    else:
        ax = fig.subplots()
    ax.set_facecolor("0.85")  # the grey of an offline map
    for la in shown:
        (s, w), (n, e) = la.bounds
        ax.imshow(la.ltlib_rgba, extent=(w, e, s, n), alpha=la.opacity, interpolation="nearest")
    if shown:
        ax.set_aspect(1 / np.cos(np.radians((s + n) / 2)))
    ax.ticklabel_format(useOffset=False)
    ax.locator_params(axis="x", nbins=4)
    ax.set_xlabel("Longitude (degrees)")
    ax.set_ylabel("Latitude (degrees)")
    if title is None:
        top = [e.title for e in entries if shown and e.layer is shown[-1]]
        title = top[0] if top else shown[-1].name if shown else "(no layer visible)"
    ax.set_title(title, fontsize=10)
    for e in bars:
        sm = ScalarMappable(norm=Normalize(e.vmin, e.vmax), cmap=e.cmap)
        cb = fig.colorbar(sm, ax=ax, orientation="horizontal", fraction=0.04, pad=0.02, aspect=30)
        cb.set_label(f"{e.title}: {e.label}" if e.label else e.title, fontsize=8)
    top = 1.0
    for e in reversed(classes):  # top layer's legend first
        handles = [Patch(color=c, label=textwrap.fill(k, 26)) for k, c in e.items.items()]  # fit the column
        lax.add_artist(lax.legend(handles=handles, title=e.title, loc="upper left", bbox_to_anchor=(0, top),
                                  fontsize=7, title_fontsize=8, frameon=False, alignment="left"))
        top -= 0.05 * (sum(h.get_label().count("\n") + 1 for h in handles) + 1.6)
    return fig


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
    """Draw an (H, W) raster in map coordinates with a colorbar; returns the image. A lazy or
    large raster is drawn as its overview (:func:`ltlib.overview.overview`)."""
    data = _check_2d(data, grid)
    if _ov.needs_overview(data):
        data, grid = _ov.overview(data, grid)
    if vmin is None or vmax is None:
        _, lo, hi = continuous_rgba(data, vmin=vmin, vmax=vmax)
        vmin, vmax = lo, hi
    im = ax.imshow(data, extent=_extent_km(grid), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, label=label, shrink=0.8)
    _label_axes(ax, grid, title)
    return im


def plot_categorical(ax, data, grid: Grid, *, names: dict, colors: dict, title="", legend_loc="lower left"):
    """Draw an integer (H, W) class raster with a legend; returns the image. A lazy or large
    raster is drawn as its overview (the pixel nearest each block's centre); the
    legend lists the classes of the overview."""
    from matplotlib.patches import Patch

    data = _check_2d(data, grid)
    if _ov.needs_overview(data):
        data, grid = _ov.overview(data, grid, categorical=True)
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
    (displayed on the map as a control, bottom left).

    A lazy or large stack is read once: the overview of every year (NaN-aware block means, the
    side reduced until the float32 (T, h, w) fits ``config.SLIDER_MAX_BYTES``) is computed in one
    pass and kept, so moving the slider reads nothing; the colour range is then that of the
    overview, and a detail layer (``layer.ltlib_detail``) shows the visible window of the
    slider's year at full resolution when zoomed in.
    """
    import math

    import ipywidgets as widgets
    from ipyleaflet import WidgetControl

    years = [int(y) for y in stack.years]
    data, grid = stack.data, stack.grid
    lazy = _ov.needs_overview(data)
    if lazy:  # each chunk holds every year: one pass for all years costs what one year would
        side = min(config.MAX_OVERLAY_PX, int(math.sqrt(config.SLIDER_MAX_BYTES / (4 * len(years)))))
        data, grid = _ov.overview(data, grid, side)
    if vmin is None or vmax is None:
        lo, hi = np.nanpercentile(data, [2, 98])
        vmin = float(lo) if vmin is None else vmin
        vmax = float(hi) if vmax is None else vmax
    year = years[len(years) // 2] if year is None else int(year)

    def band(y):
        return data[years.index(int(y))] if lazy else stack.band(y)

    if lazy and year not in years:
        stack.band(year)  # its KeyError names the stack and its years
    layer = add_continuous(m, band(year), grid, name, cmap=cmap, vmin=vmin, vmax=vmax,
                           label=label or name)
    slider = widgets.SelectionSlider(options=years, value=year, description="Year",
                                     continuous_update=False, layout=widgets.Layout(width="320px"))
    if lazy:
        from .map_detail import DetailLayer

        layer.ltlib_detail = DetailLayer(m, layer, lambda: stack.band(slider.value), stack.grid, categorical=False,
                                         colorize=lambda a: continuous_rgba(a, cmap=cmap, vmin=vmin, vmax=vmax)[0])

    def _update(change):
        ll, _ = _to_lonlat(band(change["new"]), grid, categorical=False)
        rgba, _, _ = continuous_rgba(ll, cmap=cmap, vmin=vmin, vmax=vmax)
        layer.url = _png_data_url(rgba)
        layer.ltlib_rgba = rgba
        entry.retitle(f"{name}: {change['new']}")
        if lazy:
            layer.ltlib_detail.refresh()

    entry = next(e for e in m.ltlib_legends if e.layer is layer)
    entry.retitle(f"{name}: {year}")
    slider.observe(_update, names="value")
    m.add(WidgetControl(widget=slider, position="bottomleft"))
    return slider


def _truth_layer(m, truth_class, grid):
    """The truth classes as a hidden layer with its legend (shown when switched on)."""
    from . import config

    truth_class = truth_class.astype(np.float32) if _ov.is_lazy(truth_class) else np.asarray(truth_class, np.float32)
    layer = add_categorical(m, truth_class, grid, "Truth trajectory class",
                            names=config.CLASS_NAMES, colors=config.CLASS_COLORS)
    layer.visible = False
    return layer


def _truth_value(truth_class):
    from . import config

    if truth_class is None:
        return {}
    return {"truth class": (truth_class if _ov.is_lazy(truth_class) else np.asarray(truth_class), config.CLASS_NAMES)}


def stack_map(scene, index: str, *, year=None, cmap: str = "YlGn", basemaps=None):
    """A map of one index of a :class:`~ltlib.scene.Scene` with a year slider and an inspector.

    The scene's truth classes, when it has them, are a layer *below* the index and hidden
    at first (switch them on in the layer panel), so the layer the slider changes is the
    one on view. A click plots the pixel's series (and says its truth class). Returns the
    finished map (``m.slider`` is the year slider, ``m.inspector`` the inspector).
    """
    from .inspector import Inspector, stack_unit

    stack = scene.stack(index)
    m = make_map(stack.grid, basemaps=basemaps)
    truth = scene.truth["class"] if scene.truth is not None else None
    if truth is not None:
        _truth_layer(m, truth, scene.truth["grid"])
    m.slider = add_year_slider(m, stack, str(stack.name), cmap=cmap, year=year, label=stack_unit(stack))
    Inspector(stack.grid, {str(stack.name): stack}, values=_truth_value(truth)).attach(m)
    return finish(m)


def landtrendr_map(run, source=None, *, start_year=None, end_year=None, basemaps=None):
    """A map of a :class:`~ltlib.landtrendr.run.LandTrendrRun`: loss year and magnitude, gain year.

    The loss year of detection is on top and on view (the layer the notebook discusses); the
    magnitude and the gain year are below, hidden at first; each has its own colour bar, shown
    while the layer is. With ``source`` (the stack of ``run.index``) a click plots the pixel's
    source values, LandTrendr fit and vertices. Returns the finished map.
    """
    from .inspector import Inspector

    y0 = int(run.years[0]) if start_year is None else start_year
    y1 = int(run.years[-1]) if end_year is None else end_year
    m = make_map(run.grid, basemaps=basemaps)
    gain = add_continuous(m, run.gain["yod"], run.grid, "Gain: year of detection", cmap="viridis", vmin=y0,
                          vmax=y1, label="year of the greatest gain")
    mag = add_continuous(m, run.loss["mag"], run.grid, "Loss: magnitude", cmap="magma_r",
                         label=f"{run.index} x 1000 lost")
    gain.visible = mag.visible = False
    add_continuous(m, run.loss["yod"], run.grid, "Loss: year of detection", cmap="plasma", vmin=y0, vmax=y1,
                   label="year of the greatest loss")
    if source is not None:
        vertices = run.result.is_vertex if run.result is not None else None
        values = {"loss year": (run.loss["yod"], None), "loss magnitude": (run.loss["mag"], None),
                  "gain year": (run.gain["yod"], None)}
        Inspector(run.grid, {run.index: source}, fits={run.index: run.fitted[run.index]}, vertices=vertices,
                  values=values).attach(m)
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


def add_sar_composite(m, result, grid: Grid, name: str = "cmap/smap/fmap composite", *, opacity=0.9):
    """Add the seed's false-colour composite (R = cmap, G = smap, B = fmap) to a geemap map,
    with a legend; unchanged and no-data pixels are transparent. ``result`` is a
    :class:`ltlib.sar.OmnibusResult` on ``grid``. Returns the layer."""
    from .sar import composite

    if result.cmap.shape != grid.shape:
        raise ValueError(f"result maps {result.cmap.shape} do not match grid {grid.shape}")
    fm = max(result.max_changes(), 1)
    rgb = composite(result.cmap, result.smap, result.fmap, result.k, fmax=fm)
    shown = (result.valid & (result.fmap > 0))[..., None]
    layer = add_rgb(m, np.where(shown, rgb, np.nan), grid, name, opacity=opacity)  # dask stays lazy
    add_legend(m, layer, name, {
        f"red: interval of the last change (cmap, 1..{result.k - 1})": "#ff0000",
        f"green: interval of the first change (smap, 1..{result.k - 1})": "#00ff00",
        f"blue: number of changes (fmap, 1..{fm})": "#0000ff",
        "yellow: one change (cmap = smap), brighter = later": "#ffff00",
    })
    return layer


def fmap_colors(fmax: int) -> dict:
    """{n changes: "#rrggbb"} for 1..fmax (plasma)."""
    import matplotlib

    cols = matplotlib.colormaps["plasma"].resampled(fmax + 1)(np.arange(fmax))
    return {n + 1: "#%02x%02x%02x" % tuple(int(255 * c) for c in cols[n][:3]) for n in range(fmax)}


def sar_change_map(result, grid: Grid, dates, *, basemaps=None):
    """A map of the omnibus change maps (:class:`ltlib.sar.OmnibusResult` on ``grid``; ``dates``
    the K image dates): the seed's composite (R = cmap, G = smap, B = fmap) on top and on view,
    and the single maps smap, cmap and fmap below it, hidden at first, each with its own colour
    map and colour bar or legend (shown while the layer is). Unchanged pixels are transparent.
    Returns the finished map."""
    k = result.k
    last = len(dates) - 1
    m = make_map(grid, basemaps=basemaps)
    for name, what, cmap in (("smap", "first", "cividis"), ("cmap", "last", "plasma")):
        a = getattr(result, name)
        layer = add_continuous(m, np.where(result.valid & (a > 0), a, np.nan).astype(float), grid,
                               f"{name}: {what} change", cmap=cmap, vmin=1, vmax=max(k - 1, 2),
                               label=f"interval of the {what} change (1 = {dates[0]}..{dates[1]}, "
                                     f"{last} = ..{dates[-1]})")
        layer.visible = False
    colors = fmap_colors(max(result.max_changes(), 1))  # streamed for a block-by-block run
    layer = add_categorical(m, np.where(result.valid & (result.fmap > 0), result.fmap, np.nan), grid,
                            "fmap: number of changes", names={n: f"change{'s' if n > 1 else ''}" for n in colors},
                            colors=colors)
    layer.visible = False
    add_sar_composite(m, result, grid)
    return finish(m)


def cluster_map(runs, truth=None, trajectories=None, *, basemaps=None):
    """A map of :class:`ltlib.cluster.ClusterRun` label images, one layer each with its legend.

    The last run is on top and on view, the others below it and hidden at first; the scene's
    truth classes (``scene.truth``), when given, are a hidden layer below the clusters (switch
    them on in the layer panel). Label -1 (no data) is transparent; label k (flat pixels, set
    aside) is black. With ``trajectories`` (:class:`ltlib.cluster.Trajectories`) a click plots
    the pixel's series of the clustered indices and says its cluster in each run. Returns the
    finished map. A lazy run's labels stay lazy (overview and detail layer); its legend lists
    the labels its streamed :meth:`~ltlib.cluster.ClusterRun.cluster_sizes` counted.
    """
    from .inspector import Inspector

    runs = [r for r in runs if r is not None]
    if not runs:
        raise ValueError("cluster_map needs at least one ClusterRun")
    m = make_map(runs[0].grid, basemaps=basemaps)
    if truth is not None:
        _truth_layer(m, truth["class"], truth["grid"])
    values = {}
    for i, run in enumerate(runs):
        img = run.label_image()
        names, colors = run.legend()
        present = {int(v) for v in np.flatnonzero(run.cluster_sizes())}  # streamed for a lazy run
        shown = np.where(img >= 0, img, np.nan)  # a dask label image stays lazy
        layer = add_categorical(m, shown, run.grid, f"k-Shape {run.title}",
                                names={v: names[v] for v in present}, colors={v: colors[v] for v in present})
        layer.visible = i == len(runs) - 1
        values[f"cluster ({run.title})"] = (shown, names)
    if trajectories is not None:
        indices = list(dict.fromkeys(ix for run in runs for ix in run.indices))
        values.update(_truth_value(None if truth is None else truth["class"]))
        Inspector(runs[0].grid, {ix: trajectories.stacks[ix] for ix in indices}, values=values).attach(m)
    return finish(m)


def trajectory_class_map(class_map, grid: Grid, *, name: str = "Trajectory class", truth=None, series=None,
                         basemaps=None):
    """A map of a trajectory class map (uint8 (H, W), 255 = unclassified, transparent) with its
    legend; truth classes (H, W), when given, are a hidden layer below it (switch it on in the
    layer panel). With ``series`` (the classified :class:`~ltlib.io.Stack`) a click plots the
    pixel's series and says its class (and truth class). Returns the finished map."""
    from . import config
    from .inspector import Inspector

    names, colors = config.CLASS_NAMES, config.CLASS_COLORS
    m = make_map(grid, basemaps=basemaps)
    if truth is not None:
        _truth_layer(m, truth, grid)
    if not _ov.is_lazy(class_map):
        class_map = np.asarray(class_map)
    shown = np.where(class_map == 255, np.nan, class_map).astype(np.float32)  # dask stays lazy
    add_categorical(m, shown, grid, name, names=names, colors=colors)
    if series is not None:
        Inspector(grid, {str(series.name): series}, values={"class": (shown, names), **_truth_value(truth)}).attach(m)
    return finish(m)

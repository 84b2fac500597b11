"""Full resolution where the user zooms in, without a tile server.

A large or lazy raster is on the map as its overview (:mod:`ltlib.overview`); a
:class:`DetailLayer` sits just above it and listens to the map's view (ipyleaflet's ``bounds``,
which change on every zoom and pan). When the view covers fewer than ``max_px`` raster pixels
a side (``config.MAX_OVERLAY_PX``), it reads only that window of the raster (for a dask array,
only the chunks the window touches), colours it as the overview is coloured and shows it as an
``ImageOverlay`` over the window; zoomed out further it hides, and the overview shows. It
follows its layer's visibility and opacity and is not listed in the layer panel.

The rendering runs in the kernel on each view change (no tile server: localtileserver is not
needed and the browser needs no other service).
"""
from __future__ import annotations

import math

import numpy as np

from . import overview as _ov
from .io import Grid

#: A fully transparent 1 x 1 PNG: the detail overlay's picture while it has no window.
_EMPTY = np.zeros((1, 1, 4), np.uint8)


def view_window(grid: Grid, bounds):
    """The pixel window (row0, row1, col0, col1) of ``grid`` that a map view covers, clipped to
    the grid, or None when the view misses it.

    ``bounds``: ipyleaflet's ``((south, west), (north, east))`` in degrees. The window holds
    every pixel any part of the view touches (rows row0..row1 - 1).
    """
    from rasterio.warp import transform_bounds
    from rasterio.windows import from_bounds

    (south, west), (north, east) = bounds
    left, bottom, right, top = transform_bounds("EPSG:4326", grid.crs, west, south, east, north, densify_pts=21)
    win = from_bounds(left, bottom, right, top, grid.transform)
    r0 = max(0, math.floor(win.row_off))
    c0 = max(0, math.floor(win.col_off))
    r1 = min(grid.height, math.ceil(win.row_off + win.height))
    c1 = min(grid.width, math.ceil(win.col_off + win.width))
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, r1, c0, c1


def window_grid(grid: Grid, window) -> Grid:
    """The Grid of ``window`` (row0, row1, col0, col1) of ``grid``."""
    from affine import Affine

    r0, r1, c0, c1 = window
    return Grid(grid.crs, grid.transform * Affine.translation(c0, r0), r1 - r0, c1 - c0)


class DetailLayer:
    """The full-resolution view of the visible window of one map layer.

    Parameters
    ----------
    m : ipyleaflet / geemap Map
    base : ipyleaflet.ImageOverlay
        The layer showing the raster's overview; the detail layer goes just above it and
        follows its ``visible`` and ``opacity``.
    source : numpy or dask array (H, W), or a callable returning one
        The raster at full resolution (a callable for a layer whose raster changes, e.g. the
        year of a slider; call :meth:`refresh` after a change).
    grid : Grid
        The raster's grid.
    colorize : callable
        float32 (h, w) array in lon/lat -> rgba uint8 (h, w, 4), the overview's colouring.
    categorical : bool
        Nearest-neighbour reprojection (classes) instead of bilinear.
    max_px : int, optional
        Largest window side (px) drawn at full resolution; default ``config.MAX_OVERLAY_PX``.

    Attributes
    ----------
    overlay : ipyleaflet.ImageOverlay
        The detail picture (``overlay.ltlib_detail_of`` is ``base``).
    window : (row0, row1, col0, col1) or None
        The window drawn, None while hidden.
    rgba : uint8 (h, w, 4) or None
        The picture drawn (lon/lat grid of the window).
    """

    def __init__(self, m, base, source, grid: Grid, *, colorize, categorical: bool, max_px=None):
        from ipyleaflet import ImageOverlay

        from .map_images import _png_data_url

        self.map, self.base, self.grid = m, base, grid
        self._source = source
        self.colorize = colorize
        self.categorical = bool(categorical)
        self.max_px = _ov._max_px(max_px)
        self.window = None
        self.rgba = None
        self.overlay = ImageOverlay(url=_png_data_url(_EMPTY), bounds=base.bounds, name=f"{base.name} (detail)",
                                    opacity=base.opacity, visible=False)
        self.overlay.ltlib_detail_of = base
        m.add(self.overlay)
        m.observe(self._on_view, names="bounds")
        base.observe(self._on_base, names=["visible", "opacity"])
        if getattr(m, "bounds", None):
            self._on_view({"new": m.bounds})

    def source(self):
        """The (H, W) raster drawn now."""
        return self._source() if callable(self._source) else self._source

    def _on_base(self, change):
        if change["name"] == "opacity":
            self.overlay.opacity = change["new"]
        else:
            self.overlay.visible = bool(change["new"]) and self.window is not None

    def _on_view(self, change):
        bounds = change["new"]
        if not bounds:
            return
        win = view_window(self.grid, bounds)
        if win is not None and max(win[1] - win[0], win[3] - win[2]) > self.max_px:
            win = None  # zoomed out: the overview is as detailed as the screen
        if win != self.window:
            self.show(win)

    def refresh(self):
        """Redraw the current window (after the source changed)."""
        self.show(self.window)

    def show(self, window):
        """Draw ``window`` (row0, row1, col0, col1) at full resolution, or hide with None."""
        from .map_images import _png_data_url, _to_lonlat

        self.window = window
        if window is None:
            self.overlay.visible = False
            self.rgba = None
            return
        r0, r1, c0, c1 = window
        data = self.source()[r0:r1, c0:c1]  # a dask array reads only the chunks of the window
        data = np.asarray(_ov._compute(data)[0], dtype=np.float32)
        ll, bounds = _to_lonlat(data, window_grid(self.grid, window), categorical=self.categorical)
        self.rgba = self.colorize(ll)
        self.overlay.url = _png_data_url(self.rgba)
        self.overlay.bounds = bounds
        self.overlay.visible = bool(self.base.visible)

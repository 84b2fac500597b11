"""Click a pixel on an ltlib map to plot its trajectory (the Earth Engine inspector, locally).

An :class:`Inspector` holds what can be said about each pixel of one grid: annual series
(source values), LandTrendr fits and vertices where there are any, and per-pixel values
such as a cluster, a class or a year of detection. :meth:`Inspector.attach` listens to
clicks on a map: a click's latitude and longitude become the pixel's row and column on the
grid, and the inspector's ``out`` (an ``ipywidgets.Output`` with DOM class
``ltlib-inspector``) shows a line with row, column, longitude, latitude and the pixel's
values, and a PNG figure of its series. Other widgets (the LandTrendr panel) follow the
clicked pixel through :attr:`Inspector.listeners`.

Every array may be lazy (dask, a scene opened block by block): a click reads only the
clicked pixel (:func:`ltlib.overview.pixel_series`, one chunk), never the whole array.
"""
from __future__ import annotations

import base64
import io as _io

import numpy as np

from .io import Grid
from .overview import pixel_series, pixel_value

HINT = "Click a pixel on the map to plot its trajectory here."


def stack_unit(stack) -> str:
    """The unit of a stack's stored values: "NDVI x 1000", or the name when stored as is."""
    return f"{stack.name} x {1 / stack.scale:g}" if stack.scale != 1 else str(stack.name)


def rowcol(grid: Grid, lat: float, lon: float) -> tuple[int, int] | None:
    """The (row, col) of the pixel of ``grid`` containing the point (degrees, EPSG:4326), or
    None when the point is outside the grid."""
    from rasterio.warp import transform

    xs, ys = transform("EPSG:4326", grid.crs, [float(lon)], [float(lat)])
    col, row = ~grid.transform @ (xs[0], ys[0])
    r, c = int(np.floor(row)), int(np.floor(col))
    if 0 <= r < grid.height and 0 <= c < grid.width:
        return r, c
    return None


def lonlat(grid: Grid, row: int, col: int) -> tuple[float, float]:
    """(lon, lat) in degrees of the centre of pixel (row, col)."""
    from rasterio.warp import transform

    x, y = grid.transform @ (col + 0.5, row + 0.5)
    lons, lats = transform(grid.crs, "EPSG:4326", [x], [y])
    return float(lons[0]), float(lats[0])


def _figure_png(fig, dpi=80) -> bytes:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class Inspector:
    """What a click on a map of ``grid`` shows.

    Parameters
    ----------
    grid : Grid
        The grid every array below is on.
    series : {name: ltlib.io.Stack}
        Annual stacks on ``grid`` plotted as points (source values, stored units).
    fits : {name: float (T, H, W)}, optional
        Fitted trajectories on the years of ``series[name]`` (LandTrendr), plotted as lines.
    vertices : bool (T, H, W), optional
        LandTrendr vertices of the first fit, plotted as squares.
    values : {name: (array (H, W), {value: label} or None)}, optional
        Per-pixel values said in the text line and the title (a cluster, a class, a year).
    """

    def __init__(self, grid: Grid, series: dict, *, fits: dict | None = None, vertices=None,
                 values: dict | None = None):
        import ipywidgets as w

        if not series:
            raise ValueError("Inspector needs at least one series (name: Stack)")
        self.grid = grid
        self.series = dict(series)
        self.fits = dict(fits or {})
        self.vertices = vertices
        self.values = dict(values or {})
        for name, stack in self.series.items():
            if stack.grid.shape != grid.shape:
                raise ValueError(f"series {name!r} is on a {stack.grid.shape} grid, the map's is {grid.shape}")
        for name, fit in self.fits.items():
            if name not in self.series or np.shape(fit) != self.series[name].shape:
                raise ValueError(f"fit {name!r} must have the shape of series {name!r} (T, H, W)")
        for name, (arr, _) in self.values.items():
            if np.shape(arr) != grid.shape:
                raise ValueError(f"value {name!r} has shape {np.shape(arr)}, the grid {grid.shape}")
        self.listeners = []
        self.selected = None
        self.map = None
        self._marker = None
        self.out = w.Output(layout=w.Layout(min_height="40px"))
        self.out.add_class("ltlib-inspector")
        self.out.outputs = ({"output_type": "stream", "name": "stdout", "text": HINT + "\n"},)

    # -- what a pixel is
    def text(self, row: int, col: int) -> str:
        """One line: row, col, lon, lat and the pixel's values."""
        lon, lat = lonlat(self.grid, row, col)
        parts = [f"row {row}, col {col} (lon {lon:.5f}, lat {lat:.5f})"]
        for name, (arr, names) in self.values.items():
            v = pixel_value(arr, row, col)
            if not np.isfinite(v):
                parts.append(f"{name}: none")
            elif names is not None:
                parts.append(f"{name}: {int(v)} {names.get(int(v), '')}".rstrip())
            else:
                parts.append(f"{name}: {float(v):g}")
        return "; ".join(parts)

    def figure(self, row: int, col: int):
        """A matplotlib Figure (no pyplot state) of the pixel's series, fits and vertices."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 3.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        colors = ["tab:green", "tab:blue", "tab:purple", "tab:orange", "tab:brown"]
        for i, (name, stack) in enumerate(self.series.items()):
            c = colors[i % len(colors)]
            y = pixel_series(stack, row, col)
            ax.plot(stack.years, y, "o", ms=3.5, color=c, alpha=0.7, label=f"{name} source")
            if name in self.fits:
                fit = pixel_series(self.fits[name], row, col)
                ax.plot(stack.years, fit, "-", color=c, lw=1.8, label=f"{name} LandTrendr fit")
                if self.vertices is not None and i == 0:
                    isv = pixel_series(self.vertices, row, col).astype(bool)
                    ax.plot(stack.years[isv], fit[isv], "s", ms=6, mfc="none", mec="k",
                            label=f"{int(isv.sum())} vertices")
        first = next(iter(self.series.values()))
        units = {stack_unit(s) for s in self.series.values()}
        ax.set_xlabel("Year")
        ax.set_ylabel(units.pop() if len(units) == 1 else "index x 1000")
        vals = self.text(row, col).split("; ", 1)
        ax.set_title(f"Pixel row {row}, col {col}" + (f": {vals[1]}" if len(vals) > 1 else ""), fontsize=9)
        ax.set_xlim(first.years[0] - 1, first.years[-1] + 1)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=7, ncol=2)
        fig.tight_layout()
        return fig

    # -- clicks
    def select(self, row: int, col: int):
        """Show pixel (row, col) in ``out``, mark it on the map and tell the listeners."""
        line = self.text(row, col)
        png = base64.b64encode(_figure_png(self.figure(row, col))).decode()
        self.out.outputs = (
            {"output_type": "stream", "name": "stdout", "text": line + "\n"},
            {"output_type": "display_data", "metadata": {},
             "data": {"image/png": png, "text/plain": f"<trajectory of pixel ({row}, {col})>"}},
        )
        self.selected = (row, col)
        self._mark(row, col)
        for listener in self.listeners:
            listener(row, col)
        return line

    def handle(self, **event):
        """ipyleaflet interaction handler: a ``click`` at ``coordinates`` (lat, lon) selects
        its pixel; a click outside the grid says so. Returns (row, col) or None."""
        if event.get("type") != "click":
            return None
        lat, lon = event["coordinates"]
        rc = rowcol(self.grid, lat, lon)
        if rc is None:
            self.out.outputs = ({"output_type": "stream", "name": "stdout",
                                 "text": f"lon {lon:.5f}, lat {lat:.5f} is outside the scene. {HINT}\n"},)
            return None
        self.select(*rc)
        return rc

    def attach(self, m):
        """Listen to clicks on map ``m`` (``m.inspector`` is this inspector); returns ``m``."""
        m.on_interaction(self.handle)
        m.inspector = self
        self.map = m
        return m

    def _mark(self, row, col):
        if self.map is None:
            return
        from ipyleaflet import CircleMarker

        lon, lat = lonlat(self.grid, row, col)
        if self._marker is None:
            self._marker = CircleMarker(location=(lat, lon), radius=7, color="#ff00ff", weight=2,
                                        fill_opacity=0, name="Inspected pixel")
            self.map.add(self._marker)
        else:
            self._marker.location = (lat, lon)

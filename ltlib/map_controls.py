"""The controls of ltlib's maps: a layer panel, a legend panel tied to layer visibility, basemaps.

geemap's legends and colour bars are separate widgets in the map's corners; they stay on
screen when their layer is switched off and pile up over the layer control. Here every
legend or colour bar is an entry of one collapsible panel (bottom right, where no control
is), shown only while its layer is visible, and the layers are switched on and off in an
ipywidgets panel (top right) that sets each layer's ``visible`` trait, so the Python side
knows what is on view (Leaflet's own layer control hides layers in the browser only).

DOM classes, for browser tests and styling: ``ltlib-map`` (the map), ``ltlib-layers`` (the
layer panel; its button ``ltlib-layers-toggle`` opens it), ``ltlib-legend`` (the legend
panel; its button ``ltlib-legend-toggle`` collapses it).
"""
from __future__ import annotations

import functools
import io as _io
import socket
from dataclasses import dataclass, field

#: Basemaps offered when the tile servers can be reached: (name, xyzservices provider path).
BASEMAPS = (("Satellite (Esri World Imagery)", "Esri.WorldImagery"), ("OpenStreetMap", "OpenStreetMap.Mapnik"))
NO_BASEMAP = "None (grey)"


@functools.lru_cache(maxsize=1)
def tiles_reachable(host: str = "tile.openstreetmap.org", timeout: float = 1.5) -> bool:
    """Whether this machine reaches the tile server (once per session; a failed DNS lookup is fast)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def basemap_layers():
    """TileLayers (``base=True``) for :data:`BASEMAPS`, the first one visible."""
    import xyzservices.providers as providers
    from ipyleaflet import TileLayer

    layers = []
    for i, (name, path) in enumerate(BASEMAPS):
        p = functools.reduce(getattr, path.split("."), providers)
        layers.append(TileLayer(url=p.build_url(), name=name, base=True, attribution=p.get("attribution", ""),
                                max_zoom=int(p.get("max_zoom", 19)), visible=i == 0))
    return layers


def colorbar_png(cmap: str, vmin: float, vmax: float, label: str, *, width_in=2.8, dpi=100) -> bytes:
    """A horizontal colour bar with its label as PNG bytes (matplotlib, no pyplot state)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, 0.62), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.05, 0.62, 0.9, 0.3))
    norm = matplotlib.colors.Normalize(vmin=vmin, vmax=vmax)
    cb = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap), cax=ax, orientation="horizontal")
    cb.ax.tick_params(labelsize=7, length=2, pad=1)
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, transparent=True)
    return buf.getvalue()


@dataclass
class LegendEntry:
    """What one layer's legend shows: a colour bar (``cmap``, ``vmin``, ``vmax``) or classes
    (``items``: {label: "#rrggbb"}), under ``title``; ``label`` names the colour bar's quantity."""

    layer: object
    title: str
    label: str = ""
    cmap: str | None = None
    vmin: float | None = None
    vmax: float | None = None
    items: dict = field(default_factory=dict)
    _head: object = field(default=None, repr=False)

    def _head_html(self) -> str:
        return f"<b>{_esc(self.title)}</b>" + (f"<br><small>{_esc(self.label)}</small>" if self.label else "")

    def retitle(self, title: str):
        """Change the title (e.g. the year a slider shows), on the map too once it is drawn."""
        self.title = title
        if self._head is not None:
            self._head.value = self._head_html()

    def widget(self):
        import ipywidgets as w

        head = self._head = w.HTML(self._head_html())
        if self.cmap is not None:
            body = w.Image(value=colorbar_png(self.cmap, self.vmin, self.vmax, self.label), format="png",
                           layout=w.Layout(width="250px"))
        else:
            rows = "".join(f'<div><span style="display:inline-block;width:12px;height:12px;background:{c};'
                           f'border:1px solid #555;margin-right:4px"></span>{_esc(k)}</div>'
                           for k, c in self.items.items())
            body = w.HTML(f'<div style="font-size:11px;line-height:15px">{rows}</div>')
        box = w.VBox([head, body], layout=w.Layout(margin="2px 0 4px 0"))
        _show_while_visible(box, self.layer)
        return box


def _esc(text) -> str:
    import html

    return html.escape(str(text))


def _show_while_visible(box, layer):
    """Hide ``box`` whenever ``layer.visible`` is False (now and on every change)."""
    def sync(*_):
        box.layout.display = None if layer.visible else "none"

    layer.observe(sync, names="visible")
    sync()


def _collapsible(title: str, body, *, opened: bool, css: str):
    """``body`` under a button "title ▾/▸" that shows and hides it; DOM classes ``css`` and
    ``css-toggle``."""
    import ipywidgets as w

    toggle = w.ToggleButton(value=opened, tooltip=f"show or hide the {title.lower()}",
                            layout=w.Layout(width="auto", height="24px"))
    toggle.add_class(f"{css}-toggle")

    def sync(*_):
        body.layout.display = None if toggle.value else "none"
        toggle.description = f"{title} {'▾' if toggle.value else '▸'}"

    toggle.observe(sync, names="value")
    sync()
    panel = w.VBox([toggle, body])  # the WidgetControl gives it a white background
    panel.add_class(css)
    return panel


def legend_panel(entries):
    """One collapsible panel (open) with the legend of every entry, top layer first."""
    import ipywidgets as w

    body = w.VBox([e.widget() for e in entries],
                  layout=w.Layout(width="262px", max_height="260px", overflow="auto", padding="0 4px"))
    return _collapsible("Legend", body, opened=True, css="ltlib-legend")


def layer_panel(overlays, basemaps):
    """A panel (collapsed to one "Layers" button) with a checkbox per overlay, top layer first,
    each linked to the layer's ``visible``, and a choice of basemap when there are any."""
    import ipywidgets as w
    from traitlets import link

    rows = []
    for layer in reversed(overlays):
        box = w.Checkbox(value=layer.visible, description=layer.name, indent=False,
                         layout=w.Layout(width="auto"))
        link((box, "value"), (layer, "visible"))
        rows.append(box)
    if basemaps:
        names = [b.name for b in basemaps] + [NO_BASEMAP]
        first = next((b.name for b in basemaps if b.visible), NO_BASEMAP)
        radio = w.RadioButtons(options=names, value=first, description="Basemap",
                               style={"description_width": "initial"}, layout=w.Layout(width="auto"))

        def pick(change):
            for b in basemaps:
                b.visible = b.name == change["new"]

        radio.observe(pick, names="value")
        rows.append(radio)
    body = w.VBox(rows, layout=w.Layout(padding="0 6px"))
    return _collapsible("Layers", body, opened=False, css="ltlib-layers")

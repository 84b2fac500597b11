"""Interactive notebook panels (ipywidgets + matplotlib).

Functions
---------
landtrendr_panel
    Refit one pixel of a stack with LandTrendr live as its parameters change.

ipywidgets, matplotlib and the numba LandTrendr are imported inside the functions, so
importing this module costs nothing outside a notebook.
"""
from __future__ import annotations


#: Width of the parameter labels: the longest, "preventOneYearRecovery", in full.
LABEL_WIDTH = "190px"


def landtrendr_panel(stack, params=None, row: int = 0, col: int = 0, *, inspector=None):
    """An ipywidgets panel that refits one pixel of a stack live as LandTrendr parameters change.

    Parameters
    ----------
    stack : ltlib.io.Stack
        Annual (T, H, W) stack; ``stack.name`` labels the y axis and sets ``distdir``.
    params : ltlib.params.LandTrendrParams, optional
        The starting values (default: the seed's); the same object the notebook fits with.
    row, col : int
        Pixel shown first (row and column boxes in the panel choose another).
    inspector : ltlib.inspector.Inspector, optional
        A map's inspector (``m.inspector``): a click on that map refits the clicked pixel here.

    Returns
    -------
    ipywidgets.VBox
        The parameters, the pixel and the plot; display it in a notebook. ``panel.fit`` is the
        last :func:`~ltlib.landtrendr.segment` result, ``panel.controls`` the widgets by name.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from . import config
    from .inspector import stack_unit
    from .landtrendr import segment
    from .overview import pixel_series
    from .params import LandTrendrParams

    params = params or LandTrendrParams()
    info = config.INDICES.get(str(stack.name).upper())
    distdir = info.distdir if info else -1
    h, wd = stack.grid.shape
    if inspector is not None and inspector.grid.shape != stack.grid.shape:
        raise ValueError(f"the inspector's grid {inspector.grid.shape} is not the stack's {stack.grid.shape}")
    style = {"description_width": LABEL_WIDTH}  # full labels, not "maxSegm..."
    wide = w.Layout(width="430px")
    out = w.Output()
    ctl = dict(
        row=w.BoundedIntText(row, min=0, max=h - 1, description="row", style={"description_width": "40px"},
                             layout=w.Layout(width="130px")),
        col=w.BoundedIntText(col, min=0, max=wd - 1, description="col", style={"description_width": "40px"},
                             layout=w.Layout(width="130px")),
        max_segments=w.IntSlider(params.max_segments, 1, 10, description="maxSegments", style=style),
        spike_threshold=w.FloatSlider(params.spike_threshold, min=0.5, max=1.0, step=0.05,
                                      description="spikeThreshold", style=style),
        recovery_threshold=w.FloatSlider(params.recovery_threshold, min=0.05, max=1.0, step=0.05,
                                         description="recoveryThreshold", style=style),
        pval_threshold=w.FloatSlider(params.pval_threshold, min=0.01, max=0.5, step=0.01,
                                     description="pvalThreshold", style=style),
        best_model_proportion=w.FloatSlider(params.best_model_proportion, min=0.5, max=1.0, step=0.05,
                                            description="bestModelProportion", style=style),
        prevent_one_year_recovery=w.Checkbox(params.prevent_one_year_recovery,
                                             description="preventOneYearRecovery", style=style),
    )

    for name, c in ctl.items():
        if name not in ("row", "col"):
            c.layout = wide
    panel = w.VBox()
    held = []  # non-empty while a click sets row and column: one refit, not two

    def redraw(*_):
        if held:
            return
        values = {k: c.value for k, c in ctl.items()}
        r0, c0 = values.pop("row"), values.pop("col")
        p = params.replace(**values)
        y = pixel_series(stack, r0, c0)  # one pixel: a lazy stack reads one chunk
        res = panel.fit = segment(y, stack.years, distdir=distdir, **p.as_dict())
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(9, 3.5))
            ax.plot(stack.years, y, "o", ms=4, color="0.5", label="source")
            ax.plot(stack.years, res.fitted[0], "-", color="tab:red", label="fitted")
            vy, vv = res.vertices()[0]
            ax.plot(vy, vv, "s", color="tab:red", label=f"{len(vy)} vertices")
            ax.set_title(f"pixel ({r0}, {c0}): p = {res.p_value[0]:.3g}, RMSE = {res.rmse[0]:.1f}")
            ax.set_xlabel("Year")
            ax.set_ylabel(stack_unit(stack))
            ax.legend(loc="best", fontsize=8)
            plt.show()

    def follow(r, c):
        held.append(True)
        try:
            ctl["row"].value, ctl["col"].value = r, c
        finally:
            held.clear()
        redraw()

    for c in ctl.values():
        c.observe(redraw, names="value")
    redraw()
    hint = "click a pixel on the map above to refit it here, or type its" if inspector is not None else "type a"
    pixel = w.HBox([w.HTML(f"Pixel ({hint} row and column):"), ctl["row"], ctl["col"]])
    if inspector is not None:
        inspector.listeners.append(follow)
    params_ = [c for k, c in ctl.items() if k not in ("row", "col")]
    panel.children = [pixel, w.GridBox(params_, layout=w.Layout(grid_template_columns="repeat(2, 440px)")), out]
    panel.controls = ctl
    return panel

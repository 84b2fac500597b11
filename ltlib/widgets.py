"""Interactive notebook panels (ipywidgets + matplotlib).

Functions
---------
landtrendr_panel
    Refit one pixel of a stack with LandTrendr live as its parameters change.

ipywidgets, matplotlib and the numba LandTrendr are imported inside the functions, so
importing this module costs nothing outside a notebook.
"""
from __future__ import annotations


def landtrendr_panel(stack, params=None, row: int = 0, col: int = 0):
    """An ipywidgets panel that refits one pixel of a stack live as LandTrendr parameters change.

    Parameters
    ----------
    stack : ltlib.io.Stack
        Annual (T, H, W) stack; ``stack.name`` labels the y axis and sets ``distdir``.
    params : ltlib.params.LandTrendrParams, optional
        The starting values (default: the seed's); the same object the notebook fits with.
    row, col : int
        Pixel shown first (the panel has sliders for both).

    Returns
    -------
    ipywidgets.VBox
        The sliders and the plot; display it in a notebook.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    from . import config
    from .landtrendr import segment
    from .params import LandTrendrParams

    params = params or LandTrendrParams()
    info = config.INDICES.get(str(stack.name).upper())
    distdir = info.distdir if info else -1
    h, wd = stack.grid.shape
    style = {"description_width": "initial"}  # full labels, not "maxSegm..."
    out = w.Output()
    ctl = dict(
        row=w.IntSlider(row, 0, h - 1, description="row", style=style),
        col=w.IntSlider(col, 0, wd - 1, description="col", style=style),
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

    def redraw(*_):
        values = {k: c.value for k, c in ctl.items()}
        r0, c0 = values.pop("row"), values.pop("col")
        p = params.replace(**values)
        y = stack.data[:, r0, c0]
        res = segment(y, stack.years, distdir=distdir, **p.as_dict())
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(9, 3.5))
            ax.plot(stack.years, y, "o", ms=4, color="0.5", label="source")
            ax.plot(stack.years, res.fitted[0], "-", color="tab:red", label="fitted")
            vy, vv = res.vertices()[0]
            ax.plot(vy, vv, "s", color="tab:red", label=f"{len(vy)} vertices")
            ax.set_title(f"pixel ({r0}, {c0}): p = {res.p_value[0]:.3g}, RMSE = {res.rmse[0]:.1f}")
            ax.set_xlabel("Year")
            ax.set_ylabel(f"{stack.name} x {1 / stack.scale:g}" if stack.scale != 1 else stack.name)
            ax.legend(loc="best", fontsize=8)
            plt.show()

    for c in ctl.values():
        c.observe(redraw, names="value")
    redraw()
    items = list(ctl.values())
    return w.VBox([w.HBox(items[:4]), w.HBox(items[4:]), out])

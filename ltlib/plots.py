"""Figures shared by the notebooks: trajectories by class, per-year data availability, confusion
matrices, class probabilities, and the k-Shape elbow and centroids.

Stacks and maps may be lazy (dask): maps are drawn from overviews (:mod:`ltlib.overview`) and
series read pixel by pixel, so no figure computes a whole scene at full resolution.
"""
from __future__ import annotations

import numpy as np

from . import config
from . import overview as _ov


def pick_pixels_per_class(labels, n_per_class: int, *, seed: int = 0, valid=None) -> dict[int, np.ndarray]:
    """Random (row, col) pixels for each label value: {label: int array (k, 2)}, k <= n_per_class."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be an (H, W) image, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    ok = np.ones(labels.shape, bool) if valid is None else np.asarray(valid, bool)
    out = {}
    for value in np.unique(labels[ok]):
        rc = np.argwhere((labels == value) & ok)
        take = rng.choice(len(rc), size=min(n_per_class, len(rc)), replace=False)
        out[int(value)] = rc[np.sort(take)]
    return out


def plot_trajectories_by_class(stack, labels, *, n_per_class=4, seed=0, names=None, colors=None,
                               ylabel="", fitted=None, axes=None):
    """One panel per class with the series of a few random pixels of that class.

    ``stack``: :class:`~ltlib.io.Stack` (T, H, W); ``labels``: (H, W) ints; ``fitted`` an
    optional second (T, H, W) array drawn as lines over the source points. Returns the figure.
    """
    import matplotlib.pyplot as plt

    names = names or config.CLASS_NAMES
    colors = colors or config.CLASS_COLORS
    picks = pick_pixels_per_class(labels, n_per_class, seed=seed)
    n = len(picks)
    if axes is None:
        ncol = min(3, n)
        fig, axes = plt.subplots(int(np.ceil(n / ncol)), ncol, figsize=(5 * ncol, 3.2 * np.ceil(n / ncol)),
                                 sharex=True, sharey=True, squeeze=False)
    axes = np.ravel(axes)
    for ax, (value, rc) in zip(axes, picks.items()):
        for r, c in rc:
            pts = ax.plot(stack.years, _ov.pixel_series(stack, int(r), int(c)), "o", ms=3, alpha=0.7)
            if fitted is not None:
                ax.plot(stack.years, _ov.pixel_series(fitted, int(r), int(c)), "-", color=pts[0].get_color(),
                        lw=1.5)
        ax.set_title(f"{value} {names.get(value, '')}", color=colors.get(value, "k"))
        ax.set_xlabel("Year")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def missing_by_year(stack) -> np.ndarray:
    """Share of pixels with no observation in each year: float (T,) (a lazy stack: one pass
    over its blocks)."""
    return np.asarray(_ov._compute(np.isnan(stack.data).mean(axis=(1, 2)))[0])


def plot_confusion(ax, cm, *, names=None, title="", xlabel="Predicted", ylabel="True"):
    """Row-normalised confusion matrix (rows = true/reference class) with counts in the cells.

    ``cm``: (K, K) counts, rows = ``ylabel`` classes, columns = ``xlabel`` classes.
    """
    cm = np.asarray(cm, float)
    k = cm.shape[0]
    names = names or config.CLASS_NAMES
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.6 else "black")
    labels = [names.get(i, str(i)) for i in range(k)]
    ax.set_xticks(range(k), labels, rotation=45, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label="share of the row")
    return im


def plot_probabilities_by_class(proba, y, *, names=None, colors=None, title=""):
    """For each true class, box plots of the predicted probability of every class.

    ``proba``: (n, K) predicted probabilities; ``y``: (n,) true labels. Returns the figure.
    """
    import matplotlib.pyplot as plt

    names = names or config.CLASS_NAMES
    colors = colors or config.CLASS_COLORS
    proba, y = np.asarray(proba), np.asarray(y)
    k = proba.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(3.0 * k, 3.2), sharey=True)
    for c, ax in enumerate(axes):
        sel = proba[y == c]
        if len(sel):
            bp = ax.boxplot([sel[:, j] for j in range(k)], widths=0.6, patch_artist=True, showfliers=False)
            for j, patch in enumerate(bp["boxes"]):
                patch.set_facecolor(colors.get(j, "0.7"))
        ax.set_title(f"true {c} {names.get(c, '')}\n(n={len(sel)})", fontsize=9)
        ax.set_xticks(range(1, k + 1), [str(j) for j in range(k)])
        ax.set_xlabel("predicted class")
    axes[0].set_ylabel("probability")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def index_through_time(stack, *, n_panels: int = 6, cmap: str = "YlGn", title: str = ""):
    """``n_panels`` years of a stack spread over its record, on one colour range; returns the figure.

    The years are the first, the last and evenly spaced ones between them; the colour range is
    the 2-98th percentile of the whole stack, so a change of colour is a change of the index.
    """
    import matplotlib.pyplot as plt

    from .maps import plot_continuous

    years = stack.years
    picks = sorted({int(years[round(i)]) for i in np.linspace(0, len(years) - 1, min(n_panels, len(years)))})
    lo, hi = _ov.percentiles(stack.data, [2, 98])
    band, grid = stack.band, stack.grid
    if _ov.needs_overview(stack.data):  # the picked years' overviews in one read of the blocks
        rows = [int(np.flatnonzero(years == y)[0]) for y in picks]
        small, grid = _ov.overview(stack.data[rows], stack.grid)

        def band(y):
            return small[picks.index(y)]

    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3.6), sharey=True, squeeze=False)
    unit = f"{stack.name} x {1 / stack.scale:g}" if stack.scale != 1 else stack.name
    for ax, y in zip(axes[0], picks):
        plot_continuous(ax, band(y), grid, cmap=cmap, vmin=lo, vmax=hi, label=unit, title=str(y))
    fig.suptitle(title or f"{stack.name} through the record")
    fig.tight_layout()
    return fig


def plot_missing_by_year(years, missing, eras, *, title=""):
    """Bar chart of the share of pixels without a value per year, coloured by sensor era.

    ``years`` (T,), ``missing`` (T,) in 0..1, ``eras`` (T,) labels; returns the figure.
    """
    import matplotlib.pyplot as plt

    colors = {"MSS": "tab:orange", "TM/ETM+ SLC-off": "tab:red", "TM/ETM+/OLI": "tab:blue"}
    fig, ax = plt.subplots(figsize=(11, 3))
    for label in dict.fromkeys(eras):
        sel = np.asarray(eras) == label
        ax.bar(np.asarray(years)[sel], 100 * np.asarray(missing)[sel], color=colors.get(label, "0.5"), label=label)
    ax.set_xlabel("Year")
    ax.set_ylabel("Pixels without a value (%)")
    ax.set_title(title or "Missing values per year")
    ax.legend()
    return fig


def class_counts(labels, names=None) -> dict[str, int]:
    """Pixels per class of an (H, W) class image: {class name: count} for every named class."""
    names = names or config.CLASS_NAMES
    counts = np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=len(names))
    return {names[k]: int(counts[k]) for k in names}


def plot_elbow(table, *, axes=None, title="k-Shape elbow (SBD)"):
    """SBD inertia and SBD silhouette against k from :func:`ltlib.cluster.elbow`, knee marked. Returns the figure."""
    import matplotlib.pyplot as plt

    if axes is None:
        fig, ax1 = plt.subplots(figsize=(7, 4))
    else:
        ax1 = axes
        fig = ax1.figure
    ax1.plot(table["k"], table["inertia"], "o-", color="C0", label="SBD inertia")
    ax1.set_xlabel("Number of clusters k")
    ax1.set_ylabel("SBD inertia (sum of SBD to own centroid)", color="C0")
    ax2 = ax1.twinx()
    ax2.plot(table["k"], table["silhouette"], "s--", color="C1", label="SBD silhouette")
    ax2.set_ylabel("SBD silhouette (unitless)", color="C1")
    kn = table.attrs.get("knee")
    if kn is not None:
        ax1.axvline(kn, color="k", ls=":", lw=1)
        ax1.annotate(f"knee k={kn}", (kn, table["inertia"].max()), xytext=(5, -10),
                     textcoords="offset points", fontsize=9)
    ax1.set_title(title)
    ax1.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_centroids(X, labels, centers, *, years=None, var_names=None, colors=None, q=(10, 90)):
    """One panel per cluster (rows: variables): centroid over the ``q`` percentile band of
    its members (z-normalised series). ``X`` (n, T[, d]) clean, ``labels`` (n,), ``centers``
    (k, T, d). Returns the figure."""
    import matplotlib.pyplot as plt

    from .cluster import znormalize

    Z = znormalize(X)
    centers = np.asarray(centers)
    k, T, d = centers.shape
    years = np.arange(T) if years is None else np.asarray(years)
    var_names = var_names or [f"var {v}" for v in range(d)]
    ncol = min(k, 4)
    nrow = int(np.ceil(k / ncol)) * d
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.4 * nrow), squeeze=False)
    for j in range(k):
        members = Z[labels == j]
        for v in range(d):
            ax = axes[(j // ncol) * d + v, j % ncol]
            color = (colors or {}).get(j, f"C{j % 10}")
            if len(members):
                lo, med, hi = np.percentile(members[:, :, v], [q[0], 50, q[1]], axis=0)
                ax.fill_between(years, lo, hi, color=color, alpha=0.25, label=f"members {q[0]}-{q[1]}%")
                ax.plot(years, med, color=color, lw=0.8, ls="--", label="members median")
            ax.plot(years, centers[j, :, v], color="k", lw=1.6, label="centroid")
            ax.set_title(f"cluster {j} (n={len(members)}) {var_names[v]}", fontsize=9)
            ax.set_ylabel("z-score")
            ax.grid(alpha=0.3)
    for j in range(k, nrow // d * ncol):
        for v in range(d):
            axes[(j // ncol) * d + v, j % ncol].set_visible(False)
    for col in range(ncol):  # "Year" under the lowest panel of each column
        visible = [r for r in range(nrow) if axes[r, col].get_visible()]
        if visible:
            axes[visible[-1], col].set_xlabel("Year")
    axes[0, 0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


#: Units of the change-map bands, by band (``{index}`` is filled in).
CHANGE_UNITS = {"yod": "year", "mag": "{index} x 1000", "dur": "years", "preval": "{index} x 1000",
                "rate": "{index} x 1000 / year", "dsnr": "magnitude / RMSE"}


def change_map_figure(bands: dict, grid, *, index: str, delta: str = "loss"):
    """The six change-map bands (yod, mag, dur, preval, rate, dsnr) in map coordinates; returns the figure."""
    import matplotlib.pyplot as plt

    from .maps import plot_continuous

    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    for ax, band in zip(axes.ravel(), CHANGE_UNITS):
        plot_continuous(ax, bands[band], grid, cmap="plasma" if band == "yod" else "viridis",
                        label=CHANGE_UNITS[band].format(index=index), title=f"greatest {delta}: {band}")
    fig.tight_layout()
    return fig


def plot_disturbance_years(years, counts, *, title="", highlight=None, span=None, span_label=""):
    """Bar chart of pixels per year of detection; ``highlight`` a year drawn in red, ``span``
    (first, last) years shaded. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.bar(years, counts, color="0.6" if highlight is not None else "tab:red", label="pixels")
    if span is not None:
        ax.axvspan(span[0] - 0.5, span[1] + 0.5, color="tab:blue", alpha=0.12, label=span_label)
    if highlight is not None and len(counts):
        sel = np.asarray(years) == highlight
        ax.bar(np.asarray(years)[sel], np.asarray(counts)[sel], color="tab:red", label=f"{highlight}")
    ax.set_xlabel("Year of detection")
    ax.set_ylabel("Pixels")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return fig


def change_groups(loss: dict, gain: dict):
    """Pixels grouped by their change maps, for picking example trajectories without truth.

    Returns ``(labels (H, W) int, names, colors)``: 0 a loss was mapped, 1 a gain only, 2 neither.
    """
    labels = np.full(loss["yod"].shape, 2, dtype=np.int16)
    labels[np.isfinite(gain["yod"])] = 1
    labels[np.isfinite(loss["yod"])] = 0
    return labels, {0: "loss mapped", 1: "gain only", 2: "no change mapped"}, \
        {0: "#d7191c", 1: "#1a9641", 2: "#bababa"}


def plot_fitted_examples(stack, fitted, *, truth=None, loss=None, gain=None, n_per_class=3, seed=0):
    """Source points and fitted lines of a few pixels per truth class, or, without truth, per
    change group (:func:`change_groups`). Returns the figure."""
    unit = f"{stack.name} x {1 / stack.scale:g}" if stack.scale != 1 else stack.name
    if truth is not None:
        fig = plot_trajectories_by_class(stack, truth, n_per_class=n_per_class, seed=seed, fitted=fitted, ylabel=unit)
    else:
        labels, names, colors = change_groups(loss, gain)
        fig = plot_trajectories_by_class(stack, labels, n_per_class=n_per_class, seed=seed, fitted=fitted,
                                         ylabel=unit, names=names, colors=colors)
    fig.suptitle(f"{stack.name}: source (points) and LandTrendr fit (lines)", y=1.02)
    return fig


# ----------------------------------------------------------------------------- Sentinel-1 (notebook 05)
def plot_s1_period(years, counts, window: dict, *, title="", s1_years=config.S1_AB_YEARS):
    """Disturbance-year histogram with the Sentinel-1 A+B era shaded, the most frequent year
    (red) and the year the Sentinel-1 window starts in (blue).

    ``years``, ``counts`` (n,) ints; ``window`` as from :func:`ltlib.sar.pick_s1_period`
    (``most_frequent_year``, ``year``). Returns the figure.
    """
    import matplotlib.pyplot as plt

    years, counts = np.asarray(years), np.asarray(counts)
    fig, ax = plt.subplots(figsize=(11, 3.2))
    ax.bar(years, counts, color="0.6", label="pixels")
    ax.axvspan(s1_years[0] - 0.5, s1_years[1] + 0.5, color="tab:blue", alpha=0.12, label="Sentinel-1 A+B era")
    top = counts.max() if counts.size else 1
    if window.get("most_frequent_year") is not None:
        ax.bar([window["most_frequent_year"]], [top], color="tab:red", label="most frequent year")
    ax.bar([window["year"]], [counts[years == window["year"]].sum()], color="tab:blue", label="chosen year")
    ax.set_xlabel("Disturbance year")
    ax.set_ylabel("Pixels")
    ax.set_title(title)
    ax.legend(loc="upper right")
    return fig


def plot_s1_mean(vv, vh, grid, *, title_suffix=""):
    """Mean VV and VH backscatter (dB) of a (K, h, w) linear-intensity stack; zeros and NaN are
    left out of the mean. A dask stack's mean stays lazy and is drawn as its overview (each
    block read once). Returns the figure."""
    import matplotlib.pyplot as plt

    from .maps import plot_continuous

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, band, name in zip(axes, (vv, vh), ("VV", "VH")):
        if _ov.is_lazy(band):  # a lazy (H, W) mean: plot_continuous reads it as an overview
            import dask.array as da

            ok = band > 0
            n = ok.sum(0)
            db = 10 * da.log10(da.where(n > 0, da.where(ok, band, 0).sum(0) / da.maximum(n, 1), np.nan))
            plot_continuous(ax, db, grid, cmap="gray", label="backscatter (dB)",
                            title=f"Mean {name}, {band.shape[0]} images{title_suffix}")
            continue
        band = np.asarray(band)
        ok = band > 0  # zeros (border noise) and NaN
        with np.errstate(divide="ignore", invalid="ignore"):
            db = 10 * np.log10(np.where(ok, band, 0).sum(0) / ok.sum(0))
        plot_continuous(ax, db, grid, cmap="gray", label="backscatter (dB)",
                        title=f"Mean {name}, {band.shape[0]} images{title_suffix}")
    fig.tight_layout()
    return fig


def plot_sar_change_maps(result, grid):
    """The omnibus maps as a static figure: composite (R = cmap, G = smap, B = fmap), smap, cmap
    and fmap, in map coordinates. ``result``: :class:`ltlib.sar.OmnibusResult` on ``grid``; a lazy
    (block-by-block) result is drawn as overviews. Returns the figure."""
    import matplotlib.pyplot as plt

    from . import sar
    from .maps import _extent_km, _label_axes, fmap_colors, plot_categorical, plot_continuous

    k = result.k
    fmax = max(result.max_changes(), 1)  # streamed for a block-by-block run
    changed = result.valid & (result.fmap > 0)
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    rgb = np.where(changed[..., None], sar.composite(result.cmap, result.smap, result.fmap, k, fmax=fmax), 0)
    rgb_grid = grid
    if _ov.needs_overview(rgb[..., 0]):  # lazy or large: the pixel nearest each block's centre
        small, rgb_grid = _ov.overview(rgb.transpose(2, 0, 1), grid, categorical=True)
        rgb = np.moveaxis(small, 0, -1)
    axes[0].imshow(rgb, extent=_extent_km(rgb_grid), interpolation="nearest")
    _label_axes(axes[0], grid, "Composite R=cmap G=smap B=fmap")
    for ax, name, what in zip(axes[1:3], ("smap", "cmap"), ("first", "last")):
        data = np.where(result.valid & (getattr(result, name) > 0), getattr(result, name), np.nan).astype(float)
        plot_continuous(ax, data, grid, cmap="viridis", vmin=1, vmax=max(k - 1, 2),
                        label=f"interval of the {what} change", title=f"{name}: {what} change")
    colors = fmap_colors(fmax)
    plot_categorical(axes[3], np.where(result.valid, result.fmap, 0), grid,
                     names={0: "none", **{n: f"change{'s' if n > 1 else ''}" for n in colors}},
                     colors={0: "#ffffff", **colors}, title="fmap: number of changes")
    fig.tight_layout()
    return fig


def plot_change_proportions(proportions, dates, *, title=""):
    """Stacked bars per interval of the share (%) of pixels that got brighter, darker or an
    indefinite change. ``proportions`` (K-1, 3) fractions, ``dates`` K ISO dates (bars at the
    interval's end date). Returns the figure."""
    import matplotlib.pyplot as plt

    from .sar import BMAP_COLORS, BMAP_NAMES

    prop = np.asarray(proportions)
    ends = np.array(list(dates)[1:], dtype="datetime64[D]")
    fig, ax = plt.subplots(figsize=(12, 3.8))
    bottom = np.zeros(len(ends))
    for c in range(3):
        ax.bar(ends, 100 * prop[:, c], width=10, bottom=bottom, color=BMAP_COLORS[c + 1], label=BMAP_NAMES[c + 1])
        bottom += 100 * prop[:, c]
    ax.set_xlabel("End date of the interval")
    ax.set_ylabel("Changed pixels (%)")
    ax.set_title(title)
    ax.legend()
    fig.autofmt_xdate()
    return fig


def plot_detections_per_interval(bmap, truth_bmap, valid, dates):
    """Per interval: true changes, those found at the right interval, and false alarms (below 0).

    ``bmap``, ``truth_bmap`` (K-1, h, w) uint8 (0 = none), ``valid`` (h, w) bool, ``dates`` K
    ISO dates; dask maps are counted block by block. Returns the figure."""
    import matplotlib.pyplot as plt

    if any(_ov.is_lazy(a) for a in (bmap, truth_bmap, valid)):  # counted block by block
        import dask.array as da

        from .blocks import compute

        pred, true = da.asarray(bmap), da.asarray(truth_bmap)
        pred = pred.rechunk(true.chunks) if _ov.is_lazy(truth_bmap) else pred
        v = da.asarray(valid)[None]
        sums = [(v & a).sum(axis=(1, 2)) for a in (true > 0, (true > 0) & (pred > 0), (true == 0) & (pred > 0))]
        n_true, n_found, n_false = compute(*sums, progress=False)
    else:
        pred, true = np.asarray(bmap)[:, valid], np.asarray(truth_bmap)[:, valid]
        n_true, n_found, n_false = (a.sum(1) for a in (true > 0, (true > 0) & (pred > 0), (true == 0) & (pred > 0)))
    ends = np.array(list(dates)[1:], dtype="datetime64[D]")
    fig, ax = plt.subplots(figsize=(12, 3.5))
    ax.bar(ends, n_true, width=10, color="0.75", label="true changes")
    ax.bar(ends, n_found, width=6, color="tab:green", label="found at the right interval")
    ax.bar(ends, -n_false, width=6, color="tab:red", label="false alarms (below 0)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("End date of the interval")
    ax.set_ylabel("Pixels")
    ax.set_title("Detected vs true changes per interval")
    ax.legend(loc="upper right")
    fig.autofmt_xdate()
    return fig


# ----------------------------------------------------------------------------- k-Shape (notebook 03)
def plot_elbow_views(sbd_table, euclidean_table=None, *, title=""):
    """The SBD elbow (what k-Shape minimises) beside the seed's Euclidean elbow, on one figure.

    Parameters
    ----------
    sbd_table : pandas.DataFrame
        From :func:`ltlib.cluster.elbow` (drawn by :func:`plot_elbow`).
    euclidean_table : pandas.DataFrame or None
        From :func:`ltlib.cluster.euclidean_elbow`, drawn by yellowbrick's own
        ``KElbowVisualizer`` (distortion, fit time, its elbow); None: the SBD panel only.
    title : str
        What was clustered, e.g. ``"NDVI"``: the figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = 1 if euclidean_table is None else 2
    fig, axes = plt.subplots(1, n, figsize=(6.8 * n, 4.2), squeeze=False)
    plot_elbow(sbd_table, axes=axes[0, 0], title="SBD elbow (what k-Shape minimises)")
    if euclidean_table is not None:
        from sklearn.cluster import KMeans

        from .cluster.select import yellowbrick

        KElbowVisualizer = yellowbrick("cluster", "KElbowVisualizer")
        kn = euclidean_table.attrs.get("knee")
        ax = axes[0, 1]
        viz = KElbowVisualizer(KMeans(), ax=ax, fig=fig, k=[int(k) for k in euclidean_table["k"]],
                               timings=True, locate_elbow=kn is not None)
        # the measured values, drawn as the visualizer draws them (no refit)
        viz.k_values_ = [int(k) for k in euclidean_table["k"]]
        viz.k_scores_ = list(euclidean_table["distortion"])
        viz.k_timers_ = list(euclidean_table["fit_time_s"])
        viz.elbow_value_ = kn
        viz.elbow_score_ = float(euclidean_table.loc[euclidean_table["k"] == kn, "distortion"].iloc[0]) \
            if kn is not None else 0
        viz.draw()
        viz.finalize()
        ax.set_title("Euclidean elbow (the seed's KElbowVisualizer, k-means)")
        ax.set_xlabel("Number of clusters k")
        ax.set_ylabel("distortion (sum of squared distances, z-score$^2$)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_cluster_centroids(run):
    """The centroid shapes of a :class:`ltlib.cluster.ClusterRun` over its members (see
    :func:`plot_centroids`), titled with its indices and k. Returns the figure."""
    fig = plot_centroids(run.prepared.X, run.labels, run.centers, years=run.years, var_names=list(run.indices))
    fig.suptitle(f"k-Shape centroids, {run.title} (k={run.k})", y=1.01)
    return fig


def cluster_maps_figure(runs, truth=None):
    """Label maps of :class:`ltlib.cluster.ClusterRun` objects side by side in map coordinates,
    after the truth classes when given (``scene.truth``). Returns the figure."""
    import matplotlib.pyplot as plt

    from .maps import plot_categorical

    runs = [r for r in runs if r is not None]
    panels = len(runs) + (truth is not None)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 5.5), squeeze=False)
    axes = list(axes[0])
    if truth is not None:
        plot_categorical(axes.pop(0), truth["class"], truth["grid"], names=config.CLASS_NAMES,
                         colors=config.CLASS_COLORS, title="Truth trajectory class")
    for ax, run in zip(axes, runs):
        names, colors = run.legend()
        plot_categorical(ax, run.label_image(), run.grid, names=names, colors=colors,
                         title=f"k-Shape {run.title}, k={run.k}")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- trajectory classes (notebook 04)
def plot_class_examples(X, y, *, years, n_examples: int = 5, seed: int = 0, source: str = "labelled set"):
    """Class prototypes (top row) and a few labelled series of each class (bottom row).

    ``X`` (n, T) physical NDVI, ``y`` (n,) classes 0..5, ``years`` (T,). The prototypes are
    :func:`ltlib.trainingset.class_prototypes` of the same length. Returns the figure.
    """
    import matplotlib.pyplot as plt

    from .trainingset import class_prototypes

    names, colors = config.CLASS_NAMES, config.CLASS_COLORS
    X, y, years = np.asarray(X), np.asarray(y), np.asarray(years)
    protos = class_prototypes(n_years=X.shape[1])
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(2, len(names), figsize=(20, 6), sharex=True)
    for c in names:
        axes[0, c].plot(years, protos[c], color=colors[c], lw=2.5)
        axes[0, c].set_title(f"{c} {names[c]}", color=colors[c])
        members = np.flatnonzero(y == c)
        for i in rng.choice(members, size=min(n_examples, len(members)), replace=False):
            axes[1, c].plot(years, X[i], lw=1)
        axes[1, c].set_xlabel("Year")
    axes[0, 0].set_ylabel("prototype NDVI")
    axes[1, 0].set_ylabel(f"{source} NDVI")
    fig.suptitle(f"Class prototypes (top) and examples from {source} (bottom)")
    fig.tight_layout()
    return fig


def plot_series_images(X, y, *, years):
    """One series of each class as the four images of :data:`ltlib.classify.IMAGE_MODELS`
    (GADF, GASF, Markov transition field, recurrence plot), one row per method.

    ``X`` (n, T) physical NDVI, ``y`` (n,) classes (every class present), ``years`` (T,).
    Returns the figure.
    """
    import matplotlib.pyplot as plt

    from .classify import IMAGE_MODELS, normalize, to_images

    names = config.CLASS_NAMES
    y, years = np.asarray(y), np.asarray(years)
    first = np.array([np.flatnonzero(y == c)[0] for c in names])
    Xn = normalize(np.asarray(X)[first])
    units = {"MTF": "transition probability", "RP": "|x_i - x_j| (normalised NDVI)"}
    fig, axes = plt.subplots(len(IMAGE_MODELS), len(names), figsize=(18, 12))
    extent = (years[0], years[-1], years[0], years[-1])
    for r, method in enumerate(IMAGE_MODELS):
        imgs = to_images(Xn, method)[:, 0]
        lim = (-1, 1) if method in ("GADF", "GASF") else (float(imgs.min()), float(imgs.max()))
        for c in names:
            im = axes[r, c].imshow(imgs[c], cmap="RdBu_r", origin="lower", vmin=lim[0], vmax=lim[1], extent=extent)
            axes[r, c].set_title(f"{method}: {c} {names[c]}", fontsize=9)
            axes[r, c].set_xlabel("year j")
            axes[r, c].set_ylabel("year i")
        fig.colorbar(im, ax=axes[r], fraction=0.02, label=units.get(method, method))
    return fig


def confusion_figure(cm, *, title: str = "", xlabel: str = "Predicted", ylabel: str = "True"):
    """:func:`plot_confusion` of ``cm`` (K, K) counts, rows = ``ylabel`` classes, on its own figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    plot_confusion(ax, cm, title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    return fig


def plot_training_history(history, *, title: str = ""):
    """Training and validation loss (cross-entropy) and validation accuracy per epoch.

    ``history``: the DataFrame of :attr:`ltlib.classify.TrainedModel.history`. Returns the figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3))
    for col in history.columns:
        ax.plot(history.index, history[col], marker="o", ms=3, label=col)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (cross-entropy) / accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def class_map_figure(class_map, grid, *, title: str, truth=None):
    """A trajectory class map (uint8 (H, W), 255 = unclassified) in map coordinates, with the
    truth classes beside it when given. Returns the figure."""
    import matplotlib.pyplot as plt

    from .maps import plot_categorical

    names, colors = config.CLASS_NAMES, config.CLASS_COLORS
    if not _ov.is_lazy(class_map):
        class_map = np.asarray(class_map)
    shown = np.where(class_map == 255, -1, class_map)  # -1 has no colour: transparent
    fig, axes = plt.subplots(1, 1 if truth is None else 2, figsize=(6.5 if truth is None else 13, 6), squeeze=False)
    plot_categorical(axes[0, 0], shown, grid, names=names, colors=colors, title=title)
    if truth is not None:
        plot_categorical(axes[0, 1], truth, grid, names=names, colors=colors, title="Truth")
    fig.tight_layout()
    return fig


#: Units of the recovery bands (:mod:`ltlib.landtrendr.recovery`).
RECOVERY_UNITS = {"dindex": "{index} x 1000", "rri": "RRI (ratio)", "r80p": "R80P (ratio)",
                  "yryr": "{index} x 1000 per year", "y2r": "years"}


def recovery_figure(rec, *, bins: int = 40):
    """Maps (top) and histograms (bottom) of the five recovery metrics of a
    :class:`~ltlib.landtrendr.recovery.Recovery`; the histogram titles give the median and the
    pixels counted. Returns the figure."""
    import matplotlib.pyplot as plt

    from .maps import plot_continuous

    fig, axes = plt.subplots(2, 5, figsize=(22, 8.5), gridspec_kw={"height_ratios": [3, 2]})
    for k, band in enumerate(RECOVERY_UNITS):
        unit = RECOVERY_UNITS[band].format(index=rec.index)
        plot_continuous(axes[0, k], rec.bands[band], rec.grid, cmap="viridis", label=unit, title=band)
        values = np.asarray(rec.bands[band], dtype=float)
        values = values[np.isfinite(values)]
        ax = axes[1, k]
        if values.size:
            lo, hi = np.percentile(values, [1, 99]) if band != "y2r" else (values.min(), values.max())
            ax.hist(np.clip(values, lo, hi), bins=bins, color="tab:green")
        ax.set_xlabel(unit)
        ax.set_ylabel("pixels")
        ax.set_title(f"{band}: median {rec.medians.get(band)}, {values.size} px", fontsize=9)
    c = rec.counts
    fig.suptitle(f"Recovery after the greatest loss ({rec.index}, {rec.series} series, pre = {rec.pre}): "
                 f"recovered {c['recovered']}, not yet {c['not_yet_recovered']}, window incomplete "
                 f"{c['window_incomplete']}, undefined {c['undefined']} px")
    fig.tight_layout()
    return fig


def change_area_figure(areas):
    """Mapped (pixel-count) loss area per year beside the sample-based estimate with its 95%
    interval (:class:`~ltlib.change_area.ChangeAreas`); returns the figure."""
    import matplotlib.pyplot as plt

    df = areas.to_frame()
    per_year = df[df["quantity"].str.startswith("loss ")]
    years = per_year["quantity"].str.slice(5).astype(int).to_numpy()
    fig, ax = plt.subplots(figsize=(12, 3.6))
    ax.bar(years - 0.2, per_year["mapped_ha"], width=0.4, color="0.6", label="mapped (pixel count)")
    if areas.by_year:
        est = per_year["estimate_ha"].astype(float).fillna(0).to_numpy()
        ci = per_year["ci95_ha"].astype(float).fillna(0).to_numpy()
        ax.bar(years + 0.2, est, width=0.4, yerr=ci, color="tab:red", ecolor="k", capsize=2,
               label="estimate from the reference sample, 95% CI")
    tot = df.set_index("quantity")
    title = f"loss mapped {tot.loc['loss', 'mapped_ha']:.0f} ha"
    if areas.estimates:
        e = areas.estimates["loss"]
        title += f", estimated {e['area_ha']:.0f} +/- {e['ci_ha']:.0f} ha ({areas.n_points} points, {areas.source})"
    ax.set_title(title)
    ax.set_xlabel("Year of loss")
    ax.set_ylabel("ha")
    ax.legend()
    return fig

"""Figures shared by the notebooks: trajectories by class, per-year data availability, confusion
matrices, class probabilities, and the k-Shape elbow and centroids."""
from __future__ import annotations

import numpy as np

from . import config


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
            pts = ax.plot(stack.years, stack.data[:, r, c], "o", ms=3, alpha=0.7)
            if fitted is not None:
                ax.plot(stack.years, fitted[:, r, c], "-", color=pts[0].get_color(), lw=1.5)
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
    """Share of pixels with no observation in each year: float (T,)."""
    return np.isnan(stack.data).mean(axis=(1, 2))


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
    lo, hi = np.nanpercentile(stack.data, [2, 98])
    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3.6), sharey=True, squeeze=False)
    unit = f"{stack.name} x {1 / stack.scale:g}" if stack.scale != 1 else stack.name
    for ax, y in zip(axes[0], picks):
        plot_continuous(ax, stack.band(y), stack.grid, cmap=cmap, vmin=lo, vmax=hi, label=unit, title=str(y))
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

"""Figures shared by the notebooks: trajectories by class and per-year data availability."""
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

"""k-Shape on a scene: the trajectories to cluster, choosing k, the final fit, and its outputs.

What notebook 03 calls, in order:

:func:`load_trajectories`
    The series to cluster: notebook 02's LandTrendr-fitted stacks when its output folder is
    given (grid and years checked against the scene), else the scene's raw composites.
:func:`cluster_trajectories`
    For one index (univariate) or several (multivariate, one variable per index): gaps
    filled and flat pixels set aside (:func:`~ltlib.cluster.prepare`), the SBD elbow and
    silhouette over ``k_range`` with its knee, the seed's Euclidean elbow (yellowbrick's
    ``KElbowVisualizer``) beside it, then the final k-Shape fit of every pixel. Returns a
    :class:`ClusterRun` (``summary()``, ``label_image()``, ``contingency()``, ``write()``).
:func:`write_clusters`
    ``clusters.tif`` (one band per run, -1 no data, label k = flat pixels) and the centroid
    CSVs.
:func:`compare_engines`
    ltlib, tslearn and the ``kshape`` package on the same subsample, scored alike.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import blocks, config, pixel_sample
from ..io import Grid, Stack, atomic_path, read_json, series_to_image, stack_to_series, stacks_to_series, write_raster
from ..scene import INDEX_PREFERENCE, MissingInputError
from .assign import NO_DATA, assign_labels
from .kshape import KShape
from .prepare import Prepared, prepare
from .select import elbow, euclidean_elbow, silhouette

#: Indices of the multivariate run when the scene has them all (greenness and wetness add what
#: NDVI alone does not carry: bare rock and urban surfaces differ in wetness).
MULTIVARIATE_DEFAULT = ("NDVI", "TCG", "TCW")
#: k-Shape initialisations a scene run can use (:class:`ClusterSettings`).
INITS = ("k-shape++", "random", "random-labels")
#: Colour of the label of flat pixels (set aside: no shape) on maps.
FLAT_COLOR = "#000000"


# ----------------------------------------------------------------------------- trajectories
@dataclass
class Trajectories:
    """The annual series to cluster, by index, on the scene's grid and years.

    Attributes
    ----------
    stacks : {index: Stack}
        Float32 (T, H, W) index x 1000, NaN gaps (LandTrendr fits have none where they fit).
    kind : {"landtrendr", "composites"}
    folder : Path
        Notebook 02's output folder, or the scene folder for raw composites.
    """

    stacks: dict[str, Stack]
    kind: str
    folder: Path

    def __post_init__(self):
        if self.kind not in ("landtrendr", "composites"):
            raise ValueError(f"kind must be 'landtrendr' or 'composites', got {self.kind!r}")
        if not self.stacks:
            raise ValueError("Trajectories needs at least one stack")

    @property
    def indices(self) -> list[str]:
        return list(self.stacks)

    @property
    def years(self) -> np.ndarray:
        return next(iter(self.stacks.values())).years

    @property
    def grid(self) -> Grid:
        return next(iter(self.stacks.values())).grid

    def describe(self) -> str:
        """One line: which series these are and where they come from."""
        if self.kind == "landtrendr":
            return f"LandTrendr fitted stacks from {self.folder}"
        return f"raw composites of {self.folder}"

    def summary(self) -> str:
        return self.describe()

    def stack(self, index: str) -> Stack:
        """The stack of ``index``; a clear error naming the folder when it is not there."""
        key = str(index).upper()
        if key not in self.stacks:
            where = (f"{self.folder} (notebook 02's outputs) has no {key.lower()}_fit" if self.kind == "landtrendr"
                     else f"{self.folder} has no {key} stack")
            hint = "; rerun 02_fit_landtrendr with it, or landtrendr_dir=\"\" for raw composites" \
                if self.kind == "landtrendr" else ""
            raise MissingInputError(f"{where}: it has {', '.join(self.stacks)}{hint}")
        return self.stacks[key]

    def pick_index(self, index=None) -> str:
        """``index`` if given (checked), else the first of ``scene.INDEX_PREFERENCE`` present."""
        if index is not None:
            self.stack(index)
            return str(index).upper()
        return next((i for i in INDEX_PREFERENCE if i in self.stacks), self.indices[0])

    def multivariate_indices(self, wanted=None) -> tuple[list[str], str | None]:
        """The indices of the multivariate run and, when there are fewer than two, why not.

        ``wanted`` None: NDVI, TCG and TCW when all are there, else up to three of the
        indices (in ``scene.INDEX_PREFERENCE`` order). A wanted index that is missing is an
        error naming the folder. Returns ``(indices, None)`` or ``(indices, reason)``.
        """
        if wanted is None:
            if all(i in self.stacks for i in MULTIVARIATE_DEFAULT):
                chosen = list(MULTIVARIATE_DEFAULT)
            else:
                ordered = [i for i in INDEX_PREFERENCE if i in self.stacks]
                ordered += [i for i in self.indices if i not in ordered]
                chosen = ordered[:3]
        else:
            if isinstance(wanted, str):
                raise ValueError(f"multivariate_indices must be a list of indices, got the string {wanted!r}")
            chosen = list(dict.fromkeys(str(i).upper() for i in wanted))
            for i in chosen:
                self.stack(i)
        if len(chosen) >= 2:
            return chosen, None
        if wanted is None:
            return chosen, f"multivariate clustering needs two indices; {self.folder} has only {', '.join(chosen)}"
        return chosen, (f"multivariate clustering needs two indices; multivariate_indices names only "
                        f"{', '.join(chosen) or 'none'}")


def load_trajectories(scene, landtrendr_dir=None) -> Trajectories:
    """The series notebook 03 clusters: LandTrendr fits from notebook 02, else raw composites.

    Parameters
    ----------
    scene : ltlib.scene.Scene
    landtrendr_dir : path or None
        Notebook 02's output folder (from ``report.earlier_output``). Every scene index whose
        ``<index>_fit`` it lists is read with :meth:`~ltlib.scene.Scene.read_output`, which
        refuses another grid or other years naming the file (lazily, in the scene's chunks,
        when the scene is lazy). None: the scene's composites.

    Returns
    -------
    Trajectories
    """
    if landtrendr_dir is None:
        return Trajectories(dict(scene.stacks), "composites", Path(scene.folder))
    folder = Path(landtrendr_dir)
    listed = read_json(folder / "summary.json", "the summary of a 02_fit_landtrendr run").get("files", {})
    stacks = {i: scene.read_output(folder, f"{i.lower()}_fit", stack=True)
              for i in scene.indices if f"{i.lower()}_fit" in listed}
    if not stacks:
        raise MissingInputError(f"{folder / 'summary.json'} lists no fitted stack of this scene's indices "
                                f"({', '.join(scene.indices)}); it lists {', '.join(listed) or 'nothing'}")
    return Trajectories(stacks, "landtrendr", folder)


# ----------------------------------------------------------------------------- settings
def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class ClusterSettings:
    """The knobs of :func:`cluster_trajectories` (notebook 03's parameters), checked.

    Parameters
    ----------
    n_clusters : int or None
        None: the knee of the SBD elbow (the best SBD silhouette when there is no knee);
        an int forces k.
    k_range : list of int >= 2
        The k of the elbow.
    elbow_max_series : int
        The elbow fits on a random subset of this many series (all if fewer).
    silhouette_sample : int
        SBD silhouettes on a random subsample of this many series (exact if fewer).
    elbow_n_init, n_init : int
        k-Shape restarts per k in the elbow, and for the final fit (lowest inertia kept).
    max_iter : int
    random_state : int
    init : str
        k-Shape's initialisation in the elbow and the final fit (see :class:`KShape`):
        ``"random"`` (tslearn's draw of k series; the default: mean Rand index 0.711 vs 0.686
        for ``"k-shape++"`` on the 13 UCR/UEA sets of ``benchmarks/bench_kshape.py``),
        ``"k-shape++"`` (k-means++ seeding with SBD) or ``"random-labels"`` (the paper's).
    elbow_init : str
        The initialisation of the elbow's fits (k = 2..10), ``"k-shape++"`` by default: its
        seeding spreads the centroids, so the inertia falls with k as smoothly as the knee
        needs (with ``"random"`` the sample's multivariate curve has no knee and k falls back to
        the silhouette's 2); the final fit uses ``init``.
    euclidean_elbow : bool
        Also compute the seed's Euclidean elbow (k-means on the z-normalised series).
    sample_size : int
        When the scene has more pixels with data than this, or is lazy (opened in chunks),
        k is chosen and the centroids fitted on a random sample of this many pixels
        (:func:`ltlib.pixel_sample.sample_pixels`, seed ``random_state``), then every pixel
        is assigned to its nearest centroid block by block
        (:func:`ltlib.cluster.assign.assign_labels`).
    """

    n_clusters: int | None = None
    k_range: tuple = tuple(range(2, 11))
    elbow_max_series: int = 10000
    silhouette_sample: int = 3000
    elbow_n_init: int = 2
    n_init: int = 4
    max_iter: int = 100
    random_state: int = 0
    init: str = "random"
    elbow_init: str = "k-shape++"
    euclidean_elbow: bool = True
    sample_size: int = 100000

    def __post_init__(self):
        if self.n_clusters is not None:
            _int("n_clusters", self.n_clusters, 2)
        ks = self.k_range
        if isinstance(ks, (str, bytes)) or not hasattr(ks, "__iter__"):
            raise ValueError(f"k_range must be a list of integers >= 2, got {ks!r}")
        ks = tuple(_int("k_range values", k, 2) for k in ks)
        if not ks:
            raise ValueError("k_range is empty: give at least one k >= 2 (three for a knee)")
        object.__setattr__(self, "k_range", tuple(sorted(set(ks))))
        _int("elbow_max_series", self.elbow_max_series, 2)
        _int("silhouette_sample", self.silhouette_sample, 2)
        _int("elbow_n_init", self.elbow_n_init, 1)
        _int("n_init", self.n_init, 1)
        _int("max_iter", self.max_iter, 1)
        _int("random_state", self.random_state, 0)
        _int("sample_size", self.sample_size, 2)
        if self.init not in INITS:
            raise ValueError(f"kshape_init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.elbow_init not in INITS:
            raise ValueError(f"elbow_init must be one of {', '.join(INITS)}, got {self.elbow_init!r}")


# ----------------------------------------------------------------------------- the result
@dataclass
class ClusterRun:
    """k-Shape clustering of one set of indices on a scene.

    Attributes
    ----------
    name : str
        ``"univariate"`` or ``"multivariate"`` (the key in summary.json).
    indices : list of str
        One variable per index, in this order.
    years : int (T,)
    grid : Grid
    mask : bool (H, W)
        Pixels with data (every index has at least one observation).
    prepared : Prepared
        The series of ``mask`` pixels, gaps filled, flat ones set aside.
    model : KShape
        The final fit (``labels_`` (m,), ``cluster_centers_`` (k, T, d) z-normalised).
    k_choice : {"parameter", "knee", "max silhouette"}
    silhouette : float
        SBD silhouette of the final fit (on ``silhouette_sample`` series).
    elbow : pandas.DataFrame
        :func:`~ltlib.cluster.elbow` table (k, inertia, silhouette, n_iter, fit_time_s, knee).
    euclidean : pandas.DataFrame or None
        :func:`~ltlib.cluster.euclidean_elbow` table (k, distortion, fit_time_s, knee).
    truth : int (H, W) or None
        Truth classes of the scene, for :meth:`ari_vs_truth` and :meth:`contingency`.
    trajectories : str
        Which series were clustered (:meth:`Trajectories.describe`).
    assigned : int16 (H, W), numpy or dask, or None
        When the centroids were fitted on a sample (``ClusterSettings.sample_size``): every
        pixel's label (-1 no data, 0..k-1, k flat), from
        :func:`~ltlib.cluster.assign.assign_labels`; lazy runs hold it read back lazily from
        ``files["labels"]``. None: ``labels`` are every pixel's (the fit used them all).
    sample : (rows, cols) int64 arrays or None
        The sampled pixels the model was fitted on (``prepared`` is theirs).
    sizes : (k + 1,) int or None
        Pixels per label 0..k (k: flat) in :meth:`label_image` (computed while writing, for lazy runs).
    files : {key: Path}
        What a lazy run wrote while it ran (``labels``: ``clusters_<name>.tif``).
    """

    name: str
    indices: list
    years: np.ndarray
    grid: Grid
    mask: np.ndarray
    prepared: Prepared
    model: KShape
    k_choice: str
    silhouette: float
    elbow: object
    euclidean: object = None
    truth: np.ndarray | None = None
    trajectories: str = ""
    seconds: dict = field(default_factory=dict)
    assigned: object = None
    sample: tuple | None = None
    sizes: np.ndarray | None = None
    files: dict = field(default_factory=dict)

    # -- what it is
    @property
    def k(self) -> int:
        return int(self.model.n_clusters)

    @property
    def flat_label(self) -> int:
        """The label of flat pixels (set aside: no shape) in :meth:`label_image`."""
        return self.k

    @property
    def labels(self) -> np.ndarray:
        """Cluster of each clustered series (m,) int."""
        return self.model.labels_

    @property
    def centers(self) -> np.ndarray:
        """Centroid shapes (k, T, d), z-normalised."""
        return self.model.cluster_centers_

    @property
    def title(self) -> str:
        return " + ".join(self.indices)

    @property
    def band_name(self) -> str:
        return f"kshape_{'_'.join(i.lower() for i in self.indices)}_k{self.k}"

    @property
    def knee(self):
        return self.elbow.attrs.get("knee")

    @property
    def best_silhouette_k(self):
        sil = self.elbow["silhouette"]
        return None if sil.isna().all() else int(self.elbow.loc[sil.idxmax(), "k"])

    @property
    def is_lazy(self) -> bool:
        """True when the label image is a dask array (read from ``files``, block by block)."""
        return blocks.is_lazy(self.assigned)

    def cluster_sizes(self) -> np.ndarray:
        """Pixels per label (k + 1,) int64: clusters 0..k-1 then the flat pixels (label k)."""
        if self.sizes is not None:
            return np.asarray(self.sizes, dtype=np.int64)
        img = self.label_image()
        return np.bincount(img[img >= 0].astype(np.int64), minlength=self.k + 1).astype(np.int64)

    def label_image(self) -> np.ndarray:
        """Labels on the grid (H, W) int16: -1 no data, 0..k-1 clusters, k flat pixels (a dask
        array for a lazy run)."""
        if self.assigned is not None:
            return self.assigned
        full = self.prepared.expand(self.labels, flat_label=self.flat_label)
        return series_to_image(full, self.mask, fill=-1).astype(np.int16)

    def legend(self) -> tuple[dict, dict]:
        """({label: name}, {label: colour}) for maps: tab10 colours, flat pixels black."""
        colors = {j: config.TAB10[j % 10] for j in range(self.k)}
        names = {j: f"cluster {j}" for j in range(self.k)}
        colors[self.k], names[self.k] = FLAT_COLOR, "flat (set aside)"
        return names, colors

    # -- against the truth
    def _truth_rows(self) -> np.ndarray:
        if self.truth is None:
            raise ValueError(f"the {self.name} run has no truth to compare with (the scene has no truth/)")
        return np.asarray(self.truth)[self.mask]

    def _fit_truth_rows(self) -> np.ndarray:
        """Truth class of each series of ``prepared`` (before flat ones are set aside): the
        sampled pixels' when the fit used a sample, else every pixel of ``mask``'s."""
        if self.sample is None:
            return self._truth_rows()
        if self.truth is None:
            raise ValueError(f"the {self.name} run has no truth to compare with (the scene has no truth/)")
        rows, cols = self.sample
        return np.asarray(self.truth)[rows, cols]

    def truth_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels of ``mask`` per (truth class, label), counted block by block for a lazy run.

        Returns
        -------
        (classes (c,) int, labels (m,) int, table (c, m) int64)
            The truth classes and the labels (-1..k) that occur in ``mask``, and the counts.
        """
        t = self._truth_rows()  # truth and mask are (H, W) numpy arrays, also for lazy runs
        classes = np.unique(t)
        img = self.label_image()
        width = self.k + 2  # labels -1..k
        if blocks.is_lazy(img):
            import dask.array as da

            code = np.full(self.mask.shape, -1, np.int64)  # -1: outside mask, not counted
            code[self.mask] = np.searchsorted(classes, t)
            code = da.from_array(code, chunks=img.chunks)
            n = len(classes) * width
            key = da.where(code >= 0, code * width + img.astype(np.int64) + 1, n)
            counts = blocks.compute(da.bincount(key.ravel(), minlength=n + 1), progress=False)[0][:n]
        else:
            key = np.searchsorted(classes, t) * width + img[self.mask].astype(np.int64) + 1
            counts = np.bincount(key, minlength=len(classes) * width)
        table = np.asarray(counts, dtype=np.int64).reshape(len(classes), width)
        used = table.sum(0) > 0
        return classes, np.arange(-1, self.k + 1)[used], table[:, used]

    def ari_vs_truth(self) -> float | None:
        """Adjusted Rand index of the labels (flat pixels as a cluster) against the truth classes; None without truth.

        A lazy run counts the (truth class, label) pairs block by block (:meth:`truth_table`)
        and computes the index from them as scikit-learn does (integers only, so the value is
        the in-memory run's exactly)."""
        if self.truth is None:
            return None
        if not self.is_lazy:
            from sklearn.metrics import adjusted_rand_score

            return float(adjusted_rand_score(self._truth_rows(), self.label_image()[self.mask]))
        return adjusted_rand_from_table(self.truth_table()[2])

    def contingency(self, class_names=None):
        """Pixels per (truth class, cluster): a pandas DataFrame, rows named by class (sorted by
        name), columns the labels that occur; counted block by block for a lazy run."""
        import pandas as pd

        names = class_names or config.CLASS_NAMES
        if not self.is_lazy:
            t = self._truth_rows()
            return pd.crosstab(pd.Series([names.get(int(c), str(int(c))) for c in t], name="truth class"),
                               pd.Series(self.label_image()[self.mask], name="cluster"))
        classes, labels, table = self.truth_table()
        frame = pd.DataFrame(table, index=[names.get(int(c), str(int(c))) for c in classes],
                             columns=pd.Index(labels.astype(np.int16), name="cluster"))
        frame = frame.groupby(level=0).sum()  # as crosstab: one row per name, sorted
        frame.index.name = "truth class"
        return frame

    def majority_class(self, class_names=None) -> dict:
        """{cluster: the truth class most of its pixels have}."""
        tab = self.contingency(class_names)
        return {int(c): tab[c].idxmax() for c in tab.columns}

    # -- reporting
    def __str__(self) -> str:
        m = self.model
        on = "" if self.sample is None else f" on a sample of {len(self.sample[0])} pixels, every pixel assigned"
        return (f"{self.name} ({self.title}): knee k={self.knee}, best SBD silhouette k={self.best_silhouette_k} "
                f"-> k={self.k} ({self.k_choice})\n"
                f"  {m.n_iter_} iterations in {m.fit_time_:.1f} s{on}, SBD inertia {m.inertia_:.0f} "
                f"({m.inertia_ / len(self.labels):.3f} per pixel), SBD silhouette {self.silhouette:.3f}, "
                f"sizes {self.cluster_sizes()[:self.k].tolist()}")

    def summary(self) -> dict:
        def num(v):
            return None if v is None or not np.isfinite(v) else round(float(v), 4)

        el = self.elbow
        sizes = self.cluster_sizes()
        out = {
            "indices": list(self.indices), "k": self.k, "k_choice": self.k_choice, "init": self.model.init,
            "inertia": round(float(self.model.inertia_), 3), "silhouette": round(float(self.silhouette), 4),
            "n_pixels_clustered": int(sizes[:self.k].sum()), "n_flat": int(sizes[self.k]),
            "n_fit_sample": None if self.sample is None else int(len(self.sample[0])),
            "n_gap_values_filled": int(self.prepared.n_filled),
            "n_iter": None if self.model.n_iter_ is None else int(self.model.n_iter_),
            "fit_seconds": round(float(self.model.fit_time_), 2),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "cluster_sizes": sizes[:self.k].tolist(),
            "elbow": {"k": [int(k) for k in el["k"]], "inertia": [num(v) for v in el["inertia"]],
                      "silhouette": [num(v) for v in el["silhouette"]],
                      "fit_time_s": [num(v) for v in el["fit_time_s"]], "knee": self.knee,
                      "n_series": int(el.attrs.get("n_series", 0))},
        }
        if self.euclidean is not None:
            eu = self.euclidean
            out["elbow"]["euclidean"] = {"distortion": [round(float(v), 2) for v in eu["distortion"]],
                                         "knee": eu.attrs.get("knee")}
        if self.truth is not None:
            out["ari_vs_truth"] = round(self.ari_vs_truth(), 4)
        return out

    # -- outputs
    def centroid_table(self):
        """The centroids as a DataFrame: rows cluster (univariate) or (cluster, index), columns years."""
        import pandas as pd

        years = [str(int(y)) for y in self.years]
        C = self.centers
        if C.shape[2] == 1:
            return pd.DataFrame(C[:, :, 0], columns=years).rename_axis("cluster")
        return pd.DataFrame(C.transpose(0, 2, 1).reshape(self.k * len(self.indices), -1),
                            index=pd.MultiIndex.from_product([range(self.k), self.indices],
                                                             names=["cluster", "index"]),
                            columns=years)

    def write(self, output_dir) -> dict[str, Path]:
        """``centroids_<name>.csv`` (z-normalised centroid shapes). Returns {key: path}."""
        path = Path(output_dir) / f"centroids_{self.name}.csv"
        with atomic_path(path) as tmp:
            self.centroid_table().to_csv(tmp)
        return {f"centroids_{self.name}": path}


def write_clusters(output_dir, runs) -> dict[str, Path]:
    """Write ``clusters.tif`` (int16, one band per run named like ``kshape_ndvi_k6``; -1 no
    data, label k flat pixels) and each run's centroid CSV. Returns {key: path}; the label
    image is ``labels``."""
    runs = [r for r in runs if r is not None]
    if not runs:
        raise ValueError("write_clusters needs at least one ClusterRun")
    grid = runs[0].grid
    for r in runs[1:]:
        if not r.grid.same_as(grid):
            raise ValueError(f"the {r.name} run is on another grid than the {runs[0].name} run")
    kw = dict(band_names=[r.band_name for r in runs], nodata=-1, dtype="int16",
              tags={"runs": ",".join(r.name for r in runs), "flat_label": "k", "trajectories": runs[0].trajectories})
    path = Path(output_dir) / "clusters.tif"
    if any(r.is_lazy for r in runs):  # block by block: every run's labels are read back lazily
        import dask.array as da

        labels = da.stack([_as_nan(r.label_image()) for r in runs])
        written = {"labels": blocks.write_raster(path, labels, grid, **kw)}
    else:
        # no data (-1) goes in as NaN: write_raster writes it as the nodata value -1
        labels = np.stack([np.where(img >= 0, img, np.nan) for img in (r.label_image() for r in runs)])
        written = {"labels": write_raster(path, labels, grid, **kw)}
    for r in runs:
        written.update(r.write(output_dir))
    return written


def _as_nan(labels):
    """Label image (H, W) int -> float32 with NaN for no data (-1), numpy or dask."""
    import dask.array as da

    xp = da if blocks.is_lazy(labels) else np
    return xp.where(labels >= 0, labels, np.nan).astype(np.float32)


def _from_nan(data):
    """A label band read back (float32, NaN for nodata) -> int16 (H, W) with -1 for no data."""
    import dask.array as da

    xp = da if blocks.is_lazy(data) else np
    return xp.where(xp.isnan(data), NO_DATA, data).astype(np.int16)


def adjusted_rand_from_table(table) -> float:
    """The adjusted Rand index of two labelings from their contingency table (c, m) of counts,
    computed as ``sklearn.metrics.adjusted_rand_score`` does from the labels (its pair
    confusion matrix, in integers), so both give the same float."""
    table = np.asarray(table, dtype=np.int64)
    n = int(table.sum())
    n_c, n_k = table.sum(axis=1), table.sum(axis=0)
    sum_squares = int((table.astype(object) ** 2).sum())
    tp = sum_squares - n
    fp = int((table.astype(object) @ n_k.astype(object)).sum()) - sum_squares
    fn = int((table.T.astype(object) @ n_c.astype(object)).sum()) - sum_squares
    tn = n * n - fp - fn - sum_squares
    if fn == 0 and fp == 0:
        return 1.0
    return 2.0 * (tp * tn - fn * fp) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn))


# ----------------------------------------------------------------------------- the step
def _series(trajectories: Trajectories, indices):
    stacks = [trajectories.stack(i) for i in indices]
    if len(stacks) == 1:
        return stack_to_series(stacks[0])
    return stacks_to_series(stacks)


def _sampled_series(trajectories: Trajectories, indices, settings: ClusterSettings, lazy: bool):
    """(series of the fit, mask (H, W) numpy, sample (rows, cols) or None).

    The scene's series when it is in memory and has at most ``sample_size`` pixels with data;
    else a random sample of ``sample_size`` of them (the same pixels lazily and in memory)."""
    stacks = [trajectories.stack(i).data for i in indices]
    if not lazy:
        series, mask = _series(trajectories, indices)
        if len(series) <= settings.sample_size:
            return series, mask, None
    else:
        mask = blocks.compute(pixel_sample.valid_mask(stacks), progress=False)[0]
    rows, cols = pixel_sample.draw_pixels(mask, settings.sample_size, seed=settings.random_state)
    series = pixel_sample.read_pixels(stacks if len(stacks) > 1 else stacks[0], rows, cols)
    return series, mask, (rows, cols)


def cluster_trajectories(trajectories: Trajectories, indices, settings: ClusterSettings | None = None, *,
                         name: str | None = None, truth=None, rng=None, progress: bool = True,
                         output_dir=None) -> ClusterRun:
    """Choose k and cluster every pixel's trajectory with k-Shape.

    Parameters
    ----------
    trajectories : Trajectories
        From :func:`load_trajectories`.
    indices : list of str
        One index (univariate) or several (multivariate: one variable per index, each
        z-normalised on its own).
    settings : ClusterSettings
        Default ``ClusterSettings()`` (notebook 03's defaults).
    name : str or None
        Key of the run; default ``"univariate"`` / ``"multivariate"``.
    truth : dict or int (H, W) or None
        The scene's truth (``scene.truth``, its ``class`` is used) for :meth:`ClusterRun.ari_vs_truth`.
    rng : numpy.random.Generator or None
        Draws the elbow's random subset. Default ``default_rng(settings.random_state)``; pass
        one generator to successive runs (and :func:`compare_engines`) so each draws its own
        subset in turn, as notebook 03 does.
    progress : bool
        A progress bar over the elbow's k.
    output_dir : path or None
        Needed when the trajectories are lazy (a scene opened in chunks): the label image
        ``clusters_<name>.tif`` is written there block by block as every pixel is assigned,
        and read back lazily.

    Returns
    -------
    ClusterRun

    Notes
    -----
    Steps: series of the pixels with data; :func:`~ltlib.cluster.prepare` (gaps filled in
    time, flat series set aside); the SBD elbow (:func:`~ltlib.cluster.elbow`) on a random
    subset of ``elbow_max_series`` series, its Kneedle knee and best SBD silhouette; the
    Euclidean elbow of the same subset; k = ``n_clusters``, else the knee, else the best
    silhouette; the final k-Shape fit of every series (``n_init`` restarts) and its SBD
    silhouette. With more than ``sample_size`` pixels with data, or lazy trajectories, the
    elbow and the fit use a random sample of ``sample_size`` pixels and every pixel is then
    assigned to its nearest centroid (block by block when lazy).
    """
    settings = settings or ClusterSettings()
    indices = [str(i).upper() for i in ([indices] if isinstance(indices, str) else indices)]
    if not indices:
        raise ValueError("cluster_trajectories needs at least one index")
    name = name or ("univariate" if len(indices) == 1 else "multivariate")
    lazy = any(blocks.is_lazy(trajectories.stack(i).data) for i in indices)
    if lazy and output_dir is None:
        raise ValueError(f"the trajectories ({trajectories.describe()}) are opened in chunks (too large for "
                         "memory): cluster_trajectories needs output_dir, where every pixel's cluster label is "
                         "written block by block")
    truth_img = None
    if truth is not None:
        truth_img = np.asarray(truth["class"] if isinstance(truth, dict) else truth)
        if truth_img.shape != trajectories.grid.shape:
            raise ValueError(f"truth is {truth_img.shape}, the trajectories' grid {trajectories.grid.shape}")
    seconds = {}
    t0 = time.perf_counter()
    series, mask, sample = _sampled_series(trajectories, indices, settings, lazy)
    prep = prepare(series)
    n = len(prep.X)
    ks = settings.k_range
    if n <= max(ks):
        raise ValueError(f"{name} ({' + '.join(indices)}): only {n} pixels have a shape, too few for k_range up to "
                         f"{max(ks)}; lower k_range")
    seconds["prepare"] = time.perf_counter() - t0
    # the elbow on a random subset (the same subset for the Euclidean view)
    rng = np.random.default_rng(settings.random_state) if rng is None else rng
    idx = rng.choice(n, min(settings.elbow_max_series, n), replace=False)
    t = time.perf_counter()
    table = elbow(prep.X[idx], ks, n_init=settings.elbow_n_init, random_state=settings.random_state,
                  sample_size=settings.silhouette_sample, max_iter=settings.max_iter, init=settings.elbow_init,
                  progress=progress)
    table.attrs["n_series"] = int(len(idx))
    seconds["elbow"] = time.perf_counter() - t
    euclid = None
    if settings.euclidean_elbow:
        t = time.perf_counter()
        euclid = euclidean_elbow(prep.X[idx], ks, n_init=settings.elbow_n_init, random_state=settings.random_state)
        seconds["euclidean_elbow"] = time.perf_counter() - t
    knee_k = table.attrs["knee"]
    sil = table["silhouette"]
    if settings.n_clusters is not None:
        k, how = int(settings.n_clusters), "parameter"
        if n <= k:
            raise ValueError(f"n_clusters={k} but only {n} pixels of {' + '.join(indices)} have a shape")
    elif knee_k is not None:
        k, how = int(knee_k), "knee"
    elif not sil.isna().all():
        k, how = int(table.loc[sil.idxmax(), "k"]), "max silhouette"
    else:
        raise ValueError(f"{name}: the elbow has no knee and no silhouette to choose k from; set n_clusters")
    t = time.perf_counter()
    model = KShape(k, n_init=settings.n_init, max_iter=settings.max_iter, random_state=settings.random_state,
                   init=settings.init).fit(prep.X)
    score = silhouette(prep.X, model.labels_, sample_size=settings.silhouette_sample,
                       random_state=settings.random_state) if len(np.unique(model.labels_)) >= 2 else float("nan")
    seconds["fit"] = time.perf_counter() - t
    run = ClusterRun(name, indices, trajectories.years, trajectories.grid, mask, prep, model, how, float(score),
                     table, euclid, truth_img, trajectories.describe(), seconds, sample=sample)
    if sample is not None:
        t = time.perf_counter()
        _assign_every_pixel(run, [trajectories.stack(i).data for i in indices], lazy, output_dir)
        seconds["assign"] = time.perf_counter() - t
    return run


def _assign_every_pixel(run: ClusterRun, stacks, lazy: bool, output_dir) -> None:
    """Every pixel to its nearest centroid; lazily: written to ``clusters_<name>.tif`` block by
    block (with the label counts in the same pass), then read back lazily."""
    labels = assign_labels(stacks, run.model)
    if not lazy:
        run.assigned = labels
        return
    import dask.array as da

    path = Path(output_dir) / f"clusters_{run.name}.tif"
    counts = da.bincount((labels.ravel() + 1).astype(np.int64), minlength=run.k + 2)  # 0: no data
    _, (counts,) = blocks.write_rasters([dict(path=path, data=_as_nan(labels), grid=run.grid, nodata=NO_DATA,
                                              dtype="int16", band_names=[run.band_name],
                                              tags={"run": run.name, "flat_label": run.k})], also=[counts])
    data = blocks.open_raster(path, chunks=int(stacks[0].chunksize[-1]))[0][0]
    run.assigned = _from_nan(data)
    run.sizes = np.asarray(counts[1:], dtype=np.int64)
    run.files = {"labels": path}


# ----------------------------------------------------------------------------- engines
@dataclass
class EngineComparison:
    """ltlib, tslearn and the ``kshape`` package on one subsample, scored the same way.

    ``results`` {engine: {seconds, n_iter, init, inertia, silhouette, ari_vs_ltlib,
    speedup_of_ltlib, n_series, k, max_iter[, ari_vs_truth]}}; ``labels`` {engine: (n,)}.
    """

    results: dict
    labels: dict

    def summary(self) -> dict:
        return {e: dict(r) for e, r in self.results.items()}

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.results).T


#: The engines compared and the initialisation each library uses by default.
ENGINE_INITS = (("ltlib", "random"), ("tslearn", "random"), ("kshape", "random-labels"))


def compare_engines(run: ClusterRun, *, n_series: int = 2000, max_iter: int = 10, random_state: int = 0,
                    rng=None, engines=ENGINE_INITS) -> EngineComparison:
    """Fit the run's k with each engine on a random subsample of its series, one initialisation each.

    Parameters
    ----------
    run : ClusterRun
        Gives the series (``run.prepared.X``), k, and the truth when it has one.
    n_series : int
        Size of the random subsample (all series if fewer).
    max_iter : int
        The same iteration budget for every engine.
    random_state : int
        Seed of the engines' initialisations (and of the subsample when ``rng`` is None).
    rng : numpy.random.Generator or None
        Draws the subsample (see :func:`cluster_trajectories`).
    engines : sequence of (engine, init)

    Returns
    -------
    EngineComparison
        Each engine's centroids scored alike: SBD inertia, exact SBD silhouette on the
        subsample, ARI against ltlib's labels and (with truth) against the truth classes.
        tslearn is warmed up first so its numba compilation is not timed.
    """
    from sklearn.metrics import adjusted_rand_score

    _int("engine_sample", n_series, 2)
    _int("engine_max_iter", max_iter, 1)
    X = run.prepared.X
    rng = np.random.default_rng(random_state) if rng is None else rng
    sub = rng.choice(len(X), min(n_series, len(X)), replace=False)
    Xs = X[sub]
    truth = None if run.truth is None else run._fit_truth_rows()[run.prepared.keep][sub]
    k = run.k
    if any(e == "tslearn" for e, _ in engines):
        KShape(k, max_iter=2, random_state=0, engine="tslearn").fit(Xs[:100])  # numba warm-up
    results, labels = {}, {}
    for engine, init in engines:
        mdl = KShape(k, max_iter=max_iter, random_state=random_state, engine=engine, init=init).fit(Xs)
        labels[engine] = mdl.labels_
        r = dict(seconds=round(mdl.fit_time_, 3), n_iter=mdl.n_iter_, init=init, inertia=round(mdl.inertia_, 2),
                 silhouette=round(silhouette(Xs, mdl.labels_, sample_size=len(Xs)), 4)
                 if len(np.unique(mdl.labels_)) >= 2 else None,
                 n_series=int(len(Xs)), k=k, max_iter=int(max_iter))
        if truth is not None:
            r["ari_vs_truth"] = round(float(adjusted_rand_score(truth, mdl.labels_)), 4)
        results[engine] = r
    first = engines[0][0]
    for e, r in results.items():
        r["ari_vs_ltlib"] = round(float(adjusted_rand_score(labels[first], labels[e])), 4)
        r["speedup_of_ltlib"] = round(r["seconds"] / max(results[first]["seconds"], 1e-9), 1)
    return EngineComparison(results, labels)

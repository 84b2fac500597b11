"""Accuracy assessment and area estimation for categorical maps (trajectory classes 0..5).

Design-based estimators for a map checked against reference labels collected with a
stratified random sample whose strata are the map classes, after

- Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014), "Good practices for estimating
  area and assessing accuracy of land change", Remote Sensing of Environment 148:42-57;
- Olofsson, Foody, Stehman & Woodcock (2013), RSE 129:122-131 (variance of producer's accuracy);
- Card (1982), Photogrammetric Engineering and Remote Sensing 48:431-439 (the area-weighted
  error matrix p_ij = W_i n_ij / n_i.);
- Cochran (1977), Sampling Techniques, 3rd ed. (sample size and Neyman allocation).

Notation: K classes; rows of every matrix are MAP classes (strata, index i), columns are
REFERENCE classes (index j). W_i is the share of the mapped area in class i, n_ij the
number of sample units mapped i and labelled j, n_i. the sample size of stratum i.

Maps too large for memory (dask arrays, :mod:`ltlib.blocks`) are counted block by block:
:func:`class_pixel_counts`, :func:`census_accuracy` and :func:`stratified_sample` stream
per-block counts (never the whole map) and give exactly what they give for the numpy map;
the stratified sample draws the same points for the same seed.

Where an estimate cannot be computed (no sample in a stratum, a single sample unit, a class
never seen in the reference sample...) it is NaN, the reason is stored in
``AccuracyReport.notes`` and an :class:`AccuracyWarning` is emitted: never a silent NaN.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "AccuracyWarning",
    "AccuracyReport",
    "confusion_matrix",
    "class_pixel_counts",
    "stratified_sample",
    "reference_points",
    "sample_allocation",
    "required_sample_size",
    "area_adjusted",
    "census_accuracy",
    "change_agreement",
    "jsonable",
]

#: Square metres per hectare.
M2_PER_HA = 10_000.0


class AccuracyWarning(UserWarning):
    """An estimate is NaN (with the reason) or a sampling request could not be met in full."""


# --- input checks -----------------------------------------------------------------------------

def _as_classes(classes) -> np.ndarray:
    """Class codes as a 1-D int64 array, unique, in the caller's order."""
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"classes must be a non-empty 1-D sequence of integers, got shape {arr.shape}")
    out = _as_int_labels(arr, "classes")
    if np.unique(out).size != out.size:
        raise ValueError(f"classes must be unique, got {out.tolist()}")
    return out


def _as_int_labels(values, what: str) -> np.ndarray:
    """Integer labels as int64; floats are accepted only when finite and integral."""
    arr = np.asarray(values)
    if arr.dtype == bool:
        raise ValueError(f"{what} must hold integer class codes, got booleans")
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{what} must hold integer class codes, got dtype {arr.dtype}")
    n_nan = int(np.count_nonzero(np.isnan(arr)))
    if n_nan:
        raise ValueError(f"{what} contains {n_nan} NaN value(s); mask them out (valid=...) first")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains infinite values")
    if np.any(arr != np.round(arr)):
        raise ValueError(f"{what} contains non-integer values; class codes must be integers")
    return arr.astype(np.int64)


def _class_index(labels: np.ndarray, classes: np.ndarray, what: str) -> np.ndarray:
    """Position of every label in ``classes``; ValueError naming labels that are not classes."""
    order = np.argsort(classes, kind="stable")
    sorted_cls = classes[order]
    pos = np.searchsorted(sorted_cls, labels)
    pos_clip = np.minimum(pos, sorted_cls.size - 1)
    ok = sorted_cls[pos_clip] == labels
    if not np.all(ok):
        bad = np.unique(labels[~ok])
        raise ValueError(
            f"{what} has label(s) {bad[:10].tolist()} not in classes {classes.tolist()} "
            f"({int(np.count_nonzero(~ok))} value(s))"
        )
    return order[pos_clip]


def _per_class_vector(values, classes: np.ndarray, what: str, *, fill_missing=None) -> np.ndarray:
    """A (K,) float vector aligned with ``classes`` from an array or a {class: value} dict."""
    if isinstance(values, dict):
        keys = _as_int_labels(np.asarray(list(values.keys())), f"{what} keys") if values else np.array([], int)
        extra = sorted(set(keys.tolist()) - set(classes.tolist()))
        if extra:
            raise ValueError(f"{what} has entries for {extra}, which are not in classes {classes.tolist()}")
        missing = [int(c) for c in classes if int(c) not in set(keys.tolist())]
        if missing and fill_missing is None:
            raise ValueError(f"{what} has no entry for class(es) {missing}")
        lookup = {int(k): v for k, v in zip(keys.tolist(), values.values())}
        vec = np.array([lookup.get(int(c), fill_missing) for c in classes], dtype=float)
    else:
        vec = np.asarray(values, dtype=float)
        if vec.shape != classes.shape:
            raise ValueError(
                f"{what} must have one value per class: shape {vec.shape} vs {classes.shape} classes"
            )
    if np.any(np.isnan(vec)):
        raise ValueError(f"{what} contains NaN")
    if not np.all(np.isfinite(vec)):
        raise ValueError(f"{what} contains infinite values")
    return vec


def _check_counts(counts: np.ndarray, what: str) -> np.ndarray:
    if np.any(counts < 0):
        bad = np.flatnonzero(counts < 0)
        raise ValueError(f"{what} must be >= 0; negative at position(s) {bad.tolist()}: {counts[bad].tolist()}")
    if counts.sum() <= 0:
        raise ValueError(f"{what} sum to zero: the map has no area to assess")
    return counts


def _check_valid(valid, shape, what: str, label: str = "valid") -> np.ndarray:
    """A (shape) bool mask of the pixels to use: all when ``valid`` is None. ``label`` names
    the mask in the error message."""
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid)
    if valid.shape != shape:
        raise ValueError(f"{label} shape {valid.shape} does not match {what} shape {shape}")
    if valid.dtype != bool:
        raise ValueError(f"valid must be a boolean mask, got dtype {valid.dtype}")
    return valid.copy()


def _check_map(class_map, valid, nodata) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (H, W) class map; return (int64 labels, bool usable-pixel mask)."""
    cm = np.asarray(class_map)
    if cm.ndim != 2:
        raise ValueError(f"class_map must be 2-D (H, W), got shape {cm.shape}")
    if cm.size == 0:
        raise ValueError(f"class_map is empty (shape {cm.shape})")
    usable = _check_valid(valid, cm.shape, "class_map", "valid mask")
    if np.issubdtype(cm.dtype, np.floating):
        usable &= ~np.isnan(cm)  # NaN is the package-wide nodata for float rasters
    if nodata is not None:
        usable &= cm != nodata
    if not usable.any():
        raise ValueError("class_map has no valid pixels (all masked by valid/nodata/NaN)")
    labels = np.zeros(cm.shape, dtype=np.int64)
    labels[usable] = _as_int_labels(cm[usable], "class_map")
    return labels, usable


def _check_count_request(n, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValueError(f"{what} must be a whole number of samples, got {n!r}")
    if n < 0:
        raise ValueError(f"{what} must be >= 0, got {n}")
    return int(n)


# --- confusion matrix -------------------------------------------------------------------------

def confusion_matrix(map_labels, ref_labels, classes) -> np.ndarray:
    """Count matrix of map labels against reference labels.

    Parameters
    ----------
    map_labels, ref_labels : array-like, same shape (any; flattened)
        Integer class codes (floats allowed if integral; NaN is an error).
    classes : sequence of int, (K,)
        Class codes; sets the row/column order.

    Returns
    -------
    (K, K) int64 array: entry [i, j] = number of units mapped ``classes[i]`` whose reference
    label is ``classes[j]`` (rows = map, columns = reference).
    """
    return _confusion(map_labels, ref_labels, _as_classes(classes), "map_labels", "ref_labels")


def _confusion(map_labels, ref_labels, cls: np.ndarray, m_name: str, r_name: str) -> np.ndarray:
    m = np.asarray(map_labels)
    r = np.asarray(ref_labels)
    if m.shape != r.shape:
        raise ValueError(f"{m_name} shape {m.shape} does not match {r_name} shape {r.shape}")
    mi = _class_index(_as_int_labels(m, m_name).ravel(), cls, m_name)
    ri = _class_index(_as_int_labels(r, r_name).ravel(), cls, r_name)
    k = cls.size
    return np.bincount(mi * k + ri, minlength=k * k).reshape(k, k).astype(np.int64)


# --- sampling design --------------------------------------------------------------------------

def class_pixel_counts(class_map, classes, *, valid=None, nodata=None) -> np.ndarray:
    """Number of usable pixels of each class in a map (the N_i. of the strata).

    Parameters
    ----------
    class_map : (H, W) int array (float allowed; NaN pixels are nodata).
    classes : sequence of int, (K,)
    valid : (H, W) bool, optional; False pixels are ignored.
    nodata : value ignored, optional.

    Returns
    -------
    (K,) int64 pixel counts aligned with ``classes``. ValueError if a usable pixel holds a code
    that is not in ``classes`` (nothing is dropped silently).
    """
    cls = _as_classes(classes)
    if _lazy(class_map, valid):
        return _lazy_class_counts(class_map, cls, valid, nodata)
    labels, usable = _check_map(class_map, valid, nodata)
    idx = _class_index(labels[usable], cls, "class_map")
    return np.bincount(idx, minlength=cls.size).astype(np.int64)


# --- block by block (dask maps) -----------------------------------------------------------------

def _lazy(*arrays) -> bool:
    from .blocks import is_lazy

    return any(is_lazy(a) for a in arrays)


def _aligned(arrays, shape, names):
    """Dask arrays of ``shape`` with the chunks of the first dask one (numpy ones wrapped)."""
    import dask.array as da

    from .blocks import is_lazy

    first = next(a for a in arrays if is_lazy(a))
    out = []
    for a, name in zip(arrays, names):
        if tuple(a.shape) != tuple(shape):
            raise ValueError(f"{name} shape {tuple(a.shape)} does not match class_map shape {tuple(shape)}")
        out.append(a.rechunk(first.chunks) if is_lazy(a) else da.from_array(np.asarray(a), chunks=first.chunks))
    return out


def _lazy_map(class_map, valid):
    """(class map, valid mask) as aligned 2-D dask arrays (``valid`` all True when None), checked."""
    import dask.array as da

    if class_map.ndim != 2:
        raise ValueError(f"class_map must be 2-D (H, W), got shape {class_map.shape}")
    if class_map.size == 0:
        raise ValueError(f"class_map is empty (shape {class_map.shape})")
    if valid is None:
        (cm,) = _aligned([class_map], class_map.shape, ["class_map"])
        return cm, da.ones(cm.shape, dtype=bool, chunks=cm.chunks)
    if valid.dtype != bool:
        raise ValueError(f"valid must be a boolean mask, got dtype {valid.dtype}")
    cm, vm = _aligned([class_map, valid], class_map.shape, ["class_map", "valid mask"])
    return cm, vm


def _block_labels(cm, valid, nodata):
    """One block: (int64 labels, usable mask), the checks of :func:`_check_map` on the block."""
    usable = np.asarray(valid, dtype=bool).copy()
    if np.issubdtype(cm.dtype, np.floating):
        usable &= ~np.isnan(cm)
    if nodata is not None:
        usable &= cm != nodata
    labels = np.zeros(cm.shape, dtype=np.int64)
    labels[usable] = _as_int_labels(cm[usable], "class_map")
    return labels, usable


def _counts_block(cm, valid, *, cls, nodata):
    labels, usable = _block_labels(cm, valid, nodata)
    idx = _class_index(labels[usable], cls, "class_map")
    return np.bincount(idx, minlength=cls.size).astype(np.int64)[None, None]


def _lazy_class_counts(class_map, cls, valid, nodata) -> np.ndarray:
    from .blocks import compute

    cm, vm = _lazy_map(class_map, valid)
    per_block = cm.map_blocks(_counts_block, vm, cls=cls, nodata=nodata, new_axis=2, chunks=(1, 1, cls.size),
                              dtype=np.int64)
    counts = compute(per_block.sum(axis=(0, 1)), progress=False)[0]
    if counts.sum() == 0:
        raise ValueError("class_map has no valid pixels (all masked by valid/nodata/NaN)")
    return np.asarray(counts, dtype=np.int64)


def _row_counts_block(cm, valid, *, cls, nodata):
    """One block: usable pixels of each class per row, (h, 1, K)."""
    labels, usable = _block_labels(cm, valid, nodata)
    out = np.zeros((cm.shape[0], 1, cls.size), np.int64)
    r, _ = np.nonzero(usable)
    idx = _class_index(labels[usable], cls, "class_map")
    np.add.at(out, (r, 0, idx), 1)
    return out


def _unique_block(cm, valid, *, nodata):
    labels, usable = _block_labels(cm, valid, nodata)
    u = np.unique(labels[usable])
    return u


def _lazy_stratified_sample(class_map, n_per_class, seed, valid, nodata):
    """:func:`stratified_sample` of a dask map, block by block, drawing exactly the same points.

    The in-memory draw needs the pixels of each class in row-major order only through their
    count (``rng.choice(N_c, n_c)`` picks ranks). So: the classes present (one pass), the
    usable pixels of each class per row (H, K) (one pass), the same ranks drawn, each rank's
    row from the cumulative row counts, and its column by reading only the rows that hold a
    sampled pixel.
    """
    import dask
    import dask.array as da

    from .blocks import compute

    cm, vm = _lazy_map(class_map, valid)
    uniq = [dask.delayed(_unique_block)(b, v, nodata=nodata)
            for b, v in zip(cm.to_delayed().ravel(), vm.to_delayed().ravel())]
    present = np.unique(np.concatenate(compute(*uniq, progress=False))).astype(np.int64)
    if present.size == 0:
        raise ValueError("class_map has no valid pixels (all masked by valid/nodata/NaN)")
    per_row = cm.map_blocks(_row_counts_block, vm, cls=present, nodata=nodata, new_axis=2,
                            chunks=(cm.chunks[0], (1,) * len(cm.chunks[1]), (present.size,)), dtype=np.int64)
    per_row = np.asarray(compute(per_row.sum(axis=1), progress=False)[0])  # (H, K)
    counts = per_row.sum(axis=0)
    want = _wanted(n_per_class, present)
    rng = np.random.default_rng(seed)
    short, sel_rows, sel_cls, sel_rank = [], [], [], []
    for c in sorted(want):
        n_c = want[c]
        k = int(np.searchsorted(present, c))
        size = int(counts[k]) if k < present.size and present[k] == c else 0
        if n_c > size:
            short.append(f"class {c}: {size} pixel(s) < {n_c} asked")
            n_c = size
        if n_c == 0:
            continue
        ranks = rng.choice(size, size=n_c, replace=False)
        ends = np.cumsum(per_row[:, k])
        rows = np.searchsorted(ends, ranks, side="right")
        sel_rows.append(rows)
        sel_cls.append(np.full(n_c, k))
        sel_rank.append(ranks - (ends[rows] - per_row[rows, k]))  # rank within its row
    if short:
        warnings.warn("stratified_sample: stratum smaller than the sample asked, taking all of it: " + "; ".join(short),
                      AccuracyWarning, stacklevel=3)
    if not sel_rows:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    rows, ks, within = (np.concatenate(a) for a in (sel_rows, sel_cls, sel_rank))
    need = np.unique(rows)
    lab_rows, use_rows = compute(da.map_blocks(lambda b, v: _block_labels(b, v, nodata)[0], cm[need], vm[need],
                                               dtype=np.int64),
                                 da.map_blocks(lambda b, v: _block_labels(b, v, nodata)[1], cm[need], vm[need],
                                               dtype=bool), progress=False)
    cols = np.empty_like(rows)
    for i, r in enumerate(need):
        hit = rows == r
        for k in np.unique(ks[hit]):
            sel = hit & (ks == k)
            cols[sel] = np.flatnonzero(use_rows[i] & (lab_rows[i] == present[k]))[within[sel]]
    # grouped by class (ascending code), row-major inside, as the in-memory sample
    flat = rows * cm.shape[1] + cols
    order = np.lexsort((flat, present[ks]))
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def _wanted(n_per_class, present) -> dict:
    """{class: sample size} from ``n_per_class`` (int or dict) for the classes ``present``."""
    if isinstance(n_per_class, dict):
        want = {}
        for k, v in n_per_class.items():
            key = int(_as_int_labels(np.asarray([k]), "n_per_class keys")[0])
            want[key] = _check_count_request(v, f"n_per_class[{key}]")
        missing = sorted(set(present.tolist()) - set(want))
        if missing:
            raise ValueError(
                f"n_per_class has no entry for map class(es) {missing}; give 0 to leave a class out"
            )
        return want
    n = _check_count_request(n_per_class, "n_per_class")
    return {int(c): n for c in present}


def _confusion_block(p, t, valid, *, cls):
    valid = np.asarray(valid, dtype=bool)
    return _confusion(p[valid], t[valid], cls, "pred", "truth").ravel()[None, None]


def _lazy_confusion(pred, truth, valid, cls) -> np.ndarray:
    """Confusion (K, K) of a dask ``pred`` against ``truth`` (numpy or dask), block by block."""
    from .blocks import compute

    if tuple(pred.shape) != tuple(np.shape(truth)):
        raise ValueError(f"pred shape {tuple(pred.shape)} does not match truth shape {tuple(np.shape(truth))}")
    if pred.ndim != 2:
        raise ValueError(f"pred must be (H, W) for block-wise counts, got shape {pred.shape}")
    p, vm = _lazy_map(pred, valid)
    (_, t) = _aligned([p, truth], pred.shape, ["pred", "truth"])
    k = cls.size
    per_block = p.map_blocks(_confusion_block, t, vm, cls=cls, new_axis=2, chunks=(1, 1, k * k), dtype=np.int64)
    cm = np.asarray(compute(per_block.sum(axis=(0, 1)), progress=False)[0]).reshape(k, k)
    if cm.sum() == 0:
        raise ValueError("no valid pixels to assess")
    return cm.astype(np.int64)


def stratified_sample(class_map, n_per_class, *, seed=0, valid=None, nodata=None):
    """Stratified random sample of pixels, strata = map classes, without replacement.

    Parameters
    ----------
    class_map : (H, W) int array
        The map to assess. Float maps are accepted when integral; NaN pixels are nodata.
    n_per_class : int or dict {class: int}
        Sample size per stratum. An int applies to every class present in the map. A dict must
        name every class present among the usable pixels (give 0 to skip one).
    seed : int
        Seed of ``numpy.random.default_rng``: the same seed gives the same sample.
    valid : (H, W) bool, optional
        Pixels that may be sampled.
    nodata : optional
        Map value never sampled.

    Returns
    -------
    (rows, cols) : two (n,) int64 arrays of pixel indices, grouped by class (ascending code),
    row-major order within a class. The map class of sample s is ``class_map[rows[s], cols[s]]``.

    A stratum with fewer usable pixels than asked is taken whole and an
    :class:`AccuracyWarning` says so. ValueError for a map that is not 2-D, empty or without
    usable pixels, and for negative or non-integer sizes.

    A dask map (and/or mask) is sampled block by block: two streamed passes of per-row class
    counts, then only the rows holding a sampled pixel are read; the points are the same as
    for the numpy map with the same seed.
    """
    if _lazy(class_map, valid):
        return _lazy_stratified_sample(class_map, n_per_class, seed, valid, nodata)
    labels, usable = _check_map(class_map, valid, nodata)
    flat_idx = np.flatnonzero(usable.ravel())
    flat_lab = labels.ravel()[flat_idx]
    present, counts = np.unique(flat_lab, return_counts=True)
    want = _wanted(n_per_class, present)

    rng = np.random.default_rng(seed)
    order = np.argsort(flat_lab, kind="stable")  # pixels grouped by class, row-major inside
    starts = np.concatenate([[0], np.cumsum(counts)])
    avail = {int(c): (starts[i], starts[i + 1]) for i, c in enumerate(present)}
    picked, short = [], []
    for c in sorted(want):
        n_c = want[c]
        lo, hi = avail.get(c, (0, 0))
        pop = order[lo:hi]
        if n_c > pop.size:
            short.append(f"class {c}: {pop.size} pixel(s) < {n_c} asked")
            n_c = pop.size
        if n_c == 0:
            continue
        chosen = rng.choice(pop.size, size=n_c, replace=False)
        picked.append(np.sort(flat_idx[pop[chosen]]))
    if short:
        warnings.warn(
            "stratified_sample: stratum smaller than the sample asked, taking all of it: "
            + "; ".join(short),
            AccuracyWarning,
            stacklevel=2,
        )
    flat = np.concatenate(picked) if picked else np.array([], dtype=np.int64)
    rows, cols = np.unravel_index(flat, labels.shape)
    return rows.astype(np.int64), cols.astype(np.int64)


def reference_points(class_map, rows, cols, grid, *, reference=None, names=None):
    """Table of sample points to label on imagery: one row per pixel, pixel centres.

    Parameters
    ----------
    class_map : (H, W) int array on ``grid``
    rows, cols : (n,) int arrays, e.g. from :func:`stratified_sample`
    grid : :class:`ltlib.io.Grid` of the map (CRS and affine transform)
    reference : (H, W) int array, optional
        Known reference classes (the sample's truth); without it the ``reference`` column is
        empty (pandas ``<NA>``) for an interpreter to fill in.
    names : dict {class: name}, optional

    Returns
    -------
    pandas.DataFrame with columns point, row, col, x, y (pixel centre in the map CRS units),
    lon, lat (degrees, EPSG:4326), map_class, [map_name], reference. Feed ``map_class`` and
    the filled ``reference`` to :func:`area_adjusted`. ValueError when the map is not on the
    grid or a point lies outside it.
    """
    import pandas as pd
    from rasterio.warp import transform as warp_transform

    class_map = class_map if _lazy(class_map) else np.asarray(class_map)
    if tuple(class_map.shape) != tuple(grid.shape):
        raise ValueError(f"reference_points: class map shape {class_map.shape} is not the grid's {tuple(grid.shape)}")
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    if rows.shape != cols.shape:
        raise ValueError(f"reference_points: {rows.size} rows but {cols.size} cols")
    outside = (rows < 0) | (rows >= grid.height) | (cols < 0) | (cols >= grid.width)
    if outside.any():
        raise ValueError(f"reference_points: {int(outside.sum())} point(s) outside the {grid.height} x {grid.width} grid")
    x, y = grid.transform @ (cols + 0.5, rows + 0.5)  # pixel centres
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    lon, lat = warp_transform(grid.crs, "EPSG:4326", x.tolist(), y.tolist()) if rows.size else ([], [])
    table = pd.DataFrame({"point": np.arange(rows.size), "row": rows, "col": cols, "x": x, "y": y,
                          "lon": np.asarray(lon, dtype=float), "lat": np.asarray(lat, dtype=float),
                          "map_class": _at(class_map, rows, cols)})
    if names is not None:
        table["map_name"] = [names.get(int(c), "") for c in table["map_class"]]
    if reference is None:
        table["reference"] = pd.array([pd.NA] * rows.size, dtype="Int64")
    else:
        reference = reference if _lazy(reference) else np.asarray(reference)
        if tuple(reference.shape) != tuple(class_map.shape):
            raise ValueError(f"reference_points: reference shape {reference.shape} is not the map's {class_map.shape}")
        table["reference"] = pd.array(_at(reference, rows, cols).astype(np.int64), dtype="Int64")
    return table


def _at(image, rows, cols) -> np.ndarray:
    """``image[rows, cols]``; a dask image reads only the blocks holding those pixels."""
    if not _lazy(image):
        return image[rows, cols]
    from .blocks import compute

    if rows.size == 0:
        return np.array([], dtype=image.dtype)
    return np.asarray(compute(image.vindex[rows, cols], progress=False)[0])


def _weights(map_counts) -> tuple[np.ndarray, np.ndarray]:
    """(class codes, counts) from a (K,) vector (codes 0..K-1) or a {class: count} dict."""
    if isinstance(map_counts, dict):
        cls = _as_classes(sorted(map_counts))
        counts = _per_class_vector(map_counts, cls, "map_counts")
    else:
        counts = np.asarray(map_counts, dtype=float)
        if counts.ndim != 1 or counts.size == 0:
            raise ValueError(f"map_counts must be a non-empty (K,) vector, got shape {counts.shape}")
        if np.any(np.isnan(counts)):
            raise ValueError("map_counts contains NaN")
        cls = np.arange(counts.size)
    _check_counts(counts, "map_counts")
    return cls, counts


def _anticipated_ua(target_ua, cls: np.ndarray) -> np.ndarray:
    ua = _per_class_vector(target_ua, cls, "target_ua")
    if np.any((ua < 0) | (ua > 1)):
        raise ValueError(f"target_ua must be proportions in [0, 1], got {ua.tolist()}")
    return ua


def required_sample_size(map_counts, target_ua, *, target_se_overall=0.01) -> int:
    """Total sample size for a target standard error of overall accuracy (Olofsson et al. 2014).

    n = (sum_i W_i S_i / S(O))^2 with S_i = sqrt(U_i (1 - U_i)) (Cochran 1977, stratified sampling),
    rounded up.

    Parameters
    ----------
    map_counts : (K,) pixel counts (or areas) per map class, or dict {class: count}.
    target_ua : (K,) or dict, anticipated user's accuracy of each class (0..1).
    target_se_overall : target standard error of overall accuracy (proportion, e.g. 0.01).
    """
    cls, counts = _weights(map_counts)
    ua = _anticipated_ua(target_ua, cls)
    if not target_se_overall > 0:
        raise ValueError(f"target_se_overall must be > 0, got {target_se_overall}")
    w = counts / counts.sum()
    n = (np.sum(w * np.sqrt(ua * (1 - ua))) / target_se_overall) ** 2
    return int(math.ceil(n - 1e-9))


def sample_allocation(map_counts, n_total, *, min_per_class=50, target_ua=None):
    """Allocate a total sample to the strata: proportional, with a minimum per class.

    The paper's recommendation (Olofsson et al. 2014, sample allocation): rare classes get a fixed
    minimum (50-100) and the rest of the sample is spread in proportion to mapped area. With
    ``target_ua`` (anticipated user's accuracies) the rest is spread in proportion to
    W_i sqrt(U_i (1 - U_i)) instead (Neyman allocation for overall accuracy, Cochran 1977).
    No stratum gets more units than it has pixels. Rounding uses largest remainders, so the
    allocation sums to ``n_total`` unless the map has fewer pixels than that.

    Parameters
    ----------
    map_counts : (K,) pixel counts per map class, or dict {class: count}.
    n_total : int, total number of sample units.
    min_per_class : int, minimum per stratum (capped by the stratum's pixel count).
    target_ua : (K,) or dict, optional anticipated user's accuracies (0..1).

    Returns
    -------
    (K,) int64 array aligned with ``map_counts``, or a dict {class: n} if a dict was given.
    """
    cls, counts = _weights(map_counts)
    n_total = _check_count_request(n_total, "n_total")
    min_per_class = _check_count_request(min_per_class, "min_per_class")
    share = counts.copy()
    if target_ua is not None:
        ua = _anticipated_ua(target_ua, cls)
        share = counts * np.sqrt(ua * (1 - ua))
        # a class anticipated perfect still needs a sample to check it
        share = np.where((share == 0) & (counts > 0), 1e-12 * counts, share)
    floor_n = np.minimum(min_per_class, counts)
    if n_total < floor_n.sum():
        raise ValueError(
            f"n_total={n_total} is smaller than the minimum allocation {int(floor_n.sum())} "
            f"({min_per_class} per class, capped by class size)"
        )
    alloc = np.zeros(counts.size)
    fixed = counts == 0
    while True:
        free = ~fixed
        rest = n_total - alloc[fixed].sum()
        if not free.any():
            break
        prop = np.zeros_like(alloc)
        prop[free] = rest * share[free] / share[free].sum()
        low = free & (prop < floor_n)
        high = free & (prop > counts)
        if not (low.any() or high.any()):
            alloc[free] = prop[free]
            break
        alloc[low] = floor_n[low]
        alloc[high] = counts[high]
        fixed |= low | high
    out = np.floor(alloc).astype(np.int64)
    # largest remainders bring the sum back to n_total (never above a stratum's size)
    deficit = int(min(n_total, counts.sum()) - out.sum())
    if deficit > 0:
        rem = np.where(out < counts, alloc - out, -np.inf)
        for i in np.argsort(-rem, kind="stable")[:deficit]:
            out[i] += 1
    if out.sum() < n_total:
        warnings.warn(
            f"sample_allocation: the map has only {int(counts.sum())} pixels, fewer than n_total={n_total}",
            AccuracyWarning,
            stacklevel=2,
        )
    if isinstance(map_counts, dict):
        return {int(c): int(v) for c, v in zip(cls, out)}
    return out


# --- area-adjusted estimation -----------------------------------------------------------------

def jsonable(obj):
    """Recursively convert numpy arrays/scalars to lists/floats/ints, NaN and inf to None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (numbers.Integral,)):
        return int(obj)
    if isinstance(obj, numbers.Real):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


@dataclass
class AccuracyReport:
    """Area-adjusted accuracy and area estimates (Olofsson et al. 2014), per class (K,).

    Proportions are in 0..1; ``*_se`` are standard errors; ``*_ci`` are half-widths of the
    confidence interval at ``z`` (1.96: 95 %). Areas in m^2 and ha. NaN entries are
    explained in ``notes``.
    """

    classes: np.ndarray  # (K,) int class codes (rows/cols order)
    map_pixel_counts: np.ndarray  # (K,) N_i., pixels mapped in each class
    sample_counts: np.ndarray  # (K,) n_i., sample units per stratum
    error_matrix_counts: np.ndarray  # (K, K) int n_ij, rows = map, cols = reference
    error_matrix_proportions: np.ndarray  # (K, K) p_ij = W_i n_ij / n_i. (share of area)
    overall: float  # sum_j p_jj
    overall_se: float  # sqrt(sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1))
    users: np.ndarray  # (K,) U_i = n_ii / n_i.
    users_se: np.ndarray  # (K,) sqrt(U_i (1 - U_i) / (n_i. - 1))
    producers: np.ndarray  # (K,) P_j = p_jj / p_.j
    producers_se: np.ndarray  # (K,) Olofsson et al. 2013/2014 variance of P_j
    area_proportion: np.ndarray  # (K,) p_.k = sum_i W_i n_ik / n_i.
    area_proportion_se: np.ndarray  # (K,) sqrt(sum_i W_i^2 f_ik (1 - f_ik) / (n_i. - 1)), f = n_ik/n_i.
    area_m2: np.ndarray  # (K,) p_.k * total mapped area, m^2
    area_m2_ci: np.ndarray  # (K,) z * SE, m^2
    area_ha: np.ndarray  # (K,) ha
    area_ha_ci: np.ndarray  # (K,) ha
    map_area_ha: np.ndarray  # (K,) mapped (pixel-counting) area, ha
    pixel_area: float  # m^2 per pixel
    z: float
    notes: list = field(default_factory=list)

    @property
    def overall_ci(self) -> float:
        return self.z * self.overall_se

    @property
    def users_ci(self) -> np.ndarray:
        return self.z * self.users_se

    @property
    def producers_ci(self) -> np.ndarray:
        return self.z * self.producers_se

    def to_frame(self, names=None):
        """One row per class: sample size, mapped area, adjusted area ± CI, user's and
        producer's accuracy ± CI (half-widths at ``z``). ``names``: optional {class: label}."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "n_samples": self.sample_counts,
                "map_area_ha": self.map_area_ha,
                "area_ha": self.area_ha,
                "area_ha_ci": self.area_ha_ci,
                "users": self.users,
                "users_ci": self.users_ci,
                "producers": self.producers,
                "producers_ci": self.producers_ci,
            },
            index=pd.Index(self.classes, name="class"),
        )
        if names is not None:
            df.insert(0, "name", [names.get(int(c), str(c)) for c in self.classes])
        return df

    def as_dict(self) -> dict:
        """JSON-serialisable dict (floats, ints, lists; NaN written as null)."""
        return jsonable(
            {
                "classes": self.classes,
                "overall": self.overall,
                "overall_se": self.overall_se,
                "overall_ci": self.overall_ci,
                "users": self.users,
                "users_se": self.users_se,
                "users_ci": self.users_ci,
                "producers": self.producers,
                "producers_se": self.producers_se,
                "producers_ci": self.producers_ci,
                "area_proportion": self.area_proportion,
                "area_proportion_se": self.area_proportion_se,
                "area_ha": self.area_ha,
                "area_ha_ci": self.area_ha_ci,
                "map_area_ha": self.map_area_ha,
                "map_pixel_counts": self.map_pixel_counts,
                "sample_counts": self.sample_counts,
                "error_matrix_counts": self.error_matrix_counts,
                "error_matrix_proportions": self.error_matrix_proportions,
                "pixel_area_m2": self.pixel_area,
                "z": self.z,
                "notes": list(self.notes),
            }
        )


def _div(num, den):
    """num / den elementwise with NaN where den == 0 (no numpy warning)."""
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def area_adjusted(
    map_labels_at_samples,
    ref_labels_at_samples,
    map_pixel_counts,
    classes,
    *,
    pixel_area=900.0,
    z=1.96,
) -> AccuracyReport:
    """Stratified estimators of accuracy and area with standard errors (Olofsson et al. 2014).

    Parameters
    ----------
    map_labels_at_samples : (n,) int
        Map class of each sample unit (= its stratum).
    ref_labels_at_samples : (n,) int
        Reference (true) class of each sample unit.
    map_pixel_counts : (K,) array aligned with ``classes``, or dict {class: pixels}
        Pixels mapped in each class over the whole map (a class absent from the dict has 0).
    classes : sequence of int, (K,)
    pixel_area : float, m^2 per pixel (900 for Landsat 30 m).
    z : float, normal quantile for the confidence intervals (1.96: 95 %).

    Returns
    -------
    AccuracyReport. NaN (with a note and an AccuracyWarning) where an estimate is undefined:
    user's accuracy of a class with no sample; producer's accuracy of a class never seen in
    the reference sample (estimated area 0); every estimate that depends on a stratum that
    has mapped pixels but no sample (its row of p_ij is unknown); standard errors that divide
    by n_i. - 1 = 0 (a stratum with a single sample unit).
    """
    cls = _as_classes(classes)
    k = cls.size
    m = np.asarray(map_labels_at_samples)
    r = np.asarray(ref_labels_at_samples)
    if m.ndim != 1 or r.ndim != 1:
        raise ValueError(f"sample labels must be 1-D (n,), got shapes {m.shape} and {r.shape}")
    if m.shape != r.shape:
        raise ValueError(
            f"map_labels_at_samples has {m.size} values but ref_labels_at_samples has {r.size}"
        )
    if m.size == 0:
        raise ValueError("no sample units: map_labels_at_samples is empty")
    counts_n = _confusion(m, r, cls, "map_labels_at_samples", "ref_labels_at_samples")  # n_ij
    big_n = _per_class_vector(map_pixel_counts, cls, "map_pixel_counts", fill_missing=0.0)
    _check_counts(big_n, "map_pixel_counts")
    n_i = counts_n.sum(axis=1).astype(float)
    sampled_but_unmapped = (big_n == 0) & (n_i > 0)
    if sampled_but_unmapped.any():
        raise ValueError(
            f"sample units are mapped as class(es) {cls[sampled_but_unmapped].tolist()} "
            "but map_pixel_counts gives them 0 pixels"
        )
    pixel_area = float(pixel_area)
    if not (math.isfinite(pixel_area) and pixel_area > 0):
        raise ValueError(f"pixel_area must be a positive number of m^2, got {pixel_area}")
    if not (math.isfinite(z) and z > 0):
        raise ValueError(f"z must be a positive normal quantile, got {z}")

    notes = []
    w = big_n / big_n.sum()  # W_i
    frac = _div(counts_n, n_i[:, None])  # n_ij / n_i.  (NaN row when n_i. = 0)
    unsampled = (w > 0) & (n_i == 0)
    frac[(w == 0) & (n_i == 0), :] = 0.0  # empty stratum: no area, no contribution
    if unsampled.any():
        notes.append(
            f"classes {cls[unsampled].tolist()} have mapped pixels but no sample unit: their row of "
            "the error matrix is unknown, so overall accuracy, producer's accuracies and areas are NaN"
        )
    p = w[:, None] * frac  # Card (1982): estimated share of area mapped i with reference j
    diag = np.diag(p)
    p_col = p.sum(axis=0)  # p_.k: stratified estimator of the area share of class k

    users = np.diag(frac).copy()  # n_ii / n_i.
    no_sample = n_i == 0
    users[no_sample] = np.nan
    if no_sample.any():
        notes.append(f"user's accuracy of classes {cls[no_sample].tolist()} is NaN: no sample unit mapped in them")
    overall = float(diag.sum())
    producers = _div(diag, p_col)
    never_ref = (p_col == 0)
    if never_ref.any():
        notes.append(
            f"producer's accuracy of classes {cls[never_ref].tolist()} is NaN: the class never occurs "
            "in the reference sample (estimated area 0)"
        )

    # variances: every term divides by n_i. - 1
    dof = n_i - 1
    single = (n_i == 1) & (w > 0)
    if single.any():
        notes.append(
            f"standard errors are NaN: strata {cls[single].tolist()} have a single sample unit "
            "(variance divides by n_i - 1 = 0)"
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        term_ij = np.where(
            (w == 0)[:, None], 0.0, frac * (1 - frac) / np.where(dof > 0, dof, np.nan)[:, None]
        )  # (n_ij/n_i.)(1 - n_ij/n_i.)/(n_i. - 1)
    u_term = np.diag(term_ij)  # U_i (1 - U_i) / (n_i. - 1)
    users_se = np.sqrt(np.where(no_sample, np.nan, u_term))
    overall_se = float(np.sqrt(np.sum(w**2 * u_term)))
    area_se = np.sqrt(np.sum((w**2)[:, None] * term_ij, axis=0))

    # V(P_j) = [W_j^2 (1-P_j)^2 U_j(1-U_j)/(n_j.-1) + P_j^2 sum_{i!=j} W_i^2 f_ij(1-f_ij)/(n_i.-1)] / p_.j^2
    # (Olofsson et al. 2013, 2014 write it with N_i. and N_.j; the scale cancels in the ratio)
    prod_var = np.full(k, np.nan)
    for j in range(k):
        if not (p_col[j] > 0):
            continue
        off = np.arange(k) != j
        a = w[j] ** 2 * (1 - producers[j]) ** 2 * u_term[j]
        b = producers[j] ** 2 * np.sum(w[off] ** 2 * term_ij[off, j])
        prod_var[j] = (a + b) / p_col[j] ** 2
    producers_se = np.sqrt(prod_var)

    total_m2 = big_n.sum() * pixel_area
    area_m2 = p_col * total_m2
    area_m2_ci = z * area_se * total_m2
    report = AccuracyReport(
        classes=cls,
        map_pixel_counts=big_n,
        sample_counts=n_i.astype(np.int64),
        error_matrix_counts=counts_n,
        error_matrix_proportions=p,
        overall=overall,
        overall_se=overall_se,
        users=users,
        users_se=users_se,
        producers=producers,
        producers_se=producers_se,
        area_proportion=p_col,
        area_proportion_se=area_se,
        area_m2=area_m2,
        area_m2_ci=area_m2_ci,
        area_ha=area_m2 / M2_PER_HA,
        area_ha_ci=area_m2_ci / M2_PER_HA,
        map_area_ha=big_n * pixel_area / M2_PER_HA,
        pixel_area=pixel_area,
        z=float(z),
        notes=notes,
    )
    if notes:
        warnings.warn("area_adjusted: " + " | ".join(notes), AccuracyWarning, stacklevel=2)
    return report


# --- census (full truth) ----------------------------------------------------------------------

def census_accuracy(pred, truth, classes, valid=None) -> dict:
    """Accuracy on every valid pixel when the full truth is known (e.g. the simulated scene).

    Parameters
    ----------
    pred, truth : (H, W) int arrays (any equal shape is accepted).
    classes : sequence of int, (K,)
    valid : bool array of the same shape, optional; False pixels are ignored. NaN in a valid
        pixel is a ValueError (mask it out).

    Returns
    -------
    dict with ``classes`` (K,), ``confusion`` (K, K) int (rows = pred, cols = truth),
    ``overall`` (float), ``users`` (K,) = diag / row sums, ``producers`` (K,) = diag / column
    sums, ``n_pixels`` (int). Classes never predicted (user's) or absent from the truth
    (producer's) get NaN with an AccuracyWarning.
    """
    cls = _as_classes(classes)
    if _lazy(pred, truth, valid):  # block by block: the counts of every block summed
        import dask.array as da

        pred = pred if _lazy(pred) else da.from_array(np.asarray(pred),
                                                     chunks=next(a for a in (truth, valid) if _lazy(a)).chunks)
        cm = _lazy_confusion(pred, truth, valid, cls)
    else:
        p = np.asarray(pred)
        t = np.asarray(truth)
        if p.shape != t.shape:
            raise ValueError(f"pred shape {p.shape} does not match truth shape {t.shape}")
        valid = _check_valid(valid, p.shape, "pred/truth")
        if not valid.any():
            raise ValueError("no valid pixels to assess")
        cm = _confusion(p[valid], t[valid], cls, "pred", "truth")
    diag = np.diag(cm).astype(float)
    users = _div(diag, cm.sum(axis=1))
    producers = _div(diag, cm.sum(axis=0))
    msgs = []
    if np.isnan(users).any():
        msgs.append(f"user's accuracy NaN for classes never predicted: {cls[np.isnan(users)].tolist()}")
    if np.isnan(producers).any():
        msgs.append(f"producer's accuracy NaN for classes absent from truth: {cls[np.isnan(producers)].tolist()}")
    if msgs:
        warnings.warn("census_accuracy: " + "; ".join(msgs), AccuracyWarning, stacklevel=2)
    n = int(cm.sum())
    return {
        "classes": cls,
        "confusion": cm,
        "overall": float(diag.sum() / n),
        "users": users,
        "producers": producers,
        "n_pixels": n,
    }


# --- change maps against a truth year ------------------------------------------------------------

def change_agreement(yod, truth_year, truth_event) -> dict:
    """Agreement of a change map's year of detection with a truth year.

    Parameters
    ----------
    yod : (H, W) float
        Year of detection of a change map (e.g. ``ltlib.landtrendr.change_map(...)["yod"]``),
        NaN = no change.
    truth_year : (H, W) int
        Year of the true event, 0 = none.
    truth_event : (H, W) bool
        Where the truth has an event the map should find.

    Returns
    -------
    dict
        ``n_true_events``; ``recall`` (share of true events detected); ``same_year`` and
        ``within_1_year`` (shares of the detected events, NaN when none is detected);
        ``false_alarm_rate`` (share of pixels without a true event that the map flags).
    """
    yod = np.asarray(yod, dtype=float)
    ev = np.asarray(truth_event, bool)
    if yod.shape != ev.shape or np.shape(truth_year) != ev.shape:
        raise ValueError(f"shapes differ: yod {yod.shape}, truth_year {np.shape(truth_year)}, truth_event {ev.shape}")
    found = ev & np.isfinite(yod)
    diff = yod[found] - np.asarray(truth_year)[found]
    return {
        "n_true_events": int(ev.sum()),
        "recall": float(found.sum() / max(ev.sum(), 1)),
        "same_year": float((diff == 0).mean()) if found.any() else float("nan"),
        "within_1_year": float((np.abs(diff) <= 1).mean()) if found.any() else float("nan"),
        "false_alarm_rate": float((np.isfinite(yod) & ~ev).sum() / max((~ev).sum(), 1)),
    }

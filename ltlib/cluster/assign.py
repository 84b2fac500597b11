"""Every pixel of a scene to its nearest fitted k-Shape centroid, block by block.

k-Shape is fitted on a sample of pixels (:mod:`ltlib.pixel_sample`); the other pixels are
then assigned to the centroid of least SBD, which depends on the pixel alone. So each
spatial block of the (T, H, W) stacks goes through the same steps as the series of the
in-memory run: :func:`~ltlib.io.stacks_to_series` (pixels with data),
:func:`~ltlib.cluster.prepare` (gaps filled in time, flat series set aside),
:meth:`KShape.predict` (z-normalised per variable, nearest centroid by SBD), and the labels
go back on the block: -1 no data, 0..k-1 clusters, k flat pixels (as
:meth:`ClusterRun.label_image`). A numpy stack gives a numpy label image, a dask stack a
dask one (``map_blocks``), with the same labels (tests/test_cluster_lazy.py).
"""
from __future__ import annotations

import numpy as np

from ..blocks import is_lazy
from ..io import series_to_image, stack_to_series, stacks_to_series
from .kshape import KShape
from .prepare import prepare

#: Label of pixels without data in a label image.
NO_DATA = -1


def assign_series(series, model: KShape) -> np.ndarray:
    """Labels (n,) int16 of series (n, T) or (n, T, d) with NaN gaps: 0..k-1 the nearest
    centroid of ``model``, k the flat series (set aside by :func:`prepare`)."""
    k = int(model.n_clusters)
    out = np.full(len(series), k, dtype=np.int16)
    if len(series) == 0:
        return out
    prep = prepare(series)
    if prep.keep.any():
        out[prep.keep] = model.predict(prep.X).astype(np.int16)
    return out


def _assign_block(*arrays, model: KShape) -> np.ndarray:
    """One block: the (T, h, w) blocks of each variable -> labels (h, w) int16."""
    arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
    series, mask = stack_to_series(arrays[0]) if len(arrays) == 1 else stacks_to_series(arrays)
    return series_to_image(assign_series(series, model), mask, fill=NO_DATA).astype(np.int16)


def assign_labels(stacks, model: KShape):
    """The label image of every pixel of ``stacks`` under the fitted ``model``.

    Parameters
    ----------
    stacks : list of (T, H, W) float arrays, numpy or dask (same grid, years and chunks)
        One per variable, in the model's variable order; stored units, NaN gaps.
    model : KShape
        Fitted (``cluster_centers_`` (k, T, d)).

    Returns
    -------
    (H, W) int16: -1 no data, 0..k-1 clusters, k flat pixels. A dask array (one task per
    block, nothing computed) when any stack is lazy.
    """
    stacks = [getattr(s, "data", s) for s in (stacks if isinstance(stacks, (list, tuple)) else [stacks])]
    if not hasattr(model, "cluster_centers_"):
        raise ValueError("assign_labels needs a fitted KShape (call fit first)")
    T, d = model.cluster_centers_.shape[1:]
    if len(stacks) != d:
        raise ValueError(f"the model has {d} variable(s), got {len(stacks)} stack(s)")
    for i, s in enumerate(stacks):
        if s.ndim != 3 or s.shape[0] != T or s.shape != stacks[0].shape:
            raise ValueError(f"stack {i} has shape {s.shape}: expected (T, H, W) with T = {T} (the centroids' "
                             f"length), all stacks alike")
    if not any(is_lazy(s) for s in stacks):
        return _assign_block(*stacks, model=model)
    import dask.array as da

    first = next(s for s in stacks if is_lazy(s))
    stacks = [s if is_lazy(s) else da.from_array(s, chunks=first.chunks) for s in stacks]
    stacks = [s.rechunk({0: -1}) for s in stacks]  # every year of a pixel in one block
    return da.map_blocks(_assign_block, *stacks, model=model, drop_axis=0, dtype=np.int16)

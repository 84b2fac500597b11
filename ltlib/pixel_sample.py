"""A fixed-seed random sample of a scene's valid pixels, drawn without loading the scene.

k-Shape chooses k and fits its centroids on a sample of pixels (a whole Landsat scene has
49 million); the sample must not need the scene in memory, and the same seed must give the
same pixels whether the stack is a numpy array or a dask array opened in chunks. So:

1. the valid mask (H, W) bool is computed (block by block when lazy: 49 MB for a whole
   scene, never the stack);
2. ``n`` ranks among the ``n_valid`` valid pixels are drawn with
   ``numpy.random.default_rng(seed).choice(n_valid, n, replace=False)`` and sorted, so the
   sample is in row-major order (a sample of every pixel is every pixel, in the in-memory
   order);
3. the ranks become (row, col) through the mask's cumulative row counts, and the series are
   read block by block (one small task per block holding sampled pixels).

Nothing here depends on the chunking: the draw uses the mask only.
"""
from __future__ import annotations

import numpy as np

from .blocks import compute, is_lazy


def _arrays(data) -> list:
    """``data`` (T, H, W) or a list of such (one per variable) -> list of arrays, checked."""
    arrays = list(data) if isinstance(data, (list, tuple)) else [data]
    if not arrays:
        raise ValueError("data must be a (T, H, W) stack or a non-empty list of them")
    arrays = [getattr(a, "data", a) for a in arrays]  # ltlib.io.Stack -> its array
    arrays = [a if is_lazy(a) else np.asarray(a) for a in arrays]
    for i, a in enumerate(arrays):
        if a.ndim != 3:
            raise ValueError(f"data[{i}] must be a (T, H, W) stack, got shape {a.shape}")
        if a.shape != arrays[0].shape:
            raise ValueError(f"data[{i}] has shape {a.shape}, data[0] has {arrays[0].shape}: the stacks of a "
                             "multivariate sample must share years and grid")
    return arrays


def valid_mask(data):
    """(H, W) bool: pixels where every variable has at least one finite value (as
    :func:`ltlib.io.stack_to_series` / :func:`~ltlib.io.stacks_to_series`). Dask for lazy input."""
    arrays = _arrays(data)
    if any(is_lazy(a) for a in arrays):
        import dask.array as da

        out = None
        for a in arrays:
            a = a if is_lazy(a) else da.from_array(a)
            v = da.isfinite(a).any(axis=0)
            out = v if out is None else out & v
        return out
    out = np.isfinite(arrays[0]).any(axis=0)
    for a in arrays[1:]:
        out &= np.isfinite(a).any(axis=0)
    return out


def draw_pixels(mask: np.ndarray, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct pixels of ``mask`` (H, W) bool at random, in row-major order.

    Returns (rows, cols), two (m,) int64 arrays, m = min(n, valid pixels). The draw depends on
    ``mask``, ``n`` and ``seed`` only.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"sample size must be a whole number of pixels >= 1, got {n!r}")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {mask.shape}")
    per_row = mask.sum(axis=1, dtype=np.int64)
    n_valid = int(per_row.sum())
    if n_valid == 0:
        raise ValueError("no valid pixel to sample: every pixel is NaN in every year")
    if n >= n_valid:
        ranks = np.arange(n_valid, dtype=np.int64)
    else:
        ranks = np.sort(np.random.default_rng(seed).choice(n_valid, int(n), replace=False).astype(np.int64))
    ends = np.cumsum(per_row)
    rows = np.searchsorted(ends, ranks, side="right")  # the row holding each rank
    cols = np.empty_like(rows)
    starts = ends - per_row
    for r in np.unique(rows):  # rows with a sampled pixel only
        sel = rows == r
        cols[sel] = np.flatnonzero(mask[r])[ranks[sel] - starts[r]]
    return rows.astype(np.int64), cols.astype(np.int64)


def _pick(block, rows, cols):
    return np.ascontiguousarray(block[:, rows, cols].T)


def read_pixels(data, rows, cols) -> np.ndarray:
    """The series of pixels (rows, cols): float32 (m, T), or (m, T, d) for a list of d stacks.

    Lazy stacks are read block by block: one task per block that holds a requested pixel.
    """
    arrays = _arrays(data)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    out = []
    for a in arrays:
        if not is_lazy(a):
            out.append(np.ascontiguousarray(a[:, rows, cols].T, dtype=np.float32))
            continue
        import dask

        yb = np.cumsum((0,) + a.chunks[1])
        xb = np.cumsum((0,) + a.chunks[2])
        bi = np.searchsorted(yb, rows, side="right") - 1
        bj = np.searchsorted(xb, cols, side="right") - 1
        key = bi * len(xb) + bj
        order = np.argsort(key, kind="stable")
        tasks, where = [], []
        for k in np.unique(key):
            sel = order[key[order] == k]
            i, j = divmod(int(k), len(xb))
            blk = a.blocks[0, i, j] if a.numblocks[0] == 1 else a[:, yb[i]:yb[i + 1], xb[j]:xb[j + 1]]
            tasks.append(dask.delayed(_pick)(blk, rows[sel] - yb[i], cols[sel] - xb[j]))
            where.append(sel)
        values = compute(*tasks, progress=False) if tasks else ()
        res = np.empty((len(rows), a.shape[0]), np.float32)
        for sel, v in zip(where, values):
            res[sel] = v
        out.append(res)
    return out[0] if len(out) == 1 else np.stack(out, axis=-1)


def sample_pixels(data, n: int, *, seed: int = 0, mask=None):
    """A random sample of ``n`` valid pixels of ``data``, numpy or lazy, the same for both.

    Parameters
    ----------
    data : (T, H, W) array (numpy or dask) or ltlib.io.Stack, or a list of them (multivariate)
        Stored units; NaN where there is no value.
    n : int
        Pixels to draw (all valid pixels when there are fewer).
    seed : int
        The same seed gives the same pixels for the same valid mask.
    mask : (H, W) bool or None
        The valid pixels when already known (e.g. from :func:`valid_mask`), else computed.

    Returns
    -------
    (series, rows, cols)
        ``series`` float32 (m, T) (or (m, T, d) for d stacks), NaN gaps kept; ``rows``,
        ``cols`` (m,) int64 pixel indices in row-major order.
    """
    if mask is None:
        mask = valid_mask(data)
    if is_lazy(mask):
        (mask,) = compute(mask, progress=False)
    rows, cols = draw_pixels(mask, n, seed=seed)
    return read_pixels(data, rows, cols), rows, cols

"""LandTrendr, fit-to-vertex and change maps block by block, for scenes opened in chunks.

Every pixel's segmentation, FTV and change segment depend on that pixel alone, so each
spatial block of the (T, H, W) stacks is worked on by the same compiled kernels as the
in-memory path (:func:`~ltlib.landtrendr.segment`, :func:`~ltlib.landtrendr.fit_to_vertices`,
:func:`~ltlib.landtrendr.change_map`, on the calling thread: dask's threads are the
parallelism). Two steps need neighbours, and get them as a halo (``dask.array.map_overlap``):

- the optional 3 x 3 median filter of the fitted stacks: a 1 px halo of input, segmented with
  its block (0.8% more pixels at 512 px chunks), image edges repeated as the filter does;
- the minimum mapping unit: a pixel is kept when its 8-connected patch has at least ``mmu``
  pixels. If it has, a breadth-first walk from the pixel meets ``mmu`` patch pixels within
  ``mmu - 1`` steps, all inside a halo of ``mmu - 1`` px; so labelling the block with that
  halo (outside the image: no change) decides every pixel of the block exactly as labelling
  the whole image does.

The results are identical to the in-memory path (tests/test_blocks.py).
"""
from __future__ import annotations

import numpy as np

from .change import CHANGE_BANDS, _apply_mmu, change_map
from .segment import LandTrendrResult, fit_to_vertices, median_filter_stack, segment

#: Layers of the per-block output besides the fitted stacks: loss and gain bands, vertex count.
_N_MAP = len(CHANGE_BANDS)


def _fit_block(*arrays, years, distdir, params: dict, loss: dict, gain: dict, median_filter: bool, halo: int):
    """One block: ``arrays`` the (T, h, w) blocks of the segmented index then the FTV indices.
    Returns float32 (T * n_indices + 2 * 6 + 1, h', w'): the fitted stacks, the loss and gain
    bands before the MMU and the vertex count, ``halo`` px trimmed from every side."""
    T = len(years)
    res = segment(arrays[0], years, distdir=distdir, parallel=False, **params)
    fitted = [res.fitted] + [fit_to_vertices(a, years, res.is_vertex, parallel=False) for a in arrays[1:]]
    if median_filter:
        fitted = [median_filter_stack(f).astype(np.float32) for f in fitted]
        res = LandTrendrResult(fitted[0], res.is_vertex, res.rmse, res.p_value, res.f_stat, res.years, res.source,
                               res.image_shape, res.distdir)
    maps_ = [change_map(res, parallel=False, **p) for p in (loss, gain)]
    h, w = arrays[0].shape[1:]
    out = np.empty((T * len(arrays) + 2 * _N_MAP + 1, h, w), np.float32)
    for k, f in enumerate(fitted):
        out[k * T:(k + 1) * T] = f
    base = T * len(arrays)
    for m, bands in enumerate(maps_):
        for j, b in enumerate(CHANGE_BANDS):
            out[base + m * _N_MAP + j] = bands[b]
    out[-1] = res.is_vertex.sum(axis=0)
    if halo:
        out = out[:, halo:-halo, halo:-halo]
    return out


def _mmu_block(block, mmu: int, mode: str):
    """The MMU of one (6, h, w) change-map block with its halo (NaN outside the image)."""
    bands = _apply_mmu({b: block[j] for j, b in enumerate(CHANGE_BANDS)}, mmu, mode)
    return np.stack([bands[b] for b in CHANGE_BANDS])


def mmu_blocks(bands, mmu: int, mode: str = "any"):
    """The minimum mapping unit of a dask change map (6, H, W), block by block with a halo of
    ``mmu - 1`` px (exact: see the module docstring); outside the image counts as no change."""
    import dask.array as da

    d = int(mmu) - 1
    return da.map_overlap(_mmu_block, bands, depth={0: 0, 1: d, 2: d}, boundary=np.nan, dtype=np.float32,
                          mmu=int(mmu), mode=mode)


def fit_blocks(stacks, years, *, distdir: int, params: dict, loss: dict, gain: dict, median_filter: bool = False):
    """LandTrendr on dask stacks, block by block.

    Parameters
    ----------
    stacks : list of dask arrays float32 (T, H, W)
        The segmented index first, then the indices fitted to its vertices; same chunks,
        every year in each chunk (as :func:`ltlib.scene.load` opens them).
    years : int (T,)
    distdir : -1 or 1, the segmented index's direction of disturbance.
    params : keyword arguments of :func:`~ltlib.landtrendr.segment` (LT-GEE's runParams).
    loss, gain : keyword arguments of :func:`~ltlib.landtrendr.change_map` (with ``mmu``).
    median_filter : bool, the 3 x 3 median filter of the fitted stacks.

    Returns
    -------
    dict of dask arrays: ``fitted`` [float32 (T, H, W)] in the order of ``stacks``, ``loss``
    and ``gain`` float32 (6, H, W) (bands :data:`CHANGE_BANDS`, NaN where no segment passes),
    ``n_vertices`` float32 (H, W). Nothing is computed yet; one pass computes them all.
    """
    import dask.array as da

    years = np.asarray(years)
    T = len(years)
    chunks = stacks[0].chunks
    if any(s.chunks != chunks for s in stacks[1:]):
        raise ValueError("the stacks must share their chunks (open them with one scene.load)")
    if len(chunks[0]) != 1:
        raise ValueError(f"every year must be in each chunk; the stacks are chunked {chunks[0]} along time")
    loss, gain = dict(loss), dict(gain)
    mmus = {d: (p.pop("mmu", None), p.get("mmu_mode", "any")) for d, p in (("loss", loss), ("gain", gain))}
    for p in (loss, gain):
        p.pop("mmu_mode", None)
    n_out = T * len(stacks) + 2 * _N_MAP + 1
    kw = dict(years=years, distdir=distdir, params=params, loss=loss, gain=gain, median_filter=median_filter)
    if median_filter:  # a 1 px halo, the image's edge pixels repeated as the filter does
        out = da.map_overlap(_fit_block, *stacks, depth={0: 0, 1: 1, 2: 1}, boundary="nearest", trim=False,
                             dtype=np.float32, chunks=((n_out,),) + chunks[1:], halo=1, **kw)
    else:
        out = da.map_blocks(_fit_block, *stacks, dtype=np.float32, chunks=((n_out,),) + chunks[1:], halo=0, **kw)
    base = T * len(stacks)
    result = {"fitted": [out[k * T:(k + 1) * T] for k in range(len(stacks))], "n_vertices": out[-1]}
    for m, delta in enumerate(("loss", "gain")):
        # a copy, not a view: the whole fit block (every fitted year) is then freed once it is
        # written, instead of waiting for its neighbours' MMU halos
        bands = out[base + m * _N_MAP: base + (m + 1) * _N_MAP].map_blocks(np.copy, dtype=np.float32)
        mmu, mode = mmus[delta]
        result[delta] = mmu_blocks(bands, mmu, mode) if mmu is not None and mmu > 1 else bands
    return result

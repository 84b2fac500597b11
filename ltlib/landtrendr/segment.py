"""LandTrendr on arrays: :func:`segment`, :func:`fit_to_vertices`, :func:`median_filter_stack`.

The per-pixel work is compiled in :mod:`ltlib.landtrendr.kernels` (see there for the
algorithm); this module checks and reshapes the input, orients it so that disturbance is an
increase, and wraps the output in a :class:`LandTrendrResult`.

Presets
-------
``preset="gee"`` (Earth Engine) and ``preset="idl"`` (the original IDL) differ in:

- despiking: GEE stops as soon as the worst spike is at or below the threshold; the IDL
  loop tests the previous proportion, so it applies one more (sub-threshold) correction;
- precision: the IDL stores vertex values and the model's fitted values in integer arrays
  (truncation toward zero) when choosing among models and for the output; GEE keeps floats;
- ``prevent_one_year_recovery`` exists only in GEE; the IDL ignores it;
- a recovery faster than ``recovery_threshold`` taken out of the model ladder: the IDL
  moves that year's value onto its neighbours' line in the series itself, so every later
  model is fitted to the altered series; GEE fits every model to the despiked series
  (the LT-GEE guide's pixel: 642 in 2002 on Earth Engine and here, 622 with the IDL's way).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import LandTrendrParams, ParameterError, check_distdir
from .kernels import _CHUNK, _ftv_all, _ftv_all_serial, _segment_all, _segment_all_serial

#: Parameter presets of :func:`segment`: Earth Engine or the original IDL behaviour.
PRESETS = ("gee", "idl")


@dataclass
class LandTrendrResult:
    """Output of :func:`segment`; arrays in the original orientation and units.

    ``fitted`` (n, T) float32, ``is_vertex`` (n, T) bool, ``rmse``/``p_value``/``f_stat``
    (n,) float64; for a (T, H, W) input the same arrays are image-shaped: (T, H, W) and
    (H, W). ``source`` is the input itself (not a copy). Fitted values are computed in
    float64 and stored as float32 (7 significant digits: 0.0001 of index x 1000 units), so a
    scene's outputs take 1.25x its float32 input.
    """

    fitted: np.ndarray
    is_vertex: np.ndarray
    rmse: np.ndarray
    p_value: np.ndarray
    f_stat: np.ndarray
    years: np.ndarray
    source: np.ndarray
    image_shape: tuple | None = None
    distdir: int = -1

    def _flat(self, a):
        if self.image_shape is None:
            return a
        return a.reshape(a.shape[0], -1).T if a.ndim == 3 else a.ravel()

    def vertices(self):
        """Per pixel ``(vertex_years int array, vertex_fitted_values float array)``, pixels in
        row-major order."""
        fit = self._flat(self.fitted)
        isv = self._flat(self.is_vertex)
        return [(self.years[isv[i]], fit[i, isv[i]]) for i in range(fit.shape[0])]

    def n_vertices(self) -> np.ndarray:
        """Number of vertices per pixel (0 = not fitted), pixel- or image-shaped."""
        return self.is_vertex.sum(axis=0 if self.image_shape is not None else 1)


def _check_years(years) -> np.ndarray:
    years = np.asarray(years)
    if years.ndim != 1:
        raise ValueError(f"years must be 1-D, got shape {years.shape}")
    if years.size == 0:
        raise ValueError("years is empty: segment needs a series of at least one year (LandTrendr fits pixels with "
                         "at least min_observations_needed valid years)")
    if not np.issubdtype(years.dtype, np.integer):
        if not np.all(np.isfinite(years)) or np.any(years != np.round(years)):
            raise ValueError("years must be integers")
        years = years.astype(int)
    if np.any(np.diff(years) <= 0):
        raise ValueError(f"years must be strictly increasing, got {years.tolist()}")
    return years


def _as_time_major(values, years, check_inf: bool = True):
    """``(Y (T, n) view, years, image_shape)``: a (T, H, W) stack reshaped or an (n, T) array
    transposed, without copying float32/float64 input (other types are converted).
    ``check_inf=False`` leaves the check for infinities to the caller (the segmentation
    kernel counts them in its pass over the values)."""
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    years = _check_years(years)
    T = years.shape[0]
    if values.ndim == 3:
        if values.shape[0] != T:
            raise ValueError(f"a (T, H, W) stack needs T = len(years) = {T}, got shape {values.shape}")
        image_shape = values.shape[1:]
        Y = values.reshape(T, -1)  # a view for a C-contiguous stack
    elif values.ndim == 2:
        if values.shape[1] != T:
            raise ValueError(f"values must be (n_pixels, {T}) for {T} years, got shape {values.shape}")
        image_shape = None
        Y = values.T
    elif values.ndim == 1:
        if values.shape[0] != T:
            raise ValueError(f"a single series needs {T} values, got {values.shape[0]}")
        image_shape = None
        Y = values[:, None]
    else:
        raise ValueError(f"values must be (n, T) or (T, H, W), got shape {values.shape}")
    # year by year: no temporary of the stack's size
    if check_inf and any(np.isinf(Y[t]).any() for t in range(T)):
        _raise_inf(None)
    return Y, years, image_shape


def _raise_inf(count):
    n = "" if count is None else f"{count} "
    raise ValueError(f"values contain {n}infinities; use NaN for missing years")


def _to_input_shape(a_tn, values, image_shape):
    """A (T, n) output back to the input's shape (views, no copy)."""
    if image_shape is not None:
        return a_tn.reshape((a_tn.shape[0],) + tuple(image_shape))
    return a_tn.T[0] if np.ndim(values) == 1 else a_tn.T


def segment(values, years, *, max_segments=6, spike_threshold=0.9, vertex_count_overshoot=3,
            prevent_one_year_recovery=False, recovery_threshold=0.25, pval_threshold=0.1,
            best_model_proportion=0.75, min_observations_needed=6, distdir=None, index=None, preset="gee",
            parallel: bool = True) -> LandTrendrResult:
    """Run LandTrendr on every pixel.

    Parameters
    ----------
    values : float (n_pixels, n_years) or (n_years, H, W); NaN = no observation. Any units
        (the sample stores index x 1000, as LT-GEE does).
    years : int (n_years,), strictly increasing.
    distdir : -1, 1 or None
        -1 when the index drops on disturbance (NDVI, NBR, TCG, TCW), 1 when it rises
        (TCB); the series is multiplied by ``distdir`` for segmentation (LT-GEE) and the
        outputs are flipped back. None: ``index``'s direction, or -1 without an index.
    index : str or None
        The index name (``config.INDICES``): sets ``distdir``, and a ``distdir`` that
        contradicts it gives a warning.
    preset : "gee" (Earth Engine) or "idl" (the original IDL; see the module docstring).
    parallel : bool
        Use every core (numba threads); False runs on the calling thread without the GIL,
        as dask's block tasks do (identical results).
    The other keywords are LT-GEE's runParams with its defaults, validated as
    :class:`ltlib.params.LandTrendrParams` (a :class:`~ltlib.params.ParameterError` names
    the parameter and its allowed range).
    """
    if preset not in PRESETS:
        raise ParameterError(f"LandTrendr parameter preset must be one of {PRESETS}, got {preset!r}")
    distdir = check_distdir(distdir, index)
    # numpy scalars are welcome here (a parameter sweep); the dataclass takes Python types
    prevent_one_year_recovery = (bool(prevent_one_year_recovery) if isinstance(prevent_one_year_recovery, np.bool_)
                                 else prevent_one_year_recovery)
    params = LandTrendrParams(max_segments=max_segments, spike_threshold=spike_threshold,
                              vertex_count_overshoot=vertex_count_overshoot,
                              prevent_one_year_recovery=prevent_one_year_recovery,
                              recovery_threshold=recovery_threshold, pval_threshold=pval_threshold,
                              best_model_proportion=best_model_proportion,
                              min_observations_needed=min_observations_needed)
    Y, years, image_shape = _as_time_major(values, years, check_inf=False)
    T, n = Y.shape
    fitted = np.empty((T, n), np.float32)
    isvert = np.empty((T, n), np.bool_)  # the kernel writes every element
    stats = np.empty((n, 3))
    ninf = np.zeros((n + _CHUNK - 1) // _CHUNK, np.int64)
    kernel = _segment_all if parallel else _segment_all_serial
    kernel(Y, (years - years[0]).astype(np.float64), float(distdir), params.max_segments, params.spike_threshold,
           params.vertex_count_overshoot, params.prevent_one_year_recovery, params.recovery_threshold,
           params.pval_threshold, params.best_model_proportion, params.min_observations_needed, preset == "idl",
           fitted, isvert, stats, ninf)
    if ninf.any():
        _raise_inf(int(ninf.sum()))
    rmse, p, f = stats[:, 0], stats[:, 1], stats[:, 2]
    if image_shape is not None:  # (T, H, W) and (H, W) views of the (T, n) outputs
        rmse, p, f = (a.reshape(image_shape) for a in (rmse, p, f))
        return LandTrendrResult(fitted.reshape((T,) + tuple(image_shape)), isvert.reshape((T,) + tuple(image_shape)),
                                rmse, p, f, years, np.asarray(values), image_shape, distdir)
    # (n, T) views; a single series gives n = 1
    return LandTrendrResult(fitted.T, isvert.T, rmse, p, f, years, Y.T, None, distdir)


def fit_to_vertices(values, years, is_vertex, *, parallel: bool = True) -> np.ndarray:
    """Fit-to-vertex (FTV): fit another index on the vertex years of a LandTrendr result.

    ``values`` (n, T) or (T, H, W) of the other index (NaN = missing), ``is_vertex`` of the
    same shape (e.g. ``segment(...).is_vertex``). Each segment between consecutive vertex
    years is fitted as in LandTrendr (point-to-point or anchored regression), so the
    fitted series of all indices break in the same years (the seed's ndvi/tcg/tcw ``_fit``
    bands). Returns fitted values of the same shape, in the input's units. Pixels with fewer
    than two vertices get their mean. ``parallel=False``: on the calling thread, without the
    GIL (dask block tasks).
    """
    Y, years, image_shape = _as_time_major(values, years)
    isv = np.asarray(is_vertex, dtype=bool)
    if isv.shape != np.shape(values) and not (isv.ndim == 2 and np.ndim(values) == 1):
        raise ValueError(f"is_vertex has shape {isv.shape}, values {np.shape(values)}")
    T = len(years)
    isv = isv.reshape(T, -1) if image_shape is not None else isv.reshape(-1, T).T
    out = np.empty(Y.shape, np.float32)
    (_ftv_all if parallel else _ftv_all_serial)(Y, (years - years[0]).astype(np.float64), isv, out)
    return _to_input_shape(out, values, image_shape)


def median_filter_stack(fitted, size: int = 3) -> np.ndarray:
    """Spatial median filter of every year of a fitted (T, H, W) stack (the seed recommends it
    after LandTrendr to remove isolated pixels that the fit left noisy).

    The median of each ``size`` x ``size`` window is taken over its finite values only: NaN
    pixels stay NaN and do not take part, and image edges repeat the edge pixels (``nearest``).
    Each output pixel depends only on its window, so a block with a halo of ``size // 2`` px
    gives the same values as the whole image (:mod:`ltlib.landtrendr.chunked`).
    """
    fitted = np.asarray(fitted)
    if fitted.dtype not in (np.float32, np.float64):
        fitted = fitted.astype(np.float64)
    if fitted.ndim != 3:
        raise ValueError(f"median_filter_stack needs a (T, H, W) stack, got shape {fitted.shape}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd number of pixels >= 1, got {size}")
    h = size // 2
    T, H, W = fitted.shape
    out = np.empty_like(fitted)
    for t in range(T):
        padded = np.pad(fitted[t], h, mode="edge")
        # the window's values, NaN sorted last; the median of the n finite ones by position
        win = np.sort(np.stack([padded[i:i + H, j:j + W] for i in range(size) for j in range(size)]), axis=0)
        n = np.isfinite(win).sum(axis=0)
        lo = np.take_along_axis(win, np.maximum((n - 1) // 2, 0)[None], axis=0)[0]
        hi = np.take_along_axis(win, (n // 2).clip(max=size * size - 1)[None], axis=0)[0]
        med = (lo + hi) / 2  # odd n: lo is hi
        out[t] = np.where(np.isnan(fitted[t]), np.nan, med)
    return out

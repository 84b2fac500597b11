"""LandTrendr temporal segmentation: a compiled (numba) port of the Earth Engine algorithm.

Modules
-------
kernels
    The numba core: F distribution, despike, vertex search and vetting, the model ladder,
    per-pixel segmentation (``_segment_all``), the fit-to-vertex kernels and the change-map
    kernel (``_change_all``). The algorithm and its sources are described there.
segment
    :class:`LandTrendrResult`, :func:`segment`, :func:`fit_to_vertices`,
    :func:`median_filter_stack` and the presets (``PRESETS``; the differences between
    ``"gee"`` and ``"idl"`` are described there).
change
    :func:`change_map` (one change segment per pixel, LT-GEE ``getChangeMap``), its
    minimum mapping unit, ``CHANGE_BANDS`` and ``SORTS``.

Related elsewhere: scoring a change map against truth is
:func:`ltlib.accuracy.change_agreement`, the interactive one-pixel panel is
:func:`ltlib.widgets.landtrendr_panel`, and LandTrendr on Earth Engine is
:func:`ltlib.gee.landtrendr`.

Notes
-----
The package re-exports the functions, so ``ltlib.landtrendr.segment`` is the function
:func:`segment`, not the module of that name; import from the module with
``from ltlib.landtrendr.segment import ...``.
"""
from .change import CHANGE_BANDS, SORTS, change_map
from .segment import PRESETS, LandTrendrResult, fit_to_vertices, median_filter_stack, segment
from .run import LandTrendrRun, fit_scene  # noqa: E402  (run imports segment and change)

__all__ = [
    "CHANGE_BANDS",
    "PRESETS",
    "SORTS",
    "LandTrendrResult",
    "LandTrendrRun",
    "fit_scene",
    "change_map",
    "fit_to_vertices",
    "median_filter_stack",
    "segment",
]

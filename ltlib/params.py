"""LandTrendr and change-map parameters: one definition, validated, with its Earth Engine form.

The same :class:`LandTrendrParams` object drives the local port
(:func:`ltlib.landtrendr.segment`), the Earth Engine call (:meth:`LandTrendrParams.to_ee`
gives ``ee.Algorithms.TemporalSegmentation.LandTrendr``'s runParams), the notebooks and the
live parameter panel, so a default can only differ in one place.

Defaults
--------
``LandTrendrParams()`` holds the seed workflow's runParams: LT-GEE's defaults except
``max_segments=6``, ``prevent_one_year_recovery=True`` and ``pval_threshold=0.05``
(``config.LANDTRENDR_PARAMS``). :meth:`LandTrendrParams.gee_defaults` gives Earth Engine's own
defaults. ``ChangeMapParams.loss()`` is the greatest loss of magnitude > 150 (index x 1000);
``ChangeMapParams.gain()`` the seed's ``change_map.js``: greatest gain of magnitude > 300.

Examples
--------
>>> p = LandTrendrParams(max_segments=4)
>>> p.to_ee()["maxSegments"]
4
>>> LandTrendrParams(pval_threshold=-0.1)
Traceback (most recent call last):
...
ValueError: LandTrendr parameter pval_threshold must be a number in (0, 1], got -0.1
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass, fields, replace

from . import config

#: snake_case (ltlib) -> camelCase (Earth Engine runParams).
EE_NAMES = dict(max_segments="maxSegments", spike_threshold="spikeThreshold",
                vertex_count_overshoot="vertexCountOvershoot",
                prevent_one_year_recovery="preventOneYearRecovery", recovery_threshold="recoveryThreshold",
                pval_threshold="pvalThreshold", best_model_proportion="bestModelProportion",
                min_observations_needed="minObservationsNeeded")
#: Earth Engine's defaults of ee.Algorithms.TemporalSegmentation.LandTrendr.
GEE_DEFAULTS = dict(max_segments=None, spike_threshold=0.9, vertex_count_overshoot=3,
                    prevent_one_year_recovery=False, recovery_threshold=0.25, pval_threshold=0.1,
                    best_model_proportion=0.75, min_observations_needed=6)
#: How ``sort`` picks one segment per pixel (LT-GEE getChangeMap).
SORTS = ("greatest", "least", "newest", "oldest", "fastest", "slowest")
DELTAS = ("loss", "gain")
#: Minimum-mapping-unit patches: any change (LT-GEE) or the same year of detection.
MMU_MODES = ("any", "same_year")


def _integer(name: str, value, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value) or value < minimum:
        raise ValueError(f"{what} parameter {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _unit_interval(name: str, value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ValueError(f"{what} parameter {name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _optional_number(name: str, value, what: str, *, positive=False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (positive and value <= 0):
        kind = "a positive number" if positive else "a number"
        raise ValueError(f"{what} parameter {name} must be {kind} or None, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class LandTrendrParams:
    """LandTrendr runParams (Kennedy et al. 2018), validated on construction.

    Parameters
    ----------
    max_segments : int >= 1
        Most segments a fitted trajectory may have.
    spike_threshold : float in (0, 1]
        Despike while the worst spike's proportion exceeds this (1 = no despiking).
    vertex_count_overshoot : int >= 0
        Extra candidate vertices found before culling to ``max_segments + 1``.
    prevent_one_year_recovery : bool
        Reject models with a one-year recovery out of a disturbance.
    recovery_threshold : float in (0, 1]
        A recovery may not be faster than 1 / ``recovery_threshold`` years for the full range.
    pval_threshold : float in (0, 1]
        A model whose F-test p-value exceeds this is not accepted (flat line instead).
    best_model_proportion : float in (0, 1]
        Take the most complex model whose p-value is within ``2 - proportion`` of the best.
    min_observations_needed : int >= 1
        Pixels with fewer valid years get no fit.

    Raises
    ------
    ValueError
        Naming the parameter and its allowed range.
    """

    max_segments: int = config.LANDTRENDR_PARAMS["max_segments"]
    spike_threshold: float = config.LANDTRENDR_PARAMS["spike_threshold"]
    vertex_count_overshoot: int = config.LANDTRENDR_PARAMS["vertex_count_overshoot"]
    prevent_one_year_recovery: bool = config.LANDTRENDR_PARAMS["prevent_one_year_recovery"]
    recovery_threshold: float = config.LANDTRENDR_PARAMS["recovery_threshold"]
    pval_threshold: float = config.LANDTRENDR_PARAMS["pval_threshold"]
    best_model_proportion: float = config.LANDTRENDR_PARAMS["best_model_proportion"]
    min_observations_needed: int = config.LANDTRENDR_PARAMS["min_observations_needed"]

    def __post_init__(self):
        what = "LandTrendr"
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        set_("max_segments", _integer("max_segments", self.max_segments, 1, what))
        set_("vertex_count_overshoot", _integer("vertex_count_overshoot", self.vertex_count_overshoot, 0, what))
        set_("min_observations_needed", _integer("min_observations_needed", self.min_observations_needed, 1, what))
        for k in ("spike_threshold", "recovery_threshold", "pval_threshold", "best_model_proportion"):
            set_(k, _unit_interval(k, getattr(self, k), what))
        if not isinstance(self.prevent_one_year_recovery, bool):
            raise ValueError(f"{what} parameter prevent_one_year_recovery must be True or False, "
                             f"got {self.prevent_one_year_recovery!r}")

    @classmethod
    def gee_defaults(cls, max_segments: int = 6) -> "LandTrendrParams":
        """Earth Engine's own defaults (``maxSegments`` has none there; 6 here)."""
        return cls(**{**GEE_DEFAULTS, "max_segments": max_segments})

    def as_dict(self) -> dict:
        """Keyword arguments of :func:`ltlib.landtrendr.segment` (snake_case)."""
        return asdict(self)

    def to_ee(self) -> dict:
        """runParams of ``ee.Algorithms.TemporalSegmentation.LandTrendr`` (camelCase)."""
        return {EE_NAMES[k]: v for k, v in asdict(self).items()}

    def replace(self, **changes) -> "LandTrendrParams":
        """A copy with some parameters changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class ChangeMapParams:
    """Which segment a change map keeps per pixel (LT-GEE ``getChangeMap`` changeParams).

    Parameters
    ----------
    delta : {"loss", "gain"}
        Loss: the index moves in the disturbance direction of its ``distdir``; gain: the other way.
    sort : {"greatest", "least", "newest", "oldest", "fastest", "slowest"}
        How one segment is picked among those that pass the filters.
    year_range : (int, int) or None
        First and last year of detection kept; None: the whole series.
    mag_min : float or None
        Keep segments with magnitude > this (index x 1000).
    dur_max : float or None
        Keep segments shorter than this many years.
    preval_min : float or None
        Keep segments whose pre-change value is > this (index x 1000).
    mmu : int or None
        Minimum mapping unit: drop 8-connected patches smaller than this many pixels.
    mmu_mode : {"any", "same_year"}
        What a patch is: connected pixels of any change (LT-GEE ``getChangeMap``, default) or
        of the same year of detection.
    mag_op, dur_op, preval_op : {">", "<"}
        LT-GEE's ``operator`` of each filter (defaults mag >, dur <, preval >).
    dsnr_min : float or None
        Keep segments with dsnr = mag / rmse > this (LT-GEE's mag filter with ``dsnr: true``).
    """

    delta: str = "loss"
    sort: str = "greatest"
    year_range: tuple | None = None
    mag_min: float | None = None
    dur_max: float | None = None
    preval_min: float | None = None
    mmu: int | None = None
    mmu_mode: str = "any"
    mag_op: str = ">"
    dur_op: str = "<"
    preval_op: str = ">"
    dsnr_min: float | None = None

    def __post_init__(self):
        what = "change-map"
        if self.delta not in DELTAS:
            raise ValueError(f"{what} parameter delta must be one of {DELTAS}, got {self.delta!r}")
        if self.sort not in SORTS:
            raise ValueError(f"{what} parameter sort must be one of {SORTS}, got {self.sort!r}")
        if self.year_range is not None:
            yr = tuple(self.year_range)
            if len(yr) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in yr) or yr[0] > yr[1]:
                raise ValueError(f"{what} parameter year_range must be (first, last) years, got {self.year_range!r}")
            object.__setattr__(self, "year_range", (int(yr[0]), int(yr[1])))
        object.__setattr__(self, "mag_min", _optional_number("mag_min", self.mag_min, what))
        object.__setattr__(self, "dur_max", _optional_number("dur_max", self.dur_max, what, positive=True))
        object.__setattr__(self, "preval_min", _optional_number("preval_min", self.preval_min, what))
        if self.mmu is not None:
            object.__setattr__(self, "mmu", _integer("mmu", self.mmu, 1, what))
        if self.mmu_mode not in MMU_MODES:
            raise ValueError(f"{what} parameter mmu_mode must be one of {MMU_MODES}, got {self.mmu_mode!r}")
        for name in ("mag_op", "dur_op", "preval_op"):
            if getattr(self, name) not in ("<", ">"):
                raise ValueError(f"{what} parameter {name} must be '<' or '>', got {getattr(self, name)!r}")
        object.__setattr__(self, "dsnr_min", _optional_number("dsnr_min", self.dsnr_min, what))

    @classmethod
    def loss(cls, mag_min: float | None = 150, **kw) -> "ChangeMapParams":
        """The greatest loss with magnitude > ``mag_min`` (index x 1000)."""
        return cls(delta="loss", sort="greatest", mag_min=mag_min, **kw)

    @classmethod
    def gain(cls, mag_min: float | None = config.CHANGE_MAP_PARAMS["mag_min"], **kw) -> "ChangeMapParams":
        """The seed's change map: the greatest gain with magnitude > 300 (NDVI x 1000)."""
        return cls(delta="gain", sort="greatest", mag_min=mag_min, **kw)

    def as_dict(self) -> dict:
        """Keyword arguments of :func:`ltlib.landtrendr.change_map` (and the Earth Engine one)."""
        return asdict(self)

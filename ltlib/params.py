"""LandTrendr and change-map parameters: one definition, validated, with its Earth Engine form.

The same :class:`LandTrendrParams` object drives the local port
(:func:`ltlib.landtrendr.segment`), the Earth Engine call (:meth:`LandTrendrParams.to_ee`
gives ``ee.Algorithms.TemporalSegmentation.LandTrendr``'s runParams), the notebooks and the
live parameter panel, so a default can only differ in one place.

Notebook parameters
-------------------
:data:`NOTEBOOK_PARAMETERS` gives the type and range of every parameter of the five notebooks;
each notebook calls :func:`check_notebook` before any work. A bad value raises
:class:`ParameterError` naming the parameter and what it must be; a string that spells a
value of the right type (papermill ``-r max_segments 6``) is converted with a warning saying so.

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
ltlib.params.ParameterError: LandTrendr parameter pval_threshold must be a number in (0, 1], got -0.1
"""
from __future__ import annotations

import datetime
import math
import numbers
import os
import warnings
from dataclasses import asdict, dataclass, fields, replace

from . import config

class ParameterError(ValueError):
    """A notebook or function parameter of the wrong type or out of range; the message names it."""


@dataclass(frozen=True)
class Param:
    """The type and range of one parameter.

    ``kind`` is one of "int", "number", "bool", "str", "choice", "path", "date", "aoi",
    "indices" (a list of index names), "index" (one), "ints" and "numbers" (lists).
    ``lo``/``hi`` bound numbers (and list items), open when ``lo_open``/``hi_open``;
    ``optional`` allows None; ``choices`` lists the allowed strings.
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False
    choices: tuple = ()

    @property
    def expected(self) -> str:
        """What the parameter must be, for messages ("an integer >= 1", "a number in (0, 1]")."""
        kind = {"int": "an integer", "number": "a number", "ints": "a list of integers",
                "numbers": "a list of numbers"}.get(self.kind)
        if kind is not None:
            if self.lo is not None and self.hi is not None:
                kind += f" in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
            elif self.lo is not None:
                kind += f" {'>' if self.lo_open else '>='} {self.lo:g}"
        else:
            kind = {"bool": "True or False", "str": "a string", "path": "a folder or file path (a string)",
                    "date": "a date 'YYYY-MM-DD'", "choice": f"one of {', '.join(map(repr, self.choices))}",
                    "aoi": "(west, south, east, north) in degrees or a GeoJSON geometry",
                    "index": f"an index name ({', '.join(config.INDICES)})",
                    "indices": "a list of index names such as ['NDVI', 'NBR']",
                    "models": f"a list of model names from {', '.join(_model_names())}"}[self.kind]
        return kind + (" or None" if self.optional else "")

    def strict(self, name: str, value, what: str = "notebook"):
        """``value`` checked (integral numbers become int, numbers float); ParameterError if not."""
        if value is None and self.optional:
            return None
        out = self._checked(value)
        if out is _BAD:
            lists = self.kind in ("indices", "models", "ints", "numbers")
            hint = f" (papermill: -y \"{name}: [{value}]\")" if isinstance(value, str) and lists else ""
            raise ParameterError(f"{what} parameter {name} must be {self.expected}, got {value!r}{hint}")
        return out

    def check(self, name: str, value, what: str = "notebook"):
        """Like :meth:`strict`, but a string that is exactly a value of the right type ("6",
        "0.5", "True", "None": papermill's ``-r`` passes strings) is converted with a warning
        that says so; any other string is an error."""
        spells = isinstance(value, str) and (self.kind in ("int", "number", "bool")
                                             or value.strip() == "None" and self.optional)
        if spells:
            parsed = _parse_literal(value)
            if parsed is not _BAD and (parsed is None and self.optional or self._checked(parsed) is not _BAD):
                warnings.warn(f"{what} parameter {name}: the string {value!r} was read as {parsed!r} "
                              f"({self.expected}); papermill's -r passes strings, -p {name} {parsed} passes the value",
                              stacklevel=3)
                return self.strict(name, parsed, what)
            raise ParameterError(f"{what} parameter {name} must be {self.expected}, got the string {value!r}")
        return self.strict(name, value, what)

    def _in_range(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return self.hi is None or (v < self.hi if self.hi_open else v <= self.hi)

    def _checked(self, value):
        k = self.kind
        if k in ("int", "number"):
            if not self._in_range(value) or (k == "int" and value != int(value)):
                return _BAD
            return int(value) if k == "int" else float(value)
        if k in ("ints", "numbers"):
            if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)) or not value:
                return _BAD
            items = [Param(k[:-1] if k == "ints" else "number", self.lo, self.hi, self.lo_open,
                           self.hi_open)._checked(v) for v in value]
            return _BAD if any(v is _BAD for v in items) else items
        if k == "bool":
            return value if isinstance(value, bool) else _BAD
        if k in ("str", "choice", "index"):
            if not isinstance(value, str) or not value.strip():
                return _BAD
            if k == "choice" and value not in self.choices or k == "index" and value.upper() not in config.INDICES:
                return _BAD
            return value
        if k == "path":
            return value if isinstance(value, (str, os.PathLike)) and str(value) != "" else _BAD
        if k == "date":
            try:
                return value if isinstance(value, str) and datetime.date.fromisoformat(value) else _BAD
            except ValueError:
                return _BAD
        if k in ("indices", "models"):
            if isinstance(value, (str, bytes, dict)) or not isinstance(value, (list, tuple)) or not value:
                return _BAD
            known = config.INDICES if k == "indices" else _model_names()
            ok = all(isinstance(v, str) and (v.upper() if k == "indices" else v) in known for v in value)
            return list(value) if ok else _BAD
        if k == "aoi":
            if isinstance(value, dict):
                return value if "type" in value or "coordinates" in value else _BAD
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 4:
                return _BAD
            w, s_, e, n = value
            lon, lat = Param("number", -180, 180), Param("number", -90, 90)
            if any(p._checked(v) is _BAD for p, v in ((lon, w), (lat, s_), (lon, e), (lat, n))) or w >= e or s_ >= n:
                return _BAD
            return tuple(float(v) for v in value)
        raise ValueError(f"unknown parameter kind {k!r}")


_BAD = object()  # a value that fails a Param's check


def _model_names() -> tuple[str, ...]:
    return config.MODELS  # in config, so params does not import classify (and pandas)


def _parse_literal(text: str):
    """The int, float, bool or None a string spells exactly, else ``_BAD``."""
    t = text.strip()
    if t == "None":
        return None
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return _BAD


UNIT = Param("number", 0, 1, lo_open=True)
#: The types and ranges of :class:`LandTrendrParams` (and of notebook 02's parameters of those names).
LANDTRENDR_SPECS = dict(max_segments=Param("int", 1), spike_threshold=UNIT, vertex_count_overshoot=Param("int", 0),
                        prevent_one_year_recovery=Param("bool"), recovery_threshold=UNIT, pval_threshold=UNIT,
                        best_model_proportion=UNIT, min_observations_needed=Param("int", 1))

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
    return Param("int", lo=minimum).strict(name, value, what)


def _optional_number(name: str, value, what: str, *, positive=False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (positive and value <= 0):
        kind = "a positive number" if positive else "a number"
        raise ValueError(f"{what} parameter {name} must be {kind} or None, got {value!r}")
    return float(value)


def check_distdir(distdir, index=None, indices=None) -> int:
    """LandTrendr's disturbance direction, validated: -1 (the index drops on disturbance) or 1.

    ``distdir`` None takes ``index``'s direction (``indices``: name -> an object with
    ``distdir``; default ``config.INDICES``), or -1 without an index. A ``distdir`` that
    contradicts the index's direction gives a warning: LandTrendr would take every
    disturbance for a recovery and the loss maps would be empty.

    A ``distdir`` given without ``index`` is taken as given, without a warning: the values
    carry no index name, and ``distdir=1`` is right for indices that rise on disturbance (TCB)
    and for any series of the user's own. Give ``index=`` to have the direction checked (or
    derived); ltlib's own callers (:func:`ltlib.landtrendr.run`, notebook 02) derive it from
    the stack's index, so only a direct ``segment(values, distdir=...)`` call is unchecked."""
    info = None
    if index is not None:
        indices = config.INDICES if indices is None else indices
        info = indices.get(index.upper()) if isinstance(index, str) else None
        if info is None:
            raise ParameterError(f"LandTrendr parameter index must be one of {', '.join(indices)} or None, "
                                 f"got {index!r}")
        if distdir is None:
            return int(info.distdir)
    if distdir is None:
        return -1
    if isinstance(distdir, bool) or not isinstance(distdir, numbers.Real) or distdir not in (-1, 1):
        raise ParameterError(f"LandTrendr parameter distdir must be -1 (the index drops on disturbance) or 1 "
                             f"(it rises), got {distdir!r}")
    if info is not None and distdir != info.distdir:
        warnings.warn(f"distdir={distdir} contradicts index {index.upper()!r}, which "
                      f"{'drops' if info.distdir < 0 else 'rises'} on disturbance (distdir={info.distdir}): "
                      f"LandTrendr will take its disturbances for recoveries. Leave distdir out to use the "
                      f"index's direction.", UserWarning, stacklevel=3)
    return int(distdir)


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
        for k, spec in LANDTRENDR_SPECS.items():
            object.__setattr__(self, k, spec.strict(k, getattr(self, k), "LandTrendr"))  # frozen dataclass

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


# --------------------------------------------------------------------------- notebook parameters
_YEAR = Param("int", 1972, 2100, optional=True)
_COUNT = Param("int", 1)
_SEED = Param("int", 0)
_OPT_STR = Param("str", optional=True)
_COMMON = dict(data_dir=Param("path", optional=True), output_dir=Param("path"), dask_address=_OPT_STR,
               use_gee=Param("bool"), ee_project=_OPT_STR, aoi=Param("aoi", optional=True))
_YEARS = dict(start_year=_YEAR, end_year=_YEAR)
_EARLIER = dict(landtrendr_dir=Param("path", optional=True))
#: Every notebook's parameters (the names of its ``parameters`` cell) with their types and ranges.
NOTEBOOK_PARAMETERS: dict[str, dict[str, Param]] = {
    "01_collect_landsat": {
        **_COMMON, **_YEARS, "indices": Param("indices", optional=True), "llr_asset": _OPT_STR,
        "source": Param("choice", optional=True, choices=("stac",)), "stac_url": _OPT_STR,
        "composite_method": Param("choice", choices=("medoid", "median")),
        "mask": Param("choice", choices=("lt-gee", "llr", "ee-example")),
        "show_index": Param("index", optional=True), "show_year": _YEAR, "n_pixels_per_class": _COUNT,
        "seed": _SEED},
    "02_fit_landtrendr": {
        **_COMMON, **_YEARS, "index": Param("index", optional=True), "ftv_indices": Param("indices", optional=True),
        **LANDTRENDR_SPECS, "loss_mag_min": Param("number", 0, optional=True),
        "gain_mag_min": Param("number", 0, optional=True), "mmu": Param("int", 1, optional=True),
        "median_filter": Param("bool"), "n_pixels_per_class": _COUNT, "seed": _SEED,
        "recovery_index": Param("index", optional=True),
        "recovery_series": Param("choice", choices=("fitted", "source")),
        "recovery_pre": Param("choice", choices=("vertex", "median", "mean")),
        "reference_points": Param("path", optional=True),
        "area_target_se": Param("number", 0, 1, lo_open=True, hi_open=True), "area_n_min": Param("int", 0),
        "label_plots_max": Param("int", 0, optional=True)},
    "03_cluster_trajectories": {
        **_COMMON, **_YEARS, **_EARLIER, "univariate_index": Param("index", optional=True),
        "multivariate_indices": Param("indices", optional=True), "n_clusters": Param("int", 2, optional=True),
        "k_range": Param("ints", 2), "elbow_max_series": Param("int", 2), "silhouette_sample": Param("int", 2),
        "elbow_n_init": _COUNT, "n_init": _COUNT, "max_iter": _COUNT,
        "kshape_init": Param("choice", choices=("k-shape++", "random", "random-labels")),
        "elbow_init": Param("choice", choices=("k-shape++", "random", "random-labels")),
        "engine_sample": Param("int", 2), "engine_max_iter": _COUNT, "random_state": _SEED},
    "04_classify_trajectories": {
        **_COMMON, **_YEARS, **_EARLIER, "llr_asset": _OPT_STR, "classify_fitted": Param("bool"),
        "training_csv": Param("path", optional=True), "training_first_year": Param("int", 1972, 2100),
        "models": Param("models"), "models_large": Param("models", optional=True), "epochs": _COUNT,
        "use_gadf": Param("bool"), "n_synthetic_per_class": Param("int", 0), "min_observations": _COUNT, "n_reference_per_class": _COUNT,
        "write_probabilities": Param("bool"), "batch_size": _COUNT, "seed": _SEED},
    "05_detect_sar_change": {
        **_COMMON, **_EARLIER, "source": Param("choice", optional=True, choices=("stac",)), "stac_url": _OPT_STR,
        "s1_start": Param("date", optional=True), "s1_end": Param("date", optional=True),
        "orbit_pass": Param("choice", choices=("ASCENDING", "DESCENDING")),
        "relative_orbit": Param("int", 1, 175, optional=True), "enl": Param("number", 1, optional=True),
        "alpha": Param("number", 0, 1, lo_open=True, hi_open=True), "median_filter": Param("bool"),
        "sensitivity_alphas": Param("numbers", 0, 1, lo_open=True, hi_open=True)},
}


def check_notebook(notebook: str, namespace: dict) -> dict:
    """Check a notebook's parameters before any work; converted values are written back.

    Parameters
    ----------
    notebook : str
        The notebook's name, e.g. ``"02_fit_landtrendr"`` (a key of :data:`NOTEBOOK_PARAMETERS`).
    namespace : dict
        Where the parameters are (the notebook's ``globals()``); each is checked against its
        type and range, and strings that spell a value of the right type (papermill ``-r``) are
        converted with a warning. Then the cross-checks: start_year <= end_year, s1_start and
        s1_end both or neither and in order, data_dir a folder (unless use_gee), output_dir not
        a file.

    Returns
    -------
    dict
        {name: checked value}.

    Raises
    ------
    ParameterError
        Listing every bad parameter by name with what it must be.
    """
    specs = NOTEBOOK_PARAMETERS[notebook]
    what = f"{notebook}:"
    checked, problems = {}, []
    for name, spec in specs.items():
        if name not in namespace:
            continue
        try:
            checked[name] = spec.check(name, namespace[name], what)
        except ParameterError as e:
            problems.append(str(e))
    problems += [f"{what} {m}" for m in _cross_checks(checked)]
    if problems:
        raise ParameterError("\n".join(problems) if len(problems) == 1 else
                             f"{len(problems)} bad parameters:\n" + "\n".join(problems))
    namespace.update(checked)
    return checked


def _cross_checks(p: dict) -> list[str]:
    out = []
    if p.get("start_year") is not None and p.get("end_year") is not None and p["start_year"] > p["end_year"]:
        out.append(f"start_year {p['start_year']} is after end_year {p['end_year']}")
    if ("s1_start" in p) and (p.get("s1_start") is None) != (p.get("s1_end") is None):
        out.append(f"give both s1_start and s1_end or neither, got s1_start={p.get('s1_start')!r}, "
                   f"s1_end={p.get('s1_end')!r}")
    elif p.get("s1_start") is not None and p["s1_start"] >= p["s1_end"]:
        out.append(f"s1_start {p['s1_start']} must be before s1_end {p['s1_end']}")
    if "data_dir" in p and not p.get("use_gee") and p["data_dir"] is None:
        out.append("data_dir is None: give a scene folder such as ../data/sample, or use_gee=True")
    elif "data_dir" in p and not p.get("use_gee") and not os.path.isdir(p["data_dir"]):
        out.append(f"data_dir {p['data_dir']} is not a folder (absolute: {os.path.abspath(p['data_dir'])}); give a "
                   "scene folder such as ../data/sample")
    if "output_dir" in p:
        parent = os.path.abspath(p["output_dir"])
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            out.append(f"output_dir {p['output_dir']}: {parent} is a file, not a folder")
    return out

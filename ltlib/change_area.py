"""Loss and gain area with 95% confidence intervals from a stratified reference sample.

A map's pixel count is biased by its errors; good practice (Olofsson et al. 2014, RSE
148:42-57) estimates area from a stratified random sample of reference points whose strata
are the map classes. Here the strata come from LandTrendr's loss and gain maps:

- 0 = no change (neither a loss nor a gain mapped), 1 = loss (any year), 2 = gain without a
  loss; with ``by_year=True`` each loss year is its own stratum (code = the year).

Every point gets a reference label: ``none``, ``loss``, ``gain`` or ``loss_gain`` (both), and
for a loss its year. The labels come from the scene's truth (the sample) or from a CSV/GeoJSON
of points a person labelled (:func:`read_reference`). Three estimates use the same sample and
the project's Olofsson estimator (:func:`ltlib.accuracy.area_adjusted`), each with reference
codes that answer one question:

- loss area: reference 1 = loss (``loss`` or ``loss_gain``), 0 = not;
- gain area: reference 2 = gain (``gain`` or ``loss_gain``), 0 = not;
- loss area per year: reference = the loss year, 0 = no loss.

Each is the stratified estimator p_k = sum_h W_h n_hk / n_h with its standard error (eq. 10-11
of the paper), so the estimates per year add up to the total loss estimate.

Sample design (:func:`design_sample`): the total size for a target standard error of overall
accuracy, n = (sum_i W_i S_i / S(O))^2 with S_i = sqrt(U_i (1 - U_i)) (Olofsson et al. 2014,
eq. 13; :func:`ltlib.accuracy.required_sample_size`), allocated ``proportional`` to area,
``equal`` per stratum, or ``min`` (the paper's section 5.1.2: ``n_min`` per rare stratum, the
rest proportional; :func:`ltlib.accuracy.sample_allocation`). :func:`write_labelling_kit` writes
the points (CSV and GeoJSON) and one series plot per point (source, fit, vertices), so a
person can label them as TimeSync interpreters do (Cohen, Yang & Kennedy 2010, RSE 114).
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import accuracy
from .io import atomic_path, write_json, write_text

NONE, LOSS, GAIN = 0, 1, 2
STRATUM_NAMES = {NONE: "no change", LOSS: "loss", GAIN: "gain only"}
#: Reference labels a point file may use, and (loss, gain) for each.
LABELS = {"none": (False, False), "loss": (True, False), "gain": (False, True), "loss_gain": (True, True)}
ALLOCATIONS = ("min", "proportional", "equal")
#: Anticipated user's accuracies of the design when none are given (Olofsson et al. 2014's
#: example: change classes 0.6-0.7, stable classes 0.9-0.95).
DEFAULT_UA = {NONE: 0.95, LOSS: 0.7, GAIN: 0.6}
POINT_FILES = ("points.csv", "points.geojson")


# --- strata ------------------------------------------------------------------------------------

def strata_map(loss_yod, gain_yod, *, by_year: bool = False):
    """Strata of the change maps: int32 (H, W), 0 no change, 1 loss (or the loss year with
    ``by_year``), 2 gain without a loss. numpy or dask in, the same out (dask: lazily)."""
    from .blocks import is_lazy

    xp = np
    if is_lazy(loss_yod) or is_lazy(gain_yod):
        import dask.array as xp  # noqa: N812 (same calls as numpy)
    loss_yod, gain_yod = xp.asarray(loss_yod), xp.asarray(gain_yod)
    if loss_yod.shape != gain_yod.shape:
        raise ValueError(f"loss map {loss_yod.shape} and gain map {gain_yod.shape} differ in shape")
    lost = xp.isfinite(loss_yod)
    loss_code = xp.where(lost, loss_yod, 0).astype(np.int32) if by_year else LOSS
    return xp.where(lost, loss_code, xp.where(xp.isfinite(gain_yod), GAIN, NONE)).astype(np.int32)


def stratum_counts(strata) -> dict:
    """{stratum: pixels} of a strata map (numpy or dask; dask counted block by block)."""
    from .blocks import compute, is_lazy

    if is_lazy(strata):
        import dask.array as da

        counts = np.asarray(compute(da.bincount(strata.ravel()), progress=False)[0])
    else:
        counts = np.bincount(np.asarray(strata).ravel())
    return {int(c): int(n) for c, n in enumerate(counts) if n}


# --- sample design -----------------------------------------------------------------------------

@dataclass
class SampleDesign:
    """A stratified sample of the change strata (:func:`design_sample`)."""

    counts: dict  # {stratum: pixels}
    expected_users: dict  # {stratum: anticipated user's accuracy}
    target_se: float
    n_required: int  # eq. 13
    allocation: str
    n_per_stratum: dict  # {stratum: points}
    points: object  # pandas DataFrame: point, row, col, x, y, lon, lat, stratum, reference, year

    def summary(self) -> dict:
        return {"target_se_overall": self.target_se, "n_required": self.n_required, "allocation": self.allocation,
                "n_per_stratum": {str(k): v for k, v in self.n_per_stratum.items()},
                "expected_users": {str(k): v for k, v in self.expected_users.items()},
                "stratum_pixels": {str(k): v for k, v in self.counts.items()}}


def design_sample(strata, grid, *, target_se: float = 0.01, expected_users: dict | None = None,
                  allocation: str = "min", n_min: int = 50, n_total: int | None = None, seed: int = 0) -> SampleDesign:
    """Sample size, allocation and points of a stratified reference sample.

    Parameters
    ----------
    strata : int (H, W), numpy or dask, from :func:`strata_map`.
    grid : ltlib.io.Grid of the map.
    target_se : float
        Target standard error of overall accuracy S(O) of eq. 13 (0.01 = one point).
    expected_users : {stratum: U_i} or None
        Anticipated user's accuracies; None: :data:`DEFAULT_UA` (a loss-year stratum as loss).
    allocation : {"min", "proportional", "equal"}
        ``min``: ``n_min`` points per stratum (capped by its pixels), the rest proportional to
        area (Olofsson et al. 2014, section 5.1.2); ``proportional``; ``equal``.
    n_min : int, the minimum per stratum of ``min`` (the paper: 50-100).
    n_total : int or None, the total size instead of eq. 13's (e.g. what you can afford to label).
    seed : int, of the random draw (:func:`ltlib.accuracy.stratified_sample`).

    Returns
    -------
    SampleDesign, its ``points`` table without reference labels.

    References
    ----------
    Olofsson, Foody, Herold, Stehman, Woodcock & Wulder (2014) RSE 148:42-57, eq. 13 and
    section 5.1.2; Cochran (1977) Sampling Techniques.
    """
    if allocation not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
    counts = stratum_counts(strata)
    if expected_users is None:
        expected_users = {c: DEFAULT_UA.get(c, DEFAULT_UA[LOSS]) for c in counts}
    missing = sorted(set(counts) - set(expected_users))
    if missing:
        raise ValueError(f"expected_users has no anticipated user's accuracy for strata {missing}")
    cls = sorted(counts)
    n_req = accuracy.required_sample_size({c: counts[c] for c in cls}, {c: expected_users[c] for c in cls},
                                          target_se_overall=target_se)
    n = n_req if n_total is None else int(n_total)
    if allocation == "equal":
        alloc = {c: min(counts[c], n // len(cls)) for c in cls}
    else:
        alloc = accuracy.sample_allocation({c: counts[c] for c in cls}, max(n, 1),
                                           min_per_class=n_min if allocation == "min" else 0)
    rows, cols = accuracy.stratified_sample(strata, alloc, seed=seed)
    table = accuracy.reference_points(strata, rows, cols, grid).rename(columns={"map_class": "stratum"})
    table["reference"] = ""
    table["year"] = ""
    return SampleDesign(counts, {c: float(expected_users[c]) for c in cls}, float(target_se), n_req, allocation,
                        alloc, table)


# --- reference labels --------------------------------------------------------------------------

def labels_from_truth(truth: dict, rows, cols, *, loss_mag_min: float | None = None,
                      gain_mag_min: float | None = None):
    """Reference labels of points from a scene's truth bands (dist_year, dist_mag, gain_year,
    gain_mag): a loss where dist_year > 0 and dist_mag > ``loss_mag_min``, a gain likewise;
    returns (loss bool (n,), year int (n,) 0 = none, gain bool (n,))."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    # a lazy truth reads only the blocks holding the points
    at = {b: np.asarray(accuracy._at(truth[b], rows, cols), dtype=float)
          for b in ("dist_year", "dist_mag", "gain_year", "gain_mag")}
    loss = (at["dist_year"] > 0) & (at["dist_mag"] > (loss_mag_min or 0))
    gain = (at["gain_year"] > 0) & (at["gain_mag"] > (gain_mag_min or 0))
    return loss, np.where(loss, at["dist_year"], 0).astype(int), gain


def _read_table(path: Path):
    import pandas as pd

    if path.suffix.lower() in (".geojson", ".json"):
        try:
            obj = json.loads(path.read_text())
        except ValueError as e:
            raise ValueError(f"{path} is not valid GeoJSON ({e})") from None
        feats = obj.get("features") if isinstance(obj, dict) else None
        if not isinstance(feats, list):
            raise ValueError(f"{path}: expected a GeoJSON FeatureCollection of points")
        recs = []
        for k, f in enumerate(feats):
            geom = (f or {}).get("geometry") or {}
            if geom.get("type") != "Point":
                raise ValueError(f"{path}: feature {k} is a {geom.get('type')!r}, expected a Point")
            lon, lat = geom["coordinates"][:2]
            recs.append({**(f.get("properties") or {}), "lon": lon, "lat": lat})
        # GeoJSON coordinates are lon/lat (RFC 7946): x/y properties are ignored for them
        return pd.DataFrame(recs).drop(columns=["x", "y"], errors="ignore"), "feature"
    if path.suffix.lower() != ".csv":
        raise ValueError(f"{path}: reference points must be a .csv or .geojson file")
    return pd.read_csv(path, dtype={"reference": str}, keep_default_na=False, na_values=[""]), "row"


def _rows_text(kind, idx) -> str:
    idx = [int(i) for i in idx]
    more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
    # CSV rows counted as a spreadsheet shows them: the header is row 1
    shown = [i + 2 for i in idx[:10]] if kind == "row" else idx[:10]
    return f"{kind}s {shown}{more}"


def read_reference(path, grid, years=None):
    """Reference points a person labelled: a CSV (columns x, y in the map's CRS, or lon, lat)
    or a GeoJSON FeatureCollection of points (lon/lat), with a ``reference`` column (``none``,
    ``loss``, ``gain``, ``loss_gain``) and a ``year`` column (the loss year; empty otherwise).

    Parameters
    ----------
    path : .csv or .geojson (e.g. the ``points.csv`` of :func:`write_labelling_kit`, filled in).
    grid : ltlib.io.Grid of the maps.
    years : int (T,) or None: when given, a loss year outside them is an error.

    Returns
    -------
    (rows, cols, loss, year, gain): int64 (n,), int64 (n,), bool (n,), int (n,) 0 = none, bool (n,).

    Raises
    ------
    ValueError naming the file and the rows: no coordinates or no ``reference`` column; an
    unlabelled point; an unknown label; a loss without a year or with a year outside ``years``;
    a point off the grid; two points in one pixel.
    """
    import pandas as pd
    from rasterio.warp import transform as warp

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference points {path} not found")
    table, kind = _read_table(path)
    if "reference" not in table.columns:
        raise ValueError(f"{path}: no 'reference' column (labels: {', '.join(LABELS)})")
    if {"x", "y"} <= set(table.columns) and table[["x", "y"]].notna().all().all():
        x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    elif {"lon", "lat"} <= set(table.columns):
        lon, lat = table["lon"].to_numpy(float), table["lat"].to_numpy(float)
        x, y = (np.asarray(a, float) for a in warp("EPSG:4326", grid.crs, lon.tolist(), lat.tolist()))
    else:
        raise ValueError(f"{path}: needs coordinates: columns x, y (in {grid.crs.to_string()}) or lon, lat")
    ref = table["reference"].astype(str).str.strip().str.lower()
    blank = table["reference"].isna() | ref.isin(["", "nan", "<na>"])
    if blank.any():
        raise ValueError(f"{path}: {int(blank.sum())} point(s) have no reference label ({_rows_text(kind, np.flatnonzero(blank))}); "
                         f"label each as one of {', '.join(LABELS)} or delete the point")
    unknown = ~ref.isin(list(LABELS))
    if unknown.any():
        bad = sorted(set(table["reference"][unknown].astype(str)))
        raise ValueError(f"{path}: unknown reference label(s) {bad} at {_rows_text(kind, np.flatnonzero(unknown))}; "
                         f"expected one of {', '.join(LABELS)}")
    loss = ref.map(lambda r: LABELS[r][0]).to_numpy(bool)
    gain = ref.map(lambda r: LABELS[r][1]).to_numpy(bool)
    yr = table["year"] if "year" in table.columns else np.full(len(table), np.nan)
    yr = np.asarray(pd.to_numeric(yr, errors="coerce"), dtype=float)
    bad_year = loss & ~(np.isfinite(yr) & (yr == np.round(yr)))
    if years is not None:
        bad_year |= loss & np.isfinite(yr) & ~np.isin(yr, np.asarray(years))
    if bad_year.any():
        span = "" if years is None else f" between {int(np.min(years))} and {int(np.max(years))}"
        raise ValueError(f"{path}: a loss needs its year (column 'year'{span}): missing or invalid at "
                         f"{_rows_text(kind, np.flatnonzero(bad_year))}")
    inv = ~grid.transform
    cols_f, rows_f = inv * (x, y)
    rows_f, cols_f = np.floor(np.asarray(rows_f)), np.floor(np.asarray(cols_f))
    off = ~np.isfinite(rows_f) | ~np.isfinite(cols_f) | (rows_f < 0) | (rows_f >= grid.height) | \
        (cols_f < 0) | (cols_f >= grid.width)
    if off.any():
        raise ValueError(f"{path}: {int(off.sum())} point(s) off the {grid.height} x {grid.width} px grid "
                         f"({_rows_text(kind, np.flatnonzero(off))}); the points must lie on the scene")
    rows, cols = rows_f.astype(np.int64), cols_f.astype(np.int64)
    flat = rows * grid.width + cols
    _, first, inverse, n = np.unique(flat, return_index=True, return_inverse=True, return_counts=True)
    dup = n[inverse] > 1
    if dup.any():
        raise ValueError(f"{path}: {int(dup.sum())} points fall in a pixel another point also falls in "
                         f"({_rows_text(kind, np.flatnonzero(dup))}); a pixel is one sample unit: keep one of each")
    return rows, cols, loss, np.where(loss, yr, 0).astype(int), gain


# --- estimates ---------------------------------------------------------------------------------

@dataclass
class ChangeAreas:
    """Loss and gain area: mapped (pixel count) and estimated (Olofsson et al. 2014, 95% CI)."""

    source: str  # "truth", the reference file, or "none" (labels needed)
    mapped_ha: dict  # {"loss": ha, "gain": ha}
    mapped_by_year_ha: dict  # {year: ha}
    estimates: dict | None = None  # {"loss": {...}, "gain": {...}}
    by_year: dict | None = None  # {year: {"area_ha", "ci_ha"}}
    n_points: int = 0
    design: SampleDesign | None = None
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)

    def summary(self) -> dict:
        out = {"reference": self.source, "n_points": self.n_points, "mapped_ha": self.mapped_ha,
               "estimates": self.estimates, "loss_by_year": self.by_year, "notes": list(self.notes)}
        if self.design is not None:
            out["design"] = self.design.summary()
        return accuracy.jsonable(out)

    def to_frame(self):
        """One row per quantity (loss, gain, loss in each year): mapped_ha, estimate_ha, ci95_ha."""
        import pandas as pd

        rows = []
        for what in ("loss", "gain"):
            e = (self.estimates or {}).get(what, {})
            rows.append({"quantity": what, "mapped_ha": self.mapped_ha[what], "estimate_ha": e.get("area_ha"),
                         "ci95_ha": e.get("ci_ha")})
        years = sorted(set(self.mapped_by_year_ha) | set(self.by_year or {}))
        for y in years:
            e = (self.by_year or {}).get(y, {})
            rows.append({"quantity": f"loss {y}", "mapped_ha": self.mapped_by_year_ha.get(y, 0.0),
                         "estimate_ha": e.get("area_ha"), "ci95_ha": e.get("ci_ha")})
        return pd.DataFrame(rows)


def _area(strata_pts, ref_pts, counts, pixel_area, z):
    """One Olofsson estimate: map strata vs reference codes -> AccuracyReport (warnings kept)."""
    classes = sorted(set(counts) | {int(c) for c in np.unique(ref_pts)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", accuracy.AccuracyWarning)
        rep = accuracy.area_adjusted(strata_pts, ref_pts, {c: counts.get(c, 0) for c in classes}, classes,
                                     pixel_area=pixel_area, z=z)
    # each question recodes the reference, so the accuracies of the classes it does not ask
    # about are NaN by construction: only the notes that concern areas are kept
    notes = [part for w in caught for part in str(w.message).removeprefix("area_adjusted: ").split(" | ")
             if not part.startswith(("user's accuracy", "producer's accuracy"))]
    return rep, classes, notes


def estimate_areas(strata_at_points, loss, year, gain, counts: dict, *, pixel_area: float, z: float = 1.96):
    """Loss area, gain area and loss area per year with confidence intervals.

    Parameters
    ----------
    strata_at_points : int (n,), each point's stratum (the strata map at the point).
    loss, gain : bool (n,), the reference labels; year : int (n,), the reference loss year (0 = none).
    counts : {stratum: pixels} of the whole map.
    pixel_area : float, m^2 per pixel. z : normal quantile (1.96: 95%).

    Returns
    -------
    (estimates, by_year, notes): estimates {"loss"|"gain": {"area_ha", "ci_ha", "se_ha", "users",
    "producers"}}, by_year {year: {"area_ha", "ci_ha"}} (every reference loss year), notes (the
    estimator's warnings, e.g. a stratum without points).
    """
    s = np.asarray(strata_at_points).astype(np.int64)
    loss, gain, year = np.asarray(loss, bool), np.asarray(gain, bool), np.asarray(year).astype(np.int64)
    if not (s.shape == loss.shape == gain.shape == year.shape):
        raise ValueError("strata_at_points, loss, year and gain must have one value per point")
    out, notes = {}, []
    for what, ref, code in (("loss", loss, LOSS), ("gain", gain, GAIN)):
        rep, classes, msgs = _area(s, np.where(ref, code, NONE), counts, pixel_area, z)
        k = classes.index(code)
        entry = {"area_ha": rep.area_ha[k], "ci_ha": rep.area_ha_ci[k], "se_ha": rep.area_ha_ci[k] / z}
        if code in counts:  # the stratum of the same code is the mapped class: its accuracies
            entry.update(users=rep.users[k], producers=rep.producers[k])
        out[what] = entry
        notes += [f"{what}: {m}" for m in msgs]
    by_year = {}
    if loss.any():
        rep, classes, msgs = _area(s, np.where(loss, year, NONE), counts, pixel_area, z)
        notes += [f"loss by year: {m}" for m in msgs]
        for y in sorted(set(year[loss].tolist())):
            k = classes.index(int(y))
            by_year[int(y)] = {"area_ha": rep.area_ha[k], "ci_ha": rep.area_ha_ci[k]}
    return accuracy.jsonable(out), {y: accuracy.jsonable(v) for y, v in by_year.items()}, notes


def change_areas(run, scene=None, *, reference=None, target_se: float = 0.01, allocation: str = "min",
                 n_min: int = 50, n_total: int | None = None, by_year: bool = False, seed: int = 0,
                 output_dir=None, plots: str = "auto", max_plots: int | None = 100, z: float = 1.96) -> ChangeAreas:
    """Loss and gain area of a LandTrendr run, mapped and estimated from a reference sample.

    Parameters
    ----------
    run : ltlib.landtrendr.LandTrendrRun (its loss and gain maps).
    scene : ltlib.scene.Scene or None: its truth labels the design's points when it has one
        (thresholds: the run's ``loss_params.mag_min`` and ``gain_params.mag_min``).
    reference : path or None
        A labelled CSV/GeoJSON (:func:`read_reference`); used instead of the truth. None: the
        truth, or, without one, the design's points are written for labelling and no estimate
        is made (a note says so).
    target_se, allocation, n_min, n_total, by_year, seed : the design (:func:`design_sample`).
    output_dir : path or None: ``reference_sample/`` (points, and plots when labels are needed)
        is written there.
    plots : {"auto", "always", "never"}: series plots per point ("auto": when labels are needed).
    max_plots : int or None: at most this many plots (:func:`write_labelling_kit`; None: all).
    z : normal quantile of the intervals (1.96: 95%).

    Returns
    -------
    ChangeAreas
    """
    if plots not in ("auto", "always", "never"):
        raise ValueError(f"plots must be 'auto', 'always' or 'never', got {plots!r}")
    grid = run.grid
    strata = strata_map(run.loss["yod"], run.gain["yod"], by_year=by_year)
    counts = stratum_counts(strata)
    n_px = sum(counts.values())
    total_m2 = float(np.sum(grid.pixel_areas_m2()) * grid.width)
    pixel_area = total_m2 / n_px
    mapped = {"loss": round(grid.area_ha(np.isfinite(np.asarray(run.loss["yod"]))), 2),
              "gain": round(grid.area_ha(np.isfinite(np.asarray(run.gain["yod"]))), 2)}
    res = ChangeAreas("none", mapped, run.area_by_year("loss"))
    folder = None if output_dir is None else Path(output_dir) / "reference_sample"
    if reference is not None:
        rows, cols, loss, year, gain = read_reference(reference, grid, run.years)
        res.source = str(reference)
    else:
        design = design_sample(strata, grid, target_se=target_se, allocation=allocation, n_min=n_min,
                               n_total=n_total, seed=seed)
        res.design = design
        rows, cols = design.points["row"].to_numpy(), design.points["col"].to_numpy()
        if scene is not None and scene.has_truth:
            loss, year, gain = labels_from_truth(scene.truth, rows, cols, loss_mag_min=run.loss_params.mag_min,
                                                 gain_mag_min=run.gain_params.mag_min)
            design.points["reference"] = [_label(lo, g) for lo, g in zip(loss, gain)]
            design.points["year"] = [str(int(y)) if lo else "" for lo, y in zip(loss, year)]
            res.source = "truth"
        else:
            res.notes.append("no reference labels (no truth, no reference file): label reference_sample/points.csv "
                             "(column reference: none, loss, gain or loss_gain; year for a loss) and run again "
                             "with reference_points set to it")
        if folder is not None:
            want_plots = plots == "always" or (plots == "auto" and res.source == "none")
            kit = write_labelling_kit(design, run, scene, folder, plots=want_plots, max_plots=max_plots)
            res.notes += kit.pop("notes")
            res.files.update(kit)
    if res.source != "none":
        s_pts = accuracy._at(strata, np.asarray(rows), np.asarray(cols))
        res.estimates, res.by_year, notes = estimate_areas(s_pts, loss, year, gain, counts, pixel_area=pixel_area, z=z)
        res.notes += notes
        res.n_points = int(len(rows))
    return res


def _label(loss: bool, gain: bool) -> str:
    return next(k for k, v in LABELS.items() if v == (bool(loss), bool(gain)))


# --- labelling kit -----------------------------------------------------------------------------

def _vertices(fitted: np.ndarray) -> np.ndarray:
    """Vertex mask of a piecewise-linear fitted series (T,): its ends and where the slope changes."""
    isv = np.zeros(fitted.shape, bool)
    ok = np.flatnonzero(np.isfinite(fitted))
    if ok.size:
        isv[ok[0]] = isv[ok[-1]] = True
        d2 = np.abs(np.diff(fitted, 2))
        isv[1:-1] |= d2 > 1e-3 * (np.nanmax(np.abs(fitted)) + 1)
    return isv


def _series_at(data, rows, cols) -> np.ndarray:
    """(n, T) series of a (T, H, W) stack at points; a dask stack reads only their blocks."""
    from .blocks import compute, is_lazy

    if is_lazy(data):
        import dask.array as da

        return np.asarray(compute(da.stack([data[:, r, c] for r, c in zip(rows, cols)]), progress=False)[0])
    return np.asarray(data)[:, rows, cols].T


def _year_text(y) -> str:
    return str(int(y)) if np.isfinite(y) else "none"


def write_labelling_kit(design: SampleDesign, run, scene, folder, *, plots: bool = True,
                        max_plots: int | None = 100) -> dict:
    """``points.csv`` and ``points.geojson`` (atomic) and, with ``plots``, ``plots/point_NNNN.png``:
    the source series (dots), the fitted series (line) and its vertices (squares) of a point,
    with the mapped loss and gain years in the title.

    ``max_plots`` (None: every point) caps the plots at about 75 ms each: beyond it every k-th
    point is plotted (all strata covered) and the returned ``notes`` say how many and how to
    get all. Returns {key: path} and, under ``"notes"``, a list of such messages."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    pts = design.points
    files = {"reference_points_csv": write_text(folder / POINT_FILES[0], pts.to_csv(index=False))}
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(r.lon), float(r.lat)]},
              "properties": {k: (v.item() if hasattr(v, "item") else v) for k, v in r._asdict().items()
                             if k not in ("Index", "lon", "lat")}} for r in pts.itertuples()]
    files["reference_points_geojson"] = write_json(folder / POINT_FILES[1],
                                                   {"type": "FeatureCollection", "features": feats})
    notes = []
    if not plots or len(pts) == 0:
        return {**files, "notes": notes}
    pick = np.arange(len(pts))
    if max_plots is not None and len(pts) > max_plots:
        pick = np.unique(np.linspace(0, len(pts) - 1, int(max_plots)).round().astype(int))
        notes.append(f"series plots written for {pick.size} of {len(pts)} points (spread over the strata); "
                     "set max_plots=None (notebook: label_plots_max = None) for every point")
    sub = pts.iloc[pick]
    rows, cols = sub["row"].to_numpy(), sub["col"].to_numpy()
    fit = _series_at(run.fitted[run.index], rows, cols)
    src = _series_at(scene.stack(run.index).data, rows, cols) if scene is not None else np.full_like(fit, np.nan)
    ly, gy = (np.asarray(accuracy._at(getattr(run, d)["yod"], rows, cols), float) for d in ("loss", "gain"))
    years = np.asarray(run.years)
    # one figure, its artists updated per point: 3x faster than drawing each plot anew
    fig, ax = plt.subplots(figsize=(5, 2.6))
    l_src, = ax.plot(years, src[0], ".", color="0.5", ms=4, label="source")
    l_fit, = ax.plot(years, fit[0], "-", color="tab:blue", lw=1.5, label="fitted")
    l_vtx, = ax.plot(years, fit[0], "s", color="tab:red", ms=4, label="vertices")
    ax.legend(fontsize=6, loc="upper right")
    ax.set_ylabel(f"{run.index} x 1000", fontsize=8)
    ax.tick_params(labelsize=7)
    title = ax.set_title("", fontsize=8)
    fig.tight_layout()
    for k, p in enumerate(sub["point"]):
        v = _vertices(fit[k])
        l_src.set_ydata(src[k])
        l_fit.set_ydata(fit[k])
        l_vtx.set_data(years[v], fit[k][v])
        both = np.concatenate([src[k], fit[k]])
        lo, hi = (np.nanmin(both), np.nanmax(both)) if np.isfinite(both).any() else (0.0, 1.0)
        ax.set_ylim(lo - 0.05 * (hi - lo + 1), hi + 0.05 * (hi - lo + 1))
        title.set_text(f"point {p}  stratum {sub['stratum'].iloc[k]}  mapped loss {_year_text(ly[k])}, "
                       f"gain {_year_text(gy[k])}")
        with atomic_path(folder / "plots" / f"point_{int(p):04d}.png") as tmp:
            fig.savefig(tmp, dpi=70, format="png")
    plt.close(fig)
    files["reference_plots"] = folder / "plots"
    return {**files, "notes": notes}

"""Labelled trajectory series for the classifiers: the seed's CSV, and a seeded generator.

Step 4 of the seed trains its classifiers on "relatively pure" labelled NDVI series of the
trajectory types of Yang et al. (2018) merged into six classes (``config.CLASS_NAMES``):

====  ==================  =================================================================
0     downward            DN: a loss, no recovery
1     down-then-up        DR1/DR2/DR3: a loss, then recovery (still recovering at the end,
                          plateaued below the pre-disturbance level, or fully recovered)
2     upward              BD1/BD2: disturbed before the record (starts low), then recovers
3     up-then-down        starts low, recovers, then a loss
4     stable              any level, no or a very small trend, noise only
5     multi-disturbance   CD: two or three losses, each followed by partial/full recovery
====  ==================  =================================================================

:func:`load_seed_csv` reads the seed's own labelled set (``dataset_update3_bkup.csv``, 1379
series of 51 years) safely; :func:`seed_split` reproduces its 80/20 split. :func:`generate`
draws new labelled series in physical NDVI units from these rules with random onset years,
magnitudes and recovery shapes, plus noise like annual Landsat composites (per-series white
noise, a smooth interannual anomaly, single-year negative spikes, optional gaps).
:func:`fill_series` interpolates NaN gaps along time (:func:`ltlib.gaps.fill_gaps`, refusing
all-NaN series), and :func:`class_prototypes` gives one noise-free series per class for figures.

Reference: Yang, Y., Erskine, P.D., Lechner, A.M., Mulligan, D., Zhang, S., Wang, Z. (2018).
Detecting the dynamics of vegetation disturbance and recovery in surface mining area via
Landsat imagery and LandTrendr algorithm. Journal of Cleaner Production 178:353-362.
"""
from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import config
from .gaps import fill_gaps

N_CLASSES = len(config.CLASS_NAMES)
#: Smallest loss or gain (NDVI) a generated event may have; also >= ``MIN_SNR`` x noise sd.
MIN_CHANGE = 0.15
MIN_SNR = 3.0
#: Largest total change (NDVI over the record) of a generated stable series.
STABLE_MAX_TREND = 0.04
#: Recovery shapes drawn by :func:`generate`.
RECOVERY_SHAPES = ("linear", "exponential", "logistic")
#: Records of at least this many years use the rules' time constants as written; shorter ones
#: scale them by ``n_years / FULL_RULES_YEARS`` (see :func:`_timing`).
FULL_RULES_YEARS = 30
#: The shortest record :func:`generate` accepts. A multi-disturbance series needs two losses at
#: least 4 years apart, each followed by a visible recovery: 12 years leave about a dozen
#: timings for them, 8 years a single one, fewer none.
MIN_YEARS = 12


# =========================================================================== the seed's CSV
def _parse_series(text, row: int):
    """One ``dataset`` cell -> list of floats. JSON first, then ``ast.literal_eval`` (never eval)."""
    if not isinstance(text, str):
        raise ValueError(f"row {row}: 'dataset' is {text!r}, expected a list literal like '[0.1, 0.2, ...]'")
    try:
        val = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        try:
            # literal_eval only accepts Python literals: a call such as __import__('os')
            # raises ValueError without running anything.
            val = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
            raise ValueError(f"row {row}: 'dataset' is not a list of numbers ({type(e).__name__}): "
                             f"{text[:60]!r}") from None
    if not isinstance(val, (list, tuple)):
        raise ValueError(f"row {row}: 'dataset' is a {type(val).__name__}, expected a list of numbers")
    for v in val:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"row {row}: 'dataset' holds {v!r}, expected numbers only")
    return val


def _parse_label(v, row: int) -> int:
    if isinstance(v, str):
        v = v.strip()
        try:
            v = float(v)
        except ValueError:
            raise ValueError(f"row {row}: label {v!r} is not an integer 0..{N_CLASSES - 1}") from None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise ValueError(f"row {row}: label {v!r} is not an integer 0..{N_CLASSES - 1}")
    if not np.isfinite(v) or float(v) != int(v):
        raise ValueError(f"row {row}: label {v!r} is not an integer 0..{N_CLASSES - 1}")
    v = int(v)
    if not 0 <= v < N_CLASSES:
        raise ValueError(f"row {row}: label {v} outside 0..{N_CLASSES - 1} ({config.CLASS_NAMES})")
    return v


def load_seed_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Read the seed's labelled training set.

    The CSV has a column ``dataset`` (each cell a list literal of T floats, NDVI in -1..1)
    and a column ``label`` (integers 0..5, ``config.CLASS_NAMES``). Cells are parsed with
    ``json.loads`` or ``ast.literal_eval``, never ``eval``. Rows are numbered from 0 (the
    first data row, file line 2) in error messages.

    Returns ``X`` float32 (n, T) and ``y`` int64 (n,). Raises FileNotFoundError for a missing
    file and ValueError for missing columns, an empty file, ragged rows, non-finite values
    or bad labels.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"seed training CSV not found: {path}")
    # Everything as text: labels are checked here, not coerced by pandas.
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("dataset", "label") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{path}: no rows")
    rows, labels = [], []
    n_steps = None
    for i, (text, lab) in enumerate(zip(df["dataset"], df["label"])):
        vals = _parse_series(text, i)
        if n_steps is None:
            n_steps = len(vals)
            if n_steps < 2:
                raise ValueError(f"row {i}: series has {n_steps} values, expected a time series")
        elif len(vals) != n_steps:
            raise ValueError(f"row {i}: series has {len(vals)} values, row 0 has {n_steps} (ragged rows)")
        arr = np.asarray(vals, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(f"row {i}: series has non-finite values (NaN/inf) at positions "
                             f"{np.flatnonzero(~np.isfinite(arr))[:5].tolist()}")
        rows.append(arr)
        labels.append(_parse_label(lab, i))
    return np.asarray(rows, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def seed_split(n_or_y, test_size: float = 0.2, random_state: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """The seed's train/validation split: ``train_test_split(np.arange(n), test_size=0.2,
    random_state=42)`` without stratification, so scores compare with the seed's table.

    ``n_or_y``: the number of series, or an array whose length is that number (e.g. ``y``).
    Returns ``(train_idx, valid_idx)`` int arrays (for 1379 series: 1103 and 276).
    """
    from sklearn.model_selection import train_test_split

    if np.ndim(n_or_y) == 0:
        n = int(n_or_y)
    else:
        n = len(n_or_y)
    if n < 2:
        raise ValueError(f"need at least 2 series to split, got {n}")
    train, valid = train_test_split(np.arange(n), test_size=test_size, random_state=random_state)
    return train, valid


# =========================================================================== shape functions
def _transition(tau: np.ndarray, dur: float, shape: str) -> np.ndarray:
    """0 -> 1 over ``dur`` years; ``tau`` = years since the transition started (>= 0 only).

    ``"ramp"`` (losses) reaches 1 after ``dur`` whole years: ``dur=1`` is a one-year step
    (the start year already has the new value). Recovery shapes start at 0 at tau=0 and
    reach 1 at tau=dur: ``linear``; ``exponential`` (fast then slow, 1 - e^(-3 tau/dur)
    rescaled); ``logistic`` (slow, fast, slow).
    """
    tau = np.asarray(tau, dtype=np.float64)
    if shape == "ramp":
        return np.clip((tau + 1.0) / dur, 0.0, 1.0)
    x = np.clip(tau / dur, 0.0, 1.0)
    if shape == "linear":
        return x
    if shape == "exponential":
        return (1.0 - np.exp(-3.0 * x)) / (1.0 - np.exp(-3.0))
    if shape == "logistic":
        s = 1.0 / (1.0 + np.exp(-10.0 * (x - 0.5)))
        s0, s1 = 1.0 / (1.0 + np.exp(5.0)), 1.0 / (1.0 + np.exp(-5.0))
        return (s - s0) / (s1 - s0)
    raise ValueError(f"unknown transition shape {shape!r}")


def _curve(n_years: int, start_level: float, ops) -> np.ndarray:
    """Noise-free series (n_years,) from a start level and time-ordered operations.

    Each op is ``(year_index, target_level, duration, shape)``: from ``year_index`` on, the
    series moves from its value the year before towards ``target_level`` following
    :func:`_transition`. Later ops replace the curve from their start year.
    """
    t = np.arange(n_years, dtype=np.float64)
    f = np.full(n_years, float(start_level))
    for s, target, dur, shape in ops:
        s = int(s)
        v = f[s - 1] if s > 0 else float(start_level)
        g = _transition(t[s:] - s, dur, shape)
        f[s:] = v + (target - v) * g
    return f


@dataclass(frozen=True)
class _Timing:
    """The rules' time constants (years) for a record of ``T`` years.

    The values below are those of records of :data:`FULL_RULES_YEARS` years or more. Prefixes:
    ``dn`` downward, ``dr`` down-then-up, ``up`` upward, ``ud`` up-then-down, ``md``
    multi-disturbance; ``*_end`` is the room kept after an event, ``*_dur`` the range of a
    recovery's duration, ``*_lag`` the largest delay between a loss and its recovery.
    """

    dn_first: int = 3       # earliest abrupt loss
    dn_end: int = 4         # years kept after an abrupt loss
    dr_room: int = 10       # a gradual loss lasts at most T - dr_room years
    dr_end: int = 8         # years kept after the loss for lag and recovery
    dr_lag: int = 5
    dr_rec_end: int = 4     # a recovery starts at most this many years before the end
    dr_dur: tuple = (4.0, 40.0)
    up_end: int = 12        # years kept after the start of an upward recovery
    up_dur: tuple = (5.0, 45.0)
    ud_end: int = 16        # years kept after the start of the recovery of up-then-down
    ud_gap: int = 6         # years between that recovery's start and the loss
    ud_loss_end: int = 2    # years kept after the loss
    ud_dur: tuple = (4.0, 30.0)
    md_sep: int = 9         # years between two losses
    md_end: int = 9         # years kept after the last loss
    md_loss: int = 15       # longest gradual loss
    md_lag: int = 2
    md_room: int = 3        # years of recovery seen before the next loss
    md_dur: tuple = (3.0, 20.0)
    md_pre_dur: tuple = (3.0, 15.0)  # recovery from a loss before the record


#: Smallest value of each constant when scaled down for a short record.
_TIMING_FLOORS = dict(dn_first=2, dn_end=2, dr_room=3, dr_end=3, dr_lag=1, dr_rec_end=2, up_end=4, ud_end=5,
                      ud_gap=2, ud_loss_end=2, md_sep=4, md_end=3, md_loss=3, md_lag=1, md_room=2)


def _timing(n_years: int) -> _Timing:
    """:class:`_Timing` for ``n_years``: as written from :data:`FULL_RULES_YEARS` years on;
    below, every constant times ``n_years / FULL_RULES_YEARS`` (integers rounded, with the
    floors of :data:`_TIMING_FLOORS`; durations at least a year), so a 12-year record still
    holds each class's sequence of events."""
    full = _Timing()
    if n_years >= FULL_RULES_YEARS:
        return full
    f = n_years / FULL_RULES_YEARS
    scaled = {}
    for name, v in vars(full).items():
        if isinstance(v, tuple):
            scaled[name] = (max(1.0, v[0] * f), max(2.0, v[1] * f))
        else:
            scaled[name] = max(_TIMING_FLOORS[name], int(round(v * f)))
    return _Timing(**scaled)


class _Reject(Exception):
    """A draw whose timing does not fit the record (the caller draws again)."""


class _Draw:
    """Random parameters of one series of each class (physical NDVI)."""

    def __init__(self, rng, T, low, high, gradual_fraction):
        self.rng, self.T, self.low, self.high, self.gf = rng, T, low, high, gradual_fraction
        self.tm = _timing(T)

    def u(self, a, b):
        return float(self.rng.uniform(a, b))

    def i(self, a, b):
        """Integer in a..b inclusive (:class:`_Reject` when the range is empty)."""
        if b < a:
            raise _Reject
        return int(self.rng.integers(a, b + 1))

    def shape(self):
        return RECOVERY_SHAPES[int(self.rng.integers(len(RECOVERY_SHAPES)))]

    def loss_years(self, longest):
        """Loss duration: abrupt (1-2 years) or, with probability ``gradual_fraction``,
        gradual (3..longest years: degradation, progressive clearing)."""
        if longest >= 3 and self.rng.random() < self.gf:
            return self.i(3, longest)
        return self.i(1, 2)

    def levels(self, min_change):
        """A vegetated level from ``high`` and a disturbed one from ``low`` at least
        ``min_change`` below it."""
        hi = self.u(*self.high)
        lo = self.u(self.low[0], min(self.low[1], hi - min_change))
        return hi, lo


def _ops(cls: int, d: _Draw, min_change: float):
    """(start_level, ops) of one series of class ``cls``; None when a draw fails the rules
    (the caller draws again)."""
    T, tm = d.T, d.tm
    if cls == 0:  # DN: loss, no recovery
        hi, lo = d.levels(min_change)
        L = d.loss_years(T - 1)
        if L <= 2:
            t0 = d.i(tm.dn_first, T - tm.dn_end)
        else:  # gradual declines may span the record
            t0 = d.i(1, T - L)
        return hi, [(t0, lo, L, "ramp")]
    if cls == 1:  # DR1-3: loss, (lag), recovery that is visible by the end
        hi, lo = d.levels(min_change)
        L = d.loss_years(T - tm.dr_room)
        t0 = d.i(2 if L <= 2 else 1, T - tm.dr_end - L)
        rs = t0 + L + d.i(0, tm.dr_lag)
        if rs > T - tm.dr_rec_end:
            return None
        dur = d.u(*tm.dr_dur)
        frac = d.u(0.35, 1.1)  # >= 1: approaching or exceeding the pre-disturbance level
        target = min(lo + frac * (hi - lo), 0.95)
        ops = [(t0, lo, L, "ramp"), (rs, target, dur, d.shape())]
        f = _curve(T, hi, ops)
        if f[-1] - lo < max(min_change, 0.1 * (hi - lo)):
            return None
        return hi, ops
    if cls == 2:  # BD1/BD2: starts low, recovers to a vegetated level
        hi, lo = d.levels(min_change)
        rs = d.i(0, T - tm.up_end)
        dur = d.u(*tm.up_dur)
        ops = [(rs, hi, dur, d.shape())]
        f = _curve(T, lo, ops)
        if f[-1] - lo < min_change:
            return None
        return lo, ops
    if cls == 3:  # starts low (or partly recovered), recovers, then a loss
        hi, lo = d.levels(min_change)
        start = lo + d.u(0.0, 0.4) * (hi - lo) if d.rng.random() < 0.3 else lo
        rs = d.i(0, T - tm.ud_end)
        dur = d.u(*tm.ud_dur)
        t1 = d.i(rs + tm.ud_gap, T - tm.ud_loss_end)
        L = d.loss_years(T - t1)
        rec = [(rs, hi, dur, d.shape())]
        peak = _curve(T, start, rec)[t1 - 1]
        if peak - start < min_change:
            return None
        if peak - d.low[0] < min_change:
            return None
        if d.rng.random() < 0.6:  # back to bare ground
            lo2 = d.u(d.low[0], d.low[1])
        else:  # a partial loss
            lo2 = peak - d.u(min_change, max(min_change, peak - d.low[0]))
        if peak - lo2 < min_change:
            return None
        return start, rec + [(t1, lo2, L, "ramp")]
    if cls == 4:  # stable: any level, tiny trend
        level = d.u(d.low[0], d.high[1])
        trend = d.u(-STABLE_MAX_TREND, STABLE_MAX_TREND)
        return level - trend / 2, [(0, level + trend / 2, T, "linear")]
    if cls == 5:  # CD: 2-3 losses, each followed by partial or full recovery
        k = 2 if d.rng.random() < 0.6 else 3
        sep = tm.md_sep
        first, last = 1, T - tm.md_end
        slack = last - first - sep * (k - 1)
        if slack < 0:
            k, slack = 2, last - first - sep
            if slack < 0:
                return None
        starts = np.sort(d.rng.integers(0, slack + 1, size=k)) + first + sep * np.arange(k)
        # sparse to vegetated at the start; later recoveries may exceed it
        start = d.u(d.low[1], 0.5 * (d.high[0] + d.high[1]))
        ops = []
        if d.rng.random() < 0.3:  # the record starts while recovering from an older loss
            ops.append((0, d.u(*d.high), d.u(*tm.md_pre_dur), d.shape()))
        for j, t0 in enumerate(starts):
            t0 = int(t0)
            v = _curve(T, start, ops)[t0 - 1]
            if v - d.low[0] < min_change:
                return None
            lo = d.u(d.low[0], min(d.low[1], v - min_change))
            L = d.loss_years(tm.md_loss)
            rs = t0 + L + d.i(0, tm.md_lag)
            nxt = int(starts[j + 1]) if j + 1 < k else T
            ops.append((t0, lo, L, "ramp"))
            if rs > nxt - tm.md_room:
                return None
            target = lo + d.u(0.5, 1.0) * (d.u(*d.high) - lo)  # partial or full recovery
            ops.append((rs, target, d.u(*tm.md_dur), d.shape()))
            if _curve(T, start, ops)[nxt - 1] - lo < min_change:  # a visible recovery
                return None
        return start, ops
    raise ValueError(f"class {cls} not in 0..{N_CLASSES - 1}")


# =========================================================================== generator
def _check_range(name, r, lo=-1.0, hi=1.0):
    r = tuple(float(v) for v in r)
    if len(r) != 2 or not (lo <= r[0] <= r[1] <= hi):
        raise ValueError(f"{name} must be a (min, max) pair with {lo} <= min <= max <= {hi}, got {r}")
    return r


def generate(n_per_class: int | Sequence[int], *, n_years: int = 51, seed: int = 0,
             noise=(0.01, 0.05), gap_fraction: float = 0.0, spike_rate: float = 0.01,
             low=(0.0, 0.25), high=(0.35, 0.85), gradual_fraction: float = 0.2,
             return_clean: bool = False):
    """Labelled NDVI-like series of the six trajectory classes (physical NDVI units).

    n_per_class: one count for every class, or six counts (class 0..5). ``low``/``high``:
    ranges of disturbed (bare) and vegetated NDVI levels. Each series draws its own onset
    years, levels, magnitudes and recovery shape (linear, exponential or logistic, reaching
    its target after 3-45 years, so some still recover at the end and others plateau).
    Losses are abrupt (1-2 years) or, with probability ``gradual_fraction``, gradual (3 years
    up to the whole record: degradation, progressive clearing). Every loss and every gain is
    at least 0.15 NDVI and at least 3x the series' white-noise sd. The classes:

    0 downward: vegetated (``high``) -> ``low`` at a random year, flat after (no recovery).
    1 down-then-up: the same loss (1-20+ years), a lag of 0-5 years, then recovery towards
      35-110 % of the pre-disturbance level; at least 0.15 (and 10 % of the loss) regained
      by the last year.
    2 upward: starts at a ``low`` level (disturbed before the record) and recovers to a
      ``high`` level from a random year; at least 0.15 gained by the last year.
    3 up-then-down: starts low (30 %: partly recovered), recovers by >= 0.15, then a loss
      back to bare ground (60 %) or a partial loss at least 6 years after recovery began.
    4 stable: any level in ``low[0]..high[1]``, a linear trend of at most 0.04 over the
      record, noise only.
    5 multi-disturbance: two (60 %) or three losses at least 9 years apart, each to a
      ``low`` level and each followed by a recovery of >= 0.15 towards 50-100 % of a
      ``high`` level; starts sparse-to-vegetated (30 %: still recovering from an older loss).

    Noise like annual Landsat composites: per-series white noise with sd drawn uniformly in
    ``noise``; a smooth interannual anomaly (AR(1), phi 0.3-0.7, sd half the white noise);
    single-year negative spikes (cloud/smoke residue, 0.1-0.3 NDVI) at rate ``spike_rate``
    per value; NaN gaps at rate ``gap_fraction`` per value (every series keeps at least two
    values; fill them with :func:`fill_series`). Values are clipped to -1..1.

    The year counts above are those of records of :data:`FULL_RULES_YEARS` (30) years or more;
    a shorter record (``n_years`` down to :data:`MIN_YEARS`, 12) scales every onset, gap and
    duration by ``n_years / 30`` (:func:`_timing`), so each class keeps its sequence of events.

    Seeded (``np.random.default_rng(seed)``), reproducible; rows are shuffled.
    Returns ``X`` float32 (n, n_years) and ``y`` int64 (n,); with ``return_clean=True`` also
    the noise-free series float32 (n, n_years), same row order.
    """
    if np.ndim(n_per_class) == 0:
        counts = [int(n_per_class)] * N_CLASSES
    else:
        counts = [int(c) for c in n_per_class]
        if len(counts) != N_CLASSES:
            raise ValueError(f"n_per_class needs {N_CLASSES} counts (classes 0..5), got {len(counts)}")
    if any(c < 0 for c in counts) or sum(counts) == 0:
        raise ValueError(f"n_per_class must be non-negative with at least one series, got {counts}")
    n_years = int(n_years)
    if n_years < MIN_YEARS:
        raise ValueError(f"n_years must be >= {MIN_YEARS} (room for two losses, each with a recovery), got {n_years}")
    noise = _check_range("noise", noise, 0.0, 0.2)
    low = _check_range("low", low)
    high = _check_range("high", high)
    for name, v, top in (("gap_fraction", gap_fraction, 0.9), ("spike_rate", spike_rate, 0.5),
                         ("gradual_fraction", gradual_fraction, 1.0)):
        if not 0.0 <= float(v) <= top:
            raise ValueError(f"{name} must be in [0, {top}], got {v}")
    need = max(MIN_CHANGE, MIN_SNR * noise[1])
    if high[0] - low[0] < need:
        raise ValueError(f"high[0] - low[0] = {high[0] - low[0]:.3f} leaves no room for losses of "
                         f">= {need:.3f} NDVI (0.15 and 3x the largest noise sd): widen low/high or reduce noise")

    rng = np.random.default_rng(seed)
    T = n_years
    n = sum(counts)
    y = np.repeat(np.arange(N_CLASSES, dtype=np.int64), counts)
    sd = rng.uniform(noise[0], noise[1], size=n)
    clean = np.empty((n, T))
    d = _Draw(rng, T, low, high, float(gradual_fraction))
    for r in range(n):
        min_change = max(MIN_CHANGE, MIN_SNR * sd[r])
        for _ in range(1000):
            try:
                got = _ops(int(y[r]), d, min_change)
            except _Reject:
                got = None
            if got is not None:
                break
        else:  # pragma: no cover - the rules above accept most draws
            raise RuntimeError(f"could not draw a class {y[r]} series meeting the rules")
        start, ops = got
        clean[r] = _curve(T, start, ops)

    # Smooth interannual anomaly (weather): AR(1) with phi 0.3..0.7, stationary sd = sd/2.
    phi = rng.uniform(0.3, 0.7, size=n)
    e = rng.standard_normal((n, T)) * (0.5 * sd * np.sqrt(1 - phi**2))[:, None]
    anom = np.empty((n, T))
    anom[:, 0] = rng.standard_normal(n) * 0.5 * sd
    for t in range(1, T):
        anom[:, t] = phi * anom[:, t - 1] + e[:, t]
    X = clean + anom + rng.standard_normal((n, T)) * sd[:, None]
    spikes = rng.random((n, T)) < spike_rate
    X = X - spikes * rng.uniform(0.1, 0.3, size=(n, T))
    X = np.clip(X, -1.0, 1.0)
    if gap_fraction > 0:
        gaps = rng.random((n, T)) < gap_fraction
        # keep at least two observations per series
        keep = np.argsort(rng.random((n, T)), axis=1)[:, :2]
        np.put_along_axis(gaps, keep, False, axis=1)
        X[gaps] = np.nan
    order = rng.permutation(n)
    if return_clean:
        return X[order].astype(np.float32), y[order], clean[order].astype(np.float32)
    return X[order].astype(np.float32), y[order]


def class_prototypes(n_years: int = 51) -> np.ndarray:
    """One noise-free idealised series per class, float32 (6, n_years), physical NDVI.

    Fixed parameters scaled to the record length: 0 abrupt loss 0.7 -> 0.1 at 40 %;
    1 the same loss at 30 % then exponential recovery to 0.6; 2 logistic recovery from 0.1
    to 0.65 starting at 10 %; 3 recovery 0.12 -> 0.6 then an abrupt loss to 0.08 at 70 %;
    4 flat at 0.5; 5 losses at 20 % and 60 %, each followed by exponential recovery.
    """
    T = int(n_years)
    if T < MIN_YEARS:
        raise ValueError(f"n_years must be >= {MIN_YEARS}, got {T}")
    at = lambda frac: int(round(frac * T))  # noqa: E731
    protos = [
        (0.7, [(at(0.4), 0.1, 1, "ramp")]),
        (0.7, [(at(0.3), 0.1, 1, "ramp"), (at(0.3) + 3, 0.6, 0.4 * T, "exponential")]),
        (0.1, [(at(0.1), 0.65, 0.5 * T, "logistic")]),
        (0.12, [(at(0.05), 0.6, 0.4 * T, "linear"), (at(0.7), 0.08, 1, "ramp")]),
        (0.5, []),
        (0.7, [(at(0.2), 0.12, 1, "ramp"), (at(0.2) + 1, 0.6, 0.25 * T, "exponential"),
               (at(0.6), 0.1, 2, "ramp"), (at(0.6) + 2, 0.55, 0.25 * T, "exponential")]),
    ]
    return np.stack([_curve(T, s, ops) for s, ops in protos]).astype(np.float32)


# =========================================================================== gaps
def fill_series(X, *, chunk_rows: int = 65536) -> np.ndarray:
    """Fill NaN gaps in each series (row) by linear interpolation along time, strictly.

    :func:`ltlib.gaps.fill_gaps` with the checks a classifier's input needs.

    Parameters
    ----------
    X : array_like, (n, T) float
        Leading/trailing gaps take the first/last valid value (constant extension).
    chunk_rows : int, default 65536
        Rows processed at a time, to bound memory.

    Returns
    -------
    ndarray, (n, T)
        A new array, float32 for float32 input, else float64 (computed in that type); rows
        without gaps are unchanged.

    Raises
    ------
    ValueError
        For non-2-D input, infinite values, or rows that are all NaN (names how many):
        :func:`ltlib.gaps.fill_gaps` would leave those NaN.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"fill_series expects (n_series, n_years), got shape {X.shape}")
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64
    if X.size == 0:
        return X.astype(dtype)
    if np.isinf(X).any():
        raise ValueError(f"X has {int(np.isinf(X).any(1).sum())} rows with +/-inf values: only NaN gaps can be filled")
    all_nan = np.isnan(X).all(1)
    if all_nan.any():
        rows = np.flatnonzero(all_nan)
        raise ValueError(f"{rows.size} of {len(X)} rows are all NaN (e.g. rows {rows[:5].tolist()}): "
                         "nothing to interpolate; drop them (e.g. with a valid-pixel mask) first")
    return fill_gaps(X, dtype=dtype, chunk=chunk_rows)[0]


def with_synthetic(X, y, n_per_class: int, *, seed: int = 0, gap_fraction: float = 0.05, **generate_kw):
    """Training series ``X`` (n, T), labels ``y`` (n,) plus ``n_per_class`` generated series per class.

    The generated series have Landsat-like noise, spikes and ``gap_fraction`` gaps filled by
    :func:`fill_series`, so a model also sees abrupt losses and noisy stable series (rare in
    the seed's set). Returns ``(X (n + 6 * n_per_class, T) float32, y int64)``, seed rows first.
    """
    X = np.asarray(X, np.float32)
    y = np.asarray(y, np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be (n, T) with one label per row, got X {X.shape} and y {y.shape}")
    if n_per_class <= 0:
        return X, y
    Xg, yg = generate(n_per_class, n_years=X.shape[1], seed=seed, gap_fraction=gap_fraction, **generate_kw)
    return np.concatenate([X, fill_series(Xg).astype(np.float32)]), np.concatenate([y, yg])

"""Compiled (numba) core of LandTrendr: per-pixel segmentation, fit-to-vertex, change map.

Written from the algorithm descriptions of Kennedy, Yang and Cohen 2010 (RSE 114:2897),
Kennedy et al. 2018 (LT-GEE, Remote Sensing 10:691) and the MIT-licensed IDL LandTrendr
shipped with the seed workflow (tbcd_v2.pro, fit_trajectory_v2.pro, vet_verts3.pro,
desawtooth.pro, anchored_regression.pro, calc_fitting_stats3.pro, angle_diff.pro,
ftv_v1.pro). The Earth Engine rule for ``preventOneYearRecovery`` (absent from the IDL)
follows the MIT-licensed LT-rs port by J. N. Hearns (github.com/nthh/LT-rust, src/lib.rs):
a vertex that ends a one-year recovery out of a disturbance peak is dropped before fitting.

Stages per pixel (in the orientation where disturbance is an increase):

1. drop missing years; fewer than ``min_observations_needed`` -> no fit (flat at the mean);
2. despike (desawtooth) while the worst spike's proportion exceeds ``spike_threshold``;
3. candidate vertices by recursive splitting at the largest residual of the segment with
   the largest mean squared error, up to ``max_segments + 1 + vertex_count_overshoot``;
4. cull to ``max_segments + 1`` by the IDL ``angle_diff`` importance (steeper adjoining
   segment angle, disturbance-weighted, on a square-aspect scale);
5. for every model of a ladder from all vertices down to one segment: fit the path through
   the vertices (point-to-point or anchored regression, whichever has the lower SSE), its
   F statistic and p-value against a flat line; the next model drops a vertex that ends an
   over-fast recovery (``recovery_threshold``) or else the weakest vertex;
6. pick the most complex model whose p-value is within ``(2 - best_model_proportion)`` of
   the best one and whose recoveries are not too fast; if its p-value exceeds
   ``pval_threshold`` refit the original vertices by least squares (the IDL uses
   Levenberg-Marquardt; for a linear spline the least-squares solution is the same) and
   pick again; if still above, the pixel gets a flat line at its mean (no change).

Missing years inside the record are filled on the fitted line; missing leading or trailing
years extend the first/last fitted value flat (no vertex is added there).

Entry points (all over pixels in parallel): ``_segment_all`` (used by
:func:`ltlib.landtrendr.segment`), ``_ftv_all`` (:func:`ltlib.landtrendr.fit_to_vertices`)
and ``_change_all`` (:func:`ltlib.landtrendr.change_map`). Everything here is private:
the arrays are (n_pixels, n_years), contiguous, float64 unless noted.
"""
from __future__ import annotations

import math

import numba as nb
import numpy as np

from ..jit import njit  # numba.njit(cache=True) that survives unwritable or corrupt caches

_DWF = 2.0  # IDL distweightfactor
_CHUNK = 256  # pixels per parallel task of _segment_all (one work space each)


# ----------------------------------------------------------------------------- numerics
@njit()
def _f_pvalue(f, df1, df2):
    """1 - F_cdf(f; df1, df2) for an even ``df1`` (LandTrendr's models have two per segment).

    With a = df1 / 2 an integer the survival function has a closed form (the incomplete beta
    I_w(b, a) of integer a as a finite sum; Abramowitz and Stegun 26.5.6 and 26.6.4):

        P(F > f) = w^b * sum_{k < a} (b)_k / k! * z^k,  z = df1 f / (df1 f + df2), w = 1 - z, b = df2 / 2

    a terms and one power, instead of a continued fraction and three logarithms (the p-value
    was 9% of the run time). The result is then taken as IDL/GEE do, one minus the CDF in
    double precision, so very strong models all get p = 0 and ties go to the most complex.
    """
    if f <= 0.0:
        return 1.0
    den = df1 * f + df2
    z = df1 * f / den
    w = df2 / den  # 1 - z without the cancellation
    b = df2 / 2.0
    term = 1.0
    q = 1.0
    for k in range(1, int(df1) // 2):
        term *= (b + k - 1.0) / k * z
        q += term
    q *= math.pow(w, b)
    return 1.0 - (1.0 - q)


# ----------------------------------------------------------------------------- stages
@njit()
def _despike(y, stopat, idl):
    """desawtooth: dampen the spikiest point towards its neighbours' mean, repeatedly."""
    n = y.shape[0]
    if stopat >= 1.0 or n < 3:
        return
    for _ in range(4 * n + 10):
        # endpoints take part with proportion 0 and no correction, as in the IDL
        best = 0.0
        bi = 0
        corr = 0.0
        for i in range(1, n - 1):
            d2 = abs(y[i - 1] - y[i + 1])
            md = max(abs(y[i] - y[i - 1]), abs(y[i] - y[i + 1]))
            if md == 0.0:
                md = d2
            if md == 0.0:
                continue
            p = 1.0 - d2 / md
            if p > best:
                best = p
                bi = i
                corr = p * ((y[i - 1] + y[i + 1]) / 2.0 - y[i])
        if best <= stopat and not idl:
            return  # GEE: stop at the threshold
        y[bi] += corr
        if best <= stopat:
            return  # IDL: its loop test sees this (already applied) proportion


@njit()
def _ols(x, y, a, b):
    """OLS over indices a..b inclusive: (slope, intercept, min(y), max(y)); the slope is 0 when
    all x are equal, and the range is taken in the pass that sums (:func:`_segment_fit` needs it)."""
    n = b - a + 1
    sx = 0.0
    sy = 0.0
    lo = y[a]
    hi = y[a]
    for i in range(a, b + 1):
        lo = min(lo, y[i])
        hi = max(hi, y[i])
        sx += x[i]
        sy += y[i]
    mx = sx / n
    my = sy / n
    sxx = 0.0
    sxy = 0.0
    for i in range(a, b + 1):
        sxx += (x[i] - mx) * (x[i] - mx)
        sxy += (x[i] - mx) * (y[i] - my)
    if sxx == 0.0:
        return 0.0, my, lo, hi
    s = sxy / sxx
    return s, my - s * mx, lo, hi


@njit()
def _segment_fit(x, y, a, b):
    """score_segments for one segment a..b: (MSE of its OLS fit, slope, intercept); the MSE is 0
    for <= 2 points or a flat or straight segment. The split reuses the slope and intercept.
    (OLS from running sums would be O(1) but rounds differently from the IDL's centred sums,
    which changes the chosen vertices of a few pixels.)"""
    span = b - a + 1
    if span <= 2:
        return 0.0, 0.0, 0.0
    sl, ic, lo, hi = _ols(x, y, a, b)
    if hi <= lo:
        return 0.0, 0.0, 0.0
    sse = 0.0
    for i in range(a, b + 1):
        r = y[i] - (ic + sl * x[i])
        sse += r * r
    # a segment that is a straight line in exact arithmetic has no error to split
    # (rounding leaves ~1e-28 relative residuals)
    if sse > 1e-18 * (hi - lo) * (hi - lo) * span:
        return sse / span, sl, ic
    return 0.0, sl, ic


@njit()
def _find_vertices(x, y, target, nxt, mse, sls, ics, verts):
    """Candidate vertices (indices into the valid observations), IDL find_vertices.

    The IDL rescores every segment after each split; a segment's score depends only on its
    two ends, so only the two halves of the split segment are scored here (same vertices,
    O(n) instead of O(n x splits)). Segments are a linked list: ``nxt[a]`` is the end of the
    segment starting at observation ``a``; ``mse``, ``sls``, ``ics`` hold its score, slope
    and intercept. ``nxt``, ``mse``, ``sls``, ``ics`` and ``verts`` (>= n each) are work
    space; returns the vertices as a view of ``verts``.
    """
    n = y.shape[0]
    m = min(target, n - 2)
    nxt[0] = n - 1
    mse[0], sls[0], ics[0] = _segment_fit(x, y, 0, n - 1)
    nv = 2
    count = 0
    while nv < m and count <= 20:
        added = False
        while not added:
            # the worst segment, the first in time order on ties
            mx = -1.0
            a = 0
            p = 0
            while p != n - 1:
                if mse[p] > mx:
                    mx = mse[p]
                    a = p
                p = nxt[p]
            if mx <= 0.0:
                break
            b = nxt[a]
            # the segment's OLS line, as scored (a segment with mse > 0 was fitted)
            sl = sls[a]
            ic = ics[a]
            # split_series: largest absolute residual, never at the ends; on the last
            # segment the second-to-last point counts only if the series rises after it
            best = -1.0
            bi = 0
            ln = b - a + 1
            for j in range(ln):
                i = a + j
                d = abs(ic + sl * x[i] - y[i])
                if j == 0 or j == ln - 1:
                    d = 0.0
                if b == n - 1 and j == ln - 2 and not (y[b] > y[b - 1]):
                    d = 0.0
                if d > best:
                    best = d
                    bi = j
            if bi > 0:
                c = a + bi
                nxt[c] = b
                nxt[a] = c
                mse[a], sls[a], ics[a] = _segment_fit(x, y, a, c)
                mse[c], sls[c], ics[c] = _segment_fit(x, y, c, b)
                nv += 1
                added = True
            else:
                mse[a] = 0.0  # cannot be split: it would fail again in every later round
        if not added:
            break
        count += 1
    verts = verts[:nv]
    p = 0
    for k in range(nv - 1):
        verts[k] = p
        p = nxt[p]
    verts[nv - 1] = n - 1
    return verts


@njit()
def _angle_diff(x0, x1, x2, y0, y1, y2, yrange, dwf):
    ydiff2 = y2 - y1
    ydiff1 = y1 - y0
    s1 = abs(ydiff1 / (x1 - x0)) if x1 != x0 else 0.0
    s2 = abs(ydiff2 / (x2 - x1)) if x2 != x1 else 0.0
    scaler = max(0.0, ydiff2 * dwf / yrange) + 1.0 if yrange != 0.0 else 1.0
    # max(|atan s1|, |atan s2|) = atan(max(|s1|, |s2|)): atan is odd and increasing (one call)
    return math.atan(max(s1, s2)) * scaler


@njit()
def _vet_verts(x, y, v, desired, ys, sr, usable, out):
    """Cull candidate vertices to ``desired`` by angle importance (IDL vet_verts3).

    ``ys``, ``sr`` (float) and ``usable``, ``out`` (int), >= len(v) each, are work space;
    returns ``v`` itself or the kept vertices as a view of ``out``."""
    nverts = v.shape[0]
    ntr = nverts - desired
    if ntr <= 0 or nverts <= 3:
        return v
    ymin = y.min()
    yr = y.max() - ymin
    xr = x[x.shape[0] - 1] - x[0]  # x.max() - x.min(): the years are increasing
    if yr == 0.0:
        return v
    # the series on a square-aspect scale, needed at the vertices only
    for k in range(nverts):
        ys[k] = (y[v[k]] - ymin) / yr * xr
    scyr = xr
    nt = nverts - 2
    for i in range(1, nverts - 1):
        sr[i - 1] = _angle_diff(x[v[i - 1]], x[v[i]], x[v[i + 1]], ys[i - 1], ys[i], ys[i + 1], scyr, _DWF)
    for k in range(nverts):
        usable[k] = k
    count = nverts
    for _ in range(ntr):
        w = 0
        mn = sr[0]
        for k in range(count - 2):
            if sr[k] < mn:
                mn = sr[k]
                w = k
        w += 1
        for k in range(w, nverts - 1):
            usable[k] = usable[k + 1]
        if w != nt:
            for k in range(w - 1, nt - 1):
                sr[k] = sr[k + 1]
        if w != 1:
            a, b, c = usable[w - 2], usable[w - 1], usable[w]
            sr[w - 2] = _angle_diff(x[v[a]], x[v[b]], x[v[c]], ys[a], ys[b], ys[c], scyr, _DWF)
        if w != nt and w + 1 < nverts:
            a, b, c = usable[w - 1], usable[w], usable[w + 1]
            sr[w - 1] = _angle_diff(x[v[a]], x[v[b]], x[v[c]], ys[a], ys[b], ys[c], scyr, _DWF)
        count -= 1
    out = out[:count]
    for k in range(count):
        out[k] = v[usable[k]]
    return out


@njit()
def _best_trace(x, y, v, yfit, slopes, vv, s0, pre):
    """find_best_trace: segment by segment, point-to-point or (anchored) regression.

    Returns the residual sum of squares of ``yfit``, summed in time order as it is written
    (a segment's end point is the next one's start, written with the same value).

    A segment depends only on its vertices and on where the one before it ended, so a model
    of the ladder that shares its first ``s0`` segments with the model before it starts at
    segment ``s0``: ``yfit[:v[s0]]``, ``slopes[:s0]``, ``vv[:s0 + 1]`` and ``pre[:s0 + 1]``
    (the residual sum before each segment) must then hold that model's values. The result is
    the same, bit for bit, as tracing from segment 0."""
    nv = v.shape[0]
    ssr = pre[s0] if s0 > 0 else 0.0
    for k in range(s0 + 1 if s0 > 0 else 0, nv):
        vv[k] = y[v[k]]
    for s in range(s0, nv - 1):
        pre[s] = ssr
        a = v[s]
        b = v[s + 1]
        x0 = x[a]
        span = x[b] - x0
        dslope = (vv[s + 1] - vv[s]) / span
        if s == 0:
            sl, ic, _, _ = _ols(x, y, a, b)
            alt0 = ic + sl * x0
            aslope = sl
        else:
            xx = 0.0
            xy = 0.0
            for i in range(a, b + 1):
                xx += (x[i] - x0) ** 2
                xy += (x[i] - x0) * (y[i] - vv[s])
            aslope = xy / xx
            alt0 = vv[s]
        # both fits' squared residuals, summed per segment (to choose) and onto the running
        # residual sum in time order (what writing the chosen fit would add, term for term)
        sse_d = 0.0
        sse_a = 0.0
        ssr_d = ssr
        ssr_a = ssr
        for i in range(a, b):
            rd = y[i] - (vv[s] + (x[i] - x0) * dslope)
            ra = y[i] - (alt0 + (x[i] - x0) * aslope)
            sse_d += rd * rd
            sse_a += ra * ra
            ssr_d += rd * rd
            ssr_a += ra * ra
        rd = y[b] - (vv[s] + (x[b] - x0) * dslope)
        ra = y[b] - (alt0 + (x[b] - x0) * aslope)
        sse_d += rd * rd
        sse_a += ra * ra
        if sse_d > sse_a:  # pick_better_fit: the alternative only when strictly better
            y0 = alt0
            slopes[s] = aslope
            ssr = ssr_a
        else:
            y0 = vv[s]
            slopes[s] = dslope
            ssr = ssr_d
        for i in range(a, b + 1):
            yfit[i] = y0 + (x[i] - x0) * slopes[s]
        vv[s] = yfit[a]
        vv[s + 1] = yfit[b]
    last = v[nv - 1]
    return ssr + (y[last] - yfit[last]) ** 2


@njit()
def _spline_from_vertex_values(x, y, v, vv, yfit, slopes):
    """The linear spline through the vertex values ``vv`` at ``x[v]``: fills ``slopes`` and
    ``yfit``; returns the residual sum of squares, summed in time order as it is written."""
    nv = v.shape[0]
    ssr = 0.0
    for s in range(nv - 1):
        a = v[s]
        b = v[s + 1]
        span = x[b] - x[a]
        slopes[s] = (vv[s + 1] - vv[s]) / span
        for i in range(a, b):
            yfit[i] = vv[s] + (x[i] - x[a]) * slopes[s]
            ssr += (y[i] - yfit[i]) ** 2
        yfit[b] = vv[s] + (x[b] - x[a]) * slopes[s]
    last = v[nv - 1]
    return ssr + (y[last] - yfit[last]) ** 2


@njit()
def _lsq_trace(x, y, v, yfit, slopes, vv, trid):
    """find_best_trace3: vertex values by least squares of the linear spline (tent basis).

    Every observation has weight on at most two neighbouring vertices (1 - t on the segment's
    start, t on its end), so the normal equations are tridiagonal and symmetric positive
    definite (each vertex is an observation with weight 1 on it): solved in O(n) by the Thomas
    algorithm instead of a dense SVD least-squares per model (half the run time before).
    Returns the residual sum of squares, as :func:`_best_trace`. ``trid`` (3, >= nv) is
    work space for the three diagonals.
    """
    nv = v.shape[0]
    n = y.shape[0]
    d = trid[0, :nv]  # diagonal of A'A
    e = trid[1, :nv]  # e[k] = (A'A)[k, k + 1]
    r = trid[2, :nv]  # A'y
    d[:] = 0.0
    e[:] = 0.0
    r[:] = 0.0
    for s in range(nv - 1):
        a = v[s]
        b = v[s + 1]
        span = x[b] - x[a]
        for i in range(a, b):  # the end point b belongs to the next segment (or the last row)
            t = (x[i] - x[a]) / span
            w0 = 1.0 - t
            d[s] += w0 * w0
            d[s + 1] += t * t
            e[s] += w0 * t
            r[s] += w0 * y[i]
            r[s + 1] += t * y[i]
    d[nv - 1] += 1.0
    r[nv - 1] += y[n - 1]
    # Thomas algorithm (no pivoting needed: symmetric positive definite)
    for k in range(1, nv):
        m = e[k - 1] / d[k - 1]
        d[k] -= m * e[k - 1]
        r[k] -= m * r[k - 1]
    vv[nv - 1] = r[nv - 1] / d[nv - 1]
    for k in range(nv - 2, -1, -1):
        vv[k] = (r[k] - e[k] * vv[k + 1]) / d[k]
    return _spline_from_vertex_values(x, y, v, vv, yfit, slopes)


@njit()
def _lsq_trace_dense(x, y, v, yfit, slopes, vv):
    """:func:`_lsq_trace` by a dense SVD least squares, as before: kept for the IDL preset,
    whose integer truncation of the fit turns last-bit differences of the solve into
    different models (about 0.25% of the sample's pixels). Returns the residual sum of squares."""
    nv = v.shape[0]
    n = y.shape[0]
    A = np.zeros((n, nv))
    for s in range(nv - 1):
        a = v[s]
        b = v[s + 1]
        span = x[b] - x[a]
        for i in range(a, b + 1):
            t = (x[i] - x[a]) / span
            A[i, s] = 1.0 - t if i < b else 0.0
            A[i, s + 1] = t
    A[n - 1, nv - 1] = 1.0
    coef = np.linalg.lstsq(A, y)[0]
    for k in range(nv):
        vv[k] = coef[k]
    return _spline_from_vertex_values(x, y, v, vv, yfit, slopes)


@njit()
def _total_ss(y):
    """Sum of squares of ``y`` about its mean (the flat model's residual sum of squares)."""
    n = y.shape[0]
    my = 0.0
    for i in range(n):
        my += y[i]
    my /= n
    ss = 0.0
    for i in range(n):
        ss += (y[i] - my) ** 2
    return ss


@njit()
def _stats(ssr, ss, n, npred):
    """calc_fitting_stats3: (f_stat, p_of_f) of a model with residual sum of squares ``ssr``
    against a flat line; ``ss`` is :func:`_total_ss` of the ``n`` observations (the same for
    every model of a ladder, so computed once); ``npred`` is even (2 per segment)."""
    if ssr > ss:
        ssr = ss
    dfr = npred
    dfe = n - npred - 1
    if dfe <= 0:
        return 0.0, 1.0
    msr = (ss - ssr) / dfr
    mse = ssr / dfe
    if msr < 1e-5:
        f = 1e-5
    elif mse == 0.0:
        f = 1e30
    else:
        f = msr / mse
    return f, _f_pvalue(f, float(dfr), float(dfe))


@njit()
def _trunc(a):
    # IDL stores these in integer arrays: truncation toward zero
    for i in range(a.shape[0]):
        a[i] = float(int(a[i]))


@njit()
def _weakest(x, y, v, vv, nv, cache):
    """Index (1..nv-2) of the vertex whose removal costs least (local MSE of the bridge).

    A bridge's MSE depends only on its two end vertices and their values, and most bridges
    of a ladder's next model are the same, so each is kept in ``cache`` (4, >= n) under its
    first vertex with its end and both values as the key (rows: end, first value, end value,
    MSE); a bridge is recomputed only when its key differs (same result, bit for bit). Row 0
    must be cleared (-1, no bridge) for a new ladder."""
    best = np.inf
    w = 1
    for i in range(1, nv - 1):
        a = v[i - 1]
        c = v[i + 1]
        ya = vv[i - 1]
        yc = vv[i + 1]
        if cache[0, a] == c and cache[1, a] == ya and cache[2, a] == yc:
            m = cache[3, a]
        else:
            span = x[c] - x[a]
            sl = (yc - ya) / span
            sse = 0.0
            for j in range(a, c + 1):
                d = ya + (x[j] - x[a]) * sl - y[j]
                sse += d * d
            m = sse / span
            cache[0, a] = c
            cache[1, a] = ya
            cache[2, a] = yc
            cache[3, a] = m
        if m < best:
            best = m
            w = i
    return w


@njit()
def _range(a):
    """max(a) - min(a) in one pass (``a`` has no NaN)."""
    lo = a[0]
    hi = a[0]
    for i in range(1, a.shape[0]):
        lo = min(lo, a[i])
        hi = max(hi, a[i])
    return hi - lo


@njit()
def _slopes_ok(slopes, nseg, rng, thr):
    """check_slopes: no recovery (negative slope) faster than thr x range per year; ``rng`` is
    the fitted series' range."""
    for s in range(nseg):
        if slopes[s] < 0 and rng > 0 and abs(slopes[s]) / rng > thr:
            return False
    return True


@njit()
def _ladder(x, y, v0, thr, lsq, idl, mv, mvv, mslope, myfit, mp, mf, mnv, mrng, v, yw, vv, pre, trid, cache):
    """Fit the model ladder from all vertices down to one segment; fills the m* arrays
    (``mrng``: the range of each model's fit).

    ``v`` (int), ``yw``, ``vv``, ``pre`` (>= n each), ``trid`` (3, >= n) and ``cache`` (4, >= n; :func:`_weakest`) are work space."""
    n = y.shape[0]
    nvert = v0.shape[0]
    v = v[:nvert]
    v[:] = v0
    # A recovery that breaks recoveryThreshold is taken out by moving its vertex's value onto
    # its neighbours' line. The IDL does that in the caller's series (passed by reference), so
    # every later model is fitted and scored on the altered series; Earth Engine fits every
    # model on the despiked series (LT-GEE guide pixel: 642 in 2002, 622 with the IDL's way),
    # so outside the IDL preset the change is made in a working copy only.
    if idl:
        yw = y
    else:
        yw = yw[:n]
        yw[:] = y
    ss = _total_ss(y)
    s0 = 0
    cache[0, :n] = -1.0
    for i in range(nvert - 1):
        nv = nvert - i
        if i > 0:
            pv = mnv[i - 1]
            # take_out_weakest2 (ladder) or take_out_weakest (least-squares refit)
            remove = -1
            if not lsq:
                rng = mrng[i - 1]
                worst = thr
                viol = -1
                for s in range(pv - 1):
                    if mslope[i - 1, s] < 0 and rng > 0:
                        sc = abs(mslope[i - 1, s]) / rng
                        if sc > worst:
                            worst = sc
                            viol = s
                if viol >= 0:
                    k = v[viol + 1]
                    if viol + 1 == pv - 1:
                        # the last vertex: flatten its point onto the one before
                        yw[k] = yw[k - 1]
                        vv[pv - 1] = yw[k]
                    else:
                        remove = viol + 1
                        yw[k] = yw[k - 1] + (x[k] - x[k - 1]) * (yw[k + 1] - yw[k - 1]) / (x[k + 1] - x[k - 1])
            if remove < 0:
                if idl:
                    cache[0, :n] = -1.0  # the IDL's ladder alters y: no bridge carries over
                remove = _weakest(x, y, v[:pv], vv[:pv], pv, cache)
            for k in range(remove, pv - 1):
                v[k] = v[k + 1]
            # the segments before the removed vertex are the previous model's (not in the
            # IDL preset, whose ladder alters y itself)
            s0 = 0 if idl else remove - 1
        vcur = v[:nv]
        # the model's fit and slopes are written straight into its rows
        if lsq and idl:
            ssr = _lsq_trace_dense(x, y, vcur, myfit[i], mslope[i], vv)
        elif lsq:
            ssr = _lsq_trace(x, y, vcur, myfit[i], mslope[i], vv, trid)
        else:
            if s0 > 0:
                myfit[i, :v[s0]] = myfit[i - 1, :v[s0]]
                mslope[i, :s0] = mslope[i - 1, :s0]
            ssr = _best_trace(x, y, vcur, myfit[i], mslope[i], vv, s0, pre)
        if idl and i > 0:
            ss = _total_ss(y)  # the IDL's ladder alters y itself (yw is y)
        f, p = _stats(ssr, ss, n, 2 * (nv - 1))
        mnv[i] = nv
        for k in range(nv):
            mv[i, k] = vcur[k]
            mvv[i, k] = vv[k]
        if idl:
            _trunc(mvv[i, :nv])
            _trunc(myfit[i])
        mrng[i] = _range(myfit[i])
        mp[i] = p
        mf[i] = f


@njit()
def _one_year_recovery(x, v, vv, nv):
    """True when a one-year recovery takes back more than half of the disturbance just
    before it: the spike-like pattern preventOneYearRecovery is meant to exclude."""
    for s in range(1, nv - 1):
        dist = vv[s] - vv[s - 1]
        rec = vv[s] - vv[s + 1]
        if dist > 0 and rec > 0.5 * dist and x[v[s + 1]] - x[v[s]] == 1.0:
            return True
    return False


@njit()
def _pick(mp, mslope, mnv, mrng, nmod, bmp, thr, x, mv, mvv, prevent1, p):
    """pick_best_model6 with the recovery checks, as the IDL loop does (``p``: work space of
    >= nmod)."""
    p = p[:nmod]
    p[:] = mp[:nmod]
    for it in range(nmod + 2):
        mx = p.min()
        best = 0
        for i in range(nmod):
            if p[i] <= (2.0 - bmp) * mx:
                best = i
                break
        ok = _slopes_ok(mslope[best], mnv[best] - 1, mrng[best], thr)
        if ok and prevent1 and _one_year_recovery(x, mv[best], mvv[best], mnv[best]):
            ok = False
        if ok:
            return best, p[best]
        p[best] = 1.0
        if it + 1 > mnv[0]:
            return best, p[best]
    return best, p[best]


@njit()
def _segment_pixel(yall, xall, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                   fitted, isvert, wf, wi, goods, mv_, mvv_, msl_, myf_, mp_, mf_, mnv_):
    """One pixel (disturbance-positive orientation). Fills fitted/isvert; returns (rmse, p, f).

    ``wf`` (15, T) float64, ``wi`` (4, T) and ``goods`` (T,) int64 and the model arrays ``mv_``,
    ``mvv_``, ``msl_``, ``myf_`` (T, T) and ``mp_``, ``mf_``, ``mnv_`` (T,) are work space that
    :func:`_segment_all` reuses from pixel to pixel, so the stages allocate nothing. Rows 0-2
    of ``wf`` hold the pixel's years, values and source values, the other rows are the
    stages' scratch (each stage is done with its rows before the next one starts)."""
    T = yall.shape[0]
    n = 0
    for t in range(T):
        if not math.isnan(yall[t]):
            goods[n] = t
            n += 1
    for t in range(T):
        isvert[t] = False
    if n == 0:
        for t in range(T):
            fitted[t] = np.nan
        return np.nan, np.nan, np.nan
    x = wf[0, :n]
    y = wf[1, :n]
    src = wf[2, :n]
    for k in range(n):
        x[k] = xall[goods[k]]
        y[k] = yall[goods[k]]
        src[k] = y[k]
    p_out = 1.0
    f_out = 0.0
    flat = True
    if n >= min_obs and n >= 3:
        _despike(y, spike, idl)
        v = _find_vertices(x, y, max_seg + 1 + overshoot, wi[0], wf[3], wf[4], wf[5], wi[1])
        v = _vet_verts(x, y, v, max_seg + 1, wf[3], wf[4], wi[0], wi[2])
        nvert = v.shape[0]
        if nvert > 2:
            nm = nvert - 1
            # every model of the ladder writes its row before _pick reads it
            mv = mv_[:nm, :nvert]
            mvv = mvv_[:nm, :nvert]
            msl = msl_[:nm, :nvert]
            myf = myf_[:nm, :n]
            mp = mp_[:nm]
            mf = mf_[:nm]
            mnv = mnv_[:nm]
            mrng = wf[13, :nm]
            work = (wi[3], wf[3], wf[4], wf[5], wf[6:9], wf[9:13])
            _ladder(x, y, v, thr, False, idl, mv, mvv, msl, myf, mp, mf, mnv, mrng, *work)
            best, pb = _pick(mp, msl, mnv, mrng, nm, bmp, thr, x, mv, mvv, prevent1 and not idl, wf[14])
            if pb > pval:
                _ladder(x, y, v, thr, True, idl, mv, mvv, msl, myf, mp, mf, mnv, mrng, *work)
                best, pb = _pick(mp, msl, mnv, mrng, nm, bmp, thr, x, mv, mvv, prevent1 and not idl, wf[14])
            if pb <= pval:
                flat = False
                nvb = mnv[best]
                # fill from the vertex values over all years (missing years on the line)
                for s in range(nvb - 1):
                    ta = goods[mv[best, s]]
                    tb = goods[mv[best, s + 1]]
                    ya = mvv[best, s]
                    yb = mvv[best, s + 1]
                    for t in range(ta, tb + 1):
                        fitted[t] = ya + (yb - ya) * (xall[t] - xall[ta]) / (xall[tb] - xall[ta])
                for t in range(goods[0]):
                    fitted[t] = mvv[best, 0]
                for t in range(goods[n - 1] + 1, T):
                    fitted[t] = mvv[best, nvb - 1]
                for s in range(nvb):
                    isvert[goods[mv[best, s]]] = True
                p_out = pb
                f_out = mf[best]
    if flat:
        m = 0.0
        for k in range(n):
            m += y[k]
        m /= n
        for t in range(T):
            fitted[t] = m
        if n >= min_obs:
            isvert[goods[0]] = True
            isvert[goods[n - 1]] = True
    ss = 0.0
    for k in range(n):
        ss += (src[k] - fitted[goods[k]]) ** 2
    return math.sqrt(ss / n), p_out, f_out


@njit()
def _segment_chunk(c, Y, xall, distdir, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                   fitted, isvert, stats, ninf):
    """Pixels ``c * _CHUNK`` .. of ``Y`` (T, n) into ``fitted``, ``isvert``, ``stats``, with one
    work space for the chunk (allocation per pixel was ~10% of the run time).

    The chunk's values are copied into a pixel-major block, and its outputs written from one,
    each in the order of the array's memory: a pixel's years are otherwise ``n`` elements
    apart in ``fitted`` and ``isvert`` (and in ``Y`` for a (T, H, W) stack), a different page
    for every year. Infinite values are counted into ``ninf[c]`` (the caller raises) and
    fitted as missing, so the one pass over the values also checks them."""
    T, npx = Y.shape
    c0 = c * _CHUNK
    m = min(npx, c0 + _CHUNK) - c0
    yb = np.empty((m, T))
    fb = np.empty((m, T))
    vb = np.empty((m, T), np.bool_)
    wf = np.empty((15, T))
    wi = np.empty((4, T), np.int64)
    goods = np.empty(T, np.int64)
    mv = np.empty((T, T), np.int64)
    mvv = np.empty((T, T))
    msl = np.empty((T, T))
    myf = np.empty((T, T))
    mp = np.empty(T)
    mf = np.empty(T)
    mnv = np.empty(T, np.int64)
    if Y.strides[0] <= Y.strides[1]:  # years adjacent in memory (an (n, T) array transposed)
        for j in range(m):
            for t in range(T):
                yb[j, t] = Y[t, c0 + j] * distdir
    else:
        for t in range(T):
            for j in range(m):
                yb[j, t] = Y[t, c0 + j] * distdir
    bad = 0
    for j in range(m):
        for t in range(T):
            if math.isinf(yb[j, t]):
                yb[j, t] = np.nan
                bad += 1
    ninf[c] = bad
    for j in range(m):
        r, p, f = _segment_pixel(yb[j], xall, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                                 fb[j], vb[j], wf, wi, goods, mv, mvv, msl, myf, mp, mf, mnv)
        stats[c0 + j, 0] = r
        stats[c0 + j, 1] = p
        stats[c0 + j, 2] = f
    if fitted.strides[0] <= fitted.strides[1]:
        for j in range(m):
            for t in range(T):
                fitted[t, c0 + j] = fb[j, t] * distdir
                isvert[t, c0 + j] = vb[j, t]
    else:
        for t in range(T):
            for j in range(m):
                fitted[t, c0 + j] = fb[j, t] * distdir
                isvert[t, c0 + j] = vb[j, t]


@njit(parallel=True)
def _segment_all(Y, xall, distdir, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                 fitted, isvert, stats, ninf):
    """Every pixel of ``Y`` (T, n), any float type and strides (a (T, H, W) stack reshaped
    without a copy). Writes ``fitted`` (T, n) float32 in ``Y``'s orientation, ``isvert``
    (T, n) bool, ``stats`` (n, 3) = rmse, p, F and ``ninf`` (one per chunk of ``_CHUNK``
    pixels) = the number of infinite values; each chunk of pixels is worked on in float64
    buffers of its own, so no copy of the stack is made."""
    nchunks = (Y.shape[1] + _CHUNK - 1) // _CHUNK
    for c in nb.prange(nchunks):
        _segment_chunk(c, Y, xall, distdir, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                       fitted, isvert, stats, ninf)


@njit(nogil=True)
def _segment_all_serial(Y, xall, distdir, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                        fitted, isvert, stats, ninf):
    """:func:`_segment_all` on the calling thread, without the GIL: for dask's block tasks,
    whose threads already use every core (a parallel kernel in each would oversubscribe them,
    and numba's workqueue threading layer aborts on concurrent parallel launches)."""
    nchunks = (Y.shape[1] + _CHUNK - 1) // _CHUNK
    for c in range(nchunks):
        _segment_chunk(c, Y, xall, distdir, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                       fitted, isvert, stats, ninf)


# ----------------------------------------------------------------------------- FTV
@njit()
def _ftv_pixel(yall, xall, isv, fitted):
    T = yall.shape[0]
    goods = np.empty(T, np.int64)
    n = 0
    for t in range(T):
        if not math.isnan(yall[t]):
            goods[n] = t
            n += 1
    if n == 0:
        for t in range(T):
            fitted[t] = np.nan
        return
    x = np.empty(n)
    y = np.empty(n)
    for k in range(n):
        x[k] = xall[goods[k]]
        y[k] = yall[goods[k]]
    # map each vertex year to an observation of this index (IDL ftv_v1): the same year,
    # else the last earlier observation, else the first later one; duplicates collapse
    v = np.empty(T, np.int64)
    nv = 0
    for t in range(T):
        if not isv[t]:
            continue
        k = -1
        for j in range(n):
            if goods[j] == t:
                k = j
                break
        if k < 0:
            for j in range(n):
                if goods[j] < t:
                    k = j
            if k < 0:
                k = 0
            elif nv > 0 and k == v[nv - 1] and k != n - 1:
                for j in range(n):
                    if goods[j] > t:
                        k = j
                        break
        if nv == 0 or k > v[nv - 1]:
            v[nv] = k
            nv += 1
    if nv < 2:
        m = y.mean()
        for t in range(T):
            fitted[t] = m
        return
    vv = np.empty(nv)
    yfit = np.empty(n)
    slopes = np.empty(nv)
    _best_trace(x, y, v[:nv], yfit, slopes, vv, 0, np.empty(nv))
    for s in range(nv - 1):
        ta = goods[v[s]]
        tb = goods[v[s + 1]]
        for t in range(ta, tb + 1):
            fitted[t] = vv[s] + (vv[s + 1] - vv[s]) * (xall[t] - xall[ta]) / (xall[tb] - xall[ta])
    for t in range(goods[v[0]]):
        fitted[t] = vv[0]
    for t in range(goods[v[nv - 1]] + 1, T):
        fitted[t] = vv[nv - 1]


@njit()
def _ftv_one(i, Y, xall, isv, out):
    T = Y.shape[0]
    y = np.empty(T)
    v = np.empty(T, np.bool_)
    fit = np.empty(T)
    for t in range(T):
        y[t] = Y[t, i]
        v[t] = isv[t, i]
    _ftv_pixel(y, xall, v, fit)
    for t in range(T):
        out[t, i] = fit[t]


@njit(parallel=True)
def _ftv_all(Y, xall, isv, out):
    """FTV of every pixel of ``Y`` (T, n) on the vertices ``isv`` (T, n) into ``out`` (T, n)
    float32; per-pixel float64 buffers, no copy of the stack."""
    for i in nb.prange(Y.shape[1]):
        _ftv_one(i, Y, xall, isv, out)


@njit(nogil=True)
def _ftv_all_serial(Y, xall, isv, out):
    """:func:`_ftv_all` on the calling thread, without the GIL (dask block tasks)."""
    for i in range(Y.shape[1]):
        _ftv_one(i, Y, xall, isv, out)


# ----------------------------------------------------------------------------- change map
@njit()
def _change_pixel(i, fit, isv, years, rmse, sign, sort_code, y0, y1, mag_min, dur_max, preval_min,
                  mag_sign, dur_sign, preval_sign, dsnr_min, out):
    T = fit.shape[0]
    best_key = np.inf
    prev = -1
    for t in range(T):
        if not isv[t, i]:
            continue
        if prev >= 0:
            a = float(fit[prev, i])
            b = float(fit[t, i])
            d = (b - a) * sign  # > 0: the requested direction (loss or gain)
            if d > 0:
                mag = abs(b - a)
                dur = float(years[t] - years[prev])
                yod = years[prev] + 1.0
                dsnr = mag / rmse[i] if rmse[i] > 0 else np.nan
                ok = (yod >= y0 and yod <= y1 and mag_sign * mag > mag_sign * mag_min
                      and dur_sign * dur < dur_sign * dur_max and preval_sign * a > preval_sign * preval_min
                      and (dsnr_min == -np.inf or dsnr > dsnr_min))
                if ok:
                    if sort_code == 0:
                        key = -mag
                    elif sort_code == 1:
                        key = mag
                    elif sort_code == 2:
                        key = -yod
                    elif sort_code == 3:
                        key = yod
                    elif sort_code == 4:
                        key = dur
                    else:
                        key = -dur
                    if key < best_key:  # strict: the earliest segment wins ties
                        best_key = key
                        out[i, 0] = yod
                        out[i, 1] = mag
                        out[i, 2] = dur
                        out[i, 3] = a
                        out[i, 4] = mag / dur
                        out[i, 5] = dsnr
        prev = t


@njit(parallel=True)
def _change_all(fit, isv, years, rmse, sign, sort_code, y0, y1, mag_min, dur_max, preval_min,
                mag_sign=1.0, dur_sign=1.0, preval_sign=1.0, dsnr_min=-np.inf):
    # fit, isv: (T, n), as segment() returns them; sort_code indexes
    # ltlib.landtrendr.change.SORTS; out columns follow CHANGE_BANDS. The *_sign arguments
    # turn a filter around (LT-GEE's operators): mag_sign -1 keeps mag < mag_min, dur_sign
    # -1 keeps dur > dur_max, preval_sign -1 keeps preval < preval_min.
    npx = fit.shape[1]
    out = np.full((npx, 6), np.nan)
    for i in nb.prange(npx):
        _change_pixel(i, fit, isv, years, rmse, sign, sort_code, y0, y1, mag_min, dur_max, preval_min,
                      mag_sign, dur_sign, preval_sign, dsnr_min, out)
    return out


@njit(nogil=True)
def _change_all_serial(fit, isv, years, rmse, sign, sort_code, y0, y1, mag_min, dur_max, preval_min,
                       mag_sign=1.0, dur_sign=1.0, preval_sign=1.0, dsnr_min=-np.inf):
    """:func:`_change_all` on the calling thread, without the GIL (dask block tasks)."""
    npx = fit.shape[1]
    out = np.full((npx, 6), np.nan)
    for i in range(npx):
        _change_pixel(i, fit, isv, years, rmse, sign, sort_code, y0, y1, mag_min, dur_max, preval_min,
                      mag_sign, dur_sign, preval_sign, dsnr_min, out)
    return out

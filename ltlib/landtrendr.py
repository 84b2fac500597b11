"""LandTrendr temporal segmentation: a compiled (numba) port of the Earth Engine algorithm.

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

Presets
-------
``preset="gee"`` (Earth Engine) and ``preset="idl"`` (the original IDL) differ in:

- despiking: GEE stops as soon as the worst spike is at or below the threshold; the IDL
  loop tests the previous proportion, so it applies one more (sub-threshold) correction;
- precision: the IDL stores vertex values and the model's fitted values in integer arrays
  (truncation toward zero) when choosing among models and for the output; GEE keeps floats;
- ``prevent_one_year_recovery`` exists only in GEE; the IDL ignores it.

Missing years inside the record are filled on the fitted line; missing leading or trailing
years extend the first/last fitted value flat (no vertex is added there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

_DWF = 2.0  # IDL distweightfactor

# ----------------------------------------------------------------------------- numerics
@nb.njit(cache=True)
def _betacf(a, b, x):
    # Continued fraction of the incomplete beta (modified Lentz; Press et al., Numerical Recipes).
    fpmin = 1e-300
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < fpmin:
        d = fpmin
    d = 1.0 / d
    h = d
    for m in range(1, 301):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < fpmin:
            d = fpmin
        c = 1.0 + aa / c
        if abs(c) < fpmin:
            c = fpmin
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < fpmin:
            d = fpmin
        c = 1.0 + aa / c
        if abs(c) < fpmin:
            c = fpmin
        d = 1.0 / d
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return h


@nb.njit(cache=True)
def _betai(a, b, x):
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


@nb.njit(cache=True)
def _f_pvalue(f, df1, df2):
    """1 - F_cdf(f; df1, df2), computed as IDL/GEE do (one minus the CDF in double
    precision), so very strong models all get p = 0 and ties go to the most complex."""
    if f <= 0.0:
        return 1.0
    z = df1 * f / (df1 * f + df2)
    return 1.0 - _betai(df1 / 2.0, df2 / 2.0, z)


# ----------------------------------------------------------------------------- stages
@nb.njit(cache=True)
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


@nb.njit(cache=True)
def _ols(x, y, a, b):
    """OLS over indices a..b inclusive: (slope, intercept, ok)."""
    n = b - a + 1
    sx = 0.0
    sy = 0.0
    for i in range(a, b + 1):
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
        return 0.0, my, False
    s = sxy / sxx
    return s, my - s * mx, True


@nb.njit(cache=True)
def _find_vertices(x, y, target):
    """Candidate vertices (indices into the valid observations), IDL find_vertices."""
    n = y.shape[0]
    m = min(target, n - 2)
    flags = np.zeros(n, np.bool_)
    flags[0] = True
    flags[n - 1] = True
    verts = np.empty(n, np.int64)
    mses = np.empty(n, np.float64)
    count = 0
    while True:
        nv = 0
        for i in range(n):
            if flags[i]:
                verts[nv] = i
                nv += 1
        if nv >= m or count > 20:
            return verts[:nv].copy()
        # score_segments: MSE of an OLS fit per segment with more than 2 points
        for s in range(nv - 1):
            a = verts[s]
            b = verts[s + 1]
            mses[s] = 0.0
            span = b - a + 1
            if span > 2:
                lo = y[a]
                hi = y[a]
                for i in range(a, b + 1):
                    lo = min(lo, y[i])
                    hi = max(hi, y[i])
                if hi > lo:
                    sl, ic, ok = _ols(x, y, a, b)
                    sse = 0.0
                    for i in range(a, b + 1):
                        r = y[i] - (ic + sl * x[i])
                        sse += r * r
                    # a segment that is a straight line in exact arithmetic has no error
                    # to split (rounding leaves ~1e-28 relative residuals)
                    if sse > 1e-18 * (hi - lo) * (hi - lo) * span:
                        mses[s] = sse / span
        added = False
        while not added:
            mx = -1.0
            s = 0
            for k in range(nv - 1):
                if mses[k] > mx:
                    mx = mses[k]
                    s = k
            if mx <= 0.0:
                return verts[:nv].copy()
            a = verts[s]
            b = verts[s + 1]
            endseg = s == nv - 2
            sl, ic, ok = _ols(x, y, a, b)
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
                if endseg and j == ln - 2 and not (y[b] > y[b - 1]):
                    d = 0.0
                if d > best:
                    best = d
                    bi = j
            if bi > 0:
                flags[a + bi] = True
                added = True
            else:
                mses[s] = 0.0
        count += 1


@nb.njit(cache=True)
def _angle_diff(x0, x1, x2, y0, y1, y2, yrange, dwf):
    ydiff2 = y2 - y1
    ydiff1 = y1 - y0
    a1 = math.atan(ydiff1 / (x1 - x0)) if x1 != x0 else 0.0
    a2 = math.atan(ydiff2 / (x2 - x1)) if x2 != x1 else 0.0
    scaler = max(0.0, ydiff2 * dwf / yrange) + 1.0 if yrange != 0.0 else 1.0
    return max(abs(a1), abs(a2)) * scaler


@nb.njit(cache=True)
def _vet_verts(x, y, v, desired):
    """Cull candidate vertices to ``desired`` by angle importance (IDL vet_verts3)."""
    nverts = v.shape[0]
    ntr = nverts - desired
    if ntr <= 0 or nverts <= 3:
        return v
    ymin = y.min()
    yr = y.max() - ymin
    xr = x.max() - x.min()
    if yr == 0.0:
        return v
    ys = (y - ymin) / yr * xr
    scyr = xr
    nt = nverts - 2
    sr = np.empty(nt, np.float64)
    for i in range(1, nverts - 1):
        sr[i - 1] = _angle_diff(x[v[i - 1]], x[v[i]], x[v[i + 1]], ys[v[i - 1]], ys[v[i]], ys[v[i + 1]], scyr, _DWF)
    usable = np.arange(nverts)
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
            a, b, c = v[usable[w - 2]], v[usable[w - 1]], v[usable[w]]
            sr[w - 2] = _angle_diff(x[a], x[b], x[c], ys[a], ys[b], ys[c], scyr, _DWF)
        if w != nt and w + 1 < nverts:
            a, b, c = v[usable[w - 1]], v[usable[w]], v[usable[w + 1]]
            sr[w - 1] = _angle_diff(x[a], x[b], x[c], ys[a], ys[b], ys[c], scyr, _DWF)
        count -= 1
    out = np.empty(count, np.int64)
    for k in range(count):
        out[k] = v[usable[k]]
    return out


@nb.njit(cache=True)
def _best_trace(x, y, v, yfit, slopes, vv):
    """find_best_trace: segment by segment, point-to-point or (anchored) regression."""
    nv = v.shape[0]
    for k in range(nv):
        vv[k] = y[v[k]]
    for s in range(nv - 1):
        a = v[s]
        b = v[s + 1]
        x0 = x[a]
        span = x[b] - x0
        dslope = (vv[s + 1] - vv[s]) / span
        if s == 0:
            sl, ic, ok = _ols(x, y, a, b)
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
        sse_d = 0.0
        sse_a = 0.0
        for i in range(a, b + 1):
            rd = y[i] - (vv[s] + (x[i] - x0) * dslope)
            ra = y[i] - (alt0 + (x[i] - x0) * aslope)
            sse_d += rd * rd
            sse_a += ra * ra
        if sse_d > sse_a:  # pick_better_fit: the alternative only when strictly better
            for i in range(a, b + 1):
                yfit[i] = alt0 + (x[i] - x0) * aslope
            slopes[s] = aslope
        else:
            for i in range(a, b + 1):
                yfit[i] = vv[s] + (x[i] - x0) * dslope
            slopes[s] = dslope
        vv[s] = yfit[a]
        vv[s + 1] = yfit[b]


@nb.njit(cache=True)
def _lsq_trace(x, y, v, yfit, slopes, vv):
    """find_best_trace3: vertex values by least squares of the linear spline (tent basis)."""
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
    for s in range(nv - 1):
        a = v[s]
        b = v[s + 1]
        span = x[b] - x[a]
        slopes[s] = (vv[s + 1] - vv[s]) / span
        for i in range(a, b + 1):
            yfit[i] = vv[s] + (x[i] - x[a]) * slopes[s]


@nb.njit(cache=True)
def _stats(y, yfit, npred):
    """calc_fitting_stats3: (f_stat, p_of_f) of the model against a flat line."""
    n = y.shape[0]
    my = 0.0
    for i in range(n):
        my += y[i]
    my /= n
    ss = 0.0
    ssr = 0.0
    for i in range(n):
        ss += (y[i] - my) ** 2
        ssr += (y[i] - yfit[i]) ** 2
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


@nb.njit(cache=True)
def _trunc(a):
    # IDL stores these in integer arrays: truncation toward zero
    for i in range(a.shape[0]):
        a[i] = float(int(a[i]))


@nb.njit(cache=True)
def _weakest(x, y, v, vv, nv):
    """Index (1..nv-2) of the vertex whose removal costs least (local MSE of the bridge)."""
    best = np.inf
    w = 1
    for i in range(1, nv - 1):
        a = v[i - 1]
        c = v[i + 1]
        span = x[c] - x[a]
        sl = (vv[i + 1] - vv[i - 1]) / span
        sse = 0.0
        for j in range(a, c + 1):
            d = vv[i - 1] + (x[j] - x[a]) * sl - y[j]
            sse += d * d
        m = sse / span
        if m < best:
            best = m
            w = i
    return w


@nb.njit(cache=True)
def _slopes_ok(slopes, nseg, yfit, thr):
    """check_slopes: no recovery (negative slope) faster than thr x range per year."""
    lo = yfit.min()
    rng = yfit.max() - lo
    for s in range(nseg):
        if slopes[s] < 0 and rng > 0 and abs(slopes[s]) / rng > thr:
            return False
    return True


@nb.njit(cache=True)
def _ladder(x, y, v0, thr, lsq, idl, mv, mvv, mslope, myfit, mp, mf, mnv):
    """Fit the model ladder from all vertices down to one segment; fills the m* arrays."""
    n = y.shape[0]
    nvert = v0.shape[0]
    v = v0.copy()
    vv = np.empty(nvert)
    yfit = np.empty(n)
    slopes = np.empty(nvert)
    for i in range(nvert - 1):
        nv = nvert - i
        if i > 0:
            pv = mnv[i - 1]
            # take_out_weakest2 (ladder) or take_out_weakest (least-squares refit)
            remove = -1
            if not lsq:
                lo = myfit[i - 1].min()
                rng = myfit[i - 1].max() - lo
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
                        # the last vertex: flatten its point onto the one before (in place)
                        y[k] = y[k - 1]
                        vv[pv - 1] = y[k]
                    else:
                        remove = viol + 1
                        y[k] = y[k - 1] + (x[k] - x[k - 1]) * (y[k + 1] - y[k - 1]) / (x[k + 1] - x[k - 1])
            if remove < 0:
                remove = _weakest(x, y, v[:pv], vv[:pv], pv)
            for k in range(remove, pv - 1):
                v[k] = v[k + 1]
        vcur = v[:nv]
        if lsq:
            _lsq_trace(x, y, vcur, yfit, slopes, vv)
        else:
            _best_trace(x, y, vcur, yfit, slopes, vv)
        f, p = _stats(y, yfit, 2 * (nv - 1))
        mnv[i] = nv
        for k in range(nv):
            mv[i, k] = vcur[k]
            mvv[i, k] = vv[k]
        for k in range(nv - 1):
            mslope[i, k] = slopes[k]
        for k in range(n):
            myfit[i, k] = yfit[k]
        if idl:
            _trunc(mvv[i, :nv])
            _trunc(myfit[i])
        mp[i] = p
        mf[i] = f


@nb.njit(cache=True)
def _one_year_recovery(x, v, vv, nv):
    """True when a one-year recovery takes back more than half of the disturbance just
    before it: the spike-like pattern preventOneYearRecovery is meant to exclude."""
    for s in range(1, nv - 1):
        dist = vv[s] - vv[s - 1]
        rec = vv[s] - vv[s + 1]
        if dist > 0 and rec > 0.5 * dist and x[v[s + 1]] - x[v[s]] == 1.0:
            return True
    return False


@nb.njit(cache=True)
def _pick(mp, mslope, mnv, myfit, nmod, bmp, thr, x, mv, mvv, prevent1):
    """pick_best_model6 with the recovery checks, as the IDL loop does."""
    p = mp[:nmod].copy()
    for it in range(nmod + 2):
        mx = p.min()
        best = 0
        for i in range(nmod):
            if p[i] <= (2.0 - bmp) * mx:
                best = i
                break
        ok = _slopes_ok(mslope[best], mnv[best] - 1, myfit[best], thr)
        if ok and prevent1 and _one_year_recovery(x, mv[best], mvv[best], mnv[best]):
            ok = False
        if ok:
            return best, p[best]
        p[best] = 1.0
        if it + 1 > mnv[0]:
            return best, p[best]
    return best, p[best]


@nb.njit(cache=True)
def _segment_pixel(yall, xall, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                   fitted, isvert):
    """One pixel (disturbance-positive orientation). Fills fitted/isvert; returns (rmse, p, f)."""
    T = yall.shape[0]
    goods = np.empty(T, np.int64)
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
    x = np.empty(n)
    y = np.empty(n)
    for k in range(n):
        x[k] = xall[goods[k]]
        y[k] = yall[goods[k]]
    src = y.copy()
    p_out = 1.0
    f_out = 0.0
    flat = True
    if n >= min_obs and n >= 3:
        _despike(y, spike, idl)
        v = _find_vertices(x, y, max_seg + 1 + overshoot)
        v = _vet_verts(x, y, v, max_seg + 1)
        nvert = v.shape[0]
        if nvert > 2:
            nm = nvert - 1
            mv = np.zeros((nm, nvert), np.int64)
            mvv = np.zeros((nm, nvert))
            msl = np.zeros((nm, nvert))
            myf = np.zeros((nm, n))
            mp = np.ones(nm)
            mf = np.zeros(nm)
            mnv = np.zeros(nm, np.int64)
            _ladder(x, y, v, thr, False, idl, mv, mvv, msl, myf, mp, mf, mnv)
            best, pb = _pick(mp, msl, mnv, myf, nm, bmp, thr, x, mv, mvv, prevent1 and not idl)
            if pb > pval:
                _ladder(x, y, v, thr, True, idl, mv, mvv, msl, myf, mp, mf, mnv)
                best, pb = _pick(mp, msl, mnv, myf, nm, bmp, thr, x, mv, mvv, prevent1 and not idl)
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


@nb.njit(parallel=True, cache=True)
def _segment_all(Y, xall, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl):
    npx, T = Y.shape
    fitted = np.empty((npx, T))
    isvert = np.zeros((npx, T), np.bool_)
    stats = np.empty((npx, 3))
    for i in nb.prange(npx):
        r, p, f = _segment_pixel(Y[i], xall, max_seg, spike, overshoot, prevent1, thr, pval, bmp, min_obs, idl,
                                 fitted[i], isvert[i])
        stats[i, 0] = r
        stats[i, 1] = p
        stats[i, 2] = f
    return fitted, isvert, stats


# ----------------------------------------------------------------------------- API
PRESETS = ("gee", "idl")


@dataclass
class LandTrendrResult:
    """Output of :func:`segment`; arrays in the original orientation and units.

    ``fitted`` (n, T) float64, ``is_vertex`` (n, T) bool, ``rmse``/``p_value``/``f_stat``
    (n,); for a (T, H, W) input the same arrays are image-shaped: (T, H, W) and (H, W).
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


def _as_series(values, years):
    values = np.asarray(values, dtype=np.float64)
    years = np.asarray(years)
    if years.ndim != 1:
        raise ValueError(f"years must be 1-D, got shape {years.shape}")
    if not np.issubdtype(years.dtype, np.integer):
        if not np.all(np.isfinite(years)) or np.any(years != np.round(years)):
            raise ValueError("years must be integers")
        years = years.astype(int)
    if np.any(np.diff(years) <= 0):
        raise ValueError(f"years must be strictly increasing, got {years.tolist()}")
    T = years.shape[0]
    if values.ndim == 3:
        if values.shape[0] != T:
            raise ValueError(f"a (T, H, W) stack needs T = len(years) = {T}, got shape {values.shape}")
        image_shape = values.shape[1:]
        series = values.reshape(T, -1).T
    elif values.ndim == 2:
        if values.shape[1] != T:
            raise ValueError(f"values must be (n_pixels, {T}) for {T} years, got shape {values.shape}")
        image_shape = None
        series = values
    elif values.ndim == 1:
        if values.shape[0] != T:
            raise ValueError(f"a single series needs {T} values, got {values.shape[0]}")
        image_shape = None
        series = values[None]
    else:
        raise ValueError(f"values must be (n, T) or (T, H, W), got shape {values.shape}")
    if np.isinf(series).any():
        raise ValueError("values contain infinities; use NaN for missing years")
    return np.ascontiguousarray(series), years, image_shape


def segment(values, years, *, max_segments=6, spike_threshold=0.9, vertex_count_overshoot=3,
            prevent_one_year_recovery=False, recovery_threshold=0.25, pval_threshold=0.1,
            best_model_proportion=0.75, min_observations_needed=6, distdir=-1, preset="gee") -> LandTrendrResult:
    """Run LandTrendr on every pixel.

    Parameters
    ----------
    values : float (n_pixels, n_years) or (n_years, H, W); NaN = no observation. Any units
        (the sample stores index x 1000, as LT-GEE does).
    years : int (n_years,), strictly increasing.
    distdir : -1 when the index drops on disturbance (NDVI, NBR, TCG, TCW), 1 when it rises
        (TCB); the series is multiplied by ``distdir`` for segmentation (LT-GEE) and the
        outputs are flipped back.
    preset : "gee" (Earth Engine) or "idl" (the original IDL; see the module docstring).
    The other keywords are LT-GEE's runParams with its defaults.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, got {preset!r}")
    if distdir not in (-1, 1):
        raise ValueError(f"distdir must be -1 or 1, got {distdir!r}")
    if int(max_segments) < 1:
        raise ValueError(f"max_segments must be >= 1, got {max_segments}")
    if not 0 < best_model_proportion <= 1:
        raise ValueError(f"best_model_proportion must be in (0, 1], got {best_model_proportion}")
    series, years, image_shape = _as_series(values, years)
    xall = (years - years[0]).astype(np.float64)
    fitted, isvert, stats = _segment_all(
        series * distdir, xall, int(max_segments), float(spike_threshold), int(vertex_count_overshoot),
        bool(prevent_one_year_recovery), float(recovery_threshold), float(pval_threshold),
        float(best_model_proportion), int(min_observations_needed), preset == "idl")
    fitted *= distdir
    rmse, p, f = stats[:, 0], stats[:, 1], stats[:, 2]
    if image_shape is not None:
        T = len(years)
        fitted = fitted.T.reshape((T,) + image_shape)
        isvert = isvert.T.reshape((T,) + image_shape)
        rmse, p, f = (a.reshape(image_shape) for a in (rmse, p, f))
        source = series.T.reshape((T,) + image_shape)
    else:
        source = series
    return LandTrendrResult(fitted, isvert, rmse, p, f, years, source, image_shape, distdir)


# ----------------------------------------------------------------------------- FTV
@nb.njit(cache=True)
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
    _best_trace(x, y, v[:nv], yfit, slopes, vv)
    for s in range(nv - 1):
        ta = goods[v[s]]
        tb = goods[v[s + 1]]
        for t in range(ta, tb + 1):
            fitted[t] = vv[s] + (vv[s + 1] - vv[s]) * (xall[t] - xall[ta]) / (xall[tb] - xall[ta])
    for t in range(goods[v[0]]):
        fitted[t] = vv[0]
    for t in range(goods[v[nv - 1]] + 1, T):
        fitted[t] = vv[nv - 1]


@nb.njit(parallel=True, cache=True)
def _ftv_all(Y, xall, isv):
    npx, T = Y.shape
    out = np.empty((npx, T))
    for i in nb.prange(npx):
        _ftv_pixel(Y[i], xall, isv[i], out[i])
    return out


def fit_to_vertices(values, years, is_vertex) -> np.ndarray:
    """Fit-to-vertex (FTV): fit another index on the vertex years of a LandTrendr result.

    ``values`` (n, T) or (T, H, W) of the other index (NaN = missing), ``is_vertex`` of the
    same shape (e.g. ``segment(...).is_vertex``). Each segment between consecutive vertex
    years is fitted as in LandTrendr (point-to-point or anchored regression), so the
    fitted series of all indices break in the same years (the seed's ndvi/tcg/tcw ``_fit``
    bands). Returns fitted values of the same shape, in the input's units. Pixels with fewer
    than two vertices get their mean.
    """
    series, years, image_shape = _as_series(values, years)
    isv = np.asarray(is_vertex, dtype=bool)
    if isv.shape != np.shape(values) and not (isv.ndim == 2 and np.ndim(values) == 1):
        raise ValueError(f"is_vertex has shape {isv.shape}, values {np.shape(values)}")
    isv = isv.reshape(len(years), -1).T if image_shape is not None else isv.reshape(series.shape)
    out = _ftv_all(series, (years - years[0]).astype(np.float64), np.ascontiguousarray(isv))
    if image_shape is not None:
        return out.T.reshape((len(years),) + image_shape)
    return out[0] if np.ndim(values) == 1 else out


# ----------------------------------------------------------------------------- change map
_SORTS = ("greatest", "least", "newest", "oldest", "fastest", "slowest")
CHANGE_BANDS = ("yod", "mag", "dur", "preval", "rate", "dsnr")


@nb.njit(parallel=True, cache=True)
def _change_all(fit, isv, years, rmse, sign, sort_code, y0, y1, mag_min, dur_max, preval_min):
    npx, T = fit.shape
    out = np.full((npx, 6), np.nan)
    for i in nb.prange(npx):
        best_key = np.inf
        prev = -1
        for t in range(T):
            if not isv[i, t]:
                continue
            if prev >= 0:
                a = fit[i, prev]
                b = fit[i, t]
                d = (b - a) * sign  # > 0: the requested direction (loss or gain)
                if d > 0:
                    mag = abs(b - a)
                    dur = float(years[t] - years[prev])
                    yod = years[prev] + 1.0
                    ok = yod >= y0 and yod <= y1 and mag > mag_min and dur < dur_max and a > preval_min
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
                            out[i, 5] = mag / rmse[i] if rmse[i] > 0 else np.nan
            prev = t
    return out


def change_map(result: LandTrendrResult, years=None, *, delta="loss", sort="greatest", year_range=None,
               mag_min=None, dur_max=None, preval_min=None, mmu=None) -> dict:
    """One change segment per pixel, as LT-GEE ``getChangeMap`` and the seed's change_map.js.

    For every segment between consecutive vertices of the fitted series: ``yod`` = start
    year + 1, ``mag`` = |end - start| (input units, e.g. NDVI x 1000), ``dur`` (years),
    ``preval`` = fitted value at the start, ``rate`` = mag / dur, ``dsnr`` = mag / rmse.
    ``delta`` selects loss (the index moves in the disturbance direction, ``distdir``) or
    gain segments; filters: ``year_range`` (first, last yod), ``mag_min`` (mag > x),
    ``dur_max`` (dur < x), ``preval_min`` (preval > x); ``sort`` picks one segment;
    ``mmu`` drops 8-connected patches of the same yod smaller than ``mmu`` pixels (image
    results only). Returns {band: float32 array (n,) or (H, W)}, NaN where no segment passes.
    """
    if delta not in ("loss", "gain"):
        raise ValueError(f"delta must be 'loss' or 'gain', got {delta!r}")
    if sort not in _SORTS:
        raise ValueError(f"sort must be one of {_SORTS}, got {sort!r}")
    years = result.years if years is None else np.asarray(years)
    if len(years) != len(result.years) or np.any(years != result.years):
        raise ValueError("years do not match the LandTrendr result's years")
    T = len(years)
    if result.image_shape is not None:
        fit = result.fitted.reshape(T, -1).T
        isv = result.is_vertex.reshape(T, -1).T
        rmse = result.rmse.ravel()
    else:
        fit, isv, rmse = result.fitted, result.is_vertex, result.rmse
    # loss: the index moves in the disturbance direction (distdir), gain: the other way
    sign = float(result.distdir if delta == "loss" else -result.distdir)
    y0, y1 = (-np.inf, np.inf) if year_range is None else (float(year_range[0]), float(year_range[1]))
    out = _change_all(np.ascontiguousarray(fit), np.ascontiguousarray(isv), years.astype(np.float64),
                      np.nan_to_num(rmse, nan=0.0), sign, _SORTS.index(sort), y0, y1,
                      -np.inf if mag_min is None else float(mag_min),
                      np.inf if dur_max is None else float(dur_max),
                      -np.inf if preval_min is None else float(preval_min))
    bands = {b: out[:, k].astype(np.float32) for k, b in enumerate(CHANGE_BANDS)}
    if result.image_shape is not None:
        bands = {b: a.reshape(result.image_shape) for b, a in bands.items()}
        if mmu is not None and mmu > 1:
            bands = _apply_mmu(bands, int(mmu))
    elif mmu is not None:
        raise ValueError("mmu needs an image-shaped result (segment a (T, H, W) stack)")
    return bands


def _apply_mmu(bands: dict, mmu: int) -> dict:
    """Keep pixels whose 8-connected patch of equal yod has at least ``mmu`` pixels."""
    from scipy import ndimage

    yod = bands["yod"]
    keep = np.zeros(yod.shape, bool)
    structure = np.ones((3, 3), bool)
    for y in np.unique(yod[np.isfinite(yod)]):
        lab, n = ndimage.label(yod == y, structure=structure)
        sizes = np.bincount(lab.ravel())
        big = sizes >= mmu
        big[0] = False
        keep |= big[lab]
    return {b: np.where(keep, a, np.nan).astype(np.float32) for b, a in bands.items()}


# ----------------------------------------------------------------------------- helpers for maps
def median_filter_stack(fitted, size: int = 3) -> np.ndarray:
    """Spatial median filter of every year of a fitted (T, H, W) stack (the seed recommends it
    after LandTrendr to remove isolated pixels that the fit left noisy). NaN pixels stay NaN
    and do not take part."""
    from scipy import ndimage

    fitted = np.asarray(fitted, dtype=np.float64)
    if fitted.ndim != 3:
        raise ValueError(f"median_filter_stack needs a (T, H, W) stack, got shape {fitted.shape}")
    out = np.empty_like(fitted)
    for t in range(fitted.shape[0]):
        band = fitted[t]
        nan = np.isnan(band)
        filled = np.where(nan, np.nanmedian(band) if (~nan).any() else 0.0, band)
        out[t] = np.where(nan, np.nan, ndimage.median_filter(filled, size=size, mode="nearest"))
    return out


def change_agreement(yod, truth_year, truth_event) -> dict:
    """Agreement of a change map's year of detection with a truth year.

    ``yod`` (H, W) float with NaN = no change; ``truth_year`` (H, W) int (0 = none);
    ``truth_event`` (H, W) bool, where the truth has an event the map should find.
    Returns detection rate (recall), same-year and within-one-year shares of the detected
    events, and the share of pixels without a true event that the map flags (false alarms).
    """
    yod = np.asarray(yod, dtype=float)
    ev = np.asarray(truth_event, bool)
    if yod.shape != ev.shape or np.shape(truth_year) != ev.shape:
        raise ValueError(f"shapes differ: yod {yod.shape}, truth_year {np.shape(truth_year)}, truth_event {ev.shape}")
    found = ev & np.isfinite(yod)
    diff = yod[found] - np.asarray(truth_year)[found]
    return {
        "n_true_events": int(ev.sum()),
        "recall": float(found.sum() / max(ev.sum(), 1)),
        "same_year": float((diff == 0).mean()) if found.any() else float("nan"),
        "within_1_year": float((np.abs(diff) <= 1).mean()) if found.any() else float("nan"),
        "false_alarm_rate": float((np.isfinite(yod) & ~ev).sum() / max((~ev).sum(), 1)),
    }


def interactive_panel(stack, row: int = 0, col: int = 0, **params):
    """An ipywidgets panel that refits one pixel of a (T, H, W) :class:`~ltlib.io.Stack` live
    as the LandTrendr parameters change; returns the widget (display it in a notebook)."""
    import ipywidgets as w
    import matplotlib.pyplot as plt

    h, wd = stack.grid.shape
    defaults = dict(max_segments=6, spike_threshold=0.9, recovery_threshold=0.25, pval_threshold=0.05,
                    best_model_proportion=0.75, prevent_one_year_recovery=True)
    defaults.update(params)
    out = w.Output()
    ctl = dict(
        row=w.IntSlider(row, 0, h - 1, description="row"),
        col=w.IntSlider(col, 0, wd - 1, description="col"),
        max_segments=w.IntSlider(defaults["max_segments"], 1, 10, description="maxSegments"),
        spike_threshold=w.FloatSlider(defaults["spike_threshold"], min=0.5, max=1.0, step=0.05, description="spike"),
        recovery_threshold=w.FloatSlider(defaults["recovery_threshold"], min=0.05, max=1.0, step=0.05, description="recovery"),
        pval_threshold=w.FloatSlider(defaults["pval_threshold"], min=0.01, max=0.5, step=0.01, description="pval"),
        best_model_proportion=w.FloatSlider(defaults["best_model_proportion"], min=0.5, max=1.0, step=0.05, description="bmp"),
        prevent_one_year_recovery=w.Checkbox(defaults["prevent_one_year_recovery"], description="preventOneYearRecovery"),
    )

    def redraw(*_):
        p = {k: c.value for k, c in ctl.items()}
        r0, c0 = p.pop("row"), p.pop("col")
        y = stack.data[:, r0, c0]
        res = segment(y, stack.years, **p)
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(9, 3.5))
            ax.plot(stack.years, y, "o", ms=4, color="0.5", label="source")
            ax.plot(stack.years, res.fitted[0], "-", color="tab:red", label="fitted")
            vy, vv = res.vertices()[0]
            ax.plot(vy, vv, "s", color="tab:red", label=f"{len(vy)} vertices")
            ax.set_title(f"pixel ({r0}, {c0}): p = {res.p_value[0]:.3g}, RMSE = {res.rmse[0]:.1f}")
            ax.set_xlabel("Year")
            ax.set_ylabel(stack.name)
            ax.legend(loc="best", fontsize=8)
            plt.show()

    for c in ctl.values():
        c.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox(list(ctl.values())[:4]), w.HBox(list(ctl.values())[4:]), out])

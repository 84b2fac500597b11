"""Recovery metrics of ltlib against spectral-recovery (PEOPLE-ER, Apache-2.0) on the same series.

spectral-recovery needs its own environment (xarray, rioxarray, geopandas, spyndex; not in
ltlib's pins), so it runs as a separate oracle:

    python3.11 -m venv /tmp/srenv && /tmp/srenv/bin/pip install spectral-recovery==1.0.1
    PYTHONPATH=. .venv/bin/python benchmarks/recovery_oracle.py --oracle-python /tmp/srenv/bin/python

Series: the issue's closed-form cases, and NBR series of the bundled sample with a greatest
loss and a complete five-year window: LandTrendr's fitted series (``fitted``), the source
composites (``source``, with their gaps and noise) and the noise-free series (``noise-free``,
at the truth's disturbance year). For every pixel both tools get the same series, the same
disturbance start (the loss segment's start vertex), the same restoration start t (its end
vertex) and the same target: the median of the two years before the loss
(spectral-recovery's per-pixel historic median; ltlib ``pre="median", pre_years=2``). RRI uses
the value at the start vertex in both (ltlib ``pre="vertex"``).

Where the definitions coincide: RRI, YrYr, Y2R (spectral-recovery's -9999 = not recovered is
ltlib's NaN), R80P on the series whose year 5 is at least year 4 (spectral-recovery's R80P
reads year 5, the papers' and ltlib's the larger of years 4 and 5). spectral-recovery's
``deltair`` (x_t+5 - x_t) is 5 x YrYr, not the disturbance magnitude (ltlib's dindex).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ltlib import landtrendr, sample, scene
from ltlib.landtrendr import recovery as rc

HERE = Path(__file__).resolve().parent


def _closed_form():
    years = np.arange(2000, 2021)
    series, names = [], []
    for name, t, step in (("issue: 800, 100 at t, +100/yr", 2005, 100.0), ("never recovers", 2005, 0.0),
                          ("slow: +30/yr", 2005, 30.0), ("loss 5 years before the end", 2015, 120.0)):
        v = np.where(years < t, 800.0, np.minimum(100 + step * (years - t), 900.0))
        series.append(v)
        names.append(name)
    n = len(series)
    return "closed form", np.array(series).T, years, np.array([2005, 2005, 2005, 2015.0]), np.ones(n), names


def _sample_sets(n_max: int, seed: int):
    sc = scene.load(Path(__file__).resolve().parents[1] / "data" / "sample")
    run = landtrendr.fit_scene(sc)
    years = run.years
    yod, dur = np.asarray(run.loss["yod"]), np.asarray(run.loss["dur"])
    t = yod - 1 + dur
    ok = np.isfinite(yod) & (t + 5 <= years[-1]) & (yod - 2 >= years[0])
    rng = np.random.default_rng(seed)
    r, c = np.nonzero(ok)
    pick = rng.choice(r.size, size=min(n_max, r.size), replace=False)
    r, c = r[pick], c[pick]
    out = [("fitted", run.fitted["NBR"][:, r, c], years, yod[r, c], dur[r, c], None)]
    src = sc.stack("NBR").data[:, r, c]
    out.append(("source", src, years, yod[r, c], dur[r, c], None))
    ty = sc.truth["dist_year"].astype(float)
    okt = (ty > 0) & (ty + 5 <= years[-1]) & (ty - 2 > years[0])
    r2, c2 = np.nonzero(okt)
    pick = rng.choice(r2.size, size=min(n_max, r2.size), replace=False)
    clean = sample.noise_free_index("NBR")
    out.append(("noise-free", clean[:, r2[pick], c2[pick]], years, ty[r2[pick], c2[pick]], np.ones(pick.size), None))
    return out


def _ltlib(values, years, yod, dur):
    rri = rc.recovery_metrics(values, years, yod, dur, pre="vertex")
    med = rc.recovery_metrics(values, years, yod, dur, pre="median", pre_years=2)
    return {"rri": rri["rri"], "yryr": rri["yryr"], "r80p": med["r80p"], "y2r": med["y2r"]}


def _oracle(python, values, years, yod, dur):
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, values=values.astype(np.float64), years=years, start=yod - 1, t=yod - 1 + dur, ref0=yod - 2,
                 ref1=yod - 1)
        subprocess.run([python, str(HERE / "recovery_oracle_sr.py"), str(src), str(dst)], check=True)
        return dict(np.load(dst))


def _row(name, ours, theirs, mask=None):
    a, b = np.asarray(ours, float), np.asarray(theirs, float)
    if mask is not None:
        a, b = a[mask], b[mask]
    both_nan = np.isnan(a) & np.isnan(b)
    fin = np.isfinite(a) & np.isfinite(b)
    same = both_nan | (fin & np.isclose(a, b, rtol=1e-5, atol=1e-3))
    diff = np.abs(a[fin] - b[fin])
    return (name, a.size, int(same.sum()), int(both_nan.sum()), int((np.isnan(a) & np.isfinite(b)).sum()),
            int((np.isfinite(a) & np.isnan(b)).sum()), float(diff.max()) if diff.size else 0.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--oracle-python", default="/tmp/srenv/bin/python",
                    help="the python of an environment with spectral-recovery installed")
    ap.add_argument("--n", type=int, default=2000, help="pixels per sample set")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    cf = _closed_form()
    sets = [cf[:5] + (cf[5],)] + _sample_sets(args.n, args.seed)
    print(f"{'series':<12} {'metric':<10} {'n':>6} {'agree':>6} {'both NaN':>8} {'NaN ltlib':>9} {'NaN s-r':>8} "
          f"{'max |diff|':>11}")
    for name, values, years, yod, dur, labels in sets:
        values = np.asarray(values, np.float64)
        ours = _ltlib(values, years, yod, dur)
        theirs = _oracle(args.oracle_python, values, years, yod, dur)
        if labels:
            for k, lab in enumerate(labels):
                print(f"  {lab}: ltlib " + ", ".join(f"{m} {ours[m][k]:.4g}" for m in ours) +
                      " | spectral-recovery " + ", ".join(f"{m} {theirs[m][k]:.4g}" for m in ours))
        up = values[np.searchsorted(years, (yod - 1 + dur).astype(int) + 5), np.arange(values.shape[1])] >= \
            values[np.searchsorted(years, (yod - 1 + dur).astype(int) + 4), np.arange(values.shape[1])]
        rows = [_row(m, ours[m], theirs[m]) for m in ("rri", "yryr", "y2r")]
        rows.append(_row("r80p", ours["r80p"], theirs["r80p"]))
        rows.append(_row("r80p*", ours["r80p"], theirs["r80p"], up))
        rows.append(_row("5*yryr=dIR", 5 * ours["yryr"], theirs["deltair"]))
        for m, n, same, nan, nan_a, nan_b, dmax in rows:
            print(f"{name:<12} {m:<10} {n:>6} {same:>6} {nan:>8} {nan_a:>9} {nan_b:>8} {dmax:>11.4g}")
    print("agree: both NaN or equal within 1e-5 (relative); NaN ltlib: ltlib NaN where spectral-recovery gives a\n"
          "number (ltlib's documented NaN: pre <= x_t, i.e. no loss on this index, or a gap); max |diff| over the\n"
          "pixels where both give a number. r80p*: the series whose year 5 is at least year 4 (where the two R80P\n"
          "definitions coincide)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

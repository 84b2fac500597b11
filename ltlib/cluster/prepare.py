"""Series ready for k-Shape: gaps filled, shapeless series set aside, and the way back.

:func:`prepare` fills gaps with :func:`ltlib.gaps.fill_gaps` and sets aside series that have
too few observations or a constant variable (SBD is undefined for them); :class:`Prepared`
maps labels of the kept series back to every input row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gaps import fill_gaps
from .sbd import _flat_rows, as_array


@dataclass
class Prepared:
    """Series ready for k-Shape and the way back to all input rows.

    ``X``: the usable series, gaps filled, (m, T) or (m, T, d) like the input, float64;
    ``keep``: (n,) bool, rows of the input in ``X``; ``flat``: (n,) bool, rows set aside
    (a variable constant or with fewer than 2 observations); ``n_filled``: number of values
    filled by interpolation in ``X``.
    """

    X: np.ndarray
    keep: np.ndarray
    flat: np.ndarray
    n_filled: int

    def expand(self, labels, flat_label=None) -> np.ndarray:
        """Labels of ``X`` (m,) -> labels of every input row (n,) int.

        Set-aside rows get ``flat_label`` (default: ``labels.max() + 1``, a label of their own).
        """
        labels = np.asarray(labels)
        if labels.shape != (int(self.keep.sum()),):
            raise ValueError(f"expected {int(self.keep.sum())} labels (one per kept series), "
                             f"got shape {labels.shape}")
        if flat_label is None:
            flat_label = int(labels.max()) + 1 if labels.size else 0
        out = np.full(self.keep.shape, flat_label, dtype=np.int64)
        out[self.keep] = labels
        return out


def prepare(X, *, min_observations: int = 2) -> Prepared:
    """Fill gaps and set aside series that have no shape, so k-Shape can run.

    ``X`` (n, T) or (n, T, d), NaN for missing values (e.g. from
    :func:`ltlib.io.stack_to_series`). A series is set aside (``flat``) when a variable has
    fewer than ``min_observations`` values or is constant after filling (bare rock, water,
    a LandTrendr fit with a single flat segment). See :meth:`Prepared.expand`.
    """
    X = as_array(X)
    if X.dtype == object or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"X must be a numeric array, got dtype {X.dtype}")
    if X.ndim not in (2, 3) or X.shape[0] < 1 or X.shape[1] < 2:
        raise ValueError(f"X must be (n, T) or (n, T, d) time series, got shape {X.shape}")
    filled, n_valid = fill_gaps(X)
    F3 = filled[:, :, None] if filled.ndim == 2 else filled
    few = (n_valid < max(int(min_observations), 1)).any(axis=1)
    flat = few.copy()
    ok = ~few
    flat[ok] = _flat_rows(F3[ok])
    keep = ~flat
    n_filled = int(n_valid[keep].size * X.shape[1] - n_valid[keep].sum())
    return Prepared(X=filled[keep], keep=keep, flat=flat, n_filled=n_filled)

"""k-Shape on a scene: cluster the pixel trajectories of (T, H, W) stacks into a label image."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io import series_to_image, stack_to_series, stacks_to_series
from .kshape import KShape
from .prepare import Prepared, prepare


@dataclass
class SceneClusters:
    """k-Shape result on an image: ``labels`` (H, W) int16 (-1 no data, k = flat/set
    aside), the fitted ``model``, the ``prepared`` series and the pixel ``mask`` (H, W)."""

    labels: np.ndarray
    model: KShape
    prepared: Prepared
    mask: np.ndarray
    n_clusters: int

    @property
    def flat_label(self) -> int:
        return self.n_clusters


def cluster_stacks(stacks, n_clusters, **kshape_kw) -> SceneClusters:
    """Cluster the pixel trajectories of one or more (T, H, W) stacks on the same grid.

    One stack: univariate; several: multivariate (one variable per stack, each z-normalised).
    Pixels with no observation get -1; flat pixels get ``n_clusters``. ``kshape_kw`` go to
    :class:`KShape`.
    """
    if isinstance(stacks, (list, tuple)):
        series, mask = stacks_to_series(list(stacks)) if len(stacks) > 1 else stack_to_series(stacks[0])
    else:
        series, mask = stack_to_series(stacks)
    prep = prepare(series)
    model = KShape(n_clusters, **kshape_kw).fit(prep.X)
    full = prep.expand(model.labels_, flat_label=n_clusters)
    image = series_to_image(full.astype(np.int16), mask, fill=-1).astype(np.int16)
    return SceneClusters(labels=image, model=model, prepared=prep, mask=mask, n_clusters=int(n_clusters))

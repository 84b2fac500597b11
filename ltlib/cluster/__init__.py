"""k-Shape clustering of pixel trajectories: SBD, k-Shape, SBD silhouette, elbow and knee.

Written from Paparrizos & Gravano, "k-Shape: Efficient and Accurate Clustering of Time
Series" (SIGMOD 2015; TODS 2017) and the project's k-Shape spec.

Modules
-------
sbd
    z-normalisation, the NCC/SBD kernels (shift bank, matrix-product and FFT
    cross-correlation) and :func:`sbd`; the BLAS thread limit for small problems.
kshape
    The :class:`KShape` estimator (scikit-learn style) and its steps: assignment,
    alignment, shape extraction, refinement, empty-cluster re-seeding, k-shape++ seeding;
    ``engine="tslearn"`` / ``"kshape"`` run those packages for comparisons.
prepare
    :class:`Prepared` and :func:`prepare`: gaps filled (:func:`ltlib.gaps.fill_gaps`),
    shapeless series set aside, labels mapped back to every input row.
select
    :func:`silhouette`, :func:`silhouette_from_distances`, :func:`elbow`, :func:`knee` and
    :func:`euclidean_elbow` (the seed's yellowbrick view).
run
    The scene step: :func:`load_trajectories`, :class:`ClusterSettings`,
    :func:`cluster_trajectories` -> :class:`ClusterRun`, :func:`write_clusters`,
    :func:`compare_engines`.

The figures (:func:`ltlib.plots.plot_elbow`, :func:`ltlib.plots.plot_elbow_views`,
:func:`ltlib.plots.plot_centroids`, :func:`ltlib.plots.cluster_maps_figure`) are in
:mod:`ltlib.plots`, the interactive map (:func:`ltlib.maps.cluster_map`) in :mod:`ltlib.maps`.

Notes
-----
Shapes: a dataset ``X`` is ``(n, T)`` (univariate) or ``(n, T, d)`` (d variables), like
tslearn; centroids are ``(k, T, d)``. The package re-exports the functions, so
``ltlib.cluster.sbd`` and ``ltlib.cluster.prepare`` are the functions, not the modules of
those names; import from the modules with ``from ltlib.cluster.sbd import ...``.
"""
from .kshape import ENGINES, KShape
from .prepare import Prepared, prepare
from .run import (ClusterRun, ClusterSettings, EngineComparison, Trajectories, cluster_trajectories,
                  compare_engines, load_trajectories, write_clusters)
from .sbd import BLOCK_BYTES, FFT_MIN_LENGTH, SINGLE_THREAD_MAX_VALUES, as_dataset, sbd, znormalize
from .select import SILHOUETTE_EXACT_MAX, elbow, euclidean_elbow, knee, silhouette, silhouette_from_distances

__all__ = [
    "BLOCK_BYTES",
    "ENGINES",
    "FFT_MIN_LENGTH",
    "SILHOUETTE_EXACT_MAX",
    "SINGLE_THREAD_MAX_VALUES",
    "ClusterRun",
    "ClusterSettings",
    "EngineComparison",
    "KShape",
    "Prepared",
    "Trajectories",
    "as_dataset",
    "cluster_trajectories",
    "compare_engines",
    "elbow",
    "euclidean_elbow",
    "knee",
    "load_trajectories",
    "prepare",
    "sbd",
    "silhouette",
    "silhouette_from_distances",
    "write_clusters",
    "znormalize",
]

"""Notebooks 02-05 on the sample opened lazily (every scene in 64 px chunks, 16 blocks with
partial ones at the edges) write what the in-memory chain writes: every summary.json value but
the timings, and every GeoTIFF, equal.

The lazy chain is forced through the environment (``LTLIB_IN_MEMORY_MAX_BYTES=0``,
``LTLIB_CHUNK_PX=64``, read by ltlib.config in the papermill kernel); 03-05 read the lazy 02's
outputs through ``landtrendr_dir``. The in-memory chain is the session's ``executed_notebook``
(same parameters: the sample and the output folder).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from .conftest import DATA, run_notebook

CHAIN = ("02_fit_landtrendr", "03_cluster_trajectories", "04_classify_trajectories", "05_detect_sar_change")
LAZY_ENV = {"LTLIB_IN_MEMORY_MAX_BYTES": "0", "LTLIB_CHUNK_PX": "64"}

#: Keys whose values are timings (or ratios of timings), or say how a step ran.
TIMING = ("seconds", "fit_time_s", "speedup_of_ltlib", "block_wise")
#: Notebook 03: the lazy run fits k-Shape on a pixel sample read block by block; on the sample
#: (40,000 valid pixels, below ClusterSettings.sample_size) that sample is every valid pixel in
#: the in-memory order, so the fit is the same, but it is reported (n_fit_sample = 40000, the
#: in-memory run's is None: it fitted the scene's series directly).
SAMPLED = ("n_fit_sample",)
#: GeoTIFFs only a lazy run writes: what it wrote block by block while it ran (03's label image
#: of each run; 04's maps of the models not chosen, whose counts the summary reports).
LAZY_ONLY = ("clusters_univariate.tif", "clusters_multivariate.tif", "class_map_")


def _is_timing(key: str) -> bool:
    return key in TIMING or key.endswith("_seconds") or key.endswith("_per_second")


def _split(value, root: str, path=()):
    """(comparable, set-aside {path: value}): timing keys set aside, the chain's output root in
    strings replaced by ``<outputs>`` (summaries record their folders)."""
    aside = {}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if _is_timing(k) or k in SAMPLED:
                aside[path + (k,)] = v
            else:
                out[k], more = _split(v, root, path + (k,))
                aside.update(more)
        return out, aside
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            o, more = _split(v, root, path + (i,))
            out.append(o)
            aside.update(more)
        return out, aside
    if isinstance(value, str):
        return value.replace(root, "<outputs>"), aside
    return value, aside


def _differences(a, b, path=()):
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str) for d in _differences(a.get(k), b.get(k), path + (k,))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, path + (i,))]
    return [] if a == b else [f"{'/'.join(map(str, path))}: lazy {a!r} != in memory {b!r}"]


@pytest.fixture(scope="module")
def lazy_chain(tmp_path_factory):
    """``run(name) -> summary``: a notebook run lazily (once per module); 03-05 read the lazy
    02's outputs, so 02 runs first."""
    root = tmp_path_factory.mktemp("lazy_outputs")
    done = {}

    def run(name: str) -> dict:
        if name not in done:
            extra = {} if name == CHAIN[0] else {"landtrendr_dir": str(root / CHAIN[0])}
            if name != CHAIN[0]:
                run(CHAIN[0])
            with pytest.MonkeyPatch.context() as mp:
                for key, value in LAZY_ENV.items():
                    mp.setenv(key, value)
                t0 = time.perf_counter()
                done[name] = run_notebook(name, root / name, data_dir=str(DATA), **extra)
            print(f"lazy {name}: {time.perf_counter() - t0:.1f} s")
        return done[name]

    return run


def _read(path: Path):
    with rasterio.open(path) as src:
        nodata = "nan" if src.nodata is not None and np.isnan(src.nodata) else src.nodata  # nan != nan
        return src.read(), src.dtypes, nodata, src.descriptions, src.crs, src.transform


# 03 and 04 take minutes each (k-Shape's elbow, training the classifiers: the same work in both
# modes); their block-wise steps are compared in test_cluster_lazy.py and test_mapping_lazy.py.
@pytest.mark.parametrize("name", [n if n in ("02_fit_landtrendr", "05_detect_sar_change") else
                                  pytest.param(n, marks=pytest.mark.slow) for n in CHAIN])
def test_lazy_notebook_writes_the_in_memory_outputs(name, lazy_chain, executed_notebook):
    lazy = lazy_chain(name)
    mem = executed_notebook(name)
    lazy_dir, mem_dir = Path(lazy["_output_dir"]), Path(mem["_output_dir"])
    lazy, mem = ({k: v for k, v in s.items() if k != "_output_dir"} for s in (lazy, mem))
    assert lazy["status"] == "complete"
    a, aside_lazy = _split(lazy, str(lazy_dir.parent))
    b, aside_mem = _split(mem, str(mem_dir.parent))
    assert not _differences(a, b), "\n".join(_differences(a, b))
    # the lazy run did go block by block, and what was set aside is only what may differ
    if name == "02_fit_landtrendr":
        assert aside_lazy[("landtrendr", "block_wise")] is True
    if name == "03_cluster_trajectories":
        for run in ("univariate", "multivariate"):
            n = lazy[run]["n_pixels_clustered"] + lazy[run]["n_flat"]
            assert aside_lazy[(run, "n_fit_sample")] == n == 200 * 200  # every valid pixel, once
            assert aside_mem[(run, "n_fit_sample")] is None
    if name == "05_detect_sar_change":
        assert aside_lazy[("block_wise",)] is True and lazy["accuracy"]["n_true_changes"] > 0
    # every GeoTIFF of the in-memory run, equal (values, types, nodata, band names, grid)
    tifs = sorted(p.relative_to(mem_dir) for p in mem_dir.rglob("*.tif"))
    assert tifs, f"{name} wrote no GeoTIFF"
    for rel in tifs:
        assert (lazy_dir / rel).exists(), f"the lazy {name} did not write {rel}"
        got, want = _read(lazy_dir / rel), _read(mem_dir / rel)
        assert np.array_equal(got[0], want[0], equal_nan=True), f"{name}: {rel} differs"
        assert got[1:] == want[1:], f"{name}: {rel} metadata differs"
    extra = sorted(str(p.relative_to(lazy_dir)) for p in lazy_dir.rglob("*.tif")
                   if p.relative_to(lazy_dir) not in tifs)
    assert all(e.startswith(LAZY_ONLY) for e in extra), extra
    if name == "03_cluster_trajectories":  # the per-run label images are the bands of clusters.tif
        both = _read(mem_dir / "clusters.tif")[0]
        for band, run in enumerate(("univariate", "multivariate")):
            np.testing.assert_array_equal(_read(lazy_dir / f"clusters_{run}.tif")[0][0], both[band])


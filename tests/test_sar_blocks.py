"""The Sentinel-1 omnibus test block by block (dask): maps, counts and written files equal the
in-memory run exactly, with chunks smaller than the image and of odd sizes (partial chunks at
the edges), with and without the 3x3 median filter (1 px halo), dual- and single-pol."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ltlib import blocks, io, sar, sar_run, scene

from . import scenes

MAPS = ("cmap", "smap", "fmap", "bmap", "valid", "q_pvalue")


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


@pytest.fixture(scope="module")
def changing():
    """12 images of 90 x 101 px: step changes in patches crossing chunk borders, zeros, NaN."""
    rng = np.random.default_rng(3)
    k, H, W = 12, 90, 101
    mean = rng.uniform(0.05, 0.3, (H, W))
    fac = np.ones((k, H, W))
    for _ in range(80):
        r, c, j = rng.integers(0, H - 8), rng.integers(0, W - 8), rng.integers(1, k)
        fac[j:, r:r + 8, c:c + 8] *= rng.choice([0.25, 0.4, 2.5, 4.0])
    vv = (mean * fac * rng.gamma(4.4, 1 / 4.4, (k, H, W))).astype(np.float32)
    vh = (0.3 * mean * fac * rng.gamma(4.4, 1 / 4.4, (k, H, W))).astype(np.float32)
    vv[:, :, :2] = 0.0  # border noise on the image's edge
    vv[3, 36:39, 60:62] = np.nan  # masked pixels on a chunk border (37, 61)
    return vv, vh


def _lazy(a, chunks):
    import dask.array as da

    return da.from_array(a, chunks=(a.shape[0], chunks, chunks))


@pytest.mark.parametrize("chunks, median_filter, n_bands", [
    (37, False, 2), (61, True, 2), (37, True, 1), (61, False, 1)])
def test_omnibus_on_dask_equals_in_memory(changing, chunks, median_filter, n_bands):
    vv, vh = changing
    if n_bands == 2:
        ref = sar.omnibus(vv, vh, median_filter=median_filter)
        res = sar.omnibus(_lazy(vv, chunks), _lazy(vh, chunks), median_filter=median_filter)
    else:
        ref = sar.omnibus_single(vv, median_filter=median_filter)
        res = sar.omnibus_single(_lazy(vv, chunks), median_filter=median_filter)
    assert res.is_lazy and not ref.is_lazy and res.bmap.chunks[1][0] == chunks
    for name in MAPS:
        np.testing.assert_array_equal(np.asarray(getattr(res, name)), getattr(ref, name), err_msg=name)
    assert 0 < ref.fmap.sum() and (~ref.valid).sum() > 0  # changes and no-data pixels were there to get right
    pq = sar.q_pvalue(_lazy(vv, chunks), None if n_bands == 1 else _lazy(vh, chunks))
    np.testing.assert_array_equal(pq.compute(), sar.q_pvalue(vv, None if n_bands == 1 else vh))


def test_median_filter_halo_matters(changing):
    """Without the halo, pixels on chunk borders would differ: the test above can fail."""
    import dask.array as da

    vv, vh = changing
    ref = sar.omnibus(vv, vh, median_filter=True)
    kw = dict(names=["vv", "vh"], enl=4.4, consts=sar._row_constants(12, 4.4, 0.01, 2), median_filter=True)
    no_halo = da.map_blocks(sar._omnibus_block, _lazy(vv, 37), _lazy(vh, 37), dtype=np.float32,
                            chunks=((16,), *_lazy(vv, 37).chunks[1:]), **kw).compute()
    assert (no_halo[sar._PLANES["fmap"]] != ref.fmap).any()


def _period():
    return sar_run.S1Period(np.zeros(0, np.int64), np.zeros(0, np.int64), sar.pick_s1_period([], []), "none")


def _summary(run):
    return {k: v for k, v in run.summary().items() if k not in ("omnibus_seconds", "block_wise")}


@pytest.mark.parametrize("folder, chunks, median_filter", [("sample", 61, True), ("warped", 37, False)])
def test_detect_changes_block_by_block_equals_in_memory(request, data_dir, tmp_path_factory, folder, chunks,
                                                        median_filter):
    if folder == "sample":
        s1_dir = data_dir / "sentinel1"
    else:  # not the sample: another UTM zone, 110 x 120 px with NaN where the warp had no data
        s1_dir = scenes.reprojected_sample(tmp_path_factory.mktemp("warped_s1")) / "sentinel1"
    mem, lazy = scene.load_sentinel1(s1_dir), scene.load_sentinel1(s1_dir, chunks=chunks)
    assert lazy.is_lazy and not mem.is_lazy and lazy.vv.chunks[1][0] == chunks
    ref = sar_run.detect_changes(mem, _period(), median_filter=median_filter)
    out = tmp_path_factory.mktemp("blocks")
    run = sar_run.detect_changes(lazy, _period(), median_filter=median_filter, output_dir=out)
    assert run.result.is_lazy and set(run.files) == {"cmap", "smap", "fmap", "bmap"}
    for name in MAPS:
        np.testing.assert_array_equal(np.asarray(getattr(run.result, name)), getattr(ref.result, name), err_msg=name)
    assert run.counts() == ref.counts() and ref.counts()["n_changes"] > 0
    np.testing.assert_array_equal(run.proportions(), ref.proportions())
    assert _summary(run) == _summary(ref) and run.summary()["block_wise"]
    # the files written while it ran, and copies of them, equal the in-memory run's
    written_mem = ref.write(tmp_path_factory.mktemp("memory"))
    for written in (run.write(out), run.write(tmp_path_factory.mktemp("copy"))):
        scenes.outputs_equal(written_mem, written)
    if folder == "warped":
        assert ref.counts()["n_valid"] < ref.counts()["n_pixels"]


def test_a_chunked_stack_needs_an_output_dir(data_dir):
    lazy = scene.load_sentinel1(data_dir / "sentinel1", chunks=64)
    with pytest.raises(ValueError, match="needs output_dir"):
        sar_run.detect_changes(lazy, _period())


def test_scene_load_opens_sentinel1_like_the_landsat_stacks(data_dir, monkeypatch):
    assert not scene.load(data_dir, quiet=True).s1.is_lazy
    forced = scene.load(data_dir, quiet=True, chunks=45, indices=["NDVI"])
    assert forced.s1.is_lazy and forced.s1.vv.chunks[1][0] == 45 and blocks.is_lazy(forced.s1.truth["bmap"])
    np.testing.assert_array_equal(forced.s1.vh.compute(), scene.load_sentinel1(data_dir / "sentinel1").vh)
    monkeypatch.setattr(scene.config, "IN_MEMORY_MAX_BYTES", 4 * 2**20)  # the S1 pair is 6.4 MB
    assert scene.load_sentinel1(data_dir / "sentinel1", chunks="auto").is_lazy
    with pytest.raises(ValueError, match="chunks must be"):
        scene.load_sentinel1(data_dir / "sentinel1", chunks=5)


def _cut(s1, n):
    """The first ``n`` images of a Sentinel-1 stack (its true bmap cut alike)."""
    truth = dict(s1.truth, bmap=s1.truth["bmap"][:n - 1])
    return dataclasses.replace(s1, vv=s1.vv[:n], vh=s1.vh[:n], dates=s1.dates[:n], truth=truth)


def test_a_chunked_run_is_scored_block_by_block(data_dir, tmp_path):
    """Scores, the sensitivity table (other settings rerun block by block) and the per-interval
    bars are counted block by block and equal the in-memory ones exactly."""
    import matplotlib

    matplotlib.use("Agg")
    from ltlib import plots

    mem = _cut(scene.load_sentinel1(data_dir / "sentinel1"), 8)
    lazy = _cut(scene.load_sentinel1(data_dir / "sentinel1", chunks=37), 8)
    assert blocks.is_lazy(lazy.truth["bmap"]) and lazy.truth["bmap"].chunks[1][0] == 37
    ref = sar_run.detect_changes(mem, _period())
    run = sar_run.detect_changes(lazy, _period(), output_dir=tmp_path)
    acc = run.score()
    assert acc == ref.score() and acc["n_true_changes"] > 0 and acc["n_false_alarms"] > 0
    kw = dict(alphas=(0.01, 0.05), median_filters=(False, True))
    drop = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    run.sensitivity_table(**kw)
    ref.sensitivity_table(**kw)
    assert drop(run.sensitivity) == drop(ref.sensitivity)
    assert len({tuple(r.values()) for r in drop(ref.sensitivity)}) == 4  # four settings
    bars = [[np.asarray(b.get_height()) for b in ax.patches]
            for ax in (plots.plot_detections_per_interval(r.result.bmap, s.truth["bmap"], r.result.valid,
                                                          s.dates).axes[0] for r, s in ((run, lazy), (ref, mem)))]
    assert bars[0] == bars[1] and any(h > 0 for h in bars[1])
    assert run.result.max_changes() == ref.result.max_changes() > 0
    rgb = sar.composite(run.result.cmap, run.result.smap, run.result.fmap, run.k, fmax=run.result.max_changes())
    assert blocks.is_lazy(rgb)
    np.testing.assert_array_equal(rgb.compute(), sar.composite(ref.result.cmap, ref.result.smap, ref.result.fmap,
                                                               ref.k))


def test_disturbance_years_counted_block_by_block():
    import dask.array as da

    rng = np.random.default_rng(5)
    yod = rng.choice([np.nan, 0, -1, 1985, 1990, 2019], size=(61, 47)).astype(np.float32)
    yod[:37, :37] = np.nan  # a block with no year at all
    years, counts = sar.disturbance_year_counts(da.from_array(yod, chunks=37))
    ref = sar.disturbance_year_counts(yod)
    assert years.tolist() == ref[0].tolist() == [1985, 1990, 2019] and counts.tolist() == ref[1].tolist()
    assert years.dtype == ref[0].dtype and counts.dtype == ref[1].dtype


def test_db_in_one_block_is_refused_and_nothing_is_written(changing, tmp_path):
    """dB outside the ENL check's sample of chunks: the block that holds it refuses it; no map is left."""
    import rasterio

    vv, vh = changing
    vv = vv.copy()
    vv[:, 85, 97] = 10 * np.log10(vv[:, 85, 97])  # one pixel in dB (negative)
    grid = io.Grid(rasterio.crs.CRS.from_epsg(32612), rasterio.Affine(10, 0, 0, 0, -10, 0), *vv.shape[1:])
    dates = [f"2020-01-{d:02d}" for d in range(1, vv.shape[0] + 1)]
    lazy = scene.Sentinel1(_lazy(vv, 16), _lazy(vh, 16), dates, grid, tmp_path)
    with pytest.raises(ValueError, match="vv has 12 negative values in one block .*looks like dB"):
        sar_run.detect_changes(lazy, _period(), output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_enl_of_a_lazy_stack_reads_a_few_chunks(changing):
    import dask.array as da

    vv, _ = changing
    read = []

    def count(block, block_info=None):
        read.append(block_info[0]["chunk-location"])
        return block

    lazy = da.from_array(vv, chunks=(12, 16, 16)).map_blocks(count, dtype=vv.dtype)  # 42 chunks
    est = sar.estimate_enl(lazy)
    assert 0 < len(read) <= sar.ENL_SAMPLE_BLOCKS
    assert est == pytest.approx(sar.estimate_enl(vv), rel=0.1)

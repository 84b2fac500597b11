"""Block-wise execution (ltlib.blocks, ltlib.landtrendr.chunked): results equal the in-memory
path exactly, on the sample and on scenes that are not the sample, with chunks smaller than the
image and of odd sizes (partial chunks at the edges)."""
import warnings

import numpy as np
import pytest
import rasterio

from ltlib import blocks, io, landtrendr, params, scene
from ltlib.landtrendr import change, chunked

from . import scenes

TIMING_KEYS = {"seconds", "series_per_second", "block_wise"}


@pytest.fixture(scope="module", autouse=True)
def local_threads():
    blocks.connect()


@pytest.fixture(scope="module")
def forest(tmp_path_factory):
    return scenes.forest_scene(tmp_path_factory.mktemp("forest"))


@pytest.fixture(scope="module")
def warped(tmp_path_factory):
    return scenes.reprojected_sample(tmp_path_factory.mktemp("warped"), sentinel1=False)


def _load_both(folder, chunks, **kw):
    with warnings.catch_warnings(record=True) as w_mem:
        warnings.simplefilter("always")
        mem = scene.load(folder, quiet=True, chunks=None, **kw)
    with warnings.catch_warnings(record=True) as w_lazy:
        warnings.simplefilter("always")
        lazy = scene.load(folder, quiet=True, chunks=chunks, **kw)
    def notes(ws):
        return [str(w.message) for w in ws if w.category is UserWarning]

    return mem, lazy, notes(w_mem), notes(w_lazy)


@pytest.mark.parametrize("chunks", [37, 61])
def test_lazy_scene_equals_the_scene_in_memory(data_dir, chunks):
    mem, lazy, _, _ = _load_both(data_dir, chunks, years=(1984, 2020))
    assert not mem.is_lazy and lazy.is_lazy
    assert lazy.stack("NDVI").data.chunks[1][0] == chunks and len(lazy.stack("NDVI").data.chunks[0]) == 1
    assert lazy.indices == mem.indices and np.array_equal(lazy.years, mem.years)
    for name in mem.indices:
        np.testing.assert_array_equal(lazy.stack(name).data.compute(), mem.stack(name).data)
        assert lazy.stack(name).scale == mem.stack(name).scale


def test_lazy_forest_converts_like_in_memory(forest):
    """Not the sample: float NBR x 1000 with -32768 gaps and no nodata tag, years from a tag."""
    mem, lazy, notes_mem, notes_lazy = _load_both(forest, 16)
    assert notes_lazy == notes_mem and any("were read as nodata" in n for n in notes_lazy)
    np.testing.assert_array_equal(lazy.stack("NBR").data.compute(), mem.stack("NBR").data)


def test_lazy_physical_floats_are_scaled_with_the_same_note(tmp_path):
    rng = np.random.default_rng(0)
    phys = rng.uniform(-0.2, 0.9, (8, 40, 33)).astype("float32")
    phys[2, 5:9, 3:7] = np.nan
    grid = io.Grid(rasterio.crs.CRS.from_epsg(32612), rasterio.Affine(30, 0, 0, 0, -30, 0), 40, 33)
    io.write_raster(tmp_path / "landsat" / "ndvi.tif", phys, grid, band_names=[f"yr{y}" for y in range(2000, 2008)],
                    dtype="float32", nodata=np.nan)
    mem, lazy, notes_mem, notes_lazy = _load_both(tmp_path, 16)
    assert notes_lazy == notes_mem and "multiplied by 1000" in notes_lazy[0]
    np.testing.assert_array_equal(lazy.stack("NDVI").data.compute(), mem.stack("NDVI").data)
    assert lazy.stack("NDVI").scale == 0.001


def test_bad_chunks_are_refused_by_name(data_dir):
    for bad in (0, 5, "big", 2.5, True):
        with pytest.raises(ValueError, match="chunks must be"):
            scene.load(data_dir, quiet=True, chunks=bad)


def test_auto_chunks_follow_the_memory_limit(data_dir, monkeypatch, capsys):
    assert not scene.load(data_dir, quiet=True).is_lazy  # the sample: 8 MB per index
    monkeypatch.setattr(scene.config, "IN_MEMORY_MAX_BYTES", 10 * 2**20)
    sc = scene.load(data_dir, quiet=True, indices=["NDVI", "NBR"])
    assert sc.is_lazy and sc.stack("NDVI").data.chunksize[1:] == (200, 200)
    assert "opened lazily in 512 x 512 px chunks" in capsys.readouterr().out


def _summary(run):
    return {k: v for k, v in run.summary().items() if k not in TIMING_KEYS}


@pytest.mark.parametrize("folder, chunks, median_filter, mmu_mode", [
    ("sample", 61, False, "any"),
    ("sample", 37, True, "same_year"),
    ("warped", 45, False, "any"),
])
def test_landtrendr_block_by_block_equals_in_memory(request, data_dir, tmp_path, folder, chunks, median_filter,
                                                    mmu_mode):
    root = data_dir if folder == "sample" else request.getfixturevalue("warped")
    mem, lazy, _, _ = _load_both(root, chunks, indices=["NDVI", "NBR", "TCW"])
    kw = dict(loss=params.ChangeMapParams.loss(150, mmu=11, mmu_mode=mmu_mode),
              gain=params.ChangeMapParams.gain(300, mmu=4, mmu_mode=mmu_mode), median_filter=median_filter)
    ref = landtrendr.fit_scene(mem, **kw)
    run = landtrendr.fit_scene(lazy, output_dir=tmp_path / "blocks", **kw)
    scenes.outputs_equal(ref.write(tmp_path / "memory"), run.files)
    assert _summary(run) == _summary(ref)
    assert run.summary()["block_wise"] and run.example_pixel() == ref.example_pixel()
    # the run's maps and fitted stacks are read lazily from what it wrote
    assert blocks.is_lazy(run.loss["yod"]) and blocks.is_lazy(run.fitted["NBR"])
    np.testing.assert_array_equal(np.asarray(run.loss["mag"]), ref.loss["mag"])


def test_a_chunked_scene_needs_an_output_dir(data_dir):
    lazy = scene.load(data_dir, quiet=True, chunks=100, indices=["NDVI"])
    with pytest.raises(ValueError, match="needs output_dir"):
        landtrendr.fit_scene(lazy)


@pytest.mark.parametrize("mode", ["any", "same_year"])
@pytest.mark.parametrize("mmu", [2, 6, 11])
def test_mmu_with_a_halo_is_exact(mode, mmu):
    """Random patches, long thin ones crossing many chunk borders, chunks of 16 px."""
    import dask.array as da

    rng = np.random.default_rng(mmu)
    yod = np.where(rng.random((90, 77)) < 0.45, rng.integers(2000, 2003, (90, 77)), np.nan).astype(np.float32)
    yod[40, :] = 2001  # a row patch through every chunk
    bands = {b: yod.copy() for b in change.CHANGE_BANDS}
    ref = change._apply_mmu(bands, mmu, mode)
    stacked = da.from_array(np.stack([bands[b] for b in change.CHANGE_BANDS]), chunks=(6, 16, 16))
    out = chunked.mmu_blocks(stacked, mmu, mode).compute()
    np.testing.assert_array_equal(out[0], ref["yod"])
    assert np.isfinite(ref["yod"]).sum() > 0 and np.isfinite(ref["yod"]).sum() < np.isfinite(yod).sum()


def test_interrupted_write_leaves_the_old_file(tmp_path):
    """A block failing mid-run: no new file appears, an old one is kept byte for byte, no temporary is left."""
    import dask.array as da

    grid = io.Grid(rasterio.crs.CRS.from_epsg(32612), rasterio.Affine(30, 0, 0, 0, -30, 0), 64, 64)
    target = tmp_path / "out.tif"
    io.write_raster(target, np.ones((64, 64), np.float32), grid)
    before = target.read_bytes()

    def boom(block, block_info=None):
        if block_info[0]["chunk-location"] == (1, 1):
            raise RuntimeError("disk full")
        return block

    data = da.zeros((64, 64), np.float32, chunks=16).map_blocks(boom, dtype=np.float32)
    with pytest.raises(RuntimeError, match="disk full"):
        blocks.write_rasters([dict(path=target, data=data, grid=grid), dict(path=tmp_path / "new.tif", data=data,
                                                                             grid=grid)], progress=False)
    assert target.read_bytes() == before and not (tmp_path / "new.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_block_writes_are_tiled_with_overviews(tmp_path):
    grid = io.Grid(rasterio.crs.CRS.from_epsg(32612), rasterio.Affine(30, 0, 0, 0, -30, 0), 700, 600)
    data = np.arange(700 * 600, dtype=np.float32).reshape(700, 600) % 997
    path = blocks.write_raster(tmp_path / "m.tif", data, grid, band_names=["v"], dtype="int16", nodata=-1,
                               progress=False)
    with rasterio.open(path) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256) and src.overviews(1) == [2, 4]
        assert src.descriptions == ("v",) and src.compression.name == "deflate"
        np.testing.assert_array_equal(src.read(1), data.astype(np.int16))
    # scratch outputs: no compression, no overviews, the same values
    spec = dict(path=tmp_path / "raw.tif", data=data, grid=grid, dtype="float32", compress=None, overviews=False)
    blocks.write_rasters([spec], progress=False)
    with rasterio.open(tmp_path / "raw.tif") as src:
        assert src.compression is None and src.overviews(1) == [] and src.block_shapes[0] == (256, 256)
        np.testing.assert_array_equal(src.read(1), data)


def test_landtrendr_on_a_distributed_cluster(data_dir, tmp_path):
    """The same run on a dask.distributed LocalCluster of 2 worker processes, by its address."""
    from distributed import LocalCluster

    lazy = scene.load(data_dir, quiet=True, chunks=100, indices=["NDVI", "NBR"])
    mem = scene.load(data_dir, quiet=True, chunks=None, indices=["NDVI", "NBR"])
    ref = landtrendr.fit_scene(mem)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        client = blocks.connect(cluster.scheduler_address)
        try:
            assert len(client.scheduler_info()["workers"]) == 2
            run = landtrendr.fit_scene(lazy, output_dir=tmp_path / "cluster")
            # both workers took blocks
            assert len({w for w, n in client.run(lambda: 1).items()}) == 2
        finally:
            client.close()
            blocks.connect()
    scenes.outputs_equal(ref.write(tmp_path / "memory"), run.files)


def test_connect_refuses_a_bad_address():
    with pytest.raises(ValueError, match="dask_address must be"):
        blocks.connect("")
    with pytest.raises(ConnectionError, match="no dask scheduler answered"):
        blocks.connect("tcp://127.0.0.1:9", timeout="2s")

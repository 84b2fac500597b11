"""Large test scenes on disk, generated block by block with a fixed seed (for bench_scale.py).

A scene of ``size`` x ``size`` px is a mosaic of 200 x 200 px tiles of the bundled sample (its
51-year NDVI and NBR with the sample's gaps, spikes, MSS noise and disturbances), each tile
flipped and transposed at random and given its own noise (sd 8, index x 1000), so no two
pixels repeat a series and LandTrendr works as hard as on the sample. Blocks are generated
and written one by one (ltlib.blocks): a 7,000 x 7,000 scene is built in a few GB.

    python benchmarks/scale_scene.py /tmp/scene7k --size 7000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ltlib import blocks, config, io, scene  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
NOISE_SD = 8.0  # index x 1000


def _tile_block(block_info=None, *, source, seed, tile):
    """One (T, h, w) block: sample tiles, each flipped/transposed and noised by its own seed."""
    info = block_info[None]
    (y0, y1), (x0, x1) = info["array-location"][1:]
    T = source.shape[0]
    out = np.empty((T, y1 - y0, x1 - x0), np.float32)
    for ty in range(y0 // tile, (y1 - 1) // tile + 1):
        for tx in range(x0 // tile, (x1 - 1) // tile + 1):
            rng = np.random.default_rng([seed, ty, tx])
            t = source
            if rng.random() < 0.5:
                t = t.transpose(0, 2, 1)
            t = t[:, :: rng.choice((-1, 1)), :: rng.choice((-1, 1))]
            t = t + rng.normal(0, NOISE_SD, t.shape).astype(np.float32)
            # the part of this tile inside the block
            r0, r1 = max(y0, ty * tile), min(y1, (ty + 1) * tile)
            c0, c1 = max(x0, tx * tile), min(x1, (tx + 1) * tile)
            out[:, r0 - y0:r1 - y0, c0 - x0:c1 - x0] = t[:, r0 - ty * tile:r1 - ty * tile,
                                                         c0 - tx * tile:c1 - tx * tile]
    return out


def scene_grid(size: int) -> io.Grid:
    """The sample's grid (UTM 12N, 30 m) grown to ``size`` x ``size`` px from its corner."""
    g = scene.load(SAMPLE, quiet=True, chunks=None).grid
    return io.Grid(g.crs, g.transform, size, size)


def write_scene(folder, size: int, *, indices=("NDVI", "NBR"), seed: int = 0, chunks: int = blocks.CHUNK_PX,
                progress: bool = False) -> Path:
    """Write ``folder/landsat/<index>.tif`` (int16 x 1000, 51 years) of a ``size`` px square
    scene; returns ``folder``. Existing files of the same size and seed are kept."""
    import dask.array as da

    folder = Path(folder)
    sample = scene.load(SAMPLE, indices=list(indices), quiet=True, chunks=None)
    grid = scene_grid(size)
    tile = sample.grid.height
    specs = []
    for k, name in enumerate(indices):
        path = folder / "landsat" / f"{name.lower()}.tif"
        if path.exists():
            with io.open_geotiff(path) as src:
                if src.width == size and src.tags().get("bench_seed") == str(seed):
                    continue
        src = sample.stack(name).data  # NaN gaps stay NaN under the noise
        data = da.map_blocks(_tile_block, dtype=np.float32,
                             chunks=da.core.normalize_chunks((len(sample.years), chunks, chunks),
                                                             (len(sample.years), size, size)),
                             source=src, seed=[seed, k], tile=tile)
        spec = blocks.stack_spec(path, data, sample.years, grid, name=name, scale=config.INDICES[name].scale)
        spec["tags"]["bench_seed"] = seed
        specs.append(spec)
    if specs:
        blocks.write_rasters(specs, progress=progress)
    return folder


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t = time.perf_counter()
    write_scene(a.folder, a.size, seed=a.seed, progress=True)
    print(f"{a.folder}: {a.size} x {a.size} px in {time.perf_counter() - t:.0f} s")


if __name__ == "__main__":
    main()

"""scene._stack_stats: the band-by-band numpy pass gives the numbers of the streamed dask pass."""
import dask.array as da
import numpy as np
import pytest

from ltlib import blocks, scene


@pytest.mark.parametrize("fill", [None, -32768])
@pytest.mark.parametrize("case", ["values", "all_missing", "one_band_missing"])
def test_numpy_stats_equal_the_dask_stats(fill, case):
    rng = np.random.default_rng(0)
    a = rng.normal(0, 500, (7, 30, 40)).astype(np.float32)
    a[a > 900] = np.nan
    a[0, 0, :5] = -32768
    a[2, 1, 1], a[2, 1, 2] = np.inf, -np.inf
    if case == "all_missing":
        a[:] = np.nan
    elif case == "one_band_missing":
        a[3] = np.nan
    ref = scene._stack_stats(da.from_array(a, chunks=(7, 16, 16)), fill)
    got = scene._stack_stats(a, fill)
    assert set(got) == set(ref)
    for k in ref:
        np.testing.assert_array_equal(np.asarray(got[k]), np.asarray(ref[k]), err_msg=k)
    if case == "values":
        assert int(got["n_fill"]) == (5 if fill is not None else 0)
        assert float(got["min"]) == (np.nanmin(a[np.isfinite(a) & (a != -32768)]) if fill else -32768)


def test_is_lazy_without_importing_dask_for_numpy():
    assert not blocks.is_lazy(np.zeros(3)) and blocks.is_lazy(da.zeros(3))

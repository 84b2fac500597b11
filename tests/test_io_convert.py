"""io._to_dtype, the float -> int16/uint8/float32 conversion of every write: chunked, and the
same values and errors as the whole-array numpy conversion it replaced (kept here as the
reference)."""
import numpy as np
import pytest

from ltlib import io

MIN_RANGE = io.MIN_RANGE_FOR_ROUNDING


def reference(data, dtype, nodata, path=None, *, check_rounding=True):
    """The whole-array conversion ltlib used before (ltlib/io.py up to issue 31)."""
    out = np.asarray(data, dtype=np.float64)
    missing = ~np.isfinite(out)
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(dtype)
        if missing.any() and nodata is None:
            raise ValueError("nodata")
        finite = out[~missing]
        if check_rounding and finite.size and np.ptp(finite) < MIN_RANGE and np.any(finite != np.rint(finite)):
            raise ValueError("not whole numbers")
        vals = np.rint(np.where(missing, 0, out))
        bad = (vals < info.min) | (vals > info.max)
        if nodata is not None:
            bad |= (vals == nodata) & ~missing
        if np.any(bad & ~missing):
            raise ValueError(f"{int(np.sum(bad & ~missing))} values do not fit")
        vals = np.where(missing, nodata if nodata is not None else 0, vals)
        return vals.astype(dtype)
    vals = out.astype(dtype)
    if nodata is not None and missing.any():
        vals[missing] = nodata
    return vals


def _both(data, dtype, nodata, **kw):
    try:
        ref = reference(data, dtype, nodata, **kw)
    except ValueError as e:
        with pytest.raises(ValueError, match=str(e).split(" values")[0] if "fit" in str(e) else str(e)):
            io._to_dtype(data, dtype, nodata, **kw)
        return None
    got = io._to_dtype(data, dtype, nodata, **kw)
    assert got.dtype == np.dtype(dtype) and got.shape == np.shape(data)
    np.testing.assert_array_equal(got, ref)
    return got


@pytest.mark.parametrize("src", [np.float32, np.float64])
@pytest.mark.parametrize("dtype,nodata", [("int16", -32768), ("int16", None), ("uint8", 255), ("float32", np.nan),
                                          ("float32", -9999.0), ("int32", -2147483648)])
def test_same_values_as_whole_array_conversion(src, dtype, nodata, monkeypatch):
    monkeypatch.setattr(io, "_CONVERT_CHUNK", 1000)  # several chunks and a partial last one
    rng = np.random.default_rng(3)
    a = rng.normal(0, 800, (5, 31, 67)).astype(src)
    a[rng.random(a.shape) < 0.05] = np.nan
    a[0, 0, :3] = [0.5, 1.5, -2.5]  # ties: rint rounds half to even
    if dtype == "uint8":
        a = np.abs(a) % 250
    got = _both(a, dtype, nodata)
    if nodata is not None and not np.isnan(nodata):
        assert np.all(got[np.isnan(a)] == nodata)
    b = np.where(np.isnan(a), 0, a)
    _both(b, dtype, nodata)
    _both(a[:, ::2, 1::3], dtype, nodata)  # not contiguous


@pytest.mark.parametrize("case", ["out_of_range", "nodata_value", "small_range", "inf", "all_missing", "empty"])
def test_same_errors_and_edge_cases(case, monkeypatch):
    monkeypatch.setattr(io, "_CONVERT_CHUNK", 7)
    a = np.linspace(-500, 500, 60, dtype=np.float32).reshape(3, 4, 5)
    if case == "out_of_range":
        a[2, 3, 4] = 40000
        with pytest.raises(ValueError, match="1 values do not fit int16"):
            io._to_dtype(a, "int16", -32768, "x.tif")
    elif case == "nodata_value":
        a[1, 1, 1] = -32768
        with pytest.raises(ValueError, match="x.tif: 1 values do not fit"):
            io._to_dtype(a, "int16", -32768, "x.tif")
    elif case == "small_range":
        a = a / 1000  # physical NDVI by mistake
        with pytest.raises(ValueError, match="not whole numbers and would be rounded"):
            io._to_dtype(a, "int16", -32768, "x.tif")
        _both(a, "int16", -32768, check_rounding=False)  # block-wise writes round them
    elif case == "inf":
        a[0, 0, 0], a[0, 0, 1] = np.inf, -np.inf  # infinite = missing, as before
        assert list(_both(a, "int16", -32768)[0, 0, :2]) == [-32768, -32768]
        with pytest.raises(ValueError, match="NaN but no nodata"):
            io._to_dtype(a, "int16", None, "x.tif")
    elif case == "all_missing":
        a[:] = np.nan
        assert np.all(_both(a, "int16", -32768) == -32768)
    else:
        assert _both(np.zeros((2, 0, 3), np.float32), "int16", -32768).shape == (2, 0, 3)


def test_bool_and_int_input():
    m = np.random.default_rng(0).random((3, 40, 40)) > 0.5
    assert _both(m, "uint8", None).sum() == m.sum()
    i = np.arange(-100, 100, dtype=np.int64).reshape(2, 10, 10)
    _both(i, "int16", -32768)
    _both(i, "float32", np.nan)

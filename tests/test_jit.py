"""ltlib.jit: the numba on-disk cache never stops ltlib (no writable folder, corrupt files)."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MODULE = textwrap.dedent("""
    from ltlib.jit import njit

    @njit()
    def triple(x):
        return 3 * x
""")

RUN = "import warnings, sys; warnings.simplefilter('always'); sys.path.insert(0, {d!r}); import mod; print(mod.triple(14))"


def _run(code, env_extra, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("NUMBA_CACHE_DIR", None)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=cwd)


def test_corrupt_cache_file_is_compiled_again(tmp_path):
    (tmp_path / "mod.py").write_text(MODULE)
    cache = tmp_path / "cache"
    env = {"NUMBA_CACHE_DIR": str(cache)}
    first = _run(RUN.format(d=str(tmp_path)), env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "42"
    files = list(cache.rglob("*.nbc"))
    assert files, "the first start wrote no cache file"
    for f in files:
        f.write_bytes(b"\x80\x04garbage" * 3)
    second = _run(RUN.format(d=str(tmp_path)), env)
    assert second.returncode == 0, second.stderr  # plain numba raises UnpicklingError here
    assert second.stdout.strip() == "42"
    assert "could not be read" in second.stderr and "compiling it again" in second.stderr
    third = _run(RUN.format(d=str(tmp_path)), env)  # the entry was rewritten: a clean load
    assert third.stdout.strip() == "42" and "could not be read" not in third.stderr


def test_no_writable_cache_folder_compiles_without_cache(tmp_path):
    """A read-only install and home: plain numba refuses to import a module with cache=True."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    env = {"NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator,UserWideCacheLocator",
           "NUMBA_CACHE_DIR": str(blocker / "numba"), "XDG_CACHE_HOME": str(blocker / "cache"),
           "HOME": str(blocker)}
    code = ("import warnings; warnings.simplefilter('always'); import ltlib.landtrendr.kernels as k; "
            "from numba.core.caching import NullCache; print(isinstance(k._segment_all._cache, NullCache))")
    res = _run(code, env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "True"
    assert "no writable cache folder" in res.stderr and "NUMBA_CACHE_DIR" in res.stderr


def test_cache_available_follows_numba_locators(tmp_path, monkeypatch):
    import numba

    from ltlib import jit

    def f(x):
        return x

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setattr(numba.config, "CACHE_LOCATOR_CLASSES", "UserProvidedCacheLocator")
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(blocker / "numba"))
    assert not jit.cache_available(f)
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))
    assert jit.cache_available(f)

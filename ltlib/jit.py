"""numba compilation with an on-disk cache that can never stop ltlib from running.

Compiling the LandTrendr kernels takes 25-60 s on two cores; numba's on-disk cache
(``cache=True``) turns that into under a second from the second interpreter start on (the
measurements are in ``benchmarks/bench_first_use.py``). numba looks for the cache folder in
this order: ``NUMBA_CACHE_DIR`` when the user set it, ``__pycache__`` beside the module when
it is writable (a user's own install), then the user-wide cache folder
(``~/.cache/numba``, ``$XDG_CACHE_HOME/numba``; a shared read-only install). :func:`njit`
keeps that order and adds what numba lacks:

- no writable folder at all (a read-only package and home): numba refuses to *import* the
  module (``RuntimeError: cannot cache function``); here the kernels are compiled without a
  cache, with a warning saying how to get one;
- a cache file that cannot be read (truncated, corrupt) or written (a full disk, a folder
  made read-only after the start): numba raises on the call; here the kernel is compiled
  again, with a warning, and the result is the same.
"""
from __future__ import annotations

import warnings

import numba as nb


def _cache_class():
    """numba's cache of compiled functions, made tolerant of unreadable and unwritable files
    (None when this numba version does not have the internals it relies on)."""
    try:
        from numba.core.caching import FunctionCache
    except ImportError:  # pragma: no cover - numba moved its internals
        return None

    class SafeFunctionCache(FunctionCache):
        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception as e:  # any unreadable cache entry: compile as without a cache
                warnings.warn(f"numba cache of {self._name} in {self._cache_path} could not be read "
                              f"({type(e).__name__}: {e}); compiling it again", RuntimeWarning, stacklevel=2)
                return None

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception as e:  # the compiled kernel works; only the next start compiles again
                warnings.warn(f"numba cache of {self._name} could not be written to {self._cache_path} "
                              f"({type(e).__name__}: {e}); the next start compiles it again",
                              RuntimeWarning, stacklevel=2)

    return SafeFunctionCache


_SAFE_CACHE = _cache_class()
_NO_CACHE_WARNED = []


def cache_available(py_func) -> bool:
    """Whether numba finds a writable cache folder for ``py_func`` (a plain Python function),
    by numba's own rules (``NUMBA_CACHE_DIR``, beside the module, the user-wide folder)."""
    if _SAFE_CACHE is None:  # pragma: no cover
        return True
    try:
        _SAFE_CACHE(py_func)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return False
    return True


def njit(**options):
    """``numba.njit(cache=True, **options)`` that degrades to compiling without a cache (see the
    module docstring) instead of failing."""

    def decorate(py_func):
        if not cache_available(py_func):
            if not _NO_CACHE_WARNED:
                _NO_CACHE_WARNED.append(True)
                warnings.warn(
                    f"numba finds no writable cache folder for {py_func.__module__} (not beside the module, "
                    "nor in the user's cache folder): the kernels are compiled at every start (25-60 s). "
                    "Set NUMBA_CACHE_DIR to a writable folder to keep them", RuntimeWarning, stacklevel=2)
            return nb.njit(cache=False, **options)(py_func)
        dispatcher = nb.njit(cache=True, **options)(py_func)
        if _SAFE_CACHE is not None:
            dispatcher._cache = _SAFE_CACHE(py_func)
        return dispatcher

    return decorate

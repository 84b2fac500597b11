"""Layers that import one way (issue #27 point 2): the import-linter contracts of pyproject.toml
hold, and no import cycle beyond the ones #27 still has to break appears."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("importlinter")
grimp = pytest.importorskip("grimp")

# Cycles between top-level ltlib modules still there; #27 point 2 removes them one by one.
# A new cycle fails; a removed one fails too, so this list shrinks with the code.
KNOWN_CYCLES = {
    ("ltlib.blocks", "ltlib.io"),          # io.read_raster(chunks=) calls blocks.open_raster
    ("ltlib.gee", "ltlib.landtrendr"),     # gee.parity checks landtrendr; landtrendr.run reads gee exports
}


def _lint_env():
    # This checkout first (not the editable install the venv may point at).
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-c",
                                              "import sys; from importlinter.cli import lint_imports_command; "
                                              "sys.exit(lint_imports_command())"]
    out = subprocess.run(cmd + ["--no-cache"], cwd=ROOT, env=_lint_env(), capture_output=True, text=True,
                         timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "Contracts: 3 kept, 0 broken." in text, text


def test_no_new_import_cycles():
    # Both module-level and function-level imports count (as they do for import-linter).
    code = ("import grimp, itertools; g = grimp.build_graph('ltlib', cache_dir=None); "
            "tops = sorted(m for m in g.modules if m.count('.') == 1); "
            "print('\\n'.join(f'{a} {b}' for a, b in itertools.combinations(tops, 2) "
            "if g.chain_exists(a, b, as_packages=True) and g.chain_exists(b, a, as_packages=True) "
            "and g.direct_import_exists(importer=a, imported=b, as_packages=True) "
            "and g.direct_import_exists(importer=b, imported=a, as_packages=True)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_lint_env(), capture_output=True, text=True,
                         timeout=300, check=True)
    found = {tuple(line.split()) for line in out.stdout.splitlines() if line.strip()}
    assert found == KNOWN_CYCLES


def test_tab10_matches_matplotlib():
    # config.TAB10 replaces matplotlib's tab10 in cluster.run (science without matplotlib).
    matplotlib = pytest.importorskip("matplotlib")
    from ltlib import config

    palette = matplotlib.colormaps["tab10"]
    assert config.TAB10 == tuple(matplotlib.colors.to_hex(palette(j)) for j in range(10))

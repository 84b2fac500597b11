"""Colab: one cell in every notebook, an install that keeps the runtime's torch, and dependency
ranges that resolve with wheels on Python 3.11, 3.12 and 3.13 (marker ``network``: needs PyPI)."""
from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest

from ltlib import colab, config

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _colab_cells():
    cells = {}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        found = [c.source for c in nb.cells if c.cell_type == "code" and "google.colab" in c.source]
        assert len(found) == 1, f"{path.name}: {len(found)} Colab cells, expected one"
        cells[path.name] = found[0]
    return cells


def test_colab_cells_are_identical_and_clone_the_configured_repository():
    cells = _colab_cells()
    assert len(cells) == 5
    assert len(set(cells.values())) == 1, f"Colab cells differ: {sorted(cells)}"
    cell = next(iter(cells.values()))
    clones = re.findall(r"!git clone --depth 1 (\S+) /content/ltlib", cell)
    assert clones == [config.REPOSITORY_URL]
    assert "python -m ltlib.colab" in cell  # the install that keeps Colab's torch
    assert "pip install" not in cell  # no install of the pinned or [all] set past ltlib.colab


def _extras():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["optional-dependencies"]


def _names(requirements, extras):
    """Project names a list of requirements brings in, following ltlib[...] self-references."""
    out = set()
    for r in requirements:
        inner = re.fullmatch(r"ltlib\[([^\]]+)\]", r)
        if inner:
            for extra in inner.group(1).split(","):
                out |= _names(extras[extra.strip()], extras)
        else:
            out.add(colab._name(r))
    return out


def test_colab_extra_is_dl_without_the_torch_family_plus_the_rest():
    extras = _extras()
    dl, col = _names(extras["dl"], extras), _names(extras[colab.EXTRA], extras)
    assert col.isdisjoint(colab.TORCH_FAMILY + colab.NO_DEPS)
    # every dl package reaches Colab: with deps, without deps (tsai) or from the runtime (torch)
    assert dl <= col | set(colab.TORCH_FAMILY) | set(colab.NO_DEPS)
    assert _names(extras["cluster"] + extras["gee"], extras) <= col
    assert "jupyterlab" not in col  # Colab is the front end


def test_install_keeps_the_runtime_torch_or_stops(monkeypatch, tmp_path):
    """install() pins the runtime's torch for every pip call and refuses a changed torch."""
    calls = []

    def run(command, check):
        pins = command[command.index("-c") + 1]
        calls.append((command, Path(pins).read_text()))

    monkeypatch.setattr(colab.subprocess, "run", run)
    monkeypatch.setattr(colab, "runtime_pins", lambda: ["torch==2.9.1", "torchvision==0.24.1"])
    colab.install(ROOT)
    assert len(calls) == 2 and all(text == "torch==2.9.1\ntorchvision==0.24.1\n" for _, text in calls)
    versions = iter([["torch==2.9.1"], ["torch==2.14.1"]])
    monkeypatch.setattr(colab, "runtime_pins", lambda: next(versions))
    with pytest.raises(RuntimeError, match=r"torch family changed.*2\.9\.1.*2\.14\.1"):
        colab.install(ROOT)


def test_install_commands_pin_the_runtime_torch_and_install_tsai_without_deps(tmp_path):
    pins = tmp_path / "pins.txt"
    first, second = colab.install_commands(ROOT, pins, python="/usr/bin/python3")
    assert first[:3] == ["/usr/bin/python3", "-m", "pip"]
    assert first[-2:] == ["-e", f"{ROOT}[colab]"] and ["-c", str(pins)] == first[5:7]
    assert "--no-deps" in second and ["-c", str(pins)] == second[5:7]
    assert [a for a in second if a.startswith("tsai")] == ["tsai>=1.0.1,<2"]  # the range in pyproject


def test_runtime_pins_name_installed_versions_and_skip_missing():
    pins = colab.runtime_pins(("pytest", "no-such-package-ltlib"))
    assert pins == [f"pytest=={pytest.__version__}"]


def test_no_deps_requirement_missing_from_pyproject_is_an_error(tmp_path):
    bad = tmp_path / "pyproject.toml"
    bad.write_text('[project.optional-dependencies]\ndl = ["torch>=2.2"]\n')
    with pytest.raises(ValueError, match=r"pyproject.toml.*'dl' extra.*tsai"):
        colab.no_deps_requirements(bad)


def _dry_run(python_version: str, target: Path, *args: str) -> tuple[dict[str, str], float]:
    """Resolve ``args`` for ``python_version`` with wheels only, install nothing: {name: version}."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
               "--python-version", python_version, "--only-binary=:all:", "--target", str(target),
               "--disable-pip-version-check", *args]
    start = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - start
    assert done.returncode == 0, f"Python {python_version}: {' '.join(args)} does not resolve:\n{done.stderr[-3000:]}"
    line = next(l for l in done.stdout.splitlines() if l.startswith("Would install "))
    versions = dict(w.rsplit("-", 1) for w in line.split()[2:])
    return {colab._name(k): v for k, v in versions.items()}, seconds


@pytest.mark.network
@pytest.mark.parametrize("python_version", ["3.11", "3.12", "3.13"])
def test_all_extras_resolve_with_wheels(python_version, tmp_path):
    versions, seconds = _dry_run(python_version, tmp_path, ".[all]")
    print(f"Python {python_version}: {len(versions)} packages resolve in {seconds:.0f} s")
    for name in ("ltlib", "torch", "tsai", "geemap", "numba", "rasterio", "jupyterlab", "selenium"):
        assert name in versions, f"{name} missing from the Python {python_version} resolution"


@pytest.mark.network
def test_colab_extra_keeps_an_older_runtime_torch(tmp_path):
    """Colab's step 1 resolves on 3.12 with a runtime torch older than tsai's minimum (2.12)."""
    pins = tmp_path / "pins.txt"
    pins.write_text("torch==2.9.1\ntorchvision==0.24.1\n")
    versions, _ = _dry_run("3.12", tmp_path / "t", "-c", str(pins), f".[{colab.EXTRA}]")
    assert versions.get("torch") == "2.9.1" and "tsai" not in versions

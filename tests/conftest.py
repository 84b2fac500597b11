"""Shared fixtures: the sample data, and notebooks executed once per test session."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "sample"
NOTEBOOKS = ROOT / "notebooks"

# Offline Earth Engine fixtures live in tests/ee_offline.py; importing them here makes them
# available to every test module.
if (Path(__file__).parent / "ee_offline.py").exists():
    from .ee_offline import *  # noqa: F401,F403


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def notebook_names() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(name: str, out_dir, **parameters) -> dict:
    """Execute ``notebooks/<name>.ipynb`` with papermill into ``out_dir``; returns its summary.json.

    A notebook that stops raises papermill's ``PapermillExecutionError`` (its ``evalue`` is the
    message); ``<out_dir>/summary.json`` is still read by the caller when it exists.
    """
    import papermill as pm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out_dir / f"{name}.ipynb"),
                        parameters={"output_dir": str(out_dir), **parameters}, cwd=str(NOTEBOOKS),
                        kernel_name="python3", progress_bar=False)
    summary = json.loads((out_dir / "summary.json").read_text())
    summary["_output_dir"] = str(out_dir)
    return summary


@pytest.fixture(scope="session")
def notebook_outputs(tmp_path_factory) -> Path:
    """Root of the outputs written by notebooks executed in this session."""
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="session")
def executed_notebook(notebook_outputs):
    """``run(name) -> summary dict``: executes a notebook with papermill on the sample.

    Earlier notebooks run first (once each per session), so a notebook sees its
    predecessors' outputs in ``<outputs root>/<name>/`` as it would after ``make demo``.
    """
    import papermill as pm

    done: dict[str, dict] = {}

    def run(name: str) -> dict:
        if name in done:
            return done[name]
        names = notebook_names()
        if name not in names:
            raise FileNotFoundError(f"no notebook {name}.ipynb in {NOTEBOOKS}")
        for earlier in names[: names.index(name)]:
            run(earlier)
        out_dir = notebook_outputs / name
        out_dir.mkdir(parents=True, exist_ok=True)
        pm.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            str(out_dir / f"{name}.ipynb"),
            parameters={"data_dir": str(DATA), "output_dir": str(out_dir)},
            cwd=str(NOTEBOOKS),
            kernel_name="python3",
            progress_bar=False,
        )
        summary_path = out_dir / "summary.json"
        if not summary_path.exists():
            raise AssertionError(f"{name} did not write {summary_path}")
        done[name] = json.loads(summary_path.read_text())
        done[name]["_output_dir"] = str(out_dir)
        return done[name]

    os.environ.setdefault("MPLBACKEND", "Agg")
    return run

"""Install ltlib on Google Colab beside the runtime's own torch: ``python -m ltlib.colab``.

Colab runs Python 3.12 or newer and ships torch, torchvision, fastai, numpy and most of the
scientific stack. This project's exact set (requirements/constraints.txt, Python 3.11) would
replace several GB of it, so the notebooks' Colab cell runs this module from the clone instead:

1. ``pip install -e <repo>[colab]`` with the runtime's torch-family versions as constraints: pip
   installs only what the runtime lacks and keeps its torch (or stops with a conflict that names
   it, instead of replacing it). The ``colab`` extra is what the notebooks need there, without
   the torch family, JupyterLab and papermill.
2. The packages in :data:`NO_DEPS` (tsai), with their range from the ``dl`` extra, without their
   dependencies: tsai declares ``torch>=2.12`` and would otherwise upgrade an older runtime torch.
   Its other needs are listed in the ``colab`` extra.
3. A check that the torch-family versions are the ones the runtime had.

Standard library only (and nothing else from ltlib): it runs before the package's
dependencies are installed.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

#: Packages a runtime brings with a matching CUDA build; never installed or replaced here.
TORCH_FAMILY = ("torch", "torchvision", "torchaudio")
#: Installed without dependencies (their torch lower bound is newer than some runtimes' torch).
NO_DEPS = ("tsai",)
#: The extra installed with dependencies on Colab.
EXTRA = "colab"


def _name(requirement: str) -> str:
    """Normalised project name of a PEP 508 requirement string ('tsai>=1,<2' -> 'tsai')."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_pins(names: tuple[str, ...] = TORCH_FAMILY) -> list[str]:
    """``name==version`` for each of ``names`` installed in this Python (absent ones left out)."""
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def no_deps_requirements(pyproject: Path) -> list[str]:
    """The ``dl`` extra's requirements for the packages in :data:`NO_DEPS`, ranges as written."""
    with open(pyproject, "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    found = [r for r in extras["dl"] if _name(r) in NO_DEPS]
    missing = set(NO_DEPS) - {_name(r) for r in found}
    if missing:
        raise ValueError(f"{pyproject}: the 'dl' extra has no requirement for {sorted(missing)}")
    return found


def install_commands(repo: Path, pins_file: Path, python: str = sys.executable) -> list[list[str]]:
    """The pip commands, in order, that install ltlib from ``repo`` keeping ``pins_file``'s versions.

    Parameters
    ----------
    repo : Path
        The cloned repository (holds pyproject.toml).
    pins_file : Path
        A pip constraints file with the runtime's torch-family versions (:func:`runtime_pins`).
    python : str
        The interpreter whose pip installs.
    """
    pip = [python, "-m", "pip", "install", "-q", "-c", str(pins_file)]
    return [
        pip + ["-e", f"{repo}[{EXTRA}]"],
        pip + ["--no-deps"] + no_deps_requirements(repo / "pyproject.toml"),
    ]


def install(repo: Path) -> None:
    """Install ltlib from ``repo`` into this Python, keeping its torch family (module docstring)."""
    repo = Path(repo).resolve()
    before = runtime_pins()
    with tempfile.TemporaryDirectory() as tmp:
        pins_file = Path(tmp) / "runtime_torch.txt"
        pins_file.write_text("".join(p + "\n" for p in before))
        for command in install_commands(repo, pins_file):
            print("$", " ".join(command[2:]), flush=True)
            subprocess.run(command, check=True)
    after = runtime_pins()
    if after != before:
        raise RuntimeError(f"the runtime's torch family changed from {before} to {after}")
    print(f"ltlib installed from {repo}; kept the runtime's {', '.join(before) or 'no torch'}")


if __name__ == "__main__":
    install(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())

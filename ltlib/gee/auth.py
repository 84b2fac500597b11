"""Earth Engine credentials and initialisation: the only place that authenticates.

:func:`initialize` authenticates (Colab only) and initialises Earth Engine, time-boxed, and
says in one line why it could not; :func:`has_credentials` checks for a credentials file
without contacting any server.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import ee

# Whether (and for which project) ee.Initialize succeeded in this process.
_STATE: dict = {"initialized": False, "project": None}


def _in_colab() -> bool:
    return "google.colab" in sys.modules


def _credential_files() -> list[Path]:
    """Files that can hold Earth Engine / Google credentials on this machine."""
    paths = []
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        paths.append(Path(os.environ["GOOGLE_APPLICATION_CREDENTIALS"]))
    try:
        paths.append(Path(ee.oauth.get_credentials_path()))
    except Exception:  # noqa: BLE001 - a broken ee.oauth must not break the fallback
        pass
    cfg = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "gcloud")
    paths.append(Path(cfg) / "application_default_credentials.json")
    return paths


def has_credentials() -> bool:
    """True when a credentials file exists (does not contact any server)."""
    return any(p.is_file() for p in _credential_files())


def initialize(project=None, *, timeout: float = 60.0) -> bool:
    """Authenticate (Colab only) and initialise Earth Engine; return True when usable.

    ``project`` is the Google Cloud project; default ``EE_PROJECT`` from the environment.
    Without credentials (run ``earthengine authenticate`` once, or ``ee.Authenticate()``),
    prints one line saying so and returns False without touching the network, so notebooks
    fall back to the sample. ``ee.Initialize`` runs in a thread and is given ``timeout``
    seconds, so an unreachable server cannot hang a notebook.
    """
    project = project or os.environ.get("EE_PROJECT") or None
    if _STATE["initialized"] and (project is None or project == _STATE["project"]):
        return True
    if _in_colab():
        try:
            ee.Authenticate()  # the Colab flow: a pop-up in the notebook
        except Exception as err:  # noqa: BLE001
            print(f"Earth Engine authentication failed: {_first_line(err)}")
            return False
    elif not has_credentials():
        print("Earth Engine: no credentials found; run `earthengine authenticate` once "
              "(see docs/earth_engine.md)")
        return False
    result: dict = {}

    def _init():
        try:
            ee.Initialize(project=project)
            result["ok"] = True
        except Exception as err:  # noqa: BLE001
            result["error"] = err

    thread = threading.Thread(target=_init, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        print(f"Earth Engine did not answer within {timeout:.0f} s (no network?); not using it")
        return False
    if "error" in result:
        hint = "" if project else " (no Cloud project: pass ee_project=... or set EE_PROJECT)"
        print(f"Earth Engine initialisation failed: {_first_line(result['error'])}{hint}")
        return False
    _STATE.update(initialized=True, project=project)
    return True


def _first_line(err) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

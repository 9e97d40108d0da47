"""Where the compendium keeps its data, caches, models and figures.

Two layouts:

* **Source checkout** (``pyproject.toml`` beside the package, and the package either has a ``.git``
  beside it or is not under ``site-packages``): everything lives in the repository, as the
  notebooks expect -- ``data/cache`` for cached corpus frames, ``models/`` for trained models.
* **Installed package** (a wheel in ``site-packages``): nothing is ever written into the installed
  package. The cache goes to the user's cache folder and models to the user's data folder, as
  ``platformdirs`` defines them (on Linux ``~/.cache/qbdi`` and ``~/.local/share/qbdi/models``).

The environment variables ``QBDI_CACHE_DIR`` and ``QBDI_MODELS_DIR`` win in both layouts (tests use
them so they never touch a user's files).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "DATA_DIR", "QUERY_DIR", "FIGURES_DIR", "PACKAGE_DIR", "APP_NAME",
           "in_source_checkout", "cache_dir", "models_dir"]

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
DATA_DIR = REPO_ROOT / "data"
QUERY_DIR = DATA_DIR / "queries"
#: where the notebooks write their figures and tables: ``figures/`` of the checkout, or
#: ``QBDI_FIGURES_DIR`` when set (``make test`` sets it to a temporary folder, so a test run never
#: overwrites the committed figures with its smaller profile's).
FIGURES_DIR = Path(os.environ.get("QBDI_FIGURES_DIR") or REPO_ROOT / "figures")
APP_NAME = "qbdi"


def in_source_checkout(package_dir: str | Path | None = None) -> bool:
    """Whether the package runs from a source checkout (so data/cache and models/ are its own).

    True when ``pyproject.toml`` lies beside the package folder and either a ``.git`` lies there
    too or the package is not inside a ``site-packages``/``dist-packages`` folder.

    Args:
        package_dir: the ``qbdi_utils`` folder (default: this package's).

    Returns:
        bool.
    """
    pkg = Path(package_dir) if package_dir is not None else PACKAGE_DIR
    root = pkg.parent
    if not (root / "pyproject.toml").is_file():
        return False
    if (root / ".git").exists():
        return True
    return not any(part in ("site-packages", "dist-packages") for part in pkg.parts)


def _user_dir(kind: str) -> Path:
    import platformdirs

    if kind == "cache":
        return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "models"


def cache_dir() -> Path:
    """Folder for cached corpus frames.

    ``QBDI_CACHE_DIR`` if set; else ``data/cache`` in a source checkout; else the user's cache folder
    (``platformdirs.user_cache_dir("qbdi")``).

    Used in: notebooks/01_data_prep.ipynb (through the corpus loaders).
    """
    env = os.environ.get("QBDI_CACHE_DIR")
    if env:
        return Path(env)
    return DATA_DIR / "cache" if in_source_checkout() else _user_dir("cache")


def models_dir() -> Path:
    """Folder for trained models.

    ``QBDI_MODELS_DIR`` if set; else ``models/`` in a source checkout; else ``models`` in the user's
    data folder (``platformdirs.user_data_dir("qbdi")``).

    Used in: notebooks/02_vae_training.ipynb (through the default model).
    """
    env = os.environ.get("QBDI_MODELS_DIR")
    if env:
        return Path(env)
    return REPO_ROOT / "models" if in_source_checkout() else _user_dir("models")

"""Where the compendium keeps its data, caches, models and figures.

All paths are relative to the repository root (the folder holding ``pyproject.toml``). The
environment variables ``QBDI_CACHE_DIR`` and ``QBDI_MODELS_DIR`` move the cache and the trained
models elsewhere (tests use this so they never touch a user's files).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
QUERY_DIR = DATA_DIR / "queries"
FIGURES_DIR = REPO_ROOT / "figures"


def cache_dir() -> Path:
    """Directory for cached corpus frames (``data/cache`` unless ``QBDI_CACHE_DIR`` is set)."""
    return Path(os.environ.get("QBDI_CACHE_DIR", DATA_DIR / "cache"))


def models_dir() -> Path:
    """Directory for trained models (``models/`` unless ``QBDI_MODELS_DIR`` is set)."""
    return Path(os.environ.get("QBDI_MODELS_DIR", REPO_ROOT / "models"))

"""Shared test set-up: tests never read or write the user's data/cache or models/."""

from __future__ import annotations

import os
import tempfile

import pytest

_TMP = tempfile.mkdtemp(prefix="qbdi-tests-")
os.environ.setdefault("QBDI_CACHE_DIR", os.path.join(_TMP, "cache"))
os.environ.setdefault("QBDI_MODELS_DIR", os.path.join(_TMP, "models"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def spec():
    """The paper's roll layout."""
    from qbdi_utils.pianoroll import RollSpec

    return RollSpec()

"""Tests of the run-time profile (qbdi_utils.profile): one environment variable, three profiles."""

from __future__ import annotations

import pytest

from qbdi_utils import profile
from qbdi_utils.errors import OptionError


def test_profile_reads_the_environment_and_defaults_to_quick(monkeypatch):
    monkeypatch.delenv("QBDI_PROFILE", raising=False)
    assert profile.current() == "quick" == profile.DEFAULT_PROFILE
    monkeypatch.setenv("QBDI_PROFILE", " Full ")
    assert profile.current() == "full"
    monkeypatch.setenv("QBDI_PROFILE", "")
    assert profile.current() == "quick"


def test_choose_picks_the_current_profile_s_value(monkeypatch):
    values = dict(ci=1, quick=2, full=3)
    for name, want in values.items():
        monkeypatch.setenv("QBDI_PROFILE", name)
        assert profile.choose(**values) == want
    assert profile.choose(**values, profile="ci") == 1


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("QBDI_PROFILE", "fast")
    with pytest.raises(OptionError, match="QBDI_PROFILE='fast' names no profile; use one of ci, quick, full"):
        profile.current()
    with pytest.raises(OptionError, match="unknown profile 'huge'"):
        profile.choose(ci=1, quick=2, full=3, profile="huge")

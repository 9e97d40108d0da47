"""Tests of the command line's warnings (once per run, --quiet, library warnings routed) and wording."""

from __future__ import annotations

import math
import warnings

from qbdi_utils.cli import messages
from qbdi_utils.errors import MeterError
from qbdi_utils.files import EXISTS_HINT


def test_a_warning_is_printed_once_per_run_and_never_under_quiet(capsys):
    messages.start_run("improvise", quiet=False)
    messages.warn("improvise", ["a", "b", "a"])
    warnings.warn("corpus cache not written (disk full)")  # a library warning, routed through warn
    warnings.warn("corpus cache not written (disk full)")
    err = capsys.readouterr().err.splitlines()
    assert err == ["qbdi improvise: warning: a", "qbdi improvise: warning: b",
                   "qbdi improvise: warning: corpus cache not written (disk full)"]
    messages.start_run("improvise", quiet=False)  # a new run: said again
    messages.warn("improvise", ["a"])
    assert capsys.readouterr().err == "qbdi improvise: warning: a\n"
    messages.start_run("sweep", quiet=True)
    messages.warn("sweep", ["a"])
    warnings.warn("something else")
    assert capsys.readouterr().err == ""


def test_library_advice_is_translated_to_options():
    meter = str(MeterError("meter 3/4 at step 0; only 4/4 is accepted here (pass meter=None to accept any meter)",
                           "w.mid"))
    assert "meter=None" in meter  # what the library says, for Python callers
    said = messages.cli_terms(meter)
    assert "meter=None" not in said and "--meter any" in said and said.startswith("w.mid: meter 3/4")
    said = messages.cli_terms(f"out.mid: {EXISTS_HINT}")
    assert said == "out.mid: exists; pass --force to overwrite it"


def test_silence_is_measured_against_the_corpus_rate():
    def fid(got, corpus=17.4):
        return {"onsets_per_bar": got, "corpus_onsets_per_bar": corpus, "empty_bar_rate": 0.5}

    share = messages.NEARLY_SILENT_SHARE
    assert messages.silence_warning(fid(0.0), 0, "query").startswith("the output has no notes")
    assert "--stats corpus" in messages.silence_warning(fid(0.0), 0, "query")
    just_below, just_above = 17.4 * share - 0.01, 17.4 * share + 0.01
    assert "nearly silent" in messages.silence_warning(fid(just_below), 64, "query")
    assert messages.silence_warning(fid(just_above), 64, "query") is None
    # an unknown corpus: only an output with no notes is flagged
    assert messages.silence_warning(fid(0.5, math.nan), 64, "query") is None
    assert messages.silence_warning(fid(0.0, math.nan), None, "query") is not None
    at_zero = messages.silence_warning(fid(0.0), 0, "query")
    assert "sends nothing" in at_zero and "--stats query" in at_zero
    # a --threshold the user gave is named as the cause instead
    high = messages.silence_warning(fid(0.0), 0, "query", threshold=0.99)
    assert "--threshold 0.99" in high and "--stats corpus" not in high
    # with the corpus statistics already in use, --stats corpus is not offered again
    assert "--stats corpus" not in messages.silence_warning(fid(0.0), 0, "corpus")

"""The typed converters of ``qbdi improvise`` / ``qbdi navigate``'s performance options.

``--velocity`` (:func:`velocity_option`), ``--tracks`` (:func:`tracks_option`), ``--programs``
(:func:`programs_option`, with :data:`QUERY_PROGRAMS` for the query's own instruments) and
``--wav-format`` (:func:`wav_format_option`), each parsing and checking its value once (argparse ``type=``).

Imports: errors, performance, pianoroll, render.audio. Used in: cli/performing.py.
"""

from __future__ import annotations

from qbdi_utils import performance
from qbdi_utils.errors import OptionError
from qbdi_utils.pianoroll import TRACK_LAYOUTS
from qbdi_utils.render.audio import WAV_FORMATS

__all__ = ["QUERY_PROGRAMS", "programs_option", "tracks_option", "velocity_option", "wav_format_option"]

#: ``--programs`` word for the query's own instruments (:func:`qbdi_utils.performance.query_programs`).
QUERY_PROGRAMS = "query"


def velocity_option(value: str) -> str | int:
    """``--velocity``: "query", "corpus" or a fixed velocity 1..127 (:func:`qbdi_utils.performance.parse_velocity`)."""
    return performance.parse_velocity(value)


def _one_of(option: str, value: str, choices) -> str:
    """``value`` lower-cased when it is one of ``choices``, else an OptionError naming ``option``."""
    text = str(value).strip().lower()
    if text not in choices:
        raise OptionError(f"{option} {value!r} is not one of {', '.join(choices)}")
    return text


def tracks_option(value: str) -> str:
    """``--tracks``: one of :data:`qbdi_utils.pianoroll.TRACK_LAYOUTS`.

    Raises:
        OptionError: another word.
    """
    return _one_of("--tracks", value, TRACK_LAYOUTS)


def programs_option(value: str) -> tuple[int, ...] | str:
    """``--programs P[,P]|query``: General MIDI programs 0..127, one per track (one value: every track),
    or :data:`QUERY_PROGRAMS` for the query's own (resolved by :func:`layout`).

    Raises:
        OptionError: neither "query" nor one or two whole numbers 0..127 separated by a comma.
    """
    if str(value).strip().lower() == QUERY_PROGRAMS:
        return QUERY_PROGRAMS
    parts = [p.strip() for p in str(value).split(",")]
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() and int(p) <= 127 for p in parts):
        raise OptionError(f"--programs {value!r}: give one or two General MIDI programs 0..127 separated "
                          f"by a comma (e.g. 0,48), or '{QUERY_PROGRAMS}' for the query's instruments")
    return tuple(int(p) for p in parts)


def wav_format_option(value: str) -> str:
    """``--wav-format``: one of :data:`qbdi_utils.render.audio.WAV_FORMATS`.

    Raises:
        OptionError: another word.
    """
    return _one_of("--wav-format", value, WAV_FORMATS)

"""How an output of ``qbdi improvise`` / ``qbdi navigate`` is performed: its command-line options.

``--velocity``, ``--tracks``, ``--programs`` and ``--wav-format`` are :func:`add_performance`, each with
its typed converter (:mod:`qbdi_utils.cli.performance_values`); :func:`layout` checks them together
before any work, :func:`with_query_programs` reads ``--programs query`` off the query the command loaded
(:func:`qbdi_utils.performance.query_programs`), and :func:`perform` gives an output its velocities
(:mod:`qbdi_utils.performance`).

Imports: corpus, errors, performance, pianoroll, render.audio, cli.model_corpus, cli.performance_values.
Used in: cli/improvise.py, cli/navigate.py, cli/sweep.py.
"""

from __future__ import annotations

from pathlib import Path

from qbdi_utils import performance
from qbdi_utils.cli import model_corpus
from qbdi_utils.cli.performance_values import (QUERY_PROGRAMS, programs_option, tracks_option, velocity_option,
                                               wav_format_option)
from qbdi_utils.corpus import NAMED_SOURCES
from qbdi_utils.errors import CorpusError, OptionError
from qbdi_utils.pianoroll import TRACK_LAYOUTS
from qbdi_utils.render.audio import WAV_FORMATS

__all__ = ["add_performance", "layout", "perform", "perform_all", "with_query_programs"]

def add_performance(parser, *, wav: bool = True) -> None:
    """``--velocity``, ``--tracks``, ``--programs`` and (with ``wav``) ``--wav-format``: how an output is performed."""
    parser.add_argument("--velocity", type=velocity_option, default="query",
                        metavar="{" + "|".join(performance.VELOCITY_MODES) + "|N}",
                        help="note velocities: 'query' follows the query's dynamics bar by bar (its mean and "
                        "accents; a query without dynamics keeps its one level plus the corpus's accents), "
                        "'corpus' the corpus's level and accents, N every note at N (1..127; 80 was the old "
                        "fixed velocity); default query")
    parser.add_argument("--tracks", type=tracks_option, default="one", metavar="{" + "|".join(TRACK_LAYOUTS) + "}",
                        help="'one' MIDI track (default) or the top voice and the rest in two tracks "
                        "(a type-1 file; panned apart in a stereo WAV)")
    parser.add_argument("--programs", type=programs_option, default=None, metavar="P[,P]|query",
                        help="General MIDI program of each track, 0..127 (default 0, piano; e.g. 0,48 for "
                        "piano over strings), or 'query' for the query's instruments: with --tracks one the "
                        "program that sounds longest in the query, with melody+accompaniment the one that "
                        "plays most of the query's top voice for the melody and most of the rest for the "
                        "accompaniment (0 where the query sets no program)")
    if not wav:
        return
    parser.add_argument("--wav-format", type=wav_format_option, default="mono22",
                        metavar="{" + "|".join(WAV_FORMATS) + "}",
                        help="--wav as 22.05 kHz mono (default) or 44.1 kHz stereo")


def layout(args) -> dict:
    """The writing options of :func:`add_performance` checked together (before any work).

    With ``--programs query`` the programs stay the word "query" until :func:`with_query_programs`
    reads them off the query the command loaded.

    Returns:
        {"tracks", "programs" (one per track, or "query"), "wav_format"}: the keyword arguments of the writers.

    Raises:
        OptionError: two programs for one track.
    """
    n = 1 if args.tracks == "one" else 2
    wav_format = getattr(args, "wav_format", None)
    if args.programs == QUERY_PROGRAMS:
        return {"tracks": args.tracks, "programs": QUERY_PROGRAMS, "wav_format": wav_format}
    programs = args.programs or (0,)
    if len(programs) > n:
        raise OptionError(f"--programs {','.join(map(str, programs))} names {len(programs)} programs but "
                          f"--tracks {args.tracks} writes {n} track; add --tracks melody+accompaniment")
    return {"tracks": args.tracks, "programs": tuple(programs) * (n // len(programs)), "wav_format": wav_format}


def with_query_programs(layout_: dict, query) -> dict:
    """:func:`layout`'s options with ``--programs query`` resolved on the loaded query
    (:func:`qbdi_utils.performance.query_programs` for its tracks); other programs unchanged."""
    if layout_["programs"] != QUERY_PROGRAMS:
        return layout_
    return {**layout_, "programs": performance.query_programs(query, layout_["tracks"])}


def perform(args, model, query, piece) -> list:
    """Give an output its velocities as ``--velocity`` says (:func:`qbdi_utils.performance.perform`).

    The corpus profile (read only when the query has no dynamics or ``--velocity corpus``) is that of
    ``--corpus``, else of the corpus the model records.

    Returns:
        The warnings to print (a sentence when a fallback gave the velocities).
    """
    return perform_all(args, model, query, [piece])


def perform_all(args, model, query, pieces) -> list:
    """:func:`perform` for several outputs of one query, the corpus profile read at most once.

    Returns:
        The distinct warnings, in order.
    """
    try:
        source = model_corpus.corpus_source(model, args.corpus)[0]
    except CorpusError:  # none recorded, or gone: no corpus profile (performance says what it fell back to)
        source = None
    name = "" if source is None else (source if source in NAMED_SOURCES else Path(source).name)
    profile = []

    def corpus():
        if not profile:
            profile.append(performance.corpus_profile(source, model.spec))
        return profile[0]

    warnings = []
    for piece in pieces:
        for w in performance.perform(piece, query, args.velocity, corpus_name=name, corpus=corpus):
            if w not in warnings:
                warnings.append(w)
    return warnings
